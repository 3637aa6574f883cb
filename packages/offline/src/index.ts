export { FallbackTooOldError, FallbackUnreadableError, type FallbackUnreadableReason } from './errors.js';
export { FORMAT_VERSION, type KeyDerivation } from './fallback-file.js';
export type { OfflineFallbackKey } from './key.js';
export {
  FALLBACK_ENDED,
  FALLBACK_SERVED,
  type OfflineFallbackOptions,
  OfflineFallbackProvider,
  type OfflineFallbackStats,
  SERVED_FROM_FALLBACK,
} from './offline-fallback-provider.js';
