import { describeProviderConformance } from '@secret-provider/conformance';
import { EtcdProvider } from '@secret-provider/etcd';
import { type Etcd3, KVClient } from 'etcd3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, it } from 'vitest';
import { EtcdCluster } from './cluster.js';
import { etcdAvailable, TcpProxy, writer } from './helpers.js';

const available = etcdAvailable();

/**
 * The suite's `failNextCall`: the next KV call of a client other than the test's own writer
 * rejects with the suite's error, thrown from inside etcd3 as a failing client would.
 */
let failing: { error: Error; except: unknown } | undefined;
for (const method of ['range', 'put', 'txn', 'deleteRange'] as const) {
  const original = KVClient.prototype[method] as (this: KVClient, ...args: unknown[]) => Promise<unknown>;
  (KVClient.prototype as unknown as Record<string, unknown>)[method] = function (
    this: KVClient,
    ...args: unknown[]
  ) {
    const pool = (this as unknown as { client: unknown }).client;
    if (failing !== undefined && pool !== failing.except) {
      const { error } = failing;
      failing = undefined;
      return Promise.reject(error);
    }
    return original.apply(this, args);
  };
}

/** Each test's provider talks to the member through a proxy the outage hook can cut. */
interface EtcdSubject {
  readonly provider: EtcdProvider;
  readonly proxy: TcpProxy;
}

const hooks = {
  failNextCall: (_subject: EtcdSubject, error: Error) => {
    failing = { error, except: (bareClient as unknown as { pool: unknown }).pool };
  },
  makeUnreachable: (subject: EtcdSubject) => {
    subject.proxy.cut();
    return () => subject.proxy.restore();
  },
};
let bareClient: Etcd3;

describe.skipIf(!available)('etcd conformance', () => {
  let cluster: EtcdCluster;
  let bare: Etcd3;
  let run = 0;
  const memberPort = () => cluster.members[0]?.clientPort ?? 0;
  /** Outages are noticed within a second and left within a few hundred ms. */
  const fast = { requestTimeout: 1_500, watchReconnect: { base: 50, max: 500 } };

  beforeAll(async () => {
    cluster = await EtcdCluster.start(1);
    bare = writer(cluster.endpoints);
    bareClient = bare;
  }, 30_000);

  afterEach(() => {
    failing = undefined;
  });

  afterAll(async () => {
    bare?.close();
    await cluster?.destroy();
  });

  /** A subject whose provider reaches the member through a fresh proxy. */
  const subject = async (
    options: Omit<ConstructorParameters<typeof EtcdProvider>[0], 'hosts'>,
    backend: (prefix: string) => {
      set(key: string, value: string): Promise<void>;
      delete(key: string): Promise<void>;
    },
  ) => {
    // A fresh prefix per test: no test sees another's keys.
    const prefix = `conformance-${++run}/`;
    const proxy = await TcpProxy.start(memberPort());
    return {
      proxy,
      cleanup: () => proxy.close(),
      provider: new EtcdProvider({ hosts: [proxy.endpoint], prefix, ...fast, ...options }),
      backend: backend(prefix),
    };
  };
  const keysBackend = (prefix: string) => ({
    set: async (key: string, value: string) => void (await bare.put(`${prefix}${key}`).value(value)),
    delete: async (key: string) => void (await bare.delete().key(`${prefix}${key}`)),
  });
  const documentBackend = (prefix: string) => {
    const edit = async (change: (document: Record<string, unknown>) => void) => {
      const text = await bare.get(`${prefix}config`).string();
      const document = text === null ? {} : (JSON.parse(text) as Record<string, unknown>);
      change(document);
      await bare.put(`${prefix}config`).value(JSON.stringify(document));
    };
    return {
      set: (key: string, value: string) =>
        edit((document) => {
          document[key] = value;
        }),
      delete: (key: string) =>
        edit((document) => {
          delete document[key];
        }),
    };
  };

  describeProviderConformance({
    name: 'etcd (keys under a prefix)',
    test: { describe, it, beforeEach, afterEach },
    ...hooks,
    create: () => subject({}, keysBackend),
  });

  describeProviderConformance({
    name: 'etcd (a JSON document)',
    test: { describe, it, beforeEach, afterEach },
    ...hooks,
    create: () => subject({ document: 'config', jsonKeys: 'flat' }, documentBackend),
  });

  describeProviderConformance({
    name: 'etcd (read-only)',
    test: { describe, it, beforeEach, afterEach },
    ...hooks,
    create: () => subject({ readOnly: true }, keysBackend),
  });
});
