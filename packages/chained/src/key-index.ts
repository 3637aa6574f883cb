import type { SecretEvents } from '@secret-provider/core';

/**
 * The keys of one provider, kept from its `keys()` and its change events, so that a chain can
 * skip the provider for a key it lacks without asking it. Trusted only between a complete
 * listing and the end of the watch that keeps it current: before, during a listing, after a
 * listing failed, and when the watch never started, {@link KeyIndex.has} says `undefined`
 * ("ask the provider").
 *
 * Changes that arrive while a listing is read are queued and applied on top of it, so a key
 * added or removed in that window is not lost. The owner calls {@link KeyIndex.rebuild} when the
 * watch is armed and after any error of the watch (changes may have been missed),
 * {@link KeyIndex.disable} when the watch never started, and {@link KeyIndex.reset} when watching
 * ends.
 */
export class KeyIndex {
  readonly #list: () => Promise<string[]>;
  /** The keys, while trusted. */
  #keys: Set<string> | undefined;
  /** Changes seen while a listing is read, applied after it. */
  #pending: Array<readonly ['add' | 'delete', string]> | undefined;
  #listing: Promise<void> | undefined;
  #listAgain = false;
  #disabled = false;
  /** Counts resets: a listing started before one is stale. */
  #generation = 0;

  /** @param list reads the provider's keys (its `keys()`). */
  constructor(list: () => Promise<string[]>) {
    this.#list = list;
  }

  /** Whether the provider has `key`; `undefined` while the index is not trusted. */
  has(key: string): boolean | undefined {
    return this.#keys === undefined ? undefined : this.#keys.has(key);
  }

  /** Whether {@link has} answers. */
  get trusted(): boolean {
    return this.#keys !== undefined;
  }

  /**
   * Lists the provider's keys (again). Untrusted until the listing is in; a call during a
   * listing makes it list once more when done. A failed listing leaves the index untrusted
   * until the next call. Resolves when the index is trusted or has given up; never rejects.
   */
  rebuild(): Promise<void> {
    if (this.#disabled) return Promise.resolve();
    if (this.#listing !== undefined) {
      this.#listAgain = true;
      return this.#listing;
    }
    const generation = this.#generation;
    this.#listing = (async () => {
      try {
        do {
          this.#listAgain = false;
          this.#keys = undefined;
          this.#pending = [];
          const names = new Set(await this.#list());
          if (generation !== this.#generation || this.#disabled) return;
          for (const [op, key] of this.#pending ?? []) names[op](key);
          this.#keys = names;
          this.#pending = undefined;
        } while (this.#listAgain && generation === this.#generation);
      } catch {
        if (generation === this.#generation) this.#keys = undefined;
      } finally {
        if (generation === this.#generation) {
          this.#pending = undefined;
          this.#listing = undefined;
        }
      }
    })();
    return this.#listing;
  }

  /** A change the provider reported. */
  observe<K extends 'added' | 'removed' | 'rotated'>(type: K, event: SecretEvents[K]): void {
    if (type === 'added') this.#apply('add', (event as SecretEvents['added']).key);
    else if (type === 'removed') this.#apply('delete', (event as SecretEvents['removed']).key);
    else for (const key of (event as SecretEvents['rotated']).keys) this.#apply('add', key);
  }

  /** The watch that keeps the index current never started: never trusted until {@link reset}. */
  disable(): void {
    this.#disabled = true;
    this.#keys = undefined;
    this.#pending = undefined;
  }

  /** Watching ended: forgets the keys, and a listing in progress is dropped. */
  reset(): void {
    this.#generation++;
    this.#keys = undefined;
    this.#pending = undefined;
    this.#listing = undefined;
    this.#listAgain = false;
    this.#disabled = false;
  }

  #apply(op: 'add' | 'delete', key: string): void {
    if (this.#pending !== undefined) this.#pending.push([op, key]);
    else this.#keys?.[op](key);
  }
}
