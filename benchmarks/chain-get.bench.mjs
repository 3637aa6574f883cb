// `get` through a 3-provider chain with the hit in the last provider, against one provider of
// the same kind, measured in the same rounds (interleaved, medians). Goal: at most 1.5x for the
// chain with default options.
//
// Run: node benchmarks/chain-get.bench.mjs   (after `tsc -b tsconfig.build.json && node scripts/bundle.mjs`)
//
// A provider built on the core base class reports a missing key by rejecting with a
// SecretNotFoundError, and creating an Error (its stack trace) costs several times a hit. A
// chain skips a provider that lacks the key without that error when it can tell: the provider's
// own `has()` when it answers presence without a read (memory and env do, synchronously), else
// the chain's key index (`index: true`, kept from `keys()` and the providers' events). What is
// left is one presence check per provider before the hit, each with its own key check.
import { ChainedProvider } from '@secret-provider/chained';
import { EnvProvider } from '@secret-provider/env';
import { MemoryProvider } from '@secret-provider/memory';
import { median, percentile, ratio, report, sleep } from './lib/harness.mjs';

const GOAL = 1.5;
const KEY = 'DATABASE_URL';
const VALUE = 'postgres://bench';

const memoryChain = (options) =>
  new ChainedProvider(
    [
      new MemoryProvider({ name: 'first', initial: { OTHER_A: 'a' } }),
      new MemoryProvider({ name: 'second', initial: { OTHER_B: 'b' } }),
      new MemoryProvider({ name: 'third', initial: { [KEY]: VALUE } }),
    ],
    options,
  );

const memorySingle = new MemoryProvider({ name: 'single', initial: { [KEY]: VALUE } });
// Default options: nothing passed at all.
const memoryDefault = memoryChain();
const memoryIndexed = memoryChain({ index: true });

// Env providers over one injected environment, each selecting its own prefix.
const env = { A_OTHER: 'a', B_OTHER: 'b', [`C_${KEY}`]: VALUE, UNRELATED: 'x' };
// The baseline is the provider that serves the key in the chain, asked directly.
const envSingle = new EnvProvider({ name: 'env-c', env, prefix: 'C_' });
const envChain = new ChainedProvider([
  new EnvProvider({ name: 'env-a', env, prefix: 'A_' }),
  new EnvProvider({ name: 'env-b', env, prefix: 'B_' }),
  new EnvProvider({ name: 'env-c', env, prefix: 'C_' }),
]);

// Check that every candidate really reads the value from where it should before timing it.
for (const [name, provider] of Object.entries({
  memorySingle,
  memoryDefault,
  memoryIndexed,
  envSingle,
  envChain,
})) {
  const secret = await provider.get(KEY);
  if (secret.reveal() !== VALUE) throw new Error(`${name} read the wrong value`);
}
const explained = await memoryIndexed.explain(KEY);
if (explained.servedBy !== 'third') throw new Error('the hit is not in the last provider');
// The index is built in the background from keys() after the first read; let it settle.
await sleep(50);

const rounds = Number(process.env.BENCH_ROUNDS ?? 31);
const iterations = Number(process.env.BENCH_ITERATIONS ?? 20_000);

/** Nanoseconds per call of `fn` over `count` awaited calls. */
async function time(fn, count) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await fn();
  return Number(process.hrtime.bigint() - start) / count;
}

// One comparison per pair: a candidate's garbage (a chain that reads a provider lacking the key
// allocates an error per miss) would otherwise be collected during another pair's rounds. Each round times
// both candidates back to back (in alternating order) and yields one ratio; the figure is the
// median of those ratios, which load from other processes on the machine skews far less than a
// ratio of two medians taken at different moments.
async function pair(label, baseline, candidate, count = iterations) {
  globalThis.gc?.();
  for (let i = 0; i < 3; i++) {
    await time(baseline, count);
    await time(candidate, count);
  }
  const base = [];
  const chain = [];
  const ratios = [];
  for (let round = 0; round < rounds; round++) {
    const first = round % 2 === 0;
    const a = first ? await time(baseline, count) : undefined;
    const b = await time(candidate, count);
    const c = first ? a : await time(baseline, count);
    base.push(c);
    chain.push(b);
    ratios.push(b / c);
  }
  return {
    label,
    baseline: median(base),
    candidate: median(chain),
    ratio: median(ratios),
    spread: [percentile(ratios, 10), percentile(ratios, 90)],
  };
}

const results = [
  await pair(
    'memory x3, default options',
    () => memorySingle.get(KEY),
    () => memoryDefault.get(KEY),
  ),
  await pair(
    'memory x3, index: true',
    () => memorySingle.get(KEY),
    () => memoryIndexed.get(KEY),
  ),
  await pair(
    'env x3 (has() skips misses)',
    () => envSingle.get(KEY),
    () => envChain.get(KEY),
  ),
];

report(
  `chain get, hit in the 3rd provider, vs one provider: ${rounds} rounds, each timing both back to back`,
  results.map((r) => ({
    chain: r.label,
    'one provider ns/get': r.baseline.toFixed(0),
    'chain ns/get': r.candidate.toFixed(0),
    'median ratio': ratio(r.ratio, GOAL),
    'p10-p90 of ratios': `${r.spread[0].toFixed(2)}-${r.spread[1].toFixed(2)}`,
  })),
);

for (const provider of [memorySingle, memoryDefault, memoryIndexed, envSingle, envChain])
  await provider.close();
