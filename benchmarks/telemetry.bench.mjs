// What publishing through diagnostics_channel costs a cached `get`.
// "Before" is core as it was just before telemetry landed (the parent of the commit that added
// packages/core/src/telemetry.ts, or the commit given as TELEMETRY_BASE), bundled at start from
// that commit's sources with the same esbuild settings as the current sources, so both builds
// differ only by their code. Candidates run in alternating rounds in one process; each figure is
// the median of the rounds, and each claim a ratio to "before" measured in the same rounds.
// Whichever build is loaded and warmed first in a process tends to run faster (two copies of
// the same sources differ by 3-5% here), and one process's JIT and heap state can shift a ratio
// further, so the comparison runs in PROCESSES processes per order (each build first in turn):
// per order, the median of the processes' ratios; each claim is the geometric mean of the two.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { median, ratio, report } from './lib/harness.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const KEYS = 1024;
const ROUNDS = Number(process.env.ROUNDS ?? 21);
const ITERATIONS = 20_000;
const PROCESSES = Number(process.env.PROCESSES ?? 3);
const keys = Array.from({ length: KEYS }, (_, i) => `service/secret-${i}`);

const git = (...args) => execFileSync('git', args, { cwd: root, encoding: 'utf8' }).trim();
const added = git('log', '--diff-filter=A', '--format=%H', '--', 'packages/core/src/telemetry.ts')
  .split('\n')
  .at(-1);
const base = process.env.TELEMETRY_BASE ?? git('rev-parse', `${added}^`);
/** Set in the two measuring processes: which build is loaded, warmed and timed first. */
const order = process.env.TELEMETRY_ORDER;

/** Core's sources at `commit` (or the working tree), bundled into one ESM file under `dir`. */
async function bundleCore(dir, commit) {
  const src = join(dir, 'packages/core/src');
  mkdirSync(src, { recursive: true });
  const tar =
    commit === undefined
      ? undefined
      : execFileSync('git', ['archive', commit, 'packages/core/src'], { cwd: root });
  if (tar === undefined) execFileSync('cp', ['-R', `${join(root, 'packages/core/src')}/.`, src]);
  else execFileSync('tar', ['-x', '-C', dir], { input: tar });
  const entry = join(dir, 'entry.ts');
  writeFileSync(
    entry,
    "export * from './packages/core/src/index.ts';\nexport { BaseProvider } from './packages/core/src/adapter.ts';\n",
  );
  const outfile = join(dir, 'core.mjs');
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    nodePaths: [join(root, 'packages/core/node_modules')],
    logLevel: 'error',
  });
  return import(pathToFileURL(outfile).href);
}

/** A cached provider of each kind, warmed so that every timed `get` is a hit. */
async function cachedProviders(core, label) {
  class Backend extends core.BaseProvider {
    constructor(cache) {
      super({ name: `bench-${label}`, cache });
    }
    async readSecret(key) {
      return { value: `v-${key}`, metadata: { version: '1' } };
    }
  }
  const own = new Backend({ ttl: 3_600_000, max: KEYS * 2 });
  const wrapped = new core.CachedProvider(new Backend(false), { ttl: 3_600_000, max: KEYS * 2 });
  for (const key of keys) {
    await own.get(key);
    await wrapped.get(key);
  }
  return { own, wrapped };
}

/** Metrics on: the OpenTelemetry package's meters on an SDK MeterProvider (no spans). */
async function metricsSubscriber() {
  const { MeterProvider, InMemoryMetricExporter, PeriodicExportingMetricReader, AggregationTemporality } =
    await import('@opentelemetry/sdk-metrics');
  const { instrumentSecretProvider } = await import('@secret-provider/opentelemetry');
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  return {
    on: () => instrumentSecretProvider({ meterProvider, traces: false }),
    shutdown: () => meterProvider.shutdown(),
  };
}

if (order === undefined) {
  // The parent: PROCESSES measuring processes per order, alternating, then the claims from all.
  const byOrder = { before: [], after: [] };
  for (let i = 0; i < PROCESSES; i++) {
    for (const first of ['before', 'after']) {
      const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url)], {
        env: { ...process.env, TELEMETRY_BASE: base, TELEMETRY_ORDER: first },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      if (child.status !== 0) throw new Error(`a ${first}-first run failed (exit ${child.status})`);
      byOrder[first].push(JSON.parse(child.stdout.trim().split('\n').at(-1)));
    }
  }
  const rows = [];
  for (const kind of ['BaseProvider cache', 'CachedProvider']) {
    const row = (label, baselineLabel, goal) => {
      const name = `${label}: ${kind}`;
      const per = (first) => median(byOrder[first].map((ns) => ns[name] / ns[`${baselineLabel}: ${kind}`]));
      const both = Math.sqrt(per('before') * per('after'));
      return {
        case: name,
        'ns/get': median([...byOrder.before, ...byOrder.after].map((ns) => ns[name])).toFixed(1),
        'before first / after first': `${per('before').toFixed(2)}x / ${per('after').toFixed(2)}x`,
        'vs before': goal === undefined ? '1.00x' : ratio(both, goal),
      };
    };
    rows.push(
      row('before', 'before'),
      row('after, no subscribers', 'before', 1.05),
      row('before (metrics phase)', 'before (metrics phase)'),
      row('after, metrics on', 'before (metrics phase)', 1.3),
    );
  }
  report(
    `cached get, awaited (${PROCESSES} processes per order, each the median of ${ROUNDS} rounds of ${ITERATIONS}; before = core at ${base.slice(0, 10)})`,
    rows,
  );
} else {
  console.log(JSON.stringify(await measure(order)));
}

/** Medians (ns per get) of every candidate, with the `first` build loaded, warmed and timed first. */
async function measure(first) {
  const dir = mkdtempSync(join(tmpdir(), 'telemetry-bench-'));
  try {
    const builds = first === 'before' ? ['before', 'after'] : ['after', 'before'];
    const providers = {};
    for (const build of builds)
      providers[build] = await cachedProviders(
        await bundleCore(join(dir, build), build === 'before' ? base : undefined),
        build,
      );
    const old = providers.before;
    const now = providers.after;
    const metrics = await metricsSubscriber();
    /** The candidates of a phase, the `first` build's first in each kind. */
    const inOrder = (pairs) =>
      Object.fromEntries(pairs.flatMap((pair) => (first === 'before' ? pair : [pair[1], pair[0]])));

    // Two phases, each alternating "before" and "after" round by round. Subscribing swaps the
    // prototype of a channel object, which deoptimises code that reads it; applications subscribe
    // once at start, so the metrics phase subscribes once, after the phase without subscribers.
    const phases = [
      {
        candidates: inOrder([
          [
            ['before: BaseProvider cache', old.own],
            ['after, no subscribers: BaseProvider cache', now.own],
          ],
          [
            ['before: CachedProvider', old.wrapped],
            ['after, no subscribers: CachedProvider', now.wrapped],
          ],
        ]),
      },
      {
        subscribe: metrics.on,
        candidates: inOrder([
          [
            ['before (metrics phase): BaseProvider cache', old.own],
            ['after, metrics on: BaseProvider cache', now.own],
          ],
          [
            ['before (metrics phase): CachedProvider', old.wrapped],
            ['after, metrics on: CachedProvider', now.wrapped],
          ],
        ]),
      },
    ];
    // One compiled loop per candidate: a shared loop would see every provider class at one call
    // site and time V8's megamorphic dispatch rather than the providers.
    const timedLoop = () =>
      new Function(
        'keys',
        'iterations',
        `return async function timed(provider) {
          const start = process.hrtime.bigint();
          for (let i = 0; i < iterations; i++) await provider.get(keys[i & ${KEYS - 1}]);
          return Number(process.hrtime.bigint() - start) / iterations;
        };`,
      )(keys, ITERATIONS);
    const samples = {};
    const warmup = 3;
    for (const phase of phases) {
      const unsubscribe = phase.subscribe?.();
      const loops = Object.fromEntries(Object.keys(phase.candidates).map((name) => [name, timedLoop()]));
      for (const name of Object.keys(phase.candidates)) samples[name] = [];
      for (let round = 0; round < ROUNDS + warmup; round++) {
        // Alternate the order each round so that neither side always runs first.
        const order = Object.entries(phase.candidates);
        if (round % 2 === 1) order.reverse();
        for (const [name, provider] of order) {
          const ns = await loops[name](provider);
          if (round >= warmup) samples[name].push(ns);
        }
      }
      unsubscribe?.();
    }
    await metrics.shutdown();
    for (const { own, wrapped } of [old, now]) {
      await own.close();
      await wrapped.close();
    }
    return Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, median(values)]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
