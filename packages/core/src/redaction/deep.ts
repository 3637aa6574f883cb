import { Secret } from '../secret.js';

/** What a deep walk needs from its redactor. */
export interface DeepContext {
  /** Masks known values in one string; returns the same string when nothing matched. */
  readonly redactString: (text: string) => string;
  /** Strings shorter than this cannot hold a masked value. */
  readonly minLength: number;
  /** Objects nested deeper than this are replaced by {@link TRUNCATED}. */
  readonly maxDepth: number;
}

/** Stands in for objects nested deeper than a redactor's `maxDepth`. */
export const TRUNCATED = '[Truncated]';
/** Stands in for a property whose getter threw. */
export const UNREADABLE = '[Unreadable]';

const Kind = { Plain: 0, Array: 1, Error: 2, Map: 3, Set: 4, Instance: 5 } as const;
type Kind = (typeof Kind)[keyof typeof Kind];

interface MemoEntry {
  readonly object: object;
  /** Position in the walk order. */
  readonly index: number;
  done: boolean;
  result: unknown;
  /** Created when a cycle reaches the object before its walk ends; becomes the result. */
  shell: object | undefined;
}

/**
 * Returns `value` with every known secret value masked, copying only the objects that change
 * (an unchanged record comes back as the same reference), never mutating the input, and
 * mirroring shared and cyclic references in the copy instead of throwing or recursing forever.
 */
export function redactDeep(value: unknown, context: DeepContext): unknown {
  return new DeepWalk(context).visit(value, 0);
}

class DeepWalk {
  readonly #context: DeepContext;
  readonly #memo = new Map<object, MemoEntry>();
  /** Entries in the order their walks started, to undo copies of a subtree that needs none. */
  readonly #order: MemoEntry[] = [];
  /** How many values have been masked or replaced so far. */
  #changes = 0;
  /** Lowest walk position of an unfinished object whose copy was handed out in this subtree. */
  #lowestShell = Number.POSITIVE_INFINITY;

  constructor(context: DeepContext) {
    this.#context = context;
  }

  visit(value: unknown, depth: number): unknown {
    switch (typeof value) {
      case 'string': {
        if (value.length < this.#context.minLength) return value;
        const redacted = this.#context.redactString(value);
        if (redacted !== value) this.#changes++;
        return redacted;
      }
      case 'number':
      case 'bigint': {
        // A numeric secret (a PIN, an account number) is printed as digits by every logger.
        const text = String(value);
        if (text.length < this.#context.minLength) return value;
        const redacted = this.#context.redactString(text);
        if (redacted === text) return value;
        this.#changes++;
        return redacted;
      }
      case 'object':
        if (value === null) return value;
        return this.#visitObject(value, depth);
      default:
        // Functions, symbols, booleans and undefined carry no text a logger prints.
        return value;
    }
  }

  #visitObject(value: object, depth: number): unknown {
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
    if (Secret.isSecret(value) || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return value;
    if (value instanceof Date || value instanceof RegExp || value instanceof Promise) return value;
    if (value instanceof WeakMap || value instanceof WeakSet) return value;
    if (value instanceof URL) {
      const href = value.href;
      const redacted = this.#context.redactString(href);
      if (redacted === href) return value;
      this.#changes++;
      return redacted;
    }
    if (depth >= this.#context.maxDepth) {
      this.#changes++;
      return TRUNCATED;
    }
    const kind = kindOf(value);
    if (kind === Kind.Instance) {
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
      const newItem = this.visit(item, depth + 1);
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
      const redacted = readable ? this.visit(item, depth + 1) : UNREADABLE;
      // A secret used as a property name (a token-keyed map) is masked too.
      const newKey = typeof key === 'string' ? (this.visit(key, depth) as string) : key;
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
   * `AggregateError`'s `errors`, a client's `config`), copied with the same prototype so that
   * `instanceof`, `name` and logger error serializers still recognise the copy.
   */
  #visitError(error: Error, entry: MemoEntry, depth: number): unknown {
    const keys = Reflect.ownKeys(error);
    const values: unknown[] = [];
    const descriptors: PropertyDescriptor[] = [];
    let changed = false;
    for (const key of keys) {
      const descriptor = Object.getOwnPropertyDescriptor(error, key);
      if (descriptor === undefined) continue;
      let item: unknown;
      let readable = true;
      if ('value' in descriptor) item = descriptor.value;
      else {
        try {
          item = (error as unknown as Record<PropertyKey, unknown>)[key];
        } catch {
          readable = false;
        }
      }
      if (!readable) this.#changes++;
      const redacted = readable ? this.visit(item, depth + 1) : UNREADABLE;
      // Accessors (V8's `stack` in recent versions) become plain values in a copy.
      if (redacted !== item || !readable || !('value' in descriptor)) changed = true;
      values.push(redacted);
      descriptors.push(descriptor);
    }
    if (!changed && entry.shell === undefined) return error;
    const out = entry.shell ?? makeShell(Kind.Error, error);
    let index = 0;
    for (const key of keys) {
      const descriptor = descriptors[index];
      if (descriptor === undefined) break;
      Object.defineProperty(out, key, {
        value: values[index],
        writable: descriptor.writable ?? true,
        enumerable: descriptor.enumerable ?? false,
        configurable: true,
      });
      index++;
    }
    return out;
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

function kindOf(value: object): Kind {
  if (Array.isArray(value)) return Kind.Array;
  if (value instanceof Error || Object.prototype.toString.call(value) === '[object Error]') return Kind.Error;
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
