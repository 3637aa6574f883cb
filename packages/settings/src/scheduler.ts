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
 * changes that arrive while it runs are collected for the next one.
 */
export class ReloadScheduler {
  readonly #timing: ReloadTiming;
  readonly #run: (fields: ReadonlySet<number>) => Promise<void>;
  #pending = new Set<number>();
  #firstChangeAt: number | undefined;
  #lastRunAt = Number.NEGATIVE_INFINITY;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #closed = false;

  constructor(timing: ReloadTiming, run: (fields: ReadonlySet<number>) => Promise<void>) {
    this.#timing = timing;
    this.#run = run;
  }

  add(fields: Iterable<number>): void {
    if (this.#closed) return;
    for (const field of fields) this.#pending.add(field);
    if (this.#pending.size === 0) return;
    this.#firstChangeAt ??= Date.now();
    this.#arm();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#pending.clear();
  }

  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    // The running reload re-arms when it ends.
    if (this.#running || this.#closed || this.#pending.size === 0) return;
    const now = Date.now();
    const firstChangeAt = this.#firstChangeAt ?? now;
    const debounce = Math.min(this.#timing.debounceMs, firstChangeAt + this.#timing.maxWaitMs - now);
    const throttle = this.#lastRunAt + this.#timing.minIntervalMs - now;
    // Not unref'd: a change has been seen and its reload is due within `maxWaitMs` or so; a
    // process should not exit with it pending.
    this.#timer = setTimeout(() => void this.#flush(), Math.max(0, debounce, throttle));
  }

  async #flush(): Promise<void> {
    this.#timer = undefined;
    if (this.#closed || this.#pending.size === 0) return;
    const batch = this.#pending;
    this.#pending = new Set();
    this.#firstChangeAt = undefined;
    this.#lastRunAt = Date.now();
    this.#running = true;
    try {
      await this.#run(batch);
    } catch {
      // The reload reports its own failures.
    } finally {
      this.#running = false;
      if (this.#pending.size > 0) {
        this.#firstChangeAt ??= Date.now();
        this.#arm();
      }
    }
  }
}
