import {
  type CacheOptions,
  type CacheStats,
  type Freshness,
  type LoadedSecret,
  SecretCache,
  versionedCacheKey,
} from './cache.js';
import { InvalidConfigError, type SecretError } from './errors.js';
import type { Secret } from './secret.js';
import type { SecretEvents } from './types.js';
import { raceSignal } from './util.js';

/**
 * The one cache front end: what a provider does around its {@link SecretCache}. Reads go through
 * the cache (per version), writes and deletes invalidate before and after (a read that started
 * before the write finished cannot store the old value over the new one), events invalidate the
 * keys they name. `BaseProvider`'s `cache` option and `CachedProvider` are both this, so they
 * behave alike and report the same `cacheStats()`.
 */
export class CacheFront {
  readonly #cache: SecretCache;

  constructor(
    options: CacheOptions,
    provider: string,
    onBackgroundError: (error: SecretError, key: string) => void,
  ) {
    this.#cache = new SecretCache(options, provider, onBackgroundError);
  }

  /** The hot path: an already resolved promise of a fresh value, or `undefined`. */
  hit(key: string): Promise<Secret<string>> | undefined {
    return this.#cache.hit(key);
  }

  /** The fresh value without waiting, or `undefined` (never calls the backend). */
  peek(key: string): Secret<string> | undefined {
    return this.#cache.peek(key);
  }

  /** Whether the cache knows, without asking the backend, that `key` exists (`undefined`: it does not know). */
  holds(key: string): boolean | undefined {
    return this.#cache.holds(key);
  }

  /** The value of `key` (or of one version of it), loaded through the cache. */
  read(
    key: string,
    version: string | undefined,
    signal: AbortSignal | undefined,
    load: () => Promise<LoadedSecret>,
    freshness?: Freshness,
  ): Promise<Secret<string>> {
    const cacheKey = version === undefined ? key : versionedCacheKey(key, version);
    return raceSignal(this.#cache.get(cacheKey, key, load, checkedFreshness(freshness)), signal);
  }

  /**
   * The latest values of `keys` (valid, each once) through the cache: what it holds is served,
   * the rest is loaded by one `loadMany` call (see {@link SecretCache.getMany}).
   */
  readMany(
    keys: readonly string[],
    signal: AbortSignal | undefined,
    loadMany: (keys: string[]) => Promise<Map<string, LoadedSecret>>,
    freshness?: Freshness,
  ): Promise<Map<string, Secret<string>>> {
    return raceSignal(this.#cache.getMany(keys, loadMany, checkedFreshness(freshness)), signal);
  }

  /** Runs a write or delete of `key` with the cache invalidated before and after. */
  async write<T>(key: string, change: () => Promise<T>): Promise<T> {
    this.#cache.invalidate(key);
    try {
      return await change();
    } finally {
      this.#cache.invalidate(key);
    }
  }

  /** Drops the keys an event names. */
  observe(type: keyof SecretEvents, event: SecretEvents[keyof SecretEvents]): void {
    if (type === 'rotated')
      for (const key of (event as SecretEvents['rotated']).keys) this.#cache.invalidate(key);
    else if (type === 'added' || type === 'removed')
      this.#cache.invalidate((event as SecretEvents['added']).key);
  }

  invalidate(key: string): void {
    this.#cache.invalidate(key);
  }

  clear(): void {
    this.#cache.clear();
  }

  stats(): CacheStats {
    return this.#cache.stats();
  }
}

/** Cache options from a provider's `cache` option: `true` for the defaults, `false`/absent for none. */
export function cacheOptionsOf(option: CacheOptions | boolean | undefined): CacheOptions | undefined {
  if (option === undefined || option === false) return undefined;
  return option === true ? {} : option;
}

/** `maxAge`/`forceFetch` of a call, checked; `undefined` when the call asks nothing special. */
function checkedFreshness(freshness: Freshness | undefined): Freshness | undefined {
  if (freshness === undefined || (freshness.maxAge === undefined && freshness.forceFetch !== true))
    return undefined;
  const { maxAge } = freshness;
  if (maxAge !== undefined && (typeof maxAge !== 'number' || Number.isNaN(maxAge) || maxAge < 0)) {
    throw new InvalidConfigError({}, 'invalid get option maxAge: must be a number of ms >= 0');
  }
  return freshness;
}
