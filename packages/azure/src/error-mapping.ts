// Native failures of the Azure SDK and of credentials, mapped to the product's error codes. A
// server, or a proxy in its place, controls a RestError's code, message, details and headers:
// only codes Key Vault documents, statuses, and a request id that is a GUID are kept.
import {
  AccessDeniedError,
  InvalidConfigError,
  InvalidKeyError,
  InvalidValueError,
  isSecretError,
  ProviderUnavailableError,
  RateLimitedError,
  SanitizedCause,
  SecretConflictError,
  SecretError,
  SecretNotFoundError,
  type SecretOperation,
  SecretTimeoutError,
} from '@secret-provider/core';
import { type Clock, parseRetryAfter, systemClock } from '@secret-provider/core/adapter';
import { KeyVaultAnswerError } from './answers.js';
import {
  KEY_VAULT_PERMISSIONS,
  type KeyVaultAction,
  KeyVaultDeletedSecretConflictError,
  KeyVaultSecretUnusableError,
} from './errors.js';

/** Where a failure happened, for messages and for the error's fields. */
export interface ErrorContext {
  readonly provider: string;
  readonly operation: SecretOperation;
  readonly action: KeyVaultAction;
  readonly key?: string | undefined;
  /** Configured vault name. */
  readonly vault?: string | undefined;
  readonly secretName?: string | undefined;
  /** The clock an HTTP-date `Retry-After` is measured on. @default systemClock */
  readonly clock?: Clock | undefined;
}

interface RestErrorLike {
  name?: unknown;
  code?: unknown;
  statusCode?: unknown;
  details?: unknown;
  response?: { headers?: { get?(name: string): string | undefined } };
}

/** `error.code` values Key Vault documents for the secrets data plane. */
const KEY_VAULT_CODES: ReadonlySet<string> = new Set([
  'BadParameter',
  'BadRequest',
  'Conflict',
  'Forbidden',
  'InternalServerError',
  'NotFound',
  'SecretNotFound',
  'ServiceUnavailable',
  'Throttled',
  'Unauthorized',
]);

/** `innererror.code` values Key Vault documents. */
const KEY_VAULT_INNER_CODES: ReadonlySet<string> = new Set([
  'AccessDenied',
  'ForbiddenByConnection',
  'ForbiddenByFirewall',
  'ForbiddenByPolicy',
  'ForbiddenByRbac',
  'ObjectIsBeingDeleted',
  'ObjectIsDeletedButRecoverable',
  'SecretDisabled',
]);

/** Codes of failures before any answer: Node's and the HTTP runtime's own. */
const NETWORK_CODES: ReadonlySet<string> = new Set([
  'REQUEST_SEND_ERROR',
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
]);

/** Error names kept in causes; any other is reported as `Error`. */
const KNOWN_NAMES: ReadonlySet<string> = new Set([
  'RestError',
  'AbortError',
  'CredentialUnavailableError',
  'AuthenticationError',
  'AggregateAuthenticationError',
  'AuthenticationRequiredError',
  'KeyVaultAnswerError',
  'TypeError',
  'RangeError',
  'SyntaxError',
  'Error',
]);

/** Every `code` kept: Key Vault's, the network's, and the HTTP runtime's parse failure. */
const KNOWN_CODES: ReadonlySet<string> = new Set([...KEY_VAULT_CODES, ...NETWORK_CODES, 'PARSE_ERROR']);

const UNRECOGNISED = 'unrecognised code';
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NOT_FOUND_CODES: ReadonlySet<string> = new Set(['SecretNotFound', 'NotFound']);

/** The inner error code of a Key Vault error body (`innererror.code`), when there is one. */
function innerCodeOf(error: RestErrorLike): unknown {
  const details = error.details as { error?: { innerError?: { code?: unknown } } } | undefined;
  return typeof details === 'object' && details !== null ? details.error?.innerError?.code : undefined;
}

/** `raw` when it is in `known`; `undefined` when absent; {@link UNRECOGNISED} otherwise. */
function allowed(raw: unknown, known: ReadonlySet<string>): string | undefined {
  if (raw === undefined || raw === null) return undefined;
  return typeof raw === 'string' && known.has(raw) ? raw : UNRECOGNISED;
}

function header(error: RestErrorLike, name: string): string | undefined {
  const headers = error.response?.headers;
  if (typeof headers?.get !== 'function') return undefined;
  try {
    const value = headers.get(name);
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Milliseconds the service asked to wait, from `retry-after-ms`, `x-ms-retry-after-ms` or `Retry-After`. */
function retryAfterMs(error: RestErrorLike, clock: Clock): number | undefined {
  for (const name of ['retry-after-ms', 'x-ms-retry-after-ms']) {
    const value = header(error, name)?.trim();
    if (value !== undefined && /^\d+(\.\d+)?$/.test(value)) return Number(value);
  }
  return parseRetryAfter(header(error, 'retry-after'), clock.now());
}

function where(context: ErrorContext): string {
  const key = context.key === undefined ? '' : ` "${context.key}"`;
  const name = context.secretName === undefined ? '' : ` (Key Vault name "${context.secretName}")`;
  const vault = context.vault === undefined ? '' : ` in vault "${context.vault}"`;
  return `${key}${name}${vault}`;
}

/**
 * Maps anything the Azure SDK or a credential throws to a {@link SecretError}. The original is
 * never kept: a `RestError` holds the request (bearer token, and on a write the value) in a
 * non-enumerable field, identity errors quote token endpoint responses, and a server or proxy
 * writes the error body. What survives is a {@link SanitizedCause} with the status, the error
 * codes Key Vault documents (any other reads "unrecognised code"), and `x-ms-request-id` when
 * it is a GUID; never a message, `details` or other headers.
 */
export function mapKeyVaultError(error: unknown, context: ErrorContext): SecretError {
  if (isSecretError(error)) return error;
  const e = (typeof error === 'object' && error !== null ? error : {}) as RestErrorLike;
  const rawName = typeof e.name === 'string' ? e.name : undefined;
  const name = rawName !== undefined && KNOWN_NAMES.has(rawName) ? rawName : 'Error';
  const rawStatus = e.statusCode;
  const status =
    typeof rawStatus === 'number' && Number.isInteger(rawStatus) && rawStatus >= 100 && rawStatus <= 599
      ? rawStatus
      : undefined;
  const code = allowed(e.code, KNOWN_CODES);
  const inner = allowed(innerCodeOf(e), KEY_VAULT_INNER_CODES);
  const knownInner = inner === UNRECOGNISED ? undefined : inner;
  const requestId = header(e, 'x-ms-request-id')?.trim();
  const safe = [
    `${name}${status === undefined ? '' : ` ${status}`}${code === undefined ? '' : ` ${code}`}${inner === undefined ? '' : `/${inner}`}`,
    requestId !== undefined && GUID.test(requestId) ? ` (x-ms-request-id ${requestId.toLowerCase()})` : '',
    error instanceof KeyVaultAnswerError ? `: ${error.description}` : '',
  ].join('');
  const cause = new SanitizedCause(
    { name, code: code === UNRECOGNISED ? undefined : code, statusCode: status },
    safe,
  );
  const base = { provider: context.provider, key: context.key, operation: context.operation, status, cause };
  const permission = KEY_VAULT_PERMISSIONS[context.action];
  const subject = where(context);
  const codeText = code === undefined ? '' : ` ${code}`;

  if (error instanceof KeyVaultAnswerError) {
    return new ProviderUnavailableError(
      base,
      `secret backend unavailable${subject}: the answer to ${context.action} cannot be understood (${error.description})`,
    );
  }
  if (status !== undefined) {
    if (status === 401) {
      return new AccessDeniedError(
        base,
        `access denied${subject}: Key Vault rejected the credential's token (401); check the credential, its tenant, and that the vault trusts it`,
      );
    }
    if (status === 403) {
      if (inner === 'SecretDisabled' && context.vault !== undefined && context.secretName !== undefined) {
        return new KeyVaultSecretUnusableError({
          ...base,
          reason: 'disabled',
          vault: context.vault,
          secretName: context.secretName,
        });
      }
      return new AccessDeniedError(
        base,
        `access denied${subject}: ${context.action} needs the ${permission.policy} permission (access policy) or a role with ${permission.rbac} (Azure RBAC)${inner === undefined ? '' : ` [${inner}]`}`,
      );
    }
    if (status === 404) {
      // Only Key Vault's own not-found is "missing"; a 404 page from something in between is not.
      if (code !== undefined && NOT_FOUND_CODES.has(code)) return new SecretNotFoundError(base);
      return new ProviderUnavailableError(
        base,
        `secret backend unavailable${subject}: 404 to ${context.action} without Key Vault's not-found error${codeText}`,
      );
    }
    if (status === 409) {
      if (
        (knownInner === 'ObjectIsDeletedButRecoverable' || knownInner === 'ObjectIsBeingDeleted') &&
        context.vault !== undefined &&
        context.secretName !== undefined
      ) {
        return new KeyVaultDeletedSecretConflictError({
          ...base,
          vault: context.vault,
          secretName: context.secretName,
          beingDeleted: knownInner === 'ObjectIsBeingDeleted',
        });
      }
      return new SecretConflictError(
        base,
        `conflict${subject}: Key Vault refused the ${context.action} (409${inner === undefined ? '' : ` ${inner}`})`,
      );
    }
    if (status === 429) {
      return new RateLimitedError(
        { ...base, retryAfterMs: retryAfterMs(e, context.clock ?? systemClock) },
        `rate limited${subject}: Key Vault throttled the ${context.action} (429) after the SDK's own retries`,
      );
    }
    if (status === 408 || status >= 500) {
      return new ProviderUnavailableError(
        base,
        `secret backend unavailable${subject}: Key Vault answered ${status} to ${context.action} after the SDK's own retries`,
      );
    }
    if (status >= 200 && status < 300) {
      // A success the HTTP runtime could not parse (an HTML page, truncated JSON).
      return new ProviderUnavailableError(
        base,
        `secret backend unavailable${subject}: the answer to ${context.action} cannot be understood (${status}${codeText})`,
      );
    }
    if (status === 400) {
      if (context.action === 'set') {
        return new InvalidValueError(
          base,
          `invalid value for${subject}: Key Vault refused the write (400${codeText})`,
        );
      }
      if (context.action === 'get' || context.action === 'delete') {
        return new InvalidKeyError(
          base,
          `invalid key${subject}: Key Vault refused the name (400${codeText})`,
        );
      }
    }
    return new SecretError('UNKNOWN', `Key Vault answered ${status} to ${context.action}${subject}`, base);
  }

  if (name === 'AbortError') {
    return new SecretTimeoutError(base, `${context.action}${subject} was aborted or timed out`);
  }
  if (name === 'CredentialUnavailableError') {
    return new InvalidConfigError(
      base,
      `no Azure credential is available for${subject || ' Key Vault'}: configure one (environment, managed identity, Azure CLI) or pass a credential`,
    );
  }
  if (
    name === 'AuthenticationError' ||
    name === 'AggregateAuthenticationError' ||
    name === 'AuthenticationRequiredError'
  ) {
    return new AccessDeniedError(
      base,
      `access denied${subject}: the Azure credential could not get a token (${name})`,
    );
  }
  if (code !== undefined && NETWORK_CODES.has(code)) {
    return new ProviderUnavailableError(
      base,
      `secret backend unavailable${subject}: ${code} during ${context.action}`,
    );
  }
  if (name === 'RestError') {
    // No status and no network code: the SDK could not use what came back (a page without items).
    return new ProviderUnavailableError(
      base,
      `secret backend unavailable${subject}: the answer to ${context.action} cannot be understood`,
    );
  }
  return new SecretError('UNKNOWN', `${context.action} failed${subject}`, base);
}
