// Import cost of the Azure adapter, against the Azure SDK pair it wraps, each sample in a fresh
// process (module caches are per process). The adapter loads the SDK on first use only, so
// importing it should cost about what importing core costs, far below the SDK pair.
//
//   node --expose-gc benchmarks/azure-import.bench.mjs
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, ratio, report } from './lib/harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
// The SDK pair resolves from the adapter's own folder, where it is a dependency.
const azureDir = join(here, '..', 'packages', 'azure');
const SAMPLES = Number(process.env.SAMPLES ?? 15);

/** Milliseconds spent in `body` (an ES module body), measured inside a fresh process. */
function sample(body, cwd) {
  const script = `const t0 = performance.now();\n${body}\nprocess.stdout.write(String(performance.now() - t0));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd,
    encoding: 'utf8',
  });
  return Number(out);
}

const candidates = {
  'node (nothing imported)': ['', here],
  '@secret-provider/core': [`await import('@secret-provider/core');`, here],
  '@secret-provider/azure (import)': [`await import('@secret-provider/azure');`, here],
  '@secret-provider/azure (import + first client, credential given)': [
    `const { AzureKeyVaultProvider } = await import('@secret-provider/azure');
     const p = new AzureKeyVaultProvider({ vaultUrl: 'https://x.vault.azure.net', credential: { getToken: async () => null } });
     await p.client();`,
    here,
  ],
  '@azure/keyvault-secrets + @azure/identity': [
    `await import('@azure/keyvault-secrets'); await import('@azure/identity');`,
    azureDir,
  ],
};

const samples = Object.fromEntries(Object.keys(candidates).map((name) => [name, []]));
// One warm-up round (file system caches), then interleaved rounds so drift hits all alike.
for (let round = 0; round <= SAMPLES; round++) {
  for (const [name, [body, cwd]] of Object.entries(candidates)) {
    const ms = sample(body, cwd);
    if (round > 0) samples[name].push(ms);
  }
}
const medians = Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, median(values)]));
report(
  `import cost, median of ${SAMPLES} fresh processes each (ms)`,
  Object.entries(medians).map(([name, ms]) => ({ candidate: name, 'median ms': Number(ms.toFixed(1)) })),
);
const adapter = medians['@secret-provider/azure (import)'];
const core = medians['@secret-provider/core'];
const sdk = medians['@azure/keyvault-secrets + @azure/identity'];
const firstUse = medians['@secret-provider/azure (import + first client, credential given)'];
console.log(`adapter import / SDK pair import: ${ratio(adapter / sdk, 0.1)}`);
console.log(`adapter import over core import: +${(adapter - core).toFixed(1)} ms`);
console.log(
  `first client (loads @azure/keyvault-secrets only): ${firstUse.toFixed(1)} ms, SDK pair ${sdk.toFixed(1)} ms`,
);
