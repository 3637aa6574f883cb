import { inspect } from 'node:util';
import {
  type ChangeStream,
  changeStream,
  createEmitter,
  type GetOptions,
  InvalidConfigError,
  type KeysOptions,
  type OperationOptions,
  type ProviderCapabilities,
  ProviderClosedError,
  ReadOnlyError,
  type Secret,
  type SecretError,
  type SecretErrorCode,
  type SecretEventEmitter,
  type SecretEvents,
  type SecretMetadata,
  type SecretOperation,
  type SecretProvider,
  type SecretValue,
  type SetOptions,
  UnsupportedOperationError,
  type WatchHandle,
  type WatchOptions,
} from '@secret-provider/core';
import {
  closedWatchHandle,
  EventHub,
  raceSignal,
  toSecretError,
  validateKey,
} from '@secret-provider/core/adapter';

/** Name of a chain in errors and events unless another is given. */
export const PROVIDER_NAME = 'chain';

/** Error codes that make a failover chain switch to the next replica by default. */
export const DEFAULT_FAILOVER_CODES: readonly SecretErrorCode[] = ['UNAVAILABLE', 'TIMEOUT', 'RATE_LIMITED'];

/**
 * How a chain uses its providers.
 * - `ordered`: layers ({@link LayeredProvider}). The first provider that has a key serves it
 *   (environment over files over a vault); a missing key falls through to the next.
 * - `failover`: replicas ({@link FailoverProvider}). One provider (the first healthy one) serves
 *   everything; a missing key is an answer, not a failure, and does not fall through.
 */
export type ChainMode = 'ordered' | 'failover';

/** Options every chain takes. */
export interface CompositeProviderOptions {
  /** Name in errors and events. @default 'chain' */
  readonly name?: string | undefined;
  /**
   * Which failures move on to the next provider instead of rejecting: `true` for any error,
   * `false` for none, or a list of codes. Each such failure is reported as an `error` event to
   * the chain's watchers (a process warning when nobody watches), never swallowed. `NOT_FOUND`
   * is never one of them: whether a missing key falls through is the chain's kind.
   */
  readonly failover?: boolean | readonly SecretErrorCode[] | undefined;
  /** Close the providers when the chain is closed. @default true */
  readonly ownsProvider?: boolean | undefined;
  /** @deprecated the earlier name of {@link CompositeProviderOptions.ownsProvider}; still honoured. */
  readonly ownsProviders?: boolean | undefined;
}

/** `set` options of a chain: which provider receives the write. */
export interface ChainedSetOptions extends SetOptions {
  /** Name of the provider to write to. @default the first (failover: the serving) provider that can write */
  readonly provider?: string | undefined;
}

/** `delete` options of a chain. */
export interface ChainedDeleteOptions extends OperationOptions {
  /** Name of the provider to delete from. @default the first (failover: the serving) provider that can delete */
  readonly provider?: string | undefined;
}

/** What one provider of a chain says about a key (see {@link CompositeProvider.explain}). */
export interface ExplainEntry {
  /** The provider's name. */
  readonly provider: string;
  /** Its position in the chain, from 0. */
  readonly position: number;
  /**
   * `serving`: its value is what `get` returns. `shadowed`: it has the key but a provider before
   * it serves. `missing`: it does not have the key. `failed`: it could not say (see `error`).
   * `standby`: failover, a replica that is not serving.
   */
  readonly status: 'serving' | 'shadowed' | 'missing' | 'failed' | 'standby';
  /** Failover: whether the chain considers it healthy. */
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

/** One provider of a chain, as the chain sees it. */
export interface Child {
  readonly provider: SecretProvider;
  readonly position: number;
  /** It answers `has()` without reading the value (`capabilities.has`), so asking it first saves a read. */
  readonly answersHas: boolean;
}

/**
 * What a chain hears about a child's watch: `armed` (it reports changes from now on), `failed`
 * (it never started), `error` (an error after it was armed: changes may have been missed),
 * `released` (the chain stopped watching its children).
 */
export type ChildWatchState = 'armed' | 'failed' | 'error' | 'released';

type ChangeType = 'added' | 'removed' | 'rotated';

/** A reason to reject before any provider is asked. */
const rejected = (error: unknown): Promise<never> => Promise.reject(error);

/**
 * What every chain shares: its providers and their ownership, one {@link EventHub} into which the
 * providers' events fan in (each provider is watched while the chain is watched, or while a
 * subclass holds them, as the key index does), `changes()`, lifecycle, `explain`, capabilities,
 * and the typing and reporting of its providers' failures. {@link LayeredProvider} and
 * {@link FailoverProvider} build on it; {@link ChainedProvider} picks one by `mode`.
 */
export abstract class CompositeProvider implements SecretProvider {
  readonly name: string;
  /** Which kind of chain this is. */
  abstract readonly mode: ChainMode;
  /** The providers, in order, with what the chain knows of each. */
  protected readonly children: readonly Child[];
  /** Whether a failure with `code` moves on to the next provider (never `NOT_FOUND`). */
  protected readonly movesOn: (code: SecretErrorCode) => boolean;
  /** Whether `failover` moves past any failure at all. */
  protected readonly movesOnAny: boolean;
  readonly #owns: boolean;
  readonly #hub: EventHub;
  /** Who needs the children watched: the chain's watchers (as one) and the subclass's holds. */
  #holders = 0;
  #watches: Array<WatchHandle | undefined> = [];
  /** Counts the starts and stops of the children's watches: events of an earlier one are stale. */
  #generation = 0;
  #closed = false;
  #closing: Promise<void> | undefined;

  protected constructor(
    providers: readonly SecretProvider[],
    options: CompositeProviderOptions,
    defaultFailover: boolean | readonly SecretErrorCode[],
  ) {
    this.name = options.name ?? PROVIDER_NAME;
    if (!Array.isArray(providers) || providers.length === 0)
      throw this.invalidConfig('a chain needs at least one provider');
    if (providers.some((p) => typeof p !== 'object' || p === null || typeof p.get !== 'function')) {
      throw this.invalidConfig('every element must be a secret provider');
    }
    if (new Set(providers).size !== providers.length)
      throw this.invalidConfig('the same provider appears twice');
    const failover = options.failover ?? defaultFailover;
    this.movesOnAny = failover !== false && (failover === true || failover.length > 0);
    if (failover === true) this.movesOn = (code) => code !== 'NOT_FOUND';
    else if (failover === false) this.movesOn = () => false;
    else {
      const codes = new Set(failover);
      this.movesOn = (code) => code !== 'NOT_FOUND' && codes.has(code);
    }
    this.#owns = options.ownsProvider ?? options.ownsProviders ?? true;
    this.children = providers.map((provider, position) => ({
      provider,
      position,
      answersHas: provider.capabilities.has === true && typeof provider.has === 'function',
    }));
    this.#hub = new EventHub(async () => {
      await this.holdChildren();
      return () => this.releaseChildren();
    });
  }

  /** The providers, in order. */
  get providers(): readonly SecretProvider[] {
    return this.children.map((c) => c.provider);
  }

  /** The provider that serves now: the first one for layers, the first healthy one for replicas. */
  abstract get activeProvider(): SecretProvider;

  /** What the chain can do, derived from its providers (see each kind). */
  abstract get capabilities(): ProviderCapabilities;

  /** The value of `key`: from the first layer that has it, or from the serving replica. */
  abstract get(key: string, options?: GetOptions): Promise<Secret<string>>;
  /** The values of several keys, each as `get` would give it; missing keys are absent. */
  abstract getMany(keys: readonly string[], options?: GetOptions): Promise<Map<string, Secret<string>>>;
  /** The metadata of `key`, from the provider `get` would read. */
  abstract metadata(key: string, options?: OperationOptions): Promise<SecretMetadata>;
  /** Whether the chain has `key` (see each kind); answers synchronously when its providers do. */
  abstract has(key: string, options?: OperationOptions): boolean | Promise<boolean>;
  /** The keys: the union of the layers, or the serving replica's. */
  abstract keys(options?: KeysOptions): Promise<string[]>;
  /** Writes to the provider `options.provider` names, else to the one each kind picks. */
  abstract set(key: string, value: string | Secret<SecretValue>, options?: ChainedSetOptions): Promise<void>;
  /** Removes `key` from the provider `options.provider` names, else from the one each kind picks. */
  abstract delete(key: string, options?: ChainedDeleteOptions): Promise<void>;

  /**
   * Which provider serves `key` and which have it but are shadowed (or stand by), with versions
   * and tags but never values. Asks every provider (in parallel) for metadata.
   */
  async explain(key: string, options: OperationOptions = {}): Promise<Explanation> {
    this.enter(key, 'metadata', options.signal);
    const answers = await raceSignal(
      Promise.allSettled(this.children.map((c) => c.provider.metadata(key, options))),
      options.signal,
    );
    if (options.signal?.aborted) throw options.signal.reason;
    let servedBy: string | undefined;
    const entries = answers.map((answer, position): ExplainEntry => {
      const child = this.children[position] as Child;
      const health = this.healthOf(child);
      if (answer.status === 'rejected') {
        const error = this.childError(answer.reason, child, 'metadata', key, options.signal);
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
      const status = this.explainStatus(child, servedBy === undefined);
      if (status === 'serving') servedBy = child.provider.name;
      const { version, updatedAt, expiresAt, tags } = answer.value;
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

  /**
   * Merges the providers' events into `emitter`, tagged with `source` (the provider they came
   * from) and `provider` (this chain). Errors and warnings of every provider pass through; so do
   * the chain's own. Which changes pass, and how, is each kind's (see {@link onChildChange}).
   */
  watch(emitter: SecretEventEmitter, options: WatchOptions = {}): WatchHandle {
    if (this.#closed) {
      return closedWatchHandle(new ProviderClosedError({ provider: this.name, operation: 'watch' }));
    }
    return this.#hub.attach(emitter, options, (error) =>
      toSecretError(error, { provider: this.name, operation: 'watch' }),
    );
  }

  /** The chain's changes as an async iterator (core's `changeStream`). */
  changes(options: WatchOptions = {}): ChangeStream {
    return changeStream(this, options);
  }

  /** Stops watches and background work, and closes the providers (unless `ownsProvider: false`). */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#closed = true;
      this.#closing = (async () => {
        await this.stopWork();
        await this.#hub.close();
        if (!this.#owns) return;
        const results = await Promise.allSettled(this.children.map((c) => c.provider.close()));
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
      providers: this.children.map((c) => c.provider.name),
      closed: this.#closed,
    };
  }

  [inspect.custom](): string {
    const names = this.children.map((c) => JSON.stringify(c.provider.name)).join(', ');
    return `ChainedProvider { name: ${JSON.stringify(this.name)}, mode: ${this.mode}, providers: [${names}]${this.#closed ? ', closed' : ''} }`;
  }

  // ---- for the kinds of chain -------------------------------------------------------------------

  /** A child changed (`added`, `removed`, `rotated`); errors and warnings are passed on already. */
  protected abstract onChildChange(child: Child, type: ChangeType, event: SecretEvents[ChangeType]): void;

  /** A child's watch changed state (see `ChildWatchState`). */
  protected onChildWatch(_child: Child, _state: ChildWatchState): void {}

  /** `explain`'s status of a child that has the key; `first` when no child before it has it. */
  protected abstract explainStatus(child: Child, first: boolean): 'serving' | 'shadowed' | 'standby';

  /** `explain`'s health fields of a child. */
  protected healthOf(_child: Child): { healthy?: boolean } {
    return {};
  }

  /** Stops the kind's background work; the first step of `close`. */
  protected async stopWork(): Promise<void> {}

  /** Whether anyone watches the chain. */
  protected get watched(): boolean {
    return this.#hub.size > 0;
  }

  /** Whether `close` has been called. */
  protected get closed(): boolean {
    return this.#closed;
  }

  /** What every capability is when `pick` combines the children's flags. */
  protected combineCapabilities(pick: 'some' | 'every'): ProviderCapabilities {
    const all = this.children.map((c) => c.provider.capabilities);
    const some = (k: keyof ProviderCapabilities) => all.some((c) => c[k]);
    const every = (k: keyof ProviderCapabilities) => all.every((c) => c[k]);
    const chosen = pick === 'some' ? some : every;
    return {
      write: chosen('write'),
      delete: chosen('delete'),
      list: chosen('list'),
      watch: chosen('watch'),
      // Reading metadata or versions, or presence, without the value only holds if all can.
      metadata: every('metadata'),
      versions: every('versions'),
      has: every('has'),
      checkAndSet: chosen('checkAndSet'),
      expiry: chosen('expiry'),
      tags: chosen('tags'),
      contentType: chosen('contentType'),
    };
  }

  /**
   * Checks a call before any provider is asked: the chain is open, the key is valid, and the
   * caller has not given up (an aborted signal rejects with its reason, whoever would be asked).
   */
  protected enter(key: string, operation: SecretOperation, signal: AbortSignal | undefined): void {
    if (this.#closed) throw new ProviderClosedError({ provider: this.name, operation });
    validateKey(key, this.name);
    if (signal?.aborted) throw signal.reason;
  }

  /** {@link enter} as a rejected promise, or `undefined` when the call may go on. */
  protected refuse(
    key: string,
    operation: SecretOperation,
    signal: AbortSignal | undefined,
  ): Promise<never> | undefined {
    try {
      this.enter(key, operation, signal);
      return undefined;
    } catch (error) {
      return rejected(error);
    }
  }

  /** Checks a call without a key: the chain is open and the caller has not given up. */
  protected enterWithoutKey(operation: SecretOperation, signal: AbortSignal | undefined): void {
    if (this.#closed) throw new ProviderClosedError({ provider: this.name, operation });
    if (signal?.aborted) throw signal.reason;
  }

  /**
   * A child's failure, typed and sanitized. A cancelled call is the caller's doing and never a
   * reason to move on: it throws the signal's reason instead of returning.
   */
  protected childError(
    error: unknown,
    child: Child,
    operation: SecretOperation,
    key: string | undefined,
    signal: AbortSignal | undefined,
  ): SecretError {
    if (signal?.aborted) throw signal.reason;
    if (error instanceof DOMException && error.name === 'AbortError') throw error;
    return toSecretError(error, { provider: child.provider.name, key, operation });
  }

  /** The child named `name`, or the first one that can write or delete. */
  protected target(
    name: string | undefined,
    capability: 'write' | 'delete',
    key: string,
    operation: SecretOperation,
  ): Child {
    if (name !== undefined) {
      const matches = this.children.filter((c) => c.provider.name === name);
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
    const child = this.children.find((c) => c.provider.capabilities[capability]);
    if (child !== undefined) return child;
    if (capability === 'write') throw new ReadOnlyError({ provider: this.name, key, operation });
    throw new UnsupportedOperationError(
      { provider: this.name, key, operation },
      `no provider of chain "${this.name}" can delete`,
    );
  }

  /** Reports a failure the chain moved past: to its watchers, else as a process warning. Never silent. */
  protected reportFailure(child: Child, error: SecretError, key: string | undefined): void {
    if (this.#hub.size > 0) {
      this.#hub.emit('error', {
        provider: this.name,
        source: child.provider.name,
        error,
        key,
        detectedAt: new Date(),
      });
      return;
    }
    process.emitWarning(
      `provider "${child.provider.name}" of chain "${this.name}" failed with ${error.code}${key === undefined ? '' : ` for "${key}"`}; the chain moved on`,
      { code: 'SECRET_PROVIDER_FAILOVER' },
    );
  }

  /** A warning about a child: to the watchers, else as a process warning `SECRET_PROVIDER_<code>`. */
  protected warn(child: Child, details: { code: string; message: string; key?: string | undefined }): void {
    if (this.#hub.size > 0) {
      this.#hub.emit('warning', {
        provider: this.name,
        source: child.provider.name,
        ...details,
        detectedAt: new Date(),
      });
    } else {
      process.emitWarning(details.message, { code: `SECRET_PROVIDER_${details.code}` });
    }
  }

  /** Emits to the chain's watchers. */
  protected emit<K extends keyof SecretEvents>(type: K, event: SecretEvents[K]): void {
    this.#hub.emit(type, event);
  }

  /** Keeps every child watched until the matching {@link releaseChildren}; resolves once all are armed. */
  protected async holdChildren(): Promise<void> {
    this.#holders++;
    if (this.#holders === 1) {
      const generation = ++this.#generation;
      this.#watches = this.children.map((child) => this.#watchChild(child, generation));
    }
    await Promise.allSettled(this.#watches.map((handle) => handle?.ready));
  }

  /** Lets go of the children's watches taken by {@link holdChildren}; the last holder stops them. */
  protected async releaseChildren(): Promise<void> {
    this.#holders--;
    if (this.#holders > 0) return;
    this.#generation++;
    const handles = this.#watches;
    this.#watches = [];
    for (const child of this.children) this.onChildWatch(child, 'released');
    await Promise.allSettled(handles.map((h) => h?.stop()));
  }

  /** An invalid configuration, as the chain's error. */
  protected invalidConfig(message: string): InvalidConfigError {
    return new InvalidConfigError({ provider: this.name }, `invalid configuration: ${message}`);
  }

  #watchChild(child: Child, generation: number): WatchHandle | undefined {
    const live = () => generation === this.#generation;
    const emitter = createEmitter();
    let armed = false;
    let failed = false;
    emitter.on('*', (type, event) => {
      if (!live()) return;
      if (type === 'error') {
        // An error before the watch is armed means it never started.
        if (!armed) failed = true;
        this.onChildWatch(child, armed ? 'error' : 'failed');
      }
      if (type === 'error' || type === 'warning') {
        if (this.#hub.size > 0) {
          this.#hub.emit(type, {
            ...(event as SecretEvents['error']),
            provider: this.name,
            source: child.provider.name,
          } as never);
        }
        return;
      }
      this.onChildChange(child, type as ChangeType, event as SecretEvents[ChangeType]);
    });
    let handle: WatchHandle;
    try {
      handle = child.provider.watch(emitter);
    } catch (error) {
      this.#childWatchFailed(child, error);
      return undefined;
    }
    handle.ready.then(
      () => {
        armed = true;
        if (!failed && live()) this.onChildWatch(child, 'armed');
      },
      (error: unknown) => {
        if (live()) this.#childWatchFailed(child, error);
      },
    );
    return handle;
  }

  #childWatchFailed(child: Child, error: unknown): void {
    this.onChildWatch(child, 'failed');
    if (this.#hub.size === 0) return;
    this.#hub.emit('error', {
      provider: this.name,
      source: child.provider.name,
      error: toSecretError(error, { provider: child.provider.name, operation: 'watch' }),
      detectedAt: new Date(),
    });
  }
}
