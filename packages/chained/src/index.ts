export {
  ChainedProvider,
  type ChainedProviderConstructor,
  type ChainedProviderOptions,
} from './chained-provider.js';
export {
  type ChainedDeleteOptions,
  type ChainedSetOptions,
  type ChainMode,
  CompositeProvider,
  type CompositeProviderOptions,
  DEFAULT_FAILOVER_CODES,
  type ExplainEntry,
  type Explanation,
  PROVIDER_NAME,
} from './composite-provider.js';
export { FailoverProvider, type FailoverProviderOptions } from './failover-provider.js';
export type { HealthCheck } from './health-probe.js';
export { LayeredProvider, type LayeredProviderOptions } from './layered-provider.js';
