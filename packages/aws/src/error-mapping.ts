import {
  AccessDeniedError,
  InvalidKeyError,
  InvalidValueError,
  isSecretError,
  ProviderUnavailableError,
  RateLimitedError,
  SecretConflictError,
  type SecretError,
  SecretNotFoundError,
  type SecretOperation,
  SecretTimeoutError,
} from '@secret-provider/core';
import { parseRetryAfter, sanitizeCause } from '@secret-provider/core/adapter';

/** The fields of an SDK error this adapter reads; the rest (`$response`, `message`) is never copied. */
interface SdkErrorFields {
  readonly name: string | undefined;
  readonly code: string | undefined;
  readonly status: number | undefined;
  readonly fault: 'client' | 'server' | undefined;
  readonly retryAfter: string | undefined;
  /** Whether the server's message says the secret is scheduled for deletion (read, not kept). */
  readonly markedForDeletion: boolean;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
]);

const DENIED = new Set([
  'AccessDeniedException',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'IncompleteSignatureException',
  'MissingAuthenticationTokenException',
  'ExpiredTokenException',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'CredentialsProviderError',
]);

const THROTTLED = new Set(['ThrottlingException', 'TooManyRequestsException', 'LimitExceededException']);

/** Names kept on the sanitized cause: AWS error types and Node error names have this shape. */
const SAFE_NAME = /^[A-Za-z][A-Za-z0-9_.]{0,80}$/;

function fieldsOf(error: unknown): SdkErrorFields {
  const object = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>;
  const read = (name: string): unknown => {
    try {
      return object[name];
    } catch {
      return undefined;
    }
  };
  const metadata = read('$metadata') as { httpStatusCode?: unknown } | undefined;
  const response = read('$response') as
    | { statusCode?: unknown; headers?: Record<string, unknown> }
    | undefined;
  const statusValue = metadata?.httpStatusCode ?? response?.statusCode;
  const status = typeof statusValue === 'number' && Number.isInteger(statusValue) ? statusValue : undefined;
  const name = read('name');
  const code = read('code');
  const fault = read('$fault');
  const message = read('message');
  const retryAfter = response?.headers?.['retry-after'];
  return {
    name: typeof name === 'string' && SAFE_NAME.test(name) ? name : undefined,
    code: typeof code === 'string' && SAFE_NAME.test(code) ? code : undefined,
    status,
    fault: fault === 'client' || fault === 'server' ? fault : undefined,
    retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined,
    markedForDeletion: typeof message === 'string' && /(marked|scheduled) for deletion/i.test(message),
  };
}

export interface AwsErrorContext {
  readonly provider: string;
  readonly operation: SecretOperation;
  readonly key?: string | undefined;
}

/**
 * Whether a Secrets Manager answer says the secret does not exist for readers: not found, or
 * scheduled for deletion (the service refuses reads of it until it is restored).
 */
export function isMissing(error: unknown): boolean {
  const { name, markedForDeletion } = fieldsOf(error);
  return name === 'ResourceNotFoundException' || (name === 'InvalidRequestException' && markedForDeletion);
}

/** Whether the answer is `ResourceNotFoundException` alone (a write then creates the secret). */
export function isNotFound(error: unknown): boolean {
  return fieldsOf(error).name === 'ResourceNotFoundException';
}

/** Whether the answer is `ResourceExistsException` (a create lost a race). */
export function isExists(error: unknown): boolean {
  return fieldsOf(error).name === 'ResourceExistsException';
}

/**
 * An SDK error (a service exception, a network or credentials failure) as a {@link SecretError}.
 * Nothing of the original passes on but its type name, code and status: the message (the server's
 * text quotes resource names and, for signature errors, the canonical request with the session
 * token), `$response` (whose hidden request holds the signature) and every other property stay behind.
 */
export function mapAwsError(error: unknown, context: AwsErrorContext): SecretError {
  if (isSecretError(error)) return error;
  const fields = fieldsOf(error);
  const { name, code, status } = fields;
  const label = name ?? code ?? 'Error';
  const cause = sanitizeCause(
    error,
    `${label}${code !== undefined && code !== name ? ` ${code}` : ''}${status === undefined ? '' : ` (HTTP ${status})`}`,
  );
  const details = { ...context, status, cause };
  const what = `${context.operation}${context.key === undefined ? '' : ` of "${context.key}"`}`;
  const where = `(provider "${context.provider}")`;

  if (name === 'ResourceNotFoundException') {
    return new SecretNotFoundError(details, `secret "${context.key ?? ''}" not found ${where}`);
  }
  if (name === 'InvalidRequestException' && fields.markedForDeletion) {
    if (context.operation === 'set') {
      return new SecretConflictError(
        details,
        `cannot write "${context.key ?? ''}": the secret is scheduled for deletion; restore it or wait for the deletion ${where}`,
      );
    }
    return new SecretNotFoundError(
      details,
      `secret "${context.key ?? ''}" not found: it is scheduled for deletion ${where}`,
    );
  }
  if (name === 'DecryptionFailure') {
    return new AccessDeniedError(
      details,
      `${what}: KMS could not decrypt the secret (check kms:Decrypt on its key) ${where}`,
    );
  }
  if (name !== undefined && DENIED.has(name)) {
    return new AccessDeniedError(details, `${what}: access denied (${name}) ${where}`);
  }
  if ((name !== undefined && THROTTLED.has(name)) || status === 429) {
    return new RateLimitedError(
      { ...details, retryAfterMs: parseRetryAfter(fields.retryAfter) },
      `${what}: throttled by Secrets Manager ${where}`,
    );
  }
  // Before the name: the SDK renames connection failures (ECONNRESET...) `TimeoutError`.
  if ((code !== undefined && NETWORK_CODES.has(code) && code !== 'ETIMEDOUT') || name === 'AbortError') {
    return new ProviderUnavailableError(details, `${what}: Secrets Manager is unreachable ${where}`);
  }
  if (
    name === 'TimeoutError' ||
    name === 'RequestTimeout' ||
    name === 'RequestTimeoutException' ||
    code === 'ETIMEDOUT'
  ) {
    return new SecretTimeoutError(details, `${what}: Secrets Manager did not answer in time ${where}`);
  }
  if (name === 'ResourceExistsException' || name === 'InvalidRequestException') {
    return new SecretConflictError(details, `${what}: refused by Secrets Manager (${name}) ${where}`);
  }
  if (name === 'InvalidParameterException' || name === 'ValidationException') {
    return context.operation === 'set'
      ? new InvalidValueError(
          details,
          `${what}: Secrets Manager refused the value or its parameters ${where}`,
        )
      : new InvalidKeyError(details, `${what}: Secrets Manager refused the request parameters ${where}`);
  }
  // A 5xx, an answer the client could not parse (a proxy page), an error type this adapter does
  // not know: an outage, never "not found".
  return new ProviderUnavailableError(
    details,
    `${what}: Secrets Manager failed${status === undefined ? '' : ` (HTTP ${status})`} ${where}`,
  );
}
