import { REDACTED, type Redactor } from '@secret-provider/core';
import { type DeepRedactOptions, redactDeep } from '@secret-provider/core/redaction';

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
  /** Deepest nesting kept (counted from the error); deeper objects become `[Truncated]`. @default 8 */
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
 * other than errors, arrays, maps, sets and plain objects (sockets, agents, HTTP requests that
 * third-party clients attach to their errors) replaced by their class name. Copies of errors
 * keep their prototype, so `instanceof`, `name` and logger error serializers still work, and
 * exotic errors (`DOMException`, classes whose getters read private fields) stay printable.
 * The input is not modified; cycles are preserved in the copy; what holds nothing to scrub
 * comes back as it is.
 *
 * The walk is the redactor's own (`redactDeep` of `@secret-provider/core/redaction`), with
 * these rules.
 *
 * @example
 * ```ts
 * try { await client.send(request); }
 * catch (error) { logger.error({ err: scrubError(error, { redactor }) }, 'upload failed'); }
 * ```
 */
export function scrubError<T>(error: T, options: ScrubOptions = {}): T {
  return redactDeep(error, scrubRules(options)) as T;
}

/** The rules of {@link scrubError} for the deep walk. */
function scrubRules(options: ScrubOptions): DeepRedactOptions {
  const words = (options.sensitiveKeys ?? DEFAULT_SENSITIVE_KEYS).map(normalizeKey);
  return {
    redactString: (text) => scrubText(text, options),
    maxDepth: options.maxDepth ?? 8,
    mask: options.mask ?? REDACTED,
    sensitiveKey: (key) => {
      const normalized = normalizeKey(key);
      return words.some((word) => normalized.includes(word));
    },
    instance: (value) => {
      const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
      return `[${typeof name === 'string' && name !== '' ? name : 'Object'}]`;
    },
    binary: (value) => `[${value.constructor.name} ${value.byteLength} bytes]`,
  };
}

function normalizeKey(key: string): string {
  return key.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/**
 * Rules of the deep walk that replace the errors in a log record (top level and up to three
 * levels down) by their {@link scrubError} copies, copying only the containers on the way and
 * leaving everything else as it is; records without errors come back unchanged.
 */
export function errorsInRecords(options: ScrubOptions): DeepRedactOptions {
  return {
    // Outside errors nothing is masked: the redactor does that on the finished line.
    redactString: (text) => text,
    minLength: Number.POSITIVE_INFINITY,
    maxDepth: 3,
    beyondDepth: 'keep',
    instance: (value) => value,
    errors: scrubRules(options),
  };
}
