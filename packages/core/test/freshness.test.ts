// Per-call cache control, as Powertools users know it: `get(key, { maxAge })` and
// `get(key, { forceFetch: true })` on a warm cache, counted in backend calls.
import { CachedProvider, isSecretError, ProviderUnavailableError } from '@secret-provider/core';
import { BaseProvider, ManualClock, type StoredSecret } from '@secret-provider/core/adapter';
import { rejection } from '@secret-provider/testing';
import { describe, expect, it } from 'vitest';

class CountingBackend extends BaseProvider {
  calls = 0;
  failWith: Error | undefined;
  readonly values = new Map<string, string>();

  constructor(options: { cache?: boolean; clock?: ManualClock } = {}) {
    super({
      name: 'counting',
      cache: options.cache ? { ttl: 60_000, staleIfError: 600_000 } : false,
      clock: options.clock,
    });
  }

  protected override async readSecret(key: string): Promise<StoredSecret | undefined> {
    this.calls++;
    if (this.failWith) throw this.failWith;
    const value = this.values.get(key);
    return value === undefined ? undefined : { value };
  }
}

const setups = {
  CachedProvider: (clock: ManualClock) => {
    const backend = new CountingBackend();
    return {
      backend,
      reader: new CachedProvider(backend, { ttl: 60_000, staleIfError: 600_000, now: () => clock.now() }),
    };
  },
  'the built-in cache option': (clock: ManualClock) => {
    const backend = new CountingBackend({ cache: true, clock });
    return { backend, reader: backend };
  },
};

for (const [name, setup] of Object.entries(setups)) {
  describe(`per-call cache control through ${name}`, () => {
    it('maxAge asks the backend only when the cached value is older than asked', async () => {
      const clock = new ManualClock(0);
      const { backend, reader } = setup(clock);
      backend.values.set('db', 'v1');
      await reader.get('db');
      expect(backend.calls).toBe(1);
      await clock.advance(10_000);
      expect((await reader.get('db', { maxAge: 20_000 })).reveal()).toBe('v1');
      expect(backend.calls).toBe(1); // 10 s old, 20 s allowed: from the cache
      backend.values.set('db', 'v2');
      expect((await reader.get('db', { maxAge: 5_000 })).reveal()).toBe('v2');
      expect(backend.calls).toBe(2); // 10 s old, 5 s allowed: asked
      expect((await reader.get('db')).reveal()).toBe('v2'); // the answer refreshed the cache
      expect((await reader.get('db', { maxAge: 0 })).reveal()).toBe('v2');
      expect(backend.calls).toBe(3);
    });

    it('forceFetch always asks the backend, and concurrent forced reads share one request', async () => {
      const clock = new ManualClock(0);
      const { backend, reader } = setup(clock);
      backend.values.set('db', 'v1');
      await reader.get('db');
      backend.values.set('db', 'v2');
      expect((await reader.get('db')).reveal()).toBe('v1');
      expect((await reader.get('db', { forceFetch: true })).reveal()).toBe('v2');
      expect(backend.calls).toBe(2);
      await Promise.all(Array.from({ length: 10 }, () => reader.get('db', { forceFetch: true })));
      expect(backend.calls).toBe(3);
      expect((await reader.get('db')).reveal()).toBe('v2');
      expect(backend.calls).toBe(3);
    });

    it('a forced read of a failing backend still falls back to the last good value within staleIfError', async () => {
      const clock = new ManualClock(0);
      const { backend, reader } = setup(clock);
      backend.values.set('db', 'v1');
      await reader.get('db');
      backend.failWith = new ProviderUnavailableError({ provider: 'counting' });
      expect((await reader.get('db', { forceFetch: true })).reveal()).toBe('v1');
      expect(backend.calls).toBe(2);
    });

    it('rejects a maxAge that is not a number of ms >= 0 with INVALID_CONFIG', async () => {
      const clock = new ManualClock(0);
      const { backend, reader } = setup(clock);
      backend.values.set('db', 'v1');
      for (const maxAge of [-1, Number.NaN, '5' as unknown as number]) {
        const error = await rejection(reader.get('db', { maxAge }));
        expect(isSecretError(error, 'INVALID_CONFIG'), String(error)).toBe(true);
      }
    });
  });
}
