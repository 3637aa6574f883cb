import { isSecretError } from '@secret-provider/core';
import { rejection } from '@secret-provider/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Setup, setup, trackUnhandledRejections } from './helpers.js';

trackUnhandledRejections({ beforeAll, afterAll });

// KV v2 and v1 through the provider: addressing, versions, check-and-set, deletions as Vault
// answers them, metadata without values, listing.

let current: Setup | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

async function kv(options: Parameters<typeof setup>[0] = {}) {
  const s = await setup({ watch: false, ...options });
  current = s;
  return s;
}

describe('KV v2', () => {
  it('addresses one field with #field and the whole secret without it', async () => {
    const s = await kv();
    s.double.kvPut('secret', 'app/db', { user: 'app', password: 'p1', port: 5432 });
    expect((await s.provider.get('secret/app/db#password')).reveal()).toBe('p1');
    expect((await s.provider.get('secret/app/db#port')).reveal()).toBe('5432');
    expect(JSON.parse((await s.provider.get('secret/app/db')).reveal())).toEqual({
      user: 'app',
      password: 'p1',
      port: 5432,
    });
    expect(isSecretError(await rejection(s.provider.get('secret/app/db#missing')), 'NOT_FOUND')).toBe(true);
    // set without a field writes the single-value form, which get without a field returns as is.
    await s.provider.set('secret/app/token', 'opaque');
    expect(s.double.state.kv2Secret('secret', 'app/token')?.versions.get(1)?.data).toEqual({
      value: 'opaque',
    });
    expect((await s.provider.get('secret/app/token')).reveal()).toBe('opaque');
  });

  it('reads older versions and answers deleted and destroyed versions with NOT_FOUND', async () => {
    const s = await kv();
    await s.provider.set('secret/v', 'one');
    await s.provider.set('secret/v', 'two');
    await s.provider.set('secret/v', 'three');
    expect((await s.provider.get('secret/v', { version: '1' })).reveal()).toBe('one');
    const latest = await s.provider.get('secret/v');
    expect(latest.reveal()).toBe('three');
    expect(latest.metadata?.version).toBe('3');
    s.double.call('POST', 'secret/delete/v', { versions: [2] });
    s.double.call('POST', 'secret/destroy/v', { versions: [1] });
    for (const version of ['1', '2', '9', 'abc']) {
      expect(
        isSecretError(await rejection(s.provider.get('secret/v', { version })), 'NOT_FOUND'),
        version,
      ).toBe(true);
    }
    // Soft-deleting the latest: reads and metadata say NOT_FOUND; undelete brings it back.
    s.double.call('DELETE', 'secret/data/v');
    expect(isSecretError(await rejection(s.provider.get('secret/v')), 'NOT_FOUND')).toBe(true);
    expect(isSecretError(await rejection(s.provider.metadata('secret/v')), 'NOT_FOUND')).toBe(true);
    s.double.call('POST', 'secret/undelete/v', { versions: [3] });
    expect((await s.provider.get('secret/v')).reveal()).toBe('three');
  });

  it('checks and sets: ifVersion mismatches reject with CONFLICT, null means "only if absent"', async () => {
    const s = await kv();
    await s.provider.set('secret/cas', 'a', { ifVersion: null });
    const conflict = await rejection(s.provider.set('secret/cas', 'b', { ifVersion: null }));
    expect(isSecretError(conflict, 'CONFLICT')).toBe(true);
    expect((conflict as { status?: number }).status).toBe(400);
    await s.provider.set('secret/cas', 'b', { ifVersion: '1' });
    expect(
      isSecretError(await rejection(s.provider.set('secret/cas', 'c', { ifVersion: '1' })), 'CONFLICT'),
    ).toBe(true);
    expect(
      isSecretError(await rejection(s.provider.set('secret/cas', 'c', { ifVersion: 'x' })), 'CONFLICT'),
    ).toBe(true);
    expect((await s.provider.get('secret/cas')).reveal()).toBe('b');
  });

  it('keeps every field when fields of one secret are written concurrently', async () => {
    const s = await kv();
    await Promise.all(Array.from({ length: 8 }, (_, i) => s.provider.set(`secret/multi#f${i}`, `v${i}`)));
    const data = JSON.parse((await s.provider.get('secret/multi')).reveal());
    expect(data).toEqual(Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`f${i}`, `v${i}`])));
  });

  it('reads metadata from metadata/ without reading the value', async () => {
    const s = await kv();
    s.double.kvPut('secret', 'meta', { value: 'x' });
    s.double.call('POST', 'secret/metadata/meta', { custom_metadata: { owner: 'team-a' } });
    s.double.kvPut('secret', 'meta', { value: 'y' });
    await s.provider.connect();
    s.double.clearLog();
    const metadata = await s.provider.metadata('secret/meta#value');
    expect(metadata).toMatchObject({ key: 'secret/meta#value', version: '2', tags: { owner: 'team-a' } });
    expect(metadata.updatedAt).toBeInstanceOf(Date);
    expect(s.double.requests.map((r) => r.path)).toEqual(['secret/metadata/meta']);
  });

  it('soft-deletes the latest version by default, or removes every version with kvDelete: all', async () => {
    const s = await kv();
    await s.provider.set('secret/d', 'x');
    await s.provider.delete('secret/d');
    expect(s.double.state.kv2Secret('secret', 'd')?.versions.get(1)?.deletedAt).not.toBe(0);
    expect(isSecretError(await rejection(s.provider.delete('secret/d')), 'NOT_FOUND')).toBe(true);
    expect(isSecretError(await rejection(s.provider.delete('secret/d#field')), 'UNSUPPORTED')).toBe(true);
    const all = await setup({ watch: false, provider: () => ({ kvDelete: 'all' }) });
    await all.provider.set('secret/d', 'x');
    await all.provider.delete('secret/d');
    expect(all.double.state.kv2Secret('secret', 'd')).toBeUndefined();
    await all.close();
  });

  it('lists folders as Vault does, or recursively; names only', async () => {
    const s = await kv();
    for (const path of ['app/db', 'app/api', 'app/nested/deep/x', 'top'])
      s.double.kvPut('secret', path, { value: 'v' });
    expect((await s.provider.keys()).sort()).toEqual(['secret/app/', 'secret/top']);
    expect((await s.provider.keys({ prefix: 'secret/app/' })).sort()).toEqual([
      'secret/app/api',
      'secret/app/db',
      'secret/app/nested/',
    ]);
    expect((await s.provider.keys({ prefix: 'secret/app/', recursive: true })).sort()).toEqual([
      'secret/app/api',
      'secret/app/db',
      'secret/app/nested/deep/x',
    ]);
    expect(await s.provider.keys({ prefix: 'secret/app/d' })).toEqual(['secret/app/db']);
    expect(await s.provider.keys({ prefix: 'secret/none/' })).toEqual([]);
    expect(await s.provider.keys({ prefix: 'database/' })).toEqual([]);
  });

  it('percent-encodes keys, so odd characters name a secret instead of changing the request', async () => {
    const s = await kv();
    await s.provider.set('secret/odd name?x=1&y', 'v');
    expect((await s.provider.get('secret/odd name?x=1&y')).reveal()).toBe('v');
    expect(s.double.state.kv2Secret('secret', 'odd name?x=1&y')).toBeDefined();
  });

  it('refuses writes outside KV mounts and unsupported operations with typed errors', async () => {
    const s = await kv();
    expect(isSecretError(await rejection(s.provider.set('database/creds/app', 'x')), 'READ_ONLY')).toBe(true);
    expect(isSecretError(await rejection(s.provider.delete('database/creds/app')), 'UNSUPPORTED')).toBe(true);
    expect(
      isSecretError(await rejection(s.provider.get('database/creds/app', { version: '1' })), 'UNSUPPORTED'),
    ).toBe(true);
    expect(isSecretError(await rejection(s.provider.get('secret')), 'INVALID_KEY')).toBe(true);
    expect(isSecretError(await rejection(s.provider.get('secret/../sys/raw')), 'INVALID_KEY')).toBe(true);
  });
});

describe('an existing node-vault client', () => {
  it('is used with its own token, and still gets Retry-After from the provider’s agent', async () => {
    const { default: nodeVault } = await import('node-vault');
    const { VaultProvider, ManualClock } = await import('@secret-provider/vault');
    const clock = new ManualClock();
    const s = await kv({ clock });
    s.double.kvPut('secret', 'shared', { value: 'v' });
    const client = nodeVault({ endpoint: s.double.url, token: s.double.rootToken });
    const provider = new VaultProvider({ client, clock, env: {} });
    s.double.clearLog();
    s.double.rateLimit({ count: 1, retryAfter: 4, match: 'secret/' });
    const { settle } = await import('./helpers.js');
    expect((await settle(provider.get('secret/shared'), clock)).reveal()).toBe('v');
    const reads = s.double.requests.filter((r) => r.path === 'secret/data/shared');
    expect(reads.map((r) => r.status)).toEqual([429, 200]);
    expect((reads[1]?.at ?? 0) - (reads[0]?.at ?? 0)).toBe(4_000);
    expect(client.token).toBe(s.double.rootToken);
    await provider.close();
  });
});

describe('KV v1', () => {
  it('reads, writes fields, lists and deletes; no versions and no check-and-set', async () => {
    const s = await kv({
      double: { kv: { kv: { version: 1 } } },
      provider: () => ({ mounts: { kv: { version: 1 } } }),
    });
    expect(s.provider.capabilities.versions).toBe(false);
    await s.provider.set('kv/app#user', 'u');
    await s.provider.set('kv/app#password', 'p');
    expect(s.double.state.kvV1.get('kv')?.get('app')).toEqual({ user: 'u', password: 'p' });
    expect((await s.provider.get('kv/app#password')).reveal()).toBe('p');
    const metadata = await s.provider.metadata('kv/app');
    expect(metadata.version).toMatch(/^fp:/);
    await s.provider.set('kv/app#password', 'p2');
    expect((await s.provider.metadata('kv/app')).version).not.toBe(metadata.version);
    expect(isSecretError(await rejection(s.provider.get('kv/app', { version: '1' })), 'UNSUPPORTED')).toBe(
      true,
    );
    expect(
      isSecretError(await rejection(s.provider.set('kv/app', 'x', { ifVersion: '1' })), 'UNSUPPORTED'),
    ).toBe(true);
    expect(await s.provider.keys()).toEqual(['kv/app']);
    await s.provider.delete('kv/app');
    expect(isSecretError(await rejection(s.provider.get('kv/app#user')), 'NOT_FOUND')).toBe(true);
  });
});
