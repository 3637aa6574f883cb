import {
  type GetOptions,
  getMany,
  hasKey,
  isSecretError,
  type KeysOptions,
  type OperationOptions,
  type ProviderCapabilities,
  ProviderUnavailableError,
  type Secret,
  type SecretError,
  type SecretEvents,
  type SecretMetadata,
  SecretNotFoundError,
  type SecretOperation,
  type SecretProvider,
  type SecretValue,
} from '@secret-provider/core';
import {
  type Clock,
  DEFAULT_GET_MANY_CONCURRENCY,
  mapBounded,
  raceSignal,
  uniqueKeys,
  validateKey,
} from '@secret-provider/core/adapter';
import {
  type ChainedDeleteOptions,
  type ChainedSetOptions,
  type Child,
  CompositeProvider,
  type CompositeProviderOptions,
  DEFAULT_FAILOVER_CODES,
} from './composite-provider.js';
import { type HealthCheck, HealthProbe, metadataCheck } from './health-probe.js';

/** Options of {@link FailoverProvider}. Durations in milliseconds. */
export interface FailoverProviderOptions extends CompositeProviderOptions {
  /**
   * Which failures of the serving replica switch to the next one (see
   * {@link CompositeProviderOptions.failover}). A missing key is an answer and never switches.
   * @default {@link DEFAULT_FAILOVER_CODES}
   */
  readonly failover?: CompositeProviderOptions['failover'];
  /** Time between probes of a replica that failed. @default 5000 */
  readonly probeInterval?: number | undefined;
  /** Fraction of `probeInterval` removed at random from each wait. @default 0.1 */
  readonly probeJitter?: number | undefined;
  /** How long one probe may take. @default 5000 */
  readonly probeTimeout?: number | undefined;
  /**
   * Checks that a failed replica serves again; resolving means healthy. By default the chain
   * asks for the `metadata` of `probeKey`. An answer that the key is missing, invalid or denied
   * counts as healthy (the backend answered).
   */
  readonly probe?: HealthCheck | undefined;
  /** The key the default probe asks about. @default 'secret-provider-probe' */
  readonly probeKey?: string | undefined;
  /** The clock probes are scheduled on (and `Retry-After` times measured by). @default systemClock */
  readonly clock?: Clock | undefined;
}

/** A replica and its health. */
interface Replica extends Child {
  /** Marked down after a failure, until a probe or a request succeeds. */
  down: boolean;
  readonly probe: HealthProbe;
}

/**
 * Replicas: `new FailoverProvider([primaryVault, secondaryVault])`. The first healthy replica
 * serves every call (sticky). When it fails with one of the `failover` codes the chain marks it
 * down, reports a `FAILOVER` warning and retries the call on the next healthy replica; a
 * The health probe checks the failed one in the background, and once it answers the chain
 * reports `FAILBACK` and serves from it again. When every replica is down, each call tries them
 * all in order and rejects with the first one's error. A missing key is an answer: it does not
 * move to the next replica. Writes go to the serving replica unless one is named; events come
 * from the serving replica only; `capabilities` are what all replicas can do.
 *
 * @example
 * ```ts
 * const vault = new FailoverProvider([primaryVault, secondaryVault], { probeInterval: 10_000 });
 * ```
 */
export class FailoverProvider extends CompositeProvider {
  readonly mode = 'failover' as const;
  readonly #replicas: readonly Replica[];

  constructor(providers: readonly SecretProvider[], options: FailoverProviderOptions = {}) {
    super(providers, options, DEFAULT_FAILOVER_CODES);
    const interval = options.probeInterval ?? 5000;
    const timeout = options.probeTimeout ?? 5000;
    const jitter = options.probeJitter ?? 0.1;
    if (!(interval > 0) || !(timeout > 0) || !Number.isFinite(interval) || !Number.isFinite(timeout))
      throw this.invalidConfig('probeInterval and probeTimeout must be positive');
    if (!(jitter >= 0 && jitter <= 1)) throw this.invalidConfig('probeJitter must be from 0 to 1');
    const check = options.probe ?? metadataCheck(options.probeKey);
    this.#replicas = this.children.map((child) => {
      const replica: Replica = {
        ...child,
        down: false,
        probe: new HealthProbe({
          provider: child.provider,
          check,
          interval,
          jitter,
          timeout,
          clock: options.clock,
          onHealthy: () => this.#markUp(replica),
        }),
      };
      return replica;
    });
  }

  /** The replica that serves now: the first healthy one (the first when none is). */
  get activeProvider(): SecretProvider {
    return this.#active.provider;
  }

  /** What every replica can do: any of them may take over. */
  get capabilities(): ProviderCapabilities {
    return this.combineCapabilities('every');
  }

  get(key: string, options?: GetOptions): Promise<Secret<string>> {
    return (
      this.refuse(key, 'get', options?.signal) ?? this.#read('get', key, options, (p) => p.get(key, options))
    );
  }

  /**
   * The values of several keys from the serving replica, in one `getMany` (its batch read where
   * it has one); a failure that switches replicas retries the whole call on the next. When every
   * replica fails the batch, each key is asked on its own (as `get`), since a replica may fail
   * only some keys. Missing keys are absent: a replica's "missing" is the chain's answer.
   */
  async getMany(keys: readonly string[], options: GetOptions = {}): Promise<Map<string, Secret<string>>> {
    this.enterWithoutKey('get', options.signal);
    const unique = uniqueKeys(keys, this.name, (key) => validateKey(key, this.name));
    if (unique.length === 0) return new Map();
    try {
      return await this.#read('get', undefined, options, (p) => getMany(p, unique, options));
    } catch (error) {
      if (options.signal?.aborted || !isSecretError(error) || !this.movesOn(error.code)) throw error;
    }
    // Every replica failed the batch. Each key may still be served by a replica that fails only
    // other keys, as its `get` would be: ask key by key, each failing over on its own.
    const answers = await mapBounded(
      unique,
      DEFAULT_GET_MANY_CONCURRENCY,
      (key) =>
        this.get(key, options).catch((error: unknown) => {
          if (isSecretError(error, 'NOT_FOUND')) return undefined;
          throw error;
        }),
      options.signal,
    );
    const found = new Map<string, Secret<string>>();
    unique.forEach((key, index) => {
      const secret = answers[index];
      if (secret !== undefined) found.set(key, secret);
    });
    return found;
  }

  metadata(key: string, options?: OperationOptions): Promise<SecretMetadata> {
    return (
      this.refuse(key, 'metadata', options?.signal) ??
      this.#read('metadata', key, options, (p) => p.metadata(key, options))
    );
  }

  /** Whether the serving replica has `key` (a replica that cannot hold such a key does not). */
  has(key: string, options?: OperationOptions): Promise<boolean> {
    return (
      this.refuse(key, 'has', options?.signal) ??
      this.#read('has', key, options, (p) =>
        hasKey(p, key, options).catch((error: unknown) => {
          if (isSecretError(error, 'INVALID_KEY')) return false;
          throw error;
        }),
      )
    );
  }

  /** The serving replica's keys. */
  async keys(options: KeysOptions = {}): Promise<string[]> {
    this.enterWithoutKey('keys', options.signal);
    return this.#read('keys', undefined, options, (p) => p.keys(options));
  }

  /** Writes to the serving replica, or to `options.provider`. */
  async set(
    key: string,
    value: string | Secret<SecretValue>,
    options: ChainedSetOptions = {},
  ): Promise<void> {
    this.enter(key, 'set', options.signal);
    const { provider: name, ...rest } = options;
    if (name === undefined) {
      await this.#replicated('set', key, rest, (p) => p.set(key, value, rest));
      return;
    }
    const replica = this.target(name, 'write', key, 'set');
    try {
      await replica.provider.set(key, value, rest);
    } catch (error) {
      throw this.childError(error, replica, 'set', key, options.signal);
    }
  }

  /** Removes `key` from the serving replica, or from `options.provider`. */
  async delete(key: string, options: ChainedDeleteOptions = {}): Promise<void> {
    this.enter(key, 'delete', options.signal);
    const { provider: name, ...rest } = options;
    if (name === undefined) {
      await this.#replicated('delete', key, rest, (p) => p.delete(key, rest));
      return;
    }
    const replica = this.target(name, 'delete', key, 'delete');
    try {
      await replica.provider.delete(key, rest);
    } catch (error) {
      throw this.childError(error, replica, 'delete', key, options.signal);
    }
  }

  // ---- for the composite base ---------------------------------------------------------------

  protected override explainStatus(child: Child): 'serving' | 'standby' {
    return child.position === this.#active.position ? 'serving' : 'standby';
  }

  protected override healthOf(child: Child): { healthy: boolean } {
    return { healthy: !(this.#replicas[child.position] as Replica).down };
  }

  protected override onChildChange<K extends 'added' | 'removed' | 'rotated'>(
    child: Child,
    type: K,
    event: SecretEvents[K],
  ): void {
    if (!this.watched || child.position !== this.#active.position) return;
    this.emit(type, { ...event, provider: this.name, source: child.provider.name });
  }

  protected override async stopWork(): Promise<void> {
    await Promise.all(this.#replicas.map((r) => r.probe.stop()));
  }

  // ---- failover -----------------------------------------------------------------------------

  get #active(): Replica {
    return this.#replicas.find((r) => !r.down) ?? (this.#replicas[0] as Replica);
  }

  /** A read from the replicas; a caller who gives up is answered at once, whatever the replica does. */
  #read<T>(
    operation: SecretOperation,
    key: string | undefined,
    options: OperationOptions | undefined,
    call: (provider: SecretProvider) => Promise<T>,
  ): Promise<T> {
    const read = this.#replicated(operation, key, options, call);
    return options?.signal === undefined ? read : raceSignal(read, options.signal);
  }

  async #replicated<T>(
    operation: SecretOperation,
    key: string | undefined,
    options: OperationOptions | undefined,
    call: (provider: SecretProvider) => Promise<T>,
  ): Promise<T> {
    const signal = options?.signal;
    // Healthy replicas first, in order; the ones marked down only as a last resort.
    const order = [...this.#replicas.filter((r) => !r.down), ...this.#replicas.filter((r) => r.down)];
    let first: SecretError | undefined;
    for (const replica of order) {
      if (signal?.aborted) throw signal.reason;
      try {
        const result = await call(replica.provider);
        if (replica.down) this.#markUp(replica);
        return result;
      } catch (error) {
        const mapped = this.childError(error, replica, operation, key, signal);
        if (!this.movesOn(mapped.code)) {
          // An answer, even "not found" or "denied", shows the replica is serving.
          if (replica.down && mapped.code !== 'CLOSED') this.#markUp(replica);
          // The replicas are one store to the caller: a missing key is missing from the chain.
          if (mapped.code === 'NOT_FOUND') {
            throw new SecretNotFoundError({ provider: this.name, key, operation, cause: mapped });
          }
          throw mapped;
        }
        this.#markDown(replica, mapped, key);
        first ??= mapped;
      }
    }
    throw first ?? new ProviderUnavailableError({ provider: this.name, key, operation });
  }

  #markDown(replica: Replica, error: SecretError, key: string | undefined): void {
    if (!this.closed) replica.probe.start(error.retryAfterMs);
    if (replica.down) {
      this.reportFailure(replica, error, key);
      return;
    }
    // The switch itself is reported below; as a process warning once is enough.
    if (this.watched) this.reportFailure(replica, error, key);
    replica.down = true;
    const active = this.#replicas.find((r) => !r.down);
    this.warn(replica, {
      code: 'FAILOVER',
      message:
        active === undefined
          ? `provider "${replica.provider.name}" failed (${error.code}); no healthy provider is left in chain "${this.name}"`
          : `provider "${replica.provider.name}" failed (${error.code}); chain "${this.name}" now serves from "${active.provider.name}"`,
      key,
    });
  }

  #markUp(replica: Replica): void {
    if (!replica.down) return;
    replica.down = false;
    void replica.probe.stop();
    this.warn(replica, {
      code: 'FAILBACK',
      message: `provider "${replica.provider.name}" serves again; chain "${this.name}" now serves from "${this.#active.provider.name}"`,
    });
  }
}
