import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadRecorder } from '@secret-provider/testing';
import { describe, expect, it } from 'vitest';

// Runs fresh Node processes that import the built packages as a user would, recording every
// module resolved. Build first (`pnpm build`): this checks what ships, not the sources.

const run = promisify(execFile);
const here = fileURLToPath(new URL('.', import.meta.url));
const integrationRoot = join(here, '..');

/** Runs `script` as an ES module in a fresh process; returns the modules resolved in each step. */
async function loads(script: string): Promise<Record<string, string[]>> {
  const dir = await mkdtemp(join(tmpdir(), 'azure-loads-'));
  const log = join(dir, 'loads.txt');
  try {
    const marker = `const { appendFileSync } = await import('node:fs');
const mark = (step) => appendFileSync(process.env.LOAD_LOG, '#' + step + '\\n');`;
    await run(
      process.execPath,
      ['--import', loadRecorder, '--input-type=module', '-e', `${marker}\n${script}`],
      {
        cwd: integrationRoot,
        env: { ...process.env, LOAD_LOG: log },
        timeout: 30_000,
      },
    );
    // `mark(step)` ends a step: the modules resolved since the previous mark belong to it.
    const steps: Record<string, string[]> = {};
    let pending: string[] = [];
    for (const line of (await readFile(log, 'utf8')).split('\n')) {
      if (line.startsWith('#')) {
        steps[line.slice(1)] = pending;
        pending = [];
      } else if (line !== '') {
        pending.push(line);
      }
    }
    return steps;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const azure = (urls: string[] | undefined) =>
  (urls ?? []).filter((url) => /[/+]@azure[/+]|@azure-rest/.test(url));

describe('lazy loading of the Azure SDK', () => {
  it('is checked against the built packages', () => {
    for (const pkg of ['core', 'azure']) {
      expect(
        existsSync(join(integrationRoot, '..', 'packages', pkg, 'dist', 'index.js')),
        `build ${pkg} first`,
      ).toBe(true);
    }
  });

  it('importing core loads no Azure module; importing the adapter neither; the first use loads the SDK', async () => {
    const steps = await loads(`
      await import('@secret-provider/core');
      await mark('core');
      const { AzureKeyVaultProvider } = await import('@secret-provider/azure');
      const provider = new AzureKeyVaultProvider({
        vaultUrl: 'https://example.vault.azure.net',
        credential: { getToken: async () => null },
      });
      await mark('adapter');
      await provider.client();
      await mark('used');
    `);
    expect(steps.core?.some((url) => url.includes('/packages/core/'))).toBe(true);
    expect(azure(steps.core)).toEqual([]);
    expect(steps.adapter?.some((url) => url.includes('/packages/azure/'))).toBe(true);
    expect(azure(steps.adapter)).toEqual([]);
    // The positive control: the same recorder sees the SDK once a client is needed. With a
    // credential given, @azure/identity stays unloaded.
    const used = azure(steps.used);
    expect(used.some((url) => url.includes('keyvault-secrets'))).toBe(true);
    expect(used.some((url) => url.includes('/@azure/identity/') || url.includes('@azure+identity'))).toBe(
      false,
    );
  });

  it('loads @azure/identity only when the default credential is needed', async () => {
    const steps = await loads(`
      const { AzureKeyVaultProvider } = await import('@secret-provider/azure');
      const provider = new AzureKeyVaultProvider({ vaultUrl: 'https://example.vault.azure.net' });
      await mark('adapter');
      await provider.client();
      await mark('used');
    `);
    expect(azure(steps.adapter)).toEqual([]);
    expect(azure(steps.used).some((url) => url.includes('identity'))).toBe(true);
  });
});
