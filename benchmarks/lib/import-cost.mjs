// Import cost of modules, each sample in a fresh process (module caches are per process): for the
// adapters that load their SDK on first use, importing them should cost about what core costs.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { median, report } from './harness.mjs';

/** The benchmarks' folder: package names resolve from it as from an application. */
export const benchDir = fileURLToPath(new URL('..', import.meta.url));
export const BARE = 'node (nothing imported)';
export const CORE = '@secret-provider/core';

/** Milliseconds spent in `body` (an ES module body), measured inside a fresh process. */
function sample(body, cwd, nodeArgs) {
  const script = `const t0 = performance.now();\n${body}\nprocess.stdout.write(String(performance.now() - t0));`;
  const out = execFileSync(process.execPath, [...nodeArgs, '--input-type=module', '-e', script], {
    cwd,
    encoding: 'utf8',
  });
  return Number(out);
}

/**
 * Median milliseconds of each candidate (`name: [module body, cwd]`), with bare Node ({@link BARE})
 * and core ({@link CORE}) as baselines: one warm-up round (file system caches), then `samples`
 * rounds, candidates interleaved within each so drift hits all alike. Prints the table.
 */
export function importCosts(candidates, { samples = Number(process.env.SAMPLES ?? 15), nodeArgs = [] } = {}) {
  const all = {
    [BARE]: ['', benchDir],
    [CORE]: [`await import('@secret-provider/core');`, benchDir],
    ...candidates,
  };
  const times = Object.fromEntries(Object.keys(all).map((name) => [name, []]));
  for (let round = 0; round <= samples; round++) {
    for (const [name, [body, cwd]] of Object.entries(all)) {
      const ms = sample(body, cwd, nodeArgs);
      if (round > 0) times[name].push(ms);
    }
  }
  const medians = Object.fromEntries(Object.entries(times).map(([name, values]) => [name, median(values)]));
  report(
    `import cost, median of ${samples} fresh processes each (ms)`,
    Object.entries(medians).map(([name, ms]) => ({ candidate: name, 'median ms': Number(ms.toFixed(1)) })),
  );
  return medians;
}
