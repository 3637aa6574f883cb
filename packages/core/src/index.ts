// The application entry: the contract, `Secret`, the errors, events, the cache and redaction.
// What adapter authors build with is in `@secret-provider/core/adapter`.

export type { CacheOptions, CacheStats } from './cache.js';
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
  type SecretErrorClasses,
  type SecretErrorCode,
  type SecretErrorDetails,
  type SecretErrorOf,
  SecretNotFoundError,
  type SecretOperation,
  SecretTimeoutError,
  UnsupportedOperationError,
} from './errors.js';
export { createEmitter } from './events.js';
export { type GetManyOptions, getMany } from './many.js';
export { hasKey } from './presence.js';
export {
  type AttachHandle,
  type AttachOptions,
  type ChunkRedactor,
  createRedactor,
  DEFAULT_MIN_SECRET_LENGTH,
  DEFAULT_REDACTION_MAX_DEPTH,
  DEFAULT_ROTATION_GRACE_MS,
  type LearnOptions,
  type LearnResult,
  type RedactingProvider,
  type RedactionEncoding,
  Redactor,
  type RedactorAddOptions,
  type RedactorOptions,
  type RedactorStats,
  type RedactorWarning,
  type SecretKeyPredicate,
  TRUNCATED,
  UNREADABLE,
  type WrapOptions,
} from './redaction/index.js';
export { REDACTED, Secret, type SecretValue, toSecret } from './secret.js';
export { type ChangeStream, changeStream, type SecretChange } from './stream.js';
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
