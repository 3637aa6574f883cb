import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expectNoLeak } from '@secret-provider/testing';
import { type BundledChild, bundleChild } from '@secret-provider/testing/child';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdCluster, ROOT_PASSWORD } from './cluster.js';
import { etcdAvailable } from './helpers.js';

// The debug switches under the provider: grpc-js tracing (GRPC_TRACE=all GRPC_VERBOSITY=DEBUG),
// the `debug` package (DEBUG=*) and Node's own NODE_DEBUG. A child process runs the provider with
// each of them on, against etcd with authentication; its output must hold neither the password,
// nor an auth token etcd issued, nor a value, in any spelling.

const here = fileURLToPath(new URL('.', import.meta.url));
const available = etcdAvailable();
const PASSWORD = `debug-pa55-${Math.random().toString(36).slice(2)}`;
// etcd's simple tokens: 16 random letters, a dot, an index.
const SIMPLE_TOKEN = /[A-Za-z]{16}\.\d+/g;

describe.skipIf(!available)('debug output of the etcd provider', () => {
  let cluster: EtcdCluster;
  let child: BundledChild | undefined;

  beforeAll(async () => {
    cluster = await EtcdCluster.start(1, { auth: true });
    await cluster.ctl(['role', 'add', 'app']);
    await cluster.ctl(['role', 'grant-permission', 'app', '--prefix=true', 'readwrite', 'app/']);
    await cluster.ctl(['user', 'add', `app:${PASSWORD}`]);
    await cluster.ctl(['user', 'grant-role', 'app', 'app']);
    // Under node_modules (ignored by git), so the bundle's etcd3 resolves as a user's would.
    child = await bundleChild(join(here, 'fixtures', 'debug-child.ts'), {
      under: join(here, '..', 'node_modules'),
      prefix: '.tmp-etcd-debug-',
      external: ['etcd3'],
    });
  }, 30_000);

  afterAll(async () => {
    await cluster?.destroy();
    await child?.remove();
  });

  /** A token etcd issues for the user, from its JSON gateway: what the detector must find. */
  async function issuedToken(): Promise<string> {
    const response = await fetch(`${cluster.endpoints[0]}/v3/auth/authenticate`, {
      method: 'POST',
      body: JSON.stringify({ name: 'app', password: PASSWORD }),
    });
    return ((await response.json()) as { token: string }).token;
  }

  const switches: ReadonlyArray<[string, Record<string, string>, RegExp[]]> = [
    [
      'GRPC_TRACE=all GRPC_VERBOSITY=DEBUG',
      { GRPC_TRACE: 'all', GRPC_VERBOSITY: 'DEBUG' },
      [/ \| call_stream| \| subchannel/],
    ],
    ['DEBUG=* NODE_DEBUG=*', { DEBUG: '*', DEBUG_DEPTH: '20', NODE_DEBUG: '*' }, [/^(NET|HTTP2) \d+: /m]],
    [
      'all together',
      { GRPC_TRACE: 'all', GRPC_VERBOSITY: 'DEBUG', DEBUG: '*', DEBUG_DEPTH: '20', NODE_DEBUG: '*' },
      [/ \| subchannel/, /^(NET|HTTP2) \d+: /m],
    ],
  ];

  it.each(switches)(
    '%s prints no password, auth token or value',
    async (_name, env, printed) => {
      const token = await issuedToken();
      expect(token.match(SIMPLE_TOKEN)).toEqual([token]);
      const nonce = () => Math.random().toString(36).slice(2);
      const seeded = `seeded-value-${nonce()}`;
      const written = `written-value-${nonce()}`;
      const rotated = `rotated-value-${nonce()}`;
      await cluster.ctl(['del', '--prefix', 'app/']);
      await cluster.ctl(['put', 'app/seeded', seeded]);
      const config = { hosts: cluster.endpoints, username: 'app', password: PASSWORD, written, rotated };
      if (child === undefined) throw new Error('the child was not built');
      const { stdout, stderr } = await child.run({ ...env, ETCD_CHILD_CONFIG: JSON.stringify(config) });

      expect(stdout.trim()).toBe('ok get,set,list,watch');
      const output = `${stdout}\n${stderr}`;
      for (const pattern of printed) expect(output).toMatch(pattern);
      expect(await cluster.ctl(['get', '--print-value-only', 'app/written'])).toBe(`${rotated}\n`);

      // The failure names the spelling and the length, never the secret.
      expectNoLeak([output], [PASSWORD, ROOT_PASSWORD, token, seeded, written, rotated], { encodings: true });
      expect(
        (output.match(SIMPLE_TOKEN) ?? []).map((found) => `a token of ${found.length} characters`),
      ).toEqual([]);
    },
    60_000,
  );
});
