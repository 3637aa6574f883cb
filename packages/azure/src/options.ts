import type { TokenCredential } from '@azure/core-auth';
import type { SecretClient, SecretClientOptions } from '@azure/keyvault-secrets';
import type { WarningEvent } from '@secret-provider/core';
import type { BaseProviderOptions } from '@secret-provider/core/adapter';
import type { KeyVaultNameMapper } from './names.js';

/** Name of this adapter in errors and events unless another is given. */
export const PROVIDER_NAME = 'azure';

/** Name of the vault configured by the top-level `vaultUrl`/`client` options. */
export const DEFAULT_VAULT = 'default';

/** How to reach one vault. */
export interface KeyVaultConnectionOptions {
  /** The vault URL, `https://<vault-name>.vault.azure.net`. Not needed with `client`. */
  readonly vaultUrl?: string | undefined;
  /**
   * Any `TokenCredential` (`@azure/identity` or your own).
   * @default the provider's `credential`, else one `DefaultAzureCredential` shared by all vaults
   */
  readonly credential?: TokenCredential | undefined;
  /**
   * An existing `SecretClient`, used as is (its URL, credential and pipeline). Its pipeline does
   * not have this provider's checks of raw answers; add {@link keyVaultAnswerPolicy} to it for those.
   */
  readonly client?: SecretClient | undefined;
  /** Options for the `SecretClient` this provider creates: retries, TLS, API version, proxy. */
  readonly clientOptions?: SecretClientOptions | undefined;
}

/** Keys starting with `prefix` go to `vault`; with `stripPrefix` the prefix is not part of the Key Vault name. */
export interface KeyVaultPrefixRoute {
  readonly prefix: string;
  readonly vault: string;
  /** @default false */
  readonly stripPrefix?: boolean | undefined;
}

/**
 * Which vault holds which key, checked in this order: an exact entry in `keys`, the longest
 * matching prefix in `prefixes`, then `defaultVault`. A key that no rule routes does not exist
 * for this provider: reads answer `NOT_FOUND` (so a chain moves on), writes `INVALID_KEY`.
 */
export interface KeyVaultRoutes {
  /** Application key -> vault. */
  readonly keys?: Readonly<Record<string, string>> | undefined;
  /** Prefix -> vault, or rules with `stripPrefix`. */
  readonly prefixes?: Readonly<Record<string, string>> | readonly KeyVaultPrefixRoute[] | undefined;
  /** Vault for every other key. @default the only vault, when there is one */
  readonly defaultVault?: string | undefined;
}

/**
 * Options of {@link AzureKeyVaultProvider}. Beyond these, the base options: `cache` (on by
 * default here: remote reads are slow and billed), `pollInterval`, `pollJitter`, `clock`,
 * `maxKeyLength`, `name`.
 */
export interface AzureKeyVaultProviderOptions
  extends Partial<BaseProviderOptions>,
    KeyVaultConnectionOptions {
  /**
   * Several vaults by name, each with its own URL, credential, client or options. The
   * top-level `vaultUrl`/`client` adds one more, named {@link DEFAULT_VAULT}.
   */
  readonly vaults?: Readonly<Record<string, KeyVaultConnectionOptions>> | undefined;
  /** Routing of keys to vaults (see {@link KeyVaultRoutes}). */
  readonly routes?: KeyVaultRoutes | undefined;
  /** Application key <-> Key Vault name. @default {@link defaultNameMapper} */
  readonly nameMapper?: KeyVaultNameMapper | undefined;
  /**
   * What `get` does when the secret's expiry (`exp`) has passed. Key Vault itself still serves
   * it; `'reject'` answers {@link KeyVaultSecretUnusableError} (`reason: 'expired'`).
   * @default 'reject'
   */
  readonly expired?: 'reject' | 'allow' | undefined;
  /** What `get` does before the secret's activation date (`nbf`). @default 'reject' */
  readonly notYetValid?: 'reject' | 'allow' | undefined;
  /** List disabled secrets in `keys()` and watch them. @default false */
  readonly includeDisabled?: boolean | undefined;
  /** List certificate-backed (`managed`) secrets in `keys()` and watch them. @default false */
  readonly includeManaged?: boolean | undefined;
  /**
   * `'soft'`: `delete` soft-deletes (the name stays reserved until recovered or purged).
   * `'purge'`: waits for the deletion and purges (needs `secrets/purge`), freeing the name.
   * @default 'soft'
   */
  readonly deleteMode?: 'soft' | 'purge' | undefined;
  /** Time between the checks of a deletion in progress, for `deleteMode: 'purge'`. @default 1000 */
  readonly deletePollIntervalMs?: number | undefined;
  /** Timeout of each HTTP attempt (the SDK's retries make more). @default 30_000 */
  readonly requestTimeoutMs?: number | undefined;
  /**
   * Key Vault stamps changes in whole seconds, so a list cannot tell two writes in one second
   * apart. The watch re-checks the versions of secrets changed within this window.
   * @default 60_000
   */
  readonly settleWindowMs?: number | undefined;
  /**
   * Receives warnings (name collisions, names that do not map back to keys) in addition to the
   * `warning` events watchers get. Without it they go to `process.emitWarning`.
   */
  readonly onWarning?: ((warning: WarningEvent) => void) | undefined;
  /**
   * Clock in epoch milliseconds, for `exp`/`nbf` checks.
   * @deprecated pass `clock` (a core `Clock`), which also drives the watch and the cache; `now`
   * is used as that clock's time when `clock` is not given.
   */
  readonly now?: (() => number) | undefined;
}
