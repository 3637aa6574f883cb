import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSecretError, type WarningEvent } from '@secret-provider/core';
import type { VaultDouble } from '@secret-provider/doubles/vault';
import { rejection } from '@secret-provider/testing';
import { ManualClock } from '@secret-provider/vault';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Setup, setup, trackUnhandledRejections } from './helpers.js';

trackUnhandledRejections({ beforeAll, afterAll });

let dir: string;
let current: Setup | undefined;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-auth-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await current?.close();
  current = undefined;
});

const warnings = (s: Setup, code?: string) =>
  s.events.filter(
    (e) => e.type === 'warning' && (code === undefined || (e.event as WarningEvent).code === code),
  );
const logins = (double: VaultDouble, mount = 'approle') =>
  double.count((r) => r.path === `auth/${mount}/login`);
const latestToken = (double: VaultDouble, path = 'auth/approle/login') =>
  [...double.state.tokens.values()].filter((t) => t.path === path).at(-1);

async function appRole(s: Omit<Setup, 'provider'> | VaultDouble, token = { ttl: 300, explicitMaxTtl: 900 }) {
  const double = 'double' in s ? s.double : s;
  const { roleId, secretId } = double.addAppRole('app', token);
  const file = join(dir, `secret-id-${Math.random().toString(36).slice(2)}`);
  await writeFile(file, `${secretId}\n`);
  return { roleId, file };
}

describe('token auth', () => {
  it('looks the token up at start, renews it at the fraction, and warns before it can no longer be renewed', async () => {
    const clock = new ManualClock();
    const s = await setup({
      clock,
      provider: (double) => ({
        auth: { method: 'token', token: double.createToken({ ttl: 600, explicitMaxTtl: 1800 }).id },
        random: () => 0.5,
      }),
    });
    current = s;
    await s.provider.connect();
    expect(s.double.count((r) => r.path === 'auth/token/lookup-self')).toBe(1);
    s.double.kvPut('secret', 'app', { value: 'v' });
    for (let t = 0; t < 1800; t += 60) {
      if (s.double.now < (latestTokenOf(s)?.expireAt ?? 0) - 1000)
        expect((await s.provider.get('secret/app')).reveal()).toBe('v');
      await clock.advance(60_000);
    }
    const renewals = s.double.count((r) => r.path === 'auth/token/renew-self');
    expect(renewals).toBeGreaterThanOrEqual(3);
    const expiring = warnings(s, 'TOKEN_EXPIRING');
    expect(expiring).toHaveLength(1);
    const expiringAt = (expiring[0]?.event as WarningEvent | undefined)?.detectedAt.getTime() ?? Number.NaN;
    expect(expiringAt).toBeLessThan(Date.UTC(2026, 0, 1) + 1_800_000);
    // Past its end the token is refused; token auth cannot log in again: ACCESS_DENIED and a warning.
    const error = await rejection(s.provider.get('secret/app'));
    expect(isSecretError(error, 'ACCESS_DENIED')).toBe(true);
    expect(warnings(s, 'TOKEN_REJECTED')).toHaveLength(1);
  });

  it('warns before a non-renewable token expires and never tries to renew it', async () => {
    const clock = new ManualClock();
    const s = await setup({
      clock,
      provider: (double) => ({
        auth: { method: 'token', token: double.createToken({ ttl: 600, renewable: false }).id },
      }),
    });
    current = s;
    await s.provider.connect();
    await clock.advance(590_000);
    expect(warnings(s, 'TOKEN_EXPIRING')).toHaveLength(1);
    expect(s.double.count((r) => r.path === 'auth/token/renew-self')).toBe(0);
  });

  it('re-reads a token file when Vault rejects the token (a sidecar replaced it)', async () => {
    const file = join(dir, 'token');
    const s = await setup({ watch: false, provider: () => ({ auth: { method: 'token', tokenFile: file } }) });
    current = s;
    const first = s.double.createToken({ ttl: 3600 });
    await writeFile(file, first.id);
    const { createEmitter } = await import('@secret-provider/core');
    const emitter = createEmitter();
    emitter.on('*', (type, event) => s.events.push({ type, event } as (typeof s.events)[number]));
    await s.provider.watch(emitter).ready;
    s.double.kvPut('secret', 'app', { value: 'v' });
    expect((await s.provider.get('secret/app')).reveal()).toBe('v');
    const second = s.double.createToken({ ttl: 3600 });
    await writeFile(file, second.id);
    s.double.revokeToken(first.id);
    expect((await s.provider.get('secret/app')).reveal()).toBe('v');
    expect(warnings(s, 'TOKEN_REJECTED')).toHaveLength(1);
  });
});

function latestTokenOf(s: Setup) {
  return [...s.double.state.tokens.values()].filter((t) => t.path === 'auth/token/create').at(-1);
}

describe('AppRole', () => {
  it('logs in with a secret id from a file, renews, and logs in again before the token ends', async () => {
    const clock = new ManualClock();
    const s = await setup({ clock, watch: true, provider: () => ({ random: () => 0.5 }) });
    current = s;
    const { roleId, file } = await appRole(s);
    await s.provider.close();
    const { VaultProvider } = await import('@secret-provider/vault');
    const provider = new VaultProvider({
      endpoint: s.double.url,
      auth: { method: 'approle', roleId, secretIdFile: file },
      env: {},
      clock,
      random: () => 0.5,
    });
    current = {
      ...s,
      provider,
      close: async () => {
        await provider.close();
        await s.double.close();
      },
    };
    s.double.kvPut('secret', 'app', { value: 'v' });
    s.double.clearLog();
    for (let t = 0; t < 3600; t += 30) {
      expect((await provider.get('secret/app')).reveal()).toBe('v');
      await clock.advance(30_000);
    }
    // 900 s max TTL: a new login every ~(900 - lead) s, never a request with an expired token.
    expect(logins(s.double)).toBeGreaterThanOrEqual(4);
    expect(logins(s.double)).toBeLessThanOrEqual(6);
    expect(s.double.count((r) => r.status === 403)).toBe(0);
    expect(s.double.count((r) => r.path === 'auth/token/renew-self')).toBeGreaterThan(0);
  });

  it('after a token expires mid-run: one re-login, one retry, the call succeeds, a warning', async () => {
    const s = await setup({ provider: () => ({}) });
    current = s;
    const { roleId, file } = await appRole(s, { ttl: 3600, explicitMaxTtl: 7200 });
    await s.provider.close();
    const { VaultProvider } = await import('@secret-provider/vault');
    const provider = new VaultProvider({
      endpoint: s.double.url,
      auth: { method: 'approle', roleId, secretIdFile: file },
      env: {},
      cache: false,
    });
    const { createEmitter } = await import('@secret-provider/core');
    const emitter = createEmitter();
    const seen: string[] = [];
    emitter.on('*', (type, event) =>
      seen.push(type === 'warning' ? `warning:${(event as WarningEvent).code}` : String(type)),
    );
    const handle = provider.watch(emitter);
    current = {
      ...s,
      provider,
      close: async () => {
        await handle.stop();
        await provider.close();
        await s.double.close();
      },
    };
    await handle.ready;
    s.double.kvPut('secret', 'app', { value: 'v1' });
    expect((await provider.get('secret/app')).reveal()).toBe('v1');
    // The token dies under the running service (a process pause past its TTL, an operator's revoke).
    const token = latestToken(s.double);
    if (token === undefined) throw new Error('no token');
    token.expireAt = s.double.now;
    s.double.clearLog();
    s.double.kvPut('secret', 'app', { value: 'v2' });
    expect((await provider.get('secret/app')).reveal()).toBe('v2');
    const reads = s.double.requests.filter((r) => r.path === 'secret/data/app').map((r) => r.status);
    expect(reads).toEqual([403, 200]);
    expect(logins(s.double)).toBe(1);
    expect(seen.filter((t) => t === 'warning:TOKEN_REJECTED')).toHaveLength(1);
    expect(seen.filter((t) => t === 'error')).toHaveLength(0);
  });

  it('shares one re-login among concurrent requests that saw the revoked token', async () => {
    const s = await setup({ watch: false });
    current = s;
    const { roleId, file } = await appRole(s, { ttl: 3600, explicitMaxTtl: 7200 });
    await s.provider.close();
    const { VaultProvider } = await import('@secret-provider/vault');
    const provider = new VaultProvider({
      endpoint: s.double.url,
      auth: { method: 'approle', roleId, secretIdFile: file },
      env: {},
    });
    current = {
      ...s,
      provider,
      close: async () => {
        await provider.close();
        await s.double.close();
      },
    };
    for (let i = 0; i < 20; i++) s.double.kvPut('secret', `k${i}`, { value: `v${i}` });
    await provider.connect();
    const { createEmitter } = await import('@secret-provider/core');
    const emitter = createEmitter();
    const codes: string[] = [];
    emitter.on('warning', (event) => codes.push(event.code));
    provider.watch(emitter, { signal: AbortSignal.timeout(10_000) });
    s.double.revokeToken(latestToken(s.double)?.id ?? '');
    s.double.clearLog();
    const values = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => (await provider.get(`secret/k${i}`)).reveal()),
    );
    expect(values).toEqual(Array.from({ length: 20 }, (_, i) => `v${i}`));
    expect(logins(s.double)).toBe(1);
    // One warning, however many requests saw the rejection.
    expect(codes).toEqual(['TOKEN_REJECTED']);
  });

  it('turns a policy denial into ACCESS_DENIED at once: no re-login, no retry', async () => {
    const s = await setup({
      provider: (double) => ({
        auth: { method: 'token', token: double.createToken({ ttl: 3600, deny: ['secret/data/private'] }).id },
      }),
    });
    current = s;
    s.double.kvPut('secret', 'private/x', { value: 'v' });
    await s.provider.connect();
    s.double.clearLog();
    const error = await rejection(s.provider.get('secret/private/x'));
    expect(isSecretError(error, 'ACCESS_DENIED')).toBe(true);
    expect((error as { status?: number }).status).toBe(403);
    expect(s.double.requests.map((r) => r.path)).toEqual(['secret/data/private/x']);
    expect(warnings(s)).toHaveLength(0);
  });

  it('backs off after refused logins instead of storming Vault', async () => {
    const s = await setup({
      provider: () => ({ auth: { method: 'approle', roleId: 'nope', secretId: 'wrong' } }),
    });
    current = s;
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => s.provider.get('secret/app')));
    for (const result of results) {
      expect(result.status).toBe('rejected');
      expect(isSecretError((result as PromiseRejectedResult).reason, 'ACCESS_DENIED')).toBe(true);
    }
    await rejection(s.provider.get('secret/app'));
    expect(logins(s.double)).toBe(1);
  });
});

describe('Kubernetes', () => {
  it('logs in with the service-account JWT from a file on a configured mount', async () => {
    const jwtFile = join(dir, 'jwt');
    await writeFile(jwtFile, 'eyJhbGciOi.jwt-good.sig\n');
    const s = await setup({
      watch: false,
      provider: () => ({ auth: { method: 'kubernetes', role: 'web', jwtFile, mount: 'k8s-prod' } }),
    });
    current = s;
    s.double.addKubernetesRole('web', ['eyJhbGciOi.jwt-good.sig'], { ttl: 600 }, 'k8s-prod');
    s.double.kvPut('secret', 'app', { value: 'v' });
    expect((await s.provider.get('secret/app')).reveal()).toBe('v');
    expect(logins(s.double, 'k8s-prod')).toBe(1);

    await writeFile(jwtFile, 'eyJhbGciOi.jwt-revoked.sig');
    const bad = await setup({
      watch: false,
      provider: () => ({ auth: { method: 'kubernetes', role: 'web', jwtFile, mount: 'k8s-prod' } }),
    });
    bad.double.addKubernetesRole('web', ['eyJhbGciOi.jwt-good.sig'], { ttl: 600 }, 'k8s-prod');
    const error = await rejection(bad.provider.get('secret/app'));
    await bad.close();
    expect(isSecretError(error, 'ACCESS_DENIED')).toBe(true);
  });

  it('reports a missing auth mount as a configuration error, never as a missing secret', async () => {
    const jwtFile = join(dir, 'jwt-nomount');
    await writeFile(jwtFile, 'token');
    const s = await setup({
      watch: false,
      provider: () => ({ auth: { method: 'kubernetes', role: 'web', jwtFile, mount: 'absent' } }),
    });
    current = s;
    const error = await rejection(s.provider.get('secret/app'));
    expect(isSecretError(error, 'INVALID_CONFIG')).toBe(true);
  });

  it('reports a missing JWT file as a configuration error', async () => {
    const s = await setup({
      provider: () => ({ auth: { method: 'kubernetes', role: 'web', jwtFile: join(dir, 'missing') } }),
    });
    current = s;
    const error = await rejection(s.provider.get('secret/app'));
    expect(isSecretError(error, 'INVALID_CONFIG')).toBe(true);
  });
});

describe('leases and the token that made them', () => {
  it('replaces leases before the token that created them ends, across re-logins', async () => {
    const clock = new ManualClock();
    const s = await setup({ clock, watch: false });
    current = s;
    const { roleId, file } = await appRole(s, { ttl: 600, explicitMaxTtl: 600 });
    await s.provider.close();
    const { VaultProvider } = await import('@secret-provider/vault');
    const provider = new VaultProvider({
      endpoint: s.double.url,
      auth: { method: 'approle', roleId, secretIdFile: file },
      env: {},
      clock,
      random: () => 0.5,
    });
    current = {
      ...s,
      provider,
      close: async () => {
        await provider.close();
        await s.double.close();
      },
    };
    s.double.addDatabaseRole('app', { ttl: 3600, maxTtl: 86_400, renewable: true });
    for (let t = 0; t < 3600; t += 10) {
      const user = await provider.get('database/creds/app#username');
      const password = await provider.get('database/creds/app#password');
      expect(s.double.useCredential(user.reveal(), password.reveal()), `t=${t}`).toBe(true);
      await clock.advance(10_000);
    }
    expect(s.double.credentialFailures).toEqual([]);
    expect(logins(s.double)).toBeGreaterThanOrEqual(6);
  });
});
