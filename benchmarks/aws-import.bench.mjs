// Import cost of the AWS adapter, against the SDK client it wraps, each sample in a fresh process
// (module caches are per process). The adapter loads the SDK on first use only, so importing it
// should cost about what importing core costs, far below the SDK.
//
//   node benchmarks/aws-import.bench.mjs
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, ratio, report } from './lib/harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
// The SDK resolves from the adapter's own folder, where it is a development dependency.
const awsDir = join(here, '..', 'packages', 'aws');
const SAMPLES = Number(process.env.SAMPLES ?? 15);

/** Milliseconds spent in `body` (an ES module body), measured inside a fresh process. */
function sample(body, cwd) {
  const script = `const t0 = performance.now();\n${body}\nprocess.stdout.write(String(performance.now() - t0));`;
  const out = execFileSync(process.execPath, ['--no-warnings', '--input-type=module', '-e', script], {
    cwd,
    encoding: 'utf8',
  });
  return Number(out);
}

const candidates = {
  'node (nothing imported)': ['', here],
  '@secret-provider/core': [`await import('@secret-provider/core');`, here],
  '@secret-provider/aws (import)': [`await import('@secret-provider/aws');`, here],
  '@secret-provider/aws (import + first client)': [
    `const { AwsSecretsManagerProvider } = await import('@secret-provider/aws');
     const p = new AwsSecretsManagerProvider({ region: 'eu-west-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
     await p.client();`,
    here,
  ],
  '@aws-sdk/client-secrets-manager': [`await import('@aws-sdk/client-secrets-manager');`, awsDir],
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
const adapter = medians['@secret-provider/aws (import)'];
const core = medians['@secret-provider/core'];
const sdk = medians['@aws-sdk/client-secrets-manager'];
const bare = medians['node (nothing imported)'];
// Core is imported by every adapter anyway: what the adapter adds over it, against the SDK's own cost.
console.log(
  `adapter import / SDK import: ${(adapter / sdk).toFixed(2)}x (core alone ${(core / sdk).toFixed(2)}x)`,
);
console.log(`(adapter - core) / (SDK - bare node): ${ratio((adapter - core) / (sdk - bare), 0.1)}`);
console.log(`adapter import over core import: +${(adapter - core).toFixed(1)} ms`);
console.log(
  `first client (loads the SDK): ${medians['@secret-provider/aws (import + first client)'].toFixed(1)} ms, SDK alone ${sdk.toFixed(1)} ms`,
);
