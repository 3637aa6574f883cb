import { inspect } from 'node:util';
import {
  createEmitter,
  type GetOptions,
  InvalidConfigError,
  isSecretError,
  type KeysOptions,
  type OperationOptions,
  type ProviderCapabilities,
  ProviderClosedError,
  ProviderUnavailableError,
  ReadOnlyError,
  type Secret,
  type SecretError,
  type SecretErrorCode,
  type SecretEventEmitter,
  type SecretEvents,
  type SecretMetadata,
  SecretNotFoundError,
  type SecretOperation,
  type SecretProvider,
  type SecretValue,
  type SetOptions,
  UnsupportedOperationError,
  type VersionChange,
  type WatchHandle,
  type WatchOptions,
} from '@secret-provider/core';
import {
  BaseProvider,
  closedWatchHandle,
  EventHub,
  jittered,
  sleep,
  toSecretError,
  validateKey,
  withTimeout,
} from '@secret-provider/core/adapter';

/** Name of a chain in errors and events unless another is given. */
export const PROVIDER_NAME = 'chain';

/** Error codes that make a `failover` chain switch to the next provider by default. */
export const DEFAULT_FAILOVER_CODES: readonly SecretErrorCode[] = ['UNAVAILABLE', 'TIMEOUT', 'RATE_LIMITED'];

/**
 * How a chain uses its providers.
 * - `ordered`: layers. The first provider that has a key serves it (environment over files over
 *   a vault); a missing key falls through to the next.
 * - `failover`: replicas. One provider (the first healthy one) serves everything; when it fails
 *   with one of the `failover` codes the chain switches to the next, probes the failed one in the
 *   background and switches back once it answers again. A missing key is an answer, not a
 *   failure: it does not fall through.
 */
export type ChainMode = 'ordered' | 'failover';

/** Options of {@link ChainedProvider}. */
export interface ChainedProviderOptions {
  /** Name in errors and events. @default 'chain' */
  readonly name?: string | undefined;
  /** @default 'ordered' */
  readonly mode?: ChainMode | undefined;
  /**
   * Which failures move on to the next provider instead of rejecting: `true` for any error,
   * `false` for none, or a list of codes. Each such failure is reported as an `error` event to
   * the chain's watchers (a process warning when nobody watches), never swallowed. Not-found
   * always falls through in `ordered` mode and never in `failover` mode; an `INVALID_KEY` from a
   * provider means it cannot hold that key and falls through in `ordered` mode.
   * @default false in `ordered` mode, {@link DEFAULT_FAILOVER_CODES} in `failover` mode
   */
  readonly failover?: boolean | readonly SecretErrorCode[] | undefined;
  /** `failover` mode: time between probes of a provider that failed, in ms. @default 5000 */
  readonly probeInterval?: number | undefined;
  /** `failover` mode: fraction of `probeInterval` removed at random from each wait. @default 0.1 */
  readonly probeJitter?: number | undefined;
  /** `failover` mode: how long one probe may take, in ms. @default 5000 */
  readonly probeTimeout?: number | undefined;
  /**
   * `failover` mode: checks that a failed provider serves again; resolving means healthy. By
   * default the chain asks for the `metadata` of `probeKey`, and an answer that the key is
   * missing, invalid or denied counts as healthy (the backend answered).
   */
  readonly probe?: ((provider: SecretProvider, signal: AbortSignal) => Promise<unknown>) | undefined;
  /** `failover` mode: the key the default probe asks about. @default 'secret-provider-probe' */
  readonly probeKey?: string | undefined;
  /**
   * `ordered` mode: keep an index of each provider's keys, from `keys()` and its events, and skip
   * providers that lack a key without asking them. A miss then costs a set lookup instead of a
   * backend call (and a not-found error). The index is as current as the provider's events:
   * exact for providers that report changes as they happen (memory), behind by the poll
   * interval for providers that poll. Providers that cannot list or watch, and providers with a
   * `has(key)` method, are always asked.
   * @default false
   */
  readonly index?: boolean | undefined;
  /** Close the providers when the chain is closed. @default true */
  readonly ownsProviders?: boolean | undefined;
}

/** `set` options of a chain: which provider receives the write. */
export interface ChainedSetOptions extends SetOptions {
  /** Name of the provider to write to. @default the first provider that can write */
  readonly provider?: string | undefined;
}

/** `delete` options of a chain. */
export interface ChainedDeleteOptions extends OperationOptions {
  /** Name of the provider to delete from. @default the first provider that can delete */
  readonly provider?: string | undefined;
}

/** What one provider of a chain says about a key (see {@link ChainedProvider.explain}). */
export interface ExplainEntry {
  /** The provider's name. */
  readonly provider: string;
  /** Its position in the chain, from 0. */
  readonly position: number;
  /**
   * `serving`: its value is what `get` returns. `shadowed`: it has the key but a provider before
   * it serves. `missing`: it does not have the key. `failed`: it could not say (see `error`).
   * `standby`: `failover` mode, a replica that is not serving.
   */
  readonly status: 'serving' | 'shadowed' | 'missing' | 'failed' | 'standby';
  /** `failover` mode: whether the chain considers it healthy. */
  readonly healthy?: boolean | undefined;
  readonly version?: string | undefined;
  readonly updatedAt?: Date | undefined;
  readonly expiresAt?: Date | undefined;
  /** The provider's non-secret tags for the key (for the environment: variable and file). */
  readonly tags?: Readonly<Record<string, string>> | undefined;
  readonly error?: { readonly code: SecretErrorCode; readonly message: string } | undefined;
}

/** Which provider serves a key and which are shadowed; never values. */
export interface Explanation {
  readonly key: string;
  readonly chain: string;
  readonly mode: ChainMode;
  /** The provider `get` reads from, if any has the key. */
  readonly servedBy: string | undefined;
  readonly entries: readonly ExplainEntry[];
}

/**
 * An optional method a provider may have: whether it holds a key, answered without reading the
 * value and without a not-found error. A chain asks it first when present.
 *
 * A synchronous `true` promises that a `get` or `metadata` started in the same tick finds the
 * key (as with `EnvProvider`, whose reads are synchronous once its files are loaded). A chain
 * without `failover` then hands out that provider's answer as it is, without a step of its own.
 */
export interface KeyPresence {
  has(key: string): boolean | Promise<boolean>;
}

/** Which child serves a key, and at which version. */
interface Served {
  readonly position: number;
  readonly version: string | undefined;
}

/** A child's change waiting for effective-value processing. */
interface QueuedEvent {
  readonly child: Child;
  readonly type: 'added' | 'removed' | 'rotated';
  readonly event: SecretEvents['added' | 'removed' | 'rotated'];
}

const PROBE_HEALTHY_CODES: ReadonlySet<SecretErrorCode> = new Set([
  'NOT_FOUND',
  'INVALID_KEY',
  'ACCESS_DENIED',
]);

interface Child {
  readonly provider: SecretProvider;
  readonly position: number;
  /** The provider again, when it has its own `has`. */
  readonly has: KeyPresence | undefined;
  /** Whether its keys may be indexed (option on, can list and watch, no `has`). */
  readonly indexable: boolean;
  /** Whether a synchronous `has` of `true` lets its answer through untouched (see KeyPresence). */
  readonly direct: boolean;
  handle: WatchHandle | undefined;
  /** Its keys, while the index is trusted. */
  keys: Set<string> | undefined;
  /** Events that arrived while `keys()` was being read, applied after it. */
  pending: Array<readonly ['add' | 'delete', string]> | undefined;
  rebuilding: Promise<void> | undefined;
  rebuildAgain: boolean;
  /** The child's watch failed to start: its index is never trusted. */
  watchFailed: boolean;
  /** `failover` mode: marked down after a failure, until a probe or a request succeeds. */
  down: boolean;
  probe: AbortController | undefined;
  /** `failover` mode: do not probe before this time (the backend's Retry-After). */
  notBefore: number;
}

/**
 * Several providers as one: `new ChainedProvider([env, file, vault])`.
 *
 * In `ordered` mode (the default) the first provider that has a key serves it and a missing key
 * falls through; any other failure rejects unless `failover` says to move on (and report it).
 * `keys` is the union in order; `set` and `delete` go to the first provider that can write (or
 * the one named in the options). `watch` merges every provider's events, tagged with `source`,
 * and reports what `get` would return: a change shadowed by a provider before it emits nothing,
 * a removal that uncovers a value further down is a `rotated`, as is an addition over one.
 * {@link ChainedProvider.explain} shows which provider serves a key.
 *
 * In `failover` mode the providers are replicas (a primary and a secondary vault); see
 * {@link ChainMode}. Each switch is reported as a `warning` event with code `FAILOVER` or
 * `FAILBACK`.
 *
 * @example
 * ```ts
 * const secrets = new ChainedProvider([new EnvProvider({ prefix: 'APP_' }), files, vault]);
 * const url = await secrets.get('DATABASE_URL');
 * console.log(await secrets.explain('DATABASE_URL'));
 *
 * const replicated = new ChainedProvider([primaryVault, secondaryVault], { mode: 'failover', probeInterval: 10_000 });
 * ```
 */
export class ChainedProvider implements SecretProvider, AsyncDisposable {
  readonly name: string;
  readonly mode: ChainMode;
  readonly #children: readonly Child[];
  readonly #failover: (code: SecretErrorCode) => boolean;
  readonly #index: boolean;
  readonly #owns: boolean;
  readonly #probeInterval: number;
  readonly #probeJitter: number;
  readonly #probeTimeout: number;
  readonly #probe: (provider: SecretProvider, signal: AbortSignal) => Promise<unknown>;
  readonly #hub: EventHub;
  /** Who needs the children watched: the index and the chain's own watchers. */
  #trackingUsers = 0;
  #indexStarted = false;
  /** Effective-value work, one event at a time so that events keep their order. */
  #queue: Promise<void> = Promise.resolve();
  /** Child events waiting for (or in) effective-value processing, oldest first. */
  readonly #pending: QueuedEvent[] = [];
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(providers: readonly SecretProvider[], options: ChainedProviderOptions = {}) {
    this.name = options.name ?? PROVIDER_NAME;
    const invalid = (message: string) =>
      new InvalidConfigError({ provider: this.name }, `invalid configuration: ${message}`);
    if (!Array.isArray(providers) || providers.length === 0)
      throw invalid('a chain needs at least one provider');
    if (providers.some((p) => typeof p !== 'object' || p === null || typeof p.get !== 'function')) {
      throw invalid('every element must be a secret provider');
    }
    if (new Set(providers).size !== providers.length) throw invalid('the same provider appears twice');
    const mode = options.mode ?? 'ordered';
    if (mode !== 'ordered' && mode !== 'failover') throw invalid('mode must be "ordered" or "failover"');
    this.mode = mode;
    const failover = options.failover ?? (mode === 'failover' ? DEFAULT_FAILOVER_CODES : false);
    if (failover === true) this.#failover = (code) => code !== 'NOT_FOUND';
    else if (failover === false) this.#failover = () => false;
    else {
      const codes = new Set(failover);
      this.#failover = (code) => code !== 'NOT_FOUND' && codes.has(code);
    }
    this.#probeInterval = options.probeInterval ?? 5000;
    this.#probeJitter = options.probeJitter ?? 0.1;
    this.#probeTimeout = options.probeTimeout ?? 5000;
    if (!(this.#probeInterval > 0) || !(this.#probeTimeout > 0))
      throw invalid('probeInterval and probeTimeout must be positive');
    const probeKey = options.probeKey ?? 'secret-provider-probe';
    this.#probe = options.probe ?? ((provider, signal) => provider.metadata(probeKey, { signal }));
    this.#index = mode === 'ordered' && (options.index ?? false);
    this.#owns = options.ownsProviders ?? true;
    this.#children = providers.map((provider, position) => {
      const capabilities = provider.capabilities;
      // Only a presence check that does not read the value saves anything over asking for it.
      const has = capabilities.has ? (provider as Partial<KeyPresence>).has : undefined;
      return {
        provider,
        position,
        // Called as a method of the provider, not bound: a bound function is slower to call.
        has: typeof has === 'function' ? (provider as SecretProvider & KeyPresence) : undefined,
        indexable: this.#index && typeof has !== 'function' && capabilities.list && capabilities.watch,
        direct: typeof has === 'function' && failover === false && provider instanceof BaseProvider,
        handle: undefined,
        keys: undefined,
        pending: undefined,
        rebuilding: undefined,
        rebuildAgain: false,
        watchFailed: false,
        down: false,
        probe: undefined,
        notBefore: 0,
      };
    });
    this.#hub = new EventHub(async () => {
      await this.#acquireTracking();
      return () => this.#releaseTracking();
    });
  }

  /** The providers, in order. */
  get providers(): readonly SecretProvider[] {
    return this.#children.map((c) => c.provider);
  }

  /** `failover` mode: the provider that serves now (the first healthy one). */
  get activeProvider(): SecretProvider {
    return (this.#children.find((c) => !c.down) ?? this.#first).provider;
  }

  /** What the chain can do, derived from its providers. */
  get capabilities(): ProviderCapabilities {
    const all = this.#children.map((c) => c.provider.capabilities);
    const some = (k: keyof ProviderCapabilities) => all.some((c) => c[k]);
    const every = (k: keyof ProviderCapabilities) => all.every((c) => c[k]);
    // Replicas may take over from each other, so only what all of them can do is promised.
    const pick = this.mode === 'failover' ? every : some;
    return {
      write: pick('write'),
      delete: pick('delete'),
      list: pick('list'),
      watch: pick('watch'),
      metadata: every('metadata'),
      versions: every('versions'),
      has: every('has'),
      checkAndSet: pick('checkAndSet'),
      expiry: pick('expiry'),
      tags: pick('tags'),
      contentType: pick('contentType'),
    };
  }

  // ---- reads ---------------------------------------------------------------------------------

  get(key: string, options?: GetOptions): Promise<Secret<string>> {
    try {
      this.#enter(key, 'get');
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.mode === 'failover')
      return this.#replicated('get', key, options ?? {}, (p) => p.get(key, options));
    if (this.#index && !this.#indexStarted) this.#startIndex();
    return this.#lookup<Secret<string>>('get', key, options);
  }

  metadata(key: string, options?: OperationOptions): Promise<SecretMetadata> {
    try {
      this.#enter(key, 'metadata');
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.mode === 'failover') {
      return this.#replicated('metadata', key, options ?? {}, (p) => p.metadata(key, options));
    }
    this.#startIndex();
    return this.#lookup<SecretMetadata>('metadata', key, options);
  }

  /** Whether any provider has `key` (the serving one in `failover` mode). Never reads values. */
  async has(key: string, options: OperationOptions = {}): Promise<boolean> {
    try {
      await this.metadata(key, options);
      return true;
    } catch (error) {
      if (isSecretError(error, 'NOT_FOUND') || isSecretError(error, 'INVALID_KEY')) return false;
      throw error;
    }
  }

  /** The union of every listing provider's keys, in chain order, without duplicates. */
  async keys(options: KeysOptions = {}): Promise<string[]> {
    this.#assertOpen('keys');
    if (this.mode === 'failover') {
      return this.#replicated('keys', undefined, options, (p) => p.keys(options));
    }
    const listing = this.#children.filter((c) => c.provider.capabilities.list);
    if (listing.length === 0) {
      throw new UnsupportedOperationError(
        { provider: this.name, operation: 'keys' },
        `no provider of chain "${this.name}" can list keys`,
      );
    }
    const results = await Promise.allSettled(listing.map((c) => c.provider.keys(options)));
    const names = new Set<string>();
    let failure: SecretError | undefined;
    for (const [i, result] of results.entries()) {
      const child = listing[i] as Child;
      if (result.status === 'fulfilled') {
        for (const name of result.value) names.add(name);
        continue;
      }
      const error = this.#childError(result.reason, child, 'keys', undefined, options.signal);
      if (!this.#failover(error.code)) throw error;
      this.#reportFailure(child, error, undefined);
      failure ??= error;
    }
    if (failure !== undefined && names.size === 0 && results.every((r) => r.status === 'rejected'))
      throw failure;
    return [...names];
  }

  /**
   * Which provider serves `key` and which have it but are shadowed, with versions and tags but
   * never values. Asks every provider (in parallel) for metadata.
   */
  async explain(key: string, options: OperationOptions = {}): Promise<Explanation> {
    this.#enter(key, 'metadata');
    const answers = await Promise.allSettled(this.#children.map((c) => c.provider.metadata(key, options)));
    const active =
      this.mode === 'failover' ? (this.#children.find((c) => !c.down) ?? this.#first) : undefined;
    let servedBy: string | undefined;
    const entries = answers.map((answer, position): ExplainEntry => {
      const child = this.#children[position] as Child;
      const health = this.mode === 'failover' ? { healthy: !child.down } : {};
      if (answer.status === 'rejected') {
        const error = this.#childError(answer.reason, child, 'metadata', key, options.signal);
        if (error.code === 'NOT_FOUND' || error.code === 'INVALID_KEY') {
          return { provider: child.provider.name, position, status: 'missing', ...health };
        }
        return {
          provider: child.provider.name,
          position,
          status: 'failed',
          ...health,
          error: { code: error.code, message: error.message },
        };
      }
      const { version, updatedAt, expiresAt, tags } = answer.value;
      let status: ExplainEntry['status'];
      if (active !== undefined) status = child === active ? 'serving' : 'standby';
      else status = servedBy === undefined ? 'serving' : 'shadowed';
      // In ordered mode a failing provider before this one may hide the real answer; `get`
      // would reject (or fail over), and the entry of the failing provider says so.
      if (status === 'serving') servedBy = child.provider.name;
      return {
        provider: child.provider.name,
        position,
        status,
        ...health,
        version,
        updatedAt,
        expiresAt,
        tags,
      };
    });
    return { key, chain: this.name, mode: this.mode, servedBy, entries };
  }

  // ---- writes --------------------------------------------------------------------------------

  /**
   * Writes to the first provider that can write, or to `options.provider`. While the chain is
   * watched, a write that a provider before the target shadows is reported as a `warning`
   * (`SHADOWED_WRITE`): `get` will not return the new value.
   */
  async set(
    key: string,
    value: string | Secret<SecretValue>,
    options: ChainedSetOptions = {},
  ): Promise<void> {
    this.#enter(key, 'set');
    const { provider: target, ...rest } = options;
    if (this.mode === 'failover' && target === undefined) {
      await this.#replicated('set', key, rest, (p) => p.set(key, value, rest));
      return;
    }
    const child = this.#target(target, 'write', key, 'set');
    try {
      await child.provider.set(key, value, rest);
    } catch (error) {
      throw this.#childError(error, child, 'set', key, options.signal);
    }
    if (this.mode === 'ordered' && this.#hub.size > 0) void this.#warnIfShadowed(child, key);
  }

  /** Removes `key` from the first provider that can delete, or from `options.provider`. */
  async delete(key: string, options: ChainedDeleteOptions = {}): Promise<void> {
    this.#enter(key, 'delete');
    const { provider: target, ...rest } = options;
    if (this.mode === 'failover' && target === undefined) {
      await this.#replicated('delete', key, rest, (p) => p.delete(key, rest));
      return;
    }
    const child = this.#target(target, 'delete', key, 'delete');
    try {
      await child.provider.delete(key, rest);
    } catch (error) {
      throw this.#childError(error, child, 'delete', key, options.signal);
    }
    if (this.mode === 'ordered' && this.#hub.size > 0) void this.#warnIfShadowed(child, key);
  }

  // ---- watch and lifecycle -------------------------------------------------------------------

  /**
   * Merges the providers' events into `emitter`, tagged with `source` (the provider they came
   * from) and `provider` (this chain), describing the effective values (see the class comment).
   * Errors and warnings of every provider pass through; so do the chain's own (`FAILOVER`,
   * `FAILBACK`, failures it moved past).
   */
  watch(emitter: SecretEventEmitter, options: WatchOptions = {}): WatchHandle {
    if (this.#closed) {
      return closedWatchHandle(new ProviderClosedError({ provider: this.name, operation: 'watch' }));
    }
    return this.#hub.attach(emitter, options, (error) =>
      toSecretError(error, { provider: this.name, operation: 'watch' }),
    );
  }

  /** Stops watching, stops probes and closes the providers (unless `ownsProviders: false`). */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#closed = true;
      this.#closing = (async () => {
        for (const child of this.#children) child.probe?.abort();
        await this.#hub.close();
        if (this.#indexStarted) {
          this.#indexStarted = false;
          await this.#releaseTracking();
        }
        if (!this.#owns) return;
        const results = await Promise.allSettled(this.#children.map((c) => c.provider.close()));
        const failed = results.find((r) => r.status === 'rejected');
        if (failed !== undefined) {
          throw toSecretError(failed.reason, { provider: this.name, operation: 'close' });
        }
      })();
    }
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  toJSON(): Record<string, unknown> {
    return {
      provider: this.name,
      mode: this.mode,
      providers: this.#children.map((c) => c.provider.name),
      closed: this.#closed,
    };
  }

  [inspect.custom](): string {
    const names = this.#children.map((c) => JSON.stringify(c.provider.name)).join(', ');
    return `ChainedProvider { name: ${JSON.stringify(this.name)}, mode: ${this.mode}, providers: [${names}]${this.#closed ? ', closed' : ''} }`;
  }

  // ---- ordered lookups -----------------------------------------------------------------------

  /**
   * The hot path of an ordered read: children known to lack the key are skipped synchronously
   * and the first candidate's promise is returned as it is, so a hit costs one extra reaction
   * and no error. Anything else continues in the slow path.
   */
  #lookup<T>(operation: 'get' | 'metadata', key: string, options: OperationOptions | undefined): Promise<T> {
    // An aborted caller gets the signal's reason, even when no child would be asked.
    if (options?.signal?.aborted) return Promise.reject(options.signal.reason);
    const children = this.#children;
    let missing = false;
    for (let position = 0; position < children.length; position++) {
      const child = children[position] as Child;
      // What #presence does, inlined: this loop runs for every read.
      let present: boolean | Promise<boolean> | undefined;
      if (child.has !== undefined) {
        try {
          present = child.has.has(key);
        } catch {
          present = undefined;
        }
      } else if (child.keys !== undefined) present = child.keys.has(key);
      if (present === false) {
        missing = true;
        continue;
      }
      if (present !== true && present !== undefined) {
        // #ordered asks again and awaits that answer; this one must not reject unhandled.
        present.catch(() => {});
        return this.#ordered(operation, key, options, position, missing);
      }
      // The provider said, synchronously, that it has the key: nothing can fall through, and
      // its errors are already typed and sanitized (it is built on the core base class).
      if (present === true && child.direct) {
        return (
          operation === 'get' ? child.provider.get(key, options) : child.provider.metadata(key, options)
        ) as Promise<T>;
      }
      let pending: Promise<T>;
      try {
        pending = (
          operation === 'get' ? child.provider.get(key, options) : child.provider.metadata(key, options)
        ) as Promise<T>;
      } catch (error) {
        pending = Promise.reject(error);
      }
      return pending.then(undefined, (error: unknown) =>
        this.#ordered<T>(operation, key, options, position, missing, { error }),
      );
    }
    return this.#ordered(operation, key, options, children.length, missing);
  }

  #call(
    child: Child,
    operation: 'get' | 'metadata',
    key: string,
    options: OperationOptions | undefined,
  ): Promise<unknown> {
    return operation === 'get' ? child.provider.get(key, options) : child.provider.metadata(key, options);
  }

  /**
   * Ordered lookup from `start`. `failed` is the outcome of asking the child at `start`, when
   * the hot path already did.
   */
  async #ordered<T>(
    operation: 'get' | 'metadata',
    key: string,
    options: OperationOptions | undefined,
    start: number,
    skippedBefore: boolean,
    failed?: { error: unknown },
  ): Promise<T> {
    let failure: SecretError | undefined;
    let invalid: SecretError | undefined;
    let missing = skippedBefore;
    for (let position = start; position < this.#children.length; position++) {
      const child = this.#children[position] as Child;
      let error: unknown;
      if (failed !== undefined && position === start) {
        error = failed.error;
      } else {
        let present = this.#presence(child, key);
        if (present instanceof Promise) present = await present.catch(() => undefined);
        if (present === false) {
          missing = true;
          continue;
        }
        try {
          return (await this.#call(child, operation, key, options)) as T;
        } catch (caught) {
          error = caught;
        }
      }
      const mapped = this.#childError(error, child, operation, key, options?.signal);
      if (mapped.code === 'NOT_FOUND') {
        missing = true;
        continue;
      }
      if (mapped.code === 'INVALID_KEY') {
        invalid ??= mapped;
        continue;
      }
      if (!this.#failover(mapped.code)) throw mapped;
      this.#reportFailure(child, mapped, key);
      failure ??= mapped;
    }
    // A provider that failed might have had the key: that is not "not found".
    if (failure !== undefined) throw failure;
    if (invalid !== undefined && !missing) throw invalid;
    throw new SecretNotFoundError({ provider: this.name, key, operation });
  }

  /** Whether a child has a key without asking it for the value: known, unknown, or pending. */
  #presence(child: Child, key: string): boolean | undefined | Promise<boolean> {
    if (child.has !== undefined) {
      try {
        return child.has.has(key);
      } catch {
        return undefined;
      }
    }
    return child.keys === undefined ? undefined : child.keys.has(key);
  }

  /** Whether a child has a key: its `has`, its index, or its metadata. */
  async #holds(child: Child, key: string): Promise<{ holds: boolean; version?: string | undefined }> {
    try {
      const metadata = await child.provider.metadata(key);
      return { holds: true, version: metadata.version };
    } catch (error) {
      const mapped = this.#childError(error, child, 'metadata', key, undefined);
      if (mapped.code === 'NOT_FOUND' || mapped.code === 'INVALID_KEY') return { holds: false };
      throw mapped;
    }
  }

  #startIndex(): void {
    if (!this.#index || this.#indexStarted || this.#closed) return;
    this.#indexStarted = true;
    void this.#acquireTracking();
  }

  // ---- failover between replicas -------------------------------------------------------------

  get #first(): Child {
    return this.#children[0] as Child;
  }

  async #replicated<T>(
    operation: SecretOperation,
    key: string | undefined,
    options: OperationOptions,
    call: (provider: SecretProvider) => Promise<T>,
  ): Promise<T> {
    // Healthy replicas first, in order; the ones marked down only as a last resort.
    const order = [...this.#children.filter((c) => !c.down), ...this.#children.filter((c) => c.down)];
    let first: SecretError | undefined;
    for (const child of order) {
      try {
        const result = await call(child.provider);
        if (child.down) this.#markUp(child);
        return result;
      } catch (error) {
        const mapped = this.#childError(error, child, operation, key, options.signal);
        if (!this.#failover(mapped.code)) {
          // An answer, even "not found" or "denied", shows the replica is serving.
          if (child.down && mapped.code !== 'CLOSED') this.#markUp(child);
          // The replicas are one store to the caller: a missing key is missing from the chain.
          if (mapped.code === 'NOT_FOUND') {
            throw new SecretNotFoundError({ provider: this.name, key, operation, cause: mapped });
          }
          throw mapped;
        }
        this.#markDown(child, mapped, key);
        first ??= mapped;
      }
    }
    throw first ?? new ProviderUnavailableError({ provider: this.name, key, operation });
  }

  #markDown(child: Child, error: SecretError, key: string | undefined): void {
    if (child.down) {
      this.#reportFailure(child, error, key);
      return;
    }
    // The switch itself is reported below; as a process warning once is enough.
    if (this.#hub.size > 0) this.#reportFailure(child, error, key);
    child.down = true;
    child.notBefore = Date.now() + (error.retryAfterMs ?? 0);
    const active = this.#children.find((c) => !c.down);
    this.#warn(child, {
      code: 'FAILOVER',
      message:
        active === undefined
          ? `provider "${child.provider.name}" failed (${error.code}); no healthy provider is left in chain "${this.name}"`
          : `provider "${child.provider.name}" failed (${error.code}); chain "${this.name}" now serves from "${active.provider.name}"`,
      key,
    });
    if (!this.#closed) this.#startProbe(child);
  }

  #markUp(child: Child): void {
    if (!child.down) return;
    child.down = false;
    child.probe?.abort();
    child.probe = undefined;
    const active = this.#children.find((c) => !c.down) ?? child;
    this.#warn(child, {
      code: 'FAILBACK',
      message: `provider "${child.provider.name}" serves again; chain "${this.name}" now serves from "${active.provider.name}"`,
    });
  }

  #startProbe(child: Child): void {
    child.probe?.abort();
    const controller = new AbortController();
    child.probe = controller;
    const { signal } = controller;
    void (async () => {
      while (!signal.aborted && child.down) {
        const wait = Math.max(jittered(this.#probeInterval, this.#probeJitter), child.notBefore - Date.now());
        if (!(await sleep(wait, signal))) return;
        let healthy: boolean;
        try {
          await withTimeout(
            (timeout) => this.#probe(child.provider, AbortSignal.any([signal, timeout])),
            this.#probeTimeout,
            {
              provider: child.provider.name,
            },
          );
          healthy = true;
        } catch (error) {
          healthy = isSecretError(error) && PROBE_HEALTHY_CODES.has(error.code);
          if (isSecretError(error) && error.retryAfterMs !== undefined)
            child.notBefore = Date.now() + error.retryAfterMs;
        }
        if (signal.aborted) return;
        if (healthy) {
          this.#markUp(child);
          return;
        }
      }
    })();
  }

  // ---- watching the children -----------------------------------------------------------------

  async #acquireTracking(): Promise<void> {
    this.#trackingUsers++;
    if (this.#trackingUsers === 1) {
      for (const child of this.#children) this.#trackChild(child);
    }
    await Promise.all(this.#children.map((c) => c.handle?.ready));
  }

  async #releaseTracking(): Promise<void> {
    this.#trackingUsers--;
    if (this.#trackingUsers > 0) return;
    const handles = this.#children.map((c) => c.handle);
    for (const child of this.#children) {
      child.handle = undefined;
      child.keys = undefined;
      child.pending = undefined;
      child.watchFailed = false;
    }
    await Promise.allSettled(handles.map((h) => h?.stop()));
  }

  #trackChild(child: Child): void {
    const emitter = createEmitter();
    let ready = false;
    emitter.on('*', (type, event) => {
      // An error before the watch is armed means it never started: its index cannot be kept.
      if (type === 'error' && !ready) child.watchFailed = true;
      this.#onChildEvent(child, type, event as SecretEvents[keyof SecretEvents]);
    });
    let handle: WatchHandle;
    try {
      handle = child.provider.watch(emitter);
    } catch (error) {
      const mapped = this.#childError(error, child, 'watch', undefined, undefined);
      this.#emit('error', {
        provider: this.name,
        source: child.provider.name,
        error: mapped,
        detectedAt: new Date(),
      });
      return;
    }
    child.handle = handle;
    void handle.ready.then(() => {
      ready = true;
      if (child.indexable && !child.watchFailed && child.handle === handle) void this.#rebuildIndex(child);
    });
  }

  #rebuildIndex(child: Child): Promise<void> {
    if (child.rebuilding !== undefined) {
      child.rebuildAgain = true;
      return child.rebuilding;
    }
    const handle = child.handle;
    child.keys = undefined;
    child.rebuilding = (async () => {
      try {
        do {
          child.rebuildAgain = false;
          // Until the listing is in, the child is asked directly and its events are queued.
          child.keys = undefined;
          child.pending = [];
          const names = new Set(await child.provider.keys());
          if (child.handle !== handle || handle === undefined) return;
          for (const [op, key] of child.pending) names[op](key);
          child.keys = names;
          child.pending = undefined;
        } while (child.rebuildAgain && child.handle === handle);
      } catch {
        // Without a listing the child is asked directly; the next error event tries again.
        child.keys = undefined;
      } finally {
        child.pending = undefined;
        child.rebuilding = undefined;
      }
    })();
    return child.rebuilding;
  }

  #indexEvent(child: Child, op: 'add' | 'delete', key: string): void {
    if (child.pending !== undefined) child.pending.push([op, key]);
    else child.keys?.[op](key);
  }

  #onChildEvent(child: Child, type: keyof SecretEvents, event: SecretEvents[keyof SecretEvents]): void {
    if (type === 'added') this.#indexEvent(child, 'add', (event as SecretEvents['added']).key);
    else if (type === 'removed') this.#indexEvent(child, 'delete', (event as SecretEvents['removed']).key);
    else if (type === 'rotated')
      for (const key of (event as SecretEvents['rotated']).keys) this.#indexEvent(child, 'add', key);
    else if (type === 'error' && child.indexable && child.handle !== undefined && !child.watchFailed) {
      // The child may have missed changes: list it again (asking it directly meanwhile).
      void this.#rebuildIndex(child);
    }
    if (this.#hub.size === 0) return;
    if (type === 'error' || type === 'warning') {
      this.#emit(type, {
        ...(event as SecretEvents['error']),
        provider: this.name,
        source: child.provider.name,
      } as never);
      return;
    }
    if (this.mode === 'failover') {
      if (child === (this.#children.find((c) => !c.down) ?? this.#first)) {
        this.#emit(type, { ...event, provider: this.name, source: child.provider.name } as never);
      }
      return;
    }
    const item: QueuedEvent = { child, type, event: event as QueuedEvent['event'] };
    this.#pending.push(item);
    const work = async () => {
      try {
        if (this.#hub.size > 0) await this.#effective(item);
      } catch (error) {
        this.#emit('error', {
          provider: this.name,
          source: child.provider.name,
          error: toSecretError(error, { provider: this.name, operation: 'watch' }),
          detectedAt: new Date(),
        });
      } finally {
        this.#pending.splice(this.#pending.indexOf(item), 1);
      }
    };
    this.#queue = this.#queue.then(work, work);
  }

  /**
   * Turns a child's change into what the chain's readers see. The other providers' state of the
   * key is taken as it was when the change happened: from the prior state of their own later
   * events still in the queue, else by asking them. A provider before the source that has the
   * key shadows the change; otherwise a provider after it that has the key turns an addition or
   * removal into a rotation (covered or uncovered).
   */
  async #effective(item: QueuedEvent): Promise<void> {
    const { child, type, event } = item;
    const detectedAt = (event as SecretEvents['added']).detectedAt ?? new Date();
    const source = child.provider.name;
    const changes: VersionChange[] =
      type === 'rotated'
        ? [...(event as SecretEvents['rotated']).changes]
        : [
            {
              key: (event as SecretEvents['added']).key,
              [type === 'added' ? 'newVersion' : 'oldVersion']: (event as SecretEvents['added']).version,
            },
          ];
    // `rotated` events may name keys without a change entry; give each key one.
    if (type === 'rotated') {
      for (const key of (event as SecretEvents['rotated']).keys) {
        if (!changes.some((c) => c.key === key)) changes.push({ key });
      }
    }
    const rotated: VersionChange[] = [];
    for (const change of changes) {
      const { key } = change;
      const shadow = await this.#firstServing(item, key, 0, child.position);
      if (shadow !== null) continue;
      if (type === 'rotated') {
        rotated.push(change);
        continue;
      }
      const below = await this.#firstServing(item, key, child.position + 1, this.#children.length);
      if (below === null) {
        this.#emit(type as 'added' | 'removed', {
          provider: this.name,
          source,
          key,
          version: (event as SecretEvents['added']).version,
          detectedAt,
        });
        continue;
      }
      const covered = type === 'added';
      this.#emit('rotated', {
        provider: this.name,
        source,
        keys: [key],
        changes: [
          covered
            ? { key, oldVersion: below.version, newVersion: change.newVersion }
            : { key, oldVersion: change.oldVersion, newVersion: below.version },
        ],
        detectedAt,
      });
    }
    if (rotated.length > 0) {
      this.#emit('rotated', {
        provider: this.name,
        source,
        keys: rotated.map((c) => c.key),
        changes: rotated,
        detectedAt,
      });
    }
  }

  /**
   * The first child in `[from, to)` that had `key` when `item` happened. A child that cannot say
   * is reported and passed over.
   */
  async #firstServing(item: QueuedEvent, key: string, from: number, to: number): Promise<Served | null> {
    for (let position = from; position < to; position++) {
      const other = this.#children[position] as Child;
      const queued = this.#priorInQueue(item, other, key);
      const state = queued === undefined ? await this.#stateOf(other, key) : queued;
      if (state !== null && state !== 'unknown') return state;
    }
    return null;
  }

  /**
   * `other`'s state of `key` when `item` happened, if one of its later events in the queue says
   * (that event's prior state); `undefined` when none does.
   */
  #priorInQueue(item: QueuedEvent, other: Child, key: string): Served | null | undefined {
    const queue = this.#pending;
    for (let n = queue.indexOf(item) + 1; n < queue.length; n++) {
      const later = queue[n] as QueuedEvent;
      if (later.child !== other) continue;
      if (later.type === 'rotated') {
        const rotatedEvent = later.event as SecretEvents['rotated'];
        if (!rotatedEvent.keys.includes(key)) continue;
        const change = rotatedEvent.changes.find((c) => c.key === key);
        return { position: other.position, version: change?.oldVersion };
      }
      const single = later.event as SecretEvents['added'];
      if (single.key !== key) continue;
      return later.type === 'added' ? null : { position: other.position, version: single.version };
    }
    return undefined;
  }

  /** Whether `child` has `key` now, with its version; `unknown` when it cannot say. */
  async #stateOf(child: Child, key: string): Promise<Served | null | 'unknown'> {
    let present = this.#presence(child, key);
    if (present instanceof Promise) present = await present.catch(() => undefined);
    if (present === false) return null;
    try {
      const metadata = await child.provider.metadata(key);
      return { position: child.position, version: metadata.version };
    } catch (error) {
      const mapped = isSecretError(error)
        ? error
        : toSecretError(error, { provider: child.provider.name, key });
      if (mapped.code === 'NOT_FOUND' || mapped.code === 'INVALID_KEY') return null;
      // The change is reported as if this provider did not have the key; the failure is reported too.
      this.#reportFailure(child, mapped, key);
      return 'unknown';
    }
  }

  async #warnIfShadowed(target: Child, key: string): Promise<void> {
    try {
      for (const before of this.#children.slice(0, target.position)) {
        let present = this.#presence(before, key);
        if (present instanceof Promise) present = await present;
        if (present === undefined) present = (await this.#holds(before, key)).holds;
        if (present) {
          this.#warn(target, {
            code: 'SHADOWED_WRITE',
            message: `"${key}" was written to provider "${target.provider.name}", but provider "${before.provider.name}" comes first in chain "${this.name}" and serves it`,
            key,
          });
          return;
        }
      }
    } catch {
      // Only a hint: a provider that cannot answer is reported by its own operations.
    }
  }

  // ---- helpers -------------------------------------------------------------------------------

  #target(
    name: string | undefined,
    capability: 'write' | 'delete',
    key: string,
    operation: SecretOperation,
  ): Child {
    if (name !== undefined) {
      const matches = this.#children.filter((c) => c.provider.name === name);
      if (matches.length !== 1) {
        throw new InvalidConfigError(
          { provider: this.name, key, operation },
          matches.length === 0
            ? `chain "${this.name}" has no provider named "${name}"`
            : `chain "${this.name}" has ${matches.length} providers named "${name}"; give them distinct names`,
        );
      }
      return matches[0] as Child;
    }
    const child = this.#children.find((c) => c.provider.capabilities[capability]);
    if (child !== undefined) return child;
    if (capability === 'write') throw new ReadOnlyError({ provider: this.name, key, operation });
    throw new UnsupportedOperationError(
      { provider: this.name, key, operation },
      `no provider of chain "${this.name}" can delete`,
    );
  }

  #childError(
    error: unknown,
    child: Child,
    operation: SecretOperation,
    key: string | undefined,
    signal: AbortSignal | undefined,
  ): SecretError {
    // A cancelled call is the caller's doing: never a reason to fail over.
    if (signal?.aborted) throw signal.reason;
    if (error instanceof DOMException && error.name === 'AbortError') throw error;
    return toSecretError(error, { provider: child.provider.name, key, operation });
  }

  /** Reports a failure the chain moved past; never silent. */
  #reportFailure(child: Child, error: SecretError, key: string | undefined): void {
    const event = { provider: this.name, source: child.provider.name, error, key, detectedAt: new Date() };
    if (this.#hub.size > 0) this.#hub.emit('error', event);
    else {
      process.emitWarning(
        `provider "${child.provider.name}" of chain "${this.name}" failed with ${error.code}${key === undefined ? '' : ` for "${key}"`}; the chain moved on`,
        { code: 'SECRET_PROVIDER_FAILOVER' },
      );
    }
  }

  #warn(child: Child, details: { code: string; message: string; key?: string | undefined }): void {
    const event = { provider: this.name, source: child.provider.name, ...details, detectedAt: new Date() };
    if (this.#hub.size > 0) this.#hub.emit('warning', event);
    else process.emitWarning(details.message, { code: `SECRET_PROVIDER_${details.code}` });
  }

  #emit<K extends keyof SecretEvents>(type: K, event: SecretEvents[K]): void {
    this.#hub.emit(type, event);
  }

  #assertOpen(operation: SecretOperation): void {
    if (this.#closed) throw new ProviderClosedError({ provider: this.name, operation });
  }

  #enter(key: string, operation: SecretOperation): void {
    this.#assertOpen(operation);
    validateKey(key, this.name);
  }
}
