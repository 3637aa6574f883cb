// Debounce, throttle, retries and deadlines in simulated time: every timer of the settings runs on
// the clock they are given, so a ManualClock decides when each fires, to the millisecond.
import { RateLimitedError } from '@secret-provider/core';
import { ManualClock } from '@secret-provider/core/adapter';
import { MemoryProvider, MemoryStore } from '@secret-provider/memory';
import { defineSettings, type SettingsErrorEvent, type SettingsOptions } from '@secret-provider/settings';
import { rejection } from '@secret-provider/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ControlledProvider, spySchema } from './helpers.js';

const schema = z.object({ a: z.string() });

const disposers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const dispose of disposers.splice(0)) await dispose();
});

function simulated(
  options: Partial<SettingsOptions<typeof schema>> & { provider?: ControlledProvider } = {},
) {
  const clock = new ManualClock();
  const store = new MemoryStore({ A: '0' });
  const provider = options.provider ?? new ControlledProvider({ store });
  const spy = spySchema(schema);
  const settings = defineSettings({
    minIntervalMs: 0,
    ...options,
    source: provider,
    schema: spy.schema,
    clock,
  });
  const errors: SettingsErrorEvent[] = [];
  settings.on('error', (event) => errors.push(event));
  disposers.push(async () => {
    await settings.close();
    await provider.close();
  });
  return { clock, store, provider, settings, errors, validations: spy.calls };
}

describe('live reloads in simulated time', () => {
  it('waits debounceMs after the last change of a burst, and reloads once', async () => {
    const { clock, store, settings, validations } = simulated({ debounceMs: 100, maxWaitMs: 10_000 });
    await settings.load();
    store.set('A', '1');
    await clock.advance(60);
    store.set('A', '2');
    await clock.advance(99);
    expect(validations()).toBe(1);
    await clock.advance(1);
    expect(validations()).toBe(2);
    expect(settings.current.a).toBe('2');
    await clock.advance(10_000);
    expect(validations()).toBe(2);
  });

  it('reloads a source that is never quiet maxWaitMs after its first change', async () => {
    const { clock, store, settings, validations } = simulated({ debounceMs: 100, maxWaitMs: 1000 });
    await settings.load();
    for (let i = 1; i <= 19; i++) {
      store.set('A', String(i));
      await clock.advance(50);
    }
    // 950 ms of changes every 50 ms: debounce alone would never fire.
    expect(validations()).toBe(1);
    store.set('A', '20');
    await clock.advance(50);
    expect(validations()).toBe(2);
    expect(settings.current.a).toBe('20');
  });

  it('starts two reloads no closer than minIntervalMs', async () => {
    const { clock, store, settings, validations } = simulated({ debounceMs: 10, minIntervalMs: 5000 });
    await settings.load();
    store.set('A', '1');
    await clock.advance(10); // the first reload starts at t = 10
    expect(validations()).toBe(2);
    store.set('A', '2');
    await clock.advance(4999); // t = 5009
    expect(validations()).toBe(2);
    await clock.advance(1); // t = 5010: 5000 after the first start
    expect(validations()).toBe(3);
    expect(settings.current.a).toBe('2');
  });

  it('reads a failed field again after jittered waits that double up to 30 s', async () => {
    const store = new MemoryStore({ A: '0' });
    const provider = new ControlledProvider({ store });
    const { clock, settings, errors } = simulated({ provider, debounceMs: 10, retryDelayMs: 1000 });
    await settings.load();
    const reads: number[] = [];
    provider.onRead = () => reads.push(clock.now());
    provider.failing.add('A');
    store.set('A', 'a2');
    await clock.advance(120_000);
    expect(errors.length).toBeGreaterThan(5);
    expect(errors.every((event) => event.error.code === 'UNAVAILABLE')).toBe(true);
    expect(settings.current.a).toBe('0');
    // Each wait is in [step / 2, step) for steps 1 s, 2 s, 4 s, ... capped at 30 s, plus the
    // debounce. Strictly below the step: an un-jittered back-off would hit it exactly.
    const waits = reads.slice(1).map((at, i) => at - (reads[i] as number) - 10);
    expect(waits.length).toBeGreaterThan(5);
    waits.forEach((wait, i) => {
      const step = Math.min(30_000, 1000 * 2 ** i);
      expect(wait).toBeGreaterThanOrEqual(step / 2);
      expect(wait).toBeLessThan(step);
    });
    provider.failing.delete('A');
    await clock.advance(30_010);
    expect(settings.current.a).toBe('a2');
  });

  it("waits as long as the backend's Retry-After says, not the back-off", async () => {
    const store = new MemoryStore({ A: '0' });
    const provider = new ControlledProvider({ store });
    provider.failure = (key) => new RateLimitedError({ provider: provider.name, key, retryAfterMs: 20_000 });
    const { clock, settings, errors } = simulated({ provider, debounceMs: 10, retryDelayMs: 100 });
    await settings.load();
    const reads: number[] = [];
    provider.onRead = () => reads.push(clock.now());
    provider.failing.add('A');
    store.set('A', 'a2');
    await clock.advance(10);
    expect(reads).toHaveLength(1);
    expect(errors[0]?.error.code).toBe('RATE_LIMITED');
    provider.failing.delete('A');
    await clock.advance(19_999);
    expect(reads).toHaveLength(1);
    // Told 20 s, spread by up to half of it so that a fleet told the same does not return at once.
    await clock.advance(10_011);
    expect(reads).toHaveLength(2);
    expect((reads[1] as number) - (reads[0] as number)).toBeGreaterThanOrEqual(20_010);
    expect(settings.current.a).toBe('a2');
  });

  it('gives up a refresh at its deadline on the clock, with TIMEOUT', async () => {
    const hanging = new MemoryProvider({ initial: { A: '1' } });
    const clock = new ManualClock();
    const settings = defineSettings({ source: hanging, schema, clock, live: false });
    disposers.push(() => settings.close());
    const first = await settings.load();
    hanging.get = (_key, options) =>
      new Promise((_resolve, reject) =>
        options?.signal?.addEventListener('abort', () => reject(options.signal?.reason)),
      );
    let settled = false;
    const refreshing = settings.refresh({ timeout: 5000 });
    refreshing.then(
      () => {
        settled = true;
      },
      () => {
        settled = true;
      },
    );
    await clock.advance(4999);
    expect(settled).toBe(false);
    await clock.advance(1);
    // At the simulated deadline, not after 5 s of real time.
    expect(settled).toBe(true);
    const error = await rejection(refreshing);
    expect(error).toMatchObject({ code: 'TIMEOUT' });
    expect((error as Error).message).toContain('timed out after 5000 ms');
    expect(settings.current).toBe(first);
  });
});
