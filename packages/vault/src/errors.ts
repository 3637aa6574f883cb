import {
  AccessDeniedError,
  isSecretError,
  ProviderUnavailableError,
  RateLimitedError,
  SecretConflictError,
  SecretError,
  SecretNotFoundError,
  type SecretOperation,
  SecretTimeoutError,
  UnsupportedOperationError,
} from '@secret-provider/core';
import { parseRetryAfter, sanitizeCause } from '@secret-provider/core/adapter';

/** Core's `Retry-After` parser, re-exported under the name this package always had. */
export { parseRetryAfter };

/** A JSON object as Vault sends them (not an array, not a string such as an HTML page). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An answer with no content (a 204, or an empty 200). */
export function isEmptyBody(value: unknown): boolean {
  return value === undefined || value === null || value === '';
}

/**
 * What the provider learned from a failed request, read from node-vault's errors without
 * keeping them: node-vault rejects HTTP failures with an error holding `response.statusCode`
 * and the body, and network failures with a raw AxiosError whose `config` holds the token and
 * the request body. Only the fields below travel further.
 */
export interface VaultFailure {
  /** HTTP status when Vault (or a proxy) answered. */
  readonly status: number | undefined;
  /** Vault's `errors` strings. Not shown as they are unless known to be safe (see {@link safeVaultMessage}). */
  readonly errors: readonly string[];
  readonly warnings: readonly string[];
  /** The response body's `data`, for 404s of deleted KV v2 versions, which carry metadata. */
  readonly data: unknown;
  /** A network or TLS error code (`ECONNREFUSED`, `ECONNABORTED`, `DEPTH_ZERO_SELF_SIGNED_CERT`). */
  readonly networkCode: string | undefined;
  readonly kind: 'http' | 'network' | 'timeout' | 'tls' | 'validation' | 'unknown';
  /** From `Retry-After`, when the response had one. */
  readonly retryAfterMs: number | undefined;
  /**
   * Whether the body is a Vault answer: a JSON object (for a 404: with `errors`, or with `data`
   * as KV v2 sends for deleted versions). A proxy's HTML page or truncated JSON is not, and is
   * mapped to `UNAVAILABLE` (a 404 page is never "not found").
   */
  readonly understood: boolean;
}

const TIMEOUT_CODES = new Set([
  'ECONNABORTED',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ERR_NETWORK',
  'ERR_SOCKET_CLOSED',
  'UND_ERR_SOCKET',
]);

function isTlsCode(code: string): boolean {
  return /CERT|SSL|TLS|^EPROTO$|SIGNATURE|^UNABLE_TO_|SELF_SIGNED/.test(code);
}

/** Reads a failure out of whatever node-vault (or axios, or tv4) rejected with. */
export function describeFailure(error: unknown, retryAfterMs?: number): VaultFailure {
  const fields = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>;
  const response = fields.response as
    | { statusCode?: unknown; status?: unknown; body?: unknown; headers?: unknown }
    | undefined;
  const status =
    typeof response?.statusCode === 'number'
      ? response.statusCode
      : typeof response?.status === 'number' && fields.isAxiosError !== true
        ? response.status
        : undefined;
  const code = typeof fields.code === 'string' ? fields.code : undefined;
  if (status !== undefined) {
    const raw = response?.body;
    const body = isRecord(raw) ? raw : {};
    const retryAfter = retryAfterMs ?? parseRetryAfter(headerValue(response?.headers, 'retry-after'));
    return {
      status,
      errors: stringArray(body.errors),
      warnings: stringArray(body.warnings),
      data: body.data,
      networkCode: undefined,
      kind: 'http',
      retryAfterMs: retryAfter,
      // Any JSON object is Vault's (or at least JSON); a 404 must look like Vault's own to mean
      // "not found": `errors`, or `data` as KV v2 sends for deleted versions.
      understood: isRecord(raw) && (status !== 404 || Array.isArray(raw.errors) || isRecord(raw.data)),
    };
  }
  const base = {
    status: undefined,
    errors: [],
    warnings: [],
    data: undefined,
    retryAfterMs: undefined,
    understood: false,
  };
  if (code !== undefined) {
    if (TIMEOUT_CODES.has(code)) return { ...base, networkCode: code, kind: 'timeout' };
    if (isTlsCode(code)) return { ...base, networkCode: code, kind: 'tls' };
    // System errors (E...) are network trouble; other library codes (redirect loops, bad options) are not.
    if (NETWORK_CODES.has(code) || /^E[A-Z]+$/.test(code))
      return { ...base, networkCode: code, kind: 'network' };
    return { ...base, networkCode: code, kind: 'unknown' };
  }
  // tv4 (node-vault's argument validation) rejects with a plain object carrying a schema path.
  if (typeof fields.schemaPath === 'string' || typeof fields.dataPath === 'string') {
    return { ...base, networkCode: undefined, kind: 'validation' };
  }
  return { ...base, networkCode: undefined, kind: 'unknown' };
}

function stringArray(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function headerValue(headers: unknown, name: string): string | undefined {
  if (typeof headers !== 'object' || headers === null) return undefined;
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) return Array.isArray(value) ? String(value[0]) : String(value);
  }
  return undefined;
}

/**
 * True for Vault's answer to an expired, revoked or unknown token (as opposed to a policy
 * denial), and for a 401, which Vault does not send but proxies in front of it do.
 */
export function isInvalidToken(failure: VaultFailure): boolean {
  if (failure.status === 401) return true;
  return (
    failure.status === 403 && failure.errors.some((e) => /invalid token|token is expired|bad token/i.test(e))
  );
}

/** True for Vault's lease errors that mean "this lease is gone or done: get a new credential". */
export function isLeaseGone(failure: VaultFailure): boolean {
  return (
    failure.status === 400 &&
    failure.errors.some((e) =>
      /lease not found|lease expired|lease is not renewable|past the max TTL|invalid lease|cannot renew/i.test(
        e,
      ),
    )
  );
}

/** Whether trying again may help; requests that may have reached Vault retry only when idempotent. */
export function isRetryable(failure: VaultFailure, idempotent: boolean): boolean {
  const { status, kind, networkCode } = failure;
  if (status === 429) return true;
  // A sealed or standby Vault, or a gateway, did not process the request: safe to send again.
  if (status === 503 || status === 502) return true;
  if (status === 500 || status === 504 || status === 412) return idempotent;
  if (kind === 'network')
    return (
      networkCode === 'ECONNREFUSED' ||
      networkCode === 'ENOTFOUND' ||
      networkCode === 'EAI_AGAIN' ||
      idempotent
    );
  if (kind === 'timeout') return idempotent;
  return false;
}

// Vault error strings known to carry no request data; anything else is withheld from messages.
const SAFE_MESSAGES: readonly RegExp[] = [
  /^permission denied$/,
  /^\d+ errors? occurred:\n(\t\* (permission denied|invalid token)\n)+\n?$/,
  /^Vault is sealed$/,
  /^check-and-set parameter (did not match the current version|required for this call)$/,
  /^(lease not found|lease expired|lease is not renewable|past the max TTL, cannot renew|invalid lease)$/,
  /^invalid role or secret ID$/,
  /^missing (role_id|role|jwt|lease ID)$/,
  /^request path "[^"\n]{0,512}": rate limit quota exceeded$/,
  /^local node not active but active cluster node not found$/,
  /^unsupported (operation|path)$/,
  /^no handler for route "[^"\n]{0,512}"\. route entry not found\.$/,
  /^Status \d{3}$/,
];

/** Vault's first error string when it is one known to be safe, else undefined. */
export function safeVaultMessage(failure: VaultFailure): string | undefined {
  const first = failure.errors[0];
  if (first === undefined) return undefined;
  return SAFE_MESSAGES.some((re) => re.test(first))
    ? first.replace(/\n\t\* /g, ' ').replace(/\s+$/, '')
    : undefined;
}

export interface MapContext {
  readonly provider: string;
  readonly operation: SecretOperation;
  readonly key?: string | undefined;
}

function what(context: MapContext): string {
  const key = context.key === undefined ? '' : ` "${context.key}"`;
  return `${context.operation}${key} (provider "${context.provider}")`;
}

/**
 * Maps a failed request to the error taxonomy. The cause is sanitized: it keeps the error's
 * name, code and stack frames, and a message this module composed, never the original's
 * config, headers or body.
 */
export function mapFailure(error: unknown, failure: VaultFailure, context: MapContext): SecretError {
  if (isSecretError(error)) return error;
  const { provider, key, operation } = context;
  const status = failure.status;
  const vault = safeVaultMessage(failure);
  const answered =
    status === undefined ? '' : `Vault answered ${status}${vault === undefined ? '' : ` (${vault})`}`;
  const cause = sanitizeCause(
    error,
    status !== undefined
      ? answered
      : failure.networkCode !== undefined
        ? `${failure.kind} error ${failure.networkCode}`
        : failure.kind === 'validation'
          ? 'request rejected by node-vault argument validation'
          : undefined,
  );
  const details = { provider, key, operation, status, cause };
  const message = (text: string) => `${text}: ${what(context)}${answered === '' ? '' : `: ${answered}`}`;

  if (status !== undefined) {
    // An answer that is not Vault's (a proxy's page, truncated JSON) is an outage, whatever its
    // status claims, except where the status alone is meaningful (auth, throttling, 5xx).
    if (!failure.understood && status !== 401 && status !== 403 && status !== 429 && status < 500) {
      return new ProviderUnavailableError(details, message('Vault unavailable: not a Vault response'));
    }
    if (status === 404) return new SecretNotFoundError(details, message('secret not found'));
    if (status === 401 || status === 403) {
      const reason = isInvalidToken(failure) ? 'the Vault token is invalid or expired' : 'access denied';
      return new AccessDeniedError(details, message(reason));
    }
    if (status === 429) {
      return new RateLimitedError(
        { ...details, retryAfterMs: failure.retryAfterMs },
        message('rate limited'),
      );
    }
    if (status === 400) {
      if (failure.errors.some((e) => /^check-and-set parameter/.test(e))) {
        return new SecretConflictError(details, message('check-and-set conflict'));
      }
      if (
        failure.errors.some((e) =>
          /invalid role or secret ID|invalid role name|^missing (role_id|role|jwt)$/.test(e),
        )
      ) {
        return new AccessDeniedError(details, message('login refused'));
      }
      return new SecretError('UNKNOWN', message('request refused'), { ...details, retryable: false });
    }
    if (status === 405)
      return new UnsupportedOperationError(details, message('operation not supported by this Vault path'));
    if (status === 412 || status >= 500) {
      const reason = status === 503 && vault === 'Vault is sealed' ? 'Vault is sealed' : 'Vault unavailable';
      return new ProviderUnavailableError({ ...details, retryable: status !== 501 }, message(reason));
    }
    return new SecretError('UNKNOWN', message('unexpected answer'), { ...details, retryable: false });
  }
  switch (failure.kind) {
    case 'timeout':
      return new SecretTimeoutError(details, message(`request timed out (${failure.networkCode})`));
    case 'tls':
      return new ProviderUnavailableError(
        { ...details, retryable: false },
        message(`TLS verification failed (${failure.networkCode})`),
      );
    case 'network':
      return new ProviderUnavailableError(details, message(`cannot reach Vault (${failure.networkCode})`));
    case 'validation':
      return new SecretError('INVALID_VALUE', message('request rejected before sending'), {
        ...details,
        retryable: false,
      });
    default:
      return new SecretError(
        'UNKNOWN',
        message(
          failure.networkCode === undefined ? 'request failed' : `request failed (${failure.networkCode})`,
        ),
        { ...details, retryable: false },
      );
  }
}
