import {
  CachedProvider,
  createEmitter,
  isSecretError,
  ProviderUnavailableError,
  type SecretEvents,
} from '@secret-provider/core';
import { BaseProvider, type StoredSecret } from '@secret-provider/core/adapter';
import { MemoryProvider } from '@secret-provider/memory';
import { describe, expect, it } from 'vitest';

/** A backend that counts calls and can be slowed, failed or changed by the test. */
class CountingBackend extends BaseProvider {
  calls = 0;
  latencyMs = 0;
  failWith: Error | undefined;
  values = new Map<string, string>();
  expiresAt: Date | undefined;

  constructor() {
    super({ name: 'counting' });
  }

  protected override async readSecret(key: string): Promise<StoredSecret | undefined> {
    this.calls++;
    const failWith = this.failWith;
    const value = this.values.get(key);
    if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
    if (failWith) throw failWith;
    return value === undefined
      ? undefined
      : { value, metadata: { version: String(this.calls), expiresAt: this.expiresAt } };
  }

  protected override async writeSecret(key: string, value: string): Promise<void> {
    if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
    this.values.set(key, value);
  }
}

function setup(options: ConstructorParameters<typeof CachedProvider>[1] = {}) {
  const clock = { now: 1_000_000 };
  const backend = new CountingBackend();
  backend.values.set('db', 'v1');
  const cache = new CachedProvider(backend, { ttl: 10_000, jitter: 0, now: () => clock.now, ...options });
  return { clock, backend, cache };
}

describe('CachedProvider', () => {
  it('serves hits without the backend and counts them', async () => {
    const { backend, cache } = setup();
    expect((await cache.get('db')).reveal()).toBe('v1');
    expect((await cache.get('db')).reveal()).toBe('v1');
    expect(backend.calls).toBe(1);
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 1, size: 1 });
    expect(cache.peek('db')?.reveal()).toBe('v1');
  });

  it('makes exactly one backend call for 1,000 concurrent gets of a cold key', async () => {
    const { backend, cache } = setup();
    backend.latencyMs = 5;
    const results = await Promise.all(Array.from({ length: 1000 }, () => cache.get('db')));
    expect(backend.calls).toBe(1);
    expect(results.every((s) => s.reveal() === 'v1')).toBe(true);
    expect(cache.stats()).toMatchObject({ misses: 1, coalesced: 999 });
  });

  it('gives every waiter the typed error of a failed fetch, leaves nothing in flight, retries next time', async () => {
    const { backend, cache } = setup();
    backend.latencyMs = 5;
    backend.failWith = new ProviderUnavailableError({ provider: 'counting', key: 'db' });
    const outcomes = await Promise.allSettled(Array.from({ length: 100 }, () => cache.get('db')));
    expect(backend.calls).toBe(1);
    expect(outcomes.every((o) => o.status === 'rejected' && isSecretError(o.reason, 'UNAVAILABLE'))).toBe(
      true,
    );
    backend.failWith = undefined;
    expect((await cache.get('db')).reveal()).toBe('v1');
    expect(backend.calls).toBe(2);
  });

  it('refreshes after the TTL', async () => {
    const { clock, backend, cache } = setup();
    await cache.get('db');
    backend.values.set('db', 'v2');
    clock.now += 9_999;
    expect((await cache.get('db')).reveal()).toBe('v1');
    clock.now += 2;
    expect((await cache.get('db')).reveal()).toBe('v2');
    expect(backend.calls).toBe(2);
  });

  it('spreads expiry with jitter', async () => {
    const expiries = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const { clock, backend, cache } = setup({ jitter: 0.2 });
      await cache.get('db');
      for (let t = 0; t <= 10_000; t += 100) {
        clock.now = 1_000_000 + t;
        await cache.get('db');
        if (backend.calls > 1) {
          expiries.add(t);
          break;
        }
      }
    }
    expect(expiries.size).toBeGreaterThan(5);
    for (const t of expiries) expect(t).toBeGreaterThanOrEqual(8_000);
  });

  it('serves stale while one background request revalidates', async () => {
    const { clock, backend, cache } = setup({ staleWhileRevalidate: 5_000 });
    await cache.get('db');
    backend.values.set('db', 'v2');
    backend.latencyMs = 20;
    clock.now += 11_000;
    const stale = await Promise.all(Array.from({ length: 50 }, () => cache.get('db')));
    expect(stale.every((s) => s.reveal() === 'v1')).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(backend.calls).toBe(2);
    expect((await cache.get('db')).reveal()).toBe('v2');
    expect(cache.stats().staleServed).toBe(50);
  });

  it('serves the last good value within staleIfError, then the typed error', async () => {
    const { clock, backend, cache } = setup({ staleIfError: 60_000 });
    await cache.get('db');
    backend.failWith = new ProviderUnavailableError({ provider: 'counting' });
    clock.now += 30_000;
    expect((await cache.get('db')).reveal()).toBe('v1');
    clock.now += 40_001;
    const error = await cache.get('db').catch((e: unknown) => e);
    expect(isSecretError(error, 'UNAVAILABLE')).toBe(true);
    expect(cache.stats()).toMatchObject({ staleServed: 1, errors: 2 });
  });

  it('does not serve stale values of a deleted secret', async () => {
    const { clock, backend, cache } = setup({ staleIfError: 60_000 });
    await cache.get('db');
    backend.values.delete('db');
    clock.now += 11_000;
    expect(isSecretError(await cache.get('db').catch((e: unknown) => e), 'NOT_FOUND')).toBe(true);
  });

  it('remembers not-found briefly, and can be told not to', async () => {
    const { clock, backend, cache } = setup({ negativeTtl: 1_000 });
    await expect(cache.get('missing')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(cache.get('missing')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(backend.calls).toBe(1);
    expect(cache.stats().negativeHits).toBe(1);
    backend.values.set('missing', 'now-here');
    clock.now += 1_001;
    expect((await cache.get('missing')).reveal()).toBe('now-here');
    const off = setup({ negativeTtl: 0 });
    await expect(off.cache.get('missing')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(off.cache.get('missing')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(off.backend.calls).toBe(2);
  });

  it("caps the TTL by the secret's own expiry", async () => {
    const { clock, backend, cache } = setup({ ttl: 3_600_000, staleIfError: 3_600_000 });
    backend.expiresAt = new Date(clock.now + 5_000);
    await cache.get('db');
    clock.now += 4_500; // within the default 1 s margin before expiry
    backend.failWith = new ProviderUnavailableError({ provider: 'counting' });
    const error = await cache.get('db').catch((e: unknown) => e);
    expect(isSecretError(error, 'UNAVAILABLE')).toBe(true);
    expect(backend.calls).toBe(2);
  });

  it('never lets a read that started before a write store the old value', async () => {
    const { backend, cache } = setup();
    backend.latencyMs = 30;
    const staleRead = cache.get('db'); // sees v1 at the backend, finishes after the write
    await new Promise((resolve) => setTimeout(resolve, 5));
    backend.latencyMs = 0;
    await cache.set('db', 'v2');
    expect((await staleRead).reveal()).toBe('v1');
    expect((await cache.get('db')).reveal()).toBe('v2');
  });

  it('invalidates one key or all, and counts evictions at the bound', async () => {
    const { backend, cache } = setup({ max: 2 });
    backend.values.set('a', '1');
    backend.values.set('b', '2');
    await cache.get('db');
    await cache.get('a');
    await cache.get('b');
    expect(cache.stats()).toMatchObject({ evictions: 1, size: 2 });
    cache.invalidate('a');
    expect(cache.stats().size).toBe(1);
    cache.clear();
    expect(cache.stats().size).toBe(0);
  });

  it('invalidates keys named by the events of the provider it wraps', async () => {
    const memory = new MemoryProvider({ initial: { db: 'v1' } });
    const cache = new CachedProvider(memory, { ttl: 60_000 });
    const events: Array<keyof SecretEvents> = [];
    const emitter = createEmitter();
    emitter.on('*', (type) => events.push(type));
    const handle = cache.watch(emitter);
    await handle.ready;
    expect((await cache.get('db')).reveal()).toBe('v1');
    memory.store.set('db', 'v2');
    expect(events).toEqual(['rotated']);
    expect((await cache.get('db')).reveal()).toBe('v2');
    await handle.stop();
    await cache.close();
  });

  it('reports no value in its stats, JSON or inspection', async () => {
    const { cache } = setup();
    await cache.get('db');
    const { inspect } = await import('node:util');
    const shown = `${JSON.stringify(cache)} ${JSON.stringify(cache.stats())} ${inspect(cache, { depth: Infinity, showHidden: true })}`;
    expect(shown).not.toContain('v1');
  });

  it('stores entries that a diagnostics_channel subscriber of lru-cache cannot read', async () => {
    const channel = await import('node:diagnostics_channel');
    const { inspect } = await import('node:util');
    const published: string[] = [];
    const listener = (message: unknown) => published.push(inspect(message, { depth: 6, showHidden: true }));
    channel.subscribe('lru-cache:metrics', listener);
    try {
      const { backend, cache } = setup();
      backend.values.set('token', 'lru-leak-canary-value');
      await cache.get('token');
      await cache.get('token');
    } finally {
      channel.unsubscribe('lru-cache:metrics', listener);
    }
    expect(published.join('\n')).not.toContain('lru-leak-canary-value');
  });
});

describe('CachedProvider after a failed refresh', () => {
  it('holds off as long as the backend asked, serving the last good value, then asks again', async () => {
    const { clock, backend, cache } = setup({ staleIfError: 600_000 });
    await cache.get('db');
    backend.failWith = new ProviderUnavailableError({ provider: 'counting', retryAfterMs: 5_000 });
    clock.now += 11_000;
    for (let i = 0; i < 100; i++) expect((await cache.get('db')).reveal()).toBe('v1');
    expect(backend.calls).toBe(2); // one failed refresh, then 99 reads served without asking
    // The asked-for 5 s, stretched at random by up to half (so a fleet told the same instant does
    // not return in it): after 7.5 s every reader may ask again.
    clock.now += 7_501;
    backend.failWith = undefined;
    backend.values.set('db', 'v2');
    expect((await cache.get('db')).reveal()).toBe('v2');
    expect(backend.calls).toBe(3);
  });
});
