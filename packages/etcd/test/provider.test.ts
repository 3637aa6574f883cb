import { isSecretError, Secret } from '@secret-provider/core';
import { EtcdProvider } from '@secret-provider/etcd';
import { expectNoLeak, keysOf, pause, record, rejection, summary, until } from '@secret-provider/testing';
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdCluster } from './cluster.js';
import { countUpdates, etcdAvailable, modRevision, reportedVersions, TcpProxy, writer } from './helpers.js';

const available = etcdAvailable();

describe.skipIf(!available)('EtcdProvider on one etcd member', () => {
  let cluster: EtcdCluster;
  let bare: Etcd3;
  let prefixCounter = 0;
  /** A prefix no other test uses. */
  const freshPrefix = () => `test-${process.pid}-${++prefixCounter}/`;
  const open: EtcdProvider[] = [];
  const provider = (options: Partial<ConstructorParameters<typeof EtcdProvider>[0]> = {}) => {
    const created = new EtcdProvider({ hosts: cluster.endpoints, requestTimeout: 2_000, ...options });
    open.push(created);
    return created;
  };

  beforeAll(async () => {
    cluster = await EtcdCluster.start(1);
    bare = writer(cluster.endpoints);
  }, 30_000);

  afterAll(async () => {
    await Promise.all(open.map((p) => p.close()));
    bare?.close();
    await cluster?.destroy();
  });

  it('reads, writes, deletes and lists the keys under its prefix, named without it', async () => {
    const prefix = freshPrefix();
    await bare.put(`${prefix}db/password`).value('hunter2');
    await bare.put(`${prefix}api-token`).value('t0k3n');
    await bare.put(`other-${prefix}outside`).value('not mine');
    const etcd = provider({ prefix });

    expect((await etcd.get('db/password')).reveal()).toBe('hunter2');
    expect((await etcd.keys()).sort()).toEqual(['api-token', 'db/password']);
    expect(await etcd.keys({ prefix: 'db/' })).toEqual(['db/password']);
    expect(await etcd.has('api-token')).toBe(true);
    expect(await etcd.has('missing')).toBe(false);
    const missing = await rejection(etcd.get('outside'));
    expect(isSecretError(missing, 'NOT_FOUND')).toBe(true);

    await etcd.set('new-key', 'fresh value');
    expect(await bare.get(`${prefix}new-key`).string()).toBe('fresh value');
    await etcd.set('new-key', new Secret('from a secret'));
    expect(await bare.get(`${prefix}new-key`).string()).toBe('from a secret');
    await etcd.delete('new-key');
    expect(await bare.get(`${prefix}new-key`).string()).toBeNull();
    expect(isSecretError(await rejection(etcd.delete('new-key')), 'NOT_FOUND')).toBe(true);
    expect(etcd.capabilities).toMatchObject({
      write: true,
      delete: true,
      list: true,
      watch: true,
      has: true,
      metadata: true,
      versions: true,
      checkAndSet: true,
      expiry: false,
    });
  });

  it('reports mod_revision as the version, the same through two providers', async () => {
    const prefix = freshPrefix();
    await bare.put(`${prefix}k`).value('v1');
    const a = provider({ prefix });
    const b = provider({ prefix });
    const revision = await modRevision(bare, `${prefix}k`);
    expect((await a.metadata('k')).version).toBe(revision);
    expect((await b.get('k')).metadata?.version).toBe(revision);
    await a.set('k', 'v2');
    const next = await modRevision(bare, `${prefix}k`);
    expect(Number(next)).toBeGreaterThan(Number(revision));
    expect((await b.metadata('k')).version).toBe(next);
  });

  it('checks ifVersion against mod_revision in a transaction', async () => {
    const prefix = freshPrefix();
    const etcd = provider({ prefix });
    await etcd.set('cas', 'first', { ifVersion: '0' });
    const conflictOnCreate = await rejection(etcd.set('cas', 'again', { ifVersion: null }));
    expect(isSecretError(conflictOnCreate, 'CONFLICT')).toBe(true);
    const version = (await etcd.metadata('cas')).version as string;
    await etcd.set('cas', 'second', { ifVersion: version });
    const stale = await rejection(etcd.set('cas', 'lost', { ifVersion: version }));
    expect(isSecretError(stale, 'CONFLICT')).toBe(true);
    expect(await bare.get(`${prefix}cas`).string()).toBe('second');
    const garbage = await rejection(etcd.set('cas', 'lost', { ifVersion: 'not-a-revision' }));
    expect(isSecretError(garbage, 'CONFLICT')).toBe(true);

    // Concurrent check-and-set writers: exactly one of those holding the same version wins.
    const current = (await etcd.metadata('cas')).version as string;
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => etcd.set('cas', `racer-${i}`, { ifVersion: current })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(
      results.filter((r) => r.status === 'rejected' && isSecretError(r.reason, 'CONFLICT')),
    ).toHaveLength(7);
  });

  it('reads an older version while etcd keeps it, and none once compacted', async () => {
    const prefix = freshPrefix();
    const etcd = provider({ prefix });
    await etcd.set('history', 'old');
    const old = (await etcd.metadata('history')).version as string;
    await etcd.set('history', 'new');
    expect((await etcd.get('history', { version: old })).reveal()).toBe('old');
    expect((await etcd.get('history')).reveal()).toBe('new');
    // A revision at which this key was not written is no version of it.
    expect(isSecretError(await rejection(etcd.get('history', { version: '1' })), 'NOT_FOUND')).toBe(true);
    const latest = await modRevision(bare, `${prefix}history`);
    await bare.kv.compact({ revision: latest as string });
    const compacted = await rejection(etcd.get('history', { version: old }));
    expect(isSecretError(compacted, 'NOT_FOUND')).toBe(true);
  });

  it('reports added, rotated and removed for changes made by anyone, once each', async () => {
    const prefix = freshPrefix();
    await bare.put(`${prefix}existing`).value('e1');
    const etcd = provider({ prefix });
    const { events, handle } = await record(etcd);
    await bare.put(`${prefix}fresh`).value('f1');
    await bare.put(`${prefix}existing`).value('e2');
    await bare.put(`${prefix}existing`).value('e2'); // the same value again: no change
    await bare.delete().key(`${prefix}fresh`);
    await bare.put(`elsewhere/${prefix}x`).value('not watched');
    await until(() => summary(events).length >= 3, 5_000, 'three events');
    await pause(200);
    expect(summary(events)).toEqual(['added:fresh', 'rotated:existing', 'removed:fresh']);
    expect(events.filter((e) => e.type === 'error')).toEqual([]);
    await handle.stop();
  });

  it('reads the leaves of a JSON document and writes one leaf without losing the others', async () => {
    const prefix = freshPrefix();
    await bare
      .put(`${prefix}config`)
      .value(JSON.stringify({ db: { password: 'pw1', port: 5432 }, feature: true, gone: null }));
    const etcd = provider({ prefix, document: 'config' });
    expect((await etcd.get('db.password')).reveal()).toBe('pw1');
    expect((await etcd.get('db.port')).reveal()).toBe('5432');
    expect((await etcd.keys()).sort()).toEqual(['db.password', 'db.port', 'feature']);
    expect(isSecretError(await rejection(etcd.get('gone')), 'NOT_FOUND')).toBe(true);
    const { events, handle } = await record(etcd);

    const version = (await etcd.metadata('db.password')).version as string;
    expect(version).toBe(await modRevision(bare, `${prefix}config`));
    await etcd.set('db.password', 'pw2', { ifVersion: version });
    expect(isSecretError(await rejection(etcd.set('feature', 'x', { ifVersion: version })), 'CONFLICT')).toBe(
      true,
    );
    await etcd.set('db.user', 'app');
    await etcd.delete('feature');
    const stored = JSON.parse((await bare.get(`${prefix}config`).string()) as string);
    expect(stored).toEqual({ db: { password: 'pw2', port: 5432, user: 'app' }, gone: null });
    // Writes into a leaf's path, or over an object, would drop data: refused.
    expect(isSecretError(await rejection(etcd.set('db.password.inner', 'x')), 'CONFLICT')).toBe(true);
    expect(isSecretError(await rejection(etcd.set('db', 'x')), 'CONFLICT')).toBe(true);
    expect(isSecretError(await rejection(etcd.get('__proto__.x')), 'INVALID_KEY')).toBe(true);

    // Concurrent writers of different leaves: the document keeps every one.
    await Promise.all(Array.from({ length: 6 }, (_, i) => etcd.set(`many.k${i}`, `v${i}`)));
    const after = JSON.parse((await bare.get(`${prefix}config`).string()) as string);
    expect(Object.keys(after.many).sort()).toEqual(['k0', 'k1', 'k2', 'k3', 'k4', 'k5']);

    await until(() => keysOf(events, 'added').length >= 7, 5_000, 'leaf events');
    expect(keysOf(events, 'rotated')).toEqual(['db.password']);
    expect(keysOf(events, 'removed')).toEqual(['feature']);
    expect(keysOf(events, 'added').sort()).toEqual([
      'db.user',
      'many.k0',
      'many.k1',
      'many.k2',
      'many.k3',
      'many.k4',
      'many.k5',
    ]);
    await handle.stop();
  });

  it('reports a document that is not JSON as INVALID_VALUE, with no part of its text', async () => {
    const prefix = freshPrefix();
    const text = '{"db": {"password": "s3cr3t-value-in-broken-json"';
    await bare.put(`${prefix}config`).value(text);
    const etcd = provider({ prefix, document: 'config' });
    const error = await rejection(etcd.get('db.password'));
    expect(isSecretError(error, 'INVALID_VALUE')).toBe(true);
    expectNoLeak([error], ['s3cr3t-value-in-broken-json', 's3cr3t']);
  });

  it('after a compaction while it was cut off, reads everything and watches on: nothing lost, nothing repeated', async () => {
    const prefix = freshPrefix();
    const member = cluster.members[0];
    if (member === undefined) throw new Error('no member');
    const proxy = await TcpProxy.start(member.clientPort);
    try {
      await bare.put(`${prefix}a`).value('a0');
      await bare.put(`${prefix}b`).value('b0');
      await bare.put(`${prefix}c`).value('c0');
      const etcd = provider({ prefix, hosts: [proxy.endpoint], watchReconnect: { base: 50, max: 200 } });
      const { events, handle } = await record(etcd);
      const sent = new Map<string, string[]>();
      const put = async (key: string, value: string) => {
        const response = await bare.put(`${prefix}${key}`).value(value).exec();
        sent.set(key, [...(sent.get(key) ?? []), response.header.revision]);
      };
      await put('a', 'a1');
      await until(() => keysOf(events, 'rotated').includes('a'), 5_000, 'first rotation');

      proxy.cut();
      await put('a', 'a2');
      await put('b', 'b1');
      await bare.delete().key(`${prefix}c`);
      await bare.put(`${prefix}d`).value('d0');
      // Compact past everything the watcher saw: it cannot resume where it was.
      const head = await bare.put('unrelated').value('x').exec();
      await bare.kv.compact({ revision: head.header.revision });
      proxy.restore();

      await until(() => summary(events).includes('removed:c'), 10_000, 'the re-read after compaction');
      await put('a', 'a3');
      await until(() => (reportedVersions(events, 'rotated').get('a') ?? []).length >= 3, 5_000, 'a3');
      await pause(200);
      // The revisions in between were compacted away: a2 is reported at the re-read's version.
      const rotatedA = reportedVersions(events, 'rotated').get('a') ?? [];
      expect(rotatedA).toHaveLength(3);
      expect(new Set(rotatedA).size).toBe(3);
      expect(rotatedA[0]).toBe(sent.get('a')?.[0]);
      expect(rotatedA[2]).toBe(sent.get('a')?.[2]);
      // In between, the re-read reports what changed, in no particular order.
      const changes = summary(events);
      expect(changes[0]).toBe('rotated:a');
      expect(changes.at(-1)).toBe('rotated:a');
      expect(changes.slice(1, -1).sort()).toEqual(['added:d', 'removed:c', 'rotated:a', 'rotated:b']);
      expect(events.some((e) => e.type === 'error')).toBe(true);
      expect(etcd.watchStats()?.resyncs).toBeGreaterThanOrEqual(1);
      await handle.stop();
    } finally {
      await proxy.close();
    }
  });

  it('after a reconnection without compaction, resumes where it was: nothing lost, nothing repeated', async () => {
    const prefix = freshPrefix();
    const member = cluster.members[0];
    if (member === undefined) throw new Error('no member');
    const proxy = await TcpProxy.start(member.clientPort);
    try {
      const etcd = provider({ prefix, hosts: [proxy.endpoint], watchReconnect: { base: 50, max: 200 } });
      const { events, handle } = await record(etcd);
      const sent = new Map<string, string[]>();
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 5; i++) {
          const response = await bare.put(`${prefix}k${i}`).value(`r${round}-${i}`).exec();
          sent.set(`k${i}`, [...(sent.get(`k${i}`) ?? []), response.header.revision]);
        }
        proxy.cut();
        await pause(100);
        proxy.restore();
      }
      await until(() => keysOf(events, 'rotated').length >= 10, 10_000, 'every rotation').catch((error) => {
        throw new Error(
          `${(error as Error).message}: ${summary(events, ['added', 'rotated', 'removed', 'error']).join(' ')} ${JSON.stringify(etcd.watchStats())}`,
        );
      });
      await pause(300);
      const added = reportedVersions(events, 'added');
      const rotated = reportedVersions(events, 'rotated');
      const received = new Map(
        [...sent.keys()].map((k) => [k, [...(added.get(k) ?? []), ...(rotated.get(k) ?? [])]]),
      );
      expect(countUpdates(sent, received)).toEqual({
        sent: 15,
        received: 15,
        lost: 0,
        duplicated: 0,
        extra: 0,
      });
      await handle.stop();
    } finally {
      await proxy.close();
    }
  });

  it('a watch started while no member answers reports the outage, then arms by itself', async () => {
    const prefix = freshPrefix();
    const member = cluster.members[0];
    if (member === undefined) throw new Error('no member');
    const proxy = await TcpProxy.start(member.clientPort);
    proxy.cut();
    try {
      await bare.put(`${prefix}present`).value('p0');
      const etcd = provider({
        prefix,
        hosts: [proxy.endpoint],
        requestTimeout: 500,
        watchReconnect: { base: 50, max: 200 },
      });
      const { events, handle } = await record(etcd);
      await until(() => events.some((e) => e.type === 'error'), 5_000, 'an error event');
      const first = events.find((e) => e.type === 'error')?.event as { error: { code: string } };
      expect(first.error.code).toBe('UNAVAILABLE');
      // Several attempts fail the same way meanwhile (each within the request timeout): one event.
      await pause(1_600);
      expect(events.filter((e) => e.type === 'error')).toHaveLength(1);
      expect(etcd.watchStats()).toBeUndefined();
      proxy.restore();
      await until(() => etcd.watchStats()?.watchers === 1, 5_000, 'the watcher armed');
      await bare.put(`${prefix}present`).value('p1');
      await bare.put(`${prefix}later`).value('l0');
      await until(() => summary(events).length >= 2, 5_000, 'the changes after arming');
      // What existed when the watch first read is its starting point, not a change.
      expect(summary(events)).toEqual(['rotated:present', 'added:later']);
      await handle.stop();
    } finally {
      await proxy.close();
    }
  });

  it('fails with UNAVAILABLE within its request timeout when no member answers, keeping none of the client text', async () => {
    const member = cluster.members[0];
    if (member === undefined) throw new Error('no member');
    const proxy = await TcpProxy.start(member.clientPort);
    proxy.cut();
    try {
      const etcd = provider({ hosts: [proxy.endpoint], requestTimeout: 1_000 });
      const started = Date.now();
      const error = await rejection(etcd.get('anything'));
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(isSecretError(error, 'UNAVAILABLE')).toBe(true);
      expect((error as Error).message).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|No connection/);
      const write = await rejection(etcd.set('anything', 'value-that-must-not-leak'));
      expect(isSecretError(write, 'UNAVAILABLE')).toBe(true);
      expectNoLeak([error, write], ['value-that-must-not-leak']);
    } finally {
      await proxy.close();
    }
  });

  it('close() releases the client: no sockets or timers are left', async () => {
    const handles = () =>
      process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'Timeout').length;
    const before = handles();
    const prefix = freshPrefix();
    const etcd = new EtcdProvider({ hosts: cluster.endpoints, prefix });
    await etcd.set('k', 'v');
    const { handle } = await record(etcd);
    await bare.put(`${prefix}k`).value('v2');
    await handle.stop();
    await etcd.close();
    await until(() => handles() <= before, 5_000, 'the client to release its handles');
    expect(isSecretError(await rejection(etcd.get('k')), 'CLOSED')).toBe(true);
  });
});
