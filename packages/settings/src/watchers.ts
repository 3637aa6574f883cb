import { InvalidConfigError, isSecretError, SecretError } from '@secret-provider/core';
import { fieldsByKey, isRecord, type PlannedField } from './fields.js';
import { getPath, startsWith } from './snapshot.js';

/** Options of `onChange`. */
export interface WatcherOptions {
  /** Removes the watcher when aborted. */
  readonly signal?: AbortSignal | undefined;
}

/** A watcher: called with the old and the new value after a successful swap, awaited in turn. */
export type ChangeWatcher<V> = (oldValue: V, newValue: V) => void | Promise<void>;

interface Watcher {
  readonly label: string;
  readonly matches: (changed: readonly PlannedField[]) => boolean;
  readonly path: readonly string[];
  readonly fn: (oldValue: unknown, newValue: unknown) => unknown;
}

/**
 * The `onChange` watchers of a settings object: which swap concerns which watcher, and running
 * them one at a time, in the order they were added, each awaited, one swap after the other.
 */
export class Watchers {
  readonly #name: string;
  readonly #fields: readonly PlannedField[];
  readonly #byKey: ReadonlyMap<string, readonly PlannedField[]>;
  readonly #onError: (error: SecretError, fields: readonly PlannedField[]) => void;
  #list: Watcher[] = [];
  #running: Promise<void> = Promise.resolve();

  constructor(
    name: string,
    fields: readonly PlannedField[],
    onError: (error: SecretError, fields: readonly PlannedField[]) => void,
  ) {
    this.#name = name;
    this.#fields = fields;
    this.#byKey = fieldsByKey(fields);
    this.#onError = onError;
  }

  /**
   * Adds a watcher of a dotted field path (a parent path fires for any change below it), of
   * `{ key }`, or of a plain string that is no field but a routed key.
   * @returns a function that removes it.
   * @throws {InvalidConfigError} when the field or key is not routed.
   */
  add(
    target: string | { readonly key: string },
    fn: (oldValue: unknown, newValue: unknown) => unknown,
    options: WatcherOptions,
  ): () => void {
    const entry = this.#watcherFor(target, fn);
    this.#list = [...this.#list, entry];
    const remove = () => {
      this.#list = this.#list.filter((candidate) => candidate !== entry);
      options.signal?.removeEventListener('abort', remove);
    };
    if (options.signal?.aborted) remove();
    else options.signal?.addEventListener('abort', remove, { once: true });
    return remove;
  }

  /** Queues the watchers `changed` concerns, after those of earlier swaps. */
  notify(previous: unknown, current: unknown, changed: readonly PlannedField[]): void {
    const watchers = this.#list.filter((watcher) => watcher.matches(changed));
    if (watchers.length === 0) return;
    this.#running = this.#running.then(async () => {
      for (const watcher of watchers) {
        try {
          await watcher.fn(getPath(previous, watcher.path), getPath(current, watcher.path));
        } catch (error) {
          // The watcher is user code and may have put a value in its message: name the kind only.
          const reason = isSecretError(error)
            ? error.code
            : error instanceof Error
              ? error.name
              : typeof error;
          this.#onError(
            new SecretError(
              'UNKNOWN',
              `settings "${this.#name}": the watcher of "${watcher.label}" threw ${reason}`,
              {
                provider: this.#name,
                cause: error,
              },
            ),
            changed,
          );
        }
      }
    });
  }

  #watcherFor(target: string | { readonly key: string }, fn: Watcher['fn']): Watcher {
    const byKey = (key: string): Watcher | undefined => {
      const first = this.#byKey.get(key)?.[0];
      if (first === undefined) return undefined;
      return {
        label: key,
        path: first.path,
        fn,
        matches: (changed) => changed.some((field) => field.key === key),
      };
    };
    if (typeof target === 'string') {
      const path = target.split('.');
      const related = (field: PlannedField) => startsWith(field.path, path) || startsWith(path, field.path);
      if (this.#fields.some(related)) {
        return { label: target, path, fn, matches: (changed) => changed.some(related) };
      }
      const watcher = byKey(target);
      if (watcher !== undefined) return watcher;
    } else if (isRecord(target) && typeof target.key === 'string') {
      const watcher = byKey(target.key);
      if (watcher !== undefined) return watcher;
    }
    const label = typeof target === 'string' ? target : String((target as { key?: unknown }).key);
    throw new InvalidConfigError(
      { provider: this.#name },
      `settings "${this.#name}": no routed field or key "${label}" to watch`,
    );
  }
}
