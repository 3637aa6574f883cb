export { KeyVaultAnswerError, keyVaultAnswerPolicy } from './answers.js';
export { AzureKeyVaultProvider } from './azure-key-vault-provider.js';
export { type ErrorContext, mapKeyVaultError } from './error-mapping.js';
export {
  KEY_VAULT_PERMISSIONS,
  type KeyVaultAction,
  KeyVaultDeletedSecretConflictError,
  KeyVaultNameCollisionError,
  KeyVaultSecretUnusableError,
  type UnusableReason,
} from './errors.js';
export {
  defaultNameMapper,
  identityNameMapper,
  KEY_VAULT_NAME_MAX_LENGTH,
  KEY_VAULT_NAME_PATTERN,
  type KeyVaultNameMapper,
  UnmappableKeyError,
} from './names.js';
export {
  type AzureKeyVaultProviderOptions,
  DEFAULT_VAULT,
  type KeyVaultConnectionOptions,
  type KeyVaultPrefixRoute,
  type KeyVaultRoutes,
  PROVIDER_NAME,
} from './options.js';
