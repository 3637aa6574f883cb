import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidConfigError, isSecretError, Secret } from '@secret-provider/core';
import { ManualClock } from '@secret-provider/core/adapter';
import { MemoryProvider } from '@secret-provider/memory';
import {
  FALLBACK_ENDED,
  FALLBACK_SERVED,
  FallbackTooOldError,
  FallbackUnreadableError,
  OfflineFallbackProvider,
  SERVED_FROM_FALLBACK,
} from '@secret-provider/offline';
import { expectNoLeak, rejection, tempDir } from '@secret-provider/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectAbsentFrom, newKey, newValue, SwitchableBackend, wrap } from './helpers.js';

const HOUR = 3_600_000;
let dir: ReturnType<typeof tempDir>;
let path: string;
/** Everything any test received, scanned for every value at the end of each test. */
let received: unknown[];
let values: string[];

beforeEach(() => {
  dir = tempDir('offline-');
  path = join(dir.dir, 'state', 'secrets.fallback');
  received = [];
  values = [];
});

afterEach(() => {
  try {
    expectNoLeak(received, values, { encodings: true });
  } finally {
    dir.remove();
  }
});

/** A backend with two keys, its values remembered for the leak scan. */
function backendWith(): { backend: SwitchableBackend; db: string; api: string } {
  const db = newValue('db');
  const api = newValue('api');
  values.push(db, api);
  return { backend: new SwitchableBackend({ 'app/db-password': db, 'app/api-token': api }), db, api };
}

async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  const error = await rejection(promise);
  received.push(error);
  return error;
}

describe('recording and serving across a restart', () => {
  it('serves the last good values from the file when the backend is unavailable at start, and announces it', async () => {
    const key = newKey();
    const clock = new ManualClock();
    const first = backendWith();
    const run1 = wrap(first.backend, { path, key, maxAge: HOUR, clock });
    expect((await run1.provider.get('app/db-password')).reveal()).toBe(first.db);
    expect((await run1.provider.get('app/api-token')).reveal()).toBe(first.api);
    // Written behind the reads: nothing on disk until the write delay passed.
    expect(existsSync(path)).toBe(false);
    await clock.advance(1_000);
    expect(existsSync(path)).toBe(true);
    expect(run1.provider.stats()).toMatchObject({ entries: 2, writes: 1 });
    await run1.provider.close();

    // Mode 0600 and nothing readable: no value, no key name, in any common encoding.
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expectAbsentFrom(readFileSync(path), [
      first.db,
      first.api,
      'app/db-password',
      'app/api-token',
      'db-password',
    ]);

    // The restart: a new process's provider on the same file, the backend down.
    const down = new SwitchableBackend({});
    down.failing = 'UNAVAILABLE';
    const run2 = wrap(down, { path, key, maxAge: HOUR, clock });
    const served = await run2.provider.get('app/db-password');
    expect(served.reveal()).toBe(first.db);
    expect(served.metadata?.attributes?.servedFrom).toBe(SERVED_FROM_FALLBACK);
    expect((await run2.provider.metadata('app/api-token')).attributes?.servedFrom).toBe(SERVED_FROM_FALLBACK);
    await run2.provider.get('app/db-password');
    const warnings = run2.events
      .filter((e) => e.type === 'warning')
      .map((e) => e.event as { code: string; key: string });
    // Once per key and outage, not once per read.
    expect(warnings.map((w) => [w.code, w.key])).toEqual([
      [FALLBACK_SERVED, 'app/db-password'],
      [FALLBACK_SERVED, 'app/api-token'],
    ]);
    expect(run2.provider.stats().served).toBe(3);

    // The backend returns with a rotated value: it is served, the end of the fallback announced,
    // and the file refreshed.
    const rotated = newValue('db2');
    values.push(rotated);
    down.memory.store.set('app/db-password', rotated);
    down.failing = undefined;
    const fresh = await run2.provider.get('app/db-password');
    expect(fresh.reveal()).toBe(rotated);
    expect(fresh.metadata?.attributes?.servedFrom).toBeUndefined();
    expect(
      run2.events.some((e) => e.type === 'warning' && (e.event as { code: string }).code === FALLBACK_ENDED),
    ).toBe(true);
    await run2.provider.close();
    received.push(...run1.events, ...run2.events, served, fresh);

    const run3Backend = new SwitchableBackend({});
    run3Backend.failing = 'TIMEOUT';
    const run3 = new OfflineFallbackProvider(run3Backend, { path, key, maxAge: HOUR, clock });
    expect((await run3.get('app/db-password')).reveal()).toBe(rotated);
    // Kept through a run that did not read it.
    expect((await run3.get('app/api-token')).reveal()).toBe(first.api);
    await run3.close();
  });

  it('never uses the file while the backend answers', async () => {
    const key = newKey();
    const clock = new ManualClock();
    const { backend } = backendWith();
    const run = new OfflineFallbackProvider(backend, { path, key, maxAge: HOUR, clock });
    await run.get('app/db-password');
    await run.flush();
    const changed = newValue('changed');
    values.push(changed);
    backend.memory.store.set('app/db-password', changed);
    const secret = await run.get('app/db-password');
    expect(secret.reveal()).toBe(changed);
    expect(secret.metadata?.attributes?.servedFrom).toBeUndefined();
    expect(run.stats().served).toBe(0);
    await run.close();
  });

  it.each(['ACCESS_DENIED', 'INVALID_KEY'] as const)('does not serve the fallback on %s', async (failure) => {
    const key = newKey();
    const clock = new ManualClock();
    const { backend } = backendWith();
    const run = new OfflineFallbackProvider(backend, { path, key, maxAge: HOUR, clock });
    await run.get('app/db-password');
    backend.failing = failure;
    expect(isSecretError(await failureOf(run.get('app/db-password')), failure)).toBe(true);
    expect(run.stats().served).toBe(0);
    await run.close();
  });

  it('drops a key the backend no longer has (NOT_FOUND), from memory and from the file', async () => {
    const key = newKey();
    const clock = new ManualClock();
    const { backend } = backendWith();
    const run1 = new OfflineFallbackProvider(backend, { path, key, maxAge: HOUR, clock });
    await run1.get('app/db-password');
    await run1.get('app/api-token');
    await run1.flush();
    await backend.memory.delete('app/db-password');
    expect(isSecretError(await failureOf(run1.get('app/db-password')), 'NOT_FOUND')).toBe(true);
    backend.failing = 'UNAVAILABLE';
    // Not served from memory either.
    expect(isSecretError(await failureOf(run1.get('app/db-password')), 'UNAVAILABLE')).toBe(true);
    await run1.close();

    const down = new SwitchableBackend({});
    down.failing = 'UNAVAILABLE';
    const run2 = new OfflineFallbackProvider(down, { path, key, maxAge: HOUR, clock });
    const error = await failureOf(run2.get('app/db-password'));
    // The backend's own outage: there is no fallback for it.
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).name).toBe('ProviderUnavailableError');
    await run2.get('app/api-token');
    await run2.close();
  });

  it('passes reads of a given version and forced reads through, without the fallback', async () => {
    const key = newKey();
    const clock = new ManualClock();
    const { backend } = backendWith();
    const run = new OfflineFallbackProvider(backend, { path, key, maxAge: HOUR, clock });
    await run.get('app/db-password');
    backend.failing = 'UNAVAILABLE';
    expect(
      isSecretError(await failureOf(run.get('app/db-password', { forceFetch: true })), 'UNAVAILABLE'),
    ).toBe(true);
    expect(((await failureOf(run.get('app/db-password', { version: '1' }))) as Error).name).toBe(
      'ProviderUnavailableError',
    );
    expect(run.stats().served).toBe(0);
    await run.close();
  });
});

describe('maximum age', () => {
  it('refuses a value stored longer ago than maxAge with a typed error and no value', async () => {
    const key = newKey();
    const clock = new ManualClock();
    const { backend } = backendWith();
    const run1 = new OfflineFallbackProvider(backend, { path, key, maxAge: HOUR, clock });
    await run1.get('app/db-password');
    await run1.close();
    const storedAt = clock.now();

    await clock.advance(HOUR - 1);
    const down = new SwitchableBackend({});
    down.failing = 'UNAVAILABLE';
    const run2 = wrap(down, { path, key, maxAge: HOUR, clock });
    await run2.provider.get('app/db-password');
    // The caller's own bound is honoured too.
    const tighter = await failureOf(run2.provider.get('app/db-password', { maxAge: 60_000 }));
    expect(tighter).toBeInstanceOf(FallbackTooOldError);

    await clock.advance(2);
    const error = await failureOf(run2.provider.get('app/db-password'));
    expect(error).toBeInstanceOf(FallbackTooOldError);
    expect(isSecretError(error, 'UNAVAILABLE')).toBe(true);
    expect((error as FallbackTooOldError).storedAt.getTime()).toBe(storedAt);
    expect((error as FallbackTooOldError).maxAge).toBe(HOUR);
    expect((error as Error).message).toMatch(/too old/);
    expect(isSecretError((error as Error).cause, 'UNAVAILABLE')).toBe(true);
    expect(run2.provider.stats()).toMatchObject({ served: 1, refused: 2 });
    received.push(...run2.events);
    await run2.provider.close();
  });

  it('refuses a value past its own expiry (a lease) whatever maxAge says', async () => {
    const key = newKey();
    // The memory store judges expiry by the system clock: both clocks start together.
    const clock = new ManualClock(Date.now());
    const store = new MemoryProvider({ clock });
    const leased = newValue('leased');
    values.push(leased);
    store.store.set('db/creds', leased, { expiresAt: new Date(clock.now() + 60_000) });
    const run = new OfflineFallbackProvider(store, { path, key, maxAge: HOUR, clock, ownsProvider: false });
    await run.get('db/creds');
    await run.flush();
    await run.close();

    await clock.advance(60_000);
    const down = new SwitchableBackend({});
    down.failing = 'UNAVAILABLE';
    const run2 = new OfflineFallbackProvider(down, { path, key, maxAge: HOUR, clock });
    const error = await failureOf(run2.get('db/creds'));
    expect(error).toBeInstanceOf(FallbackTooOldError);
    expect((error as FallbackTooOldError).expiresAt?.getTime()).toBe(clock.now());
    await run2.close();
    await store.close();
  });

  it('re-stores an unchanged value once its stored copy is refreshAfter old, so maxAge counts from the last answer', async () => {
    const key = newKey();
    const clock = new ManualClock();
    const { backend, db } = backendWith();
    const run = new OfflineFallbackProvider(backend, {
      path,
      key,
      maxAge: HOUR,
      refreshAfter: 10 * 60_000,
      clock,
    });
    await run.get('app/db-password');
    await clock.advance(1_000);
    expect(run.stats().writes).toBe(1);
    // Read again and again, unchanged, within refreshAfter: no write.
    for (let i = 0; i < 5; i++) await run.get('app/db-password');
    await clock.advance(1_000);
    expect(run.stats().writes).toBe(1);
    await clock.advance(10 * 60_000);
    await run.get('app/db-password');
    await clock.advance(1_000);
    expect(run.stats().writes).toBe(2);
    await run.close();

    // 55 minutes after that refresh (65 after the first read), the value is still served.
    await clock.advance(55 * 60_000);
    const down = new SwitchableBackend({});
    down.failing = 'UNAVAILABLE';
    const run2 = new OfflineFallbackProvider(down, { path, key, maxAge: HOUR, clock });
    expect((await run2.get('app/db-password')).reveal()).toBe(db);
    await run2.close();
  });
});

describe('encryption and the file', () => {
  it('writes a fresh IV every time, under a versioned header', async () => {
    const key = newKey();
    const clock = new ManualClock();
    const { backend } = backendWith();
    const run = new OfflineFallbackProvider(backend, { path, key, maxAge: HOUR, refreshAfter: 0, clock });
    await run.get('app/db-password');
    await run.flush();
    const first = readFileSync(path);
    await run.get('app/db-password');
    await run.flush();
    const second = readFileSync(path);
    expect(first.subarray(0, 5).toString('latin1')).toBe('SPOF\u0001');
    // Same length (padded), different IV (bytes 22..34) and ciphertext.
    expect(second.length).toBe(first.length);
    expect(second.subarray(22, 34).equals(first.subarray(22, 34))).toBe(false);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir.dir, 'state')).mode & 0o777).toBe(0o700);
    await run.close();
  });

  async function recordedFile(key: Buffer, clock: ManualClock): Promise<void> {
    const { backend } = backendWith();
    const run = new OfflineFallbackProvider(backend, { path, key, maxAge: HOUR, clock });
    await run.get('app/db-password');
    await run.close();
  }

  const tamperings: Array<[string, (bytes: Buffer) => Buffer, string]> = [
    ['a flipped ciphertext bit', (b) => flip(b, 40), 'authentication'],
    ['a flipped tag bit', (b) => flip(b, b.length - 1), 'authentication'],
    ['a changed IV', (b) => flip(b, 25), 'authentication'],
    ['a truncated file', (b) => b.subarray(0, b.length - 100), 'authentication'],
    [
      'an unknown format version',
      (b) => Buffer.concat([b.subarray(0, 4), Buffer.from([9]), b.subarray(5)]),
      'version',
    ],
    ['another file', () => Buffer.from('{"app/db-password":"x"}'), 'format'],
  ];

  it.each(tamperings)(
    'refuses %s with a typed error and serves nothing of it',
    async (_what, tamper, reason) => {
      const key = newKey();
      const clock = new ManualClock();
      await recordedFile(key, clock);
      writeFileSync(path, tamper(readFileSync(path)));

      const down = new SwitchableBackend({});
      down.failing = 'UNAVAILABLE';
      const run = wrap(down, { path, key, maxAge: HOUR, clock });
      const error = await failureOf(run.provider.get('app/db-password'));
      expect(error).toBeInstanceOf(FallbackUnreadableError);
      expect((error as FallbackUnreadableError).reason).toBe(reason);
      expect(isSecretError(error, 'UNAVAILABLE')).toBe(true);
      const reported = run.events.filter((e) => e.type === 'error');
      expect(reported).toHaveLength(1);
      received.push(...run.events);
      await run.provider.close();
    },
  );

  it('refuses a file written with another key, and starts against the backend, replacing the file', async () => {
    const clock = new ManualClock();
    await recordedFile(newKey(), clock);
    const otherKey = newKey();

    const { backend, db } = backendWith();
    const run = wrap(backend, { path, key: otherKey, maxAge: HOUR, clock });
    // The backend answers: the unreadable file is no obstacle.
    expect((await run.provider.get('app/db-password')).reveal()).toBe(db);
    await run.provider.flush();
    const errors = run.events
      .filter((e) => e.type === 'error')
      .map((e) => (e.event as { error: unknown }).error);
    expect(errors).toHaveLength(1);
    expect((errors[0] as FallbackUnreadableError).reason).toBe('authentication');
    received.push(...run.events);
    await run.provider.close();

    // Rewritten under the new key.
    const down = new SwitchableBackend({});
    down.failing = 'UNAVAILABLE';
    const run2 = new OfflineFallbackProvider(down, { path, key: otherKey, maxAge: HOUR, clock });
    expect((await run2.get('app/db-password')).reveal()).toBe(db);
    await run2.close();
  });

  it('takes the key from an environment variable in hex or base64, from a Secret, or from a provider', async () => {
    const clock = new ManualClock();
    const key = newKey();
    await recordedFile(key, clock);
    const sources = [
      { env: 'FALLBACK_KEY' as const, value: key.toString('hex') },
      { env: 'FALLBACK_KEY' as const, value: `${key.toString('base64')}\n` },
      { env: 'FALLBACK_KEY' as const, value: key.toString('base64url') },
    ];
    for (const source of sources) {
      const down = new SwitchableBackend({});
      down.failing = 'UNAVAILABLE';
      const run = new OfflineFallbackProvider(down, {
        path,
        key: { env: source.env },
        env: { FALLBACK_KEY: source.value },
        maxAge: HOUR,
        clock,
      });
      await run.get('app/db-password');
      await run.close();
    }
    const bySecret = new OfflineFallbackProvider(
      Object.assign(new SwitchableBackend({}), { failing: 'UNAVAILABLE' as const }),
      { path, key: new Secret(key.toString('hex')), maxAge: HOUR, clock },
    );
    await bySecret.get('app/db-password');
    await bySecret.close();

    const keys = new MemoryProvider({ initial: { 'fallback-key': key.toString('base64') } });
    const byProvider = new OfflineFallbackProvider(
      Object.assign(new SwitchableBackend({}), { failing: 'UNAVAILABLE' as const }),
      { path, key: { provider: keys, key: 'fallback-key' }, maxAge: HOUR, clock },
    );
    await byProvider.get('app/db-password');
    await byProvider.close();
    await keys.close();
  });

  it('refuses a key that is not 32 bytes at construction, naming the source and not the key', () => {
    const backend = new MemoryProvider();
    const short = newKey().subarray(0, 31);
    const cases: Array<() => unknown> = [
      () => new OfflineFallbackProvider(backend, { path, key: short, maxAge: HOUR }),
      () =>
        new OfflineFallbackProvider(backend, { path, key: new Secret(short.toString('hex')), maxAge: HOUR }),
      () => new OfflineFallbackProvider(backend, { path, key: new Secret('not a key at all'), maxAge: HOUR }),
      () =>
        new OfflineFallbackProvider(backend, {
          path,
          key: { env: 'K' },
          env: { K: Buffer.concat([newKey(), newKey()]).toString('base64') },
          maxAge: HOUR,
        }),
      () => new OfflineFallbackProvider(backend, { path, key: { env: 'K' }, env: {}, maxAge: HOUR }),
      () => new OfflineFallbackProvider(backend, { path, key: newKey(), maxAge: 0 }),
      () => new OfflineFallbackProvider(backend, { path, key: newKey() } as never),
      () => new OfflineFallbackProvider(backend, { path: '', key: newKey(), maxAge: HOUR }),
    ];
    for (const make of cases) {
      let thrown: unknown;
      try {
        make();
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(InvalidConfigError);
      received.push(thrown);
    }
    values.push(short.toString('hex'), short.toString('base64'), 'not a key at all');
  });

  it('a key from a provider that is not 32 bytes fails when first needed, as an unusable fallback', async () => {
    const clock = new ManualClock();
    await recordedFile(newKey(), clock);
    const keys = new MemoryProvider({ initial: { 'fallback-key': 'too-short' } });
    values.push('too-short');
    const down = new SwitchableBackend({});
    down.failing = 'UNAVAILABLE';
    const run = wrap(down, { path, key: { provider: keys, key: 'fallback-key' }, maxAge: HOUR, clock });
    const error = await failureOf(run.provider.get('app/db-password'));
    expect(error).toBeInstanceOf(FallbackUnreadableError);
    expect((error as FallbackUnreadableError).reason).toBe('key');
    received.push(...run.events);
    await run.provider.close();
    await keys.close();
  });

  it('derives the file key with HKDF from longer key material, with a salt per write', async () => {
    const clock = new ManualClock();
    const material = new Secret(newValue('a-long-random-token-of-more-than-32-bytes'));
    const { backend, db } = backendWith();
    const run = new OfflineFallbackProvider(backend, {
      path,
      key: material,
      keyDerivation: 'hkdf-sha256',
      maxAge: HOUR,
      clock,
    });
    await run.get('app/db-password');
    await run.close();
    const bytes = readFileSync(path);
    expect(bytes[5]).toBe(1);
    expect(bytes.subarray(6, 22).equals(Buffer.alloc(16))).toBe(false);

    const down = new SwitchableBackend({});
    down.failing = 'UNAVAILABLE';
    const run2 = new OfflineFallbackProvider(down, {
      path,
      key: material,
      keyDerivation: 'hkdf-sha256',
      maxAge: HOUR,
      clock,
    });
    expect((await run2.get('app/db-password')).reveal()).toBe(db);
    await run2.close();
    // The material used as a raw key does not open it.
    expect(() => new OfflineFallbackProvider(down, { path, key: material, maxAge: HOUR })).toThrow(
      InvalidConfigError,
    );
  });
});

describe('write-behind', () => {
  it('resolves gets before any write, coalesces them into one write, and flushes on close', async () => {
    const clock = new ManualClock();
    const backend = new MemoryProvider();
    const names = Array.from({ length: 50 }, (_, i) => `k${i}`);
    for (const name of names) {
      const value = newValue(name);
      values.push(value);
      backend.store.set(name, value);
    }
    const run = new OfflineFallbackProvider(backend, { path, key: newKey(), maxAge: HOUR, clock });
    await Promise.all(names.map((name) => run.get(name)));
    expect(existsSync(path)).toBe(false);
    expect(run.stats().writes).toBe(0);
    await run.close();
    expect(run.stats().writes).toBe(1);
    expect(existsSync(path)).toBe(true);
    expect(isSecretError(await failureOf(run.get('k1')), 'CLOSED')).toBe(true);
  });

  it('keeps at most maxEntries keys, dropping those stored longest ago', async () => {
    const clock = new ManualClock();
    const backend = new MemoryProvider({ initial: { a: newValue('a'), b: newValue('b'), c: newValue('c') } });
    const key = newKey();
    const run = new OfflineFallbackProvider(backend, { path, key, maxAge: HOUR, maxEntries: 2, clock });
    for (const name of ['a', 'b', 'c']) {
      await run.get(name);
      await clock.advance(10);
    }
    expect(run.stats().entries).toBe(2);
    await run.close();
    const down = new SwitchableBackend({});
    down.failing = 'UNAVAILABLE';
    const run2 = new OfflineFallbackProvider(down, { path, key, maxAge: HOUR, clock });
    expect(isSecretError(await failureOf(run2.get('a')), 'UNAVAILABLE')).toBe(true);
    expect((await failureOf(run2.get('a'))) instanceof FallbackTooOldError).toBe(false);
    await run2.get('b');
    await run2.get('c');
    await run2.close();
  });

  it('reports a failed write as an error event, and the get it followed still resolved', async () => {
    const clock = new ManualClock();
    const { backend, db } = backendWith();
    // The file's directory is a regular file: every write fails.
    writeFileSync(join(dir.dir, 'state'), 'not a directory');
    const run = wrap(backend, { path, key: newKey(), maxAge: HOUR, clock });
    expect((await run.provider.get('app/db-password')).reveal()).toBe(db);
    await run.provider.flush();
    expect(run.provider.stats().writeFailures).toBeGreaterThan(0);
    const errors = run.events.filter((e) => e.type === 'error');
    expect(errors.length).toBeGreaterThan(0);
    expect(isSecretError((errors[0]?.event as { error?: unknown } | undefined)?.error, 'UNAVAILABLE')).toBe(
      true,
    );
    // Not retried in a loop: time passing alone writes nothing.
    const failures = run.provider.stats().writeFailures;
    await clock.advance(60_000);
    expect(run.provider.stats().writeFailures).toBe(failures);
    // The next recorded value retries, and the disk is fine again.
    rmSync(join(dir.dir, 'state'));
    await run.provider.get('app/api-token');
    await clock.advance(1_000);
    expect(run.provider.stats().writes).toBe(1);
    expect(existsSync(path)).toBe(true);
    received.push(...run.events);
    await run.provider.close();
  });
});

function flip(bytes: Buffer, at: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[at] = (copy[at] ?? 0) ^ 1;
  return copy;
}
