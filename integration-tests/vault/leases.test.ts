import type { RotatedEvent } from '@secret-provider/core';
import { ManualClock } from '@secret-provider/vault';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Setup, setup, trackUnhandledRejections } from './helpers.js';

trackUnhandledRejections({ beforeAll, afterAll });

// Dynamic credentials on a simulated clock: the provider's renewal and rotation timers and the
// double's lease expiry both run on one ManualClock, so an hour of lease life takes a second.

const KEY_USER = 'database/creds/app#username';
const KEY_PASSWORD = 'database/creds/app#password';

let current: Setup | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

/** Reads the credential as an application would and uses it against the double's "database". */
async function useCredential(s: Setup): Promise<{ leaseId: string; ok: boolean; remainingMs: number }> {
  const user = await s.provider.get(KEY_USER);
  const password = await s.provider.get(KEY_PASSWORD);
  const leaseId = user.metadata?.lease?.id ?? '';
  expect(password.metadata?.lease?.id).toBe(leaseId);
  const ok = s.double.useCredential(user.reveal(), password.reveal());
  const lease = s.double.state.leases.get(leaseId);
  return { leaseId, ok, remainingMs: lease === undefined ? -1 : lease.expireAt - s.double.now };
}

describe('dynamic secrets on a simulated clock', () => {
  it('serves one credential continuously over 10 lease periods and a max-TTL rollover', async () => {
    const clock = new ManualClock();
    const rotations: Array<{ event: RotatedEvent; oldRemainingMs: number; oldValid: boolean }> = [];
    const s = await setup({
      clock,
      provider: () => ({ random: () => 0.5, leases: { revokeGraceMs: 30_000 } }),
    });
    current = s;
    s.double.addDatabaseRole('app', { ttl: 300, maxTtl: 1800, renewable: true });
    // Checked the moment `rotated` arrives: the old lease must still be alive at the double.
    const emitter = (await import('@secret-provider/core')).createEmitter();
    emitter.on('rotated', (event) => {
      const old = s.double.state.leases.get(event.changes[0]?.oldLeaseId ?? '');
      rotations.push({
        event,
        oldRemainingMs: old === undefined ? -1 : old.expireAt - s.double.now,
        oldValid: old !== undefined && old.revokedAt === 0,
      });
    });
    const handle = s.provider.watch(emitter);
    await handle.ready;

    const leasesSeen = new Set<string>();
    const minRemaining: number[] = [];
    // 10 lease periods of 300 s, read every 10 s of simulated time.
    for (let t = 0; t < 3000; t += 10) {
      const use = await useCredential(s);
      expect(use.ok, `credential valid at t=${t}s`).toBe(true);
      leasesSeen.add(use.leaseId);
      minRemaining.push(use.remainingMs);
      await clock.advance(10_000);
    }
    await handle.stop();

    expect(s.double.credentialFailures).toEqual([]);
    expect(Math.min(...minRemaining)).toBeGreaterThan(0);
    // Exactly one replacement: at the 1800 s max TTL.
    expect(leasesSeen.size).toBe(2);
    expect(rotations).toHaveLength(1);
    const [rotation] = rotations;
    expect(rotation?.oldValid).toBe(true);
    // Replaced with most of the last quarter of a lease period to spare, not at the last moment.
    expect(rotation?.oldRemainingMs).toBeGreaterThan(60_000);
    expect(rotation?.event.keys).toEqual(
      expect.arrayContaining(['database/creds/app', KEY_USER, KEY_PASSWORD]),
    );
    const change = rotation?.event.changes[0];
    expect(change?.oldLeaseId).not.toBe(change?.newLeaseId);
    expect(leasesSeen).toEqual(new Set([change?.oldLeaseId, change?.newLeaseId]));
    // The old lease was revoked after its grace period, not left to run to its end.
    const old = s.double.state.leases.get(change?.oldLeaseId ?? '');
    expect(old?.revokeReason).toBe('lease revoked');
    // Renewed, not re-read: two credentials issued for 3000 s of use, renewals in between.
    expect(s.provider.stats().leases.issued).toBe(2);
    expect(s.provider.stats().leases.renewed).toBeGreaterThanOrEqual(8);
    expect(s.double.count((r) => r.path === 'database/creds/app')).toBe(2);
    // No renewal was ever sent for a lease that had already expired or hit its max.
    const renewals = s.double.requests.filter((r) => r.path === 'sys/leases/renew');
    expect(renewals.length).toBeGreaterThanOrEqual(8);
    expect(renewals.every((r) => r.status === 200)).toBe(true);
  });

  it('replaces a non-renewable credential before it expires', async () => {
    const clock = new ManualClock();
    const s = await setup({ clock, provider: () => ({ random: () => 0.5, leases: { revokeGraceMs: 0 } }) });
    current = s;
    s.double.addDatabaseRole('app', { ttl: 120, maxTtl: 120, renewable: false });
    const seen = new Set<string>();
    for (let t = 0; t < 1200; t += 5) {
      const use = await useCredential(s);
      expect(use.ok).toBe(true);
      seen.add(use.leaseId);
      await clock.advance(5_000);
    }
    expect(s.double.credentialFailures).toEqual([]);
    // One credential per ~(0.75 - jitter/2) of 120 s.
    expect(seen.size).toBeGreaterThanOrEqual(10);
    expect(seen.size).toBeLessThanOrEqual(16);
    expect(s.double.count((r) => r.path === 'sys/leases/renew')).toBe(0);
    // Every replacement is announced (the last one may come after the last read).
    const rotated = s.events.filter((e) => e.type === 'rotated').length;
    expect(rotated === seen.size - 1 || rotated === seen.size).toBe(true);
  });

  it('fetches a fresh credential when Vault says the lease is gone', async () => {
    const clock = new ManualClock();
    const s = await setup({ clock, provider: () => ({ random: () => 0.5 }) });
    current = s;
    s.double.addDatabaseRole('app', { ttl: 600, maxTtl: 7200, renewable: true });
    const first = await useCredential(s);
    // Revoked out of band (an operator, or a token revocation elsewhere).
    s.double.call('PUT', 'sys/leases/revoke', { lease_id: first.leaseId });
    await clock.advance(500_000);
    const second = await useCredential(s);
    expect(second.leaseId).not.toBe(first.leaseId);
    expect(second.ok).toBe(true);
    const rotated = s.events.find((e) => e.type === 'rotated')?.event as RotatedEvent | undefined;
    expect(rotated?.changes[0]?.oldLeaseId).toBe(first.leaseId);
  });

  it('keeps the credential while renewals fail briefly, and reports the failures', async () => {
    const clock = new ManualClock();
    const s = await setup({ clock, provider: () => ({ random: () => 0.5 }) });
    current = s;
    s.double.addDatabaseRole('app', { ttl: 600, maxTtl: 7200, renewable: true });
    const first = await useCredential(s);
    s.double.fail({
      kind: 'status',
      status: 503,
      body: { errors: ['Vault is sealed'] },
      count: 2,
      match: 'sys/leases/renew',
    });
    await clock.advance(600_000);
    const later = await useCredential(s);
    expect(later.leaseId).toBe(first.leaseId);
    expect(later.ok).toBe(true);
    const errors = s.events.filter((e) => e.type === 'error');
    expect(errors.length).toBe(2);
    expect(errors.every((e) => (e.event as { error: { code: string } }).error.code === 'UNAVAILABLE')).toBe(
      true,
    );
  });

  it('revokes live leases on close, and only warns when the policy denies it', async () => {
    const s = await setup({ watch: false });
    current = undefined;
    s.double.addDatabaseRole('app', { ttl: 600, maxTtl: 7200, renewable: true });
    const user = await s.provider.get(KEY_USER);
    const leaseId = user.metadata?.lease?.id ?? '';
    await s.close();
    expect(s.double.state.leases.get(leaseId)?.revokeReason).toBe('lease revoked');

    const denied = await setup({
      provider: (double) => ({
        auth: { method: 'token', token: double.createToken({ ttl: 3600, deny: ['sys/leases/revoke'] }).id },
      }),
    });
    denied.double.addDatabaseRole('app', { ttl: 600, maxTtl: 7200, renewable: true });
    const other = await denied.provider.get(KEY_USER);
    await denied.close();
    const warning = denied.events.find((e) => e.type === 'warning');
    expect((warning?.event as { code?: string } | undefined)?.code).toBe('LEASE_REVOKE_DENIED');
    expect(denied.double.state.leases.get(other.metadata?.lease?.id ?? '')?.revokedAt).toBe(0);
  });

  it('leaves leases to expire on close with onClose: release', async () => {
    const s = await setup({ watch: false, provider: () => ({ leases: { onClose: 'release' } }) });
    s.double.addDatabaseRole('app', { ttl: 600, maxTtl: 7200, renewable: true });
    const user = await s.provider.get(KEY_USER);
    await s.close();
    expect(s.double.state.leases.get(user.metadata?.lease?.id ?? '')?.revokedAt).toBe(0);
  });
});
