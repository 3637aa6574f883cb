import { SecretClient } from '@azure/keyvault-secrets';
import { AzureKeyVaultProvider, keyVaultAnswerPolicy } from '@secret-provider/azure';
import { ChainedProvider } from '@secret-provider/chained';
import { isSecretError, type SecretError } from '@secret-provider/core';
import {
  FakeCredential,
  type Fault,
  KeyVaultDouble,
  type RequestInfo,
} from '@secret-provider/doubles/key-vault';
import { MemoryProvider } from '@secret-provider/memory';
import { expectNoLeak, record, rejection, until } from '@secret-provider/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { clientOptionsFor } from './fixtures.js';

// A server (or a proxy, a captive portal, a broken gateway in its place) that answers what Key
// Vault never would, through the real SecretClient. Whatever comes back that cannot be
// understood is an outage (UNAVAILABLE): never "missing" (a chain would serve its default),
// never an empty secret, and nothing of the answer is quoted in the error.

const VALUE = 'kv-value-that-must-not-leak-5b1f';
const MARKER = 'PWNED-by-the-server-9d2c';

let double: KeyVaultDouble;
let provider: AzureKeyVaultProvider;

beforeAll(async () => {
  double = await KeyVaultDouble.start();
  provider = new AzureKeyVaultProvider({
    vaultUrl: double.url,
    credential: new FakeCredential(double),
    clientOptions: { ...clientOptionsFor(double), retryOptions: { maxRetries: 0 } },
    cache: false,
    onWarning: () => {},
  });
  double.setSecret('K', VALUE, { contentType: 'text/plain', tags: { team: 'ops' } });
  for (let i = 0; i < 30; i++) double.setSecret(`N${i}`, `v${i}`);
  await provider.metadata('K'); // past the challenge
});

afterAll(async () => {
  await provider.close();
  await double.stop();
});

beforeEach(() => {
  double.clearFaults();
});

const on =
  (operation: RequestInfo['operation']) =>
  (request: RequestInfo): boolean =>
    request.operation === operation;

type Body = Record<string, unknown>;
const rewrite = (operation: RequestInfo['operation'], change: (body: Body) => unknown): Fault => ({
  type: 'rewrite',
  rewrite: change,
  match: on(operation),
});
const items = (body: Body, change: (item: Body) => Body): Body => ({
  ...body,
  value: (body.value as Body[]).map(change),
});

async function unavailable(work: Promise<unknown>, fault: Fault): Promise<SecretError> {
  const handle = double.inject(fault);
  const error = (await rejection(work)) as SecretError;
  handle.remove();
  expect(handle.hits).toBeGreaterThan(0);
  expect(isSecretError(error)).toBe(true);
  expect({ code: error.code, retryable: error.retryable }).toEqual({ code: 'UNAVAILABLE', retryable: true });
  expectNoLeak([error], [VALUE, MARKER], { encodings: true });
  return error;
}

describe('a read whose answer cannot be understood is UNAVAILABLE', () => {
  it('a 200 without a value is not an empty secret, and a chain does not serve its default instead', async () => {
    const error = await unavailable(
      provider.get('K'),
      rewrite('getSecret', ({ value: _dropped, ...rest }) => rest),
    );
    expect(error.message).toContain('a secret without a value');
    const chain = new ChainedProvider([provider, new MemoryProvider({ initial: { K: 'the-default' } })], {
      ownsProviders: false,
    });
    try {
      double.inject(rewrite('getSecret', ({ value: _dropped, ...rest }) => rest));
      expect(await rejection(chain.get('K'))).toMatchObject({ code: 'UNAVAILABLE' });
    } finally {
      double.clearFaults();
      await chain.close();
    }
    expect((await provider.get('K')).reveal()).toBe(VALUE);
  });

  it.each<[string, Fault]>([
    ['an HTML page with 200', { type: 'body', body: `<html>${MARKER}</html>`, contentType: 'text/html' }],
    ['HTML labelled as JSON', { type: 'body', body: `<html>${MARKER}</html>` }],
    ['truncated JSON', rewrite('getSecret', (body) => JSON.stringify(body).slice(0, 120))],
    ['an empty body', { type: 'body', body: '' }],
    ['JSON null', { type: 'body', body: 'null' }],
    ['an array', rewrite('getSecret', () => [MARKER])],
    ['a value that is not a string', rewrite('getSecret', (body) => ({ ...body, value: 42 }))],
    ['an id that does not parse', rewrite('getSecret', (body) => ({ ...body, id: `not a url ${MARKER}` }))],
    ['an id without a version', rewrite('getSecret', (body) => ({ ...body, id: `${double.url}/secrets/K` }))],
    [
      'an id of another secret',
      rewrite('getSecret', (body) => ({
        ...body,
        id: String(body.id).replace('/secrets/K/', '/secrets/OTHER/'),
      })),
    ],
    [
      'dates and flags of the wrong type',
      rewrite('getSecret', (body) => ({
        ...body,
        attributes: { enabled: 'yes', created: MARKER, exp: 'soon' },
      })),
    ],
    ['tags that are not a map', rewrite('getSecret', (body) => ({ ...body, tags: MARKER }))],
    ['a content type that is not a string', rewrite('getSecret', (body) => ({ ...body, contentType: 5 }))],
  ])('%s', async (_label, fault) => {
    await unavailable(provider.get('K'), { ...fault, match: fault.match ?? on('getSecret') });
  });

  it('an answer about another version than the one asked for', async () => {
    const first = (await provider.get('K')).metadata?.version as string;
    double.setSecret('K', `${VALUE}-2`);
    const second = (await provider.get('K')).metadata?.version as string;
    await unavailable(
      provider.get('K', { version: first }),
      rewrite('getSecret', (body) => ({ ...body, id: String(body.id).replace(first, second) })),
    );
    expect((await provider.get('K', { version: first })).reveal()).toBe(VALUE);
  });
});

describe('a list whose answer cannot be understood is UNAVAILABLE', () => {
  it.each<[string, Fault]>([
    ['a page without value', rewrite('listSecrets', ({ value: _dropped, ...rest }) => rest)],
    ['value that is not a list', rewrite('listSecrets', (body) => ({ ...body, value: { [MARKER]: 1 } }))],
    ['an HTML page', { type: 'body', body: `<html>${MARKER}</html>`, contentType: 'text/html' }],
    ['truncated JSON', rewrite('listSecrets', (body) => JSON.stringify(body).slice(0, 200))],
    [
      'items with ids that do not parse',
      rewrite('listSecrets', (b) => items(b, (i) => ({ ...i, id: MARKER }))),
    ],
    ['items without ids', rewrite('listSecrets', (b) => items(b, ({ id: _id, ...rest }) => rest))],
    [
      'items with properties of the wrong type',
      rewrite('listSecrets', (b) =>
        items(b, (i) => ({
          ...i,
          attributes: { ...(i.attributes as Body), updated: 'later', enabled: 'no' },
        })),
      ),
    ],
    ['a nextLink that is not a URL', rewrite('listSecrets', (body) => ({ ...body, nextLink: MARKER }))],
  ])('keys(): %s', async (_label, fault) => {
    await unavailable(provider.keys(), { ...fault, match: fault.match ?? on('listSecrets') });
  });

  it('a nextLink to another host: UNAVAILABLE, and that host receives no request at all', async () => {
    const elsewhere = await KeyVaultDouble.start();
    try {
      const error = await unavailable(
        provider.keys(),
        rewrite('listSecrets', (body) => ({ ...body, nextLink: `${elsewhere.url}/secrets?api-version=7.6` })),
      );
      expect(error.message).toContain('a next page on another host');
      expect(elsewhere.log).toHaveLength(0);
    } finally {
      await elsewhere.stop();
    }
  });

  it('metadata(): versions without version ids are not "missing"', async () => {
    await unavailable(
      provider.metadata('K'),
      rewrite('listVersions', (b) => items(b, (i) => ({ ...i, id: `${double.url}/secrets/K` }))),
    );
    await unavailable(
      provider.metadata('K'),
      rewrite('listVersions', ({ value: _dropped, ...rest }) => rest),
    );
  });

  it('a watch reports such a list as an error event and keeps every key it knew', async () => {
    const watched = new AzureKeyVaultProvider({
      vaultUrl: double.url,
      credential: new FakeCredential(double),
      clientOptions: { ...clientOptionsFor(double), retryOptions: { maxRetries: 0 } },
      pollInterval: 20,
      onWarning: () => {},
    });
    try {
      const { events, handle } = await record(watched);
      double.inject(rewrite('listSecrets', (b) => items(b, (i) => ({ ...i, id: MARKER }))));
      await until(() => events.some((e) => e.type === 'error'));
      double.clearFaults();
      await handle.stop();
      expect(events.some((e) => e.type === 'removed')).toBe(false);
      const error = events.find((e) => e.type === 'error')?.event as { error: SecretError };
      expect(error.error.code).toBe('UNAVAILABLE');
      expectNoLeak(
        events.map((e) => e.event),
        [VALUE, MARKER],
      );
    } finally {
      await watched.close();
    }
  });
});

describe('error bodies and headers the server writes', () => {
  const hostile = (status: number, code: string, inner?: string): Extract<Fault, { type: 'body' }> => ({
    type: 'body',
    status,
    body: JSON.stringify({
      error: {
        code,
        message: `${MARKER} ${VALUE}`,
        ...(inner === undefined ? {} : { innererror: { code: inner, message: MARKER } }),
      },
    }),
    headers: {
      'x-ms-request-id': `${MARKER}-not-a-guid`,
      'www-authenticate': `Bearer authorization="https://${MARKER}.example", error="${MARKER}"`,
    },
    match: on('getSecret'),
  });

  it('keeps only the codes Key Vault documents, never the message, details or headers', async () => {
    const cases: Array<[Fault, string]> = [
      [hostile(403, `Forbidden-${MARKER}`, `${MARKER}-inner`), 'ACCESS_DENIED'],
      [hostile(400, `${MARKER}`), 'INVALID_KEY'],
      [hostile(409, 'Conflict', `${MARKER}`), 'CONFLICT'],
      [hostile(404, `${MARKER}`), 'UNAVAILABLE'],
      [hostile(418, `${MARKER}`), 'UNKNOWN'],
    ];
    for (const [fault, code] of cases) {
      double.inject(fault);
      const error = (await rejection(provider.get('K'))) as SecretError;
      double.clearFaults();
      expect(error.code).toBe(code);
      expectNoLeak([error], [VALUE, MARKER], { encodings: true });
      expect(String(error.cause)).not.toContain('Bearer');
    }
  });

  it('keeps a documented inner code, and a request id that is a GUID', async () => {
    const requestId = '6a0c3f3e-2b1d-4c5e-9f7a-1b2c3d4e5f60';
    double.inject({
      ...hostile(403, 'Forbidden', 'ForbiddenByRbac'),
      headers: { 'x-ms-request-id': requestId },
    });
    const error = (await rejection(provider.get('K'))) as SecretError;
    expect(error.code).toBe('ACCESS_DENIED');
    expect(error.message).toContain('[ForbiddenByRbac]');
    expect(String(error.cause)).toContain(`x-ms-request-id ${requestId}`);
    expectNoLeak([error], [VALUE, MARKER]);
  });

  it("a 404 that is not Key Vault's not-found is an outage; Key Vault's own is NOT_FOUND", async () => {
    double.inject({ type: 'body', status: 404, body: `<html>${MARKER}</html>`, contentType: 'text/html' });
    expect(await rejection(provider.get('K'))).toMatchObject({ code: 'UNAVAILABLE' });
    double.clearFaults();
    expect(await rejection(provider.get('MISSING'))).toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('a client passed in', () => {
  const own = (withPolicy: boolean) =>
    new AzureKeyVaultProvider({
      client: new SecretClient(double.url, new FakeCredential(double), {
        ...clientOptionsFor(double),
        retryOptions: { maxRetries: 0 },
        ...(withPolicy
          ? {
              additionalPolicies: [
                { policy: keyVaultAnswerPolicy(double.url), position: 'perCall' as const },
              ],
            }
          : {}),
      }),
      cache: false,
      onWarning: () => {},
    });

  it('without the answer policy: a read without a value, or one the SDK cannot read, is still UNAVAILABLE', async () => {
    const plain = own(false);
    try {
      await unavailable(
        plain.get('K'),
        rewrite('getSecret', ({ value: _dropped, ...rest }) => rest),
      );
      await unavailable(plain.get('K'), { type: 'body', body: 'null', match: on('getSecret') });
      await unavailable(
        plain.get('K'),
        rewrite('getSecret', (body) => ({ ...body, attributes: { created: MARKER } })),
      );
      await unavailable(
        plain.metadata('K'),
        rewrite('listVersions', (b) => items(b, (i) => ({ ...i, id: `${double.url}/secrets/K` }))),
      );
    } finally {
      await plain.close();
    }
  });

  it('with keyVaultAnswerPolicy added: a foreign nextLink is refused before it is sent', async () => {
    const guarded = own(true);
    const elsewhere = await KeyVaultDouble.start();
    try {
      await unavailable(
        guarded.keys(),
        rewrite('listSecrets', (body) => ({ ...body, nextLink: `${elsewhere.url}/secrets?api-version=7.6` })),
      );
      expect(elsewhere.log).toHaveLength(0);
    } finally {
      await guarded.close();
      await elsewhere.stop();
    }
  });
});
