import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AzureKeyVaultProvider } from '@secret-provider/azure';
import { ChainedProvider } from '@secret-provider/chained';
import { createEmitter, type SecretEvents } from '@secret-provider/core';
import { FakeCredential, KeyVaultDouble } from '@secret-provider/doubles/key-vault';
import { EnvProvider } from '@secret-provider/env';
import { FileProvider } from '@secret-provider/file';
import { rejection, until } from '@secret-provider/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { clientOptionsFor } from './fixtures.js';

const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function vault(name: string, options: { cache?: boolean } = {}) {
  const double = await KeyVaultDouble.start({ vaultName: name });
  const provider = new AzureKeyVaultProvider({
    name: `azure:${name}`,
    vaultUrl: double.url,
    credential: new FakeCredential(double),
    clientOptions: clientOptionsFor(double),
    cache: options.cache ?? true,
    pollInterval: 50,
  });
  cleanups.push(async () => {
    await provider.close();
    await double.stop();
  });
  return { double, provider };
}

describe('env + file + Azure in one chain', () => {
  it('resolves each key from the right layer, and a disabled vault secret is an error, not a fall-through', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'azure-chain-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'secrets.json');
    await writeFile(file, JSON.stringify({ SHARED: 'from-file', FILE_ONLY: 'file-only' }), { mode: 0o600 });
    const { double, provider: azure } = await vault('prod');
    double.setSecret('SHARED', 'from-vault');
    double.setSecret('VAULT-ONLY', 'vault-only');
    double.setSecret('FILE-ONLY', 'shadowed-by-file');
    double.setSecret('OFF', 'disabled-value', { enabled: false });
    const chain = new ChainedProvider([
      new EnvProvider({ env: { APP_SHARED: 'from-env', APP_ENV_ONLY: 'env-only' }, prefix: 'APP_' }),
      new FileProvider({ path: file }),
      azure,
    ]);
    cleanups.push(() => chain.close());
    expect((await chain.get('SHARED')).reveal()).toBe('from-env');
    expect((await chain.get('ENV_ONLY')).reveal()).toBe('env-only');
    expect((await chain.get('FILE_ONLY')).reveal()).toBe('file-only');
    expect((await chain.get('VAULT_ONLY')).reveal()).toBe('vault-only');
    expect(double.count({ operation: 'getSecret', name: 'VAULT-ONLY' })).toBeGreaterThan(0);
    // Only the key no other layer has reached the vault.
    expect(double.count({ operation: 'getSecret', name: 'SHARED' })).toBe(0);
    expect(double.count({ operation: 'getSecret', name: 'FILE-ONLY' })).toBe(0);
    const missing = await rejection(chain.get('NOWHERE'));
    expect(missing).toMatchObject({ code: 'NOT_FOUND' });
    const disabled = await rejection(chain.get('OFF'));
    expect(disabled).toMatchObject({ code: 'ACCESS_DENIED', reason: 'disabled' });
    expect((await chain.keys()).sort()).toEqual(['ENV_ONLY', 'FILE_ONLY', 'SHARED', 'VAULT_ONLY']);
  });
});

describe('failover between two vaults', () => {
  it('serves from the secondary while the primary answers 503, and comes back to the primary', async () => {
    const primary = await vault('primary', { cache: false });
    const secondary = await vault('secondary', { cache: false });
    primary.double.setSecret('DB-PASSWORD', 'primary-copy');
    secondary.double.setSecret('DB-PASSWORD', 'secondary-copy');
    const chain = new ChainedProvider([primary.provider, secondary.provider], {
      mode: 'failover',
      probeInterval: 50,
      probeTimeout: 2_000,
    });
    cleanups.push(() => chain.close());
    const emitter = createEmitter();
    const warnings: SecretEvents['warning'][] = [];
    emitter.on('warning', (w) => warnings.push(w));
    const handle = chain.watch(emitter);
    await handle.ready;

    expect((await chain.get('DB_PASSWORD')).reveal()).toBe('primary-copy');
    const outage = primary.double.inject({ type: 'status', status: 503 });
    expect((await chain.get('DB_PASSWORD')).reveal()).toBe('secondary-copy');
    expect(chain.activeProvider).toBe(secondary.provider);
    expect((await chain.get('DB_PASSWORD')).reveal()).toBe('secondary-copy');
    expect(warnings.map((w) => w.code)).toContain('FAILOVER');

    const servedBySecondary = secondary.double.count({ operation: 'getSecret', status: 200 });
    outage.remove();
    await until(() => chain.activeProvider === primary.provider);
    expect((await chain.get('DB_PASSWORD')).reveal()).toBe('primary-copy');
    expect(secondary.double.count({ operation: 'getSecret', status: 200 })).toBe(servedBySecondary);
    expect(warnings.map((w) => w.code)).toContain('FAILBACK');
    await handle.stop();
  });
});
