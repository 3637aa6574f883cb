import { type CacheOptions, type CacheStats, SecretCache, versionedCacheKey } from './cache.js';
import { ProviderClosedError, type SecretOperation, toSecretError } from './errors.js';
import { createEmitter, EventHub } from './events.js';
import { INSPECT_CUSTOM, type Secret, type SecretValue } from './secret.js';
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
import { raceSignal, throwIfAborted, validateKey } from './util.js';

export interface CachedProviderOptions extends CacheOptions {
  /** Name in errors and events. @default the wrapped provider's name */
  readonly name?: string | undefined;
  /** Close the wrapped provider on `close`. @default true */
  readonly ownsProvider?: boolean | undefined;
}

/**
 * A cache in front of any provider (see {@link CacheOptions}): one backend request per key at a
 * time, TTL with jitter capped by the secret's expiry or lease, stale-while-revalidate,
 * stale-if-error within a bound, negative caching, and writes through it that no older read can
 * undo. While watched, the wrapped provider's events invalidate the keys they name.
 *
 * @example
 * ```ts
 * const secrets = new CachedProvider(vault, { ttl: 300_000, staleIfError: 600_000 });
 * const password = await secrets.get('db/creds#password');
 * ```
 */
export class CachedProvider implements SecretProvider {
  readonly name: string;
  readonly #inner: SecretProvider;
  readonly #cache: SecretCache;
  readonly #owns: boolean;
  readonly #hub: EventHub;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(provider: SecretProvider, options: CachedProviderOptions = {}) {
    this.#inner = provider;
    this.name = options.name ?? provider.name;
    this.#owns = options.ownsProvider ?? true;
    this.#cache = new SecretCache(options, this.name, (error, key) =>
      this.#hub.emit('error', { provider: this.name, error, key, detectedAt: new Date() }),
    );
    this.#hub = new EventHub(async () => {
      const inner = createEmitter();
      inner.on('*', (type, event) => {
        if (type === 'rotated')
          for (const key of (event as SecretEvents['rotated']).keys) this.#cache.invalidate(key);
        else if (type === 'added' || type === 'removed')
          this.#cache.invalidate((event as SecretEvents['added']).key);
        this.#hub.emit(type, event as never);
      });
      const handle = this.#inner.watch(inner);
      await handle.ready;
      return () => handle.stop();
    });
  }

  /** The wrapped provider. */
  get provider(): SecretProvider {
    return this.#inner;
  }

  get capabilities(): ProviderCapabilities {
    return this.#inner.capabilities;
  }

  get(key: string, options?: GetOptions): Promise<Secret<string>> {
    if (options === undefined && !this.#closed && typeof key === 'string') {
      const hit = this.#cache.hit(key);
      if (hit !== undefined) return hit;
    }
    return this.#get(key, options ?? {});
  }

  async #get(rawKey: string, options: GetOptions): Promise<Secret<string>> {
    const key = this.#enter(rawKey, 'get');
    throwIfAborted(options.signal);
    const cacheKey = options.version === undefined ? key : versionedCacheKey(key, options.version);
    const innerOptions = options.version === undefined ? undefined : { version: options.version };
    const load = async () => {
      const secret = await this.#inner.get(key, innerOptions);
      return { value: secret.reveal(), metadata: secret.metadata };
    };
    return raceSignal(this.#cache.get(cacheKey, key, load), options.signal);
  }

  /**
   * The fresh cached value of `key` without waiting, or `undefined` when it would need the
   * backend (this never calls it).
   */
  peek(key: string): Secret<string> | undefined {
    return this.#closed ? undefined : this.#cache.peek(key);
  }

  async metadata(key: string, options?: OperationOptions): Promise<SecretMetadata> {
    this.#assertOpen('metadata');
    return this.#inner.metadata(key, options);
  }

  async set(rawKey: string, value: string | Secret<SecretValue>, options?: SetOptions): Promise<void> {
    const key = this.#enter(rawKey, 'set');
    this.#cache.invalidate(key);
    try {
      await this.#inner.set(key, value, options);
    } finally {
      this.#cache.invalidate(key);
    }
  }

  async delete(rawKey: string, options?: OperationOptions): Promise<void> {
    const key = this.#enter(rawKey, 'delete');
    this.#cache.invalidate(key);
    try {
      await this.#inner.delete(key, options);
    } finally {
      this.#cache.invalidate(key);
    }
  }

  async keys(options?: KeysOptions): Promise<string[]> {
    this.#assertOpen('keys');
    return this.#inner.keys(options);
  }

  watch(emitter: SecretEventEmitter, options: WatchOptions = {}): WatchHandle {
    this.#assertOpen('watch');
    return this.#hub.attach(emitter, options, (error) =>
      toSecretError(error, { provider: this.name, operation: 'watch' }),
    );
  }

  /** Drops `key` (all versions); reads in flight for it will not store their result. */
  invalidate(key: string): void {
    this.#cache.invalidate(key);
  }

  /** Drops every entry. */
  clear(): void {
    this.#cache.clear();
  }

  stats(): CacheStats {
    return this.#cache.stats();
  }

  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#closed = true;
      this.#closing = (async () => {
        await this.#hub.close();
        this.#cache.clear();
        if (this.#owns) await this.#inner.close();
      })();
    }
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  toJSON(): Record<string, unknown> {
    return { provider: this.name, cached: true, stats: this.stats(), closed: this.#closed };
  }

  [INSPECT_CUSTOM](): string {
    return `CachedProvider { name: ${JSON.stringify(this.name)}, size: ${this.#cache.stats().size} }`;
  }

  #assertOpen(operation: SecretOperation): void {
    if (this.#closed) throw new ProviderClosedError({ provider: this.name, operation });
  }

  #enter(key: unknown, operation: SecretOperation): string {
    this.#assertOpen(operation);
    return validateKey(key, this.name);
  }
}
