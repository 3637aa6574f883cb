export { ListRewritingSocket, ORIGINAL_METHOD_HEADER } from './http-front.js';
export {
  type FaultSpec,
  type ListenerName,
  type RateLimitSpec,
  type RequestLogEntry,
  VaultDouble,
  type VaultDoubleOptions,
} from './vault-double.js';
export {
  type ApiRequest,
  type ApiResponse,
  type DynamicRole,
  goDuration,
  type KvMountConfig,
  type LeaseEntry,
  parseDuration,
  SYSTEM_MAX_TTL_MS,
  type TokenEntry,
  type TokenSpec,
  VaultState,
} from './vault-state.js';
