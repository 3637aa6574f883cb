// Change propagation through FileProvider: the time from a file change to the new value being
// readable through `get`, against a raw `fs.watch(dir)` reloader (read the file on every event)
// timing the same writes in the same run. Also: reads per Kubernetes AtomicWriter switch,
// `rotated` events per changed key, and lost updates when two writes land 10 ms apart.
//
// Run: node_modules/.bin/tsc -b tsconfig.build.json && node --expose-gc benchmarks/file-propagation.bench.mjs
import {
  existsSync,
  watch as fsWatch,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEmitter } from '@secret-provider/core';
import { FileProvider } from '@secret-provider/file';
import { median, percentile, ratio, report, sleep } from './lib/harness.mjs';

const REPETITIONS = Number(process.env.REPETITIONS ?? 25);
const PAIR_RUNS = 20;
const KEYS = ['db_password', 'api_token', 'tls_key', 'username'];
const SETTLE_MS = 150; // debounce (25 ms) plus room for any duplicate event to show up

const randomGap = () => 20 + Math.random() * 100;
const now = () => Number(process.hrtime.bigint()) / 1e6;

/** kubelet's AtomicWriter (pkg/volume/util/atomic_writer.go), step by step. */
let stampCounter = 0;
function atomicWriterUpdate(dir, payload) {
  const tsDir = mkdtempSync(join(dir, `..2026_01_01_00_00_${String(stampCounter++ % 60).padStart(2, '0')}.`));
  for (const [key, value] of Object.entries(payload)) writeFileSync(join(tsDir, key), value, { mode: 0o400 });
  const dataLink = join(dir, '..data');
  const old = existsSync(dataLink) ? readlinkSync(dataLink) : undefined;
  symlinkSync(tsDir.slice(dir.length + 1), join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), dataLink);
  for (const key of Object.keys(payload))
    if (!existsSync(join(dir, key))) symlinkSync(join('..data', key), join(dir, key));
  for (const name of readdirSync(dir))
    if (!name.startsWith('..') && !(name in payload)) unlinkSync(join(dir, name));
  if (old !== undefined) rmSync(join(dir, old), { recursive: true, force: true });
}

const writers = {
  'in-place write': (dir, key, value) => writeFileSync(join(dir, key), value),
  'write-temp-then-rename': (dir, key, value) => {
    writeFileSync(join(dir, `.${key}.swp`), value);
    renameSync(join(dir, `.${key}.swp`), join(dir, key));
  },
  'AtomicWriter ..data switch': (dir, key, value, payload) => {
    payload[key] = value;
    atomicWriterUpdate(dir, payload);
  },
};

/** Sets up a directory with KEYS in the layout the writer expects. */
function setup(name) {
  const dir = mkdtempSync(join(tmpdir(), 'file-bench-'));
  const payload = Object.fromEntries(KEYS.map((k) => [k, `${k}-initial`]));
  if (name.startsWith('AtomicWriter')) atomicWriterUpdate(dir, payload);
  else for (const [k, v] of Object.entries(payload)) writeFileSync(join(dir, k), v, { mode: 0o600 });
  return { dir, payload };
}

/** The baseline: raw fs.watch on the directory, re-reading the key file on every event. */
function rawReloader(dir, key) {
  let expected;
  let resolveSeen;
  const watcher = fsWatch(dir, () => {
    if (expected === undefined) return;
    const wanted = expected;
    readFile(join(dir, key), 'utf8').then(
      (value) => {
        if (value === wanted && expected === wanted) {
          expected = undefined;
          resolveSeen(now());
        }
      },
      () => {},
    );
  });
  return {
    expect(value) {
      expected = value;
      return new Promise((resolve) => {
        resolveSeen = resolve;
      });
    },
    close: () => watcher.close(),
  };
}

async function waitForProvider(provider, key, value, deadlineMs = 5_000) {
  const stop = now() + deadlineMs;
  for (;;) {
    try {
      if ((await provider.get(key)).reveal() === value) return now();
    } catch {}
    if (now() > stop) return Number.NaN;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function propagation(name) {
  const { dir, payload } = setup(name);
  const provider = new FileProvider({ path: dir, format: 'directory', checkPermissions: false });
  const emitter = createEmitter();
  const rotated = new Map();
  emitter.on('rotated', (event) => {
    for (const key of event.keys) rotated.set(key, (rotated.get(key) ?? 0) + 1);
  });
  const handle = provider.watch(emitter);
  await handle.ready;
  const key = KEYS[0];
  const raw = rawReloader(dir, key);
  const providerMs = [];
  const rawMs = [];
  const reloadsPerChange = [];
  const rotatedPerChange = [];
  await sleep(50);
  for (let i = 0; i < REPETITIONS + 3; i++) {
    await sleep(randomGap());
    const value = `${key}-${i}-${Math.random().toString(36).slice(2)}`;
    const reloadsBefore = provider.stats().reloads;
    rotated.clear();
    const rawSeen = raw.expect(value);
    const start = now();
    writers[name](dir, key, value, payload);
    const [providerAt, rawAt] = await Promise.all([waitForProvider(provider, key, value), rawSeen]);
    await sleep(SETTLE_MS);
    if (i < 3) continue; // warm-up
    providerMs.push(providerAt - start);
    rawMs.push(rawAt - start);
    reloadsPerChange.push(provider.stats().reloads - reloadsBefore);
    rotatedPerChange.push(rotated.get(key) ?? 0);
  }
  raw.close();
  await handle.stop();
  await provider.close();
  rmSync(dir, { recursive: true, force: true });
  return { providerMs, rawMs, reloadsPerChange, rotatedPerChange };
}

/** Two writes 10 ms apart; after the settle, is the second value the one served? */
async function pairs(name) {
  const { dir, payload } = setup(name);
  const provider = new FileProvider({ path: dir, format: 'directory', checkPermissions: false });
  const handle = provider.watch(createEmitter());
  await handle.ready;
  const key = KEYS[1];
  let lost = 0;
  for (let run = 0; run < PAIR_RUNS; run++) {
    await sleep(randomGap());
    writers[name](dir, key, `first-${run}`, payload);
    await sleep(10);
    writers[name](dir, key, `second-${run}`, payload);
    await sleep(SETTLE_MS + 100);
    if ((await provider.get(key)).reveal() !== `second-${run}`) lost++;
  }
  await handle.stop();
  await provider.close();
  rmSync(dir, { recursive: true, force: true });
  return lost;
}

/** For contrast: a reloader on chokidar's `change` event with default options. */
async function chokidarPairs() {
  let chokidar;
  try {
    const require = createRequire(new URL('../packages/file/package.json', import.meta.url));
    chokidar = await import(require.resolve('chokidar'));
  } catch {
    return undefined;
  }
  const { dir } = setup('in-place write');
  const key = KEYS[1];
  let current = `${key}-initial`;
  const watcher = chokidar.watch(dir, { ignoreInitial: true });
  watcher.on('change', async (path) => {
    if (path.endsWith(key)) current = await readFile(path, 'utf8');
  });
  await new Promise((resolve) => watcher.once('ready', resolve));
  let lost = 0;
  for (let run = 0; run < PAIR_RUNS; run++) {
    await sleep(randomGap());
    writeFileSync(join(dir, key), `first-${run}`);
    await sleep(10);
    writeFileSync(join(dir, key), `second-${run}`);
    await sleep(SETTLE_MS + 100);
    if (current !== `second-${run}`) lost++;
  }
  await watcher.close();
  rmSync(dir, { recursive: true, force: true });
  return lost;
}

const rows = [];
const checks = [];
for (const name of Object.keys(writers)) {
  const r = await propagation(name);
  const medianRatio = median(r.providerMs) / median(r.rawMs);
  const p99Ratio = percentile(r.providerMs, 99) / percentile(r.rawMs, 99);
  const lost = await pairs(name);
  rows.push({
    change: name,
    runs: r.providerMs.length,
    'raw fs.watch median ms': median(r.rawMs).toFixed(3),
    'provider median ms': median(r.providerMs).toFixed(3),
    'median ratio': medianRatio.toFixed(2),
    'raw p99 ms': percentile(r.rawMs, 99).toFixed(3),
    'provider p99 ms': percentile(r.providerMs, 99).toFixed(3),
    'p99 ratio': p99Ratio.toFixed(2),
    'reads/change (max)': Math.max(...r.reloadsPerChange),
    'rotated/changed key (min-max)': `${Math.min(...r.rotatedPerChange)}-${Math.max(...r.rotatedPerChange)}`,
    [`lost of ${PAIR_RUNS} pairs`]: lost,
  });
  checks.push(`${name}: median ${ratio(medianRatio, 3)}; p99 ${ratio(p99Ratio, 10)}`);
  if (name.startsWith('AtomicWriter')) {
    const max = Math.max(...r.reloadsPerChange);
    checks.push(`${name}: reads per switch max ${max} (goal <= 1) ${max <= 1 ? 'ok' : 'MISSED'}`);
  }
  const rot = r.rotatedPerChange;
  const once = rot.every((n) => n === 1);
  checks.push(
    `${name}: rotated events per changed key ${Math.min(...rot)}-${Math.max(...rot)} (goal exactly 1) ${once ? 'ok' : 'MISSED'}`,
  );
  checks.push(`${name}: lost updates ${lost}/${PAIR_RUNS} (goal 0) ${lost === 0 ? 'ok' : 'MISSED'}`);
}
report('File change propagation (directory layout, 4 keys)', rows);
const naive = await chokidarPairs();
if (naive !== undefined)
  console.log(
    `\nFor contrast, a naive reloader on chokidar 'change' lost ${naive}/${PAIR_RUNS} pairs of in-place writes 10 ms apart.`,
  );
console.log('\nGoals:');
for (const line of checks) console.log(`- ${line}`);
