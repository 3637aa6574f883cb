import { LRUCache } from 'lru-cache';
import { HoldOff } from './backoff.js';
import { InvalidConfigError, isSecretError, type SecretError, SecretNotFoundError } from './errors.js';
import { Secret, shareSecret } from './secret.js';
import { cacheChannel, type OperationContext, publishCache } from './telemetry.js';
import type { SecretMetadata } from './types.js';

/** Options of the cache in front of a provider. Durations are in milliseconds. */
export interface CacheOptions {
  /**
   * How long a value is served without asking the backend. Capped by the secret's own expiry or
   * lease when the provider reports one.
   * @default 3_600_000 (one hour)
   */
  readonly ttl?: number | undefined;
  /** Most entries kept; the least recently used goes first. @default 500 */
  readonly max?: number | undefined;
  /**
   * Fraction by which each entry's TTL is shortened at random, so that instances that started
   * together spread their refreshes out instead of hitting the backend in lock-step.
   * @default 0.1
   */
  readonly jitter?: number | undefined;
  /**
   * Draw the first TTL of an entry (a key loaded while none was held) from the whole TTL
   * (`[0, 1] × ttl`) instead of shortening it by `jitter`: instances started together (a fleet
   * restarted at once) then refresh each secret at different times from the first round on, instead
   * of in step for hours. Later TTLs follow `jitter`.
   * @default false
   */
  readonly spreadFirst?: boolean | undefined;
  /**
   * After the TTL, serve the old value for this long while one background request refreshes it.
   * @default 0 (off)
   */
  readonly staleWhileRevalidate?: number | undefined;
  /**
   * When a refresh fails (anything but not-found), keep serving the last good value until it is
   * this old past its TTL; after that the error surfaces. Never past the secret's own expiry.
   * While it serves a stale value the key is held off (not asked again) for the backend's
   * `Retry-After` or a back-off; after a throttling (`RATE_LIMITED`) the keys held come back
   * spread over one TTL, as the core `HoldOff` does.
   * @default 0 (off)
   */
  readonly staleIfError?: number | undefined;
  /** How long a not-found is remembered; 0 turns negative caching off. @default 5_000 */
  readonly negativeTtl?: number | undefined;
  /** Expiring secrets are dropped this long before their expiry. @default 1_000 */
  readonly expiryMargin?: number | undefined;
  /** Clock in epoch milliseconds (tests and simulations). @default Date.now */
  readonly now?: (() => number) | undefined;
  /** Random source in [0, 1) for jitter (simulations). @default Math.random */
  readonly random?: (() => number) | undefined;
}

/** What a caller asks of a cached value, per call (`GetOptions.maxAge` / `forceFetch`). */
export interface Freshness {
  /** Serve a cached value only if the backend gave it at most this many ms ago. */
  readonly maxAge?: number | undefined;
  /** Ask the backend whatever the cache holds (joining a request already in flight). */
  readonly forceFetch?: boolean | undefined;
}

/** Counters of a cache; sizes and counts only, never keys' values. */
export interface CacheStats {
  /** Reads answered from a fresh entry. */
  hits: number;
  /** Reads that went to the backend. */
  misses: number;
  /** Reads that joined another read's backend request instead of making their own. */
  coalesced: number;
  /** Reads answered with a stale value (while revalidating, or because the backend failed). */
  staleServed: number;
  /** Reads answered "not found" from a remembered miss. */
  negativeHits: number;
  /** Backend failures seen by the cache (including background refreshes). */
  errors: number;
  /** Entries pushed out by the size bound. */
  evictions: number;
  /** Entries held now. */
  size: number;
}

/** What a loader hands the cache: a value and what is known about it. */
export interface LoadedSecret {
  readonly value: string;
  readonly metadata?: SecretMetadata | undefined;
}

let secretOf: (entry: CacheEntry) => Secret<string> | undefined;
let resolvedOf: (entry: CacheEntry) => Promise<Secret<string>> | undefined;

/**
 * One cached value. The secret sits in a private field so that what `lru-cache` publishes on its
 * diagnostics channel (stored entries, to any subscriber in the process) cannot reveal it. Times
 * are milliseconds since the cache's epoch, small integers that V8 stores without boxing.
 */
class CacheEntry {
  #secret: Secret<string> | undefined;
  /** Resolved with `#secret`, made once: a hit then returns without allocating a promise. */
  #resolved: Promise<Secret<string>> | undefined;
  /** Served without a backend call until then. */
  readonly freshUntil: number;
  /** The secret's own expiry (minus the margin), or -1 when it has none. */
  readonly hardUntil: number;
  /** When the backend answered, for callers that ask for a value no older than some age. */
  readonly loadedAt: number;

  constructor(secret: Secret<string> | undefined, freshUntil: number, hardUntil: number, loadedAt: number) {
    this.#secret = secret;
    this.#resolved = secret === undefined ? undefined : Promise.resolve(secret);
    this.freshUntil = freshUntil;
    this.hardUntil = hardUntil;
    this.loadedAt = loadedAt;
  }

  static {
    secretOf = (entry) => entry.#secret;
    resolvedOf = (entry) => entry.#resolved;
  }

  get negative(): boolean {
    return this.#secret === undefined;
  }
}

/**
 * `Date.now()` read at most once per millisecond: the hit path then costs a map lookup. The
 * reading is refreshed by a timer that does not keep the process alive; TTLs are minutes, so a
 * reading up to one event-loop turn old does not matter.
 */
let coarseNow = 0;
const resetCoarseNow = () => {
  coarseNow = 0;
};
function defaultNow(): number {
  if (coarseNow === 0) {
    coarseNow = Date.now();
    setTimeout(resetCoarseNow, 1).unref();
  }
  return coarseNow;
}

/** What a read does with the entry it found (see `SecretCache.#serve`). */
const FRESH = 0;
const REVALIDATE = 1;
const HELD = 2;
const LOAD = 3;
type Serve = typeof FRESH | typeof REVALIDATE | typeof HELD | typeof LOAD;

interface InFlight {
  readonly promise: Promise<CacheEntry>;
  /** Cleared when a write or invalidation overtakes this read: its result must not be stored. */
  valid: boolean;
}

/**
 * The caching engine behind the one cache front end (`CachedProvider` and the `cache` option of
 * `BaseProvider`):
 * TTL with jitter, LRU bound, one backend request per key at a time, stale-while-revalidate,
 * stale-if-error within a bound, negative caching, and writes that no older read can overtake.
 */
export class SecretCache {
  readonly #lru: LRUCache<string, CacheEntry>;
  readonly #inflight = new Map<string, InFlight>();
  /**
   * Keys whose last refresh failed while a last good value was served: until they may be tried
   * again, that value is served without asking the backend, so an outage (or a 429) does not turn
   * every read into a request, and recovery is not met by every reader at once.
   */
  readonly #holdOff: HoldOff<string>;
  readonly #ttl: number;
  readonly #jitter: number;
  readonly #spreadFirst: boolean;
  readonly #swr: number;
  readonly #staleIfError: number;
  readonly #negativeTtl: number;
  readonly #expiryMargin: number;
  readonly #now: () => number;
  readonly #epoch: number;
  readonly #random: () => number;
  readonly #provider: string;
  /**
   * Whether a version of a key was ever read: until then no cache key holds a version, and
   * events name the cache key as it is (searching every key read for one costs more than a hit).
   */
  #versions = false;
  readonly #onBackgroundError: ((error: SecretError, key: string) => void) | undefined;
  readonly #stats = {
    hits: 0,
    misses: 0,
    coalesced: 0,
    staleServed: 0,
    negativeHits: 0,
    errors: 0,
    evictions: 0,
  };

  constructor(
    options: CacheOptions = {},
    provider = 'cache',
    onBackgroundError?: (error: SecretError, key: string) => void,
  ) {
    this.#ttl = nonNegative(options.ttl, 3_600_000, 'ttl');
    this.#jitter = Math.min(1, nonNegative(options.jitter, 0.1, 'jitter'));
    this.#spreadFirst = options.spreadFirst === true;
    this.#swr = nonNegative(options.staleWhileRevalidate, 0, 'staleWhileRevalidate');
    this.#staleIfError = nonNegative(options.staleIfError, 0, 'staleIfError');
    this.#negativeTtl = nonNegative(options.negativeTtl, 5_000, 'negativeTtl');
    this.#expiryMargin = nonNegative(options.expiryMargin, 1_000, 'expiryMargin');
    const clock = options.now ?? defaultNow;
    const epoch = clock();
    this.#epoch = epoch;
    this.#now = () => clock() - epoch;
    this.#random = options.random ?? Math.random;
    this.#holdOff = new HoldOff({ random: this.#random });
    this.#provider = provider;
    this.#onBackgroundError = onBackgroundError;
    const max = Math.max(1, Math.floor(nonNegative(options.max, 500, 'max')));
    this.#lru = new LRUCache<string, CacheEntry>({
      max,
      dispose: (_entry, cacheKey, reason) => {
        if (reason === 'evict') this.#stats.evictions++;
        if (cacheChannel.hasSubscribers && (reason === 'evict' || reason === 'delete'))
          this.#publish(cacheKey, 'eviction', reason === 'evict' ? 'size' : 'invalidated');
      },
    });
  }

  /**
   * The fresh value of `cacheKey`, synchronously, or `undefined` when the backend would have to
   * be asked. Counts as a hit when it answers.
   */
  peek(cacheKey: string): Secret<string> | undefined {
    const entry = this.#lru.get(cacheKey);
    if (entry === undefined || entry.freshUntil <= this.#now()) return undefined;
    const secret = secretOf(entry);
    if (secret !== undefined) {
      this.#stats.hits++;
      if (cacheChannel.hasSubscribers) this.#publish(cacheKey, 'hit');
    }
    return secret;
  }

  /**
   * Whether a fresh entry (a value or a remembered miss) answers for `cacheKey`: `true` or
   * `false`, or `undefined` when only the backend can tell. Not counted in the stats.
   */
  holds(cacheKey: string): boolean | undefined {
    const entry = this.#lru.peek(cacheKey);
    if (entry === undefined || entry.freshUntil <= this.#now()) return undefined;
    return !entry.negative;
  }

  /**
   * Like {@link SecretCache.peek}, as an already resolved promise (the same one for every hit
   * of an entry), or `undefined` when the backend would have to be asked. `trace`, the context of
   * an operation being published, is completed by a hit (served from the cache, its version).
   */
  hit(cacheKey: string, trace?: OperationContext): Promise<Secret<string>> | undefined {
    const entry = this.#lru.get(cacheKey);
    if (entry === undefined || entry.freshUntil <= this.#now()) return undefined;
    const resolved = resolvedOf(entry);
    if (resolved !== undefined) {
      this.#stats.hits++;
      if (cacheChannel.hasSubscribers) this.#publish(cacheKey, 'hit');
      if (trace !== undefined) {
        trace.servedFrom = 'cache';
        trace.version = secretOf(entry)?.metadata?.version;
        trace.outcome = 'ok';
      }
    }
    return resolved;
  }

  /**
   * The value of `cacheKey`, from the cache when fresh, else from `load`, with every protection
   * of this cache. `key` names the secret in errors. `trace`, the context of an operation being
   * published, is told where the value came from.
   */
  async get(
    cacheKey: string,
    key: string,
    load: () => Promise<LoadedSecret>,
    freshness?: Freshness,
    trace?: OperationContext,
  ): Promise<Secret<string>> {
    // Only here is a version of a key read (getMany reads the latest versions).
    if (cacheKey !== key) this.#versions = true;
    const served = this.#served(cacheKey, trace);
    const now = this.#now();
    const entry = this.#lru.get(cacheKey);
    const decision = this.#serve(cacheKey, entry, now, freshness);
    if (decision !== LOAD) {
      const cached = entry as CacheEntry;
      served?.(decision === FRESH ? (cached.negative ? 'negative' : 'cache') : 'stale');
      if (decision === REVALIDATE) this.#refreshInBackground(cacheKey, key, load, cached);
      if (cached.negative) throw new SecretNotFoundError({ provider: this.#provider, key, operation: 'get' });
      return secretOf(cached) as Secret<string>;
    }
    const joined = this.#inflight.get(cacheKey);
    if (joined !== undefined) {
      this.#stats.coalesced++;
      served?.('coalesced');
      return this.#settle(staleAfterError(await joined.promise, entry, trace), key);
    }
    this.#stats.misses++;
    served?.('miss');
    return this.#settle(staleAfterError(await this.#load(cacheKey, load, entry).promise, entry, trace), key);
  }

  /** Where a read was served from goes to the operation's context and the cache channel; `undefined` when nobody listens. */
  #served(
    cacheKey: string,
    trace: OperationContext | undefined,
  ): ((result: 'cache' | 'stale' | 'coalesced' | 'negative' | 'miss') => void) | undefined {
    const publish = cacheChannel.hasSubscribers;
    if (trace === undefined && !publish) return undefined;
    return (result) => {
      if (trace !== undefined) trace.servedFrom = result === 'miss' ? 'backend' : result;
      if (publish) this.#publish(cacheKey, result === 'cache' ? 'hit' : result);
    };
  }

  #publish(
    cacheKey: string,
    result: Parameters<typeof publishCache>[2],
    reason?: 'size' | 'invalidated',
  ): void {
    // A versioned entry is reported under its key: the version is not part of the name.
    const nul = this.#versions ? cacheKey.indexOf('\u0000') : -1;
    publishCache(this.#provider, nul < 0 ? cacheKey : cacheKey.slice(0, nul), result, this.#lru.size, reason);
  }

  /**
   * The values of `keys` (latest versions, each key once), with every protection of
   * {@link SecretCache.get} per key: what the cache can answer is served, keys already being read
   * join that read, and the rest go to `loadMany` in one call (its map lacks the keys that do not
   * exist). Keys served stale while revalidating are refreshed by one more background call. A
   * single `get` of a key arriving while the batch runs joins it. Missing keys are absent from the
   * result; a failure of the batch rejects, unless every key it failed for has a last good value
   * within `staleIfError`.
   */
  async getMany(
    keys: readonly string[],
    loadMany: (keys: string[]) => Promise<Map<string, LoadedSecret>>,
    freshness?: Freshness,
  ): Promise<Map<string, Secret<string>>> {
    const now = this.#now();
    const served = new Map<string, CacheEntry>();
    const pending = new Map<string, Promise<CacheEntry>>();
    const toLoad: [string, CacheEntry | undefined][] = [];
    const toRevalidate: [string, CacheEntry][] = [];
    for (const key of keys) {
      const entry = this.#lru.get(key);
      const decision = this.#serve(key, entry, now, freshness);
      if (decision !== LOAD) {
        const cached = entry as CacheEntry;
        if (decision === REVALIDATE && !this.#inflight.has(key)) toRevalidate.push([key, cached]);
        served.set(key, cached);
        continue;
      }
      const joined = this.#inflight.get(key);
      if (joined !== undefined) {
        this.#stats.coalesced++;
        pending.set(key, joined.promise);
        continue;
      }
      this.#stats.misses++;
      toLoad.push([key, entry]);
    }
    for (const [key, inflight] of this.#loadBatch(toLoad, loadMany)) pending.set(key, inflight.promise);
    for (const [key, inflight] of this.#loadBatch(toRevalidate, loadMany)) {
      inflight.promise.catch((error: unknown) => {
        if (isSecretError(error)) this.#onBackgroundError?.(error, key);
      });
    }
    // Awaited together, so that every key's outcome is observed even when one fails.
    const loaded = await Promise.all(pending.values());
    let index = 0;
    for (const key of pending.keys()) served.set(key, loaded[index++] as CacheEntry);
    const result = new Map<string, Secret<string>>();
    for (const key of keys) {
      const entry = served.get(key);
      const secret = entry === undefined ? undefined : secretOf(entry);
      if (secret !== undefined) result.set(key, secret);
    }
    return result;
  }

  /**
   * What a read of `cacheKey` does with `entry` now: serve it ({@link FRESH}, {@link HELD}), serve
   * it and refresh in the background ({@link REVALIDATE}), or ask the backend ({@link LOAD}).
   * Counts what it serves. A caller that asks for a newer value than an entry holds does not get
   * that entry (nor a stale one while it revalidates); it still gets the last good value if the
   * backend fails within `staleIfError`.
   */
  #serve(
    cacheKey: string,
    entry: CacheEntry | undefined,
    now: number,
    freshness: Freshness | undefined,
  ): Serve {
    if (
      entry === undefined ||
      freshness?.forceFetch === true ||
      (freshness?.maxAge !== undefined && now - entry.loadedAt >= freshness.maxAge)
    ) {
      return LOAD;
    }
    if (entry.freshUntil > now) {
      if (entry.negative) this.#stats.negativeHits++;
      else this.#stats.hits++;
      return FRESH;
    }
    if (!entry.negative && this.#until(entry, this.#swr) > now) {
      this.#stats.staleServed++;
      return REVALIDATE;
    }
    const heldUntil = this.#holdOff.until(cacheKey);
    if (heldUntil !== undefined && heldUntil > now && this.#until(entry, this.#staleIfError) > now) {
      this.#stats.staleServed++;
      return HELD;
    }
    return LOAD;
  }

  /**
   * One in-flight read per item, all answered by a single `loadMany` call for their keys (made
   * when the first of them starts, none when `items` is empty).
   */
  #loadBatch(
    items: readonly (readonly [string, CacheEntry | undefined])[],
    loadMany: (keys: string[]) => Promise<Map<string, LoadedSecret>>,
  ): [string, InFlight][] {
    let batch: Promise<Map<string, LoadedSecret>> | undefined;
    const loadAll = () => {
      batch ??= loadMany(items.map(([key]) => key));
      return batch;
    };
    return items.map(([key, previous]) => [
      key,
      this.#load(
        key,
        async () => {
          const loaded = (await loadAll()).get(key);
          if (loaded === undefined)
            throw new SecretNotFoundError({ provider: this.#provider, key, operation: 'get' });
          return loaded;
        },
        previous,
      ),
    ]);
  }

  /** Forgets `key` (every version) and makes reads in flight for it unable to store their result. */
  invalidate(key: string): void {
    for (const cacheKey of [key, ...this.#versionKeys(key)]) {
      this.#lru.delete(cacheKey);
      this.#holdOff.delete(cacheKey);
      const inflight = this.#inflight.get(cacheKey);
      if (inflight !== undefined) {
        inflight.valid = false;
        this.#inflight.delete(cacheKey);
      }
    }
  }

  /** Forgets everything. */
  clear(): void {
    this.#lru.clear();
    this.#holdOff.clear();
    for (const inflight of this.#inflight.values()) inflight.valid = false;
    this.#inflight.clear();
  }

  stats(): CacheStats {
    return { ...this.#stats, size: this.#lru.size };
  }

  #versionKeys(key: string): string[] {
    const prefix = versionedCacheKey(key, '');
    const found: string[] = [];
    for (const cacheKey of this.#lru.keys()) if (cacheKey.startsWith(prefix)) found.push(cacheKey);
    return found;
  }

  #settle(entry: CacheEntry, key: string): Secret<string> {
    const secret = secretOf(entry);
    if (secret === undefined)
      throw new SecretNotFoundError({ provider: this.#provider, key, operation: 'get' });
    return secret;
  }

  /** End of the window `extra` ms past freshness, never past the secret's own expiry. */
  #until(entry: CacheEntry, extra: number): number {
    const end = entry.freshUntil + extra;
    return entry.hardUntil >= 0 && entry.hardUntil < end ? entry.hardUntil : end;
  }

  #refreshInBackground(
    cacheKey: string,
    key: string,
    load: () => Promise<LoadedSecret>,
    stale: CacheEntry,
  ): void {
    if (this.#inflight.has(cacheKey)) return;
    this.#load(cacheKey, load, stale).promise.catch((error: unknown) => {
      if (isSecretError(error)) this.#onBackgroundError?.(error, key);
    });
  }

  /**
   * Starts the one backend request for `cacheKey`. Every waiter shares its outcome: a fresh
   * entry, a remembered not-found, the last good entry when the backend fails within
   * `staleIfError`, or the error. The in-flight record is removed whatever happens.
   */
  #load(cacheKey: string, load: () => Promise<LoadedSecret>, previous: CacheEntry | undefined): InFlight {
    const inflight: InFlight = {
      valid: true,
      promise: Promise.resolve()
        .then(load)
        .then(
          (loaded) => {
            const entry = this.#entryFor(loaded, previous === undefined);
            this.#holdOff.succeed(cacheKey, this.#now());
            if (inflight.valid) this.#lru.set(cacheKey, entry);
            return entry;
          },
          (error: unknown) => {
            const now = this.#now();
            if (isSecretError(error, 'NOT_FOUND')) {
              this.#holdOff.succeed(cacheKey, now);
              const negative = new CacheEntry(undefined, now + this.#negativeTtl, -1, now);
              if (inflight.valid) {
                if (this.#negativeTtl > 0) this.#lru.set(cacheKey, negative);
                else this.#lru.delete(cacheKey);
              }
              return negative;
            }
            this.#stats.errors++;
            if (
              previous !== undefined &&
              !previous.negative &&
              this.#until(previous, this.#staleIfError) > now
            ) {
              this.#stats.staleServed++;
              if (cacheChannel.hasSubscribers) this.#publish(cacheKey, 'stale');
              // Wait before asking again (the backend's Retry-After or a back-off; after a
              // throttling, spread over the shortest TTL so that a backlog does not return at once).
              this.#holdOff.fail(cacheKey, error, now, this.#ttl * (1 - this.#jitter));
              return previous;
            }
            this.#holdOff.delete(cacheKey);
            throw error;
          },
        )
        .finally(() => {
          if (this.#inflight.get(cacheKey) === inflight) this.#inflight.delete(cacheKey);
        }),
    };
    this.#inflight.set(cacheKey, inflight);
    return inflight;
  }

  #entryFor(loaded: LoadedSecret, first: boolean): CacheEntry {
    const now = this.#now();
    const share = first && this.#spreadFirst ? this.#random() : 1 - this.#jitter * this.#random();
    let fresh = Math.round(now + this.#ttl * share);
    let hard = -1;
    const expiry = expiryOf(loaded.metadata);
    if (expiry !== undefined) {
      // Relative to this cache's epoch, like every time in an entry.
      hard = Math.max(0, expiry - this.#expiryMargin - this.#epoch);
      fresh = Math.min(fresh, hard);
    }
    return new CacheEntry(shareSecret(new Secret(loaded.value, loaded.metadata)), fresh, hard, now);
  }
}

/** The entry a load settled with; a failed refresh that served the last good value says so in `trace`. */
function staleAfterError(
  settled: CacheEntry,
  previous: CacheEntry | undefined,
  trace: OperationContext | undefined,
): CacheEntry {
  if (trace !== undefined && settled === previous) trace.servedFrom = 'stale';
  return settled;
}

/** The epoch milliseconds after which the value is no longer valid, from its expiry or lease. */
function expiryOf(metadata: SecretMetadata | undefined): number | undefined {
  if (metadata === undefined) return undefined;
  const times: number[] = [];
  if (metadata.expiresAt !== undefined) times.push(metadata.expiresAt.getTime());
  if (metadata.lease !== undefined) times.push(metadata.lease.issuedAt.getTime() + metadata.lease.durationMs);
  return times.length === 0 ? undefined : Math.min(...times);
}

/** The cache key of one version of `key`; the latest version is cached under `key` itself. */
export function versionedCacheKey(key: string, version: string): string {
  // NUL never appears in a valid key, so this cannot collide with another key.
  return `${key}\u0000@${version}`;
}

function nonNegative(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new InvalidConfigError({}, `invalid cache option ${name}: must be a number >= 0`);
  }
  return value;
}
