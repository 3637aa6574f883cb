import { RateLimitedError } from '@secret-provider/core';
import { ManualClock, Poller } from '@secret-provider/core/adapter';
import { describe, expect, it } from 'vitest';

/** A poll task that records when it ran (simulated ms since start) and fails while told to. */
function recorder(clock: ManualClock, start: number) {
  const runs: number[] = [];
  const state = {
    fail: undefined as Error | undefined,
    active: 0,
    maxActive: 0,
    signals: [] as AbortSignal[],
  };
  const task = async (signal: AbortSignal) => {
    runs.push(clock.now() - start);
    state.signals.push(signal);
    state.active++;
    state.maxActive = Math.max(state.maxActive, state.active);
    try {
      if (state.fail) throw state.fail;
    } finally {
      state.active--;
    }
  };
  return { runs, state, task };
}

describe('Poller', () => {
  it('runs every interval, shortened by at most the jitter, and spreads the first run', async () => {
    const clock = new ManualClock(0);
    const { runs, task } = recorder(clock, 0);
    const poller = new Poller(task, { interval: 1_000, jitter: 0.2, clock }).start();
    await clock.advance(10_500);
    await poller.stop();
    expect(runs[0]).toBeGreaterThanOrEqual(0);
    expect(runs[0]).toBeLessThan(1_000);
    const gaps = runs.slice(1).map((t, i) => t - (runs[i] as number));
    expect(gaps.length).toBeGreaterThanOrEqual(9);
    for (const gap of gaps) {
      expect(gap).toBeGreaterThanOrEqual(800);
      expect(gap).toBeLessThanOrEqual(1_000);
    }
  });

  it('backs off after failures, capped, and returns to the interval after a success', async () => {
    const clock = new ManualClock(0);
    const { runs, state, task } = recorder(clock, 0);
    const failures: number[] = [];
    state.fail = new Error('backend down');
    const poller = new Poller(
      task,
      { interval: 1_000, jitter: 0, first: 'now', clock, backoff: { max: 8_000 } },
      (_error, count) => failures.push(count),
    ).start();
    await clock.advance(60_000);
    const gaps = runs.slice(1).map((t, i) => t - (runs[i] as number));
    // Equal jitter: each wait is in [ceiling/2, ceiling], the ceiling doubling from 2 × interval to the cap.
    expect(gaps[0]).toBeGreaterThanOrEqual(1_000);
    expect(gaps[0]).toBeLessThanOrEqual(2_000);
    expect(gaps[1]).toBeGreaterThanOrEqual(2_000);
    expect(gaps[1]).toBeLessThanOrEqual(4_000);
    for (const gap of gaps.slice(3)) {
      expect(gap).toBeGreaterThanOrEqual(4_000);
      expect(gap).toBeLessThanOrEqual(8_000);
    }
    expect(failures.slice(0, 3)).toEqual([1, 2, 3]);
    expect(poller.failures).toBe(failures.length);
    state.fail = undefined;
    const before = runs.length;
    await clock.advanceToNext();
    expect(runs.length).toBe(before + 1);
    expect(poller.failures).toBe(0);
    await clock.advance(3_000);
    expect(runs.length).toBe(before + 4);
    await poller.stop();
  });

  it('waits at least as long as a Retry-After the backend gave', async () => {
    const clock = new ManualClock(0);
    const { runs, state, task } = recorder(clock, 0);
    state.fail = new RateLimitedError({ retryAfterMs: 30_000 });
    const poller = new Poller(task, { interval: 1_000, jitter: 0, first: 'now', clock }).start();
    await clock.advance(29_999);
    expect(runs).toEqual([0]);
    await clock.advance(20_000);
    expect(runs.length).toBe(2);
    expect(runs[1]).toBeGreaterThanOrEqual(30_000);
    expect(runs[1]).toBeLessThanOrEqual(45_000);
    await poller.stop();
  });

  it('follows the delay a run asks for, never sooner than minInterval', async () => {
    const clock = new ManualClock(0);
    const runs: number[] = [];
    const poller = new Poller(
      async () => {
        runs.push(clock.now());
        return { nextDelay: 0 };
      },
      { interval: 60_000, first: 'now', minInterval: 500, clock },
    ).start();
    await clock.advance(5_000);
    await poller.stop();
    // A source that answers at once (a flapping blocking query) runs every 500 ms, not in a spin.
    expect(runs).toEqual([0, 500, 1_000, 1_500, 2_000, 2_500, 3_000, 3_500, 4_000, 4_500, 5_000]);
  });

  it('runs early when triggered, and after a run in progress when triggered during it', async () => {
    const clock = new ManualClock(0);
    let release: (() => void) | undefined;
    const runs: number[] = [];
    const poller = new Poller(
      async () => {
        runs.push(clock.now());
        if (runs.length === 2) await new Promise<void>((resolve) => (release = resolve));
      },
      { interval: 10_000, jitter: 0, first: 'interval', clock },
    ).start();
    await clock.advance(1_000);
    expect(runs).toEqual([]);
    poller.trigger();
    await clock.advance(0);
    expect(runs).toEqual([1_000]);
    await clock.advance(10_000);
    expect(runs).toEqual([1_000, 11_000]);
    poller.trigger(); // during the second run: one more run right after it, none overlapping
    release?.();
    await clock.advance(0);
    expect(runs).toEqual([1_000, 11_000, 11_000]);
    await poller.stop();
  });

  it('never overlaps runs, and stop() aborts the run in progress and waits for it', async () => {
    const clock = new ManualClock(0);
    let seen: AbortSignal | undefined;
    let finished = false;
    const poller = new Poller(
      async (signal) => {
        seen = signal;
        await new Promise<void>((resolve) =>
          signal.addEventListener('abort', () => resolve(), { once: true }),
        );
        finished = true;
      },
      { interval: 1_000, first: 'now', clock },
    ).start();
    await clock.advance(0);
    expect(seen?.aborted).toBe(false);
    await poller.stop();
    expect(seen?.aborted).toBe(true);
    expect(finished).toBe(true);
    expect(poller.stopped).toBe(true);
    expect(clock.pending).toBe(0);
  });

  it('stops when its signal aborts, and a throwing error handler does not end the loop', async () => {
    const clock = new ManualClock(0);
    const { runs, state, task } = recorder(clock, 0);
    state.fail = new Error('x');
    const controller = new AbortController();
    const poller = new Poller(
      task,
      { interval: 1_000, jitter: 0, first: 'now', clock, signal: controller.signal },
      () => {
        throw new Error('handler bug');
      },
    ).start();
    await clock.advance(10_000);
    expect(runs.length).toBeGreaterThan(2);
    controller.abort();
    await Promise.resolve();
    const count = runs.length;
    await clock.advance(100_000);
    expect(runs.length).toBe(count);
    expect(poller.stopped).toBe(true);
    expect(state.maxActive).toBe(1);
  });

  it('rejects settings that cannot poll with INVALID_CONFIG', () => {
    for (const options of [
      { interval: 0 },
      { interval: -1 },
      { interval: Number.NaN },
      { interval: 1, jitter: 2 },
    ]) {
      expect(() => new Poller(async () => {}, options)).toThrow(
        expect.objectContaining({ code: 'INVALID_CONFIG' }),
      );
    }
  });
});
