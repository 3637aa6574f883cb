import { isSecretError } from '@secret-provider/core';
import { rejection } from '@secret-provider/testing';
import { ManualClock, VaultProvider } from '@secret-provider/vault';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Setup, settle, setup, trackUnhandledRejections } from './helpers.js';

// The provider's cache: on by default (core's cache, with `spreadFirst`), dropped by what the
// watch reports, and coming out of a throttling spread over one TTL instead of all at once.

trackUnhandledRejections({ beforeAll, afterAll });

let current: Setup | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

/** A seeded random source: the same run every time. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 4_294_967_296;
  };
}

const reads = (s: Setup, path: string) =>
  s.double.count((r) => r.path === `secret/data/${path}` && r.status === 200);

describe('the cache', () => {
  it('is on by default: a second get is answered from memory; cache: false asks Vault every time', async () => {
    const s = await setup({ watch: false });
    current = s;
    s.double.kvPut('secret', 'app', { value: 'v' });
    const provider = new VaultProvider({
      endpoint: s.double.url,
      auth: { method: 'token', token: s.double.rootToken },
      env: {},
    });
    await provider.get('secret/app');
    await provider.get('secret/app');
    expect(reads(s, 'app')).toBe(1);
    expect(provider.cacheStats()).toMatchObject({ hits: 1, misses: 1 });
    await provider.close();

    const uncached = new VaultProvider({
      endpoint: s.double.url,
      auth: { method: 'token', token: s.double.rootToken },
      env: {},
      cache: false,
    });
    await uncached.get('secret/app');
    await uncached.get('secret/app');
    expect(reads(s, 'app')).toBe(3);
    expect(uncached.cacheStats()).toBeUndefined();
    await uncached.close();
  });

  it('spreads the first TTL of each secret over the whole TTL (spreadFirst), unless told not to', async () => {
    const count = async (cache: object) => {
      const clock = new ManualClock();
      const s = await setup({ clock, watch: false, provider: () => ({ cache }) });
      for (let i = 0; i < 20; i++) s.double.kvPut('secret', `k${i}`, { value: `v${i}` });
      for (let i = 0; i < 20; i++) await s.provider.get(`secret/k${i}`);
      s.double.clearLog();
      await clock.advance(30_000);
      for (let i = 0; i < 20; i++) await s.provider.get(`secret/k${i}`);
      const again = s.double.count((r) => r.path.startsWith('secret/data/'));
      await s.close();
      return again;
    };
    // Half of one TTL later: about half the secrets are due again with the spread, none without.
    const spread = await count({ ttl: 60_000, random: seeded(7) });
    expect(spread).toBeGreaterThanOrEqual(5);
    expect(spread).toBeLessThanOrEqual(15);
    expect(await count({ ttl: 60_000, random: seeded(7), spreadFirst: false })).toBe(0);
  });

  it('drops a secret the watch reports rotated, so the next get reads the new version', async () => {
    const clock = new ManualClock();
    const s = await setup({ clock, provider: () => ({ cache: {}, pollInterval: 10_000 }) });
    current = s;
    s.double.kvPut('secret', 'app', { value: 'v1' });
    await clock.advance(10_000);
    expect((await s.provider.get('secret/app')).reveal()).toBe('v1');
    s.double.kvPut('secret', 'app', { value: 'v2' });
    expect((await s.provider.get('secret/app')).reveal()).toBe('v1');
    await clock.advance(10_000);
    expect((await s.provider.get('secret/app')).reveal()).toBe('v2');
  });

  it('after a throttling, brings its backlog back spread over one TTL, not at the Retry-After', async () => {
    const clock = new ManualClock();
    const ttl = 60_000;
    const s = await setup({
      clock,
      watch: false,
      provider: () => ({
        cache: { ttl, jitter: 0, staleIfError: 3_600_000, random: seeded(11) },
        retry: { retries: 0, maxRetryAfterMs: 0 },
      }),
    });
    current = s;
    const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
    for (const key of keys) s.double.kvPut('secret', key, { value: `${key}-value` });
    const readAll = async () => {
      for (const key of keys) expect((await s.provider.get(`secret/${key}`)).reveal()).toBe(`${key}-value`);
    };
    await settle(readAll(), clock);
    s.double.rateLimit({ retryAfter: 10, match: 'secret/data/' });
    // Five minutes of throttling, the application reading every secret every 5 s: every value
    // keeps being served (stale), and Vault hears from this client about once per Retry-After.
    for (let t = 0; t < 300_000; t += 5_000) {
      await readAll();
      await clock.advance(5_000);
    }
    const throttled = s.double.count((r) => r.status === 429);
    expect(throttled).toBeGreaterThanOrEqual(5);
    expect(throttled).toBeLessThanOrEqual(40);
    s.double.clearRateLimit();
    s.double.clearLog();
    const start = clock.now();
    const perWindow = new Map<number, number>();
    for (let t = 0; t < 2 * ttl; t += 5_000) {
      const before = s.double.count((r) => r.status === 200);
      await readAll();
      const window = Math.floor((clock.now() - start) / 10_000);
      perWindow.set(window, (perWindow.get(window) ?? 0) + s.double.count((r) => r.status === 200) - before);
      await clock.advance(5_000);
    }
    // Every secret was read again within about one TTL (plus the hold), and never more than
    // a third of them in any 10 s: the backlog is spread, not released at once.
    const firstTtl = [...perWindow].filter(([w]) => w * 10_000 < ttl + 15_000).reduce((a, [, n]) => a + n, 0);
    expect(firstTtl).toBeGreaterThanOrEqual(keys.length);
    expect(Math.max(...perWindow.values())).toBeLessThanOrEqual(7);
    expect(s.provider.cacheStats()?.staleServed).toBeGreaterThan(0);
  });
});

describe('capabilities', () => {
  it('declares versions and check-and-set for KV v2, refuses expiry, tags and content types', async () => {
    const s = await setup({ watch: false });
    current = s;
    expect(s.provider.capabilities).toMatchObject({
      versions: true,
      checkAndSet: true,
      expiry: false,
      tags: false,
      contentType: false,
      list: true,
      watch: true,
    });
    for (const options of [
      { expiresAt: new Date(Date.now() + 60_000) },
      { tags: { team: 'a' } },
      { contentType: 'text/plain' },
    ]) {
      const error = await rejection(s.provider.set('secret/app', 'v', options));
      expect(isSecretError(error, 'UNSUPPORTED'), JSON.stringify(options)).toBe(true);
    }
    expect(s.double.count((r) => r.method === 'POST')).toBe(0);
    const v1 = new VaultProvider({ env: {}, endpoint: s.double.url, mounts: { kv: { version: 1 } } });
    expect(v1.capabilities).toMatchObject({ versions: false, checkAndSet: false });
    const readOnly = new VaultProvider({
      env: {},
      endpoint: s.double.url,
      capabilities: { write: false, delete: false },
    });
    expect(readOnly.capabilities).toMatchObject({ write: false, delete: false, versions: true });
    expect(isSecretError(await rejection(readOnly.set('secret/app', 'v')), 'READ_ONLY')).toBe(true);
    await v1.close();
    await readOnly.close();
  });
});

describe('poll settings', () => {
  it('polls every pollInterval; watch.intervalMs is its deprecated alias, pollInterval wins', async () => {
    const lists = async (options: object) => {
      const clock = new ManualClock();
      const s = await setup({ clock, provider: () => ({ random: () => 0.5, ...options }) });
      s.double.clearLog();
      await clock.advance(60_000);
      const count = s.double.count((r) => r.method === 'LIST');
      await s.close();
      return count;
    };
    // 0.5 of the 10 % jitter: one poll every 0.95 intervals.
    expect(await lists({ pollInterval: 20_000 })).toBe(3);
    expect(await lists({ watch: { intervalMs: 20_000 } })).toBe(3);
    expect(await lists({ pollInterval: 30_000, watch: { intervalMs: 5_000 } })).toBe(2);
    expect(() => new VaultProvider({ env: {}, pollInterval: 0 })).toThrow(/pollInterval/);
  });
});
