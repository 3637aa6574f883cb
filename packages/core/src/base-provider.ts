import {
  type CacheOptions,
  type CacheStats,
  type LoadedSecret,
  SecretCache,
  versionedCacheKey,
} from './cache.js';
import {
  isSecretError,
  ProviderClosedError,
  ReadOnlyError,
  type SecretError,
  SecretNotFoundError,
  type SecretOperation,
  toSecretError,
  UnsupportedOperationError,
} from './errors.js';
import { diffSnapshots, EventHub, emitDiff, type VersionSnapshot } from './events.js';
import { INSPECT_CUSTOM, Secret, type SecretValue } from './secret.js';
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
  DEFAULT_MAX_KEY_LENGTH,
  jittered,
  raceSignal,
  sleep,
  throwIfAborted,
  validateKey,
  valueToString,
} from './util.js';

/** Options every provider built on {@link BaseProvider} accepts. */
export interface BaseProviderOptions {
  /** The name in errors and events. */
  readonly name: string;
  /** Longest key accepted. @default 1024 */
  readonly maxKeyLength?: number | undefined;
  /** Cache reads in front of the backend: `true` for the defaults, or options. @default false */
  readonly cache?: CacheOptions | boolean | undefined;
  /** For providers watched by polling: time between polls, in ms. @default 30_000 */
  readonly pollInterval?: number | undefined;
  /** Fraction of `pollInterval` removed at random from each wait. @default 0.1 */
  readonly pollJitter?: number | undefined;
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
  readonly #cache: SecretCache | undefined;
  readonly #hub: EventHub;
  readonly #pollInterval: number;
  readonly #pollJitter: number;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: BaseProviderOptions) {
    this.name = options.name;
    this.#maxKeyLength = options.maxKeyLength ?? DEFAULT_MAX_KEY_LENGTH;
    this.#pollInterval = options.pollInterval ?? 30_000;
    this.#pollJitter = options.pollJitter ?? 0.1;
    this.#cache =
      options.cache === undefined || options.cache === false
        ? undefined
        : new SecretCache(options.cache === true ? {} : options.cache, this.name, (error, key) =>
            this.emit('error', { provider: this.name, error, key, detectedAt: new Date() }),
          );
    this.#hub = new EventHub(() => this.#startSource());
  }

  // ---- hooks for adapter authors -------------------------------------------------------------

  /** Reads one secret; `undefined` (or throwing `SecretNotFoundError`) means it does not exist. */
  protected abstract readSecret(
    key: string,
    context: HookContext & { version?: string | undefined },
  ): Promise<StoredSecret | undefined>;

  /** Stores a value. Without this hook the provider is read-only. */
  protected writeSecret?(key: string, value: string, context: HookContext & SetOptions): Promise<void>;

  /** Removes a key; resolves `false` when it did not exist. Without it, `delete` is unsupported. */
  protected deleteSecret?(key: string, context: HookContext): Promise<boolean>;

  /** Lists names. Without it, `keys` is unsupported. */
  protected listKeys?(context: HookContext & { prefix?: string | undefined }): Promise<string[]>;

  /** Reads metadata without the value. Without it, `metadata` reads the value and drops it. */
  protected readMetadata?(
    key: string,
    context: HookContext,
  ): Promise<Omit<SecretMetadata, 'key'> | undefined>;

  /** Key -> version of everything watched; with it, `watch` polls and diffs snapshots. */
  protected readSnapshot?(context: HookContext): Promise<VersionSnapshot>;

  /**
   * Arms a push source of events (file watcher, subscription); resolves once armed, with the
   * function that disarms it. Takes precedence over `readSnapshot`.
   */
  protected startWatch?(emit: EmitFunction): Promise<() => Promise<void> | void>;

  /** Releases the adapter's resources; called once by `close`. */
  protected onClose?(): Promise<void>;

  /**
   * Turns a native error into a {@link SecretError}. The default passes `SecretError`s and the
   * reasons of aborted signals through and reports anything else as `UNKNOWN` with a sanitized
   * cause. Adapters map their backend's statuses here.
   */
  protected mapError(
    error: unknown,
    context: { operation: SecretOperation; key?: string | undefined },
  ): SecretError {
    return toSecretError(error, { provider: this.name, key: context.key, operation: context.operation });
  }

  /** Checks a key. Adapters add backend rules (allowed characters, path escapes) and call super. */
  protected validateKey(key: unknown): string {
    return validateKey(key, this.name, this.#maxKeyLength);
  }

  /** Whether `get(key, { version })` is supported; adapters with versions override. */
  protected get supportsVersions(): boolean {
    return false;
  }

  /** Reports an event to every watcher; keys it names are dropped from the cache first. */
  protected emit: EmitFunction = (type, event) => {
    if (this.#cache !== undefined) {
      if (type === 'rotated')
        for (const key of (event as SecretEvents['rotated']).keys) this.#cache.invalidate(key);
      else if (type === 'added' || type === 'removed')
        this.#cache.invalidate((event as SecretEvents['added']).key);
    }
    this.#hub.emit(type, event);
  };

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
    return {
      write: typeof this.writeSecret === 'function',
      delete: typeof this.deleteSecret === 'function',
      list: typeof this.listKeys === 'function',
      watch: typeof this.startWatch === 'function' || typeof this.readSnapshot === 'function',
      metadata: true,
      versions: this.supportsVersions,
    };
  }

  get(key: string, options?: GetOptions): Promise<Secret<string>> {
    // Hot path: a fresh cached value costs a map lookup. Keys are validated before anything is cached.
    if (options === undefined && this.#cache !== undefined && !this.#closed && typeof key === 'string') {
      const hit = this.#cache.hit(key);
      if (hit !== undefined) return hit;
    }
    return this.#get(key, options ?? {});
  }

  async #get(rawKey: string, options: GetOptions): Promise<Secret<string>> {
    const key = this.#enter(rawKey, 'get');
    throwIfAborted(options.signal);
    if (options.version !== undefined && !this.supportsVersions) {
      throw new UnsupportedOperationError(
        { provider: this.name, key, operation: 'get' },
        `provider "${this.name}" does not keep versions`,
      );
    }
    const load = () => this.#load(key, options);
    if (this.#cache === undefined) {
      const loaded = await raceSignal(load(), options.signal);
      return new Secret(loaded.value, loaded.metadata);
    }
    const cacheKey = options.version === undefined ? key : versionedCacheKey(key, options.version);
    return raceSignal(this.#cache.get(cacheKey, key, load), options.signal);
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
      throw this.#mapped(error, 'get', key);
    }
    if (stored === undefined) throw new SecretNotFoundError({ provider: this.name, key, operation: 'get' });
    const value =
      typeof stored.value === 'string' ? stored.value : Buffer.from(stored.value).toString('utf8');
    return { value, metadata: withKey(key, stored.metadata) };
  }

  async metadata(rawKey: string, options: OperationOptions = {}): Promise<SecretMetadata> {
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
      throw this.#mapped(error, 'metadata', key);
    }
    if (found === undefined)
      throw new SecretNotFoundError({ provider: this.name, key, operation: 'metadata' });
    return withKey(key, found);
  }

  async set(rawKey: string, value: string | Secret<SecretValue>, options: SetOptions = {}): Promise<void> {
    const key = this.#enter(rawKey, 'set');
    const text = valueToString(value, this.name, key);
    throwIfAborted(options.signal);
    if (this.writeSecret === undefined)
      throw new ReadOnlyError({ provider: this.name, key, operation: 'set' });
    // Invalidate before and after: a read that started before the write finished cannot store
    // the old value over the new one.
    this.#cache?.invalidate(key);
    try {
      await this.writeSecret(key, text, { ...options, operation: 'set' });
    } catch (error) {
      throw this.#mapped(error, 'set', key);
    } finally {
      this.#cache?.invalidate(key);
    }
  }

  async delete(rawKey: string, options: OperationOptions = {}): Promise<void> {
    const key = this.#enter(rawKey, 'delete');
    throwIfAborted(options.signal);
    if (this.deleteSecret === undefined) {
      throw new UnsupportedOperationError({ provider: this.name, key, operation: 'delete' });
    }
    this.#cache?.invalidate(key);
    let existed: boolean;
    try {
      existed = await this.deleteSecret(key, { operation: 'delete', signal: options.signal });
    } catch (error) {
      throw this.#mapped(error, 'delete', key);
    } finally {
      this.#cache?.invalidate(key);
    }
    if (!existed) throw new SecretNotFoundError({ provider: this.name, key, operation: 'delete' });
  }

  async keys(options: KeysOptions = {}): Promise<string[]> {
    this.#assertOpen('keys');
    throwIfAborted(options.signal);
    if (this.listKeys === undefined)
      throw new UnsupportedOperationError({ provider: this.name, operation: 'keys' });
    let names: string[];
    try {
      names = await raceSignal(
        this.listKeys({ operation: 'keys', signal: options.signal, prefix: options.prefix }),
        options.signal,
      );
    } catch (error) {
      throw this.#mapped(error, 'keys', undefined);
    }
    const prefix = options.prefix;
    return [...new Set(prefix === undefined ? names : names.filter((name) => name.startsWith(prefix)))];
  }

  watch(emitter: SecretEventEmitter, options: WatchOptions = {}): WatchHandle {
    this.#assertOpen('watch');
    return this.#hub.attach(emitter, options, (error) =>
      toSecretError(this.#mapped(error, 'watch', undefined), { provider: this.name, operation: 'watch' }),
    );
  }

  /** Closes the provider: stops watches, releases the adapter's resources. Idempotent. */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#closed = true;
      this.#closing = (async () => {
        await this.#hub.close();
        this.#cache?.clear();
        await this.onClose?.();
      })();
    }
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Counters of the built-in cache, when `cache` is on. */
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

  #assertOpen(operation: SecretOperation): void {
    if (this.#closed) throw new ProviderClosedError({ provider: this.name, operation });
  }

  #enter(key: unknown, operation: SecretOperation): string {
    this.#assertOpen(operation);
    return this.validateKey(key);
  }

  #mapped(error: unknown, operation: SecretOperation, key: string | undefined): unknown {
    if (error instanceof DOMException && error.name === 'AbortError') return error;
    if (isSecretError(error, 'TIMEOUT') && error.operation === undefined) return error;
    return this.mapError(error, { operation, key });
  }

  async #startSource(): Promise<() => Promise<void> | void> {
    if (this.startWatch !== undefined) return this.startWatch(this.emit);
    const readSnapshot = this.readSnapshot?.bind(this);
    if (readSnapshot === undefined) {
      this.emit('warning', {
        provider: this.name,
        code: 'WATCH_UNSUPPORTED',
        message: `provider "${this.name}" cannot report changes; watch will stay silent`,
        detectedAt: new Date(),
      });
      return () => {};
    }
    const controller = new AbortController();
    let current: VersionSnapshot;
    try {
      current = await readSnapshot({ operation: 'watch', signal: controller.signal });
    } catch (error) {
      throw this.#mapped(error, 'watch', undefined);
    }
    const loop = async () => {
      let failures = 0;
      // With jitter, the first poll falls anywhere in the first interval, so instances started
      // together do not poll in step for the rest of their lives.
      let first = this.#pollJitter > 0;
      while (!controller.signal.aborted) {
        const base = this.#pollInterval * 2 ** Math.min(failures, 5);
        const wait = first ? base * Math.random() : jittered(base, this.#pollJitter);
        first = false;
        if (!(await sleep(wait, controller.signal))) return;
        try {
          const next = await readSnapshot({ operation: 'watch', signal: controller.signal });
          if (controller.signal.aborted) return;
          emitDiff(this.emit, this.name, diffSnapshots(current, next));
          current = next;
          failures = 0;
        } catch (error) {
          if (controller.signal.aborted) return;
          failures++;
          const mapped = this.#mapped(error, 'watch', undefined);
          this.emit('error', {
            provider: this.name,
            error: isSecretError(mapped) ? mapped : this.mapError(mapped, { operation: 'watch' }),
            detectedAt: new Date(),
          });
        }
      }
    };
    const running = loop();
    return async () => {
      controller.abort();
      await running;
    };
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
