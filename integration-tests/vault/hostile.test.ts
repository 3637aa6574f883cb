import { ChainedProvider } from '@secret-provider/chained';
import { createEmitter, isSecretError, type SecretEvents } from '@secret-provider/core';
import type { FaultSpec } from '@secret-provider/doubles/vault';
import { MemoryProvider } from '@secret-provider/memory';
import { expectNoLeak, rejection } from '@secret-provider/testing';
import { ManualClock, type VaultProvider } from '@secret-provider/vault';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Setup, settle, setup, trackUnhandledRejections } from './helpers.js';

// Vault, or a proxy in front of it (a login page, a load balancer's error page, a connection cut
// mid-body), answering something that is not a Vault response. Every operation must treat it as
// an outage (UNAVAILABLE), never as "missing" or as success, and must not quote it.

trackUnhandledRejections({ beforeAll, afterAll });

let current: Setup | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

const PAGE = '<html><body>Please sign in to continue</body></html>';
const TRUNCATED = '{"data":{"data":{"value":"hunter2-trunc';
const answers = {
  'a 200 HTML page': { kind: 'status', status: 200, raw: PAGE, count: 5 },
  'truncated JSON (200)': {
    kind: 'status',
    status: 200,
    raw: TRUNCATED,
    headers: { 'Content-Type': 'application/json' },
    count: 5,
  },
  'a 404 HTML page': { kind: 'status', status: 404, raw: PAGE, count: 5 },
} satisfies Record<string, Omit<FaultSpec, 'match'>>;

type Match = (request: { method: string; path: string }) => boolean;
const on =
  (method: string, path: string): Match =>
  (request) =>
    request.method === method && request.path === path;

function expectOutage(error: unknown): void {
  expect(isSecretError(error, 'UNAVAILABLE'), String(error)).toBe(true);
  expectNoLeak([error], ['sign in', 'hunter2-trunc', '<html']);
}

async function vault(): Promise<Setup> {
  const s = await setup({
    watch: false,
    double: { kv: { secret: { version: 2 }, kv: { version: 1 } } },
    provider: () => ({ mounts: { secret: { version: 2 }, kv: { version: 1 } } }),
  });
  current = s;
  s.double.kvPut('secret', 'app', { value: 'v' });
  s.double.kvPut('kv', 'app', { value: 'v' });
  s.double.addDatabaseRole('app', { ttl: 600, maxTtl: 3600, renewable: true });
  await s.provider.connect();
  return s;
}

const operations: Array<[string, Match, (p: VaultProvider) => Promise<unknown>]> = [
  ['get (KV v2)', on('GET', 'secret/data/app'), (p) => p.get('secret/app')],
  ['get a version (KV v2)', on('GET', 'secret/data/app'), (p) => p.get('secret/app', { version: '1' })],
  ['get (KV v1)', on('GET', 'kv/app'), (p) => p.get('kv/app')],
  ['get (dynamic secret)', on('GET', 'database/creds/app'), (p) => p.get('database/creds/app#username')],
  ['metadata', on('GET', 'secret/metadata/app'), (p) => p.metadata('secret/app')],
  ['keys', on('LIST', 'secret/metadata/'), (p) => p.keys({ prefix: 'secret/' })],
  ['set', on('POST', 'secret/data/app'), (p) => p.set('secret/app', 'new')],
  ['set of one field (its read)', on('GET', 'secret/data/app'), (p) => p.set('secret/app#field', 'new')],
  ['delete (its metadata read)', on('GET', 'secret/metadata/app'), (p) => p.delete('secret/app')],
  ['delete', on('DELETE', 'secret/data/app'), (p) => p.delete('secret/app')],
];

describe('answers that are not Vault responses are UNAVAILABLE', () => {
  for (const [answer, fault] of Object.entries(answers)) {
    for (const [operation, match, run] of operations) {
      // A 404 page on a write path is refused by the status alone; the others are the point.
      if (answer === 'a 404 HTML page' && (operation === 'set' || operation === 'delete')) continue;
      it(`${operation}: ${answer}`, async () => {
        const s = await vault();
        s.double.fail({ ...fault, match });
        expectOutage(await rejection(run(s.provider)));
      });
    }
  }

  it('a chain [vault, defaults] does not serve the default when Vault answers a login page', async () => {
    const s = await vault();
    const chain = new ChainedProvider([
      s.provider,
      new MemoryProvider({ name: 'defaults', initial: { 'secret/app': 'the-default' } }),
    ]);
    s.double.fail({ ...answers['a 200 HTML page'], match: on('GET', 'secret/data/app') });
    expectOutage(await rejection(chain.get('secret/app')));
  });

  it('token lookup: a login page instead of lookup-self is an outage, not a token without TTL', async () => {
    const s = await setup({ watch: false });
    current = s;
    s.double.kvPut('secret', 'app', { value: 'v' });
    s.double.fail({ ...answers['a 200 HTML page'], match: on('GET', 'auth/token/lookup-self') });
    expectOutage(await rejection(s.provider.get('secret/app')));
  });

  it('AppRole login: a login page is an outage, not a refused login', async () => {
    const s = await setup({ watch: false });
    current = s;
    const { roleId, secretId } = s.double.addAppRole('app', { ttl: 600 });
    await s.provider.close();
    const { VaultProvider } = await import('@secret-provider/vault');
    const provider = new VaultProvider({
      endpoint: s.double.url,
      auth: { method: 'approle', roleId, secretId },
      env: {},
    });
    current = {
      ...s,
      provider,
      close: async () => {
        await provider.close();
        await s.double.close();
      },
    };
    s.double.fail({ ...answers['truncated JSON (200)'], match: on('POST', 'auth/approle/login') });
    expectOutage(await rejection(provider.connect()));
  });
});

describe('background work reports answers it cannot understand as UNAVAILABLE', () => {
  async function onClock(provider: NonNullable<Parameters<typeof setup>[0]>['provider'] = () => ({})) {
    const clock = new ManualClock();
    const s = await setup({ clock, watch: false, provider });
    current = s;
    const errors: Array<SecretEvents['error']> = [];
    const emitter = createEmitter();
    emitter.on('error', (event) => errors.push(event));
    const handle = s.provider.watch(emitter);
    await handle.ready;
    const close = s.close;
    current = {
      ...s,
      close: async () => {
        await handle.stop();
        await close();
      },
    };
    return { s, clock, errors };
  }

  it('watch: a login page instead of the LIST', async () => {
    const { s, clock, errors } = await onClock(() => ({ pollInterval: 10_000 }));
    s.double.fail({ ...answers['a 200 HTML page'], count: 100, match: on('LIST', 'secret/metadata/') });
    await clock.advance(30_000);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    for (const event of errors) expectOutage(event.error);
  });

  it('lease renewal: truncated JSON instead of the renewal', async () => {
    const { s, clock, errors } = await onClock(() => ({ random: () => 0.5 }));
    s.double.addDatabaseRole('app', { ttl: 600, maxTtl: 7200, renewable: true });
    await s.provider.get('database/creds/app#username');
    s.double.fail({ ...answers['truncated JSON (200)'], count: 100, match: on('PUT', 'sys/leases/renew') });
    await settle(clock.advance(500_000), clock);
    expect(s.double.count((r) => r.path === 'sys/leases/renew')).toBeGreaterThanOrEqual(1);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    for (const event of errors) expectOutage(event.error);
  });

  it('token renewal: a login page instead of renew-self', async () => {
    const { s, clock, errors } = await onClock((double) => ({
      auth: { method: 'token', token: double.createToken({ ttl: 600, renewable: true }).id },
      random: () => 0.5,
    }));
    await s.provider.connect();
    s.double.fail({ ...answers['a 200 HTML page'], count: 100, match: on('POST', 'auth/token/renew-self') });
    await settle(clock.advance(500_000), clock);
    expect(s.double.count((r) => r.path === 'auth/token/renew-self')).toBeGreaterThanOrEqual(1);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    for (const event of errors) expectOutage(event.error);
  });
});
