import { isSecretError } from '@secret-provider/core';
import { rejection, waitFor } from '@secret-provider/testing';
import { ManualClock } from '@secret-provider/vault';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Setup, settle, setup } from './helpers.js';

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
beforeAll(() => {
  process.on('unhandledRejection', onUnhandled);
});
afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
  // Every fault below was survived without a stray promise rejection.
  expect(unhandled).toEqual([]);
});

const gapsOf = (times: number[]) => times.slice(1).map((t, i) => t - (times[i] as number));

let current: Setup | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

async function onClock(options: Parameters<typeof setup>[0] = {}) {
  const clock = new ManualClock();
  const s = await setup({ clock, watch: false, ...options });
  current = s;
  s.double.kvPut('secret', 'app', { value: 'v1' });
  return { s, clock };
}

describe('rate limiting (429)', () => {
  it('waits exactly the Retry-After the quota sends, then succeeds', async () => {
    const { s, clock } = await onClock();
    await s.provider.connect();
    s.double.rateLimit({ count: 2, retryAfter: 7 });
    s.double.clearLog();
    expect((await settle(s.provider.get('secret/app'), clock)).reveal()).toBe('v1');
    expect(s.double.requests.map((r) => r.status)).toEqual([429, 429, 200]);
    expect(gapsOf(s.double.requests.map((r) => r.at))).toEqual([7_000, 7_000]);
  });

  it('backs off exponentially with jitter when a bare 429 gives no Retry-After', async () => {
    const { s, clock } = await onClock({
      provider: () => ({ retry: { baseDelayMs: 200, maxDelayMs: 10_000, retries: 3 }, random: () => 0.5 }),
    });
    await s.provider.connect();
    s.double.rateLimit({ count: 3 });
    s.double.clearLog();
    await settle(s.provider.get('secret/app'), clock);
    const gaps = gapsOf(s.double.requests.map((r) => r.at));
    // base * 2^n, half of it random (random() = 0.5 here): 150, 300, 600.
    expect(gaps).toEqual([150, 300, 600]);
  });

  it('fails at once with RATE_LIMITED and retryAfterMs when Vault asks for longer than allowed inline', async () => {
    const { s } = await onClock({ provider: () => ({ retry: { maxRetryAfterMs: 5_000 } }) });
    await s.provider.connect();
    s.double.rateLimit({ retryAfter: 120 });
    const error = await rejection(s.provider.get('secret/app'));
    expect(isSecretError(error, 'RATE_LIMITED')).toBe(true);
    expect((error as { retryAfterMs?: number }).retryAfterMs).toBe(120_000);
    expect((error as { retryable?: boolean }).retryable).toBe(true);
    expect(s.double.count((r) => r.path === 'secret/data/app')).toBe(1);
  });
});

describe('holding back while throttled', () => {
  it('sends nothing more until the Retry-After has passed: later calls fail fast with RATE_LIMITED', async () => {
    const { s, clock } = await onClock({ provider: () => ({ retry: { maxRetryAfterMs: 5_000 } }) });
    await s.provider.connect();
    s.double.rateLimit({ count: 1, retryAfter: 60 });
    s.double.clearLog();
    expect(isSecretError(await rejection(s.provider.get('secret/app')), 'RATE_LIMITED')).toBe(true);
    await clock.advance(30_000);
    const held = await rejection(s.provider.get('secret/app'));
    expect(isSecretError(held, 'RATE_LIMITED')).toBe(true);
    expect((held as { retryAfterMs?: number }).retryAfterMs).toBe(30_000);
    expect(s.double.count()).toBe(1);
    await clock.advance(30_000);
    expect((await s.provider.get('secret/app')).reveal()).toBe('v1');
    expect(s.provider.stats().rateLimited).toBe(1);
  });

  it('probes once per Retry-After from the refresh loop, then spreads the backlog over an interval', async () => {
    const clock = new ManualClock();
    const s = await setup({
      clock,
      watch: false,
      provider: () => ({
        random: () => 0.5,
        staticRefresh: { intervals: { 'secret/**': 60 }, loopIntervalMs: 1_000 },
      }),
    });
    current = s;
    for (let i = 0; i < 10; i++) s.double.kvPut('secret', `k${i}`, { value: `v${i}` });
    for (let i = 0; i < 10; i++) await s.provider.get(`secret/k${i}`);
    s.double.rateLimit({ retryAfter: 30 });
    s.double.clearLog();
    await clock.advance(300_000);
    // 300 s of throttling, 30 s Retry-After: about ten probes (plus the first batch in flight when
    // the first 429 came), not ten secrets re-read on every back-off.
    const probes = s.double.count((r) => r.status === 429);
    expect(probes).toBeGreaterThanOrEqual(8);
    expect(probes).toBeLessThanOrEqual(14);
    s.double.clearRateLimit();
    s.double.clearLog();
    await clock.advance(31_000);
    // The first tick after the hold sends one probe; the others are spread, not sent together.
    expect(s.double.count()).toBeLessThanOrEqual(6);
    await clock.advance(60_000);
    expect(s.double.count()).toBeGreaterThanOrEqual(10);
    for (let i = 0; i < 10; i++) expect((await s.provider.get(`secret/k${i}`)).reveal()).toBe(`v${i}`);
  });

  it('honours Retry-After from a custom node-vault transport that returns headers', async () => {
    const { createRequire } = await import('node:module');
    const nodeVault = createRequire(import.meta.url)('node-vault') as (options: object) => never;
    const { VaultProvider } = await import('@secret-provider/vault');
    const clock = new ManualClock();
    const seen: number[] = [];
    let calls = 0;
    const client = nodeVault({
      endpoint: 'http://vault.example:8200',
      'request-promise': {
        defaults: () => async (options: { uri: string }) => {
          seen.push(clock.now());
          calls++;
          const path = new URL(options.uri).pathname;
          if (path.endsWith('lookup-self'))
            return { statusCode: 200, body: { data: { ttl: 0 } }, request: { path } };
          if (calls <= 2)
            return {
              statusCode: 429,
              headers: { 'retry-after': '9' },
              body: { errors: [] },
              request: { path },
            };
          return {
            statusCode: 200,
            body: { data: { data: { value: 'x' }, metadata: { version: 1 } } },
            request: { path },
          };
        },
      },
    });
    const provider = new VaultProvider({ client, auth: { method: 'token', token: 't' }, clock, env: {} });
    expect((await settle(provider.get('secret/app'), clock)).reveal()).toBe('x');
    expect(seen.slice(1).map((t) => t - (seen[1] as number))).toEqual([0, 9_000]);
    await provider.close();
  });
});

describe('unavailability', () => {
  it('recovers from a sealed Vault (503) with back-off', async () => {
    const { s, clock } = await onClock();
    await s.provider.connect();
    s.double.seal();
    s.double.clearLog();
    const pending = s.provider.get('secret/app');
    await waitFor(() => s.double.count() >= 1);
    s.double.unseal();
    expect((await settle(pending, clock)).reveal()).toBe('v1');
    expect(s.double.requests.map((r) => r.status)).toEqual([503, 200]);
  });

  it('reports a Vault that stays sealed as UNAVAILABLE (503, retryable) after bounded retries', async () => {
    const { s, clock } = await onClock({ provider: () => ({ retry: { retries: 2, baseDelayMs: 100 } }) });
    await s.provider.connect();
    s.double.seal();
    s.double.clearLog();
    const error = await settle(rejection(s.provider.get('secret/app')), clock);
    expect(isSecretError(error, 'UNAVAILABLE')).toBe(true);
    expect((error as { status?: number }).status).toBe(503);
    expect((error as Error).message).toContain('Vault is sealed');
    expect(s.double.count()).toBe(3);
  });

  it('recovers when connections are refused for a while', async () => {
    const { s, clock } = await onClock();
    await s.provider.connect();
    await s.double.stopListening();
    const before = s.provider.stats().requests;
    const pending = s.provider.get('secret/app');
    await waitFor(() => s.provider.stats().requests > before);
    await s.double.resumeListening();
    expect((await settle(pending, clock)).reveal()).toBe('v1');
    expect(s.provider.stats().retries).toBeGreaterThanOrEqual(1);
  });

  it('retries a timed-out read, but never a write that may have reached Vault', async () => {
    const s = await setup({ watch: false, provider: () => ({ requestTimeoutMs: 150 }) });
    current = s;
    s.double.kvPut('secret', 'app', { value: 'v1' });
    await s.provider.connect();
    s.double.fail({ kind: 'hang', match: 'secret/data/app' });
    expect((await s.provider.get('secret/app')).reveal()).toBe('v1');
    s.double.clearLog();
    s.double.fail({ kind: 'hang', match: 'secret/data/app' });
    const error = await rejection(s.provider.set('secret/app', 'v2'));
    expect(isSecretError(error, 'TIMEOUT')).toBe(true);
    expect(s.double.count((r) => r.method === 'POST')).toBe(1);
  });

  it('follows a standby’s 307 to the active node for reads, writes and lists', async () => {
    const s = await setup({ watch: false });
    current = s;
    s.double.setStandby('redirect');
    await s.provider.set('secret/app/db#password', 'p');
    expect((await s.provider.get('secret/app/db#password')).reveal()).toBe('p');
    expect(await s.provider.keys({ prefix: 'secret/app/' })).toEqual(['secret/app/db']);
    expect(s.double.requests.filter((r) => r.listener === 'primary').every((r) => r.status === 307)).toBe(
      true,
    );
    const active = s.double.requests.filter((r) => r.listener === 'active');
    expect(active.length).toBe(s.double.requests.length / 2);
    expect(active.every((r) => r.status !== 307)).toBe(true);
  });
});

describe('request headers', () => {
  it('sends X-Vault-Request, so a Vault Agent or Proxy requiring it answers', async () => {
    const s = await setup({ watch: false });
    current = s;
    s.double.kvPut('secret', 'app', { value: 'v' });
    s.double.state.requireRequestHeader = true;
    expect((await s.provider.get('secret/app')).reveal()).toBe('v');
  });

  it('re-authenticates once on a 401 from a proxy, as on an invalid token', async () => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'vault-401-'));
    const tokenFile = join(dir, 'token');
    const s = await setup({ watch: false, provider: () => ({ auth: { method: 'token', tokenFile } }) });
    current = {
      ...s,
      close: async () => {
        await s.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
    await writeFile(tokenFile, s.double.rootToken);
    s.double.kvPut('secret', 'app', { value: 'v' });
    await s.provider.connect();
    s.double.fail({ kind: 'status', status: 401, body: { errors: [] }, match: 'secret/' });
    expect((await s.provider.get('secret/app')).reveal()).toBe('v');
    expect(s.provider.stats().reauthentications).toBe(1);
  });
});

describe('correlation ids and namespaces', () => {
  it('sends a fresh correlation id on every request, in a configurable header', async () => {
    const s = await setup({ watch: false, provider: () => ({ namespace: 'team-a' }) });
    current = s;
    s.double.kvPut('secret', 'app', { value: 'v' });
    for (let i = 0; i < 5; i++) await s.provider.get('secret/app');
    const ids = s.double.requests.map((r) => r.operationId);
    expect(ids.every((id) => typeof id === 'string' && id.length > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect(s.double.requests.every((r) => r.namespace === 'team-a')).toBe(true);

    const custom = await setup({
      watch: false,
      provider: () => ({ correlationHeader: 'X-Request-Id', correlationId: () => 'fixed-id' }),
    });
    await custom.provider.connect();
    expect(custom.double.requests[0]?.headers['x-request-id']).toBe('fixed-id');
    await custom.close();
  });
});

describe('stale values from the cache while Vault fails', () => {
  const faults = {
    sealed: (s: Setup) => s.double.seal(),
    'rate limited (Retry-After)': (s: Setup) => s.double.rateLimit({ retryAfter: 120 }),
    'connection refused': (s: Setup) => s.double.stopListening(),
  };
  for (const [name, inject] of Object.entries(faults)) {
    it(`serves the last good value within staleIfError when ${name}, then the error`, async () => {
      const clock = new ManualClock();
      const s = await setup({
        clock,
        watch: false,
        provider: () => ({
          cache: { ttl: 60_000, staleIfError: 300_000, jitter: 0, now: () => clock.now() },
          retry: { retries: 1, baseDelayMs: 100 },
        }),
      });
      current = s;
      s.double.kvPut('secret', 'app', { value: 'v1' });
      expect((await s.provider.get('secret/app')).reveal()).toBe('v1');
      await inject(s);
      await clock.advance(61_000);
      expect((await settle(s.provider.get('secret/app'), clock)).reveal()).toBe('v1');
      await clock.advance(200_000);
      expect((await settle(s.provider.get('secret/app'), clock)).reveal()).toBe('v1');
      expect(s.provider.cacheStats()?.staleServed).toBe(2);
      await clock.advance(120_000);
      const error = await settle(rejection(s.provider.get('secret/app')), clock);
      expect(isSecretError(error)).toBe(true);
      expect((error as { retryable?: boolean }).retryable).toBe(true);
      if (name === 'connection refused') await s.double.resumeListening();
    });
  }
});
