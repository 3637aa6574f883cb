import { describeProviderConformance } from '@secret-provider/conformance';
import { EtcdProvider } from '@secret-provider/etcd';
import type { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, it } from 'vitest';
import { EtcdCluster } from './cluster.js';
import { etcdAvailable, writer } from './helpers.js';

const available = etcdAvailable();

describe.skipIf(!available)('etcd conformance', () => {
  let cluster: EtcdCluster;
  let bare: Etcd3;
  let run = 0;

  beforeAll(async () => {
    cluster = await EtcdCluster.start(1);
    bare = writer(cluster.endpoints);
  }, 30_000);

  afterAll(async () => {
    bare?.close();
    await cluster?.destroy();
  });

  describeProviderConformance({
    name: 'etcd (keys under a prefix)',
    test: { describe, it, beforeEach, afterEach },
    create: () => {
      // A fresh prefix per test: no test sees another's keys.
      const prefix = `conformance-${++run}/`;
      return {
        provider: new EtcdProvider({ hosts: cluster.endpoints, prefix }),
        backend: {
          set: async (key: string, value: string) => void (await bare.put(`${prefix}${key}`).value(value)),
          delete: async (key: string) => void (await bare.delete().key(`${prefix}${key}`)),
        },
      };
    },
  });

  describeProviderConformance({
    name: 'etcd (a JSON document)',
    test: { describe, it, beforeEach, afterEach },
    create: () => {
      const prefix = `conformance-${++run}/`;
      const edit = async (change: (document: Record<string, unknown>) => void) => {
        const text = await bare.get(`${prefix}config`).string();
        const document = text === null ? {} : (JSON.parse(text) as Record<string, unknown>);
        change(document);
        await bare.put(`${prefix}config`).value(JSON.stringify(document));
      };
      return {
        provider: new EtcdProvider({
          hosts: cluster.endpoints,
          prefix,
          document: 'config',
          jsonKeys: 'flat',
        }),
        backend: {
          set: (key: string, value: string) =>
            edit((document) => {
              document[key] = value;
            }),
          delete: (key: string) =>
            edit((document) => {
              delete document[key];
            }),
        },
      };
    },
  });

  describeProviderConformance({
    name: 'etcd (read-only)',
    test: { describe, it, beforeEach, afterEach },
    create: () => {
      const prefix = `conformance-${++run}/`;
      return {
        provider: new EtcdProvider({ hosts: cluster.endpoints, prefix, readOnly: true }),
        backend: {
          set: async (key: string, value: string) => void (await bare.put(`${prefix}${key}`).value(value)),
          delete: async (key: string) => void (await bare.delete().key(`${prefix}${key}`)),
        },
      };
    },
  });
});
