import { randomBytes } from 'node:crypto';
import { describeProviderConformance } from '@secret-provider/conformance';
import { VaultDouble } from '@secret-provider/doubles/vault';
import { VaultProvider } from '@secret-provider/vault';
import { afterEach, beforeEach, describe, it } from 'vitest';

// The contract suite against the Vault double, once per KV engine version, through node-vault.
// Out-of-band writes go to the double's API with its root token, as another Vault client would.
for (const version of [2, 1] as const) {
  const mount = version === 2 ? 'secret' : 'kv';
  describeProviderConformance({
    name: `vault (KV v${version})`,
    test: { describe, it, beforeEach, afterEach },
    create: async () => {
      const double = await VaultDouble.start({ kv: { [mount]: { version } } });
      const provider = new VaultProvider({
        endpoint: double.url,
        auth: { method: 'token', token: double.rootToken },
        mounts: { [mount]: { version } },
        env: {},
        pollInterval: 100,
        retry: { baseDelayMs: 5, maxDelayMs: 50 },
      });
      const path = (key: string) => key.slice(mount.length + 1);
      return {
        provider,
        backend: {
          set: async (key, value) => {
            const res = double.kvPut(mount, path(key), { value });
            if (res.status >= 300) throw new Error(`backend write failed: ${res.status}`);
          },
          delete: async (key) => {
            double.call('DELETE', version === 2 ? `${mount}/data/${path(key)}` : `${mount}/${path(key)}`);
          },
        },
        cleanup: () => double.close(),
      };
    },
    makeKey: (() => {
      const run = randomBytes(4).toString('hex');
      return (i: number) => `${mount}/cf${run}-${i}`;
    })(),
    eventTimeoutMs: 5_000,
  });
}
