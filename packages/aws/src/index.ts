export { AwsSecretsManagerProvider } from './aws-secrets-manager-provider.js';
export { type AwsErrorContext, mapAwsError } from './error-mapping.js';
export { type AwsSecretsManagerProviderOptions, PROVIDER_NAME, STAGING_LABELS } from './options.js';
