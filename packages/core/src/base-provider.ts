import type { BackoffOptions } from './backoff.js';
import type { CacheOptions, CacheStats, LoadedSecret } from './cache.js';
import { CacheFront, cacheOptionsOf } from './cache-front.js';
import { type Clock, systemClock } from './clock.js';
import {
  InvalidConfigError,
  isSecretError,
  ProviderClosedError,
  ReadOnlyError,
  type SecretError,
  SecretNotFoundError,
  type SecretOperation,
  toSecretError,
  UnsupportedOperationError,
} from './errors.js';
import { closedWatchHandle, diffSnapshots, EventHub, emitDiff, type VersionSnapshot } from './events.js';
import { Poller, type PollerOptions, type PollTask } from './poller.js';
import { INSPECT_CUSTOM, Secret, type SecretValue } from './secret.js';
import { type ChangeStream, changeStream } from './stream.js';
import {
  changeChannel,
  hitsTraced,
  type OperationContext,
  operationChannels,
  operationContext,
  publishChange,
  publishHit,
  settleMetadata,
  settleSecret,
  type TracedOperation,
  traced,
  traceOperation,
} from './telemetry.js';
import type {
  GetOptions,
  KeysOptions,
  OperationOptions,
  ProviderCapabilities,
  SecretEventEmitter,
  SecretEvents,
  SecretMetadata,
  SecretProvider,
  SetOptions,
  WatchHandle,
  WatchOptions,
} from './types.js';
import {
  DEFAULT_GET_MANY_CONCURRENCY,
  DEFAULT_MAX_KEY_LENGTH,
  mapBounded,
  raceSignal,
  throwIfAborted,
  uniqueKeys,
  validateKey,
  valueToString,
} from './util.js';

/** Capabilities an adapter declares (options it honours) or switches off for one instance. */
export type DeclaredCapabilities = Partial<
  Pick<
    ProviderCapabilities,
    'write' | 'delete' | 'list' | 'watch' | 'versions' | 'checkAndSet' | 'expiry' | 'tags' | 'contentType'
  >
>;

/** Options every provider built on {@link BaseProvider} accepts. */
export interface BaseProviderOptions {
  /** The name in errors and events. */
  readonly name: string;
  /** Longest key accepted. @default 1024 */
  readonly maxKeyLength?: number | undefined;
  /**
   * Cache reads in front of the backend: `true` for the defaults, or options. The same front end
   * as `CachedProvider`. @default false (remote adapters turn it on by default)
   */
  readonly cache?: CacheOptions | boolean | undefined;
  /** For providers watched by polling: time between polls, in ms. @default 30_000 */
  readonly pollInterval?: number | undefined;
  /** Fraction of `pollInterval` removed at random from each wait. @default 0.1 */
  readonly pollJitter?: number | undefined;
  /** Time for polls, back-offs and the cache (a `ManualClock` in tests). @default systemClock */
  readonly clock?: Clock | undefined;
  /**
   * For providers watched by a push source (`startWatch`): the back-off between attempts to start
   * it again after it failed to start (a backend down at boot), with jitter, until it starts or
   * the watch ends. `base` is the first wait, doubling up to `max`.
   * @default { base: 1_000 (or pollInterval when shorter), max: 60_000 }
   */
  readonly watchRetry?: Pick<BackoffOptions, 'base' | 'max'> | undefined;
  /**
   * What the adapter honours beyond its hooks (`versions`, `checkAndSet`, `expiry`, `tags`,
   * `contentType`: default false), and hook capabilities switched off for this instance (a
   * read-only instance passes `{ write: false, delete: false }`). A capability cannot be switched
   * on without its hook.
   */
  readonly capabilities?: DeclaredCapabilities | undefined;
}

/** What an adapter's `readSecret` resolves: the value and what it knows about it. */
export interface StoredSecret {
  readonly value: SecretValue;
  readonly metadata?: Omit<SecretMetadata, 'key'> | undefined;
}

/** Passed to adapter hooks. */
export interface HookContext {
  readonly operation: SecretOperation;
  readonly signal?: AbortSignal | undefined;
}

/** Passed to `mapError`. */
export interface ErrorContext {
  readonly operation: SecretOperation;
  readonly key?: string | undefined;
  /** The caller's signal, when it gave one. */
  readonly signal?: AbortSignal | undefined;
}

export type EmitFunction = <K extends keyof SecretEvents>(type: K, event: SecretEvents[K]) => void;

/**
 * What adapter authors build on. Write the backend I/O in the hooks (`readSecret`, and as the
 * backend allows `writeSecret`, `deleteSecret`, `listKeys`, `readMetadata`, `readSnapshot` or
 * `startWatch`) and the mapping of native errors in `mapError`. The base class gives key
 * validation, typed not-found, read-only and unsupported errors, capabilities derived from the
 * hooks present, watching (by a push source or by polling snapshots with jitter), events,
 * optional caching, `close` with use-after-close errors, and output that never shows values.
 *
 * @example
 * ```ts
 * class MyProvider extends BaseProvider {
 *   constructor() { super({ name: 'mine' }); }
 *   protected override async readSecret(key: string) {
 *     const value = await myBackend.fetch(key);
 *     return value === null ? undefined : { value };
 *   }
 * }
 * ```
 */
export abstract class BaseProvider implements SecretProvider {
  readonly name: string;
  readonly #maxKeyLength: number;
  readonly #cache: CacheFront | undefined;
  readonly #hub: EventHub;
  readonly #pollInterval: number;
  readonly #pollJitter: number;
  readonly #clock: Clock;
  readonly #watchRetry: { readonly base: number; readonly max: number };
  readonly #declared: DeclaredCapabilities;
  #capabilities: ProviderCapabilities | undefined;
  /** The trusted `hasSecret` hook, `null` when there is none; resolved on first use. */
  #hasHook: BaseProvider['hasSecret'] | null | undefined;
  /** The trusted `readMany` hook, `null` when there is none; resolved on first use. */
  #readManyHook: BaseProvider['readMany'] | null | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: BaseProviderOptions) {
    this.name = options.name;
    this.#maxKeyLength = options.maxKeyLength ?? DEFAULT_MAX_KEY_LENGTH;
    this.#pollInterval = options.pollInterval ?? 30_000;
    this.#pollJitter = options.pollJitter ?? 0.1;
    this.#clock = options.clock ?? systemClock;
    // An invalid poll interval is refused where it is used, with its own message.
    const interval =
      this.#pollInterval > 0 && Number.isFinite(this.#pollInterval) ? this.#pollInterval : 1_000;
    const retryBase = options.watchRetry?.base ?? Math.min(1_000, interval);
    const retryMax = options.watchRetry?.max ?? 60_000;
    if (![retryBase, retryMax].every((ms) => typeof ms === 'number' && Number.isFinite(ms) && ms > 0)) {
      throw new InvalidConfigError(
        { provider: options.name },
        'invalid watchRetry: base and max must be finite numbers > 0 (ms)',
      );
    }
    this.#watchRetry = { base: retryBase, max: Math.max(retryBase, retryMax) };
    this.#declared = { ...options.capabilities };
    const cacheOptions = cacheOptionsOf(options.cache);
    this.#cache =
      cacheOptions === undefined
        ? undefined
        : new CacheFront(
            options.clock === undefined || cacheOptions.now !== undefined
              ? cacheOptions
              : { ...cacheOptions, now: () => this.#clock.now() },
            this.name,
            (error, key) => this.emit('error', { provider: this.name, error, key, detectedAt: new Date() }),
          );
    this.#hub = new EventHub(() => this.#startSource());
  }

  // ---- hooks for adapter authors -------------------------------------------------------------

  /** Reads one secret; `undefined` (or throwing `SecretNotFoundError`) means it does not exist. */
  protected abstract readSecret(
    key: string,
    context: HookContext & { version?: string | undefined },
  ): Promise<StoredSecret | undefined>;

  /**
   * Reads several secrets in one backend call (a batch API); the map holds the keys that exist,
   * the keys that do not are absent. `getMany` sends it every key its cache cannot answer, in one
   * call: split them as the backend's API needs. Without it, `getMany` reads key by key through
   * `readSecret`, a few at a time. Trusted only where it is defined at or below the class that
   * defines `readSecret` (as `hasSecret`).
   */
  protected readMany?(keys: readonly string[], context: HookContext): Promise<Map<string, StoredSecret>>;

  /** Stores a value. Without this hook the provider is read-only. */
  protected writeSecret?(key: string, value: string, context: HookContext & SetOptions): Promise<void>;

  /** Removes a key; resolves `false` when it did not exist. Without it, `delete` is unsupported. */
  protected deleteSecret?(key: string, context: HookContext): Promise<boolean>;

  /**
   * Lists names. Without it, `keys` is unsupported. The context holds every option the caller
   * passed to `keys`, so an adapter may accept more than `prefix` (declare them on its `keys`).
   */
  protected listKeys?(context: HookContext & { prefix?: string | undefined }): Promise<string[]>;

  /**
   * Whether `key` exists, without reading its value; may answer synchronously (a local lookup).
   * Without it, `has` reads the value and drops it. Trusted only where it is defined at or below
   * the class that defines `readSecret`: a subclass that overrides `readSecret` alone gets
   * presence from its own `readSecret`.
   */
  protected hasSecret?(key: string, context: HookContext): boolean | Promise<boolean>;

  /** Reads metadata without the value. Without it, `metadata` reads the value and drops it. */
  protected readMetadata?(
    key: string,
    context: HookContext,
  ): Promise<Omit<SecretMetadata, 'key'> | undefined>;

  /** Key -> version of everything watched; with it, `watch` polls and diffs snapshots. */
  protected readSnapshot?(context: HookContext): Promise<VersionSnapshot>;

  /**
   * Arms a push source of events (file watcher, subscription); resolves once armed, with the
   * function that disarms it. Takes precedence over `readSnapshot`. When it rejects (the backend
   * is down), the base class reports the failure and calls it again on core's back-off
   * (`watchRetry`) until it resolves or the watch ends: reject rather than retry in the adapter.
   * Each call starts afresh: what it reads first is its baseline, not a change.
   */
  protected startWatch?(emit: EmitFunction): Promise<() => Promise<void> | void>;

  /**
   * Work of `close` whose events watchers should still receive (revoking leases, a last flush);
   * called once by `close`, before watches stop and before `onClose`. New operations are already
   * refused with `ProviderClosedError`.
   */
  protected onClosing?(): Promise<void>;

  /** Releases the adapter's resources; called once by `close`, after watches have stopped. */
  protected onClose?(): Promise<void>;

  /**
   * Turns a native error into a {@link SecretError}. The default passes `SecretError`s and the
   * reasons of aborted signals through and reports anything else as `UNKNOWN` with a sanitized
   * cause. Adapters map their backend's statuses here.
   */
  protected mapError(error: unknown, context: ErrorContext): SecretError {
    return toSecretError(error, { provider: this.name, key: context.key, operation: context.operation });
  }

  /** Checks a key. Adapters add backend rules (allowed characters, path escapes) and call super. */
  protected validateKey(key: unknown): string {
    return validateKey(key, this.name, this.#maxKeyLength);
  }

  /** Reports an event to every watcher; keys it names are dropped from the cache first. */
  protected emit: EmitFunction = (type, event) => {
    this.#cache?.observe(type, event);
    if (changeChannel.hasSubscribers) publishChange(type, event);
    this.#hub.emit(type, event);
  };

  /** The provider's clock (polls, back-offs, the cache). */
  protected get clock(): Clock {
    return this.#clock;
  }

  /**
   * A {@link Poller} on this provider's clock, interval and jitter, for adapters that poll on
   * their own (a lease, a token, a document with validators). Failures are reported as `error`
   * events, mapped by `mapError`, unless `onError` is given. Not started; stop it in `onClose`.
   */
  protected createPoller(
    task: PollTask,
    options: Partial<PollerOptions> = {},
    onError?: (error: unknown, failures: number) => void,
  ): Poller {
    return new Poller(
      task,
      { interval: this.#pollInterval, jitter: this.#pollJitter, clock: this.#clock, ...options },
      onError ?? ((error) => this.#reportWatchError(error)),
    );
  }

  /** Time between polls of a watch by snapshots, in ms (for adapters that poll on their own). */
  protected get pollInterval(): number {
    return this.#pollInterval;
  }

  /** Fraction of the poll interval removed at random from each wait. */
  protected get pollJitter(): number {
    return this.#pollJitter;
  }

  /** Whether `close` has been called. */
  protected get closed(): boolean {
    return this.#closed;
  }

  // ---- the contract --------------------------------------------------------------------------

  get capabilities(): ProviderCapabilities {
    if (this.#capabilities === undefined) {
      const declared = this.#declared;
      const hook = (present: boolean, flag: boolean | undefined) => present && flag !== false;
      this.#capabilities = Object.freeze({
        write: hook(typeof this.writeSecret === 'function', declared.write),
        delete: hook(typeof this.deleteSecret === 'function', declared.delete),
        list: hook(typeof this.listKeys === 'function', declared.list),
        watch: hook(
          typeof this.startWatch === 'function' || typeof this.readSnapshot === 'function',
          declared.watch,
        ),
        metadata: typeof this.readMetadata === 'function',
        has: this.#trustedHas() !== null,
        versions: declared.versions === true,
        checkAndSet: declared.checkAndSet === true && typeof this.writeSecret === 'function',
        expiry: declared.expiry === true && typeof this.writeSecret === 'function',
        tags: declared.tags === true && typeof this.writeSecret === 'function',
        contentType: declared.contentType === true && typeof this.writeSecret === 'function',
      });
    }
    return this.#capabilities;
  }

  get(key: string, options?: GetOptions): Promise<Secret<string>> {
    // Hot path: a fresh cached value costs a map lookup, and two flag reads for telemetry (a
    // hit publishes only `start` and `end`; no context is made when nobody listens to them).
    // Keys are validated before anything is cached.
    const cache = this.#cache;
    if (options === undefined && cache !== undefined && !this.#closed && typeof key === 'string') {
      const hit = hitsTraced() ? this.#publishedHit(cache, key) : cache.hit(key);
      if (hit !== undefined) return hit;
    }
    return traced(operationChannels.get) ? this.#tracedGet(key, options) : this.#get(key, options ?? {});
  }

  // Apart from `get`, whose hot path must not allocate the closure's context on every call.
  #tracedGet(key: string, options: GetOptions | undefined): Promise<Secret<string>> {
    return this.#trace('get', key, (context) => this.#get(key, options ?? {}, context), settleSecret);
  }

  /** A fresh cached value published as a `get`, or `undefined` (nothing published) on a miss. */
  #publishedHit(cache: CacheFront, key: string): Promise<Secret<string>> | undefined {
    const context = operationContext('get', this.name, key);
    const hit = cache.hit(key, context);
    return hit === undefined ? undefined : publishHit(context, hit);
  }

  async #get(rawKey: string, options: GetOptions, trace?: OperationContext): Promise<Secret<string>> {
    const key = this.#enter(rawKey, 'get');
    throwIfAborted(options.signal);
    if (options.version !== undefined && !this.capabilities.versions) {
      throw new UnsupportedOperationError(
        { provider: this.name, key, operation: 'get' },
        `provider "${this.name}" does not keep versions`,
      );
    }
    if (this.#cache === undefined) {
      if (trace !== undefined) trace.servedFrom = 'backend';
      const loaded = await raceSignal(this.#load(key, options), options.signal);
      return new Secret(loaded.value, loaded.metadata);
    }
    // The cache shares one backend read among every caller of the key: it must not carry (or be
    // failed with the reason of) the signal of whichever caller started it. Each caller's own
    // signal still ends that caller's wait.
    const shared = { version: options.version };
    return this.#cache.read(
      key,
      options.version,
      options.signal,
      () => this.#load(key, shared),
      options,
      trace,
    );
  }

  async #load(key: string, options: GetOptions): Promise<LoadedSecret> {
    let stored: StoredSecret | undefined;
    try {
      stored = await this.readSecret(key, {
        operation: 'get',
        signal: options.signal,
        version: options.version,
      });
    } catch (error) {
      throw this.#mapped(error, 'get', key, options.signal);
    }
    if (stored === undefined) throw new SecretNotFoundError({ provider: this.name, key, operation: 'get' });
    const value =
      typeof stored.value === 'string' ? stored.value : Buffer.from(stored.value).toString('utf8');
    return { value, metadata: withKey(key, stored.metadata) };
  }

  /**
   * The values of several keys (see `SecretProvider.getMany`): validated first, served from the
   * cache where it can, the rest read by the adapter's `readMany` in one call, or key by key
   * through the path of `get` when it has none.
   */
  getMany(rawKeys: readonly string[], options: GetOptions = {}): Promise<Map<string, Secret<string>>> {
    if (!traced(operationChannels.getMany)) return this.#getMany(rawKeys, options);
    return this.#trace('getMany', undefined, (context) => {
      if (Array.isArray(rawKeys)) context.keyCount = rawKeys.length;
      return this.#getMany(rawKeys, options);
    });
  }

  async #getMany(rawKeys: readonly string[], options: GetOptions): Promise<Map<string, Secret<string>>> {
    this.#assertOpen('get');
    const keys = uniqueKeys(rawKeys, this.name, (key) => this.validateKey(key));
    throwIfAborted(options.signal);
    if (options.version !== undefined) {
      throw new UnsupportedOperationError(
        { provider: this.name, operation: 'get' },
        'getMany reads the latest versions; read a version with get(key, { version })',
      );
    }
    if (keys.length === 0) return new Map();
    if (this.#readManyHook === undefined) this.#readManyHook = this.#trustedHook('readMany');
    const readMany = this.#readManyHook;
    if (readMany === null || readMany === undefined) return this.#getEach(keys, options);
    if (this.#cache === undefined) {
      const loaded = await raceSignal(this.#loadMany(readMany, keys, options.signal), options.signal);
      const found = new Map<string, Secret<string>>();
      for (const [key, { value, metadata }] of loaded) found.set(key, new Secret(value, metadata));
      return found;
    }
    // As for `get`: the shared batch does not carry the signal of the caller that started it.
    return this.#cache.readMany(
      keys,
      options.signal,
      (missing) => this.#loadMany(readMany, missing),
      options,
    );
  }

  /** `getMany` without a batch hook: each key through the path of `get`, a few at a time. */
  async #getEach(keys: readonly string[], options: GetOptions): Promise<Map<string, Secret<string>>> {
    const secrets = await raceSignal(
      mapBounded(
        keys,
        DEFAULT_GET_MANY_CONCURRENCY,
        (key) =>
          this.#get(key, options).catch((error: unknown) => {
            if (isSecretError(error, 'NOT_FOUND')) return undefined;
            throw error;
          }),
        options.signal,
      ),
      options.signal,
    );
    const found = new Map<string, Secret<string>>();
    keys.forEach((key, index) => {
      const secret = secrets[index];
      if (secret !== undefined) found.set(key, secret);
    });
    return found;
  }

  async #loadMany(
    readMany: NonNullable<BaseProvider['readMany']>,
    keys: readonly string[],
    signal?: AbortSignal,
  ): Promise<Map<string, LoadedSecret>> {
    let stored: Map<string, StoredSecret>;
    try {
      stored = await readMany.call(this, keys, { operation: 'get', signal });
    } catch (error) {
      throw this.#mapped(error, 'get', undefined, signal);
    }
    // Only the keys asked for, in their order: an adapter's extra entries go nowhere.
    const loaded = new Map<string, LoadedSecret>();
    for (const key of keys) {
      const found = stored.get(key);
      if (found === undefined) continue;
      const value = typeof found.value === 'string' ? found.value : Buffer.from(found.value).toString('utf8');
      loaded.set(key, { value, metadata: withKey(key, found.metadata) });
    }
    return loaded;
  }

  /**
   * Whether `key` exists. Answers synchronously when the adapter's `hasSecret` hook or the cache
   * can; otherwise reads the value and drops it. Failures other than "missing" reject.
   */
  has(rawKey: string, options: OperationOptions = {}): boolean | Promise<boolean> {
    if (!traced(operationChannels.has)) return this.#has(rawKey, options);
    return this.#trace(
      'has',
      rawKey,
      () => this.#has(rawKey, options),
      (context, found) => {
        context.found = found;
      },
    );
  }

  #has(rawKey: string, options: OperationOptions): boolean | Promise<boolean> {
    let key: string;
    try {
      key = this.#enter(rawKey, 'has');
      throwIfAborted(options.signal);
    } catch (error) {
      return Promise.reject(error);
    }
    const cached = this.#cache?.holds(key);
    if (cached !== undefined) return cached;
    const hook = this.#trustedHas();
    if (hook !== null && hook !== undefined) {
      let answer: boolean | Promise<boolean>;
      try {
        answer = hook.call(this, key, { operation: 'has', signal: options.signal });
      } catch (error) {
        return Promise.reject(this.#mapped(error, 'has', key, options.signal));
      }
      if (typeof answer === 'boolean') return answer;
      return raceSignal(answer, options.signal).catch((error: unknown) => {
        throw this.#mapped(error, 'has', key, options.signal);
      });
    }
    const found =
      this.#cache === undefined
        ? this.#load(key, options).then(() => true)
        : this.#get(key, { signal: options.signal }).then(() => true);
    return raceSignal(found, options.signal).catch((error: unknown) => {
      if (isSecretError(error, 'NOT_FOUND')) return false;
      throw error;
    });
  }

  metadata(key: string, options: OperationOptions = {}): Promise<SecretMetadata> {
    if (!traced(operationChannels.metadata)) return this.#metadata(key, options);
    return this.#trace('metadata', key, () => this.#metadata(key, options), settleMetadata);
  }

  async #metadata(rawKey: string, options: OperationOptions): Promise<SecretMetadata> {
    const key = this.#enter(rawKey, 'metadata');
    throwIfAborted(options.signal);
    if (this.readMetadata === undefined) {
      const { metadata } = await raceSignal(this.#load(key, {}), options.signal);
      return metadata ?? { key };
    }
    let found: Omit<SecretMetadata, 'key'> | undefined;
    try {
      found = await raceSignal(
        this.readMetadata(key, { operation: 'metadata', signal: options.signal }),
        options.signal,
      );
    } catch (error) {
      throw this.#mapped(error, 'metadata', key, options.signal);
    }
    if (found === undefined)
      throw new SecretNotFoundError({ provider: this.name, key, operation: 'metadata' });
    return withKey(key, found);
  }

  set(key: string, value: string | Secret<SecretValue>, options: SetOptions = {}): Promise<void> {
    if (!traced(operationChannels.set)) return this.#set(key, value, options);
    return this.#trace('set', key, () => this.#set(key, value, options));
  }

  async #set(rawKey: string, value: string | Secret<SecretValue>, options: SetOptions): Promise<void> {
    const key = this.#enter(rawKey, 'set');
    const text = valueToString(value, this.name, key);
    throwIfAborted(options.signal);
    const capabilities = this.capabilities;
    if (this.writeSecret === undefined || !capabilities.write)
      throw new ReadOnlyError({ provider: this.name, key, operation: 'set' });
    this.#refuseUnhonoured(key, options, capabilities);
    const write = this.writeSecret.bind(this);
    const run = async () => {
      try {
        // Not raced against the signal: the write is waited for, so the cache is invalidated after it.
        await write(key, text, { ...options, operation: 'set' });
      } catch (error) {
        throw this.#mapped(error, 'set', key, options.signal);
      }
    };
    await (this.#cache === undefined ? run() : this.#cache.write(key, run));
  }

  delete(key: string, options: OperationOptions = {}): Promise<void> {
    if (!traced(operationChannels.delete)) return this.#delete(key, options);
    return this.#trace('delete', key, () => this.#delete(key, options));
  }

  async #delete(rawKey: string, options: OperationOptions): Promise<void> {
    const key = this.#enter(rawKey, 'delete');
    throwIfAborted(options.signal);
    if (this.deleteSecret === undefined || !this.capabilities.delete) {
      throw new UnsupportedOperationError({ provider: this.name, key, operation: 'delete' });
    }
    const remove = this.deleteSecret.bind(this);
    const run = async () => {
      try {
        return await remove(key, { operation: 'delete', signal: options.signal });
      } catch (error) {
        throw this.#mapped(error, 'delete', key, options.signal);
      }
    };
    const existed = await (this.#cache === undefined ? run() : this.#cache.write(key, run));
    if (!existed) throw new SecretNotFoundError({ provider: this.name, key, operation: 'delete' });
  }

  keys(options: KeysOptions = {}): Promise<string[]> {
    if (!traced(operationChannels.keys)) return this.#keys(options);
    return this.#trace(
      'keys',
      undefined,
      () => this.#keys(options),
      (context, names) => {
        context.count = names.length;
      },
    );
  }

  async #keys(options: KeysOptions): Promise<string[]> {
    this.#assertOpen('keys');
    throwIfAborted(options.signal);
    if (this.listKeys === undefined || !this.capabilities.list)
      throw new UnsupportedOperationError({ provider: this.name, operation: 'keys' });
    let names: string[];
    try {
      names = await raceSignal(
        this.listKeys({ ...options, operation: 'keys', signal: options.signal, prefix: options.prefix }),
        options.signal,
      );
    } catch (error) {
      throw this.#mapped(error, 'keys', undefined, options.signal);
    }
    const prefix = options.prefix;
    return [...new Set(prefix === undefined ? names : names.filter((name) => name.startsWith(prefix)))];
  }

  watch(emitter: SecretEventEmitter, options: WatchOptions = {}): WatchHandle {
    if (this.#closed) {
      return closedWatchHandle(new ProviderClosedError({ provider: this.name, operation: 'watch' }));
    }
    return this.#hub.attach(emitter, options, (error) =>
      toSecretError(this.#mapped(error, 'watch', undefined, undefined), {
        provider: this.name,
        operation: 'watch',
      }),
    );
  }

  /** The provider's changes as an async iterator (see {@link changeStream}). */
  changes(options: WatchOptions = {}): ChangeStream {
    return changeStream(this, options);
  }

  /** Closes the provider: stops watches, releases the adapter's resources. Idempotent. */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#closed = true;
      this.#closing = (async () => {
        try {
          await this.onClosing?.();
        } finally {
          await this.#hub.close();
        }
        this.#cache?.clear();
        await this.onClose?.();
      })();
    }
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Counters of the built-in cache (`undefined` when `cache` is off); the same as `CachedProvider`'s. */
  cacheStats(): CacheStats | undefined {
    return this.#cache?.stats();
  }

  /** Drops `key` from the built-in cache (no-op without one). */
  invalidate(key: string): void {
    this.#cache?.invalidate(key);
  }

  toJSON(): Record<string, unknown> {
    return { provider: this.name, capabilities: this.capabilities, closed: this.#closed };
  }

  [INSPECT_CUSTOM](): string {
    return `${this.constructor.name} { name: ${JSON.stringify(this.name)}${this.#closed ? ', closed' : ''} }`;
  }

  // ---- internals -----------------------------------------------------------------------------

  /** Runs one public operation published on its tracing channel (only called with subscribers). */
  #trace<T>(
    operation: TracedOperation,
    key: unknown,
    run: (context: OperationContext) => T,
    settle?: (context: OperationContext, result: Awaited<T>) => void,
  ): T {
    const context = operationContext(operation, this.name, key);
    return traceOperation(operationChannels[operation], context, () => run(context), settle);
  }

  #assertOpen(operation: SecretOperation): void {
    if (this.#closed) throw new ProviderClosedError({ provider: this.name, operation });
  }

  #enter(key: unknown, operation: SecretOperation): string {
    this.#assertOpen(operation);
    return this.validateKey(key);
  }

  /** Options the caller set that this provider does not honour are refused, never ignored. */
  #refuseUnhonoured(key: string, options: SetOptions, capabilities: ProviderCapabilities): void {
    const refused =
      options.ifVersion !== undefined && !capabilities.checkAndSet
        ? 'ifVersion (check-and-set)'
        : options.expiresAt !== undefined && !capabilities.expiry
          ? 'expiresAt'
          : options.tags !== undefined && !capabilities.tags
            ? 'tags'
            : options.contentType !== undefined && !capabilities.contentType
              ? 'contentType'
              : undefined;
    if (refused !== undefined) {
      throw new UnsupportedOperationError(
        { provider: this.name, key, operation: 'set' },
        `provider "${this.name}" does not honour the set option ${refused}`,
      );
    }
  }

  /**
   * The error to reject with. An aborted caller's signal wins, whatever its reason (a custom
   * reason, `AbortSignal.timeout()`): the adapter's failure is only the consequence.
   */
  #mapped(
    error: unknown,
    operation: SecretOperation,
    key: string | undefined,
    signal: AbortSignal | undefined,
  ): unknown {
    if (signal?.aborted) return signal.reason;
    if (error instanceof DOMException && error.name === 'AbortError') return error;
    if (isSecretError(error, 'TIMEOUT') && error.operation === undefined) return error;
    return this.mapError(error, { operation, key, signal });
  }

  #trustedHas(): BaseProvider['hasSecret'] | null {
    if (this.#hasHook === undefined) this.#hasHook = this.#trustedHook('hasSecret');
    return this.#hasHook ?? null;
  }

  /**
   * An optional read hook, or `null` when it is absent or not trusted: it answers for the
   * backend only if defined at or below the class that defines `readSecret` (a subclass that
   * overrides `readSecret` alone must not have its reads answered by the parent's hook).
   */
  #trustedHook(name: 'hasSecret'): BaseProvider['hasSecret'] | null;
  #trustedHook(name: 'readMany'): BaseProvider['readMany'] | null;
  #trustedHook(name: 'hasSecret' | 'readMany'): BaseProvider['hasSecret'] | BaseProvider['readMany'] | null {
    for (
      let proto = Object.getPrototypeOf(this) as object | null;
      proto !== null && proto !== BaseProvider.prototype;
      proto = Object.getPrototypeOf(proto) as object | null
    ) {
      if (Object.hasOwn(proto, name)) return (name === 'hasSecret' ? this.hasSecret : this.readMany) ?? null;
      if (Object.hasOwn(proto, 'readSecret')) break;
    }
    return null;
  }

  #watchError(error: unknown): SecretError {
    const mapped = this.#mapped(error, 'watch', undefined, undefined);
    return isSecretError(mapped) ? mapped : this.mapError(mapped, { operation: 'watch' });
  }

  #reportWatchError(error: unknown): void {
    this.emit('error', { provider: this.name, error: this.#watchError(error), detectedAt: new Date() });
  }

  /**
   * Starts the push source. One that fails to start (a backend down at boot, a cluster out of
   * reach) is reported and started again on core's back-off until it starts, the last watcher
   * stops or the provider closes: a service that started during an outage hears of changes once
   * the backend is back, without waiting for a new watcher. Failures in a row are reported once
   * per distinct code (the first, then each change of code), so a long outage is one event, not
   * one per attempt. The start that succeeds is silent: the source reads its own baseline.
   */
  async #startPushed(start: () => Promise<() => Promise<void> | void>): Promise<() => Promise<void>> {
    let reported: string;
    try {
      const stopSource = await start();
      return async () => {
        await stopSource();
      };
    } catch (error) {
      const first = this.#watchError(error);
      reported = first.code;
      this.emit('error', { provider: this.name, error: first, detectedAt: new Date() });
    }
    let source: (() => Promise<void> | void) | undefined;
    const { base, max } = this.#watchRetry;
    const retry: Poller = this.createPoller(
      async (signal) => {
        if (this.#closed) {
          void retry.stop();
          return;
        }
        let stopSource: () => Promise<void> | void;
        try {
          stopSource = await start();
        } catch (error) {
          // Mapped here, so that a backend's Retry-After reaches the back-off.
          throw this.#watchError(error);
        }
        // Stopped (or closed) while starting: nothing may stay armed.
        if (signal.aborted || this.#closed) {
          void retry.stop();
          await stopSource();
          return;
        }
        source = stopSource;
        void retry.stop();
      },
      { interval: base, first: 'interval', backoff: { base, max } },
      (error) => {
        const mapped = this.#watchError(error);
        if (mapped.code === reported) return;
        reported = mapped.code;
        this.emit('error', { provider: this.name, error: mapped, detectedAt: new Date() });
      },
    ).start();
    return async () => {
      await retry.stop();
      const stopSource = source;
      source = undefined;
      await stopSource?.();
    };
  }

  async #startSource(): Promise<() => Promise<void> | void> {
    if (!this.capabilities.watch || (this.startWatch === undefined && this.readSnapshot === undefined)) {
      this.emit('warning', {
        provider: this.name,
        code: 'WATCH_UNSUPPORTED',
        message: `provider "${this.name}" cannot report changes; watch will stay silent`,
        detectedAt: new Date(),
      });
      return () => {};
    }
    if (this.startWatch !== undefined) {
      const startWatch = this.startWatch.bind(this);
      return this.#startPushed(() => startWatch(this.emit));
    }
    const readSnapshot = (this.readSnapshot as NonNullable<BaseProvider['readSnapshot']>).bind(this);
    let current: VersionSnapshot | undefined;
    try {
      current = await readSnapshot({ operation: 'watch' });
    } catch (error) {
      // A baseline that cannot be read (an outage, a fleet restart throttled) is reported and the
      // polls go on, the first snapshot they read becoming the baseline: failing the start instead
      // would leave a watch that looks alive and never polls again.
      this.#reportWatchError(error);
    }
    const poller = this.createPoller(async (signal) => {
      const next = await readSnapshot({ operation: 'watch', signal });
      if (signal.aborted) return;
      if (current !== undefined) emitDiff(this.emit, this.name, diffSnapshots(current, next));
      current = next;
    }).start();
    return () => poller.stop();
  }
}

/**
 * Metadata with its key, built as one literal: a spread (`{ ...m, key }`) makes V8 allocate a
 * much larger object, and caches keep one per entry.
 */
function withKey(key: string, m: Omit<SecretMetadata, 'key'> | undefined): SecretMetadata {
  if (m === undefined) return { key };
  const { version, createdAt, updatedAt, expiresAt, lease, contentType, tags, enabled, attributes } = m;
  if (createdAt === undefined && updatedAt === undefined && expiresAt === undefined && lease === undefined) {
    if (
      contentType === undefined &&
      tags === undefined &&
      enabled === undefined &&
      attributes === undefined
    ) {
      return { key, version };
    }
  }
  return { key, version, createdAt, updatedAt, expiresAt, lease, contentType, tags, enabled, attributes };
}
