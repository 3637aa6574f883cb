// Import cost of the AWS adapter, against the SDK client it wraps, each sample in a fresh process
// (module caches are per process). The adapter loads the SDK on first use only, so importing it
// should cost about what importing core costs, far below the SDK.
//
//   node benchmarks/aws-import.bench.mjs
import { join } from 'node:path';
import { ratio } from './lib/harness.mjs';
import { BARE, benchDir, CORE, importCosts } from './lib/import-cost.mjs';

// The SDK resolves from the adapter's own folder, where it is a development dependency.
const awsDir = join(benchDir, '..', 'packages', 'aws');

const medians = importCosts(
  {
    '@secret-provider/aws (import)': [`await import('@secret-provider/aws');`, benchDir],
    '@secret-provider/aws (import + first client)': [
      `const { AwsSecretsManagerProvider } = await import('@secret-provider/aws');
     const p = new AwsSecretsManagerProvider({ region: 'eu-west-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
     await p.client();`,
      benchDir,
    ],
    '@aws-sdk/client-secrets-manager': [`await import('@aws-sdk/client-secrets-manager');`, awsDir],
  },
  // The SDK's Node version warning would go to this process's output each sample.
  { nodeArgs: ['--no-warnings'] },
);
const adapter = medians['@secret-provider/aws (import)'];
const core = medians[CORE];
const sdk = medians['@aws-sdk/client-secrets-manager'];
const bare = medians[BARE];
// Core is imported by every adapter anyway: what the adapter adds over it, against the SDK's own cost.
console.log(
  `adapter import / SDK import: ${(adapter / sdk).toFixed(2)}x (core alone ${(core / sdk).toFixed(2)}x)`,
);
console.log(`(adapter - core) / (SDK - bare node): ${ratio((adapter - core) / (sdk - bare), 0.1)}`);
console.log(`adapter import over core import: +${(adapter - core).toFixed(1)} ms`);
console.log(
  `first client (loads the SDK): ${medians['@secret-provider/aws (import + first client)'].toFixed(1)} ms, SDK alone ${sdk.toFixed(1)} ms`,
);
