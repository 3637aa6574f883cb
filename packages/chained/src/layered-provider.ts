import {
  type GetOptions,
  getMany,
  hasKey,
  isSecretError,
  type KeysOptions,
  type OperationOptions,
  type ProviderCapabilities,
  type Secret,
  type SecretError,
  type SecretEvents,
  type SecretMetadata,
  SecretNotFoundError,
  type SecretProvider,
  type SecretValue,
  UnsupportedOperationError,
} from '@secret-provider/core';
import {
  BaseProvider,
  DEFAULT_GET_MANY_CONCURRENCY,
  mapBounded,
  raceSignal,
  toSecretError,
  uniqueKeys,
  validateKey,
} from '@secret-provider/core/adapter';
import {
  type ChainedDeleteOptions,
  type ChainedSetOptions,
  type Child,
  type ChildWatchState,
  CompositeProvider,
  type CompositeProviderOptions,
} from './composite-provider.js';
import { EffectiveEvents, type LayerState } from './effective-events.js';
import { KeyIndex } from './key-index.js';

/** Options of {@link LayeredProvider}. */
export interface LayeredProviderOptions extends CompositeProviderOptions {
  /**
   * Which failures move on to the next layer instead of rejecting (see
   * {@link CompositeProviderOptions.failover}). A missing key always falls through, and so does
   * `INVALID_KEY` (that layer cannot hold such a key).
   * @default false
   */
  readonly failover?: CompositeProviderOptions['failover'];
  /**
   * Keep an index of the keys of each layer that can list and watch but cannot answer `has()`
   * itself, from its `keys()` and its events, and skip it for keys it lacks without asking it.
   * The index is as current as the layer's events: exact for layers that report changes as they
   * happen, behind by the poll interval for layers that poll. It keeps those layers watched.
   * @default false
   */
  readonly index?: boolean | undefined;
}

/** A layer with what the lookup needs to know of it. */
interface Layer extends Child {
  /** Its keys, when `index` is on and it can list and watch but not answer `has()`. */
  readonly index: KeyIndex | undefined;
  /**
   * A synchronous `true` from its `has()` lets its `get`/`metadata` answer through untouched:
   * it is built on the core base class (typed, sanitized errors, reads in the same tick see
   * what `has` saw) and no failure would move on.
   */
  readonly direct: boolean;
}

type Read = 'get' | 'metadata';
type ReadResult<O extends Read> = O extends 'get' ? Secret<string> : SecretMetadata;

const NO_OPTIONS: OperationOptions = Object.freeze({});

/**
 * Layers: `new LayeredProvider([env, file, vault])`. The first provider that has a key serves it
 * and a missing key falls through to the next; any other failure rejects unless `failover` says
 * to move on (and report it). Layers that can tell they lack a key without a read are skipped:
 * their own `has()` when they answer presence (memory, env), else the key index (`index: true`).
 *
 * `keys` is the union in order; `set` and `delete` go to the first layer that can write (or the
 * one named in the options). `watch` reports what `get` would return: a change shadowed by a
 * layer before it emits nothing; a removal that uncovers a value further down is a `rotated`, as
 * is an addition over one (see `EffectiveEvents`).
 *
 * @example
 * ```ts
 * const secrets = new LayeredProvider([new EnvProvider({ prefix: 'APP_' }), files, vault]);
 * const url = await secrets.get('DATABASE_URL');
 * console.log(await secrets.explain('DATABASE_URL'));
 * ```
 */
export class LayeredProvider extends CompositeProvider {
  readonly mode = 'ordered' as const;
  readonly #layers: readonly Layer[];
  readonly #indexed: boolean;
  #indexHeld = false;
  readonly #events: EffectiveEvents;

  constructor(providers: readonly SecretProvider[], options: LayeredProviderOptions = {}) {
    super(providers, options, false);
    this.#layers = this.children.map((child): Layer => {
      const capabilities = child.provider.capabilities;
      const indexable =
        options.index === true && !child.answersHas && capabilities.list && capabilities.watch;
      return {
        ...child,
        index: indexable ? new KeyIndex(() => child.provider.keys()) : undefined,
        direct: child.answersHas && !this.movesOnAny && child.provider instanceof BaseProvider,
      };
    });
    this.#indexed = this.#layers.some((layer) => layer.index !== undefined);
    this.#events = new EffectiveEvents({
      chain: this.name,
      layers: this.#layers.length,
      stateOf: (position, key) => this.#stateOf(this.#layers[position] as Layer, key),
      active: () => this.watched,
      emit: (type, event) => this.emit(type, event),
      onFailure: (_position, source, error) =>
        this.emit('error', {
          provider: this.name,
          source,
          error: toSecretError(error, { provider: this.name, operation: 'watch' }),
          detectedAt: new Date(),
        }),
    });
  }

  /** The first layer (nothing is ever "down" in layers). */
  get activeProvider(): SecretProvider {
    return (this.#layers[0] as Layer).provider;
  }

  /** What at least one layer can do (write, delete, list, watch...); `metadata`, `versions`, `has` if all can. */
  get capabilities(): ProviderCapabilities {
    return this.combineCapabilities('some');
  }

  // ---- reads --------------------------------------------------------------------------------

  get(key: string, options?: GetOptions): Promise<Secret<string>> {
    const refused = this.refuse(key, 'get', options?.signal);
    if (refused !== undefined) return refused;
    const read = this.#read('get', key, options);
    // A layer need not look at the signal: the caller who gives up is answered at once anyway.
    return options?.signal === undefined ? read : raceSignal(read, options.signal);
  }

  /**
   * The values of several keys, as `get` of each would give them: the first layer is asked for
   * every key in one `getMany`, the next for the keys still missing, and so on; layers that can
   * tell they lack a key are not asked for it. Where a layer's batch fails in a way `get` moves
   * past (a `failover` code, or `INVALID_KEY`), that layer is asked key by key, so that only the
   * keys that really fail there move on. A key that fails in a layer (and is found in none after
   * it) rejects the call, as its `get` would.
   */
  async getMany(rawKeys: readonly string[], options: GetOptions = {}): Promise<Map<string, Secret<string>>> {
    this.enterWithoutKey('get', options.signal);
    const keys = uniqueKeys(rawKeys, this.name, (key) => validateKey(key, this.name));
    if (keys.length === 0) return new Map();
    this.#startIndex();
    const read = this.#readMany(keys, options);
    return options.signal === undefined ? read : raceSignal(read, options.signal);
  }

  async #readMany(keys: readonly string[], options: GetOptions): Promise<Map<string, Secret<string>>> {
    const signal = options.signal;
    const found = new Map<string, Secret<string>>();
    /** Per key, as in #readFrom: the first failure moved past, the first INVALID_KEY, a layer lacked it. */
    const failures = new Map<string, SecretError>();
    const invalid = new Map<string, SecretError>();
    const missing = new Set<string>();
    let remaining = [...keys];
    for (const layer of this.#layers) {
      if (remaining.length === 0) break;
      const asked: string[] = [];
      for (const key of remaining) {
        let known = this.#hasWithoutRead(layer, key, options);
        if (known instanceof Promise) known = await known.catch(() => undefined);
        if (signal?.aborted) throw signal.reason;
        if (known === false) missing.add(key);
        else asked.push(key);
      }
      if (asked.length === 0) continue;
      let batch: Map<string, Secret<string>> | undefined;
      try {
        batch = await getMany(layer.provider, asked, options);
      } catch (error) {
        const mapped = this.childError(error, layer, 'get', undefined, signal);
        if (mapped.code !== 'INVALID_KEY' && !this.movesOn(mapped.code)) throw mapped;
      }
      if (batch === undefined) {
        // Which keys failed is known only key by key; a failure `get` would not move past rejects.
        batch = new Map();
        const answers = await mapBounded(
          asked,
          DEFAULT_GET_MANY_CONCURRENCY,
          (key) =>
            layer.provider.get(key, options).then(
              (secret) => ({ key, secret }),
              (error: unknown) => ({ key, error: this.childError(error, layer, 'get', key, signal) }),
            ),
          signal,
        );
        for (const answer of answers) {
          if ('secret' in answer) batch.set(answer.key, answer.secret);
          else if (answer.error.code === 'NOT_FOUND') missing.add(answer.key);
          else if (answer.error.code === 'INVALID_KEY') {
            if (!invalid.has(answer.key)) invalid.set(answer.key, answer.error);
          } else if (this.movesOn(answer.error.code)) {
            this.reportFailure(layer, answer.error, answer.key);
            if (!failures.has(answer.key)) failures.set(answer.key, answer.error);
          } else throw answer.error;
        }
      } else {
        for (const key of asked) if (!batch.has(key)) missing.add(key);
      }
      for (const [key, secret] of batch) found.set(key, secret);
      remaining = remaining.filter((key) => !batch.has(key));
    }
    if (signal?.aborted) throw signal.reason;
    for (const key of remaining) {
      // A layer that failed might have had the key: that is not "not found".
      const failure = failures.get(key);
      if (failure !== undefined) throw failure;
      const refused = invalid.get(key);
      if (refused !== undefined && !missing.has(key)) throw refused;
    }
    // In the order asked, as every getMany answers.
    const ordered = new Map<string, Secret<string>>();
    for (const key of keys) {
      const secret = found.get(key);
      if (secret !== undefined) ordered.set(key, secret);
    }
    return ordered;
  }

  metadata(key: string, options?: OperationOptions): Promise<SecretMetadata> {
    const refused = this.refuse(key, 'metadata', options?.signal);
    if (refused !== undefined) return refused;
    const read = this.#read('metadata', key, options);
    return options?.signal === undefined ? read : raceSignal(read, options.signal);
  }

  /**
   * Whether any layer has `key`, never reading values where a layer answers presence itself
   * (else derived from its `get`). A layer that cannot hold such a key does not have it; other
   * failures reject unless `failover` moves past them. Answers synchronously when every layer
   * asked does.
   */
  has(key: string, options?: OperationOptions): boolean | Promise<boolean> {
    const refused = this.refuse(key, 'has', options?.signal);
    if (refused !== undefined) return refused;
    this.#startIndex();
    for (let position = 0; position < this.#layers.length; position++) {
      const known = this.#hasWithoutRead(this.#layers[position] as Layer, key, options);
      if (known === true) return true;
      if (known !== false) {
        return raceSignal(this.#hasFrom(position, key, options ?? NO_OPTIONS, known), options?.signal);
      }
    }
    return false;
  }

  /** The union of every listing layer's keys, in chain order, without duplicates. */
  async keys(options: KeysOptions = {}): Promise<string[]> {
    this.enterWithoutKey('keys', options.signal);
    const listing = this.#layers.filter((layer) => layer.provider.capabilities.list);
    if (listing.length === 0) {
      throw new UnsupportedOperationError(
        { provider: this.name, operation: 'keys' },
        `no provider of chain "${this.name}" can list keys`,
      );
    }
    const results = await raceSignal(
      Promise.allSettled(listing.map((layer) => layer.provider.keys(options))),
      options.signal,
    );
    if (options.signal?.aborted) throw options.signal.reason;
    const names = new Set<string>();
    let failure: SecretError | undefined;
    for (const [i, result] of results.entries()) {
      const layer = listing[i] as Layer;
      if (result.status === 'fulfilled') {
        for (const name of result.value) names.add(name);
        continue;
      }
      const error = this.childError(result.reason, layer, 'keys', undefined, options.signal);
      if (!this.movesOn(error.code)) throw error;
      this.reportFailure(layer, error, undefined);
      failure ??= error;
    }
    if (failure !== undefined && results.every((r) => r.status === 'rejected')) throw failure;
    return [...names];
  }

  // ---- writes -------------------------------------------------------------------------------

  /**
   * Writes to the first layer that can write, or to `options.provider`. While the chain is
   * watched, a write that a layer before the target shadows is reported as a `SHADOWED_WRITE`
   * warning: `get` will not return the new value.
   */
  async set(
    key: string,
    value: string | Secret<SecretValue>,
    options: ChainedSetOptions = {},
  ): Promise<void> {
    this.enter(key, 'set', options.signal);
    const { provider: name, ...rest } = options;
    const layer = this.target(name, 'write', key, 'set') as Layer;
    try {
      await layer.provider.set(key, value, rest);
    } catch (error) {
      throw this.childError(error, layer, 'set', key, options.signal);
    }
    if (this.watched) void this.#warnIfShadowed(layer, key);
  }

  /** Removes `key` from the first layer that can delete, or from `options.provider`. */
  async delete(key: string, options: ChainedDeleteOptions = {}): Promise<void> {
    this.enter(key, 'delete', options.signal);
    const { provider: name, ...rest } = options;
    const layer = this.target(name, 'delete', key, 'delete') as Layer;
    try {
      await layer.provider.delete(key, rest);
    } catch (error) {
      throw this.childError(error, layer, 'delete', key, options.signal);
    }
    if (this.watched) void this.#warnIfShadowed(layer, key);
  }

  // ---- for the composite base ---------------------------------------------------------------

  protected override explainStatus(_child: Child, first: boolean): 'serving' | 'shadowed' {
    // A failing layer before this one may hide the real answer: `get` would reject (or move on),
    // and the failing layer's entry says so.
    return first ? 'serving' : 'shadowed';
  }

  protected override onChildChange<K extends 'added' | 'removed' | 'rotated'>(
    child: Child,
    type: K,
    event: SecretEvents[K],
  ): void {
    const layer = this.#layers[child.position] as Layer;
    layer.index?.observe(type, event);
    if (this.watched) this.#events.push(layer.position, layer.provider.name, type, event);
  }

  protected override onChildWatch(child: Child, state: ChildWatchState): void {
    const index = (this.#layers[child.position] as Layer).index;
    if (index === undefined) return;
    if (state === 'armed' || state === 'error') void index.rebuild();
    else if (state === 'failed') index.disable();
    else index.reset();
  }

  protected override async stopWork(): Promise<void> {
    if (!this.#indexHeld) return;
    this.#indexHeld = false;
    await this.releaseChildren();
  }

  // ---- lookups ------------------------------------------------------------------------------

  /**
   * The hot path of a read: layers known to lack the key are skipped synchronously and the first
   * candidate's promise is returned as it is (a `direct` layer) or with one reaction that takes
   * over on failure, so a hit costs no error and no extra step. Anything else continues in
   * {@link #readFrom}.
   */
  #read<O extends Read>(
    operation: O,
    key: string,
    options: OperationOptions | undefined,
  ): Promise<ReadResult<O>> {
    if (this.#indexed && !this.#indexHeld) this.#startIndex();
    const layers = this.#layers;
    let skipped = false;
    for (let position = 0; position < layers.length; position++) {
      const layer = layers[position] as Layer;
      // What #hasWithoutRead does, inlined: this loop runs for every read.
      let known: boolean | Promise<boolean> | undefined;
      if (layer.answersHas) {
        try {
          known = (layer.provider as Required<SecretProvider>).has(key, options ?? NO_OPTIONS);
        } catch {
          known = undefined;
        }
      } else if (layer.index !== undefined) known = layer.index.has(key);
      if (known === false) {
        skipped = true;
        continue;
      }
      if (known !== true && known !== undefined) {
        return this.#readFrom(operation, key, options, position, skipped, { presence: known });
      }
      if (known === true && layer.direct) return this.#call(layer, operation, key, options);
      let pending: Promise<ReadResult<O>>;
      try {
        pending = this.#call(layer, operation, key, options);
      } catch (error) {
        pending = Promise.reject(error);
      }
      return pending.then(undefined, (error: unknown) =>
        this.#readFrom(operation, key, options, position, skipped, { error }),
      );
    }
    return this.#readFrom(operation, key, options, layers.length, skipped);
  }

  #call<O extends Read>(
    layer: Layer,
    operation: O,
    key: string,
    options: OperationOptions | undefined,
  ): Promise<ReadResult<O>> {
    return (
      operation === 'get' ? layer.provider.get(key, options) : layer.provider.metadata(key, options)
    ) as Promise<ReadResult<O>>;
  }

  /**
   * A read from layer `start` on. `first` is what the hot path already learned of that layer:
   * its pending presence, or the failure of asking it. `skipped`: a layer before said it lacks
   * the key.
   */
  async #readFrom<O extends Read>(
    operation: O,
    key: string,
    options: OperationOptions | undefined,
    start: number,
    skipped: boolean,
    first?: { presence: Promise<boolean> } | { error: unknown },
  ): Promise<ReadResult<O>> {
    const signal = options?.signal;
    let failure: SecretError | undefined;
    let invalid: SecretError | undefined;
    let missing = skipped;
    for (let position = start; position < this.#layers.length; position++) {
      const layer = this.#layers[position] as Layer;
      let error: unknown;
      if (first !== undefined && 'error' in first && position === start) {
        error = first.error;
      } else {
        let known =
          first !== undefined && 'presence' in first && position === start
            ? first.presence
            : this.#hasWithoutRead(layer, key, options);
        // A failing `has()` is not an answer: the read below reports the layer's failure.
        if (known instanceof Promise) known = await known.catch(() => undefined);
        if (signal?.aborted) throw signal.reason;
        if (known === false) {
          missing = true;
          continue;
        }
        try {
          return await this.#call(layer, operation, key, options);
        } catch (caught) {
          error = caught;
        }
      }
      const mapped = this.childError(error, layer, operation, key, signal);
      if (mapped.code === 'NOT_FOUND') {
        missing = true;
        continue;
      }
      if (mapped.code === 'INVALID_KEY') {
        invalid ??= mapped;
        continue;
      }
      if (!this.movesOn(mapped.code)) throw mapped;
      this.reportFailure(layer, mapped, key);
      failure ??= mapped;
    }
    if (signal?.aborted) throw signal.reason;
    // A layer that failed might have had the key: that is not "not found".
    if (failure !== undefined) throw failure;
    if (invalid !== undefined && !missing) throw invalid;
    throw new SecretNotFoundError({ provider: this.name, key, operation });
  }

  /**
   * {@link has} from layer `start` on, once a layer's answer is pending or unknown; `first` is
   * what the synchronous part already asked of that layer.
   */
  async #hasFrom(
    start: number,
    key: string,
    options: OperationOptions,
    first: Promise<boolean> | undefined,
  ): Promise<boolean> {
    let failure: SecretError | undefined;
    for (let position = start; position < this.#layers.length; position++) {
      const layer = this.#layers[position] as Layer;
      try {
        const holds =
          position === start && first !== undefined ? await first : await this.#has(layer, key, options);
        if (holds) return true;
      } catch (error) {
        const mapped = this.childError(error, layer, 'has', key, options.signal);
        if (mapped.code !== 'INVALID_KEY') {
          if (!this.movesOn(mapped.code)) throw mapped;
          this.reportFailure(layer, mapped, key);
          failure ??= mapped;
        }
      }
      if (options.signal?.aborted) throw options.signal.reason;
    }
    if (failure !== undefined) throw failure;
    return false;
  }

  /**
   * Whether `layer` has `key` when it can tell without a read: its own `has()` when it answers
   * presence, else its index. `undefined` when neither can say.
   */
  #hasWithoutRead(
    layer: Layer,
    key: string,
    options: OperationOptions | undefined,
  ): boolean | Promise<boolean> | undefined {
    if (layer.answersHas) {
      try {
        return (layer.provider as Required<SecretProvider>).has(key, options ?? NO_OPTIONS);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return layer.index?.has(key);
  }

  /**
   * Whether `layer` has `key`: {@link #hasWithoutRead}, else derived from its `get` (core's `hasKey`). A
   * layer that cannot hold such a key (`INVALID_KEY`) does not have it; other failures reject.
   */
  async #has(layer: Layer, key: string, options: OperationOptions): Promise<boolean> {
    try {
      return await (this.#hasWithoutRead(layer, key, options) ?? hasKey(layer.provider, key, options));
    } catch (error) {
      if (isSecretError(error, 'INVALID_KEY')) return false;
      throw error;
    }
  }

  /**
   * What `layer` holds for `key` now, with its version, for the effective events; `unknown` (and
   * its failure reported) when it cannot say.
   */
  async #stateOf(layer: Layer, key: string): Promise<LayerState> {
    const known = await Promise.resolve(this.#hasWithoutRead(layer, key, undefined)).catch(() => undefined);
    if (known === false) return null;
    try {
      return { version: (await layer.provider.metadata(key)).version };
    } catch (error) {
      const mapped = isSecretError(error)
        ? error
        : toSecretError(error, { provider: layer.provider.name, key });
      if (mapped.code === 'NOT_FOUND' || mapped.code === 'INVALID_KEY') return null;
      // The change is reported as if this layer did not have the key; the failure is reported too.
      this.reportFailure(layer, mapped, key);
      return 'unknown';
    }
  }

  async #warnIfShadowed(target: Layer, key: string): Promise<void> {
    for (const before of this.#layers.slice(0, target.position)) {
      let holds: boolean;
      try {
        holds = await this.#has(before, key, NO_OPTIONS);
      } catch {
        // Only a hint: a layer that cannot answer is reported by its own operations.
        return;
      }
      if (holds) {
        this.warn(target, {
          code: 'SHADOWED_WRITE',
          message: `"${key}" was written to provider "${target.provider.name}", but provider "${before.provider.name}" comes first in chain "${this.name}" and serves it`,
          key,
        });
        return;
      }
    }
  }

  /** The index needs every indexed layer watched: from the first read on, until close. */
  #startIndex(): void {
    if (!this.#indexed || this.#indexHeld || this.closed) return;
    this.#indexHeld = true;
    void this.holdChildren();
  }
}
