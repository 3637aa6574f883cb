import { createEmitter } from './events.js';
import type { SecretEvents, SecretProvider, WatchOptions } from './types.js';

/** One change a provider reported, as an item of {@link changeStream}: the event with its type. */
export type SecretChange = {
  [K in keyof SecretEvents]: { readonly type: K } & SecretEvents[K];
}[keyof SecretEvents];

/**
 * A queue read as an async iterator: producers `push` items and `end` it; the consumer's
 * `for await` waits for items and ends after the last one once ended. An abort of `signal`
 * ends it at once, dropping what is queued. The one mechanism behind every update stream of
 * the product (providers' `changes()`, settings' `updates()`).
 */
export class AsyncQueue<T> implements AsyncIterableIterator<T> {
  readonly #items: T[] = [];
  readonly #signal: AbortSignal | undefined;
  readonly #onFinish: (() => void) | undefined;
  #ended = false;
  #finished = false;
  #wake: (() => void) | undefined;

  /** @param options.onFinish called once when the consumer is done (end read, `return()`, or abort). */
  constructor(options: { signal?: AbortSignal | undefined; onFinish?: (() => void) | undefined } = {}) {
    this.#signal = options.signal;
    this.#onFinish = options.onFinish;
    if (this.#signal?.aborted) this.#abort();
    else this.#signal?.addEventListener('abort', this.#abort, { once: true });
  }

  /** Whether no more items will arrive. */
  get ended(): boolean {
    return this.#ended;
  }

  push(item: T): void {
    if (this.#ended) return;
    this.#items.push(item);
    this.#wake?.();
  }

  /** No more items: the iteration ends after those queued. */
  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  async next(): Promise<IteratorResult<T>> {
    for (;;) {
      if (this.#items.length > 0) return { value: this.#items.shift() as T, done: false };
      if (this.#ended) {
        this.#finish();
        return { value: undefined, done: true };
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = undefined;
    }
  }

  async return(): Promise<IteratorResult<T>> {
    this.#items.length = 0;
    this.end();
    this.#finish();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }

  readonly #abort = () => {
    this.#items.length = 0;
    this.end();
    this.#finish();
  };

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#signal?.removeEventListener('abort', this.#abort);
    this.#onFinish?.();
  }
}

/** The stream `changes()` returns: an async iterator of changes that says when it is armed. */
export interface ChangeStream extends AsyncIterableIterator<SecretChange> {
  /** Resolves once the watch behind the stream is armed: changes after this point are items. */
  readonly ready: Promise<void>;
}

/**
 * The changes of `provider` as an async iterator: every `rotated`, `added`, `removed`, `error`
 * and `warning` event, in order, with its `type`. Errors are items and do not end the stream;
 * it ends when `signal` aborts, when the iteration is left (`break`), or when the provider is
 * closed. Names and versions only, never values.
 *
 * @example
 * ```ts
 * for await (const change of changeStream(provider, { signal })) {
 *   if (change.type === 'rotated') reconnect(change.keys);
 * }
 * ```
 */
export function changeStream(provider: SecretProvider, options: WatchOptions = {}): ChangeStream {
  const emitter = createEmitter();
  const watchAbort = new AbortController();
  const queue = new AsyncQueue<SecretChange>({ signal: options.signal, onFinish: () => watchAbort.abort() });
  if (queue.ended) return Object.assign(queue, { ready: Promise.resolve() });
  emitter.on('*', (type, event) => queue.push({ type, ...(event as object) } as SecretChange));
  const handle = provider.watch(emitter, { signal: watchAbort.signal });
  // A watch that cannot start (a closed provider) ends the stream; `ready` still resolves.
  const ready = handle.ready.catch(() => queue.end());
  void handle.done?.then(() => queue.end());
  return Object.assign(queue, { ready });
}
