import type { Secret, SecretValue } from '../secret.js';
import type { GetOptions, OperationOptions, SecretEvents, SecretProvider, SetOptions } from '../types.js';
import { WrappingProvider } from '../wrapping-provider.js';
import type { SecretKeyPredicate } from './secret-keys.js';

/** What a provider view tells its redactor. Internal: the redactor implements it. */
export interface ValueSink {
  /** `value` is now the current value of `key` in `provider`; `secretKeys` says what is masked. */
  learn(
    provider: string,
    key: string,
    value: Secret<SecretValue> | string,
    secretKeys?: SecretKeyPredicate,
  ): void;
  /** `value` was seen outside a key's history (an old version). */
  learnTransient(value: Secret<SecretValue> | string): void;
  /**
   * Masks `value`, about to be written to `key`, until the returned function is called (then,
   * unless `learn` made it the key's value, it starts its grace period).
   */
  hold(
    provider: string,
    key: string,
    value: Secret<SecretValue> | string,
    secretKeys?: SecretKeyPredicate,
  ): () => void;
  /** A redacted copy of `value` (an error on its way to the caller). */
  redact<T>(value: T): T;
  /** `key` no longer exists in `provider`; its value starts its grace period. */
  forget(provider: string, key: string): void;
  /** Whether the redactor has learned a value of `key` of `provider` (masked or not). */
  knows(provider: string, key: string): boolean;
  /** Re-reads `keys` of `provider` after a rotation and learns the new values. */
  refresh(provider: SecretProvider, keys: readonly string[], secretKeys?: SecretKeyPredicate): Promise<void>;
}

/**
 * A {@link SecretProvider} that passes every call to another and tells a redactor about the
 * values that go through it: values read, values written, keys deleted, and (while watched)
 * rotations, after which it re-reads the rotated keys it knew so the new values are masked at
 * once and the old ones retire after the grace period.
 */
export class RedactingProvider extends WrappingProvider {
  readonly #sink: ValueSink;
  readonly #secretKeys: SecretKeyPredicate;

  constructor(inner: SecretProvider, sink: ValueSink, secretKeys: SecretKeyPredicate) {
    super(inner);
    this.#sink = sink;
    this.#secretKeys = secretKeys;
  }

  override async get(key: string, options?: GetOptions): Promise<Secret<string>> {
    const secret = await super.get(key, options);
    // An explicit older version is not the key's current value: mask it without letting it
    // replace the current one.
    if (options?.version === undefined) this.#sink.learn(this.provider.name, key, secret, this.#secretKeys);
    else this.#sink.learnTransient(secret);
    return secret;
  }

  override async set(key: string, value: string | Secret<SecretValue>, options?: SetOptions): Promise<void> {
    this.assertOpen('set');
    // Masked while the write is in flight (a client may log the request it is sending),
    // whatever the grace period, and until the key holds it or its grace period ends.
    const release = this.#sink.hold(this.provider.name, key, value, this.#secretKeys);
    try {
      await super.set(key, value, options);
      this.#sink.learn(this.provider.name, key, value, this.#secretKeys);
    } catch (error) {
      // A failing client's error may quote the request: it leaves redacted, while the value
      // is still held.
      throw this.#sink.redact(error);
    } finally {
      release();
    }
  }

  override async delete(key: string, options?: OperationOptions): Promise<void> {
    await super.delete(key, options);
    this.#sink.forget(this.provider.name, key);
  }

  protected override onInnerEvent(type: keyof SecretEvents, event: SecretEvents[keyof SecretEvents]): void {
    if (type === 'rotated') {
      const keys = (event as SecretEvents['rotated']).keys.filter((key) =>
        this.#sink.knows(this.provider.name, key),
      );
      if (keys.length > 0) void this.#sink.refresh(this.provider, keys, this.#secretKeys);
    } else if (type === 'removed') {
      this.#sink.forget(this.provider.name, (event as SecretEvents['removed']).key);
    }
  }

  protected override describe(): Record<string, unknown> {
    return { redacting: true };
  }
}
