import {
  CachedProvider,
  getMany,
  isSecretError,
  ProviderUnavailableError,
  type Secret,
} from '@secret-provider/core';
import {
  BaseProvider,
  type BaseProviderOptions,
  type HookContext,
  ManualClock,
  type StoredSecret,
} from '@secret-provider/core/adapter';
import { MemoryProvider } from '@secret-provider/memory';
import { expectNoLeak, rejection } from '@secret-provider/testing';
import { describe, expect, it } from 'vitest';

/** A backend that counts its calls: single reads and batch reads, with the keys of each batch. */
class CountingBackend extends BaseProvider {
  readonly data = new Map<string, string>();
  singleReads = 0;
  readonly batches: string[][] = [];
  failBatch: Error | undefined;
  /** When set, batch reads wait for it. */
  gate: Promise<void> | undefined;

  constructor(options: Partial<BaseProviderOptions> = {}) {
    super({ name: 'counting', ...options });
  }

  protected override async readSecret(key: string): Promise<StoredSecret | undefined> {
    this.singleReads++;
    await this.gate;
    const value = this.data.get(key);
    return value === undefined ? undefined : { value, metadata: { version: '1' } };
  }

  protected override async readMany(keys: readonly string[], _context: HookContext) {
    this.batches.push([...keys]);
    await this.gate;
    if (this.failBatch !== undefined) throw this.failBatch;
    const found = new Map<string, StoredSecret>();
    for (const key of keys) {
      const value = this.data.get(key);
      if (value !== undefined) found.set(key, { value, metadata: { version: '1' } });
    }
    // An entry not asked for must not reach the caller.
    found.set('not-asked', { value: 'extra' });
    return found;
  }
}

/** The same backend without a batch hook. */
class SingleReadBackend extends BaseProvider {
  readonly data = new Map<string, string>();
  reads = 0;
  running = 0;
  mostRunning = 0;

  constructor(options: Partial<BaseProviderOptions> = {}) {
    super({ name: 'single', ...options });
  }

  protected override async readSecret(key: string): Promise<StoredSecret | undefined> {
    this.reads++;
    this.running++;
    this.mostRunning = Math.max(this.mostRunning, this.running);
    await new Promise((resolve) => setImmediate(resolve));
    this.running--;
    const value = this.data.get(key);
    return value === undefined ? undefined : { value };
  }
}

const revealAll = (found: Map<string, Secret<string>>) =>
  Object.fromEntries([...found].map(([key, secret]) => [key, secret.reveal()]));

const twenty = Array.from({ length: 20 }, (_, i) => `key-${i}`);

function seeded<T extends { data: Map<string, string> }>(backend: T, keys = twenty): T {
  for (const key of keys) backend.data.set(key, `value of ${key}`);
  return backend;
}

describe('BaseProvider.getMany', () => {
  it('reads every key in one batch, drops missing keys and duplicates, keeps the order asked', async () => {
    const backend = seeded(new CountingBackend(), ['a', 'b', 'c']);
    const found = await backend.getMany(['c', 'missing', 'a', 'c']);
    expect([...found.keys()]).toEqual(['c', 'a']);
    expect(revealAll(found)).toEqual({ c: 'value of c', a: 'value of a' });
    expect(backend.batches).toEqual([['c', 'missing', 'a']]);
    expect(backend.singleReads).toBe(0);
    expect(found.get('c')?.metadata?.key).toBe('c');
  });

  it('validates every key before any I/O', async () => {
    const backend = seeded(new CountingBackend(), ['a']);
    for (const bad of [
      ['a', ''],
      ['a', 'bad\u0000key'],
      ['a', 42 as unknown as string],
    ]) {
      expect(isSecretError(await rejection(backend.getMany(bad)), 'INVALID_KEY')).toBe(true);
    }
    expect(isSecretError(await rejection(backend.getMany('a' as never)), 'INVALID_KEY')).toBe(true);
    expect(backend.batches).toEqual([]);
  });

  it('rejects a batch failure typed, without the values, and refuses version', async () => {
    const backend = seeded(new CountingBackend(), ['a']);
    backend.failBatch = new Error('server said: value of a');
    const error = await rejection(backend.getMany(['a']));
    expect(isSecretError(error, 'UNKNOWN')).toBe(true);
    expectNoLeak([error], ['value of a']);
    backend.failBatch = new ProviderUnavailableError({ provider: 'counting' });
    expect(isSecretError(await rejection(backend.getMany(['a'])), 'UNAVAILABLE')).toBe(true);
    expect(isSecretError(await rejection(backend.getMany(['a'], { version: '1' })), 'UNSUPPORTED')).toBe(
      true,
    );
  });

  it("rejects with the signal's reason", async () => {
    const backend = seeded(new CountingBackend({ cache: true }), ['a']);
    let open = () => {};
    backend.gate = new Promise((resolve) => {
      open = resolve;
    });
    const controller = new AbortController();
    const reason = new Error('caller gave up');
    const pending = backend.getMany(['a'], { signal: controller.signal });
    controller.abort(reason);
    expect(await rejection(pending)).toBe(reason);
    expect(await rejection(backend.getMany(['a'], { signal: controller.signal }))).toBe(reason);
    open();
  });

  it('counts backend calls for 20 keys on a cold, warm and partly warm cache', async () => {
    const backend = seeded(new CountingBackend({ cache: true }));
    await backend.getMany(twenty);
    expect(backend.batches.map((keys) => keys.length)).toEqual([20]);
    await backend.getMany(twenty);
    expect(backend.batches.length).toBe(1);
    for (const key of twenty.slice(0, 5)) backend.invalidate(key);
    const found = await backend.getMany(twenty);
    expect(found.size).toBe(20);
    expect(backend.batches.map((keys) => keys.length)).toEqual([20, 5]);
    expect(backend.singleReads).toBe(0);
  });

  it('remembers missing keys and honours maxAge and forceFetch per key', async () => {
    const clock = new ManualClock();
    const backend = seeded(new CountingBackend({ cache: true, clock }), ['a', 'b']);
    await backend.getMany(['a', 'gone']);
    expect(backend.batches).toEqual([['a', 'gone']]);
    await backend.getMany(['a', 'gone']);
    expect(backend.batches.length).toBe(1);
    clock.advance(1_000);
    await backend.getMany(['b']);
    await backend.getMany(['a', 'b'], { maxAge: 500 });
    expect(backend.batches.at(-1)).toEqual(['a']);
    await backend.getMany(['a', 'b'], { forceFetch: true });
    expect(backend.batches.at(-1)).toEqual(['a', 'b']);
  });

  it('shares reads with single gets in flight, both ways', async () => {
    const backend = seeded(new CountingBackend({ cache: true }), ['a', 'b']);
    let open = () => {};
    backend.gate = new Promise((resolve) => {
      open = resolve;
    });
    const single = backend.get('a');
    const many = backend.getMany(['a', 'b']);
    const later = backend.get('b');
    open();
    expect((await single).reveal()).toBe('value of a');
    expect((await later).reveal()).toBe('value of b');
    expect(revealAll(await many)).toEqual({ a: 'value of a', b: 'value of b' });
    expect(backend.singleReads).toBe(1);
    expect(backend.batches).toEqual([['b']]);
    expect(backend.cacheStats()?.coalesced).toBe(2);
  });

  it('serves last good values when a batch fails within staleIfError', async () => {
    const clock = new ManualClock();
    const backend = seeded(
      new CountingBackend({ cache: { ttl: 1_000, jitter: 0, staleIfError: 60_000 }, clock }),
      ['a', 'b'],
    );
    await backend.getMany(['a']);
    clock.advance(2_000);
    backend.failBatch = new ProviderUnavailableError({ provider: 'counting' });
    expect(revealAll(await backend.getMany(['a']))).toEqual({ a: 'value of a' });
    // A key without a good value cannot be served: the failure surfaces.
    expect(isSecretError(await rejection(backend.getMany(['a', 'b'])), 'UNAVAILABLE')).toBe(true);
  });

  it('without a batch hook, reads key by key through get, a few at a time', async () => {
    const backend = seeded(new SingleReadBackend({ cache: true }));
    const found = await backend.getMany([...twenty, 'missing']);
    expect(found.size).toBe(20);
    expect(backend.reads).toBe(21);
    expect(backend.mostRunning).toBeGreaterThan(1);
    expect(backend.mostRunning).toBeLessThanOrEqual(8);
    await backend.getMany(twenty);
    expect(backend.reads).toBe(21);
  });

  it('a subclass that overrides readSecret alone is not answered by the inherited batch hook', async () => {
    class Overriding extends CountingBackend {
      protected override async readSecret(key: string): Promise<StoredSecret | undefined> {
        return key === 'a' ? { value: 'own a' } : undefined;
      }
    }
    const backend = seeded(new Overriding(), ['a']);
    expect(revealAll(await backend.getMany(['a']))).toEqual({ a: 'own a' });
    expect(backend.batches).toEqual([]);
  });

  it('a closed provider rejects with CLOSED', async () => {
    const backend = new CountingBackend();
    await backend.close();
    expect(isSecretError(await rejection(backend.getMany(['a'])), 'CLOSED')).toBe(true);
  });
});

describe('getMany (core)', () => {
  it("uses the provider's own getMany when it has one", async () => {
    const backend = seeded(new CountingBackend(), ['a']);
    expect(revealAll(await getMany(backend, ['a', 'b']))).toEqual({ a: 'value of a' });
    expect(backend.batches).toEqual([['a', 'b']]);
  });

  it('falls back to bounded concurrent gets, NOT_FOUND dropped, failures rejecting', async () => {
    const inner = seeded(new SingleReadBackend(), twenty);
    let running = 0;
    let mostRunning = 0;
    let gets = 0;
    const plain = {
      name: 'plain',
      get: async (key: string) => {
        gets++;
        running++;
        mostRunning = Math.max(mostRunning, running);
        try {
          if (key === 'broken') throw new ProviderUnavailableError({ provider: 'plain', key });
          return await inner.get(key);
        } finally {
          running--;
        }
      },
    } as unknown as import('@secret-provider/core').SecretProvider;
    const found = await getMany(plain, [...twenty, 'missing', 'key-0'], { concurrency: 3 });
    expect(found.size).toBe(20);
    expect(gets).toBe(21);
    expect(mostRunning).toBe(3);
    expect(isSecretError(await rejection(getMany(plain, ['key-1', 'broken'])), 'UNAVAILABLE')).toBe(true);
    gets = 0;
    expect(isSecretError(await rejection(getMany(plain, ['key-1', ''])), 'INVALID_KEY')).toBe(true);
    expect(gets).toBe(0);
  });
});

describe('CachedProvider.getMany', () => {
  it("sends the misses to the wrapped provider's batch read in one call", async () => {
    const backend = seeded(new CountingBackend());
    const cached = new CachedProvider(backend);
    await cached.getMany(twenty);
    await cached.getMany(twenty);
    cached.invalidate('key-3');
    cached.invalidate('key-7');
    expect((await cached.getMany([...twenty, 'missing'])).size).toBe(20);
    expect(backend.batches.map((keys) => keys.length)).toEqual([20, 3]);
    await cached.getMany(['missing']);
    expect(backend.batches.length).toBe(2);
    await cached.getMany(['key-1'], { forceFetch: true });
    expect(backend.batches.at(-1)).toEqual(['key-1']);
    await cached.close();
  });

  it('works over a provider without a batch read', async () => {
    const memory = new MemoryProvider({ initial: { a: 'one', b: 'two' } });
    const cached = new CachedProvider(memory);
    expect(revealAll(await cached.getMany(['b', 'x', 'a']))).toEqual({ b: 'two', a: 'one' });
    expect(cached.cacheStats().misses).toBe(3);
    expect(revealAll(await cached.getMany(['a', 'b']))).toEqual({ a: 'one', b: 'two' });
    expect(cached.cacheStats().hits).toBe(2);
    await cached.close();
  });
});
