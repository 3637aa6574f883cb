import { inspect } from 'node:util';
import { InvalidConfigError, InvalidValueError, isSecretError } from '../errors.js';
import { createEmitter } from '../events.js';
import { REDACTED, Secret, type SecretValue } from '../secret.js';
import type { SecretEvents, SecretProvider, WatchHandle } from '../types.js';
import { fingerprint } from '../util.js';
import { DEFAULT_REDACTION_MAX_DEPTH, type DeepRedactOptions, redactDeep } from './deep.js';
import {
  ALL_ENCODINGS,
  bytesForms,
  type RedactionEncoding,
  textForms,
  type ValueForms,
} from './encodings.js';
import { PatternMatcher } from './matcher.js';
import { RedactingProvider, type ValueSink } from './provider.js';
import {
  defaultSecretKeys,
  looksLikeConfiguration,
  type SecretKeyPredicate,
  urlPassword,
} from './secret-keys.js';

/**
 * Values shorter than this are not masked by default. Masking `admin` or `1234` would blank
 * those words wherever they appear in logs, and a value that short is guessable anyway, so
 * hiding it protects little. Such values are reported once with a warning instead.
 */
export const DEFAULT_MIN_SECRET_LENGTH = 8;

/** How long a value stays masked after it was rotated out or removed, by default: 10 minutes. */
export const DEFAULT_ROTATION_GRACE_MS = 10 * 60_000;

/** Something a redactor reports that is not an error. Never contains a value. */
export interface RedactorWarning {
  /**
   * `SHORT_SECRET`: a value is shorter than `minLength` and will not be masked (values learned
   * from a provider are reported only for keys that are secrets, see
   * {@link RedactorOptions.secretKeys}).
   * `REFRESH_FAILED`: after a rotation the new value could not be read (the old one stays masked).
   * `LEARN_FAILED`: some keys of a provider could not be read while learning its values.
   */
  readonly code: 'SHORT_SECRET' | 'REFRESH_FAILED' | 'LEARN_FAILED';
  readonly message: string;
  /** The key concerned, when there is one (a name, never a value). */
  readonly key?: string | undefined;
  /** The provider concerned, when there is one. */
  readonly provider?: string | undefined;
}

/** Options of {@link createRedactor}. */
export interface RedactorOptions {
  /** Values to mask from the start (permanently, until {@link Redactor.remove}). */
  readonly values?: Iterable<string | Secret<SecretValue>> | undefined;
  /** What replaces each masked stretch of text. @default '[REDACTED]' */
  readonly mask?: string | undefined;
  /**
   * Shortest value masked, in UTF-16 code units (bytes for binary values); shorter values are
   * ignored with a `SHORT_SECRET` warning. @default 8 ({@link DEFAULT_MIN_SECRET_LENGTH})
   */
  readonly minLength?: number | undefined;
  /**
   * Encodings masked besides the value itself. Pass `[]` to mask only the values as they are.
   * @default ['base64', 'base64url', 'url', 'json']
   */
  readonly encodings?: readonly RedactionEncoding[] | undefined;
  /**
   * How long a value stays masked after its key rotated to a new value or was removed, in ms.
   * Old values go on appearing for a while (in-flight requests, pooled connections); after
   * this they are dropped. `0` drops them at once. @default 600_000
   */
  readonly rotationGraceMs?: number | undefined;
  /** Deepest nesting redacted in objects. @default 64 */
  readonly maxDepth?: number | undefined;
  /**
   * Which keys of a provider hold secrets, for the values learned from providers ({@link
   * Redactor.attach}, {@link Redactor.learnFrom}, {@link Redactor.wrap}; each takes its own too).
   * Values given to {@link Redactor.add} and `values` are always masked.
   * @default {@link defaultSecretKeys}: keys named like secrets are; the shell's own variables
   * are not; for other keys the value decides (configuration such as `http://localhost:8080`
   * is not masked, values too short to mask are skipped without a warning).
   */
  readonly secretKeys?: SecretKeyPredicate | undefined;
  /** Clock in ms, for tests. @default Date.now */
  readonly now?: (() => number) | undefined;
  /** Receives warnings. @default `process.emitWarning` with code `SECRET_PROVIDER_<code>` */
  readonly onWarning?: ((warning: RedactorWarning) => void) | undefined;
}

/** Options of {@link Redactor.add}. */
export interface RedactorAddOptions {
  /**
   * The name the value is the current value of. Adding another value under the same key
   * retires this one: it stays masked for `rotationGraceMs`, then is dropped. Without a key a
   * value is masked until removed.
   */
  readonly key?: string | undefined;
}

/** Options of {@link Redactor.learnFrom}. */
export interface LearnOptions {
  /** Only keys with this prefix. */
  readonly prefix?: string | undefined;
  /**
   * Which of the keys hold secrets (see {@link SecretKeyPredicate}); also used for the keys
   * an {@link Redactor.attach}ed provider adds or rotates later.
   * @default the redactor's {@link RedactorOptions.secretKeys}
   */
  readonly secretKeys?: SecretKeyPredicate | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Reads in flight at once. @default 8 */
  readonly concurrency?: number | undefined;
}

/** What {@link Redactor.learnFrom} did. */
export interface LearnResult {
  /** Keys listed. */
  readonly keys: number;
  /** Values read and now masked (short ones included, though they are not masked). */
  readonly learned: number;
  /** Keys whose read failed (not counting keys deleted while listing). */
  readonly failed: number;
}

/** Options of {@link Redactor.attach}. */
export interface AttachOptions extends LearnOptions {
  /** Read every key first ({@link Redactor.learnFrom}). @default true */
  readonly prime?: boolean | undefined;
}

/** Options of {@link Redactor.wrap}. */
export interface WrapOptions {
  /**
   * Which keys read or written through the view hold secrets (see {@link SecretKeyPredicate}).
   * @default the redactor's {@link RedactorOptions.secretKeys}
   */
  readonly secretKeys?: SecretKeyPredicate | undefined;
}

/** A redactor following a provider; stop it to stop watching. */
export interface AttachHandle extends AsyncDisposable {
  /** Resolves once primed and watching. Never rejects: failures are reported as warnings. */
  readonly ready: Promise<LearnResult>;
  readonly stopped: boolean;
  stop(): Promise<void>;
}

/**
 * Redacts text that arrives in pieces (a stream of log output) so that a value split across two
 * pieces is still masked: each {@link push} returns the text that is safe to pass on and keeps
 * back a short tail that may be the start of a value.
 */
export interface ChunkRedactor {
  /** Takes the next piece; returns redacted text ready to be written (possibly empty). */
  push(chunk: string): string;
  /** Returns the redacted rest; call at the end of the stream. */
  flush(): string;
  /** Characters held back now. */
  readonly pending: number;
}

/** Counts, never values. */
export interface RedactorStats {
  /** Values masked, including those in their grace period. */
  readonly values: number;
  /** Values in their grace period after a rotation or removal. */
  readonly retiring: number;
  /** Distinct strings searched for (values and their encodings). */
  readonly patterns: number;
  /** Length of the longest of them. */
  readonly maxPatternLength: number;
  /** Values ignored because they were shorter than `minLength`. */
  readonly ignoredShort: number;
}

interface ValueEntry {
  readonly forms: ValueForms;
  /** Added without a key: masked until removed. */
  explicit: boolean;
  /** Keys whose current value this is. */
  holders: number;
  /** When it is dropped; `Infinity` while held. */
  expiresAt: number;
}

// Tails longer than this are let through even if a match might straddle the cut (a run of
// overlapping values that never ends); bounded memory beats a stalled stream.
const MAX_STREAM_TAIL = 64 * 1024;

/**
 * Masks every known secret value, and its common encodings, in log text and log records.
 *
 * `Secret<T>` stops a value from being printed by accident while wrapped; the redactor catches
 * it after it has been unwrapped and travelled into a connection string, a driver's error or a
 * debug dump, by searching output for the values themselves (as CI systems mask secrets in
 * job logs). It learns values given to it, values read through a provider it {@link wrap}s, or
 * every value of a provider it is {@link attach}ed to, and follows rotations: a replaced value
 * stays masked for a grace period, then is dropped.
 *
 * Matching is one pass over the text whatever the number of values (a sampled q-gram filter
 * and a hashed trie); overlapping matches are masked as one, so the longest value wins.
 *
 * @example
 * ```ts
 * const redactor = createRedactor({ values: [process.env.API_TOKEN!] });
 * const vault = redactor.wrap(new VaultProvider(options)); // learns what it reads
 * logger.info(redactor.redact({ msg: 'connected', url: connectionString }));
 * ```
 */
export class Redactor {
  readonly #matcher: PatternMatcher;
  readonly #mask: string;
  readonly #minLength: number;
  readonly #encodings: ReadonlySet<RedactionEncoding>;
  readonly #grace: number;
  readonly #now: () => number;
  readonly #onWarning: ((warning: RedactorWarning) => void) | undefined;
  readonly #deep: DeepRedactOptions;
  readonly #secretKeys: SecretKeyPredicate;
  readonly #sink: ValueSink;
  /** Value id (the value, or a tagged base64 of bytes) -> entry. */
  readonly #values = new Map<string, ValueEntry>();
  /** Scoped key -> id of its current value. */
  readonly #keyed = new Map<string, string>();
  /** Scoped keys of providers whose values were read, masked or not (rotations re-read them). */
  readonly #followed = new Set<string>();
  /** Scoped key -> the slots of the string fields of its JSON value (see `jsonLeaves`). */
  readonly #fieldSlots = new Map<string, string[]>();
  readonly #retiring = new Map<string, ValueEntry>();
  #nextExpiry = Number.POSITIVE_INFINITY;
  readonly #warnedShort = new Set<string>();
  #ignoredShort = 0;

  constructor(options: RedactorOptions = {}) {
    const minLength = options.minLength ?? DEFAULT_MIN_SECRET_LENGTH;
    if (!Number.isInteger(minLength) || minLength < 1) {
      throw new InvalidConfigError(
        {},
        'invalid redactor configuration: minLength must be a positive integer',
      );
    }
    const grace = options.rotationGraceMs ?? DEFAULT_ROTATION_GRACE_MS;
    if (!(grace >= 0))
      throw new InvalidConfigError({}, 'invalid redactor configuration: rotationGraceMs must be >= 0');
    this.#minLength = minLength;
    this.#matcher = new PatternMatcher(minLength);
    this.#mask = options.mask ?? REDACTED;
    this.#encodings = new Set(options.encodings ?? ALL_ENCODINGS);
    this.#grace = grace;
    this.#now = options.now ?? Date.now;
    this.#onWarning = options.onWarning;
    this.#secretKeys = options.secretKeys ?? defaultSecretKeys;
    this.#deep = {
      redactString: (text) => this.#redactText(text, false),
      minLength,
      maxDepth: options.maxDepth ?? DEFAULT_REDACTION_MAX_DEPTH,
    };
    this.#sink = this.#createSink();
    for (const value of options.values ?? []) this.add(value);
  }

  /** Values masked now, including those in their grace period. */
  get size(): number {
    this.#expire();
    return this.#values.size;
  }

  /** The shortest value masked (see {@link RedactorOptions.minLength}). */
  get minLength(): number {
    return this.#minLength;
  }

  /**
   * Masks `value` from now on. With `options.key`, it becomes that key's current value and the
   * key's previous value starts its grace period.
   * @returns whether it will be masked (`false` for values shorter than `minLength`).
   * @throws {InvalidValueError} for anything but a string or a `Secret`.
   */
  add(value: string | Secret<SecretValue>, options: RedactorAddOptions = {}): boolean {
    const revealed = reveal(value);
    if (revealed === undefined)
      throw new InvalidValueError({}, 'invalid value for the redactor: expected a string or a Secret');
    if (options.key === undefined) return this.#retainExplicit(revealed);
    return this.#learnKeyed(`\u0000${options.key}`, revealed, { key: options.key }, 'warn');
  }

  /** {@link add} for several values. @returns how many will be masked. */
  addAll(values: Iterable<string | Secret<SecretValue>>): number {
    let added = 0;
    for (const value of values) if (this.add(value)) added++;
    return added;
  }

  /**
   * Stops masking `value` at once, unless a key still holds it as its current value.
   * @returns whether it is still masked.
   */
  remove(value: string | Secret<SecretValue>): boolean {
    const revealed = reveal(value);
    if (revealed === undefined) return false;
    const id = valueId(revealed);
    const entry = this.#values.get(id);
    if (entry === undefined) return false;
    entry.explicit = false;
    if (entry.holders > 0) return true;
    this.#drop(id, entry);
    return false;
  }

  /** `key` (given to {@link add}) has no value any more: its value starts its grace period. */
  forget(key: string): void {
    this.#forgetKeyed(`\u0000${key}`);
  }

  /** Forgets every value at once, grace periods included. */
  clear(): void {
    this.#values.clear();
    this.#keyed.clear();
    this.#followed.clear();
    this.#retiring.clear();
    this.#nextExpiry = Number.POSITIVE_INFINITY;
    this.#matcher.clear();
  }

  /** Whether `value` is masked now. */
  has(value: string | Secret<SecretValue>): boolean {
    this.#expire();
    const revealed = reveal(value);
    return revealed !== undefined && this.#values.has(valueId(revealed));
  }

  /**
   * Masks every known value in a string, or in every string of an object: a log record, an
   * array, a `Map`/`Set`, an error with its message, stack, `cause` chain, an `AggregateError`'s
   * `errors` and its other own properties; numbers whose digits are a value; property names.
   *
   * Nothing is mutated. Objects that contain no value come back as the same reference; those
   * that do are copied (plain objects and errors keep their prototype, instances of other
   * classes become plain objects with their own enumerable properties, objects with `toJSON`
   * are replaced by their redacted JSON form when it held a value). Shared and cyclic
   * references are mirrored in the copy. Deeper than `maxDepth`, objects become `[Truncated]`.
   */
  redact<T>(value: T): T {
    if (typeof value === 'string') return this.#redactText(value, false) as T;
    this.#expire();
    return redactDeep(value, this.#deep) as T;
  }

  /**
   * Masks values in serialized JSON (a log line): like {@link redact} on a string, except that
   * a value holding `"`, `\` or control characters is only matched in its JSON-escaped form,
   * so a mask never cuts an escape sequence and the line stays valid JSON.
   */
  redactJson(text: string): string {
    return this.#redactText(text, true);
  }

  /**
   * A redactor of text arriving in pieces (see {@link ChunkRedactor}). It holds back the last
   * `longest value - 1` characters of what it has seen, or only the unfinished line when no
   * value spans lines, so output that ends with a newline passes without delay.
   */
  chunked(options: { json?: boolean | undefined } = {}): ChunkRedactor {
    const json = options.json ?? false;
    let tail = '';
    const redactor = this;
    return {
      get pending() {
        return tail.length;
      },
      push(chunk: string): string {
        const buffer = tail + chunk;
        const { emitted, rest } = redactor.#redactPrefix(buffer, json);
        tail = rest;
        return emitted;
      },
      flush(): string {
        const rest = tail;
        tail = '';
        return redactor.#redactText(rest, json);
      },
    };
  }

  /**
   * A provider that passes every call to `provider` and teaches this redactor the values that
   * go through it: values read become their key's current value (a new value read after a
   * rotation retires the old one), values written are masked before the write, deleted keys
   * retire their value. While the returned provider is watched, rotated keys it knew are
   * re-read at once. A value being written is masked while the write is in flight, and an
   * error the write rejects with is redacted before it reaches the caller. Which values are
   * masked follows {@link WrapOptions.secretKeys}. Use `provider` itself for its
   * adapter-specific methods.
   */
  wrap(provider: SecretProvider, options: WrapOptions = {}): RedactingProvider {
    return new RedactingProvider(provider, this.#sink, options.secretKeys ?? this.#secretKeys);
  }

  /**
   * Reads every key of `provider` (its `keys()`, so it needs the `list` capability) and masks
   * the values of the keys that hold secrets ({@link LearnOptions.secretKeys}). Keys that fail
   * to read are counted and reported in one `LEARN_FAILED` warning.
   * @throws what `provider.keys()` throws.
   */
  async learnFrom(provider: SecretProvider, options: LearnOptions = {}): Promise<LearnResult> {
    const keys = await provider.keys({ prefix: options.prefix, signal: options.signal });
    const secretKeys = options.secretKeys ?? this.#secretKeys;
    let learned = 0;
    let failed = 0;
    let firstCode: string | undefined;
    let next = 0;
    const worker = async () => {
      for (let key = keys[next++]; key !== undefined; key = keys[next++]) {
        if (options.signal?.aborted) return;
        try {
          const secret = await provider.get(key, { signal: options.signal });
          this.#sink.learn(provider.name, key, secret, secretKeys);
          learned++;
        } catch (error) {
          // Deleted between listing and reading: nothing to mask.
          if (isSecretError(error, 'NOT_FOUND')) continue;
          failed++;
          firstCode ??= isSecretError(error)
            ? error.code
            : error instanceof Error
              ? error.name
              : typeof error;
        }
      }
    };
    const concurrency = Math.max(1, Math.min(options.concurrency ?? 8, keys.length));
    await Promise.all(Array.from({ length: concurrency }, worker));
    options.signal?.throwIfAborted();
    if (failed > 0) {
      this.#warn({
        code: 'LEARN_FAILED',
        provider: provider.name,
        message: `could not read ${failed} of ${keys.length} secrets of provider "${provider.name}" (first failure: ${firstCode}); their values are not masked`,
      });
    }
    return { keys: keys.length, learned, failed };
  }

  /**
   * Follows every value of `provider`: reads them all (unless `prime: false`), then watches it,
   * reading added and rotated keys as they change and retiring the values of removed ones.
   * Providers without the `watch` capability are only primed.
   */
  attach(provider: SecretProvider, options: AttachOptions = {}): AttachHandle {
    const prefix = options.prefix;
    const secretKeys = options.secretKeys ?? this.#secretKeys;
    const inScope = (key: string) => prefix === undefined || key.startsWith(prefix);
    const emitter = createEmitter();
    emitter.on('rotated', (event: SecretEvents['rotated']) => {
      const keys = event.keys.filter(inScope);
      if (keys.length > 0) void this.#sink.refresh(provider, keys, secretKeys);
    });
    emitter.on('added', (event: SecretEvents['added']) => {
      if (inScope(event.key)) void this.#sink.refresh(provider, [event.key], secretKeys);
    });
    emitter.on('removed', (event: SecretEvents['removed']) => {
      if (inScope(event.key)) this.#sink.forget(provider.name, event.key);
    });
    let watch: WatchHandle | undefined;
    if (provider.capabilities.watch) {
      try {
        watch = provider.watch(emitter, { signal: options.signal });
      } catch {
        watch = undefined;
      }
    }
    let stopped = false;
    const empty: LearnResult = { keys: 0, learned: 0, failed: 0 };
    const ready = (async (): Promise<LearnResult> => {
      // Watch first, so a change made while priming is not missed.
      await watch?.ready.catch(() => undefined);
      if (options.prime === false || !provider.capabilities.list) return empty;
      try {
        return await this.learnFrom(provider, { ...options, secretKeys });
      } catch (error) {
        if (options.signal?.aborted) return empty;
        this.#warn({
          code: 'LEARN_FAILED',
          provider: provider.name,
          message: `could not list the secrets of provider "${provider.name}" (${isSecretError(error) ? error.code : error instanceof Error ? error.name : typeof error}); their values are not masked`,
        });
        return empty;
      }
    })();
    const stop = async () => {
      stopped = true;
      await watch?.stop();
    };
    return {
      ready,
      get stopped() {
        return stopped;
      },
      stop,
      [Symbol.asyncDispose]: stop,
    };
  }

  /** Counts of what is masked; never values. */
  stats(): RedactorStats {
    this.#expire();
    return {
      values: this.#values.size,
      retiring: this.#retiring.size,
      patterns: this.#matcher.size,
      maxPatternLength: this.#matcher.maxLength,
      ignoredShort: this.#ignoredShort,
    };
  }

  toJSON(): Record<string, unknown> {
    const { values, patterns } = this.stats();
    return { redactor: true, values, patterns };
  }

  [inspect.custom](): string {
    const { values, patterns } = this.stats();
    return `Redactor { values: ${values}, patterns: ${patterns} }`;
  }

  // ---- internals -----------------------------------------------------------------------------

  #redactText(text: string, json: boolean): string {
    if (this.#nextExpiry !== Number.POSITIVE_INFINITY) this.#expire();
    const found = this.#matcher.scan(text, json);
    return found === undefined ? text : this.#applyMask(text, found, found.length);
  }

  /** `text` with the first `count / 2` stretches of `found` replaced by the mask. */
  #applyMask(text: string, found: readonly number[], count: number): string {
    let out = '';
    let last = 0;
    for (let i = 0; i < count; i += 2) {
      out += text.slice(last, found[i]) + this.#mask;
      last = found[i + 1] ?? text.length;
    }
    return out + text.slice(last);
  }

  /** For streams: the redacted part of `buffer` that no later text can change, and the rest. */
  #redactPrefix(buffer: string, json: boolean): { emitted: string; rest: string } {
    if (this.#nextExpiry !== Number.POSITIVE_INFINITY) this.#expire();
    const longest = this.#matcher.maxLength;
    if (longest === 0) return { emitted: buffer, rest: '' };
    // Any value that starts before `cut` ends inside the buffer, so it has been seen whole.
    let cut = buffer.length - (longest - 1);
    if (!this.#matcher.spansLines) cut = Math.max(cut, buffer.lastIndexOf('\n') + 1);
    if (cut <= 0) {
      if (buffer.length <= MAX_STREAM_TAIL) return { emitted: '', rest: buffer };
      cut = buffer.length;
    }
    const found = this.#matcher.scan(buffer, json) ?? [];
    let count = 0;
    for (; count < found.length; count += 2) {
      const start = found[count] ?? 0;
      const end = found[count + 1] ?? 0;
      if (end <= cut) continue;
      if (start < cut) {
        // A masked stretch straddles the cut: hold it back whole, it may grow with the next piece.
        if (buffer.length - start <= MAX_STREAM_TAIL) cut = start;
        else {
          cut = end;
          count += 2;
        }
      }
      break;
    }
    return { emitted: this.#applyMask(buffer.slice(0, cut), found, count), rest: buffer.slice(cut) };
  }

  #retainExplicit(value: SecretValue): boolean {
    const entry = this.#retain(value, undefined, 'warn');
    if (entry === undefined) return false;
    entry.explicit = true;
    return true;
  }

  /** `value` becomes the current value of `scopedKey`; the previous one starts its grace period. */
  #learnKeyed(scopedKey: string, value: SecretValue, about: About, short: ShortValue): boolean {
    const id = valueId(value);
    const previous = this.#keyed.get(scopedKey);
    if (previous === id) return true;
    const entry = this.#retain(value, about, short);
    if (entry === undefined) {
      // A key rotated to a value too short to mask: still retire the old one.
      if (previous !== undefined) this.#forgetKeyed(scopedKey);
      return false;
    }
    entry.holders++;
    this.#keyed.set(scopedKey, id);
    if (previous !== undefined) this.#release(previous);
    return true;
  }

  /** The string fields of a key's JSON value, each in its own slot; slots of old fields retire. */
  #learnFields(scopedKey: string, fields: readonly [string, string][], about: About): void {
    const previous = this.#fieldSlots.get(scopedKey) ?? [];
    const slots = fields.map(([path]) => `${scopedKey}\u0000field:${path}`);
    for (const slot of previous) if (!slots.includes(slot)) this.#forgetKeyed(slot);
    fields.forEach(([, leaf], index) => {
      this.#learnKeyed(slots[index] as string, leaf, about, 'count');
    });
    if (slots.length > 0) this.#fieldSlots.set(scopedKey, slots);
    else this.#fieldSlots.delete(scopedKey);
  }

  #forgetKeyed(scopedKey: string): void {
    const previous = this.#keyed.get(scopedKey);
    if (previous === undefined) return;
    this.#keyed.delete(scopedKey);
    this.#release(previous);
  }

  /**
   * What masking a value of `key` in `provider` means: the value itself (for secret keys, and
   * for other keys unless it plainly is configuration), a password inside it, and whether a
   * value too short to mask is reported.
   */
  #plan(provider: string, key: string, value: SecretValue, secretKeys: SecretKeyPredicate): Plan {
    let secret: boolean | undefined;
    try {
      secret = secretKeys(key, provider);
    } catch {
      // A predicate that fails cannot say a key is harmless.
      secret = true;
    }
    const text = typeof value === 'string' ? value : undefined;
    const password = text === undefined ? undefined : urlPassword(text);
    const whole =
      secret === true || (secret !== false && (text === undefined || !looksLikeConfiguration(text)));
    // The fields of a masked JSON document are masked one by one too: `Secret.json()` hands them
    // out on their own, and code logs them on their own.
    const fields = whole && text !== undefined ? jsonLeaves(text) : [];
    return { whole, warn: secret === true, password, fields };
  }

  /** `value` becomes the current value of `key` in `provider`, masked as {@link #plan} says. */
  #learnFromProvider(
    provider: string,
    key: string,
    value: SecretValue,
    secretKeys: SecretKeyPredicate,
  ): void {
    const scopedKey = scoped(provider, key);
    this.#followed.add(scopedKey);
    const plan = this.#plan(provider, key, value, secretKeys);
    if (plan.password === undefined) this.#forgetKeyed(scopedKey + PASSWORD_PART);
    else
      this.#learnKeyed(scopedKey + PASSWORD_PART, plan.password, { key, provider, part: 'password' }, 'warn');
    this.#learnFields(scopedKey, plan.fields, { key, provider, part: 'field' });
    if (plan.whole) this.#learnKeyed(scopedKey, value, { key, provider }, plan.warn ? 'warn' : 'count');
    // A key whose new value is not masked still retires the old one.
    else this.#forgetKeyed(scopedKey);
  }

  /** Masks what {@link #plan} masks of `value` until the returned function is called. */
  #hold(provider: string, key: string, value: SecretValue, secretKeys: SecretKeyPredicate): () => void {
    const plan = this.#plan(provider, key, value, secretKeys);
    const held: string[] = [];
    for (const item of [
      plan.whole ? value : undefined,
      plan.password,
      ...plan.fields.map(([, leaf]) => leaf),
    ]) {
      if (item === undefined) continue;
      const entry = this.#retain(item, undefined, 'quiet');
      if (entry === undefined) continue;
      entry.holders++;
      held.push(valueId(item));
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // Values no key holds now start their grace period.
      for (const id of held) this.#release(id);
    };
  }

  /** Masks `value` for the grace period from now (or longer if it is held). */
  #learnTransient(value: SecretValue): void {
    const entry = this.#retain(value, undefined, 'quiet');
    if (entry === undefined || entry.explicit || entry.holders > 0) return;
    this.#scheduleExpiry(valueId(value), entry);
  }

  /** The entry of `value`, created (and its forms registered) if new; cancels a retirement. */
  #retain(value: SecretValue, about: About | undefined, short: ShortValue): ValueEntry | undefined {
    const id = valueId(value);
    let entry = this.#values.get(id);
    if (entry !== undefined) {
      if (entry.expiresAt !== Number.POSITIVE_INFINITY) {
        entry.expiresAt = Number.POSITIVE_INFINITY;
        this.#retiring.delete(id);
      }
      return entry;
    }
    const length = typeof value === 'string' ? value.length : value.byteLength;
    if (length < this.#minLength) {
      if (length > 0 && short === 'warn') this.#warnShort(value, about);
      else if (length > 0 && short === 'count') this.#ignoredShort++;
      return undefined;
    }
    const forms =
      typeof value === 'string'
        ? textForms(value, this.#encodings, this.#minLength)
        : bytesForms(value, this.#encodings, this.#minLength);
    let index = 0;
    for (const form of forms.forms) this.#matcher.add(form, index++ < forms.verbatimOnly);
    entry = { forms, explicit: false, holders: 0, expiresAt: Number.POSITIVE_INFINITY };
    this.#values.set(id, entry);
    return entry;
  }

  #release(id: string): void {
    const entry = this.#values.get(id);
    if (entry === undefined) return;
    entry.holders = Math.max(0, entry.holders - 1);
    if (entry.holders > 0 || entry.explicit) return;
    this.#scheduleExpiry(id, entry);
  }

  #scheduleExpiry(id: string, entry: ValueEntry): void {
    if (this.#grace === 0) {
      this.#drop(id, entry);
      return;
    }
    entry.expiresAt = this.#now() + this.#grace;
    this.#retiring.set(id, entry);
    if (entry.expiresAt < this.#nextExpiry) this.#nextExpiry = entry.expiresAt;
  }

  #drop(id: string, entry: ValueEntry): void {
    for (const form of entry.forms.forms) this.#matcher.remove(form);
    this.#values.delete(id);
    this.#retiring.delete(id);
  }

  /** Drops values whose grace period is over. Cheap when none is retiring. */
  #expire(): void {
    if (this.#nextExpiry === Number.POSITIVE_INFINITY) return;
    const now = this.#now();
    if (now < this.#nextExpiry) return;
    let next = Number.POSITIVE_INFINITY;
    for (const [id, entry] of this.#retiring) {
      if (entry.expiresAt <= now) this.#drop(id, entry);
      else if (entry.expiresAt < next) next = entry.expiresAt;
    }
    this.#nextExpiry = next;
  }

  #warnShort(value: SecretValue, about: About | undefined): void {
    this.#ignoredShort++;
    // Warn once per key, or once per value for values without a key (by fingerprint, so the
    // short values themselves are not kept).
    const tag =
      about === undefined
        ? `v:${fingerprint(value)}`
        : `k:${about.provider ?? ''}\u0000${about.key}\u0000${about.part ?? ''}`;
    if (this.#warnedShort.has(tag)) return;
    this.#warnedShort.add(tag);
    const what =
      about === undefined
        ? 'a secret value'
        : `${about.part === 'password' ? 'the password in the URL' : about.part === 'field' ? 'a field of the value' : 'the value'} of "${about.key}"${about.provider === undefined ? '' : ` (provider "${about.provider}")`}`;
    this.#warn({
      code: 'SHORT_SECRET',
      key: about?.key,
      provider: about?.provider,
      message: `${what} is shorter than the redactor's minimum of ${this.#minLength} characters and will not be masked in logs`,
    });
  }

  #warn(warning: RedactorWarning): void {
    try {
      if (this.#onWarning !== undefined) this.#onWarning(warning);
      else process.emitWarning(warning.message, { code: `SECRET_PROVIDER_${warning.code}` });
    } catch {
      // A throwing warning handler must not break the logging path that triggered it.
    }
  }

  #createSink(): ValueSink {
    const sink: ValueSink = {
      learn: (provider, key, value, secretKeys = this.#secretKeys) => {
        const revealed = reveal(value);
        if (revealed !== undefined) this.#learnFromProvider(provider, key, revealed, secretKeys);
      },
      learnTransient: (value) => {
        const revealed = reveal(value);
        if (revealed !== undefined) this.#learnTransient(revealed);
      },
      hold: (provider, key, value, secretKeys = this.#secretKeys) => {
        const revealed = reveal(value);
        return revealed === undefined ? () => {} : this.#hold(provider, key, revealed, secretKeys);
      },
      redact: (value) => this.redact(value),
      forget: (provider, key) => {
        const scopedKey = scoped(provider, key);
        this.#followed.delete(scopedKey);
        this.#forgetKeyed(scopedKey);
        this.#forgetKeyed(scopedKey + PASSWORD_PART);
        this.#learnFields(scopedKey, [], { key, provider });
      },
      knows: (provider, key) => this.#followed.has(scoped(provider, key)),
      refresh: async (provider, keys, secretKeys = this.#secretKeys) => {
        await Promise.all(
          keys.map(async (key) => {
            try {
              sink.learn(provider.name, key, await provider.get(key), secretKeys);
            } catch (error) {
              if (isSecretError(error, 'NOT_FOUND')) {
                sink.forget(provider.name, key);
                return;
              }
              this.#warn({
                code: 'REFRESH_FAILED',
                key,
                provider: provider.name,
                message: `could not read the new value of "${key}" (provider "${provider.name}") after it changed (${isSecretError(error) ? error.code : error instanceof Error ? error.name : typeof error}); it is not masked until read`,
              });
            }
          }),
        );
      },
    };
    return sink;
  }
}

/**
 * A {@link Redactor}: masks known secret values and their encodings in log text and records.
 *
 * @example
 * ```ts
 * const redactor = createRedactor({ values: ['s3cr3t-t0ken'] });
 * redactor.redact('Authorization: Bearer s3cr3t-t0ken'); // 'Authorization: Bearer [REDACTED]'
 * ```
 */
export function createRedactor(options: RedactorOptions = {}): Redactor {
  return new Redactor(options);
}

/** A key a value belongs to, for warnings; `part` when the value is a part of the key's value. */
interface About {
  readonly key: string;
  readonly provider?: string | undefined;
  readonly part?: 'password' | 'field' | undefined;
}

/** What becomes of a value too short to mask: reported, only counted, or neither. */
type ShortValue = 'warn' | 'count' | 'quiet';

/** How a value read from a provider is masked (see `Redactor.#plan`). */
interface Plan {
  readonly whole: boolean;
  readonly warn: boolean;
  readonly password: string | undefined;
  /** Slot and value of each string field, when the value is a JSON object or array. */
  readonly fields: readonly [string, string][];
}

/** Most fields of one JSON value masked on their own; a bound against pathological documents. */
const MAX_JSON_FIELDS = 256;

/**
 * The string fields of `text` when it is a JSON object or array, found by the redactor's own deep
 * walk. That walk also offers the digits of numbers; strings of digits alone are left out, so a
 * port in a JSON secret does not mask every such number in the logs.
 */
function jsonLeaves(text: string): [string, string][] {
  const first = text.trimStart()[0];
  if (first !== '{' && first !== '[') return [];
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    return [];
  }
  const leaves: [string, string][] = [];
  redactDeep(document, {
    redactString: (leaf) => {
      if (leaves.length < MAX_JSON_FIELDS && !/^[-+.\deE]*$/.test(leaf))
        leaves.push([String(leaves.length), leaf]);
      return leaf;
    },
  });
  return leaves;
}

/** Appended to a key's scoped name for the password inside its value. */
const PASSWORD_PART = '\u0000password';

function scoped(provider: string, key: string): string {
  return `${provider}\u0000${key}`;
}

/** The value inside, or `undefined` for a disposed secret or something that is not a value. */
function reveal(value: unknown): SecretValue | undefined {
  if (typeof value === 'string') return value;
  if (Secret.isSecret(value)) {
    if (value.disposed) return undefined;
    // A secret derived by `map`/`json` may hold any type; only strings and bytes are values here.
    const inner: unknown = value.reveal();
    return typeof inner === 'string' || inner instanceof Uint8Array ? inner : undefined;
  }
  return undefined;
}

function valueId(value: SecretValue): string {
  return typeof value === 'string'
    ? value
    : `\u0000bytes:${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64')}`;
}
