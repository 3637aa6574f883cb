import { createEmitter, isSecretError, type SecretEvents } from '@secret-provider/core';
import { ManualClock } from '@secret-provider/core/adapter';
import { MemoryProvider } from '@secret-provider/memory';
import { expectNoLeak, rejection } from '@secret-provider/testing';
import { jwtIssuer, TokenSource } from '@secret-provider/token';
import { afterEach, describe, expect, it } from 'vitest';
import { keyPair, ResourceServer } from './servers.js';

const HOUR = 3_600_000;
const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

function collect(source: TokenSource) {
  const seen: unknown[] = [];
  const emitter = createEmitter();
  emitter.on('*', (_type, event) => seen.push(event));
  source.watch(emitter);
  const of = (type: keyof SecretEvents) => {
    const out: SecretEvents[keyof SecretEvents][] = [];
    emitter.on(type, (event) => out.push(event));
    return out;
  };
  return { seen, of };
}

async function setup(algorithm: 'RS256' | 'ES256') {
  const clock = new ManualClock();
  const key = keyPair(algorithm);
  const keys = new MemoryProvider({ initial: { 'svc/signing-key': key.privatePem } });
  const server = await new ResourceServer(clock, [key.publicKey]).listen();
  const source = new TokenSource({
    issuer: jwtIssuer({
      privateKey: { provider: keys, key: 'svc/signing-key' },
      algorithm,
      keyId: 'k1',
      claims: { iss: 'svc-a', sub: 'svc-a', aud: 'api' },
    }),
    clock,
    lifetime: 300_000,
  });
  cleanup.push(
    () => server.close(),
    () => keys.close(),
    () => source.close(),
  );
  return { clock, key, keys, server, source };
}

describe.each(['RS256', 'ES256'] as const)('JWT %s', (algorithm) => {
  it('a simulated day of requests: every token verifies, none is sent expired', async () => {
    const { clock, server, source } = await setup(algorithm);
    const { seen, of } = collect(source);
    const rotated = of('rotated');
    const api = source.createFetch();
    const values = new Set<string>();
    // A request every 53 s of simulated time, for 24 h.
    for (let elapsed = 0; elapsed < 24 * HOUR; elapsed += 53_000) {
      const response = await api(`${server.url}/resource`);
      expect(response.status).toBe(200);
      await response.arrayBuffer();
      await clock.advance(53_000);
    }
    for (const token of server.tokens) values.add(token);
    expect(server.expired).toBe(0);
    expect(server.badSignature).toBe(0);
    expect(server.served).toBe(server.tokens.length);
    expect(server.served).toBe(Math.ceil((24 * HOUR) / 53_000));
    // 5-minute tokens refreshed 30-45 s before their end: 24 h / (255..270 s) refreshes.
    expect(rotated.length).toBeGreaterThanOrEqual(319);
    expect(rotated.length).toBeLessThanOrEqual(339);
    expect(values.size).toBeGreaterThan(300);
    expectNoLeak(seen, [...values]);
  }, 60_000);

  it('signs with iat, exp, jti and the configured claims, verifiable with the public key', async () => {
    const { clock, server, source } = await setup(algorithm);
    const token = (await source.token()).reveal();
    const claims = server.verify(token);
    expect(claims).toMatchObject({ iss: 'svc-a', sub: 'svc-a', aud: 'api' });
    const { iat, exp, jti } = claims as { iat: number; exp: number; jti: string };
    expect(iat).toBe(Math.floor(clock.now() / 1000));
    expect(exp - iat).toBe(300);
    expect(jti).toMatch(/^[0-9a-f-]{36}$/);
    const header = JSON.parse(Buffer.from(token.split('.')[0] as string, 'base64url').toString());
    expect(header).toEqual({ alg: algorithm, typ: 'JWT', kid: 'k1' });
  });

  it('re-signs when the key rotates in its provider; the old key is then no longer needed', async () => {
    const { server, keys, source } = await setup(algorithm);
    const { seen, of } = collect(source);
    const rotated = of('rotated');
    const first = (await source.token()).reveal();
    const next = keyPair(algorithm);
    // The verifier trusts only the new key from now on.
    server.trusted = [next.publicKey];
    expect(server.verify(first)).toBe('bad-signature');
    await keys.set('svc/signing-key', next.privatePem);
    await expect.poll(() => rotated.length, { timeout: 5_000 }).toBe(1);
    const second = (await source.token()).reveal();
    expect(second).not.toBe(first);
    expect(server.verify(second)).toMatchObject({ sub: 'svc-a' });
    expectNoLeak(seen, [first, second, next.privatePem]);
  });
});

describe('JWT key errors', () => {
  it('refuses a key of the wrong type or one that is no key, naming neither its text nor its parts', async () => {
    const clock = new ManualClock();
    const rsa = keyPair('RS256');
    const notAKey = 'ssh-secret-material-0d9c6b1a';
    const keys = new MemoryProvider({ initial: { rsa: rsa.privatePem, junk: notAKey } });
    const wrongType = new TokenSource({
      issuer: jwtIssuer({ privateKey: { provider: keys, key: 'rsa' }, algorithm: 'ES256' }),
      clock,
    });
    const junk = new TokenSource({
      issuer: jwtIssuer({ privateKey: { provider: keys, key: 'junk' }, algorithm: 'RS256' }),
      clock,
    });
    const missing = new TokenSource({
      issuer: jwtIssuer({ privateKey: { provider: keys, key: 'absent' }, algorithm: 'RS256' }),
      clock,
    });
    cleanup.push(
      () => keys.close(),
      () => wrongType.close(),
      () => junk.close(),
      () => missing.close(),
    );
    const errors = [
      await rejection(wrongType.token()),
      await rejection(junk.token()),
      await rejection(missing.token()),
    ];
    expect(errors.map((e) => (e as { code: string }).code)).toEqual([
      'INVALID_CONFIG',
      'INVALID_CONFIG',
      'ACCESS_DENIED',
    ]);
    expect((errors[0] as Error).message).toContain('needs a P-256 EC key');
    expect(isSecretError(errors[2], 'ACCESS_DENIED')).toBe(true);
    const pemBody = rsa.privatePem.split('\n').slice(1, -2).join('');
    expectNoLeak(errors, [notAKey, rsa.privatePem, pemBody.slice(0, 40)], { encodings: true });
  });

  it('refuses reserved claims and unknown algorithms at construction', () => {
    const keys = new MemoryProvider();
    expect(() =>
      jwtIssuer({ privateKey: { provider: keys, key: 'k' }, algorithm: 'RS256', claims: { exp: 1 } }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    expect(() =>
      jwtIssuer({ privateKey: { provider: keys, key: 'k' }, algorithm: 'HS256' as 'RS256' }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
  });
});
