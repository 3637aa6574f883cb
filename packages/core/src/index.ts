export {
  BaseProvider,
  type BaseProviderOptions,
  type EmitFunction,
  type HookContext,
  type StoredSecret,
} from './base-provider.js';
export {
  type CacheOptions,
  type CacheStats,
  type LoadedSecret,
  SecretCache,
  versionedCacheKey,
} from './cache.js';
export { CachedProvider, type CachedProviderOptions } from './cached-provider.js';
export {
  AccessDeniedError,
  InvalidConfigError,
  InvalidKeyError,
  InvalidValueError,
  isSecretError,
  ProviderClosedError,
  ProviderUnavailableError,
  RateLimitedError,
  ReadOnlyError,
  SanitizedCause,
  SecretConflictError,
  SecretError,
  type SecretErrorCode,
  type SecretErrorDetails,
  SecretNotFoundError,
  type SecretOperation,
  SecretTimeoutError,
  sanitizeCause,
  toSecretError,
  UnsupportedOperationError,
} from './errors.js';
export {
  createEmitter,
  diffSnapshots,
  EventHub,
  emitDiff,
  emitSafely,
  type SnapshotDiff,
  type VersionSnapshot,
} from './events.js';
export * from './redactor.js';
export { REDACTED, Secret, type SecretValue, toSecret } from './secret.js';
export type {
  AddedEvent,
  ErrorEvent,
  GetOptions,
  KeysOptions,
  LeaseInfo,
  OperationOptions,
  ProviderCapabilities,
  RemovedEvent,
  RotatedEvent,
  SecretEventEmitter,
  SecretEvents,
  SecretMetadata,
  SecretProvider,
  SetOptions,
  VersionChange,
  WarningEvent,
  WatchHandle,
  WatchOptions,
} from './types.js';
export {
  DEFAULT_MAX_KEY_LENGTH,
  fingerprint,
  jittered,
  raceSignal,
  sleep,
  throwIfAborted,
  validateKey,
  valueToString,
  withTimeout,
} from './util.js';
