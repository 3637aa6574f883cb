import { ConsulProvider, type ConsulProviderOptions } from '@secret-provider/consul';
import { isSecretError, type RotatedEvent, type SecretError } from '@secret-provider/core';
import { ConsulDouble, type ConsulDoubleOptions } from '@secret-provider/doubles/consul';
import { MemoryProvider, MemoryStore } from '@secret-provider/memory';
import { expectNoLeak, pause, record, rejection, summary, until } from '@secret-provider/testing';
import { afterEach, describe, expect, it } from 'vitest';

const doubles: ConsulDouble[] = [];
const providers: ConsulProvider[] = [];
afterEach(async () => {
  await Promise.all(providers.splice(0).map((p) => p.close()));
  await Promise.all(doubles.splice(0).map((d) => d.close()));
});

async function setup(options: Partial<ConsulProviderOptions> = {}, doubleOptions: ConsulDoubleOptions = {}) {
  const double = await ConsulDouble.start(doubleOptions);
  doubles.push(double);
  const provider = new ConsulProvider({ address: double.url, prefix: 'app/', wait: 2_000, ...options });
  providers.push(provider);
  return { double, provider };
}

const SECRET = 'consul-secret-value-42';
const watchRequests = (double: ConsulDouble) => double.requests.filter((r) => r.query.has('recurse'));

describe('ConsulProvider: prefix mode', () => {
  it('reads, writes, lists and deletes keys under the prefix, with ModifyIndex as the version', async () => {
    const { double, provider } = await setup();
    double.put('app/db/password', SECRET);
    double.put('other/x', 'not under the prefix');
    const secret = await provider.get('db/password');
    expect(secret.reveal()).toBe(SECRET);
    expect(secret.metadata?.version).toBe(String(double.entry('app/db/password')?.ModifyIndex));
    await provider.set('api/token', 'tok');
    expect(double.entry('app/api/token')?.Value?.toString()).toBe('tok');
    expect((await provider.keys()).sort()).toEqual(['api/token', 'db/password']);
    expect(await provider.keys({ prefix: 'db/' })).toEqual(['db/password']);
    await provider.delete('api/token');
    expect(double.entry('app/api/token')).toBeUndefined();
    expect(isSecretError(await rejection(provider.get('api/token')), 'NOT_FOUND')).toBe(true);
    expect(isSecretError(await rejection(provider.delete('api/token')), 'NOT_FOUND')).toBe(true);
    expect(isSecretError(await rejection(provider.get('../other/x')), 'INVALID_KEY')).toBe(true);
    expect(isSecretError(await rejection(provider.get('a/./b')), 'INVALID_KEY')).toBe(true);
    expect(provider.capabilities).toMatchObject({
      write: true,
      delete: true,
      list: true,
      watch: true,
      checkAndSet: true,
    });
  });

  it('encodes keys so that every character reaches Consul as written', async () => {
    const { double, provider } = await setup();
    await provider.set('weird key?#%&=', 'v');
    expect(double.entry('app/weird key?#%&=')?.Value?.toString()).toBe('v');
    expect((await provider.get('weird key?#%&=')).reveal()).toBe('v');
  });

  it('writes with check-and-set on ifVersion, answered true or false', async () => {
    const { double, provider } = await setup();
    await provider.set('k', 'one', { ifVersion: null }); // only if absent
    const version = (await provider.metadata('k')).version as string;
    const conflict = (await rejection(provider.set('k', 'two', { ifVersion: null }))) as SecretError;
    expect(conflict.code).toBe('CONFLICT');
    await provider.set('k', 'two', { ifVersion: version });
    expect(double.entry('k')).toBeUndefined();
    expect(double.entry('app/k')?.Value?.toString()).toBe('two');
    expect(((await rejection(provider.set('k', 'three', { ifVersion: version }))) as SecretError).code).toBe(
      'CONFLICT',
    );
    expect(((await rejection(provider.set('k', 'three', { ifVersion: 'v7' }))) as SecretError).code).toBe(
      'CONFLICT',
    );
    expect(((await rejection(provider.set('absent', 'x', { ifVersion: '5' }))) as SecretError).code).toBe(
      'CONFLICT',
    );
    expect((await provider.get('k')).reveal()).toBe('two');
    const puts = double.requests.filter((r) => r.method === 'PUT').map((r) => r.query.get('cas'));
    expect(puts).toEqual(['0', '0', version, version, '5']);
  });

  it('treats a write answer other than the JSON true as a failure', async () => {
    const { double, provider } = await setup();
    double.fail({ kind: 'status', status: 200, body: 'yes' });
    expect(((await rejection(provider.set('k', 'v'))) as SecretError).code).toBe('UNAVAILABLE');
    double.fail({ kind: 'status', status: 200, body: 'false' });
    expect(((await rejection(provider.set('k', 'v'))) as SecretError).code).toBe('UNAVAILABLE');
    double.fail({ kind: 'status', status: 200, body: 'false' });
    expect(((await rejection(provider.set('k', 'v', { ifVersion: null }))) as SecretError).code).toBe(
      'CONFLICT',
    );
  });

  it('maps failures: 403 ACCESS_DENIED, 500 UNAVAILABLE, a reset UNAVAILABLE, garbage UNAVAILABLE', async () => {
    const { double, provider } = await setup();
    double.put('app/k', SECRET);
    double.fail({ kind: 'status', status: 403, body: `Permission denied ${SECRET}` });
    const denied = (await rejection(provider.get('k'))) as SecretError;
    expect([denied.code, denied.status]).toEqual(['ACCESS_DENIED', 403]);
    double.fail({ kind: 'status', status: 500, body: 'No cluster leader' });
    expect(((await rejection(provider.get('k'))) as SecretError).code).toBe('UNAVAILABLE');
    double.fail({ kind: 'reset' });
    expect(((await rejection(provider.get('k'))) as SecretError).code).toBe('UNAVAILABLE');
    double.fail({ kind: 'status', status: 200, body: `[{"Key": "app/k", "Value": "${SECRET}"` });
    const garbage = (await rejection(provider.get('k'))) as SecretError;
    expect(garbage.code).toBe('UNAVAILABLE');
    double.fail({ kind: 'status', status: 429, headers: { 'retry-after': '3' } });
    const limited = (await rejection(provider.get('k'))) as SecretError;
    expect([limited.code, limited.retryAfterMs]).toEqual(['RATE_LIMITED', 3_000]);
    expectNoLeak([denied, garbage, limited], [SECRET]);
  });
});

describe('ConsulProvider: ACL tokens', () => {
  const acl = {
    acl: { tokens: { 'token-1': [{ prefix: 'app/', policy: 'write' as const }] } },
  };

  it('sends a static token as X-Consul-Token, and refusals are ACCESS_DENIED without it', async () => {
    const { double, provider } = await setup({ token: 'token-1' }, acl);
    double.put('app/k', 'v');
    expect((await provider.get('k')).reveal()).toBe('v');
    const anonymous = new ConsulProvider({ address: double.url, prefix: 'app/' });
    providers.push(anonymous);
    const denied = (await rejection(anonymous.get('k'))) as SecretError;
    expect(denied.code).toBe('ACCESS_DENIED');
    const wrong = new ConsulProvider({ address: double.url, prefix: 'app/', token: 'token-0' });
    providers.push(wrong);
    const notFound = (await rejection(wrong.get('k'))) as SecretError;
    expect(notFound.code).toBe('ACCESS_DENIED');
    expectNoLeak([denied, notFound], ['token-1', 'token-0']);
  });

  it('reads the token from another provider, again when it rotates, and once after a 403', async () => {
    const store = new MemoryStore({ 'consul/token': 'token-0' });
    const tokens = new MemoryProvider({ store });
    const { double, provider } = await setup(
      { token: { provider: tokens, key: 'consul/token' } },
      {
        acl: {
          tokens: {
            'token-1': [{ prefix: 'app/', policy: 'write' }],
            'token-2': [{ prefix: 'app/', policy: 'write' }],
          },
        },
      },
    );
    double.put('app/k', 'v');
    // token-0 is unknown: refused, read again (still token-0), refused: ACCESS_DENIED.
    expect(((await rejection(provider.get('k'))) as SecretError).code).toBe('ACCESS_DENIED');
    store.set('consul/token', 'token-1');
    expect((await provider.get('k')).reveal()).toBe('v');
    store.set('consul/token', 'token-2');
    await provider.set('k', 'w');
    expect(double.entry('app/k')?.Value?.toString()).toBe('w');
    await tokens.close();
  });
});

describe('ConsulProvider: document mode', () => {
  it('reads a JSON document in one entry, with keys named as the file provider names them', async () => {
    const { double, provider } = await setup({ prefix: undefined, key: 'app/config' });
    double.put('app/config', JSON.stringify({ db: { password: SECRET, port: 5432 } }));
    expect((await provider.get('db.password')).reveal()).toBe(SECRET);
    expect((await provider.keys()).sort()).toEqual(['db.password', 'db.port']);
    expect(provider.capabilities).toMatchObject({ write: false, delete: false, watch: true });
    expect(((await rejection(provider.set('db.port', '1'))) as SecretError).code).toBe('READ_ONLY');
    const { events, handle } = await record(provider);
    double.put('app/config', JSON.stringify({ db: { password: 'rotated', port: 5432 } }));
    await until(() => summary(events).length > 0, 3_000, 'the rotation');
    expect(summary(events)).toEqual(['rotated:db.password']);
    double.put('app/config', `{"db": {"password": "${SECRET}",`);
    const broken = (await rejection(provider.get('db.password'))) as SecretError;
    expect(broken.code).toBe('UNAVAILABLE');
    expect(broken.message).toMatch(/invalid JSON document/);
    double.delete('app/config');
    expect(((await rejection(provider.get('db.password'))) as SecretError).code).toBe('UNAVAILABLE');
    expectNoLeak([broken, ...events.map((e) => e.event)], [SECRET, 'rotated']);
    await handle.stop();
  });

  it('reads a .env document', async () => {
    const { double, provider } = await setup({ prefix: undefined, key: 'app/env', format: 'env' });
    double.put('app/env', 'A=1\nB="two words"\n');
    expect((await provider.get('B')).reveal()).toBe('two words');
  });
});

describe('ConsulProvider: watching by blocking queries', () => {
  it('reports a change within a blocking query, and an idle watch asks once per wait', async () => {
    const { double, provider } = await setup({ wait: 400 });
    double.put('app/a', '1');
    const { events, handle } = await record(provider);
    await until(() => double.blocked === 1, 2_000, 'a blocking query');
    const changed = Date.now();
    double.put('app/a', '2');
    await until(() => summary(events).length === 1, 2_000, 'the rotation');
    expect(Date.now() - changed).toBeLessThan(300);
    expect(summary(events)).toEqual(['rotated:a']);
    const rotated = events.find((e) => e.type === 'rotated')?.event as RotatedEvent;
    expect(rotated.changes[0]?.newVersion).toBe(String(double.entry('app/a')?.ModifyIndex));
    const before = watchRequests(double).length;
    await pause(1_300);
    const idle = watchRequests(double).length - before;
    // wait 400 ms (+ up to 1/16): about three returns in 1.3 s, none of them a change.
    expect(idle).toBeGreaterThanOrEqual(2);
    expect(idle).toBeLessThanOrEqual(4);
    expect(summary(events)).toEqual(['rotated:a']);
    double.put('app/b', 'new');
    double.delete('app/a');
    await until(() => summary(events).length === 3, 2_000, 'the addition and removal');
    expect(summary(events).slice(1).sort()).toEqual(['added:b', 'removed:a']);
    await handle.stop();
  });

  it('does not report a return that changed nothing: contents are compared, not indexes', async () => {
    const { double, provider } = await setup({ wait: 5_000 });
    double.put('app/a', '1');
    const { events, handle } = await record(provider);
    await until(() => double.blocked === 1, 2_000, 'a blocking query');
    const index = double.index;
    double.put('app/a', '2');
    double.put('app/a', '1'); // back before the query answered: a new index, the same contents
    await until(() => watchRequests(double).length >= 2, 2_000, 'the return');
    await until(() => double.blocked === 1, 2_000, 'the next query');
    double.put('app/a', '1'); // the same value: Consul keeps the index, nothing returns
    double.put('other/z', 'outside the prefix');
    await pause(300);
    expect(summary(events)).toEqual([]);
    await handle.stop();
    // The query the stop ended was blocking on the new index.
    await until(() => watchRequests(double).length >= 3, 2_000, 'the ended query');
    expect(Number(watchRequests(double)[2]?.query.get('index'))).toBe(index + 2);
  });

  it('starts over from index 0 when the index goes backwards, and reports what changed meanwhile', async () => {
    const { double, provider } = await setup({ wait: 300 });
    for (let i = 0; i < 5; i++) double.put('app/a', `v${i}`);
    const { events, handle } = await record(provider);
    await until(() => double.blocked === 1, 2_000, 'a blocking query');
    double.restore(2); // the agent now answers indexes below the watch's
    double.put('app/b', 'after-restore'); // index 3, still below 5: the blocking query does not return
    await until(() => summary(events).includes('added:b'), 3_000, 'the addition after the restore');
    await until(
      () => watchRequests(double).filter((r) => !r.query.has('index')).length >= 2,
      2_000,
      'a query from index 0',
    );
    const indexes = watchRequests(double).map((r) => r.query.get('index'));
    // After the lower index came back, the next query did not block (no index), then blocked again.
    expect(indexes).toContain(null);
    const reset = indexes.lastIndexOf(null);
    expect(Number(indexes[reset - 1])).toBeGreaterThanOrEqual(5);
    await handle.stop();
  });

  it('floors an index of 0 at 1', async () => {
    const { double, provider } = await setup({ wait: 300, minInterval: 50 });
    double.put('app/a', '1');
    double.fail({ kind: 'index', index: 0 }); // the initial read answers index 0
    const { handle } = await record(provider);
    await until(() => watchRequests(double).length >= 3, 2_000, 'three queries');
    expect(watchRequests(double)[1]?.query.get('index')).toBe('1');
    await handle.stop();
  });

  it('is rate limited: a key that changes all the time cannot make the watch spin', async () => {
    const { double, provider } = await setup({ wait: 2_000, minInterval: 100 });
    double.put('app/flapping', '0');
    const { events, handle } = await record(provider);
    const before = watchRequests(double).length;
    const started = Date.now();
    let i = 0;
    while (Date.now() - started < 1_000) {
      double.put('app/flapping', String(++i));
      await pause(2);
    }
    const queries = watchRequests(double).length - before;
    // At most one query per minInterval (plus the one in flight).
    expect(queries).toBeLessThanOrEqual(12);
    expect(queries).toBeGreaterThanOrEqual(5);
    expect(i).toBeGreaterThan(100);
    await until(async () => (await provider.get('flapping')).reveal() === String(i), 2_000, 'the last value');
    // At most one rotation per query answered (the one in flight included).
    const answered = watchRequests(double).length - before + 1;
    expect(events.filter((e) => e.type === 'rotated').length).toBeLessThanOrEqual(answered);
    await handle.stop();
  });

  it('backs off on failures, reports them, and resumes by itself', async () => {
    const { double, provider } = await setup({ wait: 500 });
    double.put('app/a', SECRET);
    const { events, handle } = await record(provider);
    await until(() => double.blocked === 1, 2_000, 'a blocking query');
    double.fail({ kind: 'status', status: 500, body: SECRET }, 2);
    double.put('app/a', 'after'); // the blocked query returns; the next two fail
    await until(() => events.filter((e) => e.type === 'error').length === 2, 8_000, 'two errors');
    const errors = events
      .filter((e) => e.type === 'error')
      .map((e) => (e.event as { error: SecretError }).error);
    expect(errors.map((e) => e.code)).toEqual(['UNAVAILABLE', 'UNAVAILABLE']);
    const failed = double.requests.filter((r) => r.status === 500).map((r) => r.receivedAt);
    expect((failed[1] as number) - (failed[0] as number)).toBeGreaterThanOrEqual(900); // back-off, not a spin
    await until(() => double.blocked === 1, 8_000, 'blocking again');
    double.put('app/a', 'recovered');
    await until(() => summary(events).length >= 1, 2_000, 'the rotation after recovery');
    expect(summary(events)).toEqual(['rotated:a']);
    expect((await provider.get('a')).reveal()).toBe('recovered');
    expectNoLeak(
      events.map((e) => e.event),
      [SECRET, 'after', 'recovered'],
    );
    await handle.stop();
  });

  it('starts a watch while Consul is down and reports once it is back', async () => {
    const { double, provider } = await setup({ wait: 500, watchRetry: { base: 50, max: 200 } });
    double.put('app/before', '0');
    double.fail({ kind: 'status', status: 500 }, 4);
    const { events, handle } = await record(provider);
    expect(events.map((e) => e.type)).toEqual(['error']);
    await until(() => double.blocked === 1, 8_000, 'a blocking query after the failures');
    // Four failed starts, on the back-off, reported once; what was there before is no change.
    expect(watchRequests(double)).toHaveLength(5);
    expect(events.map((e) => e.type)).toEqual(['error']);
    double.put('app/a', '1');
    await until(() => summary(events).length === 1, 8_000, 'the addition');
    expect(summary(events)).toEqual(['added:a']);
    await handle.stop();
  });

  it('stopping a watch that waits for Consul to come back ends its retries', async () => {
    const { double, provider } = await setup({ wait: 500, watchRetry: { base: 50, max: 50 } });
    double.fail({ kind: 'status', status: 500 }, 1_000);
    const { handle } = await record(provider);
    await until(() => watchRequests(double).length >= 3, 8_000, 'retries of the start');
    await handle.stop();
    const asked = watchRequests(double).length;
    await pause(300);
    expect(watchRequests(double)).toHaveLength(asked);
    double.clearFaults();
  });
});
