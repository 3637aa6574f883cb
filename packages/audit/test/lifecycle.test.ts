// Lease and token records: Vault's dynamic-secret leases (issued, renewed, refused as gone,
// rotated, revoked) through the Vault double, and a TokenSource's token events (first issue,
// refresh as a rotation, a failed background refresh), each on a simulated clock.
import { createAuditor } from '@secret-provider/audit';
import { ManualClock } from '@secret-provider/core/adapter';
import { VaultDouble } from '@secret-provider/doubles/vault';
import { expectNoLeak } from '@secret-provider/testing';
import { fixedToken, type TokenIssuer, TokenSource } from '@secret-provider/token';
import { VaultProvider } from '@secret-provider/vault';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach, memorySink } from './fixtures.js';

const defer = cleanupAfterEach();

/** Lets the queue's pump and the requests in flight finish (real sockets, real time). */
const settle = () => new Promise((r) => setTimeout(r, 20));

describe('lease records', () => {
  it('records a lease issued, renewed, refused as gone, rotated and revoked, joined to the double log', async () => {
    const clock = new ManualClock();
    const sink = memorySink();
    const auditor = createAuditor({ sinks: [sink], clock });
    const double = await VaultDouble.start({ now: () => clock.now() });
    const provider = new VaultProvider({
      name: 'vault:leases',
      endpoint: double.url,
      auth: { method: 'token', token: double.rootToken },
      env: {},
      cache: false,
      clock,
      random: () => 0.5,
      leases: { revokeGraceMs: 1_000 },
      retry: { retries: 0, baseDelayMs: 5, maxDelayMs: 20 },
    });
    defer(() => double.close());
    auditor.attach(provider);
    double.addDatabaseRole('app', { ttl: 300, maxTtl: 7200, renewable: true });
    const first = await provider.get('database/creds/app#password');
    const firstLease = first.metadata?.lease?.id ?? '';
    // Renewals at 3/4 of the lease (less the jitter): two within 500 s.
    for (let t = 0; t < 500; t += 10) {
      await clock.advance(10_000);
      await settle();
    }
    // Revoked out of band: the next renewal is refused, and the provider replaces the credential.
    double.call('PUT', 'sys/leases/revoke', { lease_id: firstLease });
    for (let t = 0; t < 300; t += 10) {
      await clock.advance(10_000);
      await settle();
    }
    const second = await provider.get('database/creds/app#password');
    const secondLease = second.metadata?.lease?.id ?? '';
    expect(secondLease).not.toBe(firstLease);
    await provider.close(); // revokes the live lease
    await auditor.close();
    const records = sink.records;

    const issued = records.find((r) => r.kind === 'operation' && r.operation === 'get');
    expect(issued).toEqual(
      expect.objectContaining({
        outcome: 'ok',
        servedFrom: 'backend',
        leaseDurationS: 300,
        provider: 'vault:leases',
      }),
    );
    const renewals = records.filter((r) => r.kind === 'request' && r.target === '/sys/leases/renew');
    const renewed = renewals.filter((r) => r.outcome === 'ok');
    expect(renewed.length).toBeGreaterThanOrEqual(2);
    expect(renewed.every((r) => r.operation === 'renew' && r.leaseDurationS === 300)).toBe(true);
    expect(renewed[0]?.key).toBe('database/creds/app');
    // The refusal of the revoked lease (Vault answers 400 "lease not found or expired").
    expect(renewals).toContainEqual(expect.objectContaining({ outcome: 'error', status: 400 }));
    expect(records).toContainEqual(
      expect.objectContaining({
        kind: 'change',
        operation: 'rotation',
        keys: expect.arrayContaining(['database/creds/app#password']),
      }),
    );
    const revoked = records.filter((r) => r.kind === 'request' && r.target === '/sys/leases/revoke');
    expect(revoked).toContainEqual(
      expect.objectContaining({ operation: 'revoke', outcome: 'ok', status: 204 }),
    );
    // Each successful renewal joins the double's own log by Vault's request_id.
    for (const record of renewed) {
      const [id] = record.requestIds ?? [];
      const entry = double.requests.find((e) => e.requestId === id);
      expect(entry?.path).toBe('sys/leases/renew');
    }
    // A dynamic secret's version is its lease id (a name Vault's audit log shows too, not a credential).
    expect(issued?.version).toBe(firstLease);
    expectNoLeak([records], [first.reveal(), second.reveal(), double.rootToken], { encodings: true });
  });
});

describe('token records', () => {
  it('records a TokenSource first issue, each refresh as a rotation, and a failed background refresh', async () => {
    const clock = new ManualClock();
    const sink = memorySink();
    const auditor = createAuditor({ sinks: [sink], clock });
    const issuedTokens: string[] = [];
    let failing = false;
    const issuer: TokenIssuer = {
      kind: 'test',
      refreshable: true,
      async issue({ now }) {
        if (failing) throw new Error(`issuer down ${issuedTokens[0] ?? ''}`);
        const value = `tok-${issuedTokens.length + 1}-Vb8qZr2mK5`;
        issuedTokens.push(value);
        return { value, expiresAt: now + 120_000 };
      },
    };
    const source = new TokenSource({
      name: 'api-token',
      issuer,
      clock,
      refreshMargin: 30_000,
      refreshJitter: 0,
      minLifetime: 60_000,
      lifetime: 120_000,
    });
    defer(() => source.close());
    auditor.attach(source);
    await source.token();
    await clock.advance(91_000); // past the margin: the background refresh makes the second token
    await settle();
    expect(issuedTokens).toHaveLength(2);
    failing = true;
    await clock.advance(91_000);
    await settle();
    await auditor.close();
    const records = sink.records;
    expect(records[0]).toEqual(
      expect.objectContaining({
        kind: 'operation',
        operation: 'get',
        provider: 'api-token',
        key: 'token',
        outcome: 'ok',
        version: '1',
      }),
    );
    expect(records).toContainEqual(
      expect.objectContaining({
        kind: 'change',
        operation: 'rotation',
        provider: 'api-token',
        keys: ['token'],
      }),
    );
    expect(records).toContainEqual(
      expect.objectContaining({
        kind: 'change',
        operation: 'error',
        provider: 'api-token',
        keys: ['token'],
        outcome: 'error',
        // The issuer threw a plain error: its text is not kept, only that it was not a known failure.
        errorCode: 'UNKNOWN',
      }),
    );
    expectNoLeak([records], issuedTokens, { encodings: true });
  });

  it('records a token warning by its code, never its message', async () => {
    const sink = memorySink();
    const auditor = createAuditor({ sinks: [sink] });
    const token = 'fixed-tok-Rz4wQ9mN2x';
    const source = new TokenSource({ name: 'fixed-token', issuer: fixedToken(token) });
    defer(() => source.close());
    auditor.attach(source);
    await source.token(); // a fixed token: a warning that it cannot be refreshed
    await auditor.close();
    const warnings = sink.records.filter((r) => r.kind === 'change' && r.operation === 'warning');
    expect(warnings).toEqual([
      expect.objectContaining({
        provider: 'fixed-token',
        keys: ['token'],
        outcome: 'ok',
        warningCode: 'TOKEN_NOT_REFRESHABLE',
      }),
    ]);
    expect(JSON.stringify(warnings)).not.toMatch(/cannot be refreshed/);
    expectNoLeak([sink.records], [token], { encodings: true });
  });
});
