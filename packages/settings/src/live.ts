import { createEmitter, type SecretError, type WatchHandle } from '@secret-provider/core';
import { type Clock, retryDelay, type Timer } from '@secret-provider/core/adapter';
import { fieldsByKey, type PlannedField } from './fields.js';
import type { ReadFailure } from './loader.js';
import { ReloadScheduler, type ReloadTiming } from './scheduler.js';
import type { SettingsWarningEvent } from './types.js';

/** The longest wait before a field whose re-read failed is read again (unless told longer). */
const MAX_RETRY_DELAY_MS = 30_000;

export interface LiveOptions {
  readonly fields: readonly PlannedField[];
  readonly clock: Clock;
  readonly timing: ReloadTiming;
  /** First wait before a failed field is read again; `0` turns retries off. */
  readonly retryDelayMs: number;
  /** Re-reads the fields (by index), validates and swaps; reports its own failures. */
  readonly reload: (fields: ReadonlySet<number>) => Promise<void>;
  readonly onError: (error: SecretError, fields: readonly PlannedField[], key?: string) => void;
  readonly onWarning: (event: SettingsWarningEvent) => void;
}

/**
 * Live reload: follows the providers' events for the routed keys, batches them through the
 * {@link ReloadScheduler}, and reads a field whose re-read failed again after a jittered,
 * growing wait (the backend's `Retry-After` when it gave one). Every timer runs on the clock.
 */
export class LiveReload {
  readonly #fields: readonly PlannedField[];
  readonly #byKey: ReadonlyMap<string, readonly PlannedField[]>;
  readonly #clock: Clock;
  readonly #retryDelayMs: number;
  readonly #options: LiveOptions;
  readonly #scheduler: ReloadScheduler;
  readonly #failures = new Map<number, number>();
  readonly #retries = new Map<number, Timer>();
  #handles: WatchHandle[] = [];
  #closed = false;

  constructor(options: LiveOptions) {
    this.#options = options;
    this.#fields = options.fields;
    this.#clock = options.clock;
    this.#retryDelayMs = options.retryDelayMs;
    this.#byKey = fieldsByKey(options.fields);
    this.#scheduler = new ReloadScheduler(options.timing, options.clock, options.reload);
  }

  /** The fields read from `key`, in routing order. */
  fieldsOf(key: string): readonly PlannedField[] {
    return this.#byKey.get(key) ?? [];
  }

  /** Starts following every provider a field is routed to; resolves when all watches are armed. */
  async start(): Promise<void> {
    // A field routed to a child of the chain is watched on the child itself: the chain reports
    // changes of the effective value only, and a child's key may be shadowed by a higher layer.
    // A change seen both ways falls into one debounce window and makes one reload.
    const targets = new Set(
      this.#fields.flatMap((field) => (field.skip || field.provider === undefined ? [] : [field.provider])),
    );
    for (const provider of targets) {
      const emitter = createEmitter();
      emitter.on('rotated', (event) => this.#changed(event.keys));
      emitter.on('added', (event) => this.#changed([event.key]));
      emitter.on('removed', (event) => this.#changed([event.key]));
      emitter.on('error', (event) => {
        const fields = event.key === undefined ? [] : this.fieldsOf(event.key);
        this.#options.onError(event.error, fields, event.key);
      });
      emitter.on('warning', (event) =>
        this.#options.onWarning({
          code: event.code,
          message: event.message,
          provider: event.source ?? event.provider,
          key: event.key,
          detectedAt: event.detectedAt,
        }),
      );
      this.#handles.push(provider.watch(emitter));
    }
    await Promise.all(this.#handles.map((handle) => handle.ready));
  }

  /** Stops following the providers. */
  async stop(): Promise<void> {
    const handles = this.#handles.splice(0);
    await Promise.allSettled(handles.map((handle) => handle.stop()));
  }

  /** A field was read: its failures are forgotten. */
  succeeded(field: PlannedField): void {
    this.#failures.delete(field.index);
  }

  /**
   * Reads each failed field again after its own wait: {@link retryDelay} from `retryDelayMs`,
   * doubling per consecutive failure up to {@link MAX_RETRY_DELAY_MS}, with jitter, or the
   * backend's `Retry-After`. Retries due together fall into one debounce window.
   */
  retry(failures: readonly ReadFailure[]): void {
    if (this.#retryDelayMs === 0 || this.#closed) return;
    for (const { field, error } of failures) {
      const count = (this.#failures.get(field.index) ?? 0) + 1;
      this.#failures.set(field.index, count);
      const delay = retryDelay(count, error, { base: this.#retryDelayMs, max: MAX_RETRY_DELAY_MS });
      this.#retries.get(field.index)?.cancel();
      const timer = this.#clock.setTimer(() => {
        this.#retries.delete(field.index);
        this.#scheduler.add([field.index]);
      }, delay);
      this.#retries.set(field.index, timer);
    }
  }

  /** Drops pending reloads and retries; the watches are stopped by {@link stop}. */
  close(): void {
    this.#closed = true;
    this.#scheduler.close();
    for (const timer of this.#retries.values()) timer.cancel();
    this.#retries.clear();
  }

  #changed(keys: readonly string[]): void {
    const indices = keys.flatMap((key) => this.fieldsOf(key).map((field) => field.index));
    if (indices.length > 0) this.#scheduler.add(indices);
  }
}
