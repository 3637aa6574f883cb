import { isSecretError, SecretError, type SecretErrorDetails } from '@secret-provider/core';

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
