import { type RestError, SecretClient, type SecretClientOptions } from '@azure/keyvault-secrets';
import { FakeCredential, KeyVaultDouble } from '@secret-provider/doubles/key-vault';
import { rejection } from '@secret-provider/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

// The double is checked here with the real SecretClient, as the adapter will use it: if the SDK
// accepts what the double answers, the adapter's tests exercise the same code paths as production.

let double: KeyVaultDouble;

beforeAll(async () => {
  double = await KeyVaultDouble.start();
});

afterAll(async () => {
  await double.stop();
});

beforeEach(() => {
  double.clearFaults();
  double.clearLog();
});

function client(credential = new FakeCredential(double), options: SecretClientOptions = {}): SecretClient {
  return new SecretClient(double.url, credential, {
    tlsOptions: { ca: double.ca },
    disableChallengeResourceVerification: true,
    retryOptions: { retryDelayInMs: 20, maxRetryDelayInMs: 100 },
    ...options,
  });
}

/** The RestError a call of the real client rejects with. */
const restError = async (promise: Promise<unknown>): Promise<RestError> =>
  (await rejection(promise)) as RestError;

let counter = 0;
const fresh = (prefix = 'double') => `${prefix}-${Date.now().toString(36)}-${++counter}`;

describe('Key Vault double with the real SecretClient', () => {
  it('challenges the first, body-less request and accepts the token the client then gets', async () => {
    const credential = new FakeCredential(double);
    const kv = client(credential);
    const name = fresh();
    await kv.setSecret(name, 'first-value');
    const [challenge, retried] = double.log;
    expect(challenge).toMatchObject({
      operation: 'setSecret',
      status: 401,
      outcome: 'challenge',
      authorized: false,
    });
    expect(challenge?.bodyBytes).toBe(0);
    expect(retried).toMatchObject({ operation: 'setSecret', status: 200, authorized: true });
    expect(retried?.bodyBytes).toBeGreaterThan(0);
    expect(credential.scopes).toEqual([['https://vault.azure.net/.default']]);
    // Later requests reuse the token without a new challenge.
    expect((await kv.getSecret(name)).value).toBe('first-value');
    expect(double.count({ outcome: 'challenge' })).toBe(1);
    expect(credential.calls).toBe(1);
  });

  it('reads the latest or a given version, names case-insensitively, ids built from the Host', async () => {
    const kv = client();
    const name = fresh('Case');
    const v1 = await kv.setSecret(name, 'one', { contentType: 'text/plain', tags: { team: 'a' } });
    const v2 = await kv.setSecret(name, 'two');
    expect(v1.properties.version).toMatch(/^[0-9a-f]{32}$/);
    expect(v2.properties.version).not.toBe(v1.properties.version);
    const latest = await kv.getSecret(name.toLowerCase());
    expect(latest.value).toBe('two');
    expect(latest.name).toBe(name);
    expect(latest.properties.vaultUrl).toBe(double.url);
    const old = await kv.getSecret(name, { version: v1.properties.version as string });
    expect(old.value).toBe('one');
    expect(old.properties.contentType).toBe('text/plain');
    expect(old.properties.tags).toEqual({ team: 'a' });
    expect(double.log.at(-1)?.apiVersion).toBeTruthy();
  });

  it('answers a missing secret with 404 SecretNotFound', async () => {
    const error = await restError(client().getSecret(fresh('missing')));
    expect(error.statusCode).toBe(404);
    expect(error.code).toBe('SecretNotFound');
  });

  it('answers a disabled secret with 403 SecretDisabled, and PATCH re-enables it', async () => {
    const kv = client();
    const name = fresh();
    const created = await kv.setSecret(name, 'v');
    const updated = await kv.updateSecretProperties(name, created.properties.version as string, {
      enabled: false,
    });
    expect(updated.enabled).toBe(false);
    const error = await restError(kv.getSecret(name));
    expect(error.statusCode).toBe(403);
    expect((error.details as { error?: { innerError?: { code?: string } } }).error?.innerError?.code).toBe(
      'SecretDisabled',
    );
    await kv.updateSecretProperties(name, created.properties.version as string, { enabled: true });
    expect((await kv.getSecret(name)).value).toBe('v');
  });

  it('pages lists with nextLink, at most 25 a page, items without a version', async () => {
    const paging = await KeyVaultDouble.start();
    try {
      for (let i = 0; i < 60; i++) paging.setSecret(`s-${String(i).padStart(2, '0')}`, `v${i}`);
      const kv = new SecretClient(paging.url, new FakeCredential(paging), {
        tlsOptions: { ca: paging.ca },
        disableChallengeResourceVerification: true,
      });
      const names: string[] = [];
      for await (const properties of kv.listPropertiesOfSecrets()) {
        expect(properties.version).toBeUndefined();
        expect((properties as { value?: unknown }).value).toBeUndefined();
        names.push(properties.name);
      }
      expect(names).toHaveLength(60);
      expect(paging.count({ operation: 'listSecrets', status: 200 })).toBe(3);
      const pages: number[] = [];
      for await (const page of kv.listPropertiesOfSecrets().byPage({ maxPageSize: 7 }))
        pages.push(page.length);
      expect(pages).toEqual([7, 7, 7, 7, 7, 7, 7, 7, 4]);
      paging.setSecret('s-00', 'again');
      const versions: string[] = [];
      for await (const v of kv.listPropertiesOfSecretVersions('s-00')) versions.push(v.version as string);
      expect(versions).toHaveLength(2);
      expect(paging.count({ operation: 'getSecret' })).toBe(0);
    } finally {
      await paging.stop();
    }
  });

  it('soft-deletes, lists and recovers deleted secrets, answers 409 while the name is deleted, purges', async () => {
    const kv = client();
    const name = fresh();
    await kv.setSecret(name, 'v');
    const poller = await kv.beginDeleteSecret(name, { intervalInMs: 10 });
    const deleted = await poller.pollUntilDone();
    expect(deleted.recoveryId).toContain(`/deletedsecrets/${name}`);
    expect((await restError(kv.getSecret(name))).statusCode).toBe(404);
    const conflict = await restError(kv.setSecret(name, 'again'));
    expect(conflict.statusCode).toBe(409);
    expect((conflict.details as { error?: { innerError?: { code?: string } } }).error?.innerError?.code).toBe(
      'ObjectIsDeletedButRecoverable',
    );
    const listed: string[] = [];
    for await (const d of kv.listDeletedSecrets()) listed.push(d.name);
    expect(listed).toContain(name);
    await (await kv.beginRecoverDeletedSecret(name, { intervalInMs: 10 })).pollUntilDone();
    expect((await kv.getSecret(name)).value).toBe('v');
    await (await kv.beginDeleteSecret(name, { intervalInMs: 10 })).pollUntilDone();
    await kv.purgeDeletedSecret(name);
    await kv.setSecret(name, 'reborn');
    expect((await kv.getSecret(name)).value).toBe('reborn');
  });

  it('keeps a name "being deleted" for a while: 409 ObjectIsBeingDeleted', async () => {
    const slow = await KeyVaultDouble.start({ deleteDelayMs: 60_000 });
    try {
      const kv = new SecretClient(slow.url, new FakeCredential(slow), {
        tlsOptions: { ca: slow.ca },
        disableChallengeResourceVerification: true,
      });
      slow.setSecret('gone', 'v');
      await kv.beginDeleteSecret('gone');
      const error = await restError(kv.setSecret('gone', 'x'));
      expect(error.statusCode).toBe(409);
      expect((error.details as { error?: { innerError?: { code?: string } } }).error?.innerError?.code).toBe(
        'ObjectIsBeingDeleted',
      );
    } finally {
      await slow.stop();
    }
  });

  it('429 without Retry-After is not retried by the SDK; with retry-after-ms it is, after that wait', async () => {
    const kv = client();
    const name = fresh();
    double.setSecret(name, 'v');
    await kv.getSecret(name);
    double.clearLog();
    double.inject({ type: 'status', status: 429, times: 1 });
    const bare = await restError(kv.getSecret(name));
    expect(bare.statusCode).toBe(429);
    expect(double.count({ operation: 'getSecret' })).toBe(1);
    double.clearLog();
    double.inject({ type: 'status', status: 429, retryAfterMs: 30, times: 1 });
    expect((await kv.getSecret(name)).value).toBe('v');
    expect(double.count({ operation: 'getSecret' })).toBe(2);
    double.clearLog();
    double.inject({ type: 'status', status: 429, retryAfter: 1, times: 1 });
    const started = Date.now();
    expect((await kv.getSecret(name)).value).toBe('v');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('503 and connection resets are retried by the SDK, at most maxRetries times', async () => {
    const kv = client();
    const name = fresh();
    double.setSecret(name, 'v');
    await kv.getSecret(name);
    double.clearLog();
    double.inject({ type: 'status', status: 503, times: 2 });
    expect((await kv.getSecret(name)).value).toBe('v');
    expect(double.count({ operation: 'getSecret' })).toBe(3);
    double.clearLog();
    double.inject({ type: 'reset', times: 1 });
    expect((await kv.getSecret(name)).value).toBe('v');
    expect(double.count({ operation: 'getSecret', outcome: 'reset' })).toBe(1);
    double.clearLog();
    double.inject({ type: 'status', status: 503 });
    const error = await restError(kv.getSecret(name));
    expect(error.statusCode).toBe(503);
    expect(double.count({ operation: 'getSecret' })).toBe(4);
  });

  it('checks bearer tokens: a revoked token is challenged again (the SDK sends twice), then 401', async () => {
    const name = fresh();
    double.setSecret(name, 'v');
    const revoking = new FakeCredential(double);
    const stale = client(revoking);
    await stale.getSecret(name);
    // From now on every token this credential hands out is rejected, the cached one included.
    revoking.revokeAll();
    const original = revoking.getToken.bind(revoking);
    revoking.getToken = async (scopes, options) => {
      const token = await original(scopes, options);
      revoking.revokeAll();
      return token;
    };
    double.clearLog();
    const error = await restError(stale.getSecret(name));
    expect(error.statusCode).toBe(401);
    expect(double.count({ operation: 'getSecret' })).toBe(2);
    expect(double.count({ operation: 'getSecret', status: 401 })).toBe(2);
  });

  it('answers a missing permission with 403 naming it, and RestError.request carries the bearer token', async () => {
    const kv = client(new FakeCredential(double, { permissions: ['get'] }));
    const name = fresh();
    const error = await restError(kv.setSecret(name, 'do-not-leak-this-value'));
    expect(error.statusCode).toBe(403);
    expect(error.message).toContain('secrets set permission');
    // Why the adapter must never pass a RestError on: the request is right there.
    const request = (
      error as unknown as { request: { headers: { get(n: string): string | undefined }; body: unknown } }
    ).request;
    expect(request.headers.get('authorization')).toMatch(/^Bearer kvd\./);
    expect(String(request.body)).toContain('do-not-leak-this-value');
  });

  it('throttles per window like Key Vault when a rate limit is set', async () => {
    const limited = await KeyVaultDouble.start({
      rateLimit: { limit: 3, windowMs: 60_000, retryAfterSeconds: 30 },
    });
    try {
      limited.setSecret('a', 'v');
      const kv = new SecretClient(limited.url, new FakeCredential(limited), {
        tlsOptions: { ca: limited.ca },
        disableChallengeResourceVerification: true,
        retryOptions: { maxRetries: 0 },
      });
      await kv.getSecret('a');
      await kv.getSecret('a');
      await kv.getSecret('a');
      const error = await restError(kv.getSecret('a'));
      expect(error.statusCode).toBe(429);
      expect(error.response?.headers.get('retry-after')).toBe('30');
    } finally {
      await limited.stop();
    }
  });

  it('answers a body as given, or its own answer rewritten; what the SDK then makes of it', async () => {
    const kv = client();
    const name = fresh();
    await kv.setSecret(name, 'v');
    // A 200 without `value`: the SDK hands out `value: undefined`, so a reader must check.
    const dropped = double.inject({
      type: 'rewrite',
      rewrite: (body) => ({ ...body, value: undefined }),
      match: (r) => r.operation === 'getSecret',
      times: 1,
    });
    const secret = await kv.getSecret(name);
    expect(dropped.hits).toBe(1);
    expect(secret.value).toBeUndefined();
    expect(secret.properties.name).toBe(name);
    // An HTML page with 200: the SDK cannot parse it.
    double.inject({ type: 'body', body: '<html>sign in</html>', contentType: 'text/html', times: 1 });
    const html = await restError(kv.getSecret(name));
    expect(html).toBeInstanceOf(Error);
    expect(double.log.at(-1)).toMatchObject({ status: 200, outcome: 'fault' });
    // A nextLink to another host: the SDK refuses to send its token there, and sends nothing.
    const other = await KeyVaultDouble.start();
    try {
      double.inject({
        type: 'rewrite',
        rewrite: (body) => ({ ...body, nextLink: `${other.url}/secrets?api-version=2025-07-01` }),
        match: (r) => r.operation === 'listSecrets',
        times: 1,
      });
      const pages = kv.listPropertiesOfSecrets().byPage({ maxPageSize: 1 });
      const error = await restError(
        (async () => {
          for await (const _page of pages) {
            // drain
          }
        })(),
      );
      expect(error).toBeInstanceOf(Error);
      expect(other.log).toHaveLength(0);
    } finally {
      await other.stop();
    }
  });
});
