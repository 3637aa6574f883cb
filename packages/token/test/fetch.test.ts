import { createEmitter, isSecretError } from '@secret-provider/core';
import { ManualClock } from '@secret-provider/core/adapter';
import { MemoryProvider } from '@secret-provider/memory';
import { expectNoLeak, rejection } from '@secret-provider/testing';
import { fixedToken, jwtIssuer, TokenSource } from '@secret-provider/token';
import { afterEach, describe, expect, it } from 'vitest';
import { keyPair, ResourceServer } from './servers.js';

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

const key = keyPair('ES256');

async function setup(options: { fixed?: string; rateLimitPause?: number } = {}) {
  const clock = new ManualClock();
  const keys = new MemoryProvider({ initial: { k: key.privatePem } });
  const server = await new ResourceServer(clock, [key.publicKey]).listen();
  const source = new TokenSource({
    issuer:
      options.fixed === undefined
        ? jwtIssuer({ privateKey: { provider: keys, key: 'k' }, algorithm: 'ES256', claims: { sub: 'svc' } })
        : fixedToken(options.fixed),
    clock,
    random: () => 0.5,
  });
  const seen: unknown[] = [];
  const codes: string[] = [];
  const emitter = createEmitter();
  emitter.on('*', (_type, event) => seen.push(event));
  emitter.on('warning', (event) => codes.push(event.code));
  emitter.on('rotated', () => codes.push('rotated'));
  source.watch(emitter);
  const api = source.createFetch(
    options.rateLimitPause === undefined ? {} : { rateLimitPause: options.rateLimitPause },
  );
  cleanup.push(
    () => server.close(),
    () => keys.close(),
    () => source.close(),
  );
  return { clock, server, source, api, seen, codes, url: `${server.url}/resource` };
}

/** Moves simulated time in steps until `promise` settles (a wait on the clock inside it). */
async function drive<T>(clock: ManualClock, promise: Promise<T>, stepMs = 50): Promise<T> {
  let settled = false;
  promise.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  for (let i = 0; i < 10_000 && !settled; i++) await clock.advance(stepMs);
  return promise;
}

describe('the fetch wrapper', () => {
  it('carries the bearer token', async () => {
    const { api, url, server, source } = await setup();
    const response = await api(url, { headers: { 'x-request': '1' } });
    expect(response.status).toBe(200);
    expect(server.tokens[0]).toBe((await source.token()).reveal());
  });

  it('on a 401 refreshes once, retries once and warns', async () => {
    const { api, url, server, source, codes, seen } = await setup();
    const first = (await source.token()).reveal();
    server.revoked.add(first);
    const response = await api(url, { method: 'POST', body: 'payload-replayed' });
    expect(response.status).toBe(200);
    expect(server.tokens).toHaveLength(2);
    expect(server.tokens[0]).toBe(first);
    expect(server.tokens[1]).not.toBe(first);
    expect(codes).toEqual(['TOKEN_REJECTED', 'rotated']);
    expectNoLeak(seen, [...server.tokens]);
  });

  it('a second 401 is ACCESS_DENIED, naming no token', async () => {
    const { api, url, server, seen } = await setup();
    server.refuseAll = true;
    const error = await rejection(api(url));
    expect(isSecretError(error, 'ACCESS_DENIED')).toBe(true);
    expect(server.refused).toBe(2);
    expectNoLeak([error, ...seen], [...server.tokens]);
  });

  it('100 concurrent callers refused with the same token share one refresh', async () => {
    const { api, url, server, source, codes } = await setup();
    server.revoked.add((await source.token()).reveal());
    const responses = await Promise.all(Array.from({ length: 100 }, () => api(url)));
    expect(responses.every((r) => r.status === 200)).toBe(true);
    await Promise.all(responses.map((r) => r.arrayBuffer()));
    expect(server.refused).toBe(100);
    expect(server.served).toBe(100);
    expect(codes.filter((c) => c === 'rotated')).toHaveLength(1);
    expect(source.stats()).toMatchObject({ issued: 2, rejections: 1 });
  });

  it('on a 429 warns, waits the Retry-After on the clock, and retries once', async () => {
    const { api, url, server, clock, codes } = await setup();
    server.scripted.push({ status: 429, headers: { 'retry-after': '7' } });
    const response = await drive(clock, api(url));
    expect(response.status).toBe(200);
    const [throttledAt, retriedAt] = server.at as [number, number];
    // Retry-After 7 s, spread by 10 % at most (here 5 %), plus the simulation's steps taken while
    // the requests were on the wire (real I/O while simulated time moves).
    expect(retriedAt - throttledAt).toBeGreaterThanOrEqual(7_350);
    expect(retriedAt - throttledAt).toBeLessThanOrEqual(7_350 + 500);
    expect(codes).toEqual(['RATE_LIMITED']);
  });

  it('on a 429 without Retry-After waits the configured pause (default 2 s); a second 429 is RATE_LIMITED', async () => {
    const { api, url, server, clock } = await setup();
    server.scripted.push({ status: 429 });
    expect((await drive(clock, api(url))).status).toBe(200);
    const [a, b] = server.at as [number, number];
    expect(b - a).toBeGreaterThanOrEqual(2_100);
    expect(b - a).toBeLessThanOrEqual(2_100 + 500);

    server.scripted.push(
      { status: 429, headers: { 'retry-after': '1' } },
      { status: 429, headers: { 'retry-after': '3' } },
    );
    const error = await rejection(drive(clock, api(url)));
    expect(isSecretError(error, 'RATE_LIMITED')).toBe(true);
    expect((error as { retryAfterMs: number }).retryAfterMs).toBe(3_000);
  });

  it('does not wait out a Retry-After longer than maxRateLimitWait', async () => {
    const { url, server, source } = await setup();
    const api = source.createFetch({ maxRateLimitWait: 10_000 });
    server.scripted.push({ status: 429, headers: { 'retry-after': '3600' } });
    const error = await rejection(api(url));
    expect(isSecretError(error, 'RATE_LIMITED')).toBe(true);
    expect(server.at).toHaveLength(1);
  });

  it('uses a fixed token, and a 401 of it is ACCESS_DENIED at once, with warnings', async () => {
    const fixed = 'pat-9d8c7b6a5f4e3d2c';
    const { api, url, server, codes, seen } = await setup({ fixed });
    server.revoked.add(fixed);
    const error = await rejection(api(url));
    expect(isSecretError(error, 'ACCESS_DENIED')).toBe(true);
    expect(server.tokens).toEqual([fixed]);
    expect(codes).toEqual(['TOKEN_NOT_REFRESHABLE', 'TOKEN_REJECTED']);
    expectNoLeak([error, ...seen], [fixed]);
  });

  it('reports an unreachable server as UNAVAILABLE without the request in it', async () => {
    const { api, server, source } = await setup();
    const url = `${server.url}/resource`;
    await server.close();
    cleanup.splice(0, 1);
    const error = await rejection(api(url));
    expect(isSecretError(error, 'UNAVAILABLE')).toBe(true);
    expectNoLeak([error], [(await source.token()).reveal()]);
  });
});
