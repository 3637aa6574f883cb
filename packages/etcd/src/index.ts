export type { JsonKeyStyle } from './document.js';
export { type EtcdAuth, EtcdProvider, type EtcdProviderOptions, PROVIDER_NAME } from './etcd-provider.js';
export type { EtcdWatchStats } from './watch-session.js';
