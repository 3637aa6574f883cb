import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expectNoLeak } from '@secret-provider/testing';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdCluster, ROOT_PASSWORD } from './cluster.js';
import { etcdAvailable } from './helpers.js';

// The debug switches under the provider: grpc-js tracing (GRPC_TRACE=all GRPC_VERBOSITY=DEBUG),
// the `debug` package (DEBUG=*) and Node's own NODE_DEBUG. A child process runs the provider with
// each of them on, against etcd with authentication; its output must hold neither the password,
// nor an auth token etcd issued, nor a value, in any spelling.

const run = promisify(execFile);
const here = fileURLToPath(new URL('.', import.meta.url));
const available = etcdAvailable();
const PASSWORD = `debug-pa55-${Math.random().toString(36).slice(2)}`;
// etcd's simple tokens: 16 random letters, a dot, an index.
const SIMPLE_TOKEN = /[A-Za-z]{16}\.\d+/g;

describe.skipIf(!available)('debug output of the etcd provider', () => {
  let cluster: EtcdCluster;
  let dir: string;
  let outfile: string;

  beforeAll(async () => {
    cluster = await EtcdCluster.start(1, { auth: true });
    await cluster.ctl(['role', 'add', 'app']);
    await cluster.ctl(['role', 'grant-permission', 'app', '--prefix=true', 'readwrite', 'app/']);
    await cluster.ctl(['user', 'add', `app:${PASSWORD}`]);
    await cluster.ctl(['user', 'grant-role', 'app', 'app']);
    // Under node_modules (ignored by git), so the bundle's etcd3 resolves as a user's would.
    dir = await mkdtemp(join(here, '..', 'node_modules', '.tmp-etcd-debug-'));
    outfile = join(dir, 'child.mjs');
    await build({
      entryPoints: [join(here, 'fixtures', 'debug-child.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      conditions: ['@secret-provider/source'],
      external: ['etcd3'],
      outfile,
      logLevel: 'silent',
    });
  }, 30_000);

  afterAll(async () => {
    await cluster?.destroy();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
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
      const {
        GRPC_TRACE: _trace,
        GRPC_VERBOSITY: _verbosity,
        DEBUG: _debug,
        NODE_DEBUG: _node,
        ...rest
      } = process.env;
      const { stdout, stderr } = await run(process.execPath, [outfile], {
        cwd: dir,
        env: { ...rest, ...env, ETCD_CHILD_CONFIG: JSON.stringify(config) },
        timeout: 30_000,
        maxBuffer: 256 * 1024 * 1024,
      });

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
