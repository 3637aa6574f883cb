// Import cost of the Azure adapter, against the Azure SDK pair it wraps, each sample in a fresh
// process (module caches are per process). The adapter loads the SDK on first use only, so
// importing it should cost about what importing core costs, far below the SDK pair.
//
//   node --expose-gc benchmarks/azure-import.bench.mjs
import { join } from 'node:path';
import { ratio } from './lib/harness.mjs';
import { benchDir, CORE, importCosts } from './lib/import-cost.mjs';

// The SDK pair resolves from the adapter's own folder, where it is a dependency.
const azureDir = join(benchDir, '..', 'packages', 'azure');

const medians = importCosts({
  '@secret-provider/azure (import)': [`await import('@secret-provider/azure');`, benchDir],
  '@secret-provider/azure (import + first client, credential given)': [
    `const { AzureKeyVaultProvider } = await import('@secret-provider/azure');
     const p = new AzureKeyVaultProvider({ vaultUrl: 'https://x.vault.azure.net', credential: { getToken: async () => null } });
     await p.client();`,
    benchDir,
  ],
  '@azure/keyvault-secrets + @azure/identity': [
    `await import('@azure/keyvault-secrets'); await import('@azure/identity');`,
    azureDir,
  ],
});
const adapter = medians['@secret-provider/azure (import)'];
const core = medians[CORE];
const sdk = medians['@azure/keyvault-secrets + @azure/identity'];
const firstUse = medians['@secret-provider/azure (import + first client, credential given)'];
console.log(`adapter import / SDK pair import: ${ratio(adapter / sdk, 0.1)}`);
console.log(`adapter import over core import: +${(adapter - core).toFixed(1)} ms`);
console.log(
  `first client (loads @azure/keyvault-secrets only): ${firstUse.toFixed(1)} ms, SDK pair ${sdk.toFixed(1)} ms`,
);
