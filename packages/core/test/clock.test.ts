import { ManualClock, sleep, systemClock } from '@secret-provider/core/adapter';
import { afterEach, describe, expect, it, vi } from 'vitest';

describe('ManualClock', () => {
  it('runs timers in due order at their due time, including timers set by callbacks', async () => {
    const clock = new ManualClock(0);
    const seen: string[] = [];
    clock.setTimer(() => seen.push(`b@${clock.now()}`), 200);
    clock.setTimer(() => {
      seen.push(`a@${clock.now()}`);
      clock.setTimer(() => seen.push(`c@${clock.now()}`), 50);
    }, 100);
    const cancelled = clock.setTimer(() => seen.push('never'), 120);
    cancelled.cancel();
    await clock.advance(1_000);
    expect(seen).toEqual(['a@100', 'c@150', 'b@200']);
    expect(clock.now()).toBe(1_000);
    expect(clock.pending).toBe(0);
  });

  it('waits for the work a callback returns before moving time on', async () => {
    const clock = new ManualClock(0);
    const seen: string[] = [];
    clock.setTimer(async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      seen.push(`work done @${clock.now()}`);
    }, 100);
    clock.setTimer(() => seen.push(`next @${clock.now()}`), 101);
    await clock.advance(200);
    expect(seen).toEqual(['work done @100', 'next @101']);
  });

  it('stops waiting for work that sleeps on the clock, and follows it again when it wakes', async () => {
    const clock = new ManualClock(0);
    const seen: string[] = [];
    clock.setTimer(async () => {
      seen.push(`try @${clock.now()}`);
      await sleep(1_000, undefined, clock);
      await new Promise((resolve) => setTimeout(resolve, 10));
      seen.push(`retry done @${clock.now()}`);
    }, 100);
    clock.setTimer(() => seen.push(`other @${clock.now()}`), 500);
    await clock.advance(2_000);
    expect(seen).toEqual(['try @100', 'other @500', 'retry done @1100']);
  });

  it('advances to the next timer on request, and ends sleeps early on abort', async () => {
    const clock = new ManualClock(0);
    expect(await clock.advanceToNext()).toBe(false);
    const controller = new AbortController();
    const sleeping = sleep(10_000, controller.signal, clock);
    expect(clock.nextDue()).toBe(10_000);
    controller.abort();
    expect(await sleeping).toBe(false);
    expect(clock.nextDue()).toBeUndefined();
    const woke = sleep(300, undefined, clock);
    expect(await clock.advanceToNext()).toBe(true);
    expect(await woke).toBe(true);
    expect(clock.now()).toBe(300);
  });
});

describe('systemClock', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  // Node's timers (emulated by the fake ones) fire at once for a delay past 2^31 - 1 ms.
  it('waits out a delay longer than setTimeout allows, in steps, and can be cancelled', async () => {
    vi.useFakeTimers({ now: Date.UTC(2026, 0, 1) });
    const thirtyDays = 30 * 86_400_000;
    let fired = 0;
    systemClock.setTimer(() => {
      fired++;
    }, thirtyDays);
    let cancelledFired = 0;
    const cancelled = systemClock.setTimer(() => {
      cancelledFired++;
    }, thirtyDays);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(fired).toBe(0);
    await vi.advanceTimersByTimeAsync(25 * 86_400_000);
    expect(fired).toBe(0);
    cancelled.cancel();
    await vi.advanceTimersByTimeAsync(thirtyDays - 25 * 86_400_000 - 1_001);
    expect(fired).toBe(0);
    await vi.advanceTimersByTimeAsync(2);
    expect(fired).toBe(1);
    expect(cancelledFired).toBe(0);
    let never = 0;
    const forever = systemClock.setTimer(() => {
      never++;
    }, Number.POSITIVE_INFINITY);
    await vi.advanceTimersByTimeAsync(100 * 86_400_000);
    expect(never).toBe(0);
    forever.cancel();
  });
});
