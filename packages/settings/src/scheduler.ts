import type { Clock, Timer } from '@secret-provider/core/adapter';

/** Timing of live reloads. */
export interface ReloadTiming {
  /** Quiet time after the last change of a burst. */
  readonly debounceMs: number;
  /** Longest wait from the first change of a burst, so a source that is never quiet still reloads. */
  readonly maxWaitMs: number;
  /** Least time between the starts of two reloads. */
  readonly minIntervalMs: number;
}

/**
 * Collects the fields that changed and runs one reload per burst: trailing-edge debounce, bounded
 * by `maxWaitMs`, and never two reloads closer than `minIntervalMs`. One reload runs at a time;
 * changes that arrive while it runs are collected for the next one. Time is read and timers set
 * on `clock` only, so a simulated clock can drive it.
 */
export class ReloadScheduler {
  readonly #timing: ReloadTiming;
  readonly #run: (fields: ReadonlySet<number>) => Promise<void>;
  readonly #clock: Clock;
  #pending = new Set<number>();
  #firstChangeAt: number | undefined;
  #lastRunAt = Number.NEGATIVE_INFINITY;
  #timer: Timer | undefined;
  #running = false;
  #closed = false;

  constructor(timing: ReloadTiming, clock: Clock, run: (fields: ReadonlySet<number>) => Promise<void>) {
    this.#timing = timing;
    this.#clock = clock;
    this.#run = run;
  }

  add(fields: Iterable<number>): void {
    if (this.#closed) return;
    for (const field of fields) this.#pending.add(field);
    if (this.#pending.size === 0) return;
    this.#firstChangeAt ??= this.#clock.now();
    this.#arm();
  }

  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
    this.#pending.clear();
  }

  #arm(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    // The running reload re-arms when it ends.
    if (this.#running || this.#closed || this.#pending.size === 0) return;
    const now = this.#clock.now();
    const firstChangeAt = this.#firstChangeAt ?? now;
    const debounce = Math.min(this.#timing.debounceMs, firstChangeAt + this.#timing.maxWaitMs - now);
    const throttle = this.#lastRunAt + this.#timing.minIntervalMs - now;
    // The reload is the timer's work: a simulated clock waits for it before moving on. Kept
    // alive: a change has been seen and its reload is due within `maxWaitMs` or so; a process
    // should not exit with it pending.
    this.#timer = this.#clock.setTimer(() => this.#flush(), Math.max(0, debounce, throttle), {
      keepAlive: true,
    });
  }

  async #flush(): Promise<void> {
    this.#timer = undefined;
    if (this.#closed || this.#pending.size === 0) return;
    const batch = this.#pending;
    this.#pending = new Set();
    this.#firstChangeAt = undefined;
    this.#lastRunAt = this.#clock.now();
    this.#running = true;
    try {
      await this.#run(batch);
    } catch {
      // The reload reports its own failures.
    } finally {
      this.#running = false;
      if (this.#pending.size > 0) {
        this.#firstChangeAt ??= this.#clock.now();
        this.#arm();
      }
    }
  }
}
