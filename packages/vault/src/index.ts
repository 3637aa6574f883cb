// The clock is core's (one clock in the product); these names stay for code written against them.
export {
  type Clock as VaultClock,
  ManualClock,
  systemClock,
  type Timer as VaultTimer,
} from '@secret-provider/core/adapter';
export {
  encodePath,
  type KvAddress,
  type LogicalAddress,
  parseKey,
  type VaultAddress,
} from './addressing.js';
export { DEFAULT_KUBERNETES_JWT_FILE } from './auth.js';
export {
  describeFailure,
  isInvalidToken,
  isLeaseGone,
  isRetryable,
  mapFailure,
  parseRetryAfter,
  safeVaultMessage,
  type VaultFailure,
} from './errors.js';
export {
  type AppRoleAuthOptions,
  type Credential,
  type KubernetesAuthOptions,
  type KvMountOptions,
  type NodeVaultClient,
  redactOptions,
  type TokenAuthOptions,
  type VaultAuthOptions,
  type VaultLeaseOptions,
  type VaultProviderOptions,
  type VaultRetryOptions,
  type VaultStaticRefreshOptions,
  type VaultTlsOptions,
  type VaultWatchOptions,
} from './options.js';
export { type ConfigWarning, type RefreshReport, resolveIntervals } from './static-refresh.js';
export {
  DEFAULT_REFRESH_INTERVALS_ENV,
  PROVIDER_NAME,
  type VaultKeysOptions,
  VaultProvider,
  type VaultProviderStats,
  type VaultRefreshOptions,
} from './vault-provider.js';
