// `get` through a 3-provider chain with the hit in the last provider, against one provider of
// the same kind, measured in the same rounds (interleaved, medians). Goal: at most 1.5x.
//
// Run: node --expose-gc benchmarks/chain-get.bench.mjs   (after `tsc -b tsconfig.build.json`)
//
// A provider built on the core base class reports a missing key by rejecting with a
// SecretNotFoundError, and creating an Error (its stack trace) costs several times a hit. A
// chain that asks each provider in turn therefore pays two errors before the hit in the third.
// The chain avoids that when it can tell a miss without asking: a provider's own `has(key)`
// (the env provider has one), or the chain's key index (`index: true`, kept from `keys()` and
// the providers' events). All three ways are measured.
import { ChainedProvider } from '@secret-provider/chained';
import { EnvProvider } from '@secret-provider/env';
import { MemoryProvider } from '@secret-provider/memory';
import { compare, ratio, report, sleep } from './lib/harness.mjs';

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
const memoryProbing = memoryChain({});
const memoryIndexed = memoryChain({ index: true });

// Env providers over one injected environment, each selecting its own prefix.
const env = { A_OTHER: 'a', B_OTHER: 'b', [`C_${KEY}`]: VALUE, [KEY]: VALUE, UNRELATED: 'x' };
const envSingle = new EnvProvider({ env, allow: [KEY] });
const envChain = new ChainedProvider([
  new EnvProvider({ name: 'env-a', env, prefix: 'A_' }),
  new EnvProvider({ name: 'env-b', env, prefix: 'B_' }),
  new EnvProvider({ name: 'env-c', env, prefix: 'C_' }),
]);

// Check that every candidate really reads the value from where it should before timing it.
for (const [name, provider] of Object.entries({
  memorySingle,
  memoryProbing,
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

const rounds = Number(process.env.BENCH_ROUNDS ?? 25);
const iterations = Number(process.env.BENCH_ITERATIONS ?? 20_000);

// One comparison per pair: the chain that asks each provider allocates two errors per get, and
// its garbage would otherwise be collected during the other candidates' rounds.
async function pair(label, baseline, candidate, count = iterations) {
  globalThis.gc?.();
  const ns = await compare({ baseline, candidate }, { rounds, iterations: count });
  return { label, baseline: ns.baseline, candidate: ns.candidate, ratio: ns.candidate / ns.baseline };
}

const results = [
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
  await pair(
    'memory x3, default (asks each)',
    () => memorySingle.get(KEY),
    () => memoryProbing.get(KEY),
    iterations / 10,
  ),
];

report(
  `chain get, hit in the 3rd provider, vs one provider: medians of ${rounds} rounds`,
  results.map((r) => ({
    chain: r.label,
    'one provider ns/get': r.baseline.toFixed(0),
    'chain ns/get': r.candidate.toFixed(0),
    ratio: ratio(r.ratio, GOAL),
  })),
);

for (const provider of [memorySingle, memoryProbing, memoryIndexed, envSingle, envChain])
  await provider.close();
