/** A scheduled callback; `cancel` is idempotent. */
export interface VaultTimer {
  cancel(): void;
}

/**
 * Time as the provider sees it. Every renewal, rotation, refresh, poll and back-off is scheduled
 * through this, so a simulated clock ({@link ManualClock}) can run an hour of lease lifecycles
 * in seconds, with the real provider code.
 */
export interface VaultClock {
  /** Epoch milliseconds. */
  now(): number;
  /**
   * Calls `callback` after `delayMs`. The callback may return the promise of its work; a
   * simulated clock waits for it before moving time further, the system clock ignores it.
   * Timers never keep the process alive.
   */
  setTimer(callback: () => unknown, delayMs: number): VaultTimer;
}

/** The real clock: `Date.now` and unreferenced `setTimeout`s. */
export const systemClock: VaultClock = {
  now: () => Date.now(),
  setTimer(callback, delayMs) {
    const timer = setTimeout(
      () => {
        // Callbacks handle their own failures; this only keeps a stray rejection from crashing.
        Promise.resolve()
          .then(callback)
          .catch(() => {});
      },
      Math.max(0, delayMs),
    );
    timer.unref?.();
    return { cancel: () => clearTimeout(timer) };
  },
};

/**
 * Resolves `true` after `delayMs` on `clock`, or `false` as soon as `signal` aborts.
 */
export function sleepOn(clock: VaultClock, delayMs: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const onAbort = () => {
      timer.cancel();
      resolve(false);
    };
    const timer = clock.setTimer(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, delayMs);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

interface ManualTimer {
  readonly due: number;
  readonly seq: number;
  readonly callback: () => unknown;
  cancelled: boolean;
}

/**
 * A simulated clock for tests and fleet simulations. Time stands still until {@link advance}
 * moves it; due timers then run in order, each at its own due time, and the clock waits for the
 * work a callback returns (bounded by `settleTimeoutMs` of real time, so a callback that waits
 * on this very clock cannot stall it).
 *
 * @example
 * ```ts
 * const clock = new ManualClock();
 * const vault = new VaultProvider({ endpoint, auth, clock });
 * await clock.advance(3_600_000); // one simulated hour of renewals and refreshes
 * ```
 */
export class ManualClock implements VaultClock {
  #now: number;
  #seq = 0;
  readonly #heap: ManualTimer[] = [];
  readonly #settleTimeoutMs: number;

  /**
   * @param start epoch ms the clock starts at. @default 2026-01-01T00:00:00Z
   * @param options.settleTimeoutMs longest real time to wait for one callback's work. @default 5000
   */
  constructor(start = Date.UTC(2026, 0, 1), options: { settleTimeoutMs?: number } = {}) {
    this.#now = start;
    this.#settleTimeoutMs = options.settleTimeoutMs ?? 5_000;
  }

  now(): number {
    return this.#now;
  }

  /** Timers not yet run or cancelled. */
  get pending(): number {
    return this.#heap.filter((t) => !t.cancelled).length;
  }

  setTimer(callback: () => unknown, delayMs: number): VaultTimer {
    const timer: ManualTimer = {
      due: this.#now + Math.max(0, Number.isFinite(delayMs) ? delayMs : 0),
      seq: this.#seq++,
      callback,
      cancelled: false,
    };
    this.#push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }

  /**
   * Moves time forward by `ms`, running every timer that falls due on the way (including
   * timers those callbacks set), each with the clock at its due time.
   */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (let guard = 0; guard < 10_000_000; guard++) {
      const next = this.#peek();
      if (next === undefined || next.due > target) break;
      this.#pop();
      if (next.cancelled) continue;
      this.#now = Math.max(this.#now, next.due);
      await this.#run(next);
    }
    this.#now = Math.max(this.#now, target);
    await yieldToIo();
  }

  /** Advances in steps of `stepMs`, calling `onStep` after each (for simulations that sample). */
  async advanceInSteps(totalMs: number, stepMs: number, onStep?: (now: number) => unknown): Promise<void> {
    for (let elapsed = 0; elapsed < totalMs; elapsed += stepMs) {
      await this.advance(Math.min(stepMs, totalMs - elapsed));
      await onStep?.(this.#now);
    }
  }

  async #run(timer: ManualTimer): Promise<void> {
    let result: unknown;
    try {
      result = timer.callback();
    } catch {
      return;
    }
    if (result === null || typeof (result as { then?: unknown })?.then !== 'function') return;
    let realTimer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.resolve(result).catch(() => {}),
      new Promise<void>((resolve) => {
        realTimer = setTimeout(resolve, this.#settleTimeoutMs);
        realTimer.unref?.();
      }),
    ]);
    clearTimeout(realTimer);
  }

  // A binary heap ordered by (due, seq): simulations hold thousands of timers.
  #push(timer: ManualTimer): void {
    const heap = this.#heap;
    heap.push(timer);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i] as ManualTimer, heap[parent] as ManualTimer)) break;
      [heap[i], heap[parent]] = [heap[parent] as ManualTimer, heap[i] as ManualTimer];
      i = parent;
    }
  }

  #peek(): ManualTimer | undefined {
    return this.#heap[0];
  }

  #pop(): void {
    const heap = this.#heap;
    const last = heap.pop();
    if (heap.length === 0 || last === undefined) return;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && before(heap[left] as ManualTimer, heap[smallest] as ManualTimer))
        smallest = left;
      if (right < heap.length && before(heap[right] as ManualTimer, heap[smallest] as ManualTimer))
        smallest = right;
      if (smallest === i) break;
      [heap[i], heap[smallest]] = [heap[smallest] as ManualTimer, heap[i] as ManualTimer];
      i = smallest;
    }
  }
}

function before(a: ManualTimer, b: ManualTimer): boolean {
  return a.due < b.due || (a.due === b.due && a.seq < b.seq);
}

/** Lets pending I/O callbacks and promise reactions run. */
function yieldToIo(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
