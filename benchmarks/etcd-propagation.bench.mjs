// Change propagation through EtcdProvider: the time from a put (sent by another client) to the
// provider's `rotated` event, against a bare etcd3 watch on the same prefix timing the same puts
// in the same run. One real etcd member on 127.0.0.1, started here and removed after.
//
// Run: npx tsc -b tsconfig.build.json && node scripts/bundle.mjs && node benchmarks/etcd-propagation.bench.mjs
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEmitter } from '@secret-provider/core';
import { EtcdProvider } from '@secret-provider/etcd';
import { Etcd3 } from 'etcd3';
import { median, percentile, ratio, report, sleep } from './lib/harness.mjs';

const CHANGES = Number(process.env.CHANGES ?? 40);
const WARMUP = 5;
const KEYS = ['db-password', 'api-token', 'tls-key', 'username'];
const now = () => Number(process.hrtime.bigint()) / 1e6;

if (spawnSync('sh', ['-c', 'command -v etcd'], { stdio: 'ignore' }).status !== 0) {
  console.log('etcd is not installed (apt-get install etcd-server etcd-client): benchmark skipped');
  process.exit(0);
}

const freePort = () =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });

const root = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'etcd-bench-'));
const [clientPort, peerPort] = [await freePort(), await freePort()];
const member = spawn(
  'etcd',
  [
    '--name=bench',
    `--data-dir=${join(root, 'data')}`,
    `--listen-client-urls=http://127.0.0.1:${clientPort}`,
    `--advertise-client-urls=http://127.0.0.1:${clientPort}`,
    `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
    `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
    `--initial-cluster=bench=http://127.0.0.1:${peerPort}`,
    '--logger=zap',
    '--log-level=error',
  ],
  { stdio: 'ignore' },
);
const endpoint = `http://127.0.0.1:${clientPort}`;
const stop = () => {
  member.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
};
process.once('exit', stop);

try {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const health = await (await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(500) })).json();
      if (health.health === 'true') break;
    } catch {}
    if (Date.now() > deadline) throw new Error('etcd did not start within 15 s');
    await sleep(50);
  }

  const prefix = 'bench/';
  const writer = new Etcd3({ hosts: endpoint });
  for (const key of KEYS) await writer.put(`${prefix}${key}`).value('initial');

  // The provider, watching.
  const provider = new EtcdProvider({ hosts: endpoint, prefix });
  const emitter = createEmitter();
  const providerSeen = new Map();
  const rotatedPerChange = new Map();
  emitter.on('rotated', (event) => {
    const at = now();
    for (const change of event.changes) {
      const id = `${change.key}@${change.newVersion}`;
      rotatedPerChange.set(id, (rotatedPerChange.get(id) ?? 0) + 1);
      providerSeen.get(id)?.(at);
    }
  });
  const handle = provider.watch(emitter);
  await handle.ready;

  // The baseline: a bare etcd3 watcher on the same prefix.
  const baseline = new Etcd3({ hosts: endpoint });
  const bareSeen = new Map();
  const watcher = await baseline.watch().prefix(prefix).create();
  watcher.on('put', (kv) => {
    const at = now();
    bareSeen.get(`${kv.key.toString().slice(prefix.length)}@${kv.mod_revision}`)?.(at);
  });

  const providerMs = [];
  const bareMs = [];
  let missed = 0;
  for (let i = 0; i < CHANGES + WARMUP; i++) {
    await sleep(20 + Math.random() * 60);
    const key = KEYS[i % KEYS.length];
    // The revision is only known from the put's answer, which can arrive after the events: the
    // waits are keyed by the revision the put is expected to get, and checked against its answer.
    const expectedRevision = String(Number((await writer.get('no-such-key').exec()).header.revision) + 1);
    const id = `${key}@${expectedRevision}`;
    const providerAt = new Promise((resolve) => providerSeen.set(id, resolve));
    const bareAt = new Promise((resolve) => bareSeen.set(id, resolve));
    const putStart = now();
    const response = await writer.put(`${prefix}${key}`).value(`v${i}-${Math.random()}`).exec();
    if (response.header.revision !== expectedRevision) throw new Error('another writer changed the store');
    const timeout = sleep(5_000).then(() => Number.NaN);
    const [p, b] = await Promise.all([Promise.race([providerAt, timeout]), Promise.race([bareAt, timeout])]);
    providerSeen.delete(id);
    bareSeen.delete(id);
    if (Number.isNaN(p) || Number.isNaN(b)) {
      missed++;
      continue;
    }
    if (i < WARMUP) continue;
    providerMs.push(p - putStart);
    bareMs.push(b - putStart);
  }
  await sleep(200);
  const counts = [...rotatedPerChange.values()];

  await handle.stop();
  await provider.close();
  await watcher.cancel();
  baseline.close();
  writer.close();

  const medianRatio = median(providerMs) / median(bareMs);
  const p99Ratio = percentile(providerMs, 99) / percentile(bareMs, 99);
  report(`etcd change propagation (one member, ${KEYS.length} keys, put -> event)`, [
    {
      changes: providerMs.length,
      'bare etcd3 watch median ms': median(bareMs).toFixed(3),
      'provider rotated median ms': median(providerMs).toFixed(3),
      'median ratio': medianRatio.toFixed(2),
      'bare p99 ms': percentile(bareMs, 99).toFixed(3),
      'provider p99 ms': percentile(providerMs, 99).toFixed(3),
      'p99 ratio': p99Ratio.toFixed(2),
      'rotated per change (min-max)': `${Math.min(...counts)}-${Math.max(...counts)}`,
      missed,
    },
  ]);
  console.log('\nGoals:');
  console.log(`- median ${ratio(medianRatio, 1.5)}; p99 ${ratio(p99Ratio, 3)}`);
  const once = counts.length === CHANGES + WARMUP && counts.every((n) => n === 1);
  console.log(`- exactly one rotated event per change: ${once ? 'ok' : 'MISSED'}; missed ${missed} (goal 0)`);
} finally {
  stop();
}
