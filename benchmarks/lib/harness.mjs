// Shared helpers for benchmarks: every figure is a median over rounds, and every claim is a
// ratio against a baseline measured in the same process and the same rounds, because this
// machine is shared and noisy.

/** Median of numbers. */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The p-th percentile (0-100) of numbers, nearest rank. */
export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/**
 * Times `iterations` calls of each candidate per round, interleaving candidates within a round
 * so drift on the machine hits all of them alike. Returns median nanoseconds per call for each.
 * Async candidates are awaited call by call.
 */
export async function compare(candidates, { rounds = 15, iterations = 20_000, warmup = 3 } = {}) {
  const samples = Object.fromEntries(Object.keys(candidates).map((name) => [name, []]));
  for (let round = 0; round < rounds + warmup; round++) {
    for (const [name, fn] of Object.entries(candidates)) {
      const start = process.hrtime.bigint();
      for (let i = 0; i < iterations; i++) {
        const result = fn(i);
        if (result !== undefined && typeof result.then === 'function') await result;
      }
      const ns = Number(process.hrtime.bigint() - start) / iterations;
      if (round >= warmup) samples[name].push(ns);
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, median(values)]));
}

/** Prints a table row per entry and returns the rows for the results file. */
export function report(title, rows) {
  console.log(`\n## ${title}`);
  console.table(rows);
  return { title, rows };
}

/** Formats a ratio with its goal, e.g. `1.12x (goal <= 1.3x) ok`. */
export function ratio(value, goal, direction = '<=') {
  const ok = direction === '<=' ? value <= goal : value >= goal;
  return `${value.toFixed(2)}x (goal ${direction} ${goal}x) ${ok ? 'ok' : 'MISSED'}`;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
