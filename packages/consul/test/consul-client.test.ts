// The Consul KV double driven through the npm `consul` client (2.0.1), the client most Node
// programs meet Consul with: where the client and the double disagree, the double is wrong,
// unless Consul's documentation says otherwise. The provider itself speaks `fetch` (see the
// README); these tests keep the double honest for it.
import { EventEmitter } from 'node:events';
import { inspect } from 'node:util';
import { type ConsulAclConfig, ConsulDouble } from '@secret-provider/doubles/consul';
import { until } from '@secret-provider/testing';
import Consul from 'consul';
import { afterEach, describe, expect, it } from 'vitest';

interface Entry {
  readonly Key: string;
  readonly Value: string | null;
  readonly ModifyIndex: number;
  readonly CreateIndex: number;
}

/** The client's response (with `ctx.includeResponse`): status, headers and parsed body. */
interface ClientResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string | undefined>;
  readonly body: unknown;
}

/** What the client's KV API takes and gives; its published typings lack the common options. */
interface LooseKv {
  get(options: string | Record<string, unknown>): Promise<unknown>;
  keys(options: string | Record<string, unknown>): Promise<unknown>;
  set(options: Record<string, unknown>): Promise<unknown>;
  del(options: string | Record<string, unknown>): Promise<unknown>;
}

const doubles: ConsulDouble[] = [];
const clients: Consul[] = [];
const watches: Array<{ end(): void }> = [];

afterEach(async () => {
  for (const watch of watches.splice(0)) watch.end();
  for (const client of clients.splice(0)) client.destroy();
  await Promise.all(doubles.splice(0).map((d) => d.close()));
});

async function connect(
  acl?: ConsulAclConfig,
): Promise<{ double: ConsulDouble; client: Consul; kv: LooseKv }> {
  const double = await ConsulDouble.start(acl === undefined ? {} : { acl });
  doubles.push(double);
  const { hostname, port } = new URL(double.url);
  const client = new Consul({ host: hostname, port: Number(port) });
  clients.push(client);
  return { double, client, kv: client.kv as unknown as LooseKv };
}

/** Asks the client for the response too (it reads `includeResponse` from an emitter `ctx`). */
const withResponse = () => Object.assign(new EventEmitter(), { includeResponse: true });

async function rejectionOf(
  promise: Promise<unknown>,
): Promise<{ statusCode?: number; response?: ClientResponse }> {
  try {
    await promise;
  } catch (error) {
    return error as { statusCode?: number; response?: ClientResponse };
  }
  throw new Error('expected a rejection');
}

describe('Consul KV double through the npm consul client', () => {
  it('stores and reads entries: get, recurse, keys and del, values decoded from base64', async () => {
    const { double, kv } = await connect();
    expect(await kv.set({ key: 'app/db/password', value: 's3cret' })).toBe(true);
    expect(await kv.set({ key: 'app/db/user', value: 'admin' })).toBe(true);
    expect(await kv.set({ key: 'app/empty', value: '' })).toBe(true);
    expect(await kv.set({ key: 'other', value: 'x' })).toBe(true);
    // The client percent-encodes "/" inside a key; the double decodes it as Consul does.
    expect(double.entry('app/db/password')?.Value?.toString()).toBe('s3cret');
    const one = (await kv.get('app/db/password')) as Entry;
    expect(one).toMatchObject({ Key: 'app/db/password', Value: 's3cret', CreateIndex: 2, ModifyIndex: 2 });
    // An empty value is `null` on the wire; the client passes it through.
    expect(((await kv.get('app/empty')) as Entry).Value).toBeNull();
    const tree = (await kv.get({ key: 'app/', recurse: true })) as Entry[];
    expect(tree.map((e) => [e.Key, e.Value])).toEqual([
      ['app/db/password', 's3cret'],
      ['app/db/user', 'admin'],
      ['app/empty', null],
    ]);
    expect(await kv.keys('app/')).toEqual(['app/db/password', 'app/db/user', 'app/empty']);
    expect(await kv.keys({ key: 'app/', separator: '/' })).toEqual(['app/db/', 'app/empty']);
    expect(await kv.del('app/empty')).toBe(true);
    expect(await kv.del('app/never-there')).toBe(true); // a missing key deletes "successfully"
    expect(await kv.del({ key: 'app/db/', recurse: true })).toBe(true);
    expect(await kv.keys('')).toEqual(['other']);
  });

  it('CAS truth table: a refused CAS is `false` on the wire, which the client resolves as undefined', async () => {
    const { double, kv } = await connect();
    const cases: Array<[string, Record<string, unknown>, unknown]> = [];
    const set = async (label: string, options: Record<string, unknown>) => {
      cases.push([label, options, await kv.set(options)]);
    };
    await set('cas=0, missing key', { key: 'k', value: 'v1', cas: 0 });
    await set('cas=0, existing key', { key: 'k', value: 'v2', cas: 0 });
    await set('cas=ModifyIndex', { key: 'k', value: 'v3', cas: 2 });
    await set('cas=stale index', { key: 'k', value: 'v4', cas: 2 });
    await set('cas=N, missing key', { key: 'absent', value: 'v', cas: 7 });
    expect(cases.map(([label, , result]) => [label, result])).toEqual([
      ['cas=0, missing key', true],
      ['cas=0, existing key', undefined],
      ['cas=ModifyIndex', true],
      ['cas=stale index', undefined],
      ['cas=N, missing key', undefined],
    ]);
    // Nothing was written by a refused CAS.
    expect(double.entry('k')?.Value?.toString()).toBe('v3');
    expect(double.entry('absent')).toBeUndefined();
    // The body really is `false`: the client's pipeline drops a falsy body unless the response
    // is asked for, so `=== true` is the only safe test of its answer.
    const [response, body] = (await kv.set({ key: 'k', value: 'v5', cas: 2, ctx: withResponse() })) as [
      ClientResponse,
      unknown,
    ];
    expect([response.statusCode, body]).toEqual([200, false]);
    // DELETE with cas: a mismatch is refused, a missing key is `true`.
    expect(await kv.del({ key: 'k', cas: 2 })).toBeUndefined();
    expect(double.entry('k')).toBeDefined();
    expect(await kv.del({ key: 'absent', cas: 3 })).toBe(true);
    expect(await kv.del({ key: 'k', cas: double.entry('k')?.ModifyIndex })).toBe(true);
    expect(double.entry('k')).toBeUndefined();
  });

  it('answers X-Consul-Index per request shape, and a missing key 404 with the table index', async () => {
    const { double, kv } = await connect();
    const [empty] = (await kv.get({ key: 'missing', ctx: withResponse() })) as [ClientResponse];
    expect([empty.statusCode, empty.headers['x-consul-index']]).toEqual([404, '1']); // 0 floored to 1
    await kv.set({ key: 'a/x', value: '1' }); // 2 (1 is the cluster's bootstrap)
    await kv.set({ key: 'b/y', value: '2' }); // 3
    await kv.set({ key: 'a/z', value: '3' }); // 4
    const indexOf = async (options: Record<string, unknown>) => {
      const [response] = (await kv.get({ ...options, ctx: withResponse() })) as [ClientResponse];
      return [response.statusCode, response.headers['x-consul-index']];
    };
    expect(await indexOf({ key: 'a/x' })).toEqual([200, '2']); // one key: its ModifyIndex
    expect(await indexOf({ key: 'a/', recurse: true })).toEqual([200, '4']); // a prefix: its max
    expect(await indexOf({ key: 'a/gone' })).toEqual([404, '4']); // a missing key: the table's
    await kv.del('a/z'); // 5, a tombstone under a/
    expect(await indexOf({ key: 'a/', recurse: true })).toEqual([200, '5']);
    expect(await indexOf({ key: 'c/', recurse: true })).toEqual([404, '5']);
    // Through the plain API a 404 is `undefined`, not an error and not `null` as its typings say.
    expect(await kv.get('a/gone')).toBeUndefined();
    expect(double.index).toBe(5);
  });

  it('blocks a get with index and wait until the key changes, and returns unchanged when wait passes', async () => {
    const { double, kv } = await connect();
    const index = double.put('app/db', 'v1');
    double.put('app/other', 'x');
    // A write to another key does not wake a query of one key; `wait` passes and the same
    // entry comes back with the same index: a return is not a change.
    let started = Date.now();
    const [quiet, quietEntry] = (await kv.get({
      key: 'app/db',
      index,
      wait: '300ms',
      ctx: withResponse(),
    })) as [ClientResponse, Entry];
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect([quiet.headers['x-consul-index'], quietEntry.Value]).toEqual([String(index), 'v1']);
    // A write to the key answers the waiting query with the new entry and index.
    started = Date.now();
    const pending = kv.get({ key: 'app/db', index, wait: '5s', ctx: withResponse() }) as Promise<
      [ClientResponse, Entry]
    >;
    await until(() => double.blocked > 0);
    const next = double.put('app/db', 'v2');
    const [woken, entry] = await pending;
    expect(Date.now() - started).toBeLessThan(4_000);
    expect([woken.headers['x-consul-index'], entry.Value, entry.ModifyIndex]).toEqual([
      String(next),
      'v2',
      next,
    ]);
    // A blocking recurse wakes on a write anywhere under its prefix.
    const tree = kv.get({ key: 'app/', recurse: true, index: next, wait: '5s' }) as Promise<Entry[]>;
    await until(() => double.blocked > 0);
    double.put('app/new', 'n');
    expect((await tree).map((e) => e.Key)).toEqual(['app/db', 'app/new', 'app/other']);
    // A bad `wait` is Consul's 400, which the client rejects with.
    expect((await rejectionOf(kv.get({ key: 'app/db', index: 1, wait: 'soon' }))).statusCode).toBe(400);
  });

  it('refuses an unknown token and a denied key with 403, and filters lists to what a token may read', async () => {
    const { double, kv } = await connect({
      tokens: { root: 'management', reader: [{ prefix: 'app/', policy: 'read' }] },
    });
    double.put('app/db', 's3cret');
    double.put('ops/key', 'hidden');
    const unknown = await rejectionOf(kv.get({ key: 'app/db', token: 'no-such-token' }));
    expect([unknown.statusCode, unknown.response?.body]).toEqual([403, 'ACL not found']);
    const denied = await rejectionOf(kv.get({ key: 'ops/key', token: 'reader' }));
    expect([denied.statusCode, denied.response?.body]).toEqual([403, 'Permission denied']);
    const write = await rejectionOf(kv.set({ key: 'app/db', value: 'x', token: 'reader' }));
    expect(write.statusCode).toBe(403);
    expect(double.entry('app/db')?.Value?.toString()).toBe('s3cret');
    expect(((await kv.get({ key: 'app/db', token: 'reader' })) as Entry).Value).toBe('s3cret');
    expect(await kv.keys({ key: '', token: 'reader' })).toEqual(['app/db']);
    expect(await kv.keys({ key: '', token: 'root' })).toEqual(['app/db', 'ops/key']);
    // Without a token: the anonymous token, which has no rules here (default deny).
    expect((await rejectionOf(kv.get('app/db'))).statusCode).toBe(403);
    // The client's error shows the token it sent to any logger that inspects it: one reason
    // the provider does not pass such errors on (or use the client).
    expect(inspect(await rejectionOf(kv.get({ key: 'app/db', token: 'no-such-token' })))).toContain(
      'no-such-token',
    );
  });

  it("keeps the client's watch running over a 404 that carries an index, and reports the key's creation", async () => {
    const { double, client, kv } = await connect();
    const watch = client.watch({ method: kv.get, options: { key: 'app/late', wait: '5s' } });
    watches.push(watch);
    const changes: unknown[] = [];
    const errors: unknown[] = [];
    watch.on('change', (data: unknown) => changes.push(data));
    watch.on('error', (error: unknown) => errors.push(error));
    // The first 404 (index 1) is a change from index 0, with no data.
    await until(() => changes.length > 0);
    expect(changes).toEqual([undefined]);
    await until(() => double.blocked > 0);
    double.put('app/late', 'here');
    await until(() => changes.length >= 2);
    expect((changes[1] as Entry).Value).toBe('here');
    expect([watch.isRunning(), errors]).toEqual([true, []]);
  });

  it("ends the client's watch on a 404 without X-Consul-Index: the double must send the index", async () => {
    const { double, client, kv } = await connect();
    double.fail({ kind: 'status', status: 404 });
    const watch = client.watch({ method: kv.get, options: { key: 'app/late', wait: '5s' } });
    watches.push(watch);
    const errors: string[] = [];
    watch.on('error', (error: Error) => errors.push(error.message));
    await new Promise((resolve, reject) => {
      watch.once('end', resolve);
      setTimeout(() => reject(new Error('the watch did not end')), 5_000).unref();
    });
    expect(errors).toEqual(['Watch not supported']);
  });

  it("resets the client's watch to index 0 when the index goes backwards (a restored snapshot)", async () => {
    const { double, client, kv } = await connect();
    double.put('app/db', 'v1');
    double.put('app/db', 'v2');
    double.put('app/db', 'v3'); // index 4
    const watch = client.watch({ method: kv.get, options: { key: 'app/db', wait: '200ms' } });
    watches.push(watch);
    const indexes: string[] = [];
    watch.on('change', (_data: unknown, response: ClientResponse) =>
      indexes.push(String(response.headers['x-consul-index'])),
    );
    await until(() => double.blocked > 0);
    expect(indexes).toEqual(['4']);
    // Back to index 2: the waiting query (index 4) waits out its `wait`, then answers 2; the
    // client sees the index go backwards, reports a change and starts again from 0.
    double.restore(2);
    await until(() => indexes.length >= 3);
    expect(indexes).toEqual(['4', '2', '2']);
  });
});
