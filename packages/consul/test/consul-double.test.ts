// The double answers as Consul's KV HTTP API does (agent/kvs_endpoint.go and the state store),
// checked over HTTP with bare requests, the way any client meets it.
import { ConsulDouble, parseGoDuration } from '@secret-provider/doubles/consul';
import { afterEach, describe, expect, it } from 'vitest';

const doubles: ConsulDouble[] = [];
async function start(options: Parameters<typeof ConsulDouble.start>[0] = {}): Promise<ConsulDouble> {
  const double = await ConsulDouble.start(options);
  doubles.push(double);
  return double;
}
afterEach(async () => {
  await Promise.all(doubles.splice(0).map((d) => d.close()));
});

async function call(double: ConsulDouble, method: string, path: string, body?: string, token?: string) {
  const response = await fetch(`${double.url}/v1/kv/${path}`, {
    method,
    ...(body === undefined ? {} : { body }),
    headers: token === undefined ? {} : { 'X-Consul-Token': token },
  });
  const text = await response.text();
  const index = response.headers.get('x-consul-index');
  return { status: response.status, text, index: index === null ? undefined : Number(index) };
}

describe('Consul KV double', () => {
  it('stores entries with indexes, base64 values and null for empty ones; an equal write changes nothing', async () => {
    const double = await start();
    expect((await call(double, 'PUT', 'app/db', 's3cret')).text).toBe('true');
    const read = await call(double, 'GET', 'app/db');
    expect(read.status).toBe(200);
    const [entry] = JSON.parse(read.text);
    expect(entry).toEqual({
      LockIndex: 0,
      Key: 'app/db',
      Flags: 0,
      Value: Buffer.from('s3cret').toString('base64'),
      CreateIndex: 2, // index 1 is the cluster's bootstrap
      ModifyIndex: 2,
    });
    expect(read.index).toBe(2);
    await call(double, 'PUT', 'app/db', 's3cret');
    expect(double.index).toBe(2);
    await call(double, 'PUT', 'app/empty', '');
    expect(JSON.parse((await call(double, 'GET', 'app/empty')).text)[0].Value).toBeNull();
    expect((await call(double, 'GET', 'app%2Fdb')).status).toBe(200); // a client that encodes "/"
    expect((await call(double, 'GET', 'app/db?raw')).text).toBe('s3cret');
  });

  it('answers X-Consul-Index per request shape, 404s included', async () => {
    const double = await start();
    const empty = await call(double, 'GET', 'missing');
    expect([empty.status, empty.index, empty.text]).toEqual([404, 1, '']); // table index 0, floored to 1
    await call(double, 'PUT', 'a/x', '1'); // 2
    await call(double, 'PUT', 'b/y', '2'); // 3
    await call(double, 'PUT', 'a/z', '3'); // 4
    await call(double, 'PUT', 'c/w', '4'); // 5
    expect((await call(double, 'GET', 'a/x')).index).toBe(2); // one key: its ModifyIndex
    expect((await call(double, 'GET', 'a/?recurse')).index).toBe(4); // a prefix: its max
    expect((await call(double, 'GET', 'a/?keys')).index).toBe(4);
    expect((await call(double, 'GET', 'missing')).index).toBe(5); // a 404: the table's index
    await call(double, 'DELETE', 'a/z'); // 6: a tombstone under a/
    expect((await call(double, 'GET', 'a/?recurse')).index).toBe(6);
    const gone = await call(double, 'GET', 'zzz/?recurse');
    expect([gone.status, gone.index]).toEqual([404, 6]);
  });

  it('tests query flags for presence: ?recurse=false still recurses', async () => {
    const double = await start();
    await call(double, 'PUT', 'p/a', '1');
    await call(double, 'PUT', 'p/b/c', '2');
    const listed = JSON.parse((await call(double, 'GET', 'p/?recurse=false')).text);
    expect(listed.map((e: { Key: string }) => e.Key)).toEqual(['p/a', 'p/b/c']);
    expect(JSON.parse((await call(double, 'GET', 'p/?keys=false')).text)).toEqual(['p/a', 'p/b/c']);
    expect(JSON.parse((await call(double, 'GET', 'p/?keys&separator=/')).text)).toEqual(['p/a', 'p/b/']);
    expect((await call(double, 'GET', '?keys')).status).toBe(200); // the root never 404s
    expect((await call(double, 'GET', 'nothing/?keys')).status).toBe(404);
  });

  it('follows the check-and-set truth table for PUT and DELETE', async () => {
    const double = await start();
    const put = async (query: string) => (await call(double, 'PUT', `k${query}`, 'v')).text;
    const del = async (query: string) => (await call(double, 'DELETE', `k${query}`)).text;
    expect(await put('?cas=5')).toBe('false'); // N > 0, key absent
    expect(await put('?cas=0')).toBe('true'); // 0, key absent: created
    expect(await put('?cas=0')).toBe('false'); // 0, key present
    const index = double.entry('k')?.ModifyIndex as number;
    expect(await put(`?cas=${index + 7}`)).toBe('false'); // mismatch
    double.put('k', 'other');
    const current = double.entry('k')?.ModifyIndex as number;
    expect(await put(`?cas=${current}`)).toBe('true'); // match
    expect(await del(`?cas=${current}`)).toBe('false'); // mismatch (the PUT moved it)
    expect(await del(`?cas=${double.entry('k')?.ModifyIndex}`)).toBe('true'); // match: deleted
    expect(double.entry('k')).toBeUndefined();
    expect(await del('?cas=3')).toBe('true'); // a missing key: true
    expect(await del('')).toBe('true'); // a plain delete of a missing key: true
    expect((await call(double, 'PUT', 'k?cas', 'v')).status).toBe(500); // cas without a number
    expect((await call(double, 'PUT', 'k?cas=1&acquire=s', 'v')).status).toBe(400);
  });

  it('blocks a query with an index until what it reads changes, or its wait passes', async () => {
    const double = await start();
    double.put('watched', 'v1');
    double.put('other', 'x');
    const index = double.entry('watched')?.ModifyIndex as number;
    const started = Date.now();
    const pending = call(double, 'GET', `watched?index=${index}&wait=5s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    double.put('other', 'y'); // does not touch the query
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(double.blocked).toBe(1);
    double.put('watched', 'v2');
    const answered = await pending;
    expect(answered.index).toBe(double.entry('watched')?.ModifyIndex);
    expect(Date.now() - started).toBeLessThan(2_000);
    const timed = Date.now();
    const idle = await call(double, 'GET', `watched?index=${answered.index}&wait=300ms`);
    expect(idle.index).toBe(answered.index); // a return is not a change
    expect(Date.now() - timed).toBeGreaterThanOrEqual(290);
    expect(Date.now() - timed).toBeLessThan(300 * (1 + 1 / 16) + 200);
    expect((await call(double, 'GET', 'watched?index=abc')).status).toBe(400);
    expect((await call(double, 'GET', 'watched?index=1&wait=5 s')).status).toBe(400);
  });

  it('moves indexes back on a restore; a query with a higher index then waits its whole wait', async () => {
    const double = await start();
    for (let i = 0; i < 10; i++) double.put('k', `v${i}`);
    double.restore(3);
    const started = Date.now();
    const answered = await call(double, 'GET', 'k?index=10&wait=300ms');
    expect(answered.index).toBe(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('enforces ACLs: unknown tokens, denied reads and writes, filtered lists', async () => {
    const double = await start({
      acl: {
        tokens: {
          reader: [
            { prefix: 'app/', policy: 'read' },
            { prefix: 'app/private/', policy: 'deny' },
          ],
          writer: [{ prefix: 'app/', policy: 'write' }],
          root: 'management',
        },
      },
    });
    double.put('app/a', '1');
    double.put('app/private/b', '2');
    expect(await call(double, 'GET', 'app/a', undefined, 'nope')).toMatchObject({
      status: 403,
      text: 'ACL not found',
    });
    expect(await call(double, 'GET', 'app/a')).toMatchObject({ status: 403, text: 'Permission denied' });
    expect((await call(double, 'GET', 'app/a', undefined, 'reader')).status).toBe(200);
    expect((await call(double, 'GET', 'app/private/b', undefined, 'reader')).status).toBe(403);
    const listed = JSON.parse((await call(double, 'GET', 'app/?recurse', undefined, 'reader')).text);
    expect(listed.map((e: { Key: string }) => e.Key)).toEqual(['app/a']);
    expect((await call(double, 'PUT', 'app/a', 'x', 'reader')).status).toBe(403);
    expect((await call(double, 'PUT', 'app/a', 'x', 'writer')).text).toBe('true');
    expect((await call(double, 'GET', 'other?keys', undefined, 'root')).status).toBe(404);
  });

  it('parses Go durations as Consul does', () => {
    expect(parseGoDuration('10s')).toBe(10_000);
    expect(parseGoDuration('1m30s')).toBe(90_000);
    expect(parseGoDuration('250ms')).toBe(250);
    expect(parseGoDuration('1.5h')).toBe(5_400_000);
    expect(parseGoDuration('10')).toBeUndefined();
    expect(parseGoDuration('s')).toBeUndefined();
  });
});
