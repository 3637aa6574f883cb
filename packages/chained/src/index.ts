export {
  type ChainedDeleteOptions,
  ChainedProvider,
  type ChainedProviderOptions,
  type ChainedSetOptions,
  type ChainMode,
  DEFAULT_FAILOVER_CODES,
  type ExplainEntry,
  type Explanation,
  type KeyPresence,
  PROVIDER_NAME,
} from './chained-provider.js';
