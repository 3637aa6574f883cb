import { createEmitter, isSecretError } from '@secret-provider/core';
import { ManualClock } from '@secret-provider/core/adapter';
import { MemoryProvider } from '@secret-provider/memory';
import { expectNoLeak, rejection } from '@secret-provider/testing';
import { clientCredentials, TokenSource } from '@secret-provider/token';
import { afterEach, describe, expect, it } from 'vitest';
import { ResourceServer, TokenEndpoint } from './servers.js';

const HOUR = 3_600_000;
const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function setup(options: { authentication?: 'basic' | 'body'; scope?: string[] } = {}) {
  const clock = new ManualClock();
  const endpoint = await new TokenEndpoint(clock).listen();
  const server = await new ResourceServer(clock, [endpoint.publicKey]).listen();
  const secrets = new MemoryProvider({ initial: { 'svc/client-secret': endpoint.clientSecret } });
  const source = new TokenSource({
    issuer: clientCredentials({
      tokenUrl: `${endpoint.url}/token`,
      clientId: endpoint.clientId,
      clientSecret: { provider: secrets, key: 'svc/client-secret' },
      ...options,
    }),
    clock,
  });
  const seen: unknown[] = [];
  const emitter = createEmitter();
  emitter.on('*', (_type, event) => seen.push(event));
  source.watch(emitter);
  cleanup.push(
    () => endpoint.close(),
    () => server.close(),
    () => secrets.close(),
    () => source.close(),
  );
  return { clock, endpoint, server, secrets, source, seen };
}

describe('OAuth2 client credentials', () => {
  it('posts a form-encoded client credentials grant (RFC 6749 §4.4) with HTTP Basic, and uses expires_in', async () => {
    const { clock, endpoint, source } = await setup({ scope: ['read', 'write'] });
    endpoint.expiresIn = 600;
    const current = await source.current();
    expect(current.expiresAt?.getTime()).toBe(clock.now() + 600_000);
    const [request] = endpoint.received;
    expect(request?.contentType).toBe('application/x-www-form-urlencoded');
    expect(request?.basic).toBe(true);
    expect(request?.form.get('grant_type')).toBe('client_credentials');
    expect(request?.form.get('scope')).toBe('read write');
    expect(request?.form.has('client_secret')).toBe(false);
  });

  it('can send the client credentials in the form body', async () => {
    const { endpoint, source } = await setup({ authentication: 'body' });
    await source.token();
    expect(endpoint.received[0]?.basic).toBe(false);
    expect(endpoint.received[0]?.form.get('client_id')).toBe(endpoint.clientId);
  });

  it('a simulated day through the fetch wrapper: no request carries an expired token', async () => {
    const { clock, endpoint, server, source, seen } = await setup();
    endpoint.expiresIn = 120;
    const api = source.createFetch();
    for (let elapsed = 0; elapsed < 24 * HOUR; elapsed += 97_000) {
      const response = await api(`${server.url}/resource`);
      expect(response.status).toBe(200);
      await response.arrayBuffer();
      await clock.advance(97_000);
    }
    expect(server.expired).toBe(0);
    expect(server.badSignature).toBe(0);
    // 2-minute tokens refreshed 30-45 s early: one request per 75-90 s.
    expect(endpoint.requests).toBeGreaterThanOrEqual(960);
    expect(endpoint.requests).toBeLessThanOrEqual(1153);
    expectNoLeak(seen, [...new Set(server.tokens), endpoint.clientSecret]);
  }, 60_000);

  it.each([
    [401, 'invalid_client', 'ACCESS_DENIED', '(invalid_client)'],
    [400, 'invalid_grant', 'ACCESS_DENIED', '(invalid_grant)'],
    [400, 'unauthorized_client', 'ACCESS_DENIED', '(unauthorized_client)'],
    [400, 'invalid_scope', 'INVALID_CONFIG', '(invalid_scope)'],
    [400, 'invalid_request', 'INVALID_CONFIG', '(invalid_request)'],
    [400, 'unsupported_grant_type', 'INVALID_CONFIG', '(unsupported_grant_type)'],
    [400, 'a_made_up_code', 'UNAVAILABLE', 'without an RFC 6749 error code'],
    [403, undefined, 'ACCESS_DENIED', 'HTTP 403'],
    [500, 'server_error', 'UNAVAILABLE', 'HTTP 500'],
    [503, undefined, 'UNAVAILABLE', 'HTTP 503'],
  ] as const)(
    'maps HTTP %i with error %s to %s, keeping nothing else of the body',
    async (status, code, expected, mentions) => {
      const { endpoint, source, seen } = await setup();
      const planted = 'leaked-description-77c0de';
      endpoint.scripted.push({
        status,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ error: code, error_description: planted, error_uri: `https://x/${planted}` }),
      });
      const error = await rejection(source.token());
      expect(isSecretError(error)).toBe(true);
      expect((error as { code: string }).code).toBe(expected);
      const message = (error as Error).message;
      expect(message).toContain(mentions);
      expect(message).not.toContain('a_made_up_code');
      expect(message).not.toContain('server_error');
      expectNoLeak([error, ...seen], [planted, endpoint.clientSecret], { encodings: true });
    },
  );

  it('maps 429 to RATE_LIMITED with its Retry-After, and an answer without a bearer token to UNAVAILABLE', async () => {
    const { endpoint, source } = await setup();
    endpoint.scripted.push({ status: 429, headers: { 'retry-after': '7' } });
    const limited = await rejection(source.token());
    expect(isSecretError(limited, 'RATE_LIMITED')).toBe(true);
    expect((limited as { retryAfterMs: number }).retryAfterMs).toBe(7_000);
    endpoint.scripted.push({
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ access_token: 'mac-token-ab12', token_type: 'mac' }),
    });
    const odd = await rejection(source.token());
    expect(isSecretError(odd, 'UNAVAILABLE')).toBe(true);
    endpoint.scripted.push({ status: 200, body: 'not json, access_token=zz-4411' });
    const garbled = await rejection(source.token());
    expect(isSecretError(garbled, 'UNAVAILABLE')).toBe(true);
    expectNoLeak([limited, odd, garbled], ['mac-token-ab12', 'zz-4411', endpoint.clientSecret]);
  });

  it('reads a rotated client secret again', async () => {
    const { endpoint, secrets, source } = await setup();
    await source.token();
    endpoint.clientSecret = 'client-secret-rotated-31aa';
    const refused = await rejection(source.refresh());
    expect(isSecretError(refused, 'ACCESS_DENIED')).toBe(true);
    await secrets.set('svc/client-secret', endpoint.clientSecret);
    const current = await source.refresh();
    expect(current.generation).toBe(2);
    expectNoLeak([refused], [endpoint.clientSecret, 'client-secret-8f2e1c9b']);
  });

  it('warns when the endpoint gives no expires_in, and assumes the requested lifetime', async () => {
    const { clock, endpoint, source, seen } = await setup();
    endpoint.expiresIn = undefined;
    const current = await source.current();
    expect(current.expiresAt?.getTime()).toBe(clock.now() + 300_000);
    expect(seen).toContainEqual(expect.objectContaining({ code: 'TOKEN_EXPIRY_UNKNOWN' }));
  });

  it('refuses a token URL with credentials in it, or a clientId missing', () => {
    const secrets = new MemoryProvider();
    const clientSecret = { provider: secrets, key: 'k' };
    expect(() =>
      clientCredentials({ tokenUrl: 'https://u:p@auth.example/token', clientId: 'a', clientSecret }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    expect(() =>
      clientCredentials({ tokenUrl: 'https://auth.example/token', clientId: '', clientSecret }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    expect(() => clientCredentials({ tokenUrl: 'not a url', clientId: 'a', clientSecret })).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIG' }),
    );
  });
});
