export { ConsulProvider, type ConsulProviderOptions, PROVIDER_NAME } from './consul-provider.js';
