import { AsyncQueue } from '@secret-provider/core/adapter';
import type { SettingsEvents, SettingsUpdate } from './types.js';

/** Process-warning code of a settings error no `error` listener took. */
export const SETTINGS_ERROR_WARNING = 'SECRET_PROVIDER_SETTINGS_ERROR';
/** Process-warning code of a settings listener that threw. */
export const SETTINGS_LISTENER_WARNING = 'SECRET_PROVIDER_SETTINGS_LISTENER_ERROR';

type Listener<T, K extends keyof SettingsEvents<T>> = (event: SettingsEvents<T>[K]) => void;

/**
 * Where the outcomes of a settings object go: the `update`, `error` and `warning` listeners and
 * the `updates()` iterators. Each iterator is a core {@link AsyncQueue}, the mechanism behind
 * providers' `changes()` too.
 */
export class SettingsEventHub<T> {
  readonly #listeners: { [K in keyof SettingsEvents<T>]: Set<Listener<T, K>> } = {
    update: new Set(),
    error: new Set(),
    warning: new Set(),
  };
  readonly #queues = new Set<AsyncQueue<SettingsUpdate<T>>>();
  #ended = false;

  /** @returns a function that removes the listener. */
  on<K extends keyof SettingsEvents<T>>(type: K, listener: Listener<T, K>): () => void {
    const set = this.#listeners[type] as Set<Listener<T, K>>;
    set.add(listener);
    return () => set.delete(listener);
  }

  /**
   * A new iterator of the updates published from now on. It ends after the updates already
   * queued once {@link end} is called, and at once (dropping them) when `signal` aborts or the
   * consumer leaves the loop.
   */
  updates(signal: AbortSignal | undefined): AsyncIterableIterator<SettingsUpdate<T>> {
    // An aborted signal finishes the queue inside its constructor, before `queue` is assigned.
    let queue: AsyncQueue<SettingsUpdate<T>> | undefined;
    queue = new AsyncQueue<SettingsUpdate<T>>({
      signal,
      onFinish: () => {
        if (queue !== undefined) this.#queues.delete(queue);
      },
    });
    if (this.#ended) queue.end();
    else if (!queue.ended) this.#queues.add(queue);
    return queue;
  }

  /** Announces a successful swap to the `update` listeners and every iterator. */
  publish(update: SettingsUpdate<T>): void {
    this.emit('update', update);
    for (const queue of this.#queues) queue.push(update);
  }

  /** Reports an error to the `error` listeners; without any, as a process warning (its message only). */
  reportError(event: SettingsEvents<T>['error']): void {
    if (this.#listeners.error.size === 0) {
      process.emitWarning(event.error.message, { code: SETTINGS_ERROR_WARNING });
      return;
    }
    this.emit('error', event);
  }

  emit<K extends keyof SettingsEvents<T>>(type: K, event: SettingsEvents<T>[K]): void {
    for (const listener of [...(this.#listeners[type] as Set<Listener<T, K>>)]) {
      try {
        listener(event);
      } catch (error) {
        // The listener is user code and may have put a value in its message: name the kind only.
        process.emitWarning(
          `a listener of the "${type}" settings event threw ${error instanceof Error ? error.name : typeof error}`,
          { code: SETTINGS_LISTENER_WARNING },
        );
      }
    }
  }

  /** No more updates: every iterator ends after those already queued. */
  end(): void {
    this.#ended = true;
    for (const queue of [...this.#queues]) queue.end();
    this.#queues.clear();
  }
}
