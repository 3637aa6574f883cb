/**
 * The error taxonomy. Every failure a provider reports is a {@link SecretError} with a stable
 * `code`; adapters map their native errors into it. Messages name providers, keys and operations,
 * never values, and foreign causes are replaced by a {@link SanitizedCause} that keeps only fields
 * known to be safe (a third-party error can carry a token or a request body).
 */

/** Stable error codes. */
export type SecretErrorCode =
  | 'NOT_FOUND'
  | 'ACCESS_DENIED'
  | 'UNAVAILABLE'
  | 'TIMEOUT'
  | 'RATE_LIMITED'
  | 'CONFLICT'
  | 'READ_ONLY'
  | 'UNSUPPORTED'
  | 'INVALID_KEY'
  | 'INVALID_VALUE'
  | 'INVALID_CONFIG'
  | 'CLOSED'
  | 'DISPOSED'
  | 'UNKNOWN';

/** What a provider was doing when it failed. */
export type SecretOperation =
  | 'get'
  | 'set'
  | 'delete'
  | 'keys'
  | 'metadata'
  | 'watch'
  | 'close'
  | 'refresh'
  | 'auth'
  | 'renew'
  | 'revoke'
  | 'has';

const RETRYABLE_BY_DEFAULT: ReadonlySet<SecretErrorCode> = new Set([
  'UNAVAILABLE',
  'TIMEOUT',
  'RATE_LIMITED',
]);
const ERROR_BRAND = Symbol.for('secret-provider.error');

/** Details every {@link SecretError} may carry. */
export interface SecretErrorDetails {
  /** Name of the provider that failed. */
  provider?: string | undefined;
  /** The key involved (a name, never a value). */
  key?: string | undefined;
  operation?: SecretOperation | undefined;
  /** Whether trying again may succeed. Defaults by code: unavailable, timeout, rate-limited. */
  retryable?: boolean | undefined;
  /** For `RATE_LIMITED`: how long the backend asked to wait, when it said. */
  retryAfterMs?: number | undefined;
  /** HTTP status or similar, when a backend answered. */
  status?: number | undefined;
  /** The underlying failure; foreign errors are sanitized (see {@link sanitizeCause}). */
  cause?: unknown;
}

/**
 * Base class of every error this SDK raises. Use {@link isSecretError} rather than `instanceof`
 * when two copies of this package may coexist (the subclasses' `instanceof` also works across
 * copies, through a `Symbol.for` brand).
 */
export class SecretError extends Error {
  readonly code: SecretErrorCode;
  readonly provider: string | undefined;
  readonly key: string | undefined;
  readonly operation: SecretOperation | undefined;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly status: number | undefined;

  constructor(code: SecretErrorCode, message: string, details: SecretErrorDetails = {}) {
    // A not-found is an outcome, not a defect: chains and caches meet it on every miss, and the
    // stack trace would cost ten times the lookup. It is created without one.
    const stackTraceLimit = Error.stackTraceLimit;
    if (code === 'NOT_FOUND') Error.stackTraceLimit = 0;
    try {
      super(message, details.cause === undefined ? undefined : { cause: sanitizeCause(details.cause) });
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
    this.name = 'SecretError';
    this.code = code;
    this.provider = details.provider;
    this.key = details.key;
    this.operation = details.operation;
    this.retryable = details.retryable ?? RETRYABLE_BY_DEFAULT.has(code);
    this.retryAfterMs = details.retryAfterMs;
    this.status = details.status;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore-start lint/complexity/noThisInStatic: `this` is the class `instanceof` was asked about
    // A subclass defined elsewhere (an adapter's own error class) is checked the ordinary way.
    if (this !== SecretError && !Object.hasOwn(this.prototype, 'expectedCode')) {
      return Function.prototype[Symbol.hasInstance].call(this, value);
    }
    if (!isSecretError(value)) return false;
    // The code classes of this module carry their code on their prototype: matching it makes
    // `instanceof` work across duplicate copies of the package.
    const code = (this.prototype as { expectedCode?: SecretErrorCode }).expectedCode;
    // biome-ignore-end lint/complexity/noThisInStatic: `this` is the class `instanceof` was asked about
    return code === undefined || value.code === code;
  }

  /** A structured, value-free view for loggers. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      provider: this.provider,
      key: this.key,
      operation: this.operation,
      retryable: this.retryable,
      retryAfterMs: this.retryAfterMs,
      status: this.status,
      cause: this.cause instanceof Error ? (this.cause as { toJSON?: () => unknown }).toJSON?.() : undefined,
    };
  }
}

Object.defineProperty(SecretError.prototype, ERROR_BRAND, { value: true });

/** True for an error of this SDK from any copy of the package, optionally of one code. */
export function isSecretError(value: unknown): value is SecretError;
export function isSecretError<C extends SecretErrorCode>(value: unknown, code: C): value is SecretErrorOf<C>;
export function isSecretError(value: unknown, code?: SecretErrorCode): value is SecretError;
export function isSecretError(value: unknown, code?: SecretErrorCode): value is SecretError {
  if (typeof value !== 'object' || value === null) return false;
  if ((value as Record<symbol, unknown>)[ERROR_BRAND] !== true) return false;
  return code === undefined || (value as SecretError).code === code;
}

type Details = Omit<SecretErrorDetails, 'retryable'> & { retryable?: boolean | undefined };

function describe(details: Details, what: string): string {
  const key = details.key === undefined ? '' : ` "${details.key}"`;
  const provider = details.provider === undefined ? '' : ` (provider "${details.provider}")`;
  return `${what}${key}${provider}`;
}

/**
 * Marks `Class` as the class of `code`: its prototype carries the code, which is what makes
 * `instanceof` work across duplicate copies of this package.
 */
function brand(Class: abstract new (...args: never[]) => SecretError, code: SecretErrorCode): void {
  Object.defineProperty(Class.prototype, 'expectedCode', { value: code });
}

/** The key does not exist. Never a failure in disguise: a chain falls through only on this. */
export class SecretNotFoundError extends SecretError {
  declare readonly code: 'NOT_FOUND';
  constructor(details: Details = {}, message?: string) {
    super('NOT_FOUND', message ?? describe(details, 'secret not found:'), details);
    this.name = 'SecretNotFoundError';
  }
}
brand(SecretNotFoundError, 'NOT_FOUND');

/** The backend refused the credentials or the permission. */
export class AccessDeniedError extends SecretError {
  declare readonly code: 'ACCESS_DENIED';
  constructor(details: Details = {}, message?: string) {
    super('ACCESS_DENIED', message ?? describe(details, 'access denied:'), details);
    this.name = 'AccessDeniedError';
  }
}
brand(AccessDeniedError, 'ACCESS_DENIED');

/** The backend could not be reached or is not serving (sealed, standby, 5xx, network, an answer it could not understand). */
export class ProviderUnavailableError extends SecretError {
  declare readonly code: 'UNAVAILABLE';
  constructor(details: Details = {}, message?: string) {
    super('UNAVAILABLE', message ?? describe(details, 'secret backend unavailable:'), details);
    this.name = 'ProviderUnavailableError';
  }
}
brand(ProviderUnavailableError, 'UNAVAILABLE');

/** An operation took longer than allowed. */
export class SecretTimeoutError extends SecretError {
  declare readonly code: 'TIMEOUT';
  constructor(details: Details = {}, message?: string) {
    super('TIMEOUT', message ?? describe(details, 'timed out:'), details);
    this.name = 'SecretTimeoutError';
  }
}
brand(SecretTimeoutError, 'TIMEOUT');

/** The backend throttled the caller; `retryAfterMs` says how long it asked to wait, when it did. */
export class RateLimitedError extends SecretError {
  declare readonly code: 'RATE_LIMITED';
  constructor(details: Details = {}, message?: string) {
    super('RATE_LIMITED', message ?? describe(details, 'rate limited:'), details);
    this.name = 'RateLimitedError';
  }
}
brand(RateLimitedError, 'RATE_LIMITED');

/** A write lost a race (check-and-set mismatch) or the backend state forbids it. */
export class SecretConflictError extends SecretError {
  declare readonly code: 'CONFLICT';
  constructor(details: Details = {}, message?: string) {
    super('CONFLICT', message ?? describe(details, 'conflict:'), details);
    this.name = 'SecretConflictError';
  }
}
brand(SecretConflictError, 'CONFLICT');

/** The provider does not accept writes. */
export class ReadOnlyError extends SecretError {
  declare readonly code: 'READ_ONLY';
  constructor(details: Details = {}, message?: string) {
    super('READ_ONLY', message ?? describe(details, 'provider is read-only, cannot write'), details);
    this.name = 'ReadOnlyError';
  }
}
brand(ReadOnlyError, 'READ_ONLY');

/** The provider does not offer this capability (for example `delete`) or option (for example `ifVersion`). */
export class UnsupportedOperationError extends SecretError {
  declare readonly code: 'UNSUPPORTED';
  constructor(details: Details = {}, message?: string) {
    super(
      'UNSUPPORTED',
      message ?? describe(details, `operation ${details.operation ?? ''} not supported:`),
      details,
    );
    this.name = 'UnsupportedOperationError';
  }
}
brand(UnsupportedOperationError, 'UNSUPPORTED');

/** A key is empty, too long, has a NUL or otherwise cannot name a secret here. */
export class InvalidKeyError extends SecretError {
  declare readonly code: 'INVALID_KEY';
  constructor(details: Details = {}, message?: string) {
    super('INVALID_KEY', message ?? describe(details, 'invalid key'), details);
    this.name = 'InvalidKeyError';
  }
}
brand(InvalidKeyError, 'INVALID_KEY');

/** A value cannot be stored (wrong type, empty where not allowed); the value is never quoted. */
export class InvalidValueError extends SecretError {
  declare readonly code: 'INVALID_VALUE';
  constructor(details: Details = {}, message?: string) {
    super('INVALID_VALUE', message ?? describe(details, 'invalid value for'), details);
    this.name = 'InvalidValueError';
  }
}
brand(InvalidValueError, 'INVALID_VALUE');

/** Options or configuration are wrong. */
export class InvalidConfigError extends SecretError {
  declare readonly code: 'INVALID_CONFIG';
  constructor(details: Details = {}, message?: string) {
    super('INVALID_CONFIG', message ?? describe(details, 'invalid configuration'), details);
    this.name = 'InvalidConfigError';
  }
}
brand(InvalidConfigError, 'INVALID_CONFIG');

/** The provider was closed. */
export class ProviderClosedError extends SecretError {
  declare readonly code: 'CLOSED';
  constructor(details: Details = {}, message?: string) {
    super(
      'CLOSED',
      message ?? describe(details, `provider is closed, cannot ${details.operation ?? 'continue'}`),
      details,
    );
    this.name = 'ProviderClosedError';
  }
}
brand(ProviderClosedError, 'CLOSED');

/** The class of each code that has one; `isSecretError(e, code)` narrows to it. */
export interface SecretErrorClasses {
  NOT_FOUND: SecretNotFoundError;
  ACCESS_DENIED: AccessDeniedError;
  UNAVAILABLE: ProviderUnavailableError;
  TIMEOUT: SecretTimeoutError;
  RATE_LIMITED: RateLimitedError;
  CONFLICT: SecretConflictError;
  READ_ONLY: ReadOnlyError;
  UNSUPPORTED: UnsupportedOperationError;
  INVALID_KEY: InvalidKeyError;
  INVALID_VALUE: InvalidValueError;
  INVALID_CONFIG: InvalidConfigError;
  CLOSED: ProviderClosedError;
}

/** The error type `isSecretError(e, code)` narrows to. */
export type SecretErrorOf<C extends SecretErrorCode> = C extends keyof SecretErrorClasses
  ? SecretErrorClasses[C]
  : SecretError & { readonly code: C };

/** An error class name as code writes it (`AxiosError`, `RestError`), nothing a server could phrase. */
const SAFE_NAME = /^[A-Za-z_$][\w$]{0,63}$/;
/** A diagnostic code as libraries and Node use them (`ECONNRESET`, `ERR_TLS_CERT_ALTNAME_INVALID`, `404`). */
const SAFE_CODE = /^[A-Za-z0-9_.-]{1,64}$/;
/** The system calls whose name Node puts in a system error, as a word. */
const SAFE_SYSCALL = /^[a-z_]{1,32}$/;
const IP_ADDRESS = /^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F:]{2,45})$/;
/** A stack frame as V8 writes it: a function and a location in a file, a module or native code. */
const STACK_FRAME =
  /^ {4}at (?:(?:async |new )?[\w$.<>[\] ]{1,200} \()?(?:file:\/\/|node:|\/|[A-Za-z]:\\|native|<anonymous>)[^()\n]{0,300}\)?$/;

/**
 * What remains of a foreign error after sanitizing: its class name, its diagnostic `code`,
 * `status` and `syscall`, and its stack frames, each kept only when it has the shape code gives
 * it. The message is never the original's (a foreign error's text is untrusted: Node puts file
 * paths in system errors, `JSON.parse` quotes its input, servers phrase theirs); it is rebuilt
 * from the kept fields, or is a message the adapter has checked (`safeMessage`). Third-party
 * errors routinely carry tokens (axios `config.headers`), request bodies (Azure
 * `RestError.request`) or the parsed input; none of those properties is copied.
 */
export class SanitizedCause extends Error {
  readonly originalName: string;
  readonly code: string | undefined;
  readonly status: number | undefined;
  readonly syscall: string | undefined;

  constructor(original: unknown, safeMessage?: string) {
    const fields = readable(original);
    const name = typeof fields.name === 'string' && SAFE_NAME.test(fields.name) ? fields.name : undefined;
    const originalName = name ?? (original instanceof Error ? 'Error' : typeof original);
    const syscall =
      typeof fields.syscall === 'string' && SAFE_SYSCALL.test(fields.syscall) ? fields.syscall : undefined;
    const rawCode = typeof fields.code === 'number' ? String(fields.code) : fields.code;
    const code = typeof rawCode === 'string' && SAFE_CODE.test(rawCode) ? rawCode : undefined;
    const rawStatus = fields.statusCode ?? fields.status;
    const status =
      typeof rawStatus === 'number' && Number.isInteger(rawStatus) && rawStatus >= 100 && rawStatus <= 999
        ? rawStatus
        : undefined;
    // Node's network errors name the peer; an IP address and a port are kept, a path never.
    const address =
      syscall !== undefined && typeof fields.address === 'string' && IP_ADDRESS.test(fields.address)
        ? `${fields.address}${typeof fields.port === 'number' && Number.isInteger(fields.port) ? `:${fields.port}` : ''}`
        : undefined;
    const message =
      safeMessage ??
      (syscall !== undefined
        ? [syscall, code, address].filter((part) => part !== undefined).join(' ')
        : `${originalName}${code === undefined ? '' : ` ${code}`} (message withheld: may contain secret data)`);
    super(message);
    this.name = 'SanitizedCause';
    this.originalName = originalName;
    this.code = code;
    this.syscall = syscall;
    this.status = status;
    this.stack = [`${this.name}: ${message}`, ...stackFrames(fields)].join('\n');
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      originalName: this.originalName,
      message: this.message,
      code: this.code,
      status: this.status,
    };
  }
}

/** The fields of a foreign value, read without running its getters' failures into the caller. */
function readable(original: unknown): Record<string, unknown> {
  if (typeof original !== 'object' || original === null) return {};
  const fields: Record<string, unknown> = {};
  for (const key of [
    'name',
    'syscall',
    'code',
    'statusCode',
    'status',
    'address',
    'port',
    'stack',
    'message',
  ]) {
    try {
      fields[key] = (original as Record<string, unknown>)[key];
    } catch {
      // A throwing getter gives nothing.
    }
  }
  return fields;
}

/**
 * The stack frames of a foreign error: the lines after its message (a message may hold lines
 * that look like frames), each kept only when it has the exact shape of a V8 frame.
 */
function stackFrames(fields: Record<string, unknown>): string[] {
  const { stack, message } = fields;
  if (typeof stack !== 'string') return [];
  let rest = stack;
  if (typeof message === 'string' && message.length > 0) {
    const at = stack.indexOf(message);
    if (at === -1) return [];
    rest = stack.slice(at + message.length);
  }
  return rest
    .split('\n')
    .filter((line) => STACK_FRAME.test(line))
    .slice(0, 20);
}

/**
 * Makes a cause safe to attach: {@link SecretError}s and {@link SanitizedCause}s pass through,
 * anything else becomes a {@link SanitizedCause}.
 * @param safeMessage a message the adapter has checked carries no secret data.
 */
export function sanitizeCause(cause: unknown, safeMessage?: string): Error {
  if (isSecretError(cause) || cause instanceof SanitizedCause) return cause as Error;
  return new SanitizedCause(cause, safeMessage);
}

/**
 * `error` if it is already a {@link SecretError}, else an `UNKNOWN` one that wraps it as a
 * sanitized cause.
 */
export function toSecretError(error: unknown, details: Omit<SecretErrorDetails, 'cause'> = {}): SecretError {
  if (isSecretError(error)) return error;
  const what = details.operation ?? 'operation';
  return new SecretError('UNKNOWN', `${what} failed${details.key ? ` for "${details.key}"` : ''}`, {
    ...details,
    cause: error,
  });
}
