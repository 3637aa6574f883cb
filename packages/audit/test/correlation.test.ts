// A record joins the server's log: Key Vault's `x-ms-request-id` (through the real
// @azure/keyvault-secrets client on the Key Vault double) and Vault's `request_id` (through
// node-vault on the Vault double), each found in the double's own request log.
import { createAuditor } from '@secret-provider/audit';
import { AzureKeyVaultProvider } from '@secret-provider/azure';
import { FakeCredential, KeyVaultDouble } from '@secret-provider/doubles/key-vault';
import { VaultDouble } from '@secret-provider/doubles/vault';
import { expectNoLeak, rejection } from '@secret-provider/testing';
import { VaultProvider } from '@secret-provider/vault';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach, memorySink } from './fixtures.js';

const VALUE = 'corr-value-Hk3pX8wq';

const defer = cleanupAfterEach();

describe('correlation ids', () => {
  it('a Key Vault read carries the x-ms-request-id the double logged for it', async () => {
    const double = await KeyVaultDouble.start();
    const credential = new FakeCredential(double);
    const provider = new AzureKeyVaultProvider({
      name: 'kv:corr',
      vaultUrl: double.url,
      credential,
      cache: false,
      clientOptions: {
        tlsOptions: { ca: double.ca },
        disableChallengeResourceVerification: true,
        retryOptions: { retryDelayInMs: 20, maxRetryDelayInMs: 200, maxRetries: 0 },
      },
    });
    defer(async () => {
      await provider.close();
      await double.stop();
    });
    const sink = memorySink();
    const auditor = createAuditor({ sinks: [sink] });
    auditor.attach(provider);
    double.setSecret('DB-PASSWORD', VALUE);
    expect((await provider.get('DB_PASSWORD')).reveal()).toBe(VALUE);
    double.inject({ type: 'status', status: 403, match: (r) => r.name === 'DENIED' });
    await rejection(provider.get('DENIED'));
    await auditor.close();

    const read = sink.records.find((r) => r.kind === 'operation' && r.key === 'DB_PASSWORD');
    expect(read).toEqual(
      expect.objectContaining({ operation: 'get', outcome: 'ok', servedFrom: 'backend', status: 200 }),
    );
    // The SDK's first request is the unauthenticated challenge (401): both tries are the read's.
    const ids = read?.requestIds ?? [];
    expect(ids.length).toBeGreaterThanOrEqual(1);
    const served = double.log.find((e) => e.requestId === ids[ids.length - 1]);
    expect(served).toEqual(expect.objectContaining({ method: 'GET', name: 'DB-PASSWORD', status: 200 }));
    for (const id of ids) expect(double.log.some((e) => e.requestId === id)).toBe(true);
    // A Key Vault answer that refused access joins the log too.
    const denied = sink.records.find((r) => r.kind === 'operation' && r.key === 'DENIED');
    expect(denied?.outcome).toBe('denied');
    const refusal = double.log.find((e) => e.requestId === denied?.requestIds?.at(-1));
    expect(refusal).toEqual(expect.objectContaining({ status: 403, outcome: 'fault' }));
    // No request of a read is left over as a record of its own.
    expect(sink.records.filter((r) => r.kind === 'request')).toEqual([]);
    expectNoLeak([sink.records], [VALUE], { encodings: true });
  });

  it("a Vault read carries the request_id Vault answered with, and the client's id the double saw", async () => {
    const double = await VaultDouble.start();
    const token = double.createToken({ ttl: 600 }).id;
    const provider = new VaultProvider({
      name: 'vault:corr',
      endpoint: double.url,
      auth: { method: 'token', token },
      env: {},
      cache: false,
      retry: { retries: 0, baseDelayMs: 5, maxDelayMs: 20 },
    });
    defer(async () => {
      await provider.close();
      await double.close();
    });
    const sink = memorySink();
    const auditor = createAuditor({ sinks: [sink] });
    auditor.attach(provider);
    double.kvPut('secret', 'app/db', { password: VALUE });
    await provider.get('secret/app/db#password');
    await auditor.close();
    const read = sink.records.find((r) => r.kind === 'operation' && r.key === 'secret/app/db#password');
    const [id] = read?.requestIds ?? [];
    const entry = double.requests.find((e) => e.requestId === id);
    expect(entry).toEqual(expect.objectContaining({ path: 'secret/data/app/db', status: 200 }));
    const [clientId] = read?.clientRequestIds ?? [];
    expect(Object.values(entry?.headers ?? {})).toContain(clientId);
    expectNoLeak([sink.records], [VALUE, token], { encodings: true });
  });
});
