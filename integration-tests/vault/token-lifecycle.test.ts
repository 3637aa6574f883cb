// Vault's token lifecycle runs on the product's one token mechanism (TokenSource): hours of
// simulated time with short TTLs, through the real node-vault client against the double.
import { isSecretError, type WarningEvent } from '@secret-provider/core';
import type { VaultDouble } from '@secret-provider/doubles/vault';
import { rejection } from '@secret-provider/testing';
import { ManualClock } from '@secret-provider/vault';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Setup, setup, trackUnhandledRejections } from './helpers.js';

trackUnhandledRejections({ beforeAll, afterAll });

let current: Setup | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

const codes = (s: Setup, code: string) =>
  s.events.filter((e) => e.type === 'warning' && (e.event as WarningEvent).code === code);
const count = (double: VaultDouble, path: string, status?: number) =>
  double.count((r) => r.path === path && (status === undefined || r.status === status));
const loginTokens = (double: VaultDouble) =>
  [...double.state.tokens.values()].filter((t) => t.path === 'auth/approle/login');

/** Every request that carried a token carried one the double still held valid at that moment. */
function expectNoExpiredTokenSent(double: VaultDouble): number {
  const byAccessor = new Map([...double.state.tokens.values()].map((t) => [t.accessor, t]));
  let checked = 0;
  for (const request of double.requests) {
    if (request.tokenAccessor === undefined) continue;
    const token = byAccessor.get(request.tokenAccessor);
    expect(token, request.path).toBeDefined();
    if (token === undefined) continue;
    expect(token.revokedAt === 0 || request.at < token.revokedAt, `${request.path} at ${request.at}`).toBe(
      true,
    );
    checked++;
  }
  expect(double.count((r) => r.status === 403)).toBe(0);
  return checked;
}

async function appRoleSetup(
  clock: ManualClock,
  token = { ttl: 60, explicitMaxTtl: 300 },
  prepare?: (double: VaultDouble) => void,
) {
  return setup({
    clock,
    provider: (double) => {
      // Before the provider exists: the watch that records events starts with a login.
      prepare?.(double);
      const { roleId, secretId } = double.addAppRole('app', token);
      return { auth: { method: 'approle', roleId, secretId }, random: () => 0.5 };
    },
  });
}

describe('Vault token lifecycle on TokenSource', () => {
  it('three simulated hours of 60 s tokens (max TTL 300 s): renewed in place to the max, then a new login; no expired token sent; leases follow', async () => {
    const clock = new ManualClock();
    const s = await appRoleSetup(clock);
    current = s;
    s.double.kvPut('secret', 'app', { value: 'v' });
    s.double.addDatabaseRole('app', { ttl: 3600, maxTtl: 86_400, renewable: true });
    for (let t = 0; t < 3 * 3600; t += 15) {
      expect((await s.provider.get('secret/app')).reveal(), `t=${t}`).toBe('v');
      if (t % 60 === 0) {
        const user = await s.provider.get('database/creds/app#username');
        const password = await s.provider.get('database/creds/app#password');
        expect(s.double.useCredential(user.reveal(), password.reveal()), `t=${t}`).toBe(true);
      }
      await clock.advance(15_000);
    }
    expect(expectNoExpiredTokenSent(s.double)).toBeGreaterThan(1_000);
    expect(s.double.credentialFailures).toEqual([]);

    const logins = count(s.double, 'auth/approle/login', 200);
    const renewals = count(s.double, 'auth/token/renew-self', 200);
    // A token lives at most 300 s: about one login per 290 s, each token renewed 4-7 times.
    expect(logins).toBeGreaterThanOrEqual(36);
    expect(logins).toBeLessThanOrEqual(48);
    expect(renewals / logins).toBeGreaterThanOrEqual(4);
    expect(renewals / logins).toBeLessThanOrEqual(7);
    // In place: every renewal renewed a login's token, and each replaced token had been renewed up
    // to its max TTL (its end within the last 60 s TTL before the 300 s ceiling) before the next login.
    const tokens = loginTokens(s.double);
    expect(tokens).toHaveLength(logins);
    for (const token of tokens.slice(0, -1)) {
      expect(token.renewals).toBeGreaterThanOrEqual(4);
      expect(token.expireAt).toBeGreaterThan(token.maxExpireAt - 60_000);
    }
    const renewedAccessors = new Set(
      s.double.requests.filter((r) => r.path === 'auth/token/renew-self').map((r) => r.tokenAccessor),
    );
    for (const accessor of renewedAccessors) expect(tokens.some((t) => t.accessor === accessor)).toBe(true);

    // One mechanism: the provider's token counters are the TokenSource's.
    const stats = s.provider.stats();
    expect(stats.token).toEqual({ issued: logins, failures: 0, rejections: 0, renewals });
    expect(stats.tokenRenewals).toBe(renewals);
    expect(stats.logins).toBe(logins);
    expect(stats.leases.rotated).toBeGreaterThan(0);
    expect(codes(s, 'TOKEN_REJECTED')).toHaveLength(0);
    expect(s.events.filter((e) => e.type === 'error')).toHaveLength(0);
  }, 60_000);

  it('a refused login backs off (callers get the error without a request), then recovers; a refused re-login in the background is retried before the token ends', async () => {
    const clock = new ManualClock();
    const refuse = (double: VaultDouble, times: number) =>
      double.fail({
        kind: 'status',
        status: 400,
        body: { errors: ['invalid role or secret ID'] },
        count: times,
        match: 'auth/approle/login',
      });
    const s = await appRoleSetup(clock, undefined, (double) => refuse(double, 2));
    current = s;
    s.double.kvPut('secret', 'app', { value: 'v' });
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => s.provider.get('secret/app')));
    for (const result of results) {
      expect(result.status).toBe('rejected');
      expect(isSecretError((result as PromiseRejectedResult).reason, 'ACCESS_DENIED')).toBe(true);
    }
    expect(count(s.double, 'auth/approle/login')).toBe(1);
    // Held back: no request until the back-off has passed.
    expect(isSecretError(await rejection(s.provider.get('secret/app')), 'ACCESS_DENIED')).toBe(true);
    expect(count(s.double, 'auth/approle/login')).toBe(1);
    await clock.advance(1_000);
    await rejection(s.provider.get('secret/app'));
    expect(count(s.double, 'auth/approle/login')).toBe(2);
    // The second refusal holds longer (the back-off grows); then the login goes through.
    await clock.advance(1_000);
    await rejection(s.provider.get('secret/app'));
    expect(count(s.double, 'auth/approle/login')).toBe(2);
    await clock.advance(2_000);
    expect((await s.provider.get('secret/app')).reveal()).toBe('v');
    expect(count(s.double, 'auth/approle/login')).toBe(3);
    expect(s.provider.stats().token.failures).toBe(2);

    // In the background: the re-login near the end of the token is refused once, reported, and
    // retried while the token still lives; callers never see it.
    refuse(s.double, 1);
    s.double.clearLog();
    const errorsBefore = s.events.filter((e) => e.type === 'error').length;
    for (let t = 0; t < 600; t += 5) {
      expect((await s.provider.get('secret/app')).reveal(), `t=${t}`).toBe('v');
      await clock.advance(5_000);
    }
    expect(count(s.double, 'auth/approle/login', 400)).toBe(1);
    expect(count(s.double, 'auth/approle/login', 200)).toBeGreaterThanOrEqual(2);
    expectNoExpiredTokenSent(s.double);
    const errors = s.events.filter((e) => e.type === 'error').slice(errorsBefore);
    expect(errors).toHaveLength(1);
    expect(isSecretError((errors[0]?.event as { error?: unknown } | undefined)?.error, 'ACCESS_DENIED')).toBe(
      true,
    );
    expect(s.provider.stats().token.failures).toBe(3);
  }, 30_000);

  it('a static token: renewed in place while Vault lets it, one TOKEN_EXPIRING before its end, no lookup again, nothing in the background after', async () => {
    const clock = new ManualClock();
    let id = '';
    const s = await setup({
      clock,
      provider: (double) => {
        id = double.createToken({ ttl: 60, explicitMaxTtl: 300 }).id;
        return { auth: { method: 'token', token: id }, random: () => 0.5 };
      },
    });
    current = s;
    s.double.kvPut('secret', 'app', { value: 'v' });
    const token = s.double.state.tokens.get(id);
    if (token === undefined) throw new Error('no token');
    for (let t = 0; t < 600; t += 15) {
      if (clock.now() < token.expireAt - 1_000)
        expect((await s.provider.get('secret/app')).reveal()).toBe('v');
      await clock.advance(15_000);
    }
    expect(count(s.double, 'auth/token/lookup-self')).toBe(1);
    const renewals = count(s.double, 'auth/token/renew-self', 200);
    expect(renewals).toBeGreaterThanOrEqual(4);
    expect(renewals).toBeLessThanOrEqual(7);
    expect(token.expireAt).toBeGreaterThan(token.maxExpireAt - 60_000);
    const expiring = codes(s, 'TOKEN_EXPIRING');
    expect(expiring).toHaveLength(1);
    expect((expiring[0]?.event as WarningEvent | undefined)?.detectedAt.getTime()).toBeLessThan(
      token.maxExpireAt,
    );
    // The lifecycle sent the token only while it lived (the watch's polls go on regardless).
    const auth = () => s.double.requests.filter((r) => r.path.startsWith('auth/'));
    for (const request of auth()) expect(request.at).toBeLessThan(token.expireAt);

    const requests = auth().length;
    await clock.advance(3_600_000);
    expect(auth()).toHaveLength(requests);
    // Past its end Vault refuses it; token auth cannot log in again.
    expect(isSecretError(await rejection(s.provider.get('secret/app')), 'ACCESS_DENIED')).toBe(true);
    expect(codes(s, 'TOKEN_REJECTED')).toHaveLength(1);
    expect(codes(s, 'TOKEN_EXPIRING')).toHaveLength(1);
    expect(s.provider.stats().token).toMatchObject({ issued: 1, renewals });
  }, 30_000);

  it('a token revoked under the service: one re-login, counted as a rejection by the token source; leases of the old token are replaced', async () => {
    const clock = new ManualClock();
    const s = await appRoleSetup(clock, { ttl: 600, explicitMaxTtl: 3600 });
    current = s;
    s.double.addDatabaseRole('app', { ttl: 3600, maxTtl: 86_400, renewable: true });
    s.double.kvPut('secret', 'app', { value: 'v' });
    const first = await s.provider.get('database/creds/app#username');
    const tokens = loginTokens(s.double);
    s.double.revokeToken(tokens[0]?.id ?? '');
    // The next request sees the rejection: one re-login, one retry; the lease died with its
    // token, so a new credential is fetched.
    expect((await s.provider.get('secret/app')).reveal()).toBe('v');
    await clock.advance(1_000);
    const user = await s.provider.get('database/creds/app#username');
    const password = await s.provider.get('database/creds/app#password');
    expect(user.reveal()).not.toBe(first.reveal());
    expect(s.double.useCredential(user.reveal(), password.reveal())).toBe(true);
    expect(count(s.double, 'auth/approle/login', 200)).toBe(2);
    expect(codes(s, 'TOKEN_REJECTED')).toHaveLength(1);
    expect(s.provider.stats().token).toMatchObject({ issued: 2, rejections: 1 });
  });
});
