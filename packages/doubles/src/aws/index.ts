export {
  type SecretFault,
  SecretsManagerDouble,
  type SecretsManagerDoubleOptions,
  type SecretsManagerFault,
  type SecretsManagerRequestLogEntry,
  type StoredVersion,
} from './secrets-manager-double.js';
