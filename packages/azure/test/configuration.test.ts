import { inspect } from 'node:util';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import {
  AzureKeyVaultProvider,
  DEFAULT_VAULT,
  identityNameMapper,
  PROVIDER_NAME,
} from '@secret-provider/azure';
import { isSecretError } from '@secret-provider/core';
import { describe, expect, it } from 'vitest';

// Configuration, routing and output; nothing here reaches a vault.

class SecretHoldingCredential implements TokenCredential {
  readonly clientSecret = 'client-secret-that-must-not-leak';
  async getToken(): Promise<AccessToken | null> {
    return { token: 'token-that-must-not-leak', expiresOnTimestamp: Date.now() + 3_600_000 };
  }
}

const credential = new SecretHoldingCredential();

function configError(make: () => unknown): string {
  try {
    make();
  } catch (error) {
    expect(isSecretError(error, 'INVALID_CONFIG')).toBe(true);
    return (error as Error).message;
  }
  throw new Error('expected INVALID_CONFIG');
}

describe('configuration', () => {
  it('needs a vault, https, known vault names in routes, and no credentials in URLs', () => {
    expect(configError(() => new AzureKeyVaultProvider({}))).toMatch(/vaultUrl, a client, or vaults/);
    expect(configError(() => new AzureKeyVaultProvider({ vaultUrl: 'http://kv.vault.azure.net' }))).toMatch(
      /https/,
    );
    expect(configError(() => new AzureKeyVaultProvider({ vaultUrl: 'not a url' }))).toMatch(/invalid URL/);
    expect(
      configError(() => new AzureKeyVaultProvider({ vaultUrl: 'https://user:pw@kv.vault.azure.net' })),
    ).toMatch(/must not hold credentials/);
    expect(
      configError(
        () =>
          new AzureKeyVaultProvider({
            vaults: { a: { vaultUrl: 'https://a.vault.azure.net' } },
            routes: { prefixes: { 'x/': 'b' } },
          }),
      ),
    ).toMatch(/unknown vault "b"/);
  });

  it('refuses explicit routes of two keys to one Key Vault name (names ignore case)', () => {
    const message = configError(
      () =>
        new AzureKeyVaultProvider({
          vaultUrl: 'https://kv.vault.azure.net',
          routes: { keys: { DATABASE_URL: DEFAULT_VAULT, database_url: DEFAULT_VAULT } },
        }),
    );
    expect(message).toContain('"DATABASE_URL" and "database_url"');
  });

  it('routes by exact key, then longest prefix, then default; unrouted keys have no target', () => {
    const provider = new AzureKeyVaultProvider({
      vaults: {
        app: { vaultUrl: 'https://app.vault.azure.net', credential },
        billing: { vaultUrl: 'https://billing.vault.azure.net', credential },
        eu: { vaultUrl: 'https://billing-eu.vault.azure.net', credential },
      },
      routes: {
        keys: { 'billing/legacy': 'app' },
        prefixes: [
          { prefix: 'billing/', vault: 'billing', stripPrefix: true },
          { prefix: 'billing/eu/', vault: 'eu', stripPrefix: true },
          { prefix: 'app.', vault: 'app' },
        ],
      },
    });
    expect(provider.locate('billing/legacy')).toMatchObject({ vault: 'app', secretName: 'billing--slegacy' });
    expect(provider.locate('billing/stripe_key')).toMatchObject({
      vault: 'billing',
      secretName: 'stripe-key',
    });
    expect(provider.locate('billing/eu/stripe_key')).toMatchObject({
      vault: 'eu',
      vaultUrl: 'https://billing-eu.vault.azure.net',
      secretName: 'stripe-key',
    });
    expect(provider.locate('app.db')).toMatchObject({ vault: 'app', secretName: 'app--ddb' });
    // Three vaults and no default: other keys are not this provider's.
    expect(provider.locate('OTHER')).toBeUndefined();
  });

  it('defaults the name, the only vault, and the name mapper; takes a custom mapper', () => {
    const single = new AzureKeyVaultProvider({ vaultUrl: 'https://kv.vault.azure.net/', credential });
    expect(single.name).toBe(PROVIDER_NAME);
    expect(single.vaults).toEqual({ [DEFAULT_VAULT]: 'https://kv.vault.azure.net' });
    expect(single.locate('DATABASE_URL')?.secretName).toBe('DATABASE-URL');
    const custom = new AzureKeyVaultProvider({
      vaultUrl: 'https://kv.vault.azure.net',
      credential,
      nameMapper: identityNameMapper,
    });
    expect(custom.locate('api-key')?.secretName).toBe('api-key');
    expect(() => custom.locate('DATABASE_URL')).toThrow(/not a Key Vault name/);
    expect(single.capabilities).toEqual({
      write: true,
      delete: true,
      list: true,
      watch: true,
      metadata: true,
      versions: true,
      has: false,
      checkAndSet: false,
      expiry: true,
      tags: true,
      contentType: true,
    });
  });

  it('caches by default with core defaults (cacheStats), and not with cache: false', () => {
    const cached = new AzureKeyVaultProvider({ vaultUrl: 'https://kv.vault.azure.net', credential });
    expect(cached.cacheStats()).toMatchObject({ hits: 0, misses: 0, size: 0 });
    const uncached = new AzureKeyVaultProvider({
      vaultUrl: 'https://kv.vault.azure.net',
      credential,
      cache: false,
    });
    expect(uncached.cacheStats()).toBeUndefined();
  });

  it('never shows credentials in util.inspect or JSON', () => {
    const provider = new AzureKeyVaultProvider({
      vaults: { a: { vaultUrl: 'https://a.vault.azure.net', credential } },
      credential,
    });
    for (const text of [inspect(provider, { depth: Infinity, showHidden: true }), JSON.stringify(provider)]) {
      expect(text).toContain('https://a.vault.azure.net');
      expect(text).not.toContain('client-secret-that-must-not-leak');
      expect(text).not.toContain('SecretHoldingCredential');
    }
  });

  it('rejects calls after close with CLOSED, without loading anything', async () => {
    const provider = new AzureKeyVaultProvider({ vaultUrl: 'https://kv.vault.azure.net', credential });
    await provider.close();
    await expect(provider.get('A')).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(provider.client()).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(provider.recoverDeleted('A')).rejects.toMatchObject({ code: 'CLOSED' });
  });
});
