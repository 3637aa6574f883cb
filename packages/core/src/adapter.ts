// The adapter authors' entry: the base classes, the one poller, the one clock, the one cache
// front end, the event hub and the helpers every adapter shares. Applications import
// `@secret-provider/core`.
export { type BackoffOptions, backoffDelay, HoldOff, parseRetryAfter, retryDelay } from './backoff.js';
export {
  BaseProvider,
  type BaseProviderOptions,
  type DeclaredCapabilities,
  type EmitFunction,
  type ErrorContext,
  type HookContext,
  type StoredSecret,
} from './base-provider.js';
export { type LoadedSecret, SecretCache, versionedCacheKey } from './cache.js';
export { CacheFront, cacheOptionsOf } from './cache-front.js';
export { type Clock, ManualClock, sleep, systemClock, type Timer } from './clock.js';
export { SanitizedCause, sanitizeCause, toSecretError } from './errors.js';
export {
  closedWatchHandle,
  diffSnapshots,
  EventHub,
  emitDiff,
  emitSafely,
  type SnapshotDiff,
  type VersionSnapshot,
} from './events.js';
export { type FieldAddress, pickField, splitFieldKey } from './fields.js';
export { Poller, type PollerOptions, type PollOutcome, type PollTask } from './poller.js';
export { AsyncQueue } from './stream.js';
export {
  type RequestContext,
  type RequestRecord,
  traceRequest,
} from './telemetry.js';
export {
  DEFAULT_GET_MANY_CONCURRENCY,
  DEFAULT_MAX_KEY_LENGTH,
  fingerprint,
  jittered,
  mapBounded,
  raceSignal,
  throwIfAborted,
  uniqueKeys,
  validateKey,
  valueToString,
  withTimeout,
} from './util.js';
export { WrappingProvider } from './wrapping-provider.js';
