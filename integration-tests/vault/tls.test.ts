import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSecretError } from '@secret-provider/core';
import { VaultDouble } from '@secret-provider/doubles/vault';
import { VaultProvider, type VaultProviderOptions } from '@secret-provider/vault';
import { generate } from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trackUnhandledRejections } from './helpers.js';

trackUnhandledRejections({ beforeAll, afterAll });

// HTTPS with a self-signed certificate: verification is on unless turned off explicitly, and
// node-vault's habit of turning it off for any non-empty VAULT_SKIP_VERIFY does not apply.

let pems: Awaited<ReturnType<typeof generate>>;
let dir: string;
beforeAll(async () => {
  pems = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true },
      { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] },
    ],
    clientCertificate: { cn: 'app' },
  });
  dir = await mkdtemp(join(tmpdir(), 'vault-tls-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function withDouble(requestCert: boolean, run: (double: VaultDouble) => Promise<void>): Promise<void> {
  const double = await VaultDouble.start({
    tls: { key: pems.private, cert: pems.cert, ca: pems.cert, requestCert },
  });
  double.kvPut('secret', 'app', { value: 'tls-value' });
  try {
    await run(double);
  } finally {
    await double.close();
  }
}

async function read(double: VaultDouble, options: Partial<VaultProviderOptions>): Promise<unknown> {
  const provider = new VaultProvider({
    endpoint: double.url,
    auth: { method: 'token', token: double.rootToken },
    retry: { retries: 0 },
    env: {},
    ...options,
  });
  try {
    return (await provider.get('secret/app')).reveal();
  } catch (error) {
    return error;
  } finally {
    await provider.close();
  }
}

describe('TLS', () => {
  it('refuses an untrusted certificate with a non-retryable UNAVAILABLE, and trusts a given CA', async () => {
    await withDouble(false, async (double) => {
      const refused = await read(double, {});
      expect(isSecretError(refused, 'UNAVAILABLE')).toBe(true);
      expect((refused as { retryable?: boolean }).retryable).toBe(false);
      expect((refused as Error).message).toMatch(/TLS verification failed/);
      expect(await read(double, { tls: { ca: pems.cert } })).toBe('tls-value');
      // The LIST verb goes through TLS and the double's request-line rewriting alike.
      const provider = new VaultProvider({
        endpoint: double.url,
        auth: { method: 'token', token: double.rootToken },
        tls: { ca: pems.cert },
        env: {},
      });
      expect(await provider.keys()).toEqual(['secret/app']);
      await provider.close();
      expect(double.requests.some((r) => r.method === 'LIST' && r.wireMethod === 'LIST')).toBe(true);
    });
  });

  it('reads the CA from VAULT_CACERT and ignores VAULT_SKIP_VERIFY=false', async () => {
    const caFile = join(dir, 'ca.pem');
    await writeFile(caFile, pems.cert);
    await withDouble(false, async (double) => {
      expect(isSecretError(await read(double, { env: { VAULT_SKIP_VERIFY: 'false' } }), 'UNAVAILABLE')).toBe(
        true,
      );
      expect(await read(double, { env: { VAULT_CACERT: caFile, VAULT_SKIP_VERIFY: 'false' } })).toBe(
        'tls-value',
      );
      // A true VAULT_SKIP_VERIFY is honoured, and said out loud.
      const provider = new VaultProvider({
        endpoint: double.url,
        env: { VAULT_SKIP_VERIFY: 'true', VAULT_TOKEN: double.rootToken },
      });
      expect(provider.configWarnings.map((w) => w.code)).toContain('TLS_VERIFY_DISABLED');
      expect((await provider.get('secret/app')).reveal()).toBe('tls-value');
      await provider.close();
    });
  });

  it('presents a client certificate for mutual TLS', async () => {
    await withDouble(true, async (double) => {
      expect(isSecretError(await read(double, { tls: { ca: pems.cert } }))).toBe(true);
      const ok = await read(double, {
        tls: { ca: pems.cert, cert: pems.clientcert, key: pems.clientprivate },
      });
      expect(ok).toBe('tls-value');
    });
  });

  it('fails clearly on an endpoint that is not a URL', () => {
    expect(() => new VaultProvider({ endpoint: 'not a url', env: {} })).toThrow(/endpoint is not a URL/);
    let error: unknown;
    try {
      new VaultProvider({ endpoint: 'ftp://x', env: {} });
    } catch (e) {
      error = e;
    }
    expect(isSecretError(error, 'INVALID_CONFIG')).toBe(true);
  });
});
