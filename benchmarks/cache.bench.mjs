// The cache's costs, each against baselines measured in the same process and rounds:
// hit path, bytes per hit, stampede of cold and just-expired keys, retained memory, import time.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BaseProvider as PowertoolsBaseProvider } from '@aws-lambda-powertools/parameters/base';
import { CachedProvider } from '@secret-provider/core';
import { BaseProvider } from '@secret-provider/core/adapter';
import { LRUCache } from 'lru-cache';
import { compare, median, ratio, report, sleep } from './lib/harness.mjs';

const KEYS = 1024;
const TTL_MS = 5 * 60_000;
const keys = Array.from({ length: KEYS }, (_, i) => `service/secret-${i}`);
const secretValueFor = (i) => `${'v'.repeat(24)}${String(i).padStart(8, '0')}`; // 32 characters

/** A backend of `KEYS` secrets with configurable latency, counting its calls. */
class Backend extends BaseProvider {
  calls = 0;
  latencyMs = 0;
  constructor() {
    super({ name: 'bench-backend' });
  }
  async readSecret(key) {
    this.calls++;
    if (this.latencyMs > 0) await sleep(this.latencyMs);
    const i = Number(key.slice(key.lastIndexOf('-') + 1));
    return { value: secretValueFor(i), metadata: { version: '1' } };
  }
}

class PowertoolsBench extends PowertoolsBaseProvider {
  constructor() {
    super({});
  }
  async _get(name) {
    return secretValueFor(Number(name.slice(name.lastIndexOf('-') + 1)));
  }
  async _getMultiple() {
    return {};
  }
}

const results = [];

// ---- 1. hit path ------------------------------------------------------------------------------
{
  const lru = new LRUCache({ max: KEYS * 2, ttl: TTL_MS });
  for (let i = 0; i < KEYS; i++) lru.set(keys[i], secretValueFor(i));
  const leanAsync = async (key) => lru.get(key);
  const cached = new CachedProvider(new Backend(), { ttl: TTL_MS, max: KEYS * 2 });
  const powertools = new PowertoolsBench();
  for (const key of keys) {
    await cached.get(key);
    await powertools.get(key, { maxAge: TTL_MS / 1000 });
  }
  const opts = { maxAge: TTL_MS / 1000 };
  const ns = await compare(
    {
      'lru-cache get (sync)': (i) => lru.get(keys[i & (KEYS - 1)]),
      'CachedProvider.peek (sync)': (i) => cached.peek(keys[i & (KEYS - 1)]),
      'async fn around lru-cache get': (i) => leanAsync(keys[i & (KEYS - 1)]),
      'CachedProvider.get': (i) => cached.get(keys[i & (KEYS - 1)]),
      'Powertools BaseProvider.get (hit)': (i) => powertools.get(keys[i & (KEYS - 1)], opts),
    },
    { rounds: 21, iterations: 50_000 },
  );
  if (cached.stats().misses !== KEYS) throw new Error('hit benchmark missed the cache');
  const rows = Object.entries(ns).map(([name, value]) => ({
    candidate: name,
    'ns/op (median)': value.toFixed(1),
  }));
  results.push(report('cached get of 1,024 keys (32-char values, 5-minute TTL)', rows));
  console.log(
    'get vs lean async:',
    ratio(ns['CachedProvider.get'] / ns['async fn around lru-cache get'], 1.3),
    '| get vs Powertools hit:',
    ratio(ns['CachedProvider.get'] / ns['Powertools BaseProvider.get (hit)'], 0.2),
    '| peek vs sync lru-cache:',
    ratio(ns['CachedProvider.peek (sync)'] / ns['lru-cache get (sync)'], 1.5),
  );
}

// ---- 2. bytes allocated per hit (a child process with a fixed young generation large enough that
// no scavenge runs during a measurement, so the heap growth is the allocation) -------------------
{
  const child = fileURLToPath(new URL('./lib/alloc-per-hit.mjs', import.meta.url));
  const out = execFileSync(
    process.execPath,
    ['--expose-gc', '--min-semi-space-size=128', '--max-semi-space-size=128', child],
    { encoding: 'utf8' },
  );
  const measured = JSON.parse(out);
  results.push(report('bytes allocated per hit (median of 9 runs of 100,000 hits)', measured.rows));
  console.log(
    'CachedProvider.get bytes/hit, awaited by the caller:',
    `${measured.get.toFixed(0)} (goal <= 300)`,
    measured.get <= 300 ? 'ok' : 'MISSED',
    `| beyond the await itself: ${measured.beyondAwait.toFixed(1)}`,
  );
}

// ---- 3. stampedes -----------------------------------------------------------------------------
{
  const LATENCY = 5;
  const cold = [];
  const coldCalls = [];
  const expired = [];
  const expiredCalls = [];
  for (let round = 0; round < 20; round++) {
    let now = 1_000_000;
    const backend = new Backend();
    backend.latencyMs = LATENCY;
    const cache = new CachedProvider(backend, {
      ttl: 60_000,
      jitter: 0,
      staleWhileRevalidate: 60_000,
      now: () => now,
    });
    const start = performance.now();
    await Promise.all(Array.from({ length: 1000 }, () => cache.get(keys[0])));
    cold.push(performance.now() - start);
    coldCalls.push(backend.calls);

    now += 60_001; // just expired: served stale while one request revalidates
    const callerTimes = await Promise.all(
      Array.from({ length: 1000 }, async () => {
        const t = performance.now();
        await cache.get(keys[0]);
        return performance.now() - t;
      }),
    );
    expired.push(median(callerTimes));
    await sleep(LATENCY * 3);
    expiredCalls.push(backend.calls - 1);
  }
  // What one backend call costs here, with its timer, measured alike.
  const baseline = [];
  for (let round = 0; round < 20; round++) {
    const t = performance.now();
    await sleep(LATENCY);
    baseline.push(performance.now() - t);
  }
  const latency = median(baseline);
  results.push(
    report('1,000 concurrent gets of one key, 5 ms backend (medians of 20 rounds)', [
      { case: 'cold', 'backend calls (max)': Math.max(...coldCalls), 'wall ms': median(cold).toFixed(2) },
      {
        case: 'just expired, stale-while-revalidate',
        'backend calls (max)': Math.max(...expiredCalls),
        'caller median ms': median(expired).toFixed(3),
      },
      { case: 'one backend call alone (baseline)', 'wall ms': latency.toFixed(2) },
    ]),
  );
  console.log(
    'cold wall vs backend latency:',
    ratio(median(cold) / latency, 1.3),
    '| expired caller median vs latency:',
    ratio(median(expired) / latency, 0.1),
    '| backend calls per stampede:',
    Math.max(...coldCalls, ...expiredCalls),
  );
}

// ---- 4. retained memory per cached secret -----------------------------------------------------
{
  const child = fileURLToPath(new URL('./lib/retained-per-entry.mjs', import.meta.url));
  const out = execFileSync(process.execPath, ['--expose-gc', child], { encoding: 'utf8' });
  const measured = JSON.parse(out);
  results.push(report('retained bytes per cached secret (10,000 entries, median of 5)', measured.rows));
  console.log('CachedProvider entry vs Map<string,string> entry:', ratio(measured.ratio, 1.5));
}

// ---- 5. import time -------------------------------------------------------------------------------
{
  const here = fileURLToPath(new URL('.', import.meta.url));
  const timeImport = (specifier) => {
    const script = `const t=process.hrtime.bigint();await import(${JSON.stringify(specifier)});console.log(Number(process.hrtime.bigint()-t)/1e6)`;
    return Number(
      execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: here, encoding: 'utf8' }),
    );
  };
  const core = [];
  const lru = [];
  for (let i = 0; i < 15; i++) {
    lru.push(timeImport('lru-cache'));
    core.push(timeImport('@secret-provider/core'));
  }
  results.push(
    report('import time, fresh process per sample (median of 15)', [
      { module: 'lru-cache alone', ms: median(lru).toFixed(2) },
      { module: '@secret-provider/core', ms: median(core).toFixed(2) },
    ]),
  );
  console.log('core import vs lru-cache import:', ratio(median(core) / median(lru), 2));
}
