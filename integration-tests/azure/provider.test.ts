import {
  AzureKeyVaultProvider,
  KeyVaultDeletedSecretConflictError,
  KeyVaultNameCollisionError,
  KeyVaultSecretUnusableError,
} from '@secret-provider/azure';
import { isSecretError, type SecretError } from '@secret-provider/core';
import { ManualClock } from '@secret-provider/core/adapter';
import { FakeCredential, KeyVaultDouble } from '@secret-provider/doubles/key-vault';
import { rejection } from '@secret-provider/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { clientOptionsFor, type SingleVault, singleVault } from './fixtures.js';

// The provider over the Key Vault double, through the real SecretClient: reads, writes, soft
// delete, listing, names, and how each failure of the service reaches the caller.

let vault: SingleVault | undefined;

afterEach(async () => {
  await vault?.stop();
  vault = undefined;
});

async function open(...args: Parameters<typeof singleVault>): Promise<SingleVault> {
  vault = await singleVault(...args);
  return vault;
}

describe('reads and writes', () => {
  it('writes through the challenge (first request without body), then reads latest and older versions', async () => {
    const { provider, double } = await open();
    await provider.set('DATABASE_URL', 'postgres://one', { contentType: 'text/uri', tags: { owner: 'db' } });
    const [challenge] = double.log;
    expect(challenge).toMatchObject({ operation: 'setSecret', outcome: 'challenge', bodyBytes: 0 });
    expect(double.valueOf('DATABASE-URL')).toBe('postgres://one');
    const first = await provider.get('DATABASE_URL');
    expect(first.reveal()).toBe('postgres://one');
    expect(first.metadata).toMatchObject({
      key: 'DATABASE_URL',
      contentType: 'text/uri',
      tags: { owner: 'db' },
      enabled: true,
    });
    await provider.set('DATABASE_URL', 'postgres://two');
    const second = await provider.get('DATABASE_URL');
    expect(second.reveal()).toBe('postgres://two');
    expect(second.metadata?.version).not.toBe(first.metadata?.version);
    const old = await provider.get('DATABASE_URL', { version: first.metadata?.version as string });
    expect(old.reveal()).toBe('postgres://one');
  });

  it('keeps content type, tags and expiry as metadata, never in the value', async () => {
    const { provider, double } = await open();
    const expiresAt = new Date(Date.now() + 86_400_000);
    await provider.set('api.token', 'tok', {
      contentType: 'application/jwt',
      tags: { rotated: 'weekly' },
      expiresAt,
    });
    const metadata = await provider.metadata('api.token');
    expect(metadata).toMatchObject({ contentType: 'application/jwt', tags: { rotated: 'weekly' } });
    expect(metadata.expiresAt?.getTime()).toBe(Math.floor(expiresAt.getTime() / 1000) * 1000);
    expect((await provider.get('api.token')).reveal()).toBe('tok');
    // metadata() lists versions; it never fetched a value.
    expect(double.count({ operation: 'getSecret' })).toBe(1);
  });

  it('serves from its cache: a second get makes no request', async () => {
    const { provider, double } = await open();
    double.setSecret('CACHED', 'v');
    await provider.get('CACHED');
    await provider.get('CACHED');
    await Promise.all(Array.from({ length: 20 }, () => provider.get('CACHED')));
    expect(double.count({ operation: 'getSecret' })).toBe(2); // the challenge and the read
    expect(provider.cacheStats()?.hits).toBeGreaterThanOrEqual(21);
  });

  it('answers a missing key and a key no route takes with NOT_FOUND; writes to an unrouted key are INVALID_KEY', async () => {
    const app = await KeyVaultDouble.start();
    const other = await KeyVaultDouble.start();
    const provider = new AzureKeyVaultProvider({
      vaults: {
        app: { vaultUrl: app.url, credential: new FakeCredential(app), clientOptions: clientOptionsFor(app) },
        other: {
          vaultUrl: other.url,
          credential: new FakeCredential(other),
          clientOptions: clientOptionsFor(other),
        },
      },
      routes: { prefixes: { 'app/': 'app', 'other/': 'other' } },
      onWarning: () => {},
    });
    try {
      expect(isSecretError(await rejection(provider.get('app/missing')), 'NOT_FOUND')).toBe(true);
      expect(isSecretError(await rejection(provider.get('nowhere')), 'NOT_FOUND')).toBe(true);
      const write = await rejection(provider.set('nowhere', 'v'));
      expect(isSecretError(write, 'INVALID_KEY')).toBe(true);
      expect((write as Error).message).toContain('no vault is routed');
      await provider.set('other/x', 'v');
      expect(other.valueOf('other--sx')).toBe('v');
      expect(app.names()).toEqual([]);
    } finally {
      await provider.close();
      await app.stop();
      await other.stop();
    }
  });

  it('passes an existing SecretClient through untouched', async () => {
    const double = await KeyVaultDouble.start();
    const { SecretClient } = await import('@azure/keyvault-secrets');
    const client = new SecretClient(double.url, new FakeCredential(double), clientOptionsFor(double));
    const provider = new AzureKeyVaultProvider({ client });
    try {
      double.setSecret('FROM-CLIENT', 'v');
      expect((await provider.get('FROM_CLIENT')).reveal()).toBe('v');
      expect(await provider.client()).toBe(client);
      expect(provider.vaults).toEqual({ default: double.url });
    } finally {
      await provider.close();
      await double.stop();
    }
  });
});

describe('secrets that exist but may not be used', () => {
  it('rejects a disabled secret with a typed ACCESS_DENIED (reason disabled), not NOT_FOUND', async () => {
    const { provider, double } = await open();
    double.setSecret('FLAG', 'v', { enabled: false });
    const error = (await rejection(provider.get('FLAG'))) as KeyVaultSecretUnusableError;
    expect(error).toBeInstanceOf(KeyVaultSecretUnusableError);
    expect(error.reason).toBe('disabled');
    expect(error.code).toBe('ACCESS_DENIED');
    expect(error.message).toContain('is disabled in Key Vault');
    // Still there for metadata, with enabled: false.
    expect((await provider.metadata('FLAG')).enabled).toBe(false);
  });

  it('rejects an expired secret (reason expired) unless expired: "allow"', async () => {
    const { provider, double } = await open();
    const expiresOn = new Date(Date.now() - 60_000);
    double.setSecret('OLD', 'v', { expiresOn });
    const error = (await rejection(provider.get('OLD'))) as KeyVaultSecretUnusableError;
    expect(error).toBeInstanceOf(KeyVaultSecretUnusableError);
    expect(error.reason).toBe('expired');
    expect(error.expiresAt?.getTime()).toBe(Math.floor(expiresOn.getTime() / 1000) * 1000);
    const lenient = new AzureKeyVaultProvider({
      vaultUrl: double.url,
      credential: new FakeCredential(double),
      clientOptions: clientOptionsFor(double),
      expired: 'allow',
    });
    const secret = await lenient.get('OLD');
    expect(secret.reveal()).toBe('v');
    expect(secret.metadata?.expiresAt?.getTime()).toBeLessThan(Date.now());
    await lenient.close();
  });

  it('rejects a secret before its activation date (reason not-yet-valid) unless notYetValid: "allow"', async () => {
    const { provider, double } = await open();
    double.setSecret('SOON', 'v', { notBefore: new Date(Date.now() + 3_600_000) });
    const error = (await rejection(provider.get('SOON'))) as KeyVaultSecretUnusableError;
    expect(error.reason).toBe('not-yet-valid');
    expect(error.notBefore).toBeInstanceOf(Date);
    const lenient = new AzureKeyVaultProvider({
      vaultUrl: double.url,
      credential: new FakeCredential(double),
      clientOptions: clientOptionsFor(double),
      notYetValid: 'allow',
    });
    expect((await lenient.get('SOON')).reveal()).toBe('v');
    await lenient.close();
  });
});

describe('soft delete', () => {
  it('a write to a deleted-but-recoverable name is a typed conflict; recoverDeleted brings it back', async () => {
    const { provider, double } = await open();
    await provider.set('SESSION_KEY', 'v1');
    await provider.delete('SESSION_KEY');
    expect(double.isDeleted('SESSION-KEY')).toBe(true);
    expect(isSecretError(await rejection(provider.get('SESSION_KEY')), 'NOT_FOUND')).toBe(true);
    const conflict = (await rejection(
      provider.set('SESSION_KEY', 'v2'),
    )) as KeyVaultDeletedSecretConflictError;
    expect(conflict).toBeInstanceOf(KeyVaultDeletedSecretConflictError);
    expect(conflict.code).toBe('CONFLICT');
    expect(conflict.beingDeleted).toBe(false);
    expect(conflict.message).toContain('recoverDeleted');
    expect(conflict.message).toContain('purgeDeleted');
    await provider.recoverDeleted('SESSION_KEY');
    expect((await provider.get('SESSION_KEY')).reveal()).toBe('v1');
  });

  it('purgeDeleted frees the name; deleteMode "purge" does both in one call', async () => {
    const { provider } = await open({ deletePollIntervalMs: 10 });
    await provider.set('TEMP', 'v1');
    await provider.delete('TEMP');
    await provider.purgeDeleted('TEMP');
    await provider.set('TEMP', 'v2');
    expect((await provider.get('TEMP')).reveal()).toBe('v2');
    const purging = await KeyVaultDouble.start({ deleteDelayMs: 50 });
    const eager = new AzureKeyVaultProvider({
      vaultUrl: purging.url,
      credential: new FakeCredential(purging),
      clientOptions: clientOptionsFor(purging),
      deleteMode: 'purge',
      deletePollIntervalMs: 20,
    });
    try {
      await eager.set('TEMP', 'v1');
      await eager.delete('TEMP');
      expect(purging.isDeleted('TEMP')).toBe(false);
      await eager.set('TEMP', 'v2');
      expect(purging.valueOf('TEMP')).toBe('v2');
    } finally {
      await eager.close();
      await purging.stop();
    }
  });

  it('a name still being deleted is a retryable conflict', async () => {
    const { provider } = await open({}, { deleteDelayMs: 60_000 });
    await provider.set('SLOW', 'v');
    await provider.delete('SLOW');
    const error = (await rejection(provider.set('SLOW', 'v2'))) as KeyVaultDeletedSecretConflictError;
    expect(error.beingDeleted).toBe(true);
    expect(error.retryable).toBe(true);
  });
});

describe('keys()', () => {
  it('pages through properties without reading values, and answers in application keys', async () => {
    const { provider, double } = await open();
    for (let i = 0; i < 60; i++) double.setSecret(`APP-KEY-${i}`, `v${i}`);
    double.setSecret('db--dpassword', 'p');
    double.clearLog();
    const keys = await provider.keys();
    expect(keys).toHaveLength(61);
    expect(keys).toContain('APP_KEY_0');
    expect(keys).toContain('db.password');
    expect(double.count({ operation: 'listSecrets', status: 200 })).toBe(3);
    expect(double.count({ operation: 'getSecret' })).toBe(0);
    expect(await provider.keys({ prefix: 'db.' })).toEqual(['db.password']);
  });

  it('skips disabled and certificate-backed secrets by default, lists them on request', async () => {
    const { provider, double } = await open();
    double.setSecret('PLAIN', 'v');
    double.setSecret('OFF', 'v', { enabled: false });
    double.setSecret('tls-cert', '-----BEGIN', { managed: true, contentType: 'application/x-pem-file' });
    expect(await provider.keys()).toEqual(['PLAIN']);
    const all = new AzureKeyVaultProvider({
      vaultUrl: double.url,
      credential: new FakeCredential(double),
      clientOptions: clientOptionsFor(double),
      includeDisabled: true,
      includeManaged: true,
    });
    expect((await all.keys()).sort()).toEqual(['OFF', 'PLAIN', 'tls_cert']);
    await all.close();
  });

  it('warns about names that do not map back to keys instead of guessing', async () => {
    const { provider, double, warnings } = await open();
    double.setSecret('fine', 'v');
    double.setSecret('made--by--hand', 'v');
    expect(await provider.keys()).toEqual(['fine']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ code: 'NAME_UNMAPPED', provider: 'azure' });
    expect(warnings[0]?.message).toContain('made--by--hand');
  });
});

describe('name collisions', () => {
  it('refuses to write a key whose Key Vault name another key already uses (case-insensitive)', async () => {
    const { provider, double, warnings } = await open();
    await provider.set('DATABASE_URL', 'v');
    const error = (await rejection(provider.set('database_url', 'other'))) as KeyVaultNameCollisionError;
    expect(error).toBeInstanceOf(KeyVaultNameCollisionError);
    expect(error.code).toBe('CONFLICT');
    expect(error.keys).toEqual(['DATABASE_URL', 'database_url']);
    expect(double.valueOf('DATABASE-URL')).toBe('v');
    // A read under the other spelling works (Key Vault ignores case) and is reported.
    expect((await provider.get('database_url')).reveal()).toBe('v');
    expect(warnings.map((w) => w.code)).toContain('NAME_COLLISION');
  });

  it('reports a read whose stored spelling belongs to another key', async () => {
    const { provider, double, warnings } = await open();
    double.setSecret('DATABASE-URL', 'v');
    expect((await provider.get('database_url')).reveal()).toBe('v');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.message).toContain('keys() lists as "DATABASE_URL"');
  });

  it('reports vault names a custom mapper reads as a key whose own name differs, and lists neither', async () => {
    const { provider, double, warnings } = await open({
      nameMapper: {
        toVaultName: (key) => key.toLowerCase().replaceAll('_', '-'),
        fromVaultName: (name) => name.replace(/^v\d-/, '').toUpperCase().replaceAll('-', '_'),
      },
    });
    double.setSecret('v1-token', 'a');
    double.setSecret('v2-token', 'b');
    double.setSecret('db-url', 'c');
    expect(await provider.keys()).toEqual(['DB_URL']);
    expect(warnings.filter((w) => w.code === 'NAME_UNMAPPED').map((w) => w.message.split('"')[1])).toEqual([
      'v1-token',
      'v2-token',
    ]);
  });
});

describe('failures', () => {
  const failing = async (status: number, extra: Record<string, unknown> = {}) => {
    const opened = await open();
    opened.double.setSecret('K', 'v');
    await opened.provider.metadata('K'); // past the challenge
    opened.double.clearLog();
    opened.double.inject({ type: 'status', status, ...extra } as never);
    const error = (await rejection(opened.provider.get('K'))) as SecretError;
    return { error, requests: opened.double.count({ operation: 'getSecret' }) };
  };

  it('403 names the missing permission; no retry', async () => {
    const { provider, double } = await open({}, {}, ['get', 'list']);
    const error = (await rejection(provider.set('K', 'v'))) as SecretError;
    expect(error.code).toBe('ACCESS_DENIED');
    expect(error.message).toContain('secrets/set');
    expect(error.retryable).toBe(false);
    expect(double.count({ operation: 'setSecret', status: 403 })).toBe(1);
  });

  it('401 with a token the vault rejects is ACCESS_DENIED', async () => {
    const { provider, double, credential } = await open();
    double.setSecret('K', 'v');
    await provider.metadata('K');
    credential.revokeAll();
    const issue = credential.getToken.bind(credential);
    credential.getToken = async (scopes, options) => {
      const token = await issue(scopes, options);
      credential.revokeAll();
      return token;
    };
    const error = (await rejection(provider.get('K'))) as SecretError;
    expect(error.code).toBe('ACCESS_DENIED');
    expect(error.status).toBe(401);
  });

  it('429 without Retry-After: RATE_LIMITED after one request (the SDK does not retry it, nor do we)', async () => {
    const { error, requests } = await failing(429);
    expect(error.code).toBe('RATE_LIMITED');
    expect(error.retryAfterMs).toBeUndefined();
    expect(requests).toBe(1);
  });

  it('429 with retry-after-ms: the SDK waits and retries 3 times, then RATE_LIMITED with the wait; no more', async () => {
    const { error, requests } = await failing(429, { retryAfterMs: 10 });
    expect(error.code).toBe('RATE_LIMITED');
    expect(error.retryAfterMs).toBe(10);
    expect(requests).toBe(4);
  });

  it('503 and connection resets: UNAVAILABLE after the SDK’s own 3 retries; no more', async () => {
    const unavailable = await failing(503);
    expect(unavailable.error.code).toBe('UNAVAILABLE');
    expect(unavailable.error.retryable).toBe(true);
    expect(unavailable.requests).toBe(4);
    await vault?.stop();
    const reset = await open();
    reset.double.setSecret('K', 'v');
    await reset.provider.metadata('K');
    reset.double.clearLog();
    reset.double.inject({ type: 'reset' });
    const error = (await rejection(reset.provider.get('K'))) as SecretError;
    expect(error.code).toBe('UNAVAILABLE');
    expect(reset.double.count({ operation: 'getSecret', outcome: 'reset' })).toBe(4);
  });

  it('a slow vault hits the request timeout, and the caller’s signal is honoured', async () => {
    const { double } = await open();
    const provider = new AzureKeyVaultProvider({
      vaultUrl: double.url,
      credential: new FakeCredential(double),
      clientOptions: { ...clientOptionsFor(double), retryOptions: { maxRetries: 0 } },
      requestTimeoutMs: 100,
    });
    try {
      double.setSecret('SLOW', 'v');
      await provider.metadata('SLOW');
      double.inject({ type: 'latency', ms: 1_000 });
      const timedOut = (await rejection(provider.get('SLOW'))) as SecretError;
      expect(timedOut.code).toBe('TIMEOUT');
      expect(timedOut.retryable).toBe(true);
      const controller = new AbortController();
      const pending = provider.get('SLOW', { signal: controller.signal });
      setTimeout(() => controller.abort(new Error('caller gave up')), 20);
      expect(((await rejection(pending)) as Error).message).toBe('caller gave up');
    } finally {
      await provider.close();
    }
  });
});

describe('capabilities and time', () => {
  it('honours expiresAt, tags and contentType; refuses ifVersion with UNSUPPORTED and writes nothing', async () => {
    const { provider, double } = await open();
    expect(provider.capabilities).toMatchObject({
      expiry: true,
      tags: true,
      contentType: true,
      checkAndSet: false,
    });
    await provider.set('K', 'v1', {
      expiresAt: new Date(Date.now() + 60_000),
      tags: { a: 'b' },
      contentType: 'x/y',
    });
    const metadata = await provider.metadata('K');
    expect(metadata).toMatchObject({ tags: { a: 'b' }, contentType: 'x/y' });
    expect(metadata.expiresAt).toBeInstanceOf(Date);
    double.clearLog();
    const refused = (await rejection(
      provider.set('K', 'v2', { ifVersion: metadata.version as string }),
    )) as SecretError;
    expect(refused.code).toBe('UNSUPPORTED');
    expect(refused.message).toContain('ifVersion');
    expect(double.count({ operation: 'setSecret' })).toBe(0);
    expect(double.valueOf('K')).toBe('v1');
  });

  it('checks expiry and activation on the provider clock (and on the deprecated now option)', async () => {
    const { double } = await open();
    const start = Date.now();
    double.setSecret('LATER', 'v', { notBefore: new Date(start + 3_600_000) });
    double.setSecret('SOON', 'v', { expiresOn: new Date(start + 3_600_000) });
    const clock = new ManualClock(start);
    const common = {
      vaultUrl: double.url,
      credential: new FakeCredential(double),
      clientOptions: clientOptionsFor(double),
      cache: false,
    };
    const timed = new AzureKeyVaultProvider({ ...common, clock });
    const legacy = new AzureKeyVaultProvider({ ...common, now: () => clock.now() });
    try {
      for (const provider of [timed, legacy]) {
        expect((await rejection(provider.get('LATER'))) as KeyVaultSecretUnusableError).toMatchObject({
          reason: 'not-yet-valid',
        });
        expect((await provider.get('SOON')).reveal()).toBe('v');
      }
      await clock.advance(2 * 3_600_000);
      for (const provider of [timed, legacy]) {
        expect((await provider.get('LATER')).reveal()).toBe('v');
        expect((await rejection(provider.get('SOON'))) as KeyVaultSecretUnusableError).toMatchObject({
          reason: 'expired',
        });
      }
    } finally {
      await timed.close();
      await legacy.close();
    }
  });
});
