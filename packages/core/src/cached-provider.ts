import type { CacheOptions, CacheStats, LoadedSecret } from './cache.js';
import { CacheFront } from './cache-front.js';
import { ProviderClosedError, UnsupportedOperationError } from './errors.js';
import { getMany } from './many.js';
import type { Secret, SecretValue } from './secret.js';
import type { GetOptions, OperationOptions, SecretEvents, SecretProvider, SetOptions } from './types.js';
import { throwIfAborted, uniqueKeys, validateKey } from './util.js';
import { WrappingProvider } from './wrapping-provider.js';

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
export class CachedProvider extends WrappingProvider {
  readonly #cache: CacheFront;

  constructor(provider: SecretProvider, options: CachedProviderOptions = {}) {
    super(provider, options);
    this.#cache = new CacheFront(options, this.name, (error, key) =>
      this.emit('error', { provider: this.name, error, key, detectedAt: new Date() }),
    );
  }

  override get(key: string, options?: GetOptions): Promise<Secret<string>> {
    if (options === undefined && !this.closed && typeof key === 'string') {
      const hit = this.#cache.hit(key);
      if (hit !== undefined) return hit;
    }
    return this.#get(key, options ?? {});
  }

  async #get(rawKey: string, options: GetOptions): Promise<Secret<string>> {
    const key = this.#enter(rawKey, 'get');
    throwIfAborted(options.signal);
    // A forced or bounded read reaches the wrapped provider's own cache too, if it has one.
    const innerOptions =
      options.version === undefined && options.forceFetch === undefined && options.maxAge === undefined
        ? undefined
        : { version: options.version, forceFetch: options.forceFetch, maxAge: options.maxAge };
    const load = async () => {
      const secret = await this.provider.get(key, innerOptions);
      return { value: secret.reveal(), metadata: secret.metadata };
    };
    return this.#cache.read(key, options.version, options.signal, load, options);
  }

  /**
   * The values of several keys through the cache: what it holds is served, the misses go to the
   * wrapped provider in one `getMany` (its batch read where it has one).
   */
  override async getMany(
    rawKeys: readonly string[],
    options: GetOptions = {},
  ): Promise<Map<string, Secret<string>>> {
    this.assertOpen('get');
    const keys = uniqueKeys(rawKeys, this.name, (key) => validateKey(key, this.name));
    throwIfAborted(options.signal);
    if (options.version !== undefined) {
      throw new UnsupportedOperationError(
        { provider: this.name, operation: 'get' },
        'getMany reads the latest versions; read a version with get(key, { version })',
      );
    }
    if (keys.length === 0) return new Map();
    const innerOptions =
      options.forceFetch === undefined && options.maxAge === undefined
        ? undefined
        : { forceFetch: options.forceFetch, maxAge: options.maxAge };
    const loadMany = async (missing: string[]) => {
      const loaded = new Map<string, LoadedSecret>();
      for (const [key, secret] of await getMany(this.provider, missing, innerOptions)) {
        loaded.set(key, { value: secret.reveal(), metadata: secret.metadata });
      }
      return loaded;
    };
    return this.#cache.readMany(keys, options.signal, loadMany, options);
  }

  /** Answered by the cache when it knows, else by the wrapped provider. */
  override has(key: string, options?: OperationOptions): boolean | Promise<boolean> {
    if (this.closed)
      return Promise.reject(new ProviderClosedError({ provider: this.name, operation: 'has' }));
    // An aborted caller gets the signal's reason, even when the cache could answer.
    if (options?.signal?.aborted) return Promise.reject(options.signal.reason);
    if (typeof key === 'string') {
      const cached = this.#cache.holds(key);
      if (cached !== undefined) return cached;
    }
    return super.has(key, options);
  }

  /**
   * The fresh cached value of `key` without waiting, or `undefined` when it would need the
   * backend (this never calls it).
   */
  peek(key: string): Secret<string> | undefined {
    return this.closed ? undefined : this.#cache.peek(key);
  }

  override async set(
    rawKey: string,
    value: string | Secret<SecretValue>,
    options?: SetOptions,
  ): Promise<void> {
    const key = this.#enter(rawKey, 'set');
    await this.#cache.write(key, () => super.set(key, value, options));
  }

  override async delete(rawKey: string, options?: OperationOptions): Promise<void> {
    const key = this.#enter(rawKey, 'delete');
    await this.#cache.write(key, () => super.delete(key, options));
  }

  /** Drops `key` (all versions); reads in flight for it will not store their result. */
  invalidate(key: string): void {
    this.#cache.invalidate(key);
  }

  /** Drops every entry. */
  clear(): void {
    this.#cache.clear();
  }

  /** The cache's counters; the same as `BaseProvider`'s `cacheStats()`. */
  cacheStats(): CacheStats {
    return this.#cache.stats();
  }

  /** Same as {@link CachedProvider.cacheStats}. */
  stats(): CacheStats {
    return this.#cache.stats();
  }

  /** While watched, the wrapped provider's events invalidate the keys they name. */
  protected override onInnerEvent(type: keyof SecretEvents, event: SecretEvents[keyof SecretEvents]): void {
    this.#cache.observe(type, event);
  }

  protected override onClose(): void {
    this.#cache.clear();
  }

  protected override describe(): Record<string, unknown> {
    return { cached: true, size: this.#cache.stats().size };
  }

  #enter(key: unknown, operation: 'get' | 'set' | 'delete'): string {
    this.assertOpen(operation);
    return validateKey(key, this.name);
  }
}
