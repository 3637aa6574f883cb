import type { SecretError } from '@secret-provider/core';
import {
  type Clock,
  diffSnapshots,
  type EmitFunction,
  emitDiff,
  type Timer,
} from '@secret-provider/core/adapter';
import { type Entry, type KeyLoad, mergeTargets, type Reading, type Target } from './source.js';

/** Settings of a {@link WatchMachine}. */
export interface WatchMachineOptions {
  /** Reads `target` from disk. */
  readonly read: (target: Target) => Promise<Reading>;
  /** Quiet time after the last change before events are emitted. */
  readonly debounceMs: number;
  /** Whether notifications may be missed (polling): then every burst ends with a re-read. */
  readonly lossy: () => boolean;
  /** Whether `keys()` is in name order (a directory) rather than the source's order (a document). */
  readonly sorted: boolean;
  readonly provider: string;
  readonly emit: EmitFunction;
  /** Receives failures of reads and files that are still invalid once quiet. */
  readonly report: (error: unknown) => void;
  readonly clock: Clock;
}

/** Immediate re-reads in a row while notifications keep arriving during reads. */
const IMMEDIATE_REREADS = 3;
/** A storm of changes delays events by at most this many quiet periods. */
const MAX_BURST_PERIODS = 20;

/**
 * The values a watched source serves, kept current from file-system notifications. It is a small
 * state machine with these states and moves:
 *
 * - **Quiet**: values are served from memory; nothing is scheduled.
 * - **Notified** (`notify`): the keys concerned are re-read at once (after the current tick, so
 *   one batch of notifications gives one read), so a new value is readable within one read of
 *   the change. A key that this early read sees missing, empty or unparsable may be mid-write: it
 *   keeps its last good value and is marked *doubtful*. Notifications during a read cause another
 *   read right after it, a few times.
 * - **Settling**: `debounceMs` after the last notification (at most 20 times that in a storm),
 *   whatever may still be in flux is re-read once more (doubtful keys, keys notified since the
 *   last read, everything when notifications can be missed); what is on disk then is the truth,
 *   and one event per effective change since the last emission is emitted.
 * - **Overtaken**: one of this provider's own writes (`own`) landed while a read was running; the
 *   read may predate the write, so its result is dropped and its keys are read again (as doubtful,
 *   so the settle re-reads them even when the read that was dropped was the settle's own).
 * - **Own writes** are served at once and reported at the next settle.
 */
export class WatchMachine {
  readonly #options: WatchMachineOptions;
  #entries = new Map<string, Entry>();
  /** Per-key refusals (strict permissions, links that leave the directory), served by `lookup`. */
  readonly #keyErrors = new Map<string, SecretError>();
  /** Why the source cannot be read, while there are no last good values to serve. */
  #failure: SecretError | undefined;
  /** Key -> version as last emitted. */
  #emitted = new Map<string, string>();
  /** What the next immediate read covers. */
  #pending: Target | undefined;
  /** What changed since the last emission. */
  #touched: Target | undefined;
  /** What an early read saw vanishing, or a dropped read covered: the settle must read it again. */
  #doubtful: Target | undefined;
  #eventSeq = 0;
  /** `#eventSeq` when the latest read started: later notifications need another read. */
  #readSeq = 0;
  /** Bumped by own writes: a read that started before one must not undo it. */
  #writes = 0;
  #running: Promise<void> | undefined;
  #immediateQueued = false;
  #immediateRuns = 0;
  #settleTimer: Timer | undefined;
  #burstStart = 0;
  #armed = false;
  #loaded = false;
  #stopped = false;

  constructor(options: WatchMachineOptions) {
    this.#options = options;
  }

  /** Whether values are served from memory (the first read succeeded and the watch runs). */
  get serving(): boolean {
    return this.#armed && this.#loaded && !this.#stopped;
  }

  /** The first read, after the watcher is armed; notifications from then on are not missed. */
  async start(): Promise<void> {
    this.#readSeq = this.#eventSeq;
    this.#pending = undefined;
    this.#touched = undefined;
    const writes = this.#writes;
    try {
      this.#apply(await this.#options.read('all'), 'all', true);
      this.#loaded = true;
    } catch (error) {
      this.#options.report(error);
    }
    // An own write during the first read: what was read may predate it.
    if (writes !== this.#writes) this.#eventSeq++;
    this.#emitted = this.#versions();
    this.#armed = true;
    // Anything notified during the first read gets its own pass.
    if (this.#eventSeq !== this.#readSeq) {
      this.#pending = 'all';
      this.#touched = 'all';
      this.#queueImmediate();
      this.#scheduleSettle();
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#armed = false;
    this.#settleTimer?.cancel();
    this.#settleTimer = undefined;
    await this.#running?.catch(() => {});
  }

  /** A notification concerning `target`. */
  notify(target: Target): void {
    if (this.#stopped) return;
    this.#eventSeq++;
    this.#pending = mergeTargets(this.#pending, target);
    this.#touched = mergeTargets(this.#touched, target);
    if (!this.#armed) return;
    this.#queueImmediate();
    this.#scheduleSettle();
  }

  /** What a write of this provider left on disk: served at once, reported at the next settle. */
  own(reading: Reading): void {
    this.#writes++;
    if (!this.serving) return;
    this.#apply(reading, 'all', true, false);
    this.#scheduleSettle();
  }

  /**
   * The served entry of `key`; `undefined` when it has none.
   * @throws the key's refusal, or the source's failure, when there is no value to serve.
   */
  lookup(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry !== undefined) return entry;
    const refusal = this.#keyErrors.get(key) ?? this.#failure;
    if (refusal !== undefined) throw refusal;
    return undefined;
  }

  /**
   * The served keys.
   * @throws the source's failure when nothing can be served (a file that has never parsed):
   * an unreadable source is not an empty one.
   */
  keys(): string[] {
    if (this.#entries.size === 0 && this.#failure !== undefined) throw this.#failure;
    return [...this.#entries.keys()];
  }

  #versions(): Map<string, string> {
    return new Map([...this.#entries].map(([key, entry]) => [key, entry.version]));
  }

  #queueImmediate(): void {
    if (this.#immediateQueued || this.#running !== undefined || this.#stopped) return;
    this.#immediateQueued = true;
    setImmediate(() => {
      this.#immediateQueued = false;
      if (this.#running !== undefined || this.#pending === undefined || this.#stopped) return;
      const target = this.#pending;
      this.#pending = undefined;
      void this.#run(target, false);
    });
  }

  #run(target: Target, settled: boolean): Promise<void> {
    this.#readSeq = this.#eventSeq;
    const writes = this.#writes;
    const running = this.#options
      .read(target)
      .then((reading) => {
        if (this.#stopped) return;
        if (writes !== this.#writes) {
          // Overtaken by an own write: the result may predate it. Read these keys again, and
          // make sure the settle does even if this was the settle's read.
          this.#pending = mergeTargets(this.#pending, target);
          this.#doubtful = mergeTargets(this.#doubtful, target);
          this.#eventSeq++;
          this.#scheduleSettle();
          return;
        }
        this.#loaded = true;
        this.#apply(reading, target, settled);
      })
      .catch((error: unknown) => {
        if (!this.#stopped) this.#options.report(error);
      })
      .finally(() => {
        if (this.#running === running) this.#running = undefined;
        if (this.#pending !== undefined && this.#immediateRuns < IMMEDIATE_REREADS) {
          this.#immediateRuns++;
          this.#queueImmediate();
        }
      });
    this.#running = running;
    return running;
  }

  #scheduleSettle(): void {
    if (this.#stopped) return;
    const { clock, debounceMs } = this.#options;
    const now = clock.now();
    if (this.#settleTimer === undefined) this.#burstStart = now;
    else this.#settleTimer.cancel();
    const delay = Math.max(0, Math.min(debounceMs, this.#burstStart + debounceMs * MAX_BURST_PERIODS - now));
    this.#settleTimer = clock.setTimer(() => this.#settle(), delay);
  }

  /** The end of a burst: re-read what may still be in flux, then emit the effective changes. */
  async #settle(): Promise<void> {
    this.#settleTimer = undefined;
    while (this.#running !== undefined) await this.#running;
    if (this.#stopped) return;
    const target = mergeTargets(mergeTargets(this.#touched, this.#doubtful), this.#pending);
    const reread =
      this.#doubtful !== undefined ||
      this.#pending !== undefined ||
      this.#eventSeq !== this.#readSeq ||
      this.#options.lossy();
    this.#touched = undefined;
    this.#doubtful = undefined;
    this.#pending = undefined;
    this.#immediateRuns = 0;
    if (reread) {
      await this.#run(target ?? 'all', true);
      if (this.#stopped) return;
    }
    const versions = this.#versions();
    emitDiff(this.#options.emit, this.#options.provider, diffSnapshots(this.#emitted, versions));
    this.#emitted = versions;
  }

  /**
   * Applies a reading of `target`. Before the quiet period (`settled` false) a key seen missing,
   * empty or unparsable may be mid-write: it keeps its last good value and becomes doubtful.
   * Once settled, what is on disk is the truth, and what is still invalid is reported.
   */
  #apply(reading: Reading, target: Target, settled: boolean, report = true): void {
    const current = this.#entries;
    if (reading.failure !== undefined) {
      if (!settled) {
        this.#doubtful = mergeTargets(this.#doubtful, target);
        return;
      }
      if (current.size === 0) this.#failure = reading.failure;
      if (report) this.#options.report(reading.failure);
      return;
    }
    this.#failure = undefined;
    const atomic = reading.atomic ?? new Set<string>();
    const errors: SecretError[] = [];
    const kept = new Set<string>();
    const next = new Map<string, Entry>();
    const consider = (key: string, loaded: KeyLoad) => {
      const old = current.get(key);
      const vanishing = loaded.kind === 'missing' || (loaded.kind === 'ok' && loaded.entry.empty);
      if (!settled && old !== undefined && !old.empty && vanishing && !atomic.has(key)) {
        this.#doubtful = mergeTargets(this.#doubtful, new Set([key]));
        kept.add(key);
        return;
      }
      if (loaded.kind === 'ok') {
        next.set(key, loaded.entry);
        this.#keyErrors.delete(key);
      } else if (loaded.kind === 'missing') {
        this.#keyErrors.delete(key);
      } else {
        // The last good value stays; the refusal is served when there is none.
        if (old !== undefined) kept.add(key);
        this.#keyErrors.set(key, loaded.error);
        if (settled) errors.push(loaded.error);
      }
    };
    if (reading.complete) {
      for (const [key, loaded] of reading.keys) consider(key, loaded);
      for (const key of current.keys()) if (!reading.keys.has(key)) consider(key, { kind: 'missing' });
    } else {
      for (const [key, entry] of current) if (!reading.keys.has(key)) next.set(key, entry);
      for (const [key, loaded] of reading.keys) consider(key, loaded);
    }
    for (const key of kept) next.set(key, current.get(key) as Entry);
    this.#entries = this.#options.sorted
      ? new Map([...next].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : next;
    if (report) for (const error of errors) this.#options.report(error);
  }
}
