import {
  AccessDeniedError,
  InvalidConfigError,
  InvalidValueError,
  isSecretError,
  ProviderClosedError,
  ProviderUnavailableError,
  RateLimitedError,
  SecretConflictError,
  type SecretError,
  type SecretErrorDetails,
  SecretNotFoundError,
} from '@secret-provider/core';
import { sanitizeCause } from '@secret-provider/core/adapter';
import { DocumentPathConflict, DocumentSyntaxError } from './document.js';

type Etcd3Module = typeof import('etcd3');

/** What a failure of the etcd3 client (or of gRPC under it) means for a caller. */
export type EtcdFailureKind =
  | 'denied'
  | 'unavailable'
  | 'timeout'
  | 'rate-limited'
  | 'compacted'
  | 'too-large'
  | 'auth-not-enabled'
  | 'closed'
  | 'unknown';

/** The class name of an error when it looks like one code gave it (never a server's phrase). */
function className(error: unknown): string {
  const name = (error as { constructor?: { name?: unknown } } | null)?.constructor?.name;
  return typeof name === 'string' && /^[A-Za-z_$][\w$]{0,63}$/.test(name) ? name : 'Error';
}

/**
 * Reads what a client error means. The client folds gRPC statuses and etcd's messages into its
 * own classes (and rejects some with the server's text only); the text is looked at for a few
 * known etcd phrases and never kept.
 */
export function classifyEtcdError(error: unknown, etcd: Etcd3Module | undefined): EtcdFailureKind {
  const message = error instanceof Error ? error.message : '';
  if (etcd !== undefined) {
    if (
      error instanceof etcd.EtcdPermissionDeniedError ||
      error instanceof etcd.EtcdAuthenticationFailedError ||
      error instanceof etcd.EtcdInvalidAuthTokenError ||
      error instanceof etcd.EtcdUserNotFoundError ||
      error instanceof etcd.EtcdRoleNotGrantedError ||
      error instanceof etcd.GRPCUnauthenticatedError
    ) {
      return 'denied';
    }
    if (error instanceof etcd.ClientClosedError) return 'closed';
    if (error instanceof etcd.GRPCDeadlineExceededError) return 'timeout';
  }
  if (/etcdserver: user name is empty|etcdserver: permission denied|invalid auth token/.test(message))
    return 'denied';
  if (/authentication is not enabled/.test(message)) return 'auth-not-enabled';
  if (/required revision has been compacted|mvcc: required revision is a future revision/.test(message))
    return 'compacted';
  if (/etcdserver: too many requests/.test(message)) return 'rate-limited';
  if (/etcdserver: request is too large|message larger than max/.test(message)) return 'too-large';
  if (/DEADLINE_EXCEEDED|Deadline exceeded/i.test(message)) return 'timeout';
  if (etcd !== undefined) {
    if (
      error instanceof etcd.GRPCGenericError ||
      error instanceof etcd.EtcdError ||
      error instanceof etcd.EtcdWatchStreamEnded ||
      error instanceof etcd.ClientRuntimeError
    ) {
      return 'unavailable';
    }
  }
  // cockatiel's open circuit (every host failed recently) and gRPC's own errors (a numeric code).
  if (['BrokenCircuitError', 'TaskCancelledError', 'HostCoolingDown'].includes(className(error)))
    return 'unavailable';
  if (typeof (error as { code?: unknown } | null)?.code === 'number') return 'unavailable';
  return 'unknown';
}

export interface EtcdErrorContext extends Omit<SecretErrorDetails, 'cause'> {
  readonly provider: string;
  /** The per-request deadline, for the message of a timeout. */
  readonly requestTimeoutMs: number;
}

/**
 * Maps a failure into the taxonomy. The cause keeps the client's class name and nothing of its
 * text (a client error's message quotes the server, which may quote a request).
 */
export function mapEtcdError(
  error: unknown,
  etcd: Etcd3Module | undefined,
  context: EtcdErrorContext,
): SecretError | undefined {
  if (isSecretError(error)) return error;
  const { requestTimeoutMs, ...details } = context;
  const where = `(provider "${details.provider}")`;
  const name = className(error);
  if (error instanceof DocumentSyntaxError) {
    return new InvalidValueError(
      { ...details, cause: sanitizeCause(error, error.message) },
      `the etcd document is not usable: ${error.message} ${where}`,
    );
  }
  if (error instanceof DocumentPathConflict) {
    return new SecretConflictError(
      { ...details, cause: sanitizeCause(error, error.message) },
      `cannot write "${details.key ?? ''}": ${error.message} ${where}`,
    );
  }
  const cause = sanitizeCause(error, `${name} (etcd client error; text withheld)`);
  switch (classifyEtcdError(error, etcd)) {
    case 'denied':
      return new AccessDeniedError(
        { ...details, cause },
        `etcd refused the credentials or the permission${details.key ? ` for "${details.key}"` : ''} ${where}`,
      );
    case 'timeout':
      return new ProviderUnavailableError(
        { ...details, cause },
        `etcd did not answer within ${requestTimeoutMs} ms ${where}`,
      );
    case 'rate-limited':
      return new RateLimitedError({ ...details, cause }, `etcd is throttling requests ${where}`);
    case 'compacted':
      // Only reads of an older version meet this: that version is gone.
      return new SecretNotFoundError(
        { ...details, cause },
        `version of "${details.key ?? ''}" no longer kept (compacted) ${where}`,
      );
    case 'too-large':
      return new InvalidValueError(
        { ...details, cause },
        `value for "${details.key ?? ''}" is larger than etcd accepts ${where}`,
      );
    case 'auth-not-enabled':
      return new InvalidConfigError(
        { ...details, cause },
        `etcd credentials were given but the cluster has authentication off ${where}`,
      );
    case 'closed':
      return new ProviderClosedError({ ...details, cause });
    case 'unavailable':
      return new ProviderUnavailableError({ ...details, cause }, `etcd unavailable (${name}) ${where}`);
    default:
      return undefined;
  }
}
