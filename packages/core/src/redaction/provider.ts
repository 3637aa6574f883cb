import { inspect } from 'node:util';
import { ProviderClosedError, type SecretOperation, toSecretError } from '../errors.js';
import { createEmitter, EventHub } from '../events.js';
import type { Secret, SecretValue } from '../secret.js';
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
} from '../types.js';

/** What a provider view tells its redactor. Internal: the redactor implements it. */
export interface ValueSink {
  /** `value` is now the current value of `key` in `provider`. */
  learn(provider: string, key: string, value: Secret<SecretValue> | string): void;
  /** `value` was seen outside a key's history (an old version, a value being written). */
  learnTransient(value: Secret<SecretValue> | string): void;
  /** `key` no longer exists in `provider`; its value starts its grace period. */
  forget(provider: string, key: string): void;
  /** Whether the redactor holds a current value for `key` of `provider`. */
  knows(provider: string, key: string): boolean;
  /** Re-reads `keys` of `provider` after a rotation and learns the new values. */
  refresh(provider: SecretProvider, keys: readonly string[]): Promise<void>;
}

/**
 * A {@link SecretProvider} that passes every call to another and tells a redactor about the
 * values that go through it: values read, values written, keys deleted, and (while watched)
 * rotations, after which it re-reads the rotated keys it knew so the new values are masked at
 * once and the old ones retire after the grace period.
 */
export class RedactingProvider implements SecretProvider {
  readonly name: string;
  readonly #inner: SecretProvider;
  readonly #sink: ValueSink;
  readonly #hub: EventHub;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(inner: SecretProvider, sink: ValueSink) {
    this.#inner = inner;
    this.#sink = sink;
    this.name = inner.name;
    this.#hub = new EventHub(async () => {
      const emitter = createEmitter();
      emitter.on('*', (type, event) => {
        this.#follow(type, event as SecretEvents[keyof SecretEvents]);
        this.#hub.emit(type, event as never);
      });
      const handle = inner.watch(emitter);
      await handle.ready;
      return () => handle.stop();
    });
  }

  /** The wrapped provider, for its own methods. */
  get provider(): SecretProvider {
    return this.#inner;
  }

  get capabilities(): ProviderCapabilities {
    return this.#inner.capabilities;
  }

  async get(key: string, options?: GetOptions): Promise<Secret<string>> {
    this.#assertOpen('get');
    const secret = await this.#inner.get(key, options);
    // An explicit older version is not the key's current value: mask it without letting it
    // replace the current one.
    if (options?.version === undefined) this.#sink.learn(this.#inner.name, key, secret);
    else this.#sink.learnTransient(secret);
    return secret;
  }

  async metadata(key: string, options?: OperationOptions): Promise<SecretMetadata> {
    this.#assertOpen('metadata');
    return this.#inner.metadata(key, options);
  }

  async set(key: string, value: string | Secret<SecretValue>, options?: SetOptions): Promise<void> {
    this.#assertOpen('set');
    // Known before the write, so a failing client's error that quotes the request is masked.
    this.#sink.learnTransient(value);
    await this.#inner.set(key, value, options);
    this.#sink.learn(this.#inner.name, key, value);
  }

  async delete(key: string, options?: OperationOptions): Promise<void> {
    this.#assertOpen('delete');
    await this.#inner.delete(key, options);
    this.#sink.forget(this.#inner.name, key);
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

  /** Stops watches and closes the wrapped provider. Idempotent. */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#closed = true;
      this.#closing = (async () => {
        await this.#hub.close();
        await this.#inner.close();
      })();
    }
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  toJSON(): Record<string, unknown> {
    return { provider: this.name, redacting: true, closed: this.#closed };
  }

  [inspect.custom](): string {
    return `RedactingProvider { name: ${JSON.stringify(this.name)}${this.#closed ? ', closed' : ''} }`;
  }

  #follow(type: keyof SecretEvents, event: SecretEvents[keyof SecretEvents]): void {
    if (type === 'rotated') {
      const keys = (event as SecretEvents['rotated']).keys.filter((key) =>
        this.#sink.knows(this.#inner.name, key),
      );
      if (keys.length > 0) void this.#sink.refresh(this.#inner, keys);
    } else if (type === 'removed') {
      this.#sink.forget(this.#inner.name, (event as SecretEvents['removed']).key);
    }
  }

  #assertOpen(operation: SecretOperation): void {
    if (this.#closed) throw new ProviderClosedError({ provider: this.name, operation });
  }
}
