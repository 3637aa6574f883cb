// Backend load of a fleet on one Vault: 500 instances x 20 secrets for one simulated hour, each
// instance a real VaultProvider (its static-secret refresh loop, its jitter, its back-off, the
// core cache where used) with a real node-vault client, on one simulated clock. Requests go
// through node-vault's pluggable request layer to the Vault double's API logic in process (the
// same `VaultState` the integration tests serve over HTTP), which counts every request.
//
//   pnpm run build && node --expose-gc benchmarks/vault-fleet.bench.mjs
//
// The model, stated so the figures can be judged:
// - All instances start in the same second (a fleet-wide restart: the worst case for lock-step)
//   and read their 20 KV v2 secrets at once. Each instance's application then reads every secret
//   every 30 s (phase random per instance).
// - Static secrets are re-read every TTL = 300 s (`staticRefresh.intervals`), by each provider's
//   background loop (every 10 s). "Jittered" is the default: each interval drawn from
//   300 s x (1 +/- 0.1), the first one spread over one interval. "Fixed TTL" is the contrast:
//   jitter 0 and no spread, i.e. every instance re-reads every secret exactly every 300 s.
// - Steady state is [600 s, 3600 s): the first two TTLs (start-up reads, the spreading first
//   interval) are warm-up and reported apart.
// - Throttling run: from 1800 s to 2400 s every KV read answers 429 with `Retry-After: 30`
//   (Vault's rate-limit quota with response headers on). Errors that reach the application are
//   counted; every instance holds a value of every secret (read at start), so the goal is zero.
//   The same throttling is also run against the core cache (`cache: { ttl, staleIfError }`, on
//   the provider's cache defaults, which include `spreadFirst`) instead of the refresh loop, and,
//   as a contrast, against the cache with `spreadFirst: false` (core's bare default).
// - Both come out of the throttling through core's one hold-off (`HoldOff`): the backlog is
//   released spread over the shortest period (TTL or interval), after one probe per instance.
//   "peak/mean per 10 s" over the steady window covers the throttling and what follows it.
// - Figures are counts from a deterministic simulation (seeded random per instance), not
//   timings, so one round is exact; wall time is printed for information only.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { createEmitter } from '@secret-provider/core';
import { ManualClock } from '@secret-provider/core/adapter';
import { VaultProvider } from '@secret-provider/vault';
import { ratio, report } from './lib/harness.mjs';

const INSTANCES = Number(process.env.INSTANCES ?? 500);
const SECRETS = 20;
const TTL_S = 300;
const HOUR_MS = 3_600_000;
const BUCKET_MS = 10_000;
const WARMUP_MS = 2 * TTL_S * 1000;
const APP_READ_EVERY_MS = 30_000;
const THROTTLE = { from: 1_800_000, to: 2_400_000, retryAfterS: 30 };
// Another seed gives another, equally valid, run of the same model (to check a figure is not luck).
const SEED = Number(process.env.SEED ?? 0);

// ---- the Vault double's API logic, in process ------------------------------------------------------

/** The double's API logic, from its build (the doubles are a private workspace package). */
async function loadVaultState() {
  return (await import('@secret-provider/doubles/vault')).VaultState;
}

// node-vault is a dependency of the vault package, not of the benchmarks: load it from there.
const nodeVault = createRequire(fileURLToPath(import.meta.resolve('@secret-provider/vault')))('node-vault');

/** A seeded random source, so that every run of the simulation is the same. */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---- one simulation -------------------------------------------------------------------------------

async function simulate(VaultState, { name, providerOptions, throttle = false }) {
  const started = Date.now();
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const t0 = clock.now();
  const state = new VaultState({ now: () => clock.now(), kv: { secret: { version: 2 } } });
  for (let s = 0; s < SECRETS; s++) state.handle(put(state, `app/s${s}`, `value-${s}`));

  const buckets = new Map(); // 10 s bucket index -> KV reads
  let kvReads = 0;
  let otherRequests = 0;
  let throttled = 0;
  // node-vault's request layer (`request-promise` option): every request of every instance.
  const transport = {
    defaults: () => async (options) => {
      const url = new URL(options.uri);
      const path = decodeURIComponent(url.pathname.replace(/^\/v1\//, ''));
      const elapsed = clock.now() - t0;
      const isKvRead = options.method === 'GET' && path.startsWith('secret/data/');
      if (isKvRead) {
        kvReads++;
        const bucket = Math.floor(elapsed / BUCKET_MS);
        buckets.set(bucket, (buckets.get(bucket) ?? 0) + 1);
      } else otherRequests++;
      if (throttle && isKvRead && elapsed >= THROTTLE.from && elapsed < THROTTLE.to) {
        throttled++;
        return {
          statusCode: 429,
          headers: { 'retry-after': String(THROTTLE.retryAfterS) },
          body: { errors: [`request path "${path}": rate limit quota exceeded`] },
          request: { path: url.pathname },
        };
      }
      const method = options.method === 'GET' && url.searchParams.get('list') ? 'LIST' : options.method;
      const response = state.handle({
        method,
        path,
        query: url.searchParams,
        headers: lower(options.headers),
        body: options.json,
      });
      return { statusCode: response.status, body: response.body ?? '', request: { path: url.pathname } };
    },
  };

  let appErrors = 0;
  let appReads = 0;
  let backgroundErrors = 0;
  const providers = [];
  for (let i = 0; i < INSTANCES; i++) {
    const random = mulberry32(i + 1 + SEED * 1_000_003);
    const client = nodeVault({
      endpoint: 'http://vault.sim:8200',
      token: state.rootToken,
      'request-promise': transport,
    });
    const provider = new VaultProvider({
      client,
      auth: { method: 'token', token: state.rootToken },
      clock,
      random,
      env: {},
      ...providerOptions(clock, random),
    });
    // Background failures are events; count them (they do not reach the application).
    const events = createEmitter();
    events.on('error', () => backgroundErrors++);
    provider.watch(events);
    providers.push({ provider, random });
  }
  // Start-up: every instance reads its secrets at once.
  await Promise.all(providers.map(({ provider }) => readAll(provider)));
  // The application's reads, every 30 s per instance from a random phase.
  for (const { provider, random } of providers) {
    const tick = async () => {
      await readAll(provider);
      clock.setTimer(tick, APP_READ_EVERY_MS);
    };
    clock.setTimer(tick, random() * APP_READ_EVERY_MS);
  }
  async function readAll(provider) {
    for (let s = 0; s < SECRETS; s++) {
      appReads++;
      try {
        await provider.get(`secret/app/s${s}`);
      } catch {
        appErrors++;
      }
    }
  }
  await clock.advance(HOUR_MS);
  await Promise.all(providers.map(({ provider }) => provider.close()));

  const series = Array.from({ length: HOUR_MS / BUCKET_MS }, (_, b) => buckets.get(b) ?? 0);
  const steady = series.slice(WARMUP_MS / BUCKET_MS);
  const steadyReads = steady.reduce((a, b) => a + b, 0);
  const ttls = (HOUR_MS - WARMUP_MS) / (TTL_S * 1000);
  const mean = steadyReads / steady.length;
  return {
    name,
    kvReads,
    otherRequests,
    throttled,
    appReads,
    appErrors,
    backgroundErrors,
    perInstancePerTtlSteady: steadyReads / INSTANCES / ttls,
    perInstancePerTtlHour: kvReads / INSTANCES / (HOUR_MS / (TTL_S * 1000)),
    peakPer10s: Math.max(...steady),
    meanPer10s: mean,
    peakToMean: Math.max(...steady) / mean,
    startupPeak: Math.max(...series.slice(0, WARMUP_MS / BUCKET_MS)),
    throttleWindowReads: series
      .slice(THROTTLE.from / BUCKET_MS, THROTTLE.to / BUCKET_MS)
      .reduce((a, b) => a + b, 0),
    wallSeconds: (Date.now() - started) / 1000,
  };
}

function put(state, path, value) {
  return {
    method: 'POST',
    path: `secret/data/${path}`,
    query: new URLSearchParams(),
    headers: { 'x-vault-token': state.rootToken },
    body: { data: { value } },
  };
}

function lower(headers = {}) {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}

// ---- runs -----------------------------------------------------------------------------------------

const VaultState = await loadVaultState();
const refresh = (jitter, spreadFirst) => (_clock, random) => ({
  staticRefresh: { intervals: { 'secret/**': TTL_S }, jitter, spreadFirst, loopIntervalMs: 10_000 },
  // The provider's default cache sits in front; its random source is seeded too (its misses
  // reach the refresh loop and reorder what it holds, so an unseeded cache makes runs differ).
  cache: { random },
  // Watching only to count background error events: no prefixes to list, no polls in the hour.
  watch: { prefixes: [] },
  pollInterval: HOUR_MS * 10,
});
const jittered = await simulate(VaultState, {
  name: 'jittered (defaults)',
  providerOptions: refresh(0.1, true),
});
const fixed = await simulate(VaultState, {
  name: 'fixed TTL, no jitter',
  providerOptions: refresh(0, false),
});
const throttled = await simulate(VaultState, {
  name: 'jittered + 429 Retry-After 30 s',
  providerOptions: refresh(0.1, true),
  throttle: true,
});
const cacheRun = (name, extra) =>
  simulate(VaultState, {
    name,
    throttle: true,
    providerOptions: (clock, random) => ({
      // The cache's own random source too, so that the run is the same every time.
      cache: { ttl: TTL_S * 1000, staleIfError: HOUR_MS, now: () => clock.now(), random, ...extra },
      retry: { retries: 1, maxRetryAfterMs: 0 },
      watch: { prefixes: [] },
      pollInterval: HOUR_MS * 10,
    }),
  });
const cacheThrottled = await cacheRun('core cache staleIfError + 429', {});
const cacheLockStep = await cacheRun('core cache, spreadFirst off, + 429', { spreadFirst: false });

const rows = [jittered, fixed, throttled, cacheThrottled, cacheLockStep].map((r) => ({
  run: r.name,
  'KV reads': r.kvReads,
  'reads/instance/TTL (steady)': r.perInstancePerTtlSteady.toFixed(3),
  'reads/instance/TTL (whole hour)': r.perInstancePerTtlHour.toFixed(3),
  'peak per 10 s (steady)': r.peakPer10s,
  'mean per 10 s (steady)': r.meanPer10s.toFixed(1),
  'peak/mean': r.peakToMean.toFixed(2),
  'start-up peak per 10 s': r.startupPeak,
  'other requests': r.otherRequests,
  '429s answered': r.throttled,
  'app reads': r.appReads,
  'app errors': r.appErrors,
  'background error events': r.backgroundErrors,
  'wall s': r.wallSeconds.toFixed(1),
}));
report(`Vault fleet: ${INSTANCES} instances x ${SECRETS} secrets, TTL ${TTL_S} s, one simulated hour`, rows);

const checks = [
  [
    'reads per instance per TTL vs distinct secrets (steady, jittered)',
    ratio(jittered.perInstancePerTtlSteady / SECRETS, 1.05),
  ],
  ['peak/mean per 10 s (steady, jittered)', ratio(jittered.peakToMean, 1.5)],
  [
    'peak/mean per 10 s (steady, fixed TTL contrast)',
    `${fixed.peakToMean.toFixed(2)}x (contrast: lock-step)`,
  ],
  [
    'errors reaching the application during 429 (refresh loop)',
    `${throttled.appErrors} (goal 0) ${throttled.appErrors === 0 ? 'ok' : 'MISSED'}`,
  ],
  [
    'errors reaching the application during 429 (core cache staleIfError)',
    `${cacheThrottled.appErrors} (goal 0) ${cacheThrottled.appErrors === 0 ? 'ok' : 'MISSED'}`,
  ],
  [
    'KV reads during the 10 min of 429, against the same window unthrottled',
    `${throttled.throttleWindowReads} vs ${jittered.throttleWindowReads}: ${ratio(throttled.throttleWindowReads / jittered.throttleWindowReads, 1)}`,
  ],
  [
    'peak/mean per 10 s with the throttling and after it (refresh loop; backlog spread over one interval)',
    ratio(throttled.peakToMean, 1.5),
  ],
  [
    'peak/mean per 10 s with the throttling and after it (core cache; backlog spread over one TTL)',
    ratio(cacheThrottled.peakToMean, 1.5),
  ],
  [
    'peak/mean per 10 s, core cache with spreadFirst off (contrast: a fleet started together stays in step)',
    `${cacheLockStep.peakToMean.toFixed(2)}x (contrast)`,
  ],
];
console.log('\n## goal checks');
for (const [what, result] of checks) console.log(`- ${what}: ${result}`);
