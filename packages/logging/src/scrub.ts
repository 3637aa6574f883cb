import { REDACTED, type Redactor, Secret } from '@secret-provider/core';

/**
 * Property names whose values are masked wherever they appear in a scrubbed error, compared
 * after lower-casing and dropping everything but letters and digits, as substrings (so
 * `x-api-key`, `apiKey` and `API_KEY` all match `apikey`).
 */
export const DEFAULT_SENSITIVE_KEYS: readonly string[] = Object.freeze([
  'authorization',
  'cookie',
  'password',
  'passwd',
  'secret',
  'token',
  'apikey',
  'credential',
  'privatekey',
  'signature',
  'sessionid',
]);

/** Options of {@link scrubError} and {@link scrubText}. */
export interface ScrubOptions {
  /** Masks the values this redactor knows in every string. */
  readonly redactor?: Redactor | undefined;
  /** Property names to mask (see {@link DEFAULT_SENSITIVE_KEYS}, which this replaces). */
  readonly sensitiveKeys?: readonly string[] | undefined;
  /**
   * Also mask credentials recognisable by their shape, known to the redactor or not: bearer
   * tokens, `Authorization` header values, passwords in URLs, sensitive query parameters and
   * JSON fields. @default true
   */
  readonly patterns?: boolean | undefined;
  /** Deepest nesting kept; deeper objects become `[Truncated]`. @default 8 */
  readonly maxDepth?: number | undefined;
  /** @default '[REDACTED]' */
  readonly mask?: string | undefined;
}

const SENSITIVE_WORDS =
  'password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|signature|sig|credential|session[_-]?id|auth|code';
/** A credential's shape: the regular expression, and where the mask goes. */
type Shape = readonly [RegExp, (mask: string, before: string, after: string | undefined) => string];
const SHAPES: readonly Shape[] = [
  // Authorization: Bearer abc / authorization="Basic abc" / "authorization":"abc"
  [
    /(\bauthorization["']?\s*[:=]\s*["']?(?:(?:bearer|basic|digest|token|negotiate)\s+)?)[^\s"',;]+/gi,
    (mask, before) => before + mask,
  ],
  [/(\bbearer\s+)[A-Za-z0-9\-._~+/]{8,}=*/gi, (mask, before) => before + mask],
  // scheme://user:password@host
  [
    /(\b[a-z][a-z0-9+.-]*:\/\/[^\s/:@]*:)[^\s/@]+(@)/gi,
    (mask, before, after) => before + mask + (after ?? ''),
  ],
  // ?token=abc&sig=abc
  [
    new RegExp(`([?&;][^=&\\s#]*?(?:${SENSITIVE_WORDS})[^=&\\s#]*=)[^&#\\s"']+`, 'gi'),
    (mask, before) => before + mask,
  ],
  // "password": "abc"
  [
    new RegExp(
      `("[^"\\\\]*?(?:${SENSITIVE_WORDS}|authorization|cookie)[^"\\\\]*"\\s*:\\s*")(?:[^"\\\\]|\\\\.)*(")`,
      'gi',
    ),
    (mask, before, after) => before + mask + (after ?? ''),
  ],
];

/**
 * Masks the credentials in `text` that the redactor knows (by value) and, unless
 * `patterns: false`, those recognisable by their shape (bearer tokens, `Authorization` values,
 * URL passwords, sensitive query parameters and JSON fields).
 */
export function scrubText(text: string, options: ScrubOptions = {}): string {
  let out = options.redactor === undefined ? text : options.redactor.redact(text);
  if (options.patterns !== false) {
    const mask = options.mask ?? REDACTED;
    for (const [shape, place] of SHAPES) {
      out = out.replace(shape, (_match: string, before: string, after: unknown) =>
        place(mask, before, typeof after === 'string' ? after : undefined),
      );
    }
  }
  return out;
}

/**
 * A copy of an error (or any value) that is safe to log: every string scrubbed with
 * {@link scrubText}; properties with sensitive names masked; `cause` chains and the `errors`
 * of an `AggregateError` scrubbed too; buffers replaced by their size; instances of classes
 * other than errors, arrays, maps and plain objects (sockets, agents, HTTP requests that
 * third-party clients attach to their errors) replaced by their class name. Copies of errors
 * keep their prototype, so `instanceof`, `name` and logger error serializers still work.
 * The input is not modified; cycles are preserved in the copy.
 *
 * @example
 * ```ts
 * try { await client.send(request); }
 * catch (error) { logger.error({ err: scrubError(error, { redactor }) }, 'upload failed'); }
 * ```
 */
export function scrubError<T>(error: T, options: ScrubOptions = {}): T {
  return new Scrubber(options).scrub(error, 0) as T;
}

class Scrubber {
  readonly #options: ScrubOptions;
  readonly #keys: readonly string[];
  readonly #mask: string;
  readonly #maxDepth: number;
  readonly #seen = new Map<object, unknown>();

  constructor(options: ScrubOptions) {
    this.#options = options;
    this.#keys = (options.sensitiveKeys ?? DEFAULT_SENSITIVE_KEYS).map(normalizeKey);
    this.#mask = options.mask ?? REDACTED;
    this.#maxDepth = options.maxDepth ?? 8;
  }

  scrub(value: unknown, depth: number): unknown {
    switch (typeof value) {
      case 'string':
        return scrubText(value, this.#options);
      case 'number':
      case 'bigint':
        return this.#options.redactor === undefined ? value : this.#options.redactor.redact(value);
      case 'object':
        return value === null ? value : this.#scrubObject(value, depth);
      default:
        return value;
    }
  }

  #scrubObject(value: object, depth: number): unknown {
    const seen = this.#seen.get(value);
    if (seen !== undefined) return seen;
    if (Secret.isSecret(value) || value instanceof Date) return value;
    if (value instanceof URL) return scrubText(value.href, this.#options);
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
      return `[${value.constructor.name} ${value.byteLength} bytes]`;
    }
    if (depth >= this.#maxDepth) return '[Truncated]';
    if (Array.isArray(value)) {
      const out: unknown[] = [];
      this.#seen.set(value, out);
      for (const item of value) out.push(this.scrub(item, depth + 1));
      return out;
    }
    if (value instanceof Map) {
      const out = new Map<unknown, unknown>();
      this.#seen.set(value, out);
      for (const [key, item] of value) {
        out.set(
          key,
          typeof key === 'string' && this.#isSensitive(key) ? this.#mask : this.scrub(item, depth + 1),
        );
      }
      return out;
    }
    const isError = value instanceof Error || Object.prototype.toString.call(value) === '[object Error]';
    const proto: unknown = Object.getPrototypeOf(value);
    if (!isError && proto !== Object.prototype && proto !== null) {
      const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
      return `[${typeof name === 'string' && name !== '' ? name : 'Object'}]`;
    }
    const out = Object.create(proto as object | null) as Record<PropertyKey, unknown>;
    this.#seen.set(value, out);
    // Errors: every own property (message, stack, cause, errors are not enumerable).
    const keys = isError ? Reflect.ownKeys(value) : ownEnumerableKeys(value);
    for (const key of keys) {
      const descriptor = Object.getOwnPropertyDescriptor(value, key);
      if (descriptor === undefined) continue;
      let item: unknown;
      try {
        item = 'value' in descriptor ? descriptor.value : (value as Record<PropertyKey, unknown>)[key];
      } catch {
        item = '[Unreadable]';
      }
      const scrubbed =
        typeof key === 'string' && this.#isSensitive(key) && item !== undefined
          ? this.#mask
          : this.scrub(item, depth + 1);
      Object.defineProperty(out, key, {
        value: scrubbed,
        writable: true,
        enumerable: descriptor.enumerable ?? true,
        configurable: true,
      });
    }
    return out;
  }

  #isSensitive(key: string): boolean {
    const normalized = normalizeKey(key);
    return this.#keys.some((word) => normalized.includes(word));
  }
}

function normalizeKey(key: string): string {
  return key.toLowerCase().replace(/[^a-z0-9]/g, '');
}

function ownEnumerableKeys(value: object): PropertyKey[] {
  const keys: PropertyKey[] = Object.keys(value);
  for (const symbol of Object.getOwnPropertySymbols(value)) {
    if (Object.prototype.propertyIsEnumerable.call(value, symbol)) keys.push(symbol);
  }
  return keys;
}

/**
 * Replaces errors in a record by scrubbed copies, copying only the containers on the way;
 * records without errors come back unchanged.
 */
export function scrubErrorsIn(value: unknown, options: ScrubOptions, depth: number): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (value instanceof Error) return scrubError(value, options);
  if (depth >= 3) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const scrubbed = scrubErrorsIn(item, options, depth + 1);
      if (scrubbed !== item) out ??= value.slice();
      if (out !== undefined) out[i] = scrubbed;
    }
    return out ?? value;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  let out: Record<string, unknown> | undefined;
  for (const key of Object.keys(value)) {
    const item = (value as Record<string, unknown>)[key];
    const scrubbed = scrubErrorsIn(item, options, depth + 1);
    if (scrubbed !== item) {
      out ??= Object.assign(Object.create(proto as object | null) as Record<string, unknown>, value);
      out[key] = scrubbed;
    }
  }
  return out ?? value;
}
