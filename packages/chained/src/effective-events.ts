import type { SecretEvents, VersionChange } from '@secret-provider/core';

/** What one layer holds for a key: present (with its version), absent (`null`), or it cannot say. */
export type LayerState = { readonly version: string | undefined } | null | 'unknown';

type ChangeType = 'added' | 'removed' | 'rotated';

/** Options of {@link EffectiveEvents}. */
export interface EffectiveEventsOptions {
  /** The chain's name, the `provider` of every event. */
  readonly chain: string;
  /** How many layers the chain has (positions `0` to `layers - 1`, first wins). */
  readonly layers: number;
  /** What layer `position` holds for `key` now (asked only when no queued event says). */
  readonly stateOf: (position: number, key: string) => Promise<LayerState>;
  /** Whether anyone listens: changes queued while nobody does are dropped untranslated. */
  readonly active?: (() => boolean) | undefined;
  /** Receives the translated events. */
  readonly emit: <K extends keyof SecretEvents>(type: K, event: SecretEvents[K]) => void;
  /** Called when translating a change failed (the change is then dropped). */
  readonly onFailure: (position: number, source: string, error: unknown) => void;
}

/** A layer's change waiting for translation. */
interface Queued {
  readonly position: number;
  readonly source: string;
  readonly type: ChangeType;
  readonly event: SecretEvents[ChangeType];
}

/**
 * Turns the changes of a chain's layers into the changes its readers see, one at a time and in
 * order. For a change of layer P:
 *
 * | change   | a layer before P has the key | else, one after P has it        | else      |
 * | -------- | ---------------------------- | ------------------------------- | --------- |
 * | added    | nothing (shadowed)           | rotated (P now covers it)       | added     |
 * | rotated  | nothing (shadowed)           | rotated                         | rotated   |
 * | removed  | nothing (shadowed)           | rotated (the lower is uncovered)| removed   |
 *
 * The other layers' state is taken as it was when the change happened: when one of them has a
 * later change of the key still queued, that change's prior state is used instead of asking it,
 * so a burst is replayed step by step rather than judged against the end state. A layer that
 * cannot say (`'unknown'`) is passed over; the chain reports its failure.
 */
export class EffectiveEvents {
  readonly #options: EffectiveEventsOptions;
  /** Changes waiting for (or in) translation, oldest first. */
  readonly #queue: Queued[] = [];
  #work: Promise<void> = Promise.resolve();

  constructor(options: EffectiveEventsOptions) {
    this.#options = options;
  }

  /** Queues a change of layer `position` (named `source`) for translation. */
  push<K extends ChangeType>(position: number, source: string, type: K, event: SecretEvents[K]): void {
    const item: Queued = { position, source, type, event };
    this.#queue.push(item);
    const run = async () => {
      try {
        if (this.#options.active?.() ?? true) await this.#translate(item);
      } catch (error) {
        this.#options.onFailure(position, source, error);
      } finally {
        this.#queue.splice(this.#queue.indexOf(item), 1);
      }
    };
    this.#work = this.#work.then(run, run);
  }

  /** Resolves once every change queued so far is translated. */
  settled(): Promise<void> {
    return this.#work;
  }

  async #translate(item: Queued): Promise<void> {
    const { position, source, type, event } = item;
    const { chain, emit, layers } = this.#options;
    const detectedAt = event.detectedAt ?? new Date();
    let changes: VersionChange[];
    if (type === 'rotated') {
      const rotated = event as SecretEvents['rotated'];
      changes = [...rotated.changes];
      // A `rotated` event may name keys without a change entry: give each key one.
      for (const key of rotated.keys) if (!changes.some((c) => c.key === key)) changes.push({ key });
    } else {
      const single = event as SecretEvents['added'];
      changes = [{ key: single.key, [type === 'added' ? 'newVersion' : 'oldVersion']: single.version }];
    }
    const rotated: VersionChange[] = [];
    for (const change of changes) {
      const { key } = change;
      if ((await this.#firstHolding(item, key, 0, position)) !== null) continue;
      if (type === 'rotated') {
        rotated.push(change);
        continue;
      }
      const version = (event as SecretEvents['added']).version;
      const below = await this.#firstHolding(item, key, position + 1, layers);
      if (below === null) {
        emit(type as 'added' | 'removed', { provider: chain, source, key, version, detectedAt });
        continue;
      }
      emit('rotated', {
        provider: chain,
        source,
        keys: [key],
        changes: [
          type === 'added'
            ? { key, oldVersion: below.version, newVersion: change.newVersion }
            : { key, oldVersion: change.oldVersion, newVersion: below.version },
        ],
        detectedAt,
      });
    }
    if (rotated.length > 0) {
      emit('rotated', {
        provider: chain,
        source,
        keys: rotated.map((c) => c.key),
        changes: rotated,
        detectedAt,
      });
    }
  }

  /** The first layer in `[from, to)` that held `key` when `item` happened, or `null`. */
  async #firstHolding(
    item: Queued,
    key: string,
    from: number,
    to: number,
  ): Promise<{ readonly version: string | undefined } | null> {
    for (let position = from; position < to; position++) {
      const queued = this.#priorState(item, position, key);
      const state = queued === undefined ? await this.#options.stateOf(position, key) : queued;
      if (state !== null && state !== 'unknown') return state;
    }
    return null;
  }

  /**
   * Layer `position`'s state of `key` when `item` happened, if one of its later changes still
   * in the queue says (the state before that change); `undefined` when none does.
   */
  #priorState(item: Queued, position: number, key: string): LayerState | undefined {
    const queue = this.#queue;
    for (let n = queue.indexOf(item) + 1; n < queue.length; n++) {
      const later = queue[n] as Queued;
      if (later.position !== position) continue;
      if (later.type === 'rotated') {
        const rotated = later.event as SecretEvents['rotated'];
        if (!rotated.keys.includes(key)) continue;
        return { version: rotated.changes.find((c) => c.key === key)?.oldVersion };
      }
      const single = later.event as SecretEvents['added'];
      if (single.key !== key) continue;
      return later.type === 'added' ? null : { version: single.version };
    }
    return undefined;
  }
}
