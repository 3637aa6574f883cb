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
  type SecretErrorDetails,
  SecretNotFoundError,
  type SecretOperation,
  SecretTimeoutError,
} from '@secret-provider/core';
import { sanitizeCause } from '@secret-provider/core/adapter';

/** What the adapter was doing, in Key Vault's terms (each needs its own permission). */
export type KeyVaultAction = 'get' | 'list' | 'set' | 'delete' | 'recover' | 'purge';

/** The permission each action needs: access-policy name and RBAC data action. */
export const KEY_VAULT_PERMISSIONS: Readonly<Record<KeyVaultAction, { policy: string; rbac: string }>> = {
  get: { policy: 'secrets/get', rbac: 'Microsoft.KeyVault/vaults/secrets/getSecret/action' },
  list: { policy: 'secrets/list', rbac: 'Microsoft.KeyVault/vaults/secrets/readMetadata/action' },
  set: { policy: 'secrets/set', rbac: 'Microsoft.KeyVault/vaults/secrets/setSecret/action' },
  delete: { policy: 'secrets/delete', rbac: 'Microsoft.KeyVault/vaults/secrets/delete' },
  recover: { policy: 'secrets/recover', rbac: 'Microsoft.KeyVault/vaults/secrets/recover/action' },
  purge: { policy: 'secrets/purge', rbac: 'Microsoft.KeyVault/vaults/deletedSecrets/delete' },
};

const UNUSABLE_BRAND = Symbol.for('secret-provider.azure.unusable');
const DELETED_BRAND = Symbol.for('secret-provider.azure.deleted-conflict');
const COLLISION_BRAND = Symbol.for('secret-provider.azure.name-collision');

function branded(value: unknown, brand: symbol): boolean {
  return isSecretError(value) && (value as unknown as Record<symbol, unknown>)[brand] === true;
}

/** Why Key Vault holds a secret that `get` will not hand out. */
export type UnusableReason = 'disabled' | 'expired' | 'not-yet-valid';

/**
 * The secret exists but may not be used now: it is disabled (Key Vault answers 403
 * `SecretDisabled`), its expiry (`exp`) has passed, or its activation (`nbf`) has not come yet.
 * Code `ACCESS_DENIED`, not retryable, so a chain does not fall through to another layer's value
 * as it would on not-found: a secret someone disabled or let expire is a decision to look at,
 * not a gap to fill. `reason` says which; `expiresAt`/`notBefore` say when.
 */
export class KeyVaultSecretUnusableError extends SecretError {
  readonly reason: UnusableReason;
  /** The configured vault name. */
  readonly vault: string;
  /** The Key Vault secret name. */
  readonly secretName: string;
  readonly version: string | undefined;
  readonly expiresAt: Date | undefined;
  readonly notBefore: Date | undefined;

  constructor(
    details: SecretErrorDetails & {
      reason: UnusableReason;
      vault: string;
      secretName: string;
      version?: string | undefined;
      expiresAt?: Date | undefined;
      notBefore?: Date | undefined;
    },
  ) {
    const what =
      details.reason === 'disabled'
        ? 'is disabled in Key Vault; enable it (or set a new version) to use it'
        : details.reason === 'expired'
          ? `expired at ${details.expiresAt?.toISOString()}; set a new version or extend its expiry (or pass expired: 'allow')`
          : `is not valid before ${details.notBefore?.toISOString()} (or pass notYetValid: 'allow')`;
    super(
      'ACCESS_DENIED',
      `secret "${details.key}" (Key Vault name "${details.secretName}" in vault "${details.vault}") ${what}`,
      { ...details, retryable: false },
    );
    this.name = 'KeyVaultSecretUnusableError';
    this.reason = details.reason;
    this.vault = details.vault;
    this.secretName = details.secretName;
    this.version = details.version;
    this.expiresAt = details.expiresAt;
    this.notBefore = details.notBefore;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(value, UNUSABLE_BRAND);
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), reason: this.reason, vault: this.vault, secretName: this.secretName };
  }
}
Object.defineProperty(KeyVaultSecretUnusableError.prototype, UNUSABLE_BRAND, { value: true });

/**
 * A write hit a name Key Vault holds as deleted (soft delete): it cannot be reused until the
 * deleted secret is recovered or purged. Code `CONFLICT`; the message says how to do either.
 * While a deletion is still in progress (`ObjectIsBeingDeleted`) the error is `retryable`.
 */
export class KeyVaultDeletedSecretConflictError extends SecretError {
  readonly vault: string;
  readonly secretName: string;
  /** `true` while Key Vault is still deleting (try again shortly); `false` once recoverable. */
  readonly beingDeleted: boolean;

  constructor(details: SecretErrorDetails & { vault: string; secretName: string; beingDeleted: boolean }) {
    const where = `Key Vault name "${details.secretName}" in vault "${details.vault}"`;
    super(
      'CONFLICT',
      details.beingDeleted
        ? `cannot write "${details.key}": ${where} is being deleted; try again in a few seconds`
        : `cannot write "${details.key}": ${where} is deleted but recoverable. Recover it with provider.recoverDeleted(key) (permission secrets/recover), or purge it with provider.purgeDeleted(key) (permission secrets/purge) and write again`,
      { ...details, retryable: details.beingDeleted },
    );
    this.name = 'KeyVaultDeletedSecretConflictError';
    this.vault = details.vault;
    this.secretName = details.secretName;
    this.beingDeleted = details.beingDeleted;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(value, DELETED_BRAND);
  }
}
Object.defineProperty(KeyVaultDeletedSecretConflictError.prototype, DELETED_BRAND, { value: true });

/**
 * Two application keys name one Key Vault secret (Key Vault ignores case, and a custom mapper
 * may map two keys to one name). Code `CONFLICT`. Writes refuse; reads and listings report it
 * as a `warning` with code `NAME_COLLISION`.
 */
export class KeyVaultNameCollisionError extends SecretError {
  readonly vault: string;
  readonly secretName: string;
  /** The application keys that collide. */
  readonly keys: readonly string[];

  constructor(details: SecretErrorDetails & { vault: string; secretName: string; keys: readonly string[] }) {
    super(
      'CONFLICT',
      `keys ${details.keys.map((k) => `"${k}"`).join(' and ')} both map to Key Vault name "${details.secretName}" in vault "${details.vault}" (Key Vault names ignore case); rename one or use a custom name mapper`,
      { ...details, retryable: false },
    );
    this.name = 'KeyVaultNameCollisionError';
    this.vault = details.vault;
    this.secretName = details.secretName;
    this.keys = details.keys;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(value, COLLISION_BRAND);
  }
}
Object.defineProperty(KeyVaultNameCollisionError.prototype, COLLISION_BRAND, { value: true });

/** Where a failure happened, for messages and for the error's fields. */
export interface ErrorContext {
  readonly provider: string;
  readonly operation: SecretOperation;
  readonly action: KeyVaultAction;
  readonly key?: string | undefined;
  /** Configured vault name. */
  readonly vault?: string | undefined;
  readonly secretName?: string | undefined;
}

interface RestErrorLike {
  name?: unknown;
  code?: unknown;
  statusCode?: unknown;
  details?: unknown;
  response?: { headers?: { get?(name: string): string | undefined } };
}

const NETWORK_CODES = new Set([
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
  'PARSE_ERROR',
]);

/** The inner error code of a Key Vault error body (`innererror.code`), when there is one. */
function innerCode(error: RestErrorLike): string | undefined {
  const details = error.details as { error?: { innerError?: { code?: unknown } } } | undefined;
  const code = details?.error?.innerError?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Milliseconds the service asked to wait, from `retry-after-ms`, `x-ms-retry-after-ms` or `Retry-After`. */
function retryAfterMs(error: RestErrorLike): number | undefined {
  const headers = error.response?.headers;
  if (typeof headers?.get !== 'function') return undefined;
  for (const name of ['retry-after-ms', 'x-ms-retry-after-ms']) {
    const value = Number(headers.get(name));
    if (headers.get(name) !== undefined && Number.isFinite(value) && value >= 0) return value;
  }
  const header = headers.get('retry-after');
  if (header === undefined) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
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
 * non-enumerable field, and identity errors quote token endpoint responses. What survives is a
 * {@link SanitizedCause} with the status and the service's error codes.
 */
export function mapKeyVaultError(error: unknown, context: ErrorContext): SecretError {
  if (isSecretError(error)) return error;
  const e = (typeof error === 'object' && error !== null ? error : {}) as RestErrorLike;
  const name = typeof e.name === 'string' ? e.name : typeof error;
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  const code = typeof e.code === 'string' ? e.code : undefined;
  const inner = innerCode(e);
  const safe = `${name}${status === undefined ? '' : ` ${status}`}${code === undefined ? '' : ` ${code}`}${inner === undefined ? '' : `/${inner}`}`;
  const cause = sanitizeCause(error, safe);
  const base = { provider: context.provider, key: context.key, operation: context.operation, status, cause };
  const permission = KEY_VAULT_PERMISSIONS[context.action];
  const subject = where(context);

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
    if (status === 404) return new SecretNotFoundError(base);
    if (status === 409) {
      if (
        (inner === 'ObjectIsDeletedButRecoverable' || inner === 'ObjectIsBeingDeleted') &&
        context.vault !== undefined &&
        context.secretName !== undefined
      ) {
        return new KeyVaultDeletedSecretConflictError({
          ...base,
          vault: context.vault,
          secretName: context.secretName,
          beingDeleted: inner === 'ObjectIsBeingDeleted',
        });
      }
      return new SecretConflictError(
        base,
        `conflict${subject}: Key Vault refused the ${context.action} (409${inner ? ` ${inner}` : ''})`,
      );
    }
    if (status === 429) {
      return new RateLimitedError(
        { ...base, retryAfterMs: retryAfterMs(e) },
        `rate limited${subject}: Key Vault throttled the ${context.action} (429) after the SDK's own retries`,
      );
    }
    if (status === 408 || status >= 500) {
      return new ProviderUnavailableError(
        base,
        `secret backend unavailable${subject}: Key Vault answered ${status} to ${context.action} after the SDK's own retries`,
      );
    }
    if (status === 400) {
      if (context.action === 'set') {
        return new InvalidValueError(
          base,
          `invalid value for${subject}: Key Vault refused the write (400${code ? ` ${code}` : ''})`,
        );
      }
      if (context.action === 'get' || context.action === 'delete') {
        return new InvalidKeyError(
          base,
          `invalid key${subject}: Key Vault refused the name (400${code ? ` ${code}` : ''})`,
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
  if ((code !== undefined && NETWORK_CODES.has(code)) || name === 'RestError') {
    return new ProviderUnavailableError(
      base,
      `secret backend unavailable${subject}: ${code ?? 'network error'} during ${context.action}`,
    );
  }
  return new SecretError('UNKNOWN', `${context.action} failed${subject}`, {
    ...base,
    cause: new SanitizedCause(error, safe),
  });
}
