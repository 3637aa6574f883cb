import {
  AccessDeniedError,
  ProviderUnavailableError,
  RateLimitedError,
  SecretNotFoundError,
} from '@secret-provider/core';
import { ManualClock } from '@secret-provider/core/adapter';
import { MemoryProvider } from '@secret-provider/memory';
import { afterEach, describe, expect, it } from 'vitest';
import { HealthProbe } from '../src/health-probe.js';

// The probe of a failed replica, in simulated time: it runs on core's Poller and the clock it is
// given, so every wait below is exact.

let probe: HealthProbe | undefined;
afterEach(async () => {
  await probe?.stop();
  probe = undefined;
});

/** A probe whose check does what `answer` says, recording when it ran. */
function probing(
  answer: (signal: AbortSignal) => Promise<unknown>,
  options: { timeout?: number; hangs?: boolean } = {},
) {
  // The clock waits for a check's work before moving on (real I/O should finish first); a check
  // that never ends would hold each step for the clock's real-time bound, so keep that short.
  const clock = new ManualClock(0, options.hangs ? { settleTimeoutMs: 20 } : {});
  const checks: number[] = [];
  const healthy: number[] = [];
  const provider = new MemoryProvider({ name: 'replica' });
  probe = new HealthProbe({
    provider,
    check: (checked, signal) => {
      expect(checked).toBe(provider);
      checks.push(clock.now());
      return answer(signal);
    },
    interval: 1_000,
    jitter: 0,
    timeout: options.timeout ?? 500,
    clock,
    random: () => 0,
    onHealthy: () => healthy.push(clock.now()),
  });
  return { clock, checks, healthy, probe };
}

const unavailable = () => Promise.reject(new ProviderUnavailableError({ provider: 'replica' }));

describe('HealthProbe', () => {
  it('checks once per interval until a check succeeds, then reports healthy once and stops', async () => {
    let down = true;
    const { clock, checks, healthy, probe } = probing(() => (down ? unavailable() : Promise.resolve()));
    probe.start();
    expect(probe.running).toBe(true);
    await clock.advance(999);
    expect(checks).toEqual([]);
    await clock.advance(1);
    expect(checks).toEqual([1_000]);
    await clock.advance(2_000);
    expect(checks).toEqual([1_000, 2_000, 3_000]);
    expect(healthy).toEqual([]);
    down = false;
    await clock.advance(1_000);
    expect(healthy).toEqual([4_000]);
    expect(probe.running).toBe(false);
    await clock.advance(10_000);
    expect(checks).toHaveLength(4);
    expect(healthy).toHaveLength(1);
  });

  it('waits out the Retry-After of the failure that started it', async () => {
    const { clock, checks, probe } = probing(unavailable);
    probe.start(3_500);
    await clock.advance(3_499);
    expect(checks).toEqual([]);
    await clock.advance(1);
    expect(checks).toEqual([3_500]);
    await clock.advance(1_000);
    expect(checks).toEqual([3_500, 4_500]);
  });

  it('waits out the Retry-After of a throttled check (core retryDelay, no spread with random 0)', async () => {
    let throttled = true;
    const { clock, checks, healthy, probe } = probing(() =>
      throttled
        ? Promise.reject(new RateLimitedError({ provider: 'replica', retryAfterMs: 5_000 }))
        : Promise.resolve(),
    );
    probe.start();
    await clock.advance(1_000);
    throttled = false;
    await clock.advance(4_999);
    expect(checks).toEqual([1_000]);
    await clock.advance(1);
    expect(checks).toEqual([1_000, 6_000]);
    expect(healthy).toEqual([6_000]);
  });

  it('counts a missing, invalid or denied answer as healthy: the backend answered', async () => {
    for (const error of [
      new SecretNotFoundError({ provider: 'replica' }),
      new AccessDeniedError({ provider: 'replica' }),
    ]) {
      const { clock, healthy, probe } = probing(() => Promise.reject(error));
      probe.start();
      await clock.advance(1_000);
      expect(healthy).toEqual([1_000]);
      await probe.stop();
    }
  });

  it('fails a check that outlasts the timeout (on the clock) and aborts its signal', async () => {
    const signals: AbortSignal[] = [];
    const { clock, checks, healthy, probe } = probing(
      (signal) => {
        signals.push(signal);
        return new Promise(() => {});
      },
      { timeout: 300, hangs: true },
    );
    probe.start();
    await clock.advance(1_000);
    expect(signals[0]?.aborted).toBe(false);
    await clock.advance(300);
    expect(signals[0]?.aborted).toBe(true);
    expect((signals[0]?.reason as Error | undefined)?.name).toBe('SecretTimeoutError');
    expect(healthy).toEqual([]);
    // The next check follows one interval after the failed one.
    await clock.advance(1_000);
    expect(checks).toEqual([1_000, 2_300]);
  });

  it('stops on stop(): the check in progress is aborted and no other one runs', async () => {
    const signals: AbortSignal[] = [];
    const { clock, checks, probe } = probing(
      (signal) => {
        signals.push(signal);
        return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
      },
      { hangs: true },
    );
    probe.start();
    await clock.advance(1_000);
    await probe.stop();
    expect(signals[0]?.aborted).toBe(true);
    expect(probe.running).toBe(false);
    await clock.advance(10_000);
    expect(checks).toEqual([1_000]);
  });

  it('stops at once even when the check in progress ignores its signal', async () => {
    const { clock, probe } = probing(() => new Promise(() => {}), { hangs: true });
    probe.start();
    await clock.advance(1_000);
    // Neither the timeout (simulated time stands still) nor the check will end this run.
    await probe.stop();
    expect(probe.running).toBe(false);
  });

  it('start() while probing keeps one probe, with the later Retry-After', async () => {
    const { clock, checks, probe } = probing(unavailable);
    probe.start();
    probe.start(2_500);
    await clock.advance(2_499);
    expect(checks).toEqual([]);
    await clock.advance(1);
    expect(checks).toEqual([2_500]);
    await clock.advance(1_000);
    expect(checks).toEqual([2_500, 3_500]);
  });
});
