import { ProviderClosedError, type SecretOperation, toSecretError } from './errors.js';
import { closedWatchHandle, createEmitter, EventHub } from './events.js';
import { getMany } from './many.js';
import { hasKey } from './presence.js';
import { INSPECT_CUSTOM, type Secret, type SecretValue } from './secret.js';
import { type ChangeStream, changeStream } from './stream.js';
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

/**
 * A provider that stands in front of another and passes every call through: the lifecycle,
 * capabilities and watching that `CachedProvider` and the redactor's provider view share.
 * Subclasses override the calls they change and see the wrapped provider's events first
 * through {@link WrappingProvider.onInnerEvent}.
 */
export abstract class WrappingProvider implements SecretProvider {
  readonly name: string;
  readonly #inner: SecretProvider;
  readonly #owns: boolean;
  readonly #hub: EventHub;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(
    inner: SecretProvider,
    options: { name?: string | undefined; ownsProvider?: boolean | undefined } = {},
  ) {
    this.#inner = inner;
    this.name = options.name ?? inner.name;
    this.#owns = options.ownsProvider ?? true;
    // One watch of the wrapped provider, shared by every watcher of this one.
    this.#hub = new EventHub(async () => {
      const emitter = createEmitter();
      emitter.on('*', (type, event) => {
        this.onInnerEvent(type, event as SecretEvents[keyof SecretEvents]);
        this.#hub.emit(type, event as never);
      });
      const handle = inner.watch(emitter);
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

  /** Called with each event of the wrapped provider before watchers of this one see it. */
  protected onInnerEvent(_type: keyof SecretEvents, _event: SecretEvents[keyof SecretEvents]): void {}

  /** Reports an event to the watchers of this provider. */
  protected emit<K extends keyof SecretEvents>(type: K, event: SecretEvents[K]): void {
    this.#hub.emit(type, event);
  }

  protected get closed(): boolean {
    return this.#closed;
  }

  /** @throws {ProviderClosedError} once `close` was called. */
  protected assertOpen(operation: SecretOperation): void {
    if (this.#closed) throw new ProviderClosedError({ provider: this.name, operation });
  }

  async get(key: string, options?: GetOptions): Promise<Secret<string>> {
    this.assertOpen('get');
    return this.#inner.get(key, options);
  }

  /** The wrapped provider's `getMany`, or its `get`s a few at a time (core `getMany`). */
  async getMany(keys: readonly string[], options?: GetOptions): Promise<Map<string, Secret<string>>> {
    this.assertOpen('get');
    return getMany(this.#inner, keys, options);
  }

  has(key: string, options?: OperationOptions): boolean | Promise<boolean> {
    if (this.#closed)
      return Promise.reject(new ProviderClosedError({ provider: this.name, operation: 'has' }));
    const inner = this.#inner;
    return typeof inner.has === 'function' ? inner.has(key, options) : hasKey(inner, key, options);
  }

  async metadata(key: string, options?: OperationOptions): Promise<SecretMetadata> {
    this.assertOpen('metadata');
    return this.#inner.metadata(key, options);
  }

  async set(key: string, value: string | Secret<SecretValue>, options?: SetOptions): Promise<void> {
    this.assertOpen('set');
    return this.#inner.set(key, value, options);
  }

  async delete(key: string, options?: OperationOptions): Promise<void> {
    this.assertOpen('delete');
    return this.#inner.delete(key, options);
  }

  async keys(options?: KeysOptions): Promise<string[]> {
    this.assertOpen('keys');
    return this.#inner.keys(options);
  }

  watch(emitter: SecretEventEmitter, options: WatchOptions = {}): WatchHandle {
    if (this.#closed) {
      return closedWatchHandle(new ProviderClosedError({ provider: this.name, operation: 'watch' }));
    }
    return this.#hub.attach(emitter, options, (error) =>
      toSecretError(error, { provider: this.name, operation: 'watch' }),
    );
  }

  /** The provider's changes as an async iterator (see {@link changeStream}). */
  changes(options: WatchOptions = {}): ChangeStream {
    return changeStream(this, options);
  }

  /** Stops watches, releases what the subclass holds, and closes the wrapped provider if owned. */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#closed = true;
      this.#closing = (async () => {
        await this.#hub.close();
        this.onClose();
        if (this.#owns) await this.#inner.close();
      })();
    }
    return this.#closing;
  }

  /** Releases the subclass's own state; called once by `close`. */
  protected onClose(): void {}

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Non-secret facts a subclass adds to `toJSON`. */
  protected describe(): Record<string, unknown> {
    return {};
  }

  toJSON(): Record<string, unknown> {
    return { provider: this.name, ...this.describe(), closed: this.#closed };
  }

  [INSPECT_CUSTOM](): string {
    return `${this.constructor.name} { name: ${JSON.stringify(this.name)}${this.#closed ? ', closed' : ''} }`;
  }
}
