import { isSecretError } from '@secret-provider/core';
import { EtcdProvider } from '@secret-provider/etcd';
import { pause, record, rejection, until, waitFor } from '@secret-provider/testing';
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdCluster, type EtcdMember } from './cluster.js';
import { countUpdates, etcdAvailable, reportedVersions, writer } from './helpers.js';

const available = etcdAvailable();

/** Member id (decimal, as the client reports it) -> member, from etcd's own member list. */
async function membersById(cluster: EtcdCluster): Promise<Map<string, EtcdMember>> {
  const list = JSON.parse(await cluster.ctl(['member', 'list', '-w', 'json'])) as {
    members: Array<{ ID: number | string; clientURLs: string[] }>;
  };
  const byId = new Map<string, EtcdMember>();
  const raw = await cluster.ctl(['member', 'list', '-w', 'json']);
  // IDs are uint64s: read them from the text, not through JSON numbers (which round them).
  const ids = [...raw.matchAll(/"ID":(\d+)/g)].map((m) => m[1] as string);
  list.members.forEach((entry, i) => {
    const member = cluster.members.find((m) => entry.clientURLs.includes(m.endpoint));
    const id = ids[i];
    if (member !== undefined && id !== undefined) byId.set(id, member);
  });
  return byId;
}

/** A put retried until the cluster takes it; each attempt writes a distinct value. */
async function putUntilAccepted(client: Etcd3, key: string, value: string): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    try {
      const response = await client
        .put(key)
        .value(`${value}#${attempt}`)
        .options({ deadline: Date.now() + 2_000 })
        .exec();
      return response.header.revision;
    } catch (error) {
      if (attempt >= 20) throw error;
      await pause(50);
    }
  }
}

describe.skipIf(!available)('EtcdProvider on a three-member cluster', () => {
  let cluster: EtcdCluster;

  beforeAll(async () => {
    cluster = await EtcdCluster.start(3);
  }, 30_000);

  afterAll(async () => {
    await cluster?.destroy();
  });

  it('moves to another member when the one it watches through dies: no update lost or repeated', async () => {
    const prefix = 'member-loss/';
    const etcd = new EtcdProvider({
      hosts: cluster.endpoints,
      prefix,
      requestTimeout: 2_000,
      watchReconnect: { base: 50, max: 500 },
    });
    const { events, handle } = await record(etcd);
    const keys = ['k0', 'k1', 'k2', 'k3', 'k4'];
    const sent = new Map<string, string[]>(keys.map((k) => [k, []]));
    const first = writer(cluster.endpoints);
    sent.get('k0')?.push(await putUntilAccepted(first, `${prefix}k0`, 'warm-up'));
    first.close();
    // The member the watch goes through, from the header of what it delivered.
    const watched = await waitFor(
      async () => {
        const id = etcd.watchStats()?.member;
        return id === undefined ? undefined : (await membersById(cluster)).get(id);
      },
      5_000,
      'the watched member',
    );
    const others = cluster.members.filter((m) => m !== watched);
    const out = writer(others.map((m) => m.endpoint));
    try {
      const total = 60;
      for (let i = 1; i < total; i++) {
        if (i === 20) await watched.stop('SIGKILL');
        const key = keys[i % keys.length] as string;
        sent.get(key)?.push(await putUntilAccepted(out, `${prefix}${key}`, `u${i}`));
        await pause(10);
      }
      const expected = [...sent.values()].reduce((n, v) => n + v.length, 0);
      const received = () => {
        const added = reportedVersions(events, 'added');
        const rotated = reportedVersions(events, 'rotated');
        return new Map(keys.map((k) => [k, [...(added.get(k) ?? []), ...(rotated.get(k) ?? [])]]));
      };
      await until(() => countUpdates(sent, received()).received >= expected, 15_000, 'every update');
      await pause(300);
      const counts = countUpdates(sent, received());
      console.log(
        `member-loss run: ${counts.sent} updates sent, ${counts.received} received, ${counts.lost} lost, ${counts.duplicated} duplicated (${counts.extra} extra commits of retried puts); watch stats ${JSON.stringify(etcd.watchStats())}`,
      );
      expect(counts).toMatchObject({ sent: expected, received: expected, lost: 0, duplicated: 0 });
      const stats = etcd.watchStats();
      expect(stats?.member).toBeDefined();
      expect((await membersById(cluster)).get(stats?.member as string)).not.toBe(watched);
      expect(stats?.reconnects).toBeGreaterThanOrEqual(1);
      // Reads go on through the members still up.
      expect((await etcd.get('k1')).reveal()).toMatch(/^u\d+#\d+$/);
    } finally {
      out.close();
      await handle.stop();
      await etcd.close();
      watched.start();
      await cluster.waitHealthy();
    }
  }, 40_000);

  it('with a majority down, reads fail with UNAVAILABLE within the request timeout, and recover when it returns', async () => {
    const etcd = new EtcdProvider({ hosts: cluster.endpoints, prefix: 'majority/', requestTimeout: 1_500 });
    const bare = writer(cluster.endpoints);
    try {
      await bare.put('majority/k').value('before');
      expect((await etcd.get('k')).reveal()).toBe('before');
      const [a, b] = cluster.members;
      if (a === undefined || b === undefined) throw new Error('three members expected');
      await a.stop('SIGKILL');
      await b.stop('SIGKILL');
      const took: number[] = [];
      for (let i = 0; i < 3; i++) {
        const started = Date.now();
        const error = await rejection(etcd.get('k'));
        took.push(Date.now() - started);
        expect(isSecretError(error, 'UNAVAILABLE'), String(error)).toBe(true);
      }
      console.log(
        `majority loss: reads failed UNAVAILABLE after ${took.join(', ')} ms (request timeout 1500 ms)`,
      );
      for (const ms of took) expect(ms).toBeLessThan(4_000);
      expect(isSecretError(await rejection(etcd.keys()), 'UNAVAILABLE')).toBe(true);
      a.start();
      b.start();
      await cluster.waitHealthy();
      const started = Date.now();
      const value = await waitFor(
        async () => {
          try {
            return (await etcd.get('k')).reveal();
          } catch (error) {
            if (!isSecretError(error, 'UNAVAILABLE')) throw error;
            return undefined;
          }
        },
        10_000,
        'a read after the majority returned',
      );
      expect(value).toBe('before');
      console.log(`majority loss: reads recovered ${Date.now() - started} ms after the cluster was healthy`);
    } finally {
      bare.close();
      await etcd.close();
    }
  }, 40_000);
});
