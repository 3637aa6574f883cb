import mittImport from 'mitt';
import type { SecretError } from './errors.js';
import type { SecretEventEmitter, SecretEvents, VersionChange, WatchHandle, WatchOptions } from './types.js';

// mitt ships ESM at run time and CommonJS-style declarations: take whichever shape arrives.
const mitt = ((mittImport as unknown as { default?: unknown }).default ?? mittImport) as <
  E extends Record<string, unknown>,
>() => SecretEventEmitter & import('mitt').Emitter<E>;

/**
 * Emits into a user's emitter without letting a throwing listener break the watch loop that
 * called it. The listener's error is reported as a process warning, without its message (the
 * listener is user code and may have put a value in it).
 */
export function emitSafely<K extends keyof SecretEvents>(
  emitter: SecretEventEmitter,
  type: K,
  event: SecretEvents[K],
): void {
  try {
    emitter.emit(type, event);
  } catch (error) {
    process.emitWarning(
      `a listener of the "${String(type)}" secret event threw ${error instanceof Error ? error.name : typeof error}; the watch goes on`,
      { code: 'SECRET_PROVIDER_LISTENER_ERROR' },
    );
  }
}

/**
 * The set of emitters watching one provider, with the start and stop of the underlying change
 * source tied to the first and last watcher. Providers, caches and chains share it.
 */
export class EventHub {
  readonly #emitters = new Set<SecretEventEmitter>();
  /** Ends each attached watch's `done` when the hub closes. */
  readonly #enders = new Set<() => void>();
  readonly #start: () => Promise<() => Promise<void> | void>;
  #stopSource: Promise<(() => Promise<void> | void) | undefined> | undefined;

  /** @param start arms the change source; resolves with the function that disarms it. */
  constructor(start: () => Promise<() => Promise<void> | void>) {
    this.#start = start;
  }

  get size(): number {
    return this.#emitters.size;
  }

  emit<K extends keyof SecretEvents>(type: K, event: SecretEvents[K]): void {
    for (const emitter of [...this.#emitters]) emitSafely(emitter, type, event);
  }

  /**
   * Adds `emitter` and returns its handle. The source starts with the first emitter; a source
   * that fails to start reports an `error` event to this emitter and the handle is still usable.
   */
  attach(
    emitter: SecretEventEmitter,
    options: WatchOptions,
    onStartError: (error: unknown) => SecretError,
  ): WatchHandle {
    this.#emitters.add(emitter);
    if (this.#stopSource === undefined) {
      this.#stopSource = this.#start().catch((error: unknown) => {
        this.#stopSource = undefined;
        const mapped = onStartError(error);
        emitSafely(emitter, 'error', {
          provider: mapped.provider ?? 'unknown',
          error: mapped,
          detectedAt: new Date(),
        });
        return undefined;
      });
    }
    const started = this.#stopSource.then(() => undefined);
    let stopped = false;
    let stopping: Promise<void> | undefined;
    let end!: () => void;
    const done = new Promise<void>((resolve) => {
      end = resolve;
    });
    const ender = () => {
      stopped = true;
      end();
    };
    this.#enders.add(ender);
    const stop = (): Promise<void> => {
      if (stopping) return stopping;
      stopped = true;
      options.signal?.removeEventListener('abort', onAbort);
      this.#emitters.delete(emitter);
      this.#enders.delete(ender);
      stopping = (this.#emitters.size === 0 ? this.#stopAll() : Promise.resolve()).finally(end);
      return stopping;
    };
    const onAbort = () => void stop();
    if (options.signal?.aborted) void stop();
    else options.signal?.addEventListener('abort', onAbort, { once: true });
    return {
      ready: started,
      get stopped() {
        return stopped;
      },
      done,
      stop,
      [Symbol.asyncDispose]: stop,
    };
  }

  /** Detaches every emitter and stops the source (used by `close`); every watch's `done` resolves. */
  async close(): Promise<void> {
    this.#emitters.clear();
    try {
      await this.#stopAll();
    } finally {
      for (const ender of [...this.#enders]) ender();
      this.#enders.clear();
    }
  }

  async #stopAll(): Promise<void> {
    const pending = this.#stopSource;
    this.#stopSource = undefined;
    const stopSource = await pending;
    await stopSource?.();
  }
}

/**
 * The handle `watch` returns when it cannot start (the provider is closed): already stopped, with
 * `ready` rejecting with `error`. The rejection is marked handled, so a caller that never awaits
 * `ready` does not get an unhandled rejection.
 */
export function closedWatchHandle(error: SecretError): WatchHandle {
  const ready = Promise.reject(error);
  ready.catch(() => {});
  const stop = () => Promise.resolve();
  return { ready, stopped: true, done: Promise.resolve(), stop, [Symbol.asyncDispose]: stop };
}

/** Key -> version id, as a provider sees its backend at one moment. */
export type VersionSnapshot = ReadonlyMap<string, string>;

export interface SnapshotDiff {
  readonly added: ReadonlyArray<{ key: string; version: string }>;
  readonly removed: ReadonlyArray<{ key: string; version: string }>;
  readonly rotated: readonly VersionChange[];
}

/** What changed between two snapshots. */
export function diffSnapshots(previous: VersionSnapshot, next: VersionSnapshot): SnapshotDiff {
  const added: Array<{ key: string; version: string }> = [];
  const removed: Array<{ key: string; version: string }> = [];
  const rotated: VersionChange[] = [];
  for (const [key, version] of next) {
    const old = previous.get(key);
    if (old === undefined) added.push({ key, version });
    else if (old !== version) rotated.push({ key, oldVersion: old, newVersion: version });
  }
  for (const [key, version] of previous) {
    if (!next.has(key)) removed.push({ key, version });
  }
  return { added, removed, rotated };
}

/** Emits a diff: one `rotated` event for all changed keys, one `added`/`removed` per key. */
export function emitDiff(
  emit: <K extends keyof SecretEvents>(type: K, event: SecretEvents[K]) => void,
  provider: string,
  diff: SnapshotDiff,
  detectedAt = new Date(),
): void {
  for (const { key, version } of diff.removed) emit('removed', { provider, key, version, detectedAt });
  for (const { key, version } of diff.added) emit('added', { provider, key, version, detectedAt });
  if (diff.rotated.length > 0) {
    emit('rotated', { provider, keys: diff.rotated.map((c) => c.key), changes: diff.rotated, detectedAt });
  }
}

/**
 * A `mitt` emitter typed for secret events. Same as `mitt<SecretEvents>()`; provided because
 * mitt's type declarations describe CommonJS, which `moduleResolution: "nodenext"` projects
 * cannot call as a default import without a cast.
 */
export function createEmitter(): SecretEventEmitter {
  return mitt<SecretEvents>();
}
