import { AsyncLocalStorage } from 'node:async_hooks';

/** A scheduled callback; `cancel` is idempotent. */
export interface Timer {
  cancel(): void;
}

/**
 * Time as a provider sees it. Every renewal, rotation, refresh, poll and back-off in the product is
 * scheduled through this, so a simulated clock ({@link ManualClock}) can run hours of lifecycles in
 * seconds, with the real provider code. The one clock of the product: adapters take a `clock`
 * option of this type and never read `Date.now()` or call `setTimeout` for scheduling themselves.
 */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /**
   * Calls `callback` after `delayMs`. The callback may return the promise of its work; a
   * simulated clock waits for it before moving time further, the system clock ignores it.
   * `sleep` marks a timer some work is waiting on (a back-off): a simulated clock stops waiting
   * for that work, since it can only go on once time moves. Timers do not keep the process
   * alive, unless `keepAlive` asks for it (work already due, such as a reload of a change seen,
   * that a process should not exit without).
   */
  setTimer(
    callback: () => unknown,
    delayMs: number,
    options?: { sleep?: boolean; keepAlive?: boolean },
  ): Timer;
}

/** The longest delay `setTimeout` honours (about 24.8 days); a longer one fires at once. */
const MAX_TIMEOUT_MS = 2_147_483_647;

/**
 * The real clock: `Date.now` and unreferenced `setTimeout`s (referenced with `keepAlive`). A
 * delay longer than `setTimeout` allows (a token renewed after weeks) waits in steps.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(callback, delayMs, options) {
    const delay = Math.max(0, delayMs);
    const due = Date.now() + delay;
    let timer: ReturnType<typeof setTimeout>;
    const arm = (wait: number) => {
      timer = setTimeout(() => {
        const left = due - Date.now();
        if (wait === MAX_TIMEOUT_MS && left > 0) return arm(Math.min(left, MAX_TIMEOUT_MS));
        // Callbacks handle their own failures; this only keeps a stray rejection from crashing.
        Promise.resolve()
          .then(callback)
          .catch(() => {});
      }, wait);
      if (options?.keepAlive !== true) timer.unref?.();
    };
    arm(Math.min(delay, MAX_TIMEOUT_MS));
    return { cancel: () => clearTimeout(timer) };
  },
};

/**
 * Resolves `true` after `delayMs` on `clock`, or `false` as soon as `signal` aborts. The timer never
 * keeps the process alive.
 */
export function sleep(delayMs: number, signal?: AbortSignal, clock: Clock = systemClock): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const onAbort = () => {
      timer.cancel();
      resolve(false);
    };
    const timer = clock.setTimer(
      () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(true);
      },
      delayMs,
      { sleep: true },
    );
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

interface ManualTimer {
  readonly due: number;
  readonly seq: number;
  readonly callback: () => unknown;
  cancelled: boolean;
}

/** Work a timer callback started: the clock waits for it unless it sleeps on the clock. */
interface Work {
  done: boolean;
  /** Pending sleep timers this work waits on. */
  sleeps: number;
  promise: Promise<unknown> | undefined;
}

/**
 * A simulated clock for tests and fleet simulations. Time stands still until {@link advance}
 * moves it; due timers then run in order, each at its own due time. The clock waits for the work
 * a callback returns (its promise) before moving on, except while that work sleeps on this clock
 * (a back-off, see {@link sleep}): it can only go on once time moves, and it is waited for
 * again when it wakes. A real-time bound (`settleTimeoutMs`) keeps anything else from stalling it.
 *
 * @example
 * ```ts
 * const clock = new ManualClock();
 * const provider = new VaultProvider({ endpoint, auth, clock });
 * await clock.advance(3_600_000); // one simulated hour of renewals and refreshes
 * ```
 */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #heap: ManualTimer[] = [];
  readonly #settleTimeoutMs: number;
  /** Which callback's work is running, followed through its awaits. */
  readonly #context = new AsyncLocalStorage<Work>();
  readonly #inflight = new Set<Work>();
  /** Woken whenever some work starts sleeping, so the wait for quiet can re-check. */
  #wake: (() => void) | undefined;

  /**
   * @param start epoch ms the clock starts at. @default 2026-01-01T00:00:00Z
   * @param options.settleTimeoutMs longest real time to wait for callbacks' work at one instant. @default 2000
   */
  constructor(start = Date.UTC(2026, 0, 1), options: { settleTimeoutMs?: number } = {}) {
    this.#now = start;
    this.#settleTimeoutMs = options.settleTimeoutMs ?? 2_000;
  }

  now(): number {
    return this.#now;
  }

  /** Timers not yet run or cancelled. */
  get pending(): number {
    return this.#heap.filter((t) => !t.cancelled).length;
  }

  setTimer(
    callback: () => unknown,
    delayMs: number,
    options?: { sleep?: boolean; keepAlive?: boolean },
  ): Timer {
    const work = options?.sleep ? this.#context.getStore() : undefined;
    let ended = false;
    const end = () => {
      if (ended || work === undefined) return;
      ended = true;
      work.sleeps--;
    };
    if (work !== undefined) {
      work.sleeps++;
      this.#wake?.();
    }
    const timer: ManualTimer = {
      due: this.#now + Math.max(0, Number.isFinite(delayMs) ? delayMs : 0),
      seq: this.#seq++,
      callback:
        work === undefined
          ? callback
          : () => {
              end();
              return callback();
            },
      cancelled: false,
    };
    this.#push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
        end();
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
      await this.#quiet();
      const next = this.#peek();
      if (next === undefined || next.due > target) break;
      this.#pop();
      if (next.cancelled) continue;
      this.#now = Math.max(this.#now, next.due);
      this.#run(next);
    }
    this.#now = Math.max(this.#now, target);
    await yieldToIo();
    await this.#quiet();
  }

  /** When the earliest pending timer is due, or `undefined` when none is pending. */
  nextDue(): number | undefined {
    while (this.#heap[0]?.cancelled) this.#pop();
    return this.#heap[0]?.due;
  }

  /** Advances to the earliest pending timer and runs it (and any due with it); false when none is pending. */
  async advanceToNext(): Promise<boolean> {
    const due = this.nextDue();
    if (due === undefined) return false;
    await this.advance(Math.max(0, due - this.#now));
    return true;
  }

  /** Advances in steps of `stepMs`, calling `onStep` after each (for simulations that sample). */
  async advanceInSteps(totalMs: number, stepMs: number, onStep?: (now: number) => unknown): Promise<void> {
    for (let elapsed = 0; elapsed < totalMs; elapsed += stepMs) {
      await this.advance(Math.min(stepMs, totalMs - elapsed));
      await onStep?.(this.#now);
    }
  }

  #run(timer: ManualTimer): void {
    const work: Work = { done: false, sleeps: 0, promise: undefined };
    let result: unknown;
    try {
      result = this.#context.run(work, timer.callback);
    } catch {
      return;
    }
    if (result === null || typeof (result as { then?: unknown })?.then !== 'function') return;
    work.promise = Promise.resolve(result)
      .catch(() => {})
      .finally(() => {
        work.done = true;
        this.#inflight.delete(work);
      });
    this.#inflight.add(work);
  }

  /** Waits until every callback's work has finished or sleeps on this clock (bounded in real time). */
  async #quiet(): Promise<void> {
    const deadline = Date.now() + this.#settleTimeoutMs;
    for (;;) {
      const active = [...this.#inflight].filter((w) => !w.done && w.sleeps === 0);
      if (active.length === 0) return;
      const left = deadline - Date.now();
      if (left <= 0) return;
      let realTimer: NodeJS.Timeout | undefined;
      await Promise.race([
        ...active.map((w) => w.promise),
        new Promise<void>((resolve) => {
          this.#wake = resolve;
        }),
        new Promise<void>((resolve) => {
          realTimer = setTimeout(resolve, left);
          realTimer.unref?.();
        }),
      ]);
      this.#wake = undefined;
      clearTimeout(realTimer);
    }
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
