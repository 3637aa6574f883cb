export { type EnvObject, EnvProvider, type EnvProviderOptions, PROVIDER_NAME } from './env-provider.js';
