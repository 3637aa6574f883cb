import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { SecretsManagerDouble } from '@secret-provider/doubles/aws';
import { loadRecorder, tempDir } from '@secret-provider/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// A fresh Node process imports the BUILT package as a user would, and marks in the log of every
// module URL it resolves (plus the CommonJS modules it holds, which the SDK's own requires add)
// where each step begins: the SDK loads with the first request, not with the import.

const run = promisify(execFile);
const packageDir = fileURLToPath(new URL('..', import.meta.url));
let temp: { dir: string; remove: () => void };
let double: SecretsManagerDouble;

beforeAll(async () => {
  temp = tempDir('secret-provider-aws-loads-');
  double = await SecretsManagerDouble.start({ region: 'eu-west-1' });
  double.put('app/key', 'lazy-value');
});
afterAll(async () => {
  await double.close();
  temp.remove();
});

/** The module URLs resolved in each step of `steps` (`name: code` run in order), by step. */
async function loadsBySteps(steps: Record<string, string>): Promise<Record<string, string[]>> {
  const log = join(temp.dir, `loads-${Math.random().toString(36).slice(2)}.txt`);
  const mark = (name: string) =>
    `appendFileSync(process.env.LOAD_LOG, ${JSON.stringify(`--step ${name}\n`)});`;
  const script = [
    "const { appendFileSync } = await import('node:fs');",
    "const { createRequire } = await import('node:module');",
    'const cache = createRequire(process.cwd() + "/").cache;',
    "const commonJs = () => { for (const file of Object.keys(cache)) appendFileSync(process.env.LOAD_LOG, 'cjs:' + file + '\\n'); };",
    ...Object.entries(steps).flatMap(([name, code]) => [mark(name), code, 'commonJs();']),
  ].join('\n');
  await run(process.execPath, ['--import', loadRecorder, '--input-type=module', '-e', script], {
    cwd: packageDir,
    env: { PATH: process.env.PATH ?? '', LOAD_LOG: log, ENDPOINT: double.url },
    timeout: 30_000,
  });
  const bySteps: Record<string, Set<string>> = {};
  let current: Set<string> | undefined;
  for (const line of readFileSync(log, 'utf8').split('\n').filter(Boolean)) {
    if (line.startsWith('--step ')) {
      current = new Set();
      bySteps[line.slice(7)] = current;
    } else current?.add(line);
  }
  return Object.fromEntries(Object.entries(bySteps).map(([name, urls]) => [name, [...urls]]));
}

const aws = (urls: readonly string[] = []) =>
  urls.filter((url) => /[/+]@aws-sdk[/+]|[/+]@smithy[/+]/.test(url));

describe('lazy loading of the AWS SDK', () => {
  it('runs against the build', () => {
    expect(existsSync(join(packageDir, 'dist', 'index.js')), 'build first (pnpm build)').toBe(true);
  });

  it('importing @secret-provider/aws and making a provider loads nothing of the SDK; the first request does', async () => {
    const steps = await loadsBySteps({
      import: "const { AwsSecretsManagerProvider } = await import('@secret-provider/aws');",
      construct: `const provider = new AwsSecretsManagerProvider({ region: 'eu-west-1', endpoint: process.env.ENDPOINT, credentials: { accessKeyId: 'AKIDLAZY', secretAccessKey: 'lazy' } });`,
      request:
        "const read = await provider.get('app/key'); if (read.metadata?.version === undefined) process.exit(3);",
      close: 'await provider.close();',
    });
    expect(steps.import?.some((url) => /packages\/aws\/dist\/index\.js$/.test(url))).toBe(true);
    expect(aws(steps.import)).toEqual([]);
    expect(aws(steps.construct)).toEqual([]);
    const request = aws(steps.request);
    expect(request.some((url) => /@aws-sdk[/+]client-secrets-manager/.test(url))).toBe(true);
    expect(request.some((url) => url.startsWith('cjs:'))).toBe(true);
  });

  it('importing @secret-provider/core (and its adapter entry) loads nothing of AWS', async () => {
    const steps = await loadsBySteps({
      core: "await import('@secret-provider/core'); await import('@secret-provider/core/adapter');",
    });
    expect(steps.core?.some((url) => /packages\/core\/dist\//.test(url))).toBe(true);
    expect(steps.core?.filter((url) => /[/+]@aws-sdk[/+]|[/+]@smithy[/+]|packages\/aws\//.test(url))).toEqual(
      [],
    );
  });
});
