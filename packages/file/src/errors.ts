import {
  AccessDeniedError,
  InvalidConfigError,
  InvalidValueError,
  ProviderUnavailableError,
  ReadOnlyError,
  SecretConflictError,
  SecretError,
  type SecretErrorDetails,
} from '@secret-provider/core';
import { DotenvValueError } from './dotenv.js';
import { JsonPathConflict } from './json.js';

/**
 * A secrets file or directory is readable by group or others and the provider was asked to be
 * `strict`. Code `INVALID_CONFIG` (so `instanceof InvalidConfigError` holds): the fix is a
 * `chmod`, not a retry.
 */
export class InsecurePermissionsError extends SecretError {
  /** The file or directory with the loose mode. */
  readonly path: string;
  /** Its permission bits, e.g. `0o644`. */
  readonly mode: number;

  constructor(details: Omit<SecretErrorDetails, 'cause'>, path: string, mode: number) {
    super('INVALID_CONFIG', `${describeMode(path, mode)}; refusing to read it in strict mode`, details);
    this.name = 'InsecurePermissionsError';
    this.path = path;
    this.mode = mode;
  }
}

/** `secrets file "/x" is readable by group or others (mode 0644)` */
export function describeMode(path: string, mode: number): string {
  return `secrets path "${path}" is readable by group or others (mode ${(mode & 0o7777).toString(8).padStart(4, '0')})`;
}

const UNAVAILABLE = new Set([
  'ENOSPC',
  'EIO',
  'EMFILE',
  'ENFILE',
  'EBUSY',
  'EAGAIN',
  'ETIMEDOUT',
  'EDQUOT',
  'ESTALE',
]);
const BAD_CONFIG = new Set(['ENOTDIR', 'EISDIR', 'ELOOP', 'ENAMETOOLONG']);

/**
 * Maps file-system errors into the taxonomy. Node's system errors carry a path and a syscall,
 * never file contents, so their messages are kept (the core's sanitizer keeps them too).
 */
export function mapFileError(
  error: unknown,
  details: Omit<SecretErrorDetails, 'cause'>,
): SecretError | undefined {
  if (error instanceof DotenvValueError) {
    // The reason names no content: the value is never quoted.
    return new InvalidValueError(
      { ...details, cause: error },
      `cannot ${details.operation ?? 'write'} "${details.key ?? ''}": ${error.message} (provider "${details.provider ?? ''}")`,
    );
  }
  if (error instanceof JsonPathConflict) {
    return new SecretConflictError(
      { ...details, cause: error },
      `cannot write "${details.key ?? ''}": ${error.message} (provider "${details.provider ?? ''}")`,
    );
  }
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  if (typeof code !== 'string') return undefined;
  const withCause = { ...details, cause: error };
  if (code === 'EACCES' || code === 'EPERM') return new AccessDeniedError(withCause);
  if (code === 'EROFS')
    return new ReadOnlyError(
      withCause,
      `read-only file system, cannot ${details.operation ?? 'write'}${details.key ? ` "${details.key}"` : ''}`,
    );
  if (UNAVAILABLE.has(code)) return new ProviderUnavailableError(withCause);
  if (BAD_CONFIG.has(code))
    return new InvalidConfigError(
      withCause,
      `invalid secrets path (${code}) (provider "${details.provider ?? ''}")`,
    );
  return undefined;
}

/**
 * A key of a directory-format source is a link whose target lies outside the directory (and
 * outside every root the provider was told to allow). Code `ACCESS_DENIED`: the provider will not
 * read it, whatever it is. The message names neither the target nor anything it holds.
 */
export function linkEscapeError(provider: string, dir: string, key: string): SecretError {
  return new AccessDeniedError(
    { provider, key, operation: 'get' },
    `"${key}" in secrets directory "${dir}" is a link to a file outside the directory; refusing to read it (allow its target with allowLinksInto) (provider "${provider}")`,
  );
}

/**
 * Check-and-set: `expected` is the version the caller saw (`null` or `'0'`: the key must not
 * exist), `current` the version on disk (`undefined`: no such key).
 */
export function checkVersion(
  details: { provider: string; key: string },
  current: string | undefined,
  expected: string | null | undefined,
): void {
  if (expected === undefined) return;
  const wanted = expected === null || expected === '0' ? undefined : expected;
  if (current !== wanted) {
    throw new SecretConflictError(
      { ...details, operation: 'set' },
      `check-and-set failed for "${details.key}": version mismatch (provider "${details.provider}")`,
    );
  }
}
