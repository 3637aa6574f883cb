import { inspect } from 'node:util';
import { INSPECT_CUSTOM, REDACTED, Secret } from '../secret.js';

/** Objects nested deeper than this in a redacted record are replaced by `[Truncated]`, by default. */
export const DEFAULT_REDACTION_MAX_DEPTH = 64;

/** Stands in for objects nested deeper than a walk's `maxDepth`. */
export const TRUNCATED = '[Truncated]';
/**
 * Stands in for what could not be read: a property whose getter threw, an object whose proxy
 * traps threw or that was revoked.
 */
export const UNREADABLE = '[Unreadable]';

/**
 * How {@link redactDeep} treats what it meets. The redactor's own walk sets only
 * `redactString`, `minLength` and `maxDepth`; the other settings let a logger's error scrubber
 * share the same walk (cycle handling, copy-on-change, exotic errors) with its own rules.
 */
export interface DeepRedactOptions {
  /** Masks values in one string; returns the same string when nothing matched. */
  readonly redactString: (text: string) => string;
  /**
   * Strings (and the digits of numbers) shorter than this are left as they are without calling
   * `redactString`. `Infinity` leaves every string alone. @default 1
   */
  readonly minLength?: number | undefined;
  /** Objects nested deeper than this are replaced by {@link TRUNCATED}. @default 64 */
  readonly maxDepth?: number | undefined;
  /** `'keep'`: objects deeper than `maxDepth` are left as they are instead. @default 'truncate' */
  readonly beyondDepth?: 'truncate' | 'keep' | undefined;
  /**
   * Property names (and string `Map` keys) whose values are replaced whole by `mask`, whatever
   * they hold (`undefined` values stay `undefined`).
   */
  readonly sensitiveKey?: ((key: string) => boolean) | undefined;
  /** What replaces the value of a sensitive key. @default '[REDACTED]' */
  readonly mask?: string | undefined;
  /**
   * What instances of classes other than errors, arrays, maps, sets and plain objects become
   * (sockets, agents, requests). By default they are walked through their `toJSON` when they
   * have one, else copied as plain objects of their own enumerable properties when they hold a
   * value. Returning the instance itself leaves it as it is.
   */
  readonly instance?: ((value: object) => unknown) | undefined;
  /** What binary data (`ArrayBuffer` and its views) becomes. By default it is left as it is. */
  readonly binary?: ((value: ArrayBuffer | ArrayBufferView) => unknown) | undefined;
  /**
   * The rules inside errors met on the walk: their properties, `cause` chains and
   * `AggregateError` entries are walked with these options (from depth 0) instead. By default
   * errors are walked with the same options as everything else.
   */
  readonly errors?: DeepRedactOptions | undefined;
}

/**
 * Returns `value` with every string masked by `options.redactString` (deeply: records,
 * arrays, `Map`s and `Set`s, errors with their message, stack, `cause` chain, an
 * `AggregateError`'s `errors`, their other own properties and what their classes' getters,
 * `toJSON`, `toString` and `util.inspect.custom` show), copying only the objects that change
 * (an unchanged record comes back as the same reference), never mutating the input, and
 * mirroring shared and cyclic references in the copy instead of throwing or recursing forever.
 *
 * Copies of plain objects and errors keep their prototype, so `instanceof`, `name` and logger
 * error serializers still recognise them; inherited getters and methods that would not work on
 * a copy (`DOMException`'s `message`, a class's getter of a private field) are replaced by own
 * values read from the original. It never throws: what cannot be read becomes
 * {@link UNREADABLE}.
 *
 * This is the one deep walk of the product: `Redactor.redact` uses it, and so does the error
 * scrubber of `@secret-provider/logging`, with its own options.
 *
 * @example
 * ```ts
 * const safe = redactDeep(record, { redactString: (text) => text.replaceAll(token, '[REDACTED]') });
 * ```
 */
export function redactDeep(value: unknown, options: DeepRedactOptions): unknown {
  try {
    return new DeepWalk(resolve(options)).visit(value, 0);
  } catch {
    // Only a throwing `redactString` on a string given alone gets here.
    return UNREADABLE;
  }
}

interface Policy {
  readonly redactString: (text: string) => string;
  readonly minLength: number;
  readonly maxDepth: number;
  readonly keep: boolean;
  readonly sensitiveKey: ((key: string) => boolean) | undefined;
  readonly mask: string;
  readonly instance: ((value: object) => unknown) | undefined;
  readonly binary: ((value: ArrayBuffer | ArrayBufferView) => unknown) | undefined;
  errors: Policy | undefined;
}

/** Resolved options, kept per options object: a redactor walks with the same one every time. */
const policies = new WeakMap<DeepRedactOptions, Policy>();

function resolve(options: DeepRedactOptions): Policy {
  let policy = policies.get(options);
  if (policy === undefined) {
    const created: Policy = {
      redactString: options.redactString,
      minLength: options.minLength ?? 1,
      maxDepth: options.maxDepth ?? DEFAULT_REDACTION_MAX_DEPTH,
      keep: options.beyondDepth === 'keep',
      sensitiveKey: options.sensitiveKey,
      mask: options.mask ?? REDACTED,
      instance: options.instance,
      binary: options.binary,
      errors: undefined,
    };
    // Kept before its error rules are resolved: options may refer to each other.
    policies.set(options, created);
    if (options.errors !== undefined && options.errors !== options) created.errors = resolve(options.errors);
    policy = created;
  }
  return policy;
}

const Kind = { Plain: 0, Array: 1, Error: 2, Map: 3, Set: 4, Instance: 5 } as const;
type Kind = (typeof Kind)[keyof typeof Kind];

/**
 * Prototypes whose members work on any object of their kind: an error's walk stops looking at
 * inherited members when it reaches one of them.
 */
const GENERIC_PROTOTYPES: ReadonlySet<unknown> = new Set([
  Object.prototype,
  Error.prototype,
  EvalError.prototype,
  RangeError.prototype,
  ReferenceError.prototype,
  SyntaxError.prototype,
  TypeError.prototype,
  URIError.prototype,
  AggregateError.prototype,
]);

/** Options handed to a class's own `util.inspect.custom` when the walk calls it. */
const INSPECT_OPTIONS = { ...inspect.defaultOptions, stylize: (text: string) => text };

interface MemoEntry {
  readonly object: object;
  /** Position in the walk order. */
  readonly index: number;
  done: boolean;
  result: unknown;
  /** Created when a cycle reaches the object before its walk ends; becomes the result. */
  shell: object | undefined;
}

/** A property of a copy: its key, its (redacted) value, and how it is defined. */
interface Slot {
  readonly key: PropertyKey;
  readonly value: unknown;
  readonly enumerable: boolean;
  readonly writable: boolean;
}

class DeepWalk {
  #policy: Policy;
  #memo: Map<object, MemoEntry>;
  /** One memo per set of rules: an object met inside and outside an error is walked by each. */
  readonly #memos = new Map<Policy, Map<object, MemoEntry>>();
  /** Entries in the order their walks started, to undo copies of a subtree that needs none. */
  readonly #order: MemoEntry[] = [];
  /** How many values have been masked or replaced so far. */
  #changes = 0;
  /** Lowest walk position of an unfinished object whose copy was handed out in this subtree. */
  #lowestShell = Number.POSITIVE_INFINITY;

  constructor(policy: Policy) {
    this.#policy = policy;
    this.#memo = new Map();
    this.#memos.set(policy, this.#memo);
  }

  visit(value: unknown, depth: number): unknown {
    switch (typeof value) {
      case 'string':
        return this.#text(value);
      case 'number':
      case 'bigint': {
        // A numeric secret (a PIN, an account number) is printed as digits by every logger.
        const text = String(value);
        const redacted = this.#text(text);
        return redacted === text ? value : redacted;
      }
      case 'object':
        if (value === null) return value;
        return this.#visitSafely(value, depth);
      default:
        // Functions, symbols, booleans and undefined carry no text a logger prints.
        return value;
    }
  }

  #text(text: string): string {
    if (text.length < this.#policy.minLength) return text;
    const redacted = this.#policy.redactString(text);
    if (redacted !== text) this.#changes++;
    return redacted;
  }

  /** A property's value: masked whole under a sensitive name, else walked. */
  #visitProperty(key: PropertyKey, item: unknown, depth: number): unknown {
    const sensitive = this.#policy.sensitiveKey;
    if (sensitive !== undefined && typeof key === 'string' && item !== undefined && sensitive(key)) {
      if (item !== this.#policy.mask) this.#changes++;
      return this.#policy.mask;
    }
    return this.visit(item, depth);
  }

  /** Objects whose traps throw, or revoked proxies, must not break the logging path. */
  #visitSafely(value: object, depth: number, switchRules = true): unknown {
    const lowestBefore = this.#lowestShell;
    const policy = this.#policy;
    const memo = this.#memo;
    try {
      return this.#visitObject(value, depth, switchRules);
    } catch {
      this.#policy = policy;
      this.#memo = memo;
      this.#lowestShell = Math.min(lowestBefore, this.#lowestShell);
      const entry = memo.get(value);
      if (entry !== undefined && !entry.done) {
        entry.done = true;
        entry.result = UNREADABLE;
      }
      this.#changes++;
      return UNREADABLE;
    }
  }

  #visitObject(value: object, depth: number, switchRules: boolean): unknown {
    const errorRules = this.#policy.errors;
    if (switchRules && errorRules !== undefined && isErrorLike(value))
      return this.#visitWithRules(errorRules, value);
    const known = this.#memo.get(value);
    if (known !== undefined) {
      if (known.done) {
        // A copy made elsewhere in the walk is a change here too.
        if (known.result !== value) this.#changes++;
        return known.result;
      }
      known.shell ??= makeShell(kindOf(value), value);
      if (known.index < this.#lowestShell) this.#lowestShell = known.index;
      return known.shell;
    }
    if (Secret.isSecret(value)) return value;
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
      return this.#policy.binary === undefined ? value : this.#replaced(value, this.#policy.binary(value));
    }
    if (value instanceof Date || value instanceof Promise) return value;
    if (value instanceof WeakMap || value instanceof WeakSet) return value;
    if (value instanceof URL || value instanceof RegExp) {
      // Printed as their text (a URL with a password in it, a pattern built from a value).
      const text = String(value);
      const redacted = this.#text(text);
      return redacted === text ? value : redacted;
    }
    if (depth >= this.#policy.maxDepth) {
      if (this.#policy.keep) return value;
      this.#changes++;
      return TRUNCATED;
    }
    const kind = kindOf(value);
    if (kind === Kind.Instance) {
      if (this.#policy.instance !== undefined) return this.#replaced(value, this.#policy.instance(value));
      const toJSON = (value as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === 'function') return this.#visitViaJson(value, toJSON as () => unknown, depth);
    }
    const orderStart = this.#order.length;
    const entry: MemoEntry = {
      object: value,
      index: orderStart,
      done: false,
      result: value,
      shell: undefined,
    };
    this.#memo.set(value, entry);
    const changesBefore = this.#changes;
    const lowestBefore = this.#lowestShell;
    this.#lowestShell = Number.POSITIVE_INFINITY;
    this.#order.push(entry);
    let result: unknown;
    switch (kind) {
      case Kind.Array:
        result = this.#visitArray(value as unknown[], entry, depth);
        break;
      case Kind.Error:
        result = this.#visitError(value as Error, entry, depth);
        break;
      case Kind.Map:
        result = this.#visitMap(value as Map<unknown, unknown>, entry, depth);
        break;
      case Kind.Set:
        result = this.#visitSet(value as Set<unknown>, entry, depth);
        break;
      default:
        result = this.#visitProperties(value, kind, entry, depth);
    }
    const lowest = this.#lowestShell;
    this.#lowestShell = Math.min(lowestBefore, lowest);
    if (result !== value && this.#changes === changesBefore && lowest >= orderStart) {
      // Copied only because a cycle reached back to this object or inside it before the walk
      // ended, and nothing in this subtree was masked after all: the originals are exact.
      for (const done of this.#order.slice(orderStart)) done.result = done.object;
      result = value;
    }
    entry.done = true;
    entry.result = result;
    return result;
  }

  /** An error met under rules that walk errors differently: walked with those, from depth 0. */
  #visitWithRules(policy: Policy, error: object): unknown {
    const outerPolicy = this.#policy;
    const outerMemo = this.#memo;
    let memo = this.#memos.get(policy);
    if (memo === undefined) {
      memo = new Map();
      this.#memos.set(policy, memo);
    }
    this.#policy = policy;
    this.#memo = memo;
    try {
      // Under the new rules this error is walked as it is, whatever errors those rules name.
      return this.#visitSafely(error, 0, false);
    } finally {
      this.#policy = outerPolicy;
      this.#memo = outerMemo;
    }
  }

  #replaced(value: object, replacement: unknown): unknown {
    if (replacement !== value) this.#changes++;
    return replacement;
  }

  /** Objects with `toJSON` are printed through it by JSON loggers: check what it gives. */
  #visitViaJson(value: object, toJSON: () => unknown, depth: number): unknown {
    let json: unknown;
    try {
      json = toJSON.call(value);
    } catch {
      this.#changes++;
      return UNREADABLE;
    }
    const redacted = this.visit(json, depth + 1);
    return redacted === json ? value : redacted;
  }

  #visitArray(array: readonly unknown[], entry: MemoEntry, depth: number): unknown {
    let out: unknown[] | undefined;
    for (let i = 0; i < array.length; i++) {
      const item = array[i];
      const redacted = this.visit(item, depth + 1);
      if (out === undefined && redacted !== item)
        out = this.#startCopy(entry, array, Kind.Array, i) as unknown[];
      if (out !== undefined) out[i] = redacted;
    }
    if (out === undefined && entry.shell !== undefined)
      out = this.#startCopy(entry, array, Kind.Array, array.length) as unknown[];
    return out ?? array;
  }

  #visitMap(map: ReadonlyMap<unknown, unknown>, entry: MemoEntry, depth: number): unknown {
    const pairs: Array<[unknown, unknown]> = [];
    let changed = false;
    for (const [key, item] of map) {
      const newKey = this.visit(key, depth + 1);
      const newItem =
        typeof key === 'string' ? this.#visitProperty(key, item, depth + 1) : this.visit(item, depth + 1);
      if (newKey !== key || newItem !== item) changed = true;
      pairs.push([newKey, newItem]);
    }
    if (!changed && entry.shell === undefined) return map;
    const out = (entry.shell as Map<unknown, unknown> | undefined) ?? new Map();
    for (const [key, item] of pairs) out.set(key, item);
    return out;
  }

  #visitSet(set: ReadonlySet<unknown>, entry: MemoEntry, depth: number): unknown {
    const items: unknown[] = [];
    let changed = false;
    for (const item of set) {
      const redacted = this.visit(item, depth + 1);
      if (redacted !== item) changed = true;
      items.push(redacted);
    }
    if (!changed && entry.shell === undefined) return set;
    const out = (entry.shell as Set<unknown> | undefined) ?? new Set();
    for (const item of items) out.add(item);
    return out;
  }

  /** Plain objects and class instances: own enumerable properties (string and symbol keys). */
  #visitProperties(object: object, kind: Kind, entry: MemoEntry, depth: number): unknown {
    const source = object as Record<PropertyKey, unknown>;
    const keys: PropertyKey[] = Object.keys(object);
    for (const symbol of Object.getOwnPropertySymbols(object)) {
      if (Object.prototype.propertyIsEnumerable.call(object, symbol)) keys.push(symbol);
    }
    let out: Record<PropertyKey, unknown> | undefined;
    let i = -1;
    for (const key of keys) {
      i++;
      let item: unknown;
      let readable = true;
      try {
        item = source[key];
      } catch {
        readable = false;
      }
      if (!readable) this.#changes++;
      const redacted = readable ? this.#visitProperty(key, item, depth + 1) : UNREADABLE;
      // A secret used as a property name (a token-keyed map) is masked too.
      const newKey = typeof key === 'string' ? this.#text(key) : key;
      if (out === undefined && (redacted !== item || newKey !== key || !readable)) {
        out = this.#startCopy(entry, object, kind, 0) as Record<PropertyKey, unknown>;
        for (const earlier of keys.slice(0, i)) setOwn(out, earlier, source[earlier]);
      }
      if (out !== undefined) setOwn(out, newKey, redacted);
    }
    if (out === undefined && entry.shell !== undefined) {
      out = entry.shell as Record<PropertyKey, unknown>;
      for (const key of keys) setOwn(out, key, source[key]);
    }
    return out ?? object;
  }

  /**
   * Errors: every own property, enumerable or not (`message`, `stack`, `cause`, an
   * `AggregateError`'s `errors`, a client's `config`), and what the error's own classes add
   * (getters, `toJSON`, `toString`, `util.inspect.custom`: up to the first built-in error
   * prototype), copied with the same prototype so that `instanceof`, `name` and logger error
   * serializers still recognise the copy.
   */
  #visitError(error: Error, entry: MemoEntry, depth: number): unknown {
    const slots: Slot[] = [];
    const seen = new Set<PropertyKey>();
    let changed = false;
    for (const key of Reflect.ownKeys(error)) {
      seen.add(key);
      const descriptor = Object.getOwnPropertyDescriptor(error, key);
      if (descriptor === undefined) continue;
      const { value, readable } =
        'value' in descriptor ? { value: descriptor.value as unknown, readable: true } : read(error, key);
      if (!readable) this.#changes++;
      const redacted = readable ? this.#visitProperty(key, value, depth + 1) : UNREADABLE;
      // Accessors (V8's `stack` in recent versions) become plain values in a copy.
      if (redacted !== value || !readable || !('value' in descriptor)) changed = true;
      slots.push({
        key,
        value: redacted,
        enumerable: descriptor.enumerable ?? false,
        writable: descriptor.writable ?? true,
      });
    }
    // Inherited members that read internal slots or private fields (DOMException's `message`,
    // a client error's `get detail()`) throw on a copy, and may show what no own property
    // holds: they are read from the original and become own values of the copy.
    for (
      let proto: object | null = Object.getPrototypeOf(error) as object | null;
      // Up to the built-in error prototypes, or another realm's `Object.prototype`.
      proto !== null && !GENERIC_PROTOTYPES.has(proto) && Object.getPrototypeOf(proto) !== null;
      proto = Object.getPrototypeOf(proto) as object | null
    ) {
      for (const key of Reflect.ownKeys(proto)) {
        if (key === 'constructor' || key === '__proto__' || seen.has(key)) continue;
        seen.add(key);
        const descriptor = Object.getOwnPropertyDescriptor(proto, key);
        if (descriptor === undefined) continue;
        if ('value' in descriptor) {
          const method = descriptor.value as unknown;
          if (typeof method !== 'function') continue;
          if (key !== 'toJSON' && key !== 'toString' && key !== INSPECT_CUSTOM) continue;
          const shown = this.#visitMethod(error, key, method as (...args: unknown[]) => unknown, depth);
          if (shown.changed) changed = true;
          slots.push({ key, value: shown.method, enumerable: false, writable: true });
          continue;
        }
        if (descriptor.get === undefined) continue;
        const { value, readable } = read(error, key);
        if (!readable) this.#changes++;
        const redacted = readable ? this.#visitProperty(key, value, depth + 1) : UNREADABLE;
        if (redacted !== value || !readable) changed = true;
        slots.push({ key, value: redacted, enumerable: descriptor.enumerable ?? false, writable: false });
      }
    }
    if (!changed && entry.shell === undefined) return error;
    const out = entry.shell ?? makeShell(Kind.Error, error);
    for (const slot of slots) {
      Object.defineProperty(out, slot.key, {
        value: slot.value,
        writable: slot.writable,
        enumerable: slot.enumerable,
        configurable: true,
      });
    }
    return out;
  }

  /**
   * What an error's own `toJSON`, `toString` or `util.inspect.custom` shows, called on the
   * original and redacted, and a method for the copy that shows the same.
   */
  #visitMethod(
    error: Error,
    key: PropertyKey,
    method: (...args: unknown[]) => unknown,
    depth: number,
  ): { method: (() => unknown) | undefined; changed: boolean } {
    let shown: unknown;
    try {
      shown =
        key === INSPECT_CUSTOM
          ? method.call(error, INSPECT_OPTIONS.depth, INSPECT_OPTIONS, inspect)
          : method.call(error);
    } catch {
      // The copy falls back to what the built-in prototypes show.
      this.#changes++;
      return { method: key === 'toString' ? () => UNREADABLE : undefined, changed: true };
    }
    const redacted = this.visit(shown, depth + 1);
    return { method: () => redacted, changed: redacted !== shown };
  }

  #startCopy(entry: MemoEntry, source: object, kind: Kind, copied: number): object {
    const out = entry.shell ?? makeShell(kind, source);
    // Cycles met later in the walk must reach this same copy.
    entry.shell = out;
    if (kind === Kind.Array) {
      const array = source as unknown[];
      const target = out as unknown[];
      for (let i = 0; i < copied; i++) target[i] = array[i];
    }
    return out;
  }
}

/** A property read through its getter (own or inherited), which may throw. */
function read(object: object, key: PropertyKey): { value: unknown; readable: boolean } {
  try {
    return { value: Reflect.get(object, key), readable: true };
  } catch {
    return { value: undefined, readable: false };
  }
}

function isErrorLike(value: object): boolean {
  return value instanceof Error || Object.prototype.toString.call(value) === '[object Error]';
}

function kindOf(value: object): Kind {
  if (Array.isArray(value)) return Kind.Array;
  if (isErrorLike(value)) return Kind.Error;
  if (value instanceof Map) return Kind.Map;
  if (value instanceof Set) return Kind.Set;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null ? Kind.Plain : Kind.Instance;
}

/**
 * The empty copy of an object. Plain objects and errors keep their prototype; other class
 * instances become plain objects, because methods of the class may read private fields that a
 * copy does not have (and throw when a logger calls them).
 */
function makeShell(kind: Kind, source: object): object {
  switch (kind) {
    case Kind.Array:
      return [];
    case Kind.Map:
      return new Map();
    case Kind.Set:
      return new Set();
    case Kind.Error:
    case Kind.Plain:
      return Object.create(Object.getPrototypeOf(source) as object | null) as object;
    default:
      return {};
  }
}

function setOwn(target: Record<PropertyKey, unknown>, key: PropertyKey, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    target[key] = value;
  }
}
