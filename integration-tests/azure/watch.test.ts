import { AzureKeyVaultProvider } from '@secret-provider/azure';
import type { SecretEvents } from '@secret-provider/core';
import { ManualClock } from '@secret-provider/core/adapter';
import { FakeCredential, KeyVaultDouble } from '@secret-provider/doubles/key-vault';
import { record, until, waitFor } from '@secret-provider/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { clientOptionsFor, type SingleVault, singleVault } from './fixtures.js';

// Rotation is detected from properties: the list (no versions, whole-second `updated`) says
// what changed, the versions list of the changed secret says to which version. No value is read.

let vault: SingleVault | undefined;

afterEach(async () => {
  await vault?.stop();
  vault = undefined;
});

/** Waits until the provider has listed `polls` more times. */
async function polls(double: KeyVaultDouble, count: number): Promise<void> {
  const start = double.count({ operation: 'listSecrets' });
  await until(() => double.count({ operation: 'listSecrets' }) >= start + count);
}

describe('watch', () => {
  it('an out-of-band new version gives exactly one rotated event with both versions, and no value is read', async () => {
    vault = await singleVault({ pollInterval: 50 });
    const { provider, double } = vault;
    const v1 = double.setSecret('DATABASE-URL', 'one');
    const { events: seen, handle } = await record(provider);
    await polls(double, 1);
    const v2 = double.setSecret('DATABASE-URL', 'two');
    await waitFor(() => seen.find((s) => s.type === 'rotated'));
    await polls(double, 3);
    await handle.stop();
    expect(seen.map((s) => s.type)).toEqual(['rotated']);
    expect(seen[0]?.event).toMatchObject({
      provider: 'azure',
      keys: ['DATABASE_URL'],
      changes: [{ key: 'DATABASE_URL', oldVersion: v1, newVersion: v2 }],
    });
    expect(double.count({ operation: 'getSecret' })).toBe(0);
    expect(double.count({ operation: 'listVersions' })).toBeGreaterThan(0);
  });

  it('finds the old version from timestamps when it never looked it up, and stops re-checking settled secrets', async () => {
    let clock = Date.UTC(2026, 0, 1);
    const double = await KeyVaultDouble.start({ now: () => clock });
    const provider = new AzureKeyVaultProvider({
      vaultUrl: double.url,
      credential: new FakeCredential(double),
      clientOptions: clientOptionsFor(double),
      pollInterval: 50,
      settleWindowMs: 0,
    });
    try {
      const v1 = double.setSecret('TOKEN', 'one');
      clock += 5_000;
      const { events: seen, handle } = await record(provider);
      await polls(double, 2);
      // Settled and unchanged: only the list is read.
      expect(double.count({ operation: 'listVersions' })).toBe(0);
      clock += 5_000;
      const v2 = double.setSecret('TOKEN', 'two');
      await waitFor(() => seen.find((s) => s.type === 'rotated'));
      await polls(double, 2);
      await handle.stop();
      expect(seen).toHaveLength(1);
      expect(seen[0]?.event).toMatchObject({ changes: [{ key: 'TOKEN', oldVersion: v1, newVersion: v2 }] });
      expect(double.count({ operation: 'listVersions' })).toBe(1);
      expect(double.count({ operation: 'getSecret' })).toBe(0);
    } finally {
      await provider.close();
      await double.stop();
    }
  });

  it('tells apart two writes within one second (Key Vault stamps whole seconds)', async () => {
    const clock = Date.now();
    const double = await KeyVaultDouble.start({ now: () => clock });
    const provider = new AzureKeyVaultProvider({
      vaultUrl: double.url,
      credential: new FakeCredential(double),
      clientOptions: clientOptionsFor(double),
      pollInterval: 50,
    });
    try {
      const v1 = double.setSecret('FAST', 'one');
      const { events: seen, handle } = await record(provider);
      double.setSecret('FAST', 'two');
      const v3 = double.setSecret('FAST', 'three');
      await waitFor(() => seen.find((s) => s.type === 'rotated'));
      await polls(double, 2);
      await handle.stop();
      expect(seen).toHaveLength(1);
      expect(seen[0]?.event).toMatchObject({ changes: [{ oldVersion: v1, newVersion: v3 }] });
    } finally {
      await provider.close();
      await double.stop();
    }
  });

  it('reports additions, disabling and deletion as added/removed with versions; property edits are silent', async () => {
    vault = await singleVault({ pollInterval: 50 });
    const { provider, double } = vault;
    double.setSecret('STAYS', 'v');
    const { events: seen, handle } = await record(provider);
    const added = double.setSecret('NEW-ONE', 'v');
    await waitFor(() => seen.find((s) => s.type === 'added'));
    expect(seen[0]?.event).toMatchObject({ key: 'NEW_ONE', version: added });
    double.updateSecret('STAYS', { tags: { owner: 'ops' } });
    double.updateSecret('NEW-ONE', { enabled: false });
    await waitFor(() => seen.find((s) => s.type === 'removed'));
    expect(seen[1]?.event).toMatchObject({ key: 'NEW_ONE', version: added });
    double.updateSecret('NEW-ONE', { enabled: true });
    await until(() => seen.length >= 3);
    double.deleteSecret('NEW-ONE');
    await until(() => seen.length >= 4);
    await polls(double, 2);
    await handle.stop();
    expect(seen.map((s) => `${s.type}:${(s.event as { key: string }).key}`)).toEqual([
      'added:NEW_ONE',
      'removed:NEW_ONE',
      'added:NEW_ONE',
      'removed:NEW_ONE',
    ]);
    expect(double.count({ operation: 'getSecret' })).toBe(0);
  });

  it('drops a rotated key from the cache, so the next get reads the new value', async () => {
    vault = await singleVault({ pollInterval: 50 });
    const { provider, double } = vault;
    double.setSecret('API-KEY', 'old');
    const { events: seen, handle } = await record(provider);
    expect((await provider.get('API_KEY')).reveal()).toBe('old');
    expect((await provider.get('API_KEY')).reveal()).toBe('old');
    double.setSecret('API-KEY', 'new');
    await waitFor(() => seen.find((s) => s.type === 'rotated'));
    expect((await provider.get('API_KEY')).reveal()).toBe('new');
    await handle.stop();
  });

  it('reports a failing vault as error events, backs off, keeps its keys, and recovers', async () => {
    vault = await singleVault({ pollInterval: 30 });
    const { provider, double } = vault;
    double.setSecret('KEEP', 'v');
    const { events: seen, handle } = await record(provider);
    const fault = double.inject({ type: 'status', status: 503, match: (r) => r.operation === 'listSecrets' });
    await until(() => seen.filter((s) => s.type === 'error').length >= 2);
    const failedPolls = fault.hits;
    fault.remove();
    const rotated = double.setSecret('KEEP', 'v2');
    await waitFor(() => seen.find((s) => s.type === 'rotated'));
    await handle.stop();
    const errors = seen.filter((s) => s.type === 'error');
    expect((errors[0]?.event as SecretEvents['error'] | undefined)?.error.code).toBe('UNAVAILABLE');
    expect(seen.some((s) => s.type === 'removed')).toBe(false);
    expect(seen.find((s) => s.type === 'rotated')?.event).toMatchObject({
      changes: [{ key: 'KEEP', newVersion: rotated }],
    });
    // Each failed poll is the SDK's 1 + 3 attempts, never more.
    expect(failedPolls % 4).toBe(0);
  });

  it('starts even when the first lists fail: one error event, then the next good list is the baseline', async () => {
    vault = await singleVault({ pollInterval: 30 });
    const { provider, double } = vault;
    double.setSecret('BEFORE', 'v');
    const outage = double.inject({
      type: 'status',
      status: 503,
      match: (r) => r.operation === 'listSecrets',
    });
    const { events: seen, handle } = await record(provider);
    expect(seen.map((s) => s.type)).toEqual(['error']);
    // Two more attempts to start (the SDK's 1 + 3 requests each) fail the same way: one event.
    await polls(double, 8);
    expect(seen.map((s) => s.type)).toEqual(['error']);
    outage.remove();
    await polls(double, 2);
    // Secrets that existed before the baseline are not "added".
    expect(seen.map((s) => s.type)).toEqual(['error']);
    const version = double.setSecret('AFTER', 'v');
    await waitFor(() => seen.find((s) => s.type === 'added'));
    await handle.stop();
    expect(seen.at(-1)?.event).toMatchObject({ key: 'AFTER', version });
  });

  it('watches every routed vault and reports keys as the application names them', async () => {
    const app = await KeyVaultDouble.start();
    const billing = await KeyVaultDouble.start();
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
      pollInterval: 50,
    });
    try {
      const v1 = billing.setSecret('STRIPE-KEY', 'one');
      app.setSecret('DB-URL', 'x');
      const { events: seen, handle } = await record(provider);
      const v2 = billing.setSecret('STRIPE-KEY', 'two');
      await waitFor(() => seen.find((s) => s.type === 'rotated'));
      await handle.stop();
      expect(seen[0]?.event).toMatchObject({
        changes: [{ key: 'billing/STRIPE_KEY', oldVersion: v1, newVersion: v2 }],
      });
      expect((await provider.keys()).sort()).toEqual(['DB_URL', 'billing/STRIPE_KEY']);
    } finally {
      await provider.close();
      await app.stop();
      await billing.stop();
    }
  });

  it('polls on the provider clock, and after a throttled poll waits out Retry-After before the next', async () => {
    const clock = new ManualClock(Date.now());
    const double = await KeyVaultDouble.start();
    const provider = new AzureKeyVaultProvider({
      vaultUrl: double.url,
      credential: new FakeCredential(double),
      clientOptions: { ...clientOptionsFor(double), retryOptions: { maxRetries: 0 } },
      pollInterval: 10_000,
      pollJitter: 0,
      clock,
    });
    const lists = () => double.count({ operation: 'listSecrets', status: 200 });
    try {
      double.setSecret('A', 'v');
      const { events: seen, handle } = await record(provider);
      const baseline = lists();
      // Real time passes, simulated time does not: no poll.
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(lists()).toBe(baseline);
      // Without jitter the first poll comes after exactly one interval.
      await clock.advance(10_000);
      expect(lists()).toBe(baseline + 1);
      double.inject({
        type: 'status',
        status: 429,
        retryAfter: 120,
        times: 1,
        match: (r) => r.operation === 'listSecrets',
      });
      await clock.advance(10_000);
      expect(
        seen.filter((s) => s.type === 'error').map((s) => (s.event as SecretEvents['error']).error.code),
      ).toEqual(['RATE_LIMITED']);
      const throttledAt = lists();
      const throttled = seen.find((e) => e.type === 'error')?.event as SecretEvents['error'] | undefined;
      const throttledOn = throttled?.detectedAt.getTime() ?? Number.NaN;
      // Step through simulated time until the next list: not before the vault's 120 s, and at
      // most half of it later (the spread that keeps a fleet from returning at one instant).
      while (lists() === throttledAt && clock.now() - throttledOn < 300_000) await clock.advance(1_000);
      const waited = clock.now() - throttledOn;
      expect(waited).toBeGreaterThanOrEqual(120_000);
      expect(waited).toBeLessThanOrEqual(181_000);
      // Then polling goes on at the interval.
      await clock.advance(10_000);
      expect(lists()).toBe(throttledAt + 2);
      await handle.stop();
    } finally {
      await provider.close();
      await double.stop();
    }
  });
});
