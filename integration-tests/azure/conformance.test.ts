import { randomBytes } from 'node:crypto';
import { AzureKeyVaultProvider } from '@secret-provider/azure';
import { describeProviderConformance } from '@secret-provider/conformance';
import { FakeCredential, KeyVaultDouble } from '@secret-provider/doubles/key-vault';
import { afterEach, beforeEach, describe, it } from 'vitest';
import { clientOptionsFor, singleVault } from './fixtures.js';

// Each test gets fresh doubles, so keys only need to be valid. The two-vault run routes keys with
// the `billing/` prefix to a second vault (prefix stripped) and the rest to the first.

describeProviderConformance({
  name: 'azure (one vault, Key Vault double)',
  test: { describe, it, beforeEach, afterEach },
  eventTimeoutMs: 5_000,
  create: async () => {
    const vault = await singleVault();
    return {
      provider: vault.provider,
      backend: {
        set: async (key, value) => {
          vault.double.setSecret(vault.provider.locate(key)?.secretName as string, value);
        },
        delete: async (key) => vault.double.deleteSecret(vault.provider.locate(key)?.secretName as string),
      },
      cleanup: () => vault.double.stop(),
    };
  },
});

const run = randomBytes(3).toString('hex');

describeProviderConformance({
  name: 'azure (two routed vaults, Key Vault doubles)',
  test: { describe, it, beforeEach, afterEach },
  eventTimeoutMs: 5_000,
  makeKey: (i) => (i % 2 === 0 ? `billing/k${run}_${i}` : `APP_K${run}_${i}`),
  create: async () => {
    const app = await KeyVaultDouble.start({ vaultName: 'app' });
    const billing = await KeyVaultDouble.start({ vaultName: 'billing' });
    const doubles = { app, billing } as const;
    const provider = new AzureKeyVaultProvider({
      vaults: {
        app: { vaultUrl: app.url, credential: new FakeCredential(app), clientOptions: clientOptionsFor(app) },
        billing: {
          vaultUrl: billing.url,
          credential: new FakeCredential(billing),
          clientOptions: clientOptionsFor(billing),
        },
      },
      routes: {
        prefixes: [{ prefix: 'billing/', vault: 'billing', stripPrefix: true }],
        defaultVault: 'app',
      },
      pollInterval: 100,
      onWarning: () => {},
    });
    const where = (key: string) => {
      const located = provider.locate(key);
      if (located === undefined) throw new Error(`no route for ${key}`);
      return { double: doubles[located.vault as keyof typeof doubles], name: located.secretName };
    };
    return {
      provider,
      backend: {
        set: async (key, value) => {
          const { double, name } = where(key);
          double.setSecret(name, value);
        },
        delete: async (key) => {
          const { double, name } = where(key);
          double.deleteSecret(name);
        },
      },
      cleanup: async () => {
        await app.stop();
        await billing.stop();
      },
    };
  },
});
