import {
  AccessDeniedError,
  InvalidConfigError,
  ProviderUnavailableError,
  ReadOnlyError,
  SecretConflictError,
  SecretError,
  type SecretErrorDetails,
} from '@secret-provider/core';
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
