import type { Emitter } from 'mitt';
import type { SecretError } from './errors.js';
import type { Secret, SecretValue } from './secret.js';
import type { ChangeStream } from './stream.js';

/** A lease on a dynamic secret (a credential with a limited life, e.g. Vault's database engine). */
export interface LeaseInfo {
  /** The lease identifier (not secret: Vault lease ids name the path and a random suffix). */
  readonly id: string;
  /** Lease duration in milliseconds, counted from `issuedAt`. */
  readonly durationMs: number;
  readonly renewable: boolean;
  readonly issuedAt: Date;
}

/**
 * What can be known about a secret without its value. Rotation is detected by comparing
 * `version` (or `updatedAt` where a backend has no versions) without fetching values.
 */
export interface SecretMetadata {
  readonly key: string;
  /** An opaque version id; changes whenever the value changes. */
  readonly version?: string | undefined;
  readonly createdAt?: Date | undefined;
  readonly updatedAt?: Date | undefined;
  /** When the value stops being valid; caches never keep it longer. */
  readonly expiresAt?: Date | undefined;
  readonly lease?: LeaseInfo | undefined;
  readonly contentType?: string | undefined;
  readonly tags?: Readonly<Record<string, string>> | undefined;
  /** Whether the backend keeps the value enabled (Key Vault can disable a secret). */
  readonly enabled?: boolean | undefined;
  /** Other non-secret facts an adapter reports (e.g. `notBefore`, the vault a key lives in). */
  readonly attributes?: Readonly<Record<string, string | number | boolean | Date>> | undefined;
}

/** What a provider can do, declared so callers and chains can ask before trying. */
export interface ProviderCapabilities {
  /** `set` stores values. A read-only provider is normal; its `set` rejects with `READ_ONLY`. */
  readonly write: boolean;
  /** `delete` removes keys. */
  readonly delete: boolean;
  /** `keys` lists names. */
  readonly list: boolean;
  /** `watch` reports changes made outside this process (not only this provider's own writes). */
  readonly watch: boolean;
  /** `metadata` returns a version without reading the value (else it reads the value and drops it). */
  readonly metadata: boolean;
  /** `get(key, { version })` reads an older version. */
  readonly versions: boolean;
  /** `has` answers without reading the value (else it reads the value and drops it). */
  readonly has: boolean;
  /** `set` honours `ifVersion` (check-and-set); without it, `ifVersion` is refused with `UNSUPPORTED`. */
  readonly checkAndSet: boolean;
  /** `set` honours `expiresAt`; without it, `expiresAt` is refused with `UNSUPPORTED`. */
  readonly expiry: boolean;
  /** `set` honours `tags`; without it, `tags` are refused with `UNSUPPORTED`. */
  readonly tags: boolean;
  /** `set` honours `contentType`; without it, `contentType` is refused with `UNSUPPORTED`. */
  readonly contentType: boolean;
}

export interface OperationOptions {
  /** Aborts the operation; the promise rejects with the signal's reason (whatever it is). */
  readonly signal?: AbortSignal | undefined;
}

export interface GetOptions extends OperationOptions {
  /** Read this version instead of the latest (needs the `versions` capability). */
  readonly version?: string | undefined;
  /**
   * Accept a cached value only if the backend gave it at most this many ms ago; else ask it.
   * Providers without a cache ask the backend on every call, which satisfies this anyway.
   */
  readonly maxAge?: number | undefined;
  /** Ask the backend whatever a cache holds (the answer refreshes the cache). */
  readonly forceFetch?: boolean | undefined;
}

export interface SetOptions extends OperationOptions {
  /**
   * Check-and-set: write only if the current version is this one (`'0'` or `null`: only if the
   * key does not exist yet). A mismatch rejects with `CONFLICT`.
   */
  readonly ifVersion?: string | null | undefined;
  readonly contentType?: string | undefined;
  readonly tags?: Readonly<Record<string, string>> | undefined;
  readonly expiresAt?: Date | undefined;
}

export interface KeysOptions extends OperationOptions {
  /** Only names starting with this prefix. */
  readonly prefix?: string | undefined;
}

/** One key's version change within a `rotated` event. */
export interface VersionChange {
  readonly key: string;
  readonly oldVersion?: string | undefined;
  readonly newVersion?: string | undefined;
  readonly oldLeaseId?: string | undefined;
  readonly newLeaseId?: string | undefined;
}

interface EventBase {
  /** The provider that reports the event (a chain adds `source` for the child it came from). */
  readonly provider: string;
  /** The child provider the event originated in, when reported through a chain. */
  readonly source?: string | undefined;
  readonly detectedAt: Date;
}

/** Values of one or more keys changed. Carries names and versions, never values. */
export interface RotatedEvent extends EventBase {
  readonly keys: readonly string[];
  readonly changes: readonly VersionChange[];
}

export interface AddedEvent extends EventBase {
  readonly key: string;
  readonly version?: string | undefined;
}

export interface RemovedEvent extends EventBase {
  readonly key: string;
  readonly version?: string | undefined;
}

/** A failure while watching or refreshing in the background; the watch goes on. */
export interface ErrorEvent extends EventBase {
  readonly error: SecretError;
  readonly key?: string | undefined;
}

/** Something an operator should know that is not a failure (loose file mode, failover, token expiry). */
export interface WarningEvent extends EventBase {
  readonly code: string;
  readonly message: string;
  readonly key?: string | undefined;
}

/** The events providers emit into a `mitt` emitter. */
export type SecretEvents = {
  rotated: RotatedEvent;
  added: AddedEvent;
  removed: RemovedEvent;
  error: ErrorEvent;
  warning: WarningEvent;
};

export type SecretEventEmitter = Emitter<SecretEvents>;

export interface WatchOptions {
  /** Stops the watch when aborted. */
  readonly signal?: AbortSignal | undefined;
}

/** Stops a watch. `stop()` is idempotent; `await using` works too. */
export interface WatchHandle extends AsyncDisposable {
  /**
   * Resolves once the watch is armed: changes after this point are reported. When the provider's
   * change source cannot start (its backend is down at boot), it still resolves, once that
   * failure has been reported as an `error` event: the watch stays alive and the provider starts
   * the source again with back-off; changes are then reported from the start that succeeds (what
   * it finds is its starting point, not a change). It rejects only on a closed provider.
   */
  readonly ready: Promise<void>;
  readonly stopped: boolean;
  /** Resolves when the watch has ended: stopped, aborted, or its provider closed. */
  readonly done?: Promise<void> | undefined;
  stop(): Promise<void>;
}

/**
 * The contract every secret backend implements. All methods are async and safe to call
 * concurrently. Errors are {@link SecretError}s with a stable `code`. `await using` closes it.
 */
export interface SecretProvider extends AsyncDisposable {
  /** A name for errors and events (e.g. `env`, `vault:prod`). */
  readonly name: string;
  readonly capabilities: ProviderCapabilities;

  /**
   * The value of `key`.
   * @throws {SecretNotFoundError} when the key does not exist (never resolves `undefined`).
   */
  get(key: string, options?: GetOptions): Promise<Secret<string>>;

  /**
   * Version metadata of `key` without its value, for cheap rotation checks.
   * @throws {SecretNotFoundError} when the key does not exist.
   */
  metadata(key: string, options?: OperationOptions): Promise<SecretMetadata>;

  /**
   * Whether `key` exists, without an error for a missing key. Optional: `hasKey()` derives it
   * from `get` for providers without it. May answer synchronously (a local lookup), so always
   * `await` the result; failures other than "missing" reject.
   */
  has?(key: string, options?: OperationOptions): boolean | Promise<boolean>;

  /**
   * The values of several keys in one call, using the backend's batch read where it has one.
   * Resolves a map of the keys that exist, in the order asked (a missing key is absent, not an
   * error); any other failure rejects with the typed error. Duplicate keys are read once; every
   * key is validated (`INVALID_KEY`) before any I/O; `maxAge`/`forceFetch` apply per key; the
   * signal aborts it with its reason. `version` is refused (`UNSUPPORTED`): a version names one
   * key's history. Optional: `getMany()` from core gives it for any provider.
   */
  getMany?(keys: readonly string[], options?: GetOptions): Promise<Map<string, Secret<string>>>;

  /**
   * Stores `value` under `key`.
   * @throws {ReadOnlyError} when the provider is read-only.
   */
  set(key: string, value: string | Secret<SecretValue>, options?: SetOptions): Promise<void>;

  /**
   * Removes `key` (capability `delete`); removing a missing key rejects with `NOT_FOUND`.
   */
  delete(key: string, options?: OperationOptions): Promise<void>;

  /** The names of the secrets (never values), used for discovery and redaction. */
  keys(options?: KeysOptions): Promise<string[]>;

  /**
   * Emits `added`/`rotated`/`removed`/`error`/`warning` into `emitter` until stopped. On a closed
   * provider it returns a handle that is already stopped and whose `ready` rejects with `CLOSED`.
   */
  watch(emitter: SecretEventEmitter, options?: WatchOptions): WatchHandle;

  /**
   * The same events as an async iterator (see `changeStream`): ends on abort, `break` or close.
   * Optional: `changeStream(provider)` gives it for any provider.
   */
  changes?(options?: WatchOptions): ChangeStream;

  /** Releases timers, watchers, sockets and leases. Idempotent; later calls reject with `CLOSED`. */
  close(): Promise<void>;
}
