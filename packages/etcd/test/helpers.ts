// Helpers of the etcd tests: a writer that bypasses the provider, a loopback TCP proxy that can
// cut the provider off its member, and counting of updates.
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { SecretEvents } from '@secret-provider/core';
import type { Recorded } from '@secret-provider/testing';
import { Etcd3 } from 'etcd3';
import { ensureEtcd } from './cluster.js';

/** Whether the etcd tests run; prints why not once, so a skipped run says so. */
export function etcdAvailable(): boolean {
  const availability = ensureEtcd();
  if (!availability.available) console.warn(`etcd tests skipped: ${availability.reason}`);
  return availability.available;
}

/** A bare etcd3 client: writes "out of band", as another process would. */
export function writer(hosts: string[], auth?: { username: string; password: string }): Etcd3 {
  return new Etcd3({ hosts, ...(auth ? { auth } : {}) });
}

/** The `mod_revision` of `key` as etcd reports it. */
export async function modRevision(client: Etcd3, key: string): Promise<string | undefined> {
  const response = await client.get(key).exec();
  return response.kvs[0]?.mod_revision;
}

/**
 * A TCP proxy on 127.0.0.1 in front of one member. `cut()` drops every connection and refuses new
 * ones (closing them at once) until `restore()`; the member itself keeps running.
 */
export class TcpProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #cut = false;
  port = 0;

  private constructor(targetPort: number) {
    this.#server = createServer((client) => {
      if (this.#cut) {
        client.destroy();
        return;
      }
      const upstream = connect(targetPort, '127.0.0.1');
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket);
        socket.once('close', () => this.#sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  static async start(targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetPort);
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    const address = proxy.#server.address();
    proxy.port = typeof address === 'object' && address !== null ? address.port : 0;
    return proxy;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  cut(): void {
    this.#cut = true;
    for (const socket of this.#sockets) socket.destroy();
  }

  restore(): void {
    this.#cut = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Versions each key was reported at, by event type: what duplicates and losses are counted on. */
export function reportedVersions(
  events: readonly Recorded[],
  type: 'rotated' | 'added',
): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  for (const { type: kind, event } of events) {
    if (kind !== type) continue;
    if (type === 'rotated') {
      for (const change of (event as SecretEvents['rotated']).changes) {
        seen.set(change.key, [...(seen.get(change.key) ?? []), String(change.newVersion)]);
      }
    } else {
      const added = event as SecretEvents['added'];
      seen.set(added.key, [...(seen.get(added.key) ?? []), String(added.version)]);
    }
  }
  return seen;
}

/**
 * Counts of a run of updates: sent, received (sent versions reported at least once), lost,
 * duplicated (reports beyond the first), and extra (reported versions never sent: a write the
 * writer retried may have committed twice).
 */
export function countUpdates(
  sent: ReadonlyMap<string, readonly string[]>,
  received: ReadonlyMap<string, readonly string[]>,
): { sent: number; received: number; lost: number; duplicated: number; extra: number } {
  const counts = { sent: 0, received: 0, lost: 0, duplicated: 0, extra: 0 };
  for (const [key, versions] of sent) {
    counts.sent += versions.length;
    const got = received.get(key) ?? [];
    const unique = new Set(got);
    counts.duplicated += got.length - unique.size;
    for (const version of versions) {
      if (unique.has(version)) counts.received++;
      else counts.lost++;
    }
    const expected = new Set(versions);
    for (const version of unique) if (!expected.has(version)) counts.extra++;
  }
  return counts;
}
