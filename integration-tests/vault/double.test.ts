import { request as httpRequest } from 'node:http';
import { VaultDouble } from '@secret-provider/doubles/vault';
import { rejection } from '@secret-provider/testing';
import nodeVault from 'node-vault';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

// The double is checked through the real node-vault client, as the provider uses it, and
// through raw HTTP where a detail (a header, the LIST verb on one connection) matters.

type Client = ReturnType<typeof nodeVault>;

interface VaultFailure {
  message: string;
  response?: { statusCode: number; body: { errors?: string[]; warnings?: string[]; data?: unknown } };
  code?: string;
}

const failure = async (promise: Promise<unknown>) => (await rejection(promise)) as VaultFailure;

function rawRequest(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, { method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('Vault double', () => {
  let now = Date.UTC(2026, 0, 1);
  let double: VaultDouble;
  let client: Client;

  beforeEach(async () => {
    now = Date.UTC(2026, 0, 1);
    double = await VaultDouble.start({
      now: () => now,
      kv: { secret: { version: 2 }, kv: { version: 1 } },
    });
    client = nodeVault({ endpoint: double.url, token: double.rootToken });
  });

  afterEach(async () => {
    await double.close();
  });

  describe('LIST', () => {
    it('accepts the LIST verb and GET ?list=1, also on one keep-alive connection', async () => {
      await client.write('secret/data/app/db', { data: { password: 'p1' } });
      await client.write('secret/data/app/nested/api', { data: { key: 'k' } });
      await client.write('secret/data/top', { data: { v: '1' } });
      // A LIST, then a write with a body, on the same pooled connection: framing must hold.
      const seen: string[][] = [];
      for (let i = 0; i < 3; i++) {
        seen.push((await client.list('secret/metadata/app')).data.keys);
        await client.write(`secret/data/app/more${i}`, { data: { i } });
      }
      expect(seen).toEqual([
        ['db', 'nested/'],
        ['db', 'more0', 'nested/'],
        ['db', 'more0', 'more1', 'nested/'],
      ]);
      const getClient = nodeVault({ endpoint: double.url, token: double.rootToken, noCustomHTTPVerbs: true });
      const viaGet = await getClient.list('secret/metadata/');
      expect(viaGet.data.keys).toEqual(['app/', 'top']);
      const wire = double.requests.filter((r) => r.method === 'LIST').map((r) => r.wireMethod);
      expect(wire).toEqual(['LIST', 'LIST', 'LIST', 'GET']);
    });

    it('answers a missing folder with 404 and empty errors', async () => {
      const error = await failure(client.list('secret/metadata/nothing/'));
      expect(error.response?.statusCode).toBe(404);
      expect(error.response?.body.errors).toEqual([]);
    });

    it('rewrites LIST on raw connections, chunked bodies included', async () => {
      const res = await rawRequest(double.url, 'LIST', '/v1/secret/metadata/', {
        'X-Vault-Token': double.rootToken,
      });
      expect(res.status).toBe(404);
      await client.write('secret/data/a', { data: { x: 1 } });
      const again = await rawRequest(double.url, 'LIST', '/v1/secret/metadata/?foo=1', {
        'X-Vault-Token': double.rootToken,
      });
      expect(JSON.parse(again.body).data.keys).toEqual(['a']);
    });
  });

  describe('KV v2', () => {
    it('keeps versions, reads a given version, and answers CAS mismatches with 400', async () => {
      const first = await client.write('secret/data/svc', { data: { password: 'one' } });
      expect(first.data.version).toBe(1);
      await client.write('secret/data/svc', { data: { password: 'two' }, options: { cas: 1 } });
      const latest = await client.read('secret/data/svc');
      expect(latest.data.data).toEqual({ password: 'two' });
      expect(latest.data.metadata.version).toBe(2);
      const old = await client.read('secret/data/svc?version=1');
      expect(old.data.data).toEqual({ password: 'one' });
      const cas = await failure(
        client.write('secret/data/svc', { data: { password: 'x' }, options: { cas: 1 } }),
      );
      expect(cas.response?.statusCode).toBe(400);
      expect(cas.message).toBe('check-and-set parameter did not match the current version');
      const create = await failure(
        client.write('secret/data/svc', { data: { password: 'x' }, options: { cas: 0 } }),
      );
      expect(create.response?.statusCode).toBe(400);
      const meta = await client.read('secret/metadata/svc');
      expect(meta.data.current_version).toBe(2);
      expect(Object.keys(meta.data.versions)).toEqual(['1', '2']);
      expect(meta.data.versions['1'].destroyed).toBe(false);
    });

    it('answers soft-deleted and destroyed versions with 404 and a full body; undelete restores', async () => {
      await client.write('secret/data/gone', { data: { v: 'a' } });
      await client.write('secret/data/gone', { data: { v: 'b' } });
      now += 1000;
      await client.delete('secret/data/gone');
      const deleted = await failure(client.read('secret/data/gone'));
      expect(deleted.response?.statusCode).toBe(404);
      const body = deleted.response?.body as {
        data: { data: unknown; metadata: { version: number; deletion_time: string } };
      };
      expect(body.data.data).toBeNull();
      expect(body.data.metadata.version).toBe(2);
      expect(body.data.metadata.deletion_time).not.toBe('');
      await client.write('secret/undelete/gone', { versions: [2] });
      expect((await client.read('secret/data/gone')).data.data).toEqual({ v: 'b' });
      await client.write('secret/destroy/gone', { versions: [1] });
      const destroyed = await failure(client.read('secret/data/gone?version=1'));
      expect(destroyed.response?.statusCode).toBe(404);
      const destroyedBody = destroyed.response?.body as { data: { metadata: { destroyed: boolean } } };
      expect(destroyedBody.data.metadata.destroyed).toBe(true);
      await client.delete('secret/metadata/gone');
      const missing = await failure(client.read('secret/data/gone'));
      expect(missing.response?.body).toEqual({ errors: [] });
    });

    it('prunes beyond max versions and rejects a v1-style path with a warning', async () => {
      await client.write('secret/metadata/few', { max_versions: 2 });
      for (let i = 1; i <= 4; i++) await client.write('secret/data/few', { data: { i } });
      const meta = await client.read('secret/metadata/few');
      expect(Object.keys(meta.data.versions)).toEqual(['3', '4']);
      expect(meta.data.oldest_version).toBe(3);
      const wrong = await failure(client.read('secret/few'));
      expect(wrong.response?.statusCode).toBe(404);
      expect(wrong.response?.body.warnings?.[0]).toMatch(/Invalid path for a versioned K\/V secrets engine/);
    });

    it('needs the merge-patch content type for PATCH', async () => {
      await client.write('secret/data/p', { data: { a: '1', b: '2' } });
      await client.update('secret/data/p', { data: { b: null, c: '3' } });
      expect((await client.read('secret/data/p')).data.data).toEqual({ a: '1', c: '3' });
      const res = await rawRequest(double.url, 'PATCH', '/v1/secret/data/p', {
        'X-Vault-Token': double.rootToken,
        'Content-Type': 'application/json',
      });
      expect(res.status).toBe(415);
    });
  });

  describe('KV v1', () => {
    it('reads with an advisory lease duration, writes and deletes with 204, lists folders', async () => {
      // A 204 has no body; node-vault resolves with axios' empty string.
      expect(await client.write('kv/app/one', { value: 'x' })).toBe('');
      await client.write('kv/app/sub/two', { value: 'y' });
      const read = await client.read('kv/app/one');
      expect(read.data).toEqual({ value: 'x' });
      expect(read.lease_duration).toBe(2_764_800);
      expect((await client.list('kv/app/')).data.keys).toEqual(['one', 'sub/']);
      await client.delete('kv/app/one');
      expect((await failure(client.read('kv/app/one'))).response?.statusCode).toBe(404);
    });
  });

  describe('tokens and login', () => {
    it('looks up, renews with a cap at the max TTL, and refuses non-renewable tokens', async () => {
      const token = double.createToken({ ttl: 600, explicitMaxTtl: 900 });
      const c = nodeVault({ endpoint: double.url, token: token.id });
      const looked = await c.tokenLookupSelf();
      expect(looked.data.ttl).toBe(600);
      expect(looked.data.renewable).toBe(true);
      now += 500_000;
      const renewed = await c.tokenRenewSelf({ increment: 600 });
      expect(renewed.auth.lease_duration).toBe(400);
      expect(renewed.warnings[0]).toMatch(/exceeded the effective max_ttl/);
      const fixed = double.createToken({ ttl: 60, renewable: false });
      const f = nodeVault({ endpoint: double.url, token: fixed.id });
      expect((await failure(f.tokenRenewSelf())).message).toBe('lease is not renewable');
    });

    it('renews a periodic token to its period every time, with no max TTL', async () => {
      const token = double.createToken({ period: 60 });
      const c = nodeVault({ endpoint: double.url, token: token.id });
      for (let i = 0; i < 5; i++) {
        now += 50_000;
        const renewed = await c.tokenRenewSelf({ increment: 3600 });
        expect(renewed.auth.lease_duration).toBe(60);
        expect(renewed.warnings).toBeNull();
      }
      expect((await c.tokenLookupSelf()).data.period).toBe(60);
    });

    it('answers an expired token, a policy denial and a missing token with their distinct 403 bodies', async () => {
      const token = double.createToken({ ttl: 60, deny: ['secret/data/private'] });
      const c = nodeVault({ endpoint: double.url, token: token.id });
      const denied = await failure(c.read('secret/data/private/x'));
      expect(denied.response?.statusCode).toBe(403);
      expect(denied.message).toBe('1 error occurred:\n\t* permission denied\n\n');
      now += 61_000;
      const expired = await failure(c.read('secret/data/x'));
      expect(expired.message).toBe('2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n');
      const anonymous = nodeVault({ endpoint: double.url, token: '' });
      const none = await failure(anonymous.read('secret/data/x'));
      expect(none.message).toBe('permission denied');
    });

    it('logs in with AppRole and Kubernetes, and refuses bad credentials as Vault does', async () => {
      const { roleId, secretId } = double.addAppRole('app', { ttl: 300, explicitMaxTtl: 1200 });
      const c = nodeVault({ endpoint: double.url });
      const login = await c.approleLogin({ role_id: roleId, secret_id: secretId });
      expect(login.auth.lease_duration).toBe(300);
      expect(c.token).toBe(login.auth.client_token);
      const bad = await failure(c.approleLogin({ role_id: roleId, secret_id: 'nope' }));
      expect(bad.response?.statusCode).toBe(400);
      expect(bad.message).toBe('invalid role or secret ID');

      double.addKubernetesRole('web', ['jwt-good'], { ttl: 120 }, 'k8s');
      const k = nodeVault({ endpoint: double.url });
      const kl = await k.kubernetesLogin({ role: 'web', jwt: 'jwt-good', mount_point: 'k8s' });
      expect(kl.auth.lease_duration).toBe(120);
      const kbad = await failure(k.kubernetesLogin({ role: 'web', jwt: 'jwt-bad', mount_point: 'k8s' }));
      expect(kbad.response?.statusCode).toBe(403);
      expect(kbad.message).toBe('permission denied');
    });
  });

  describe('dynamic secrets and leases', () => {
    it('issues leases, renews them up to the max TTL with Vault’s errors, looks up and revokes', async () => {
      double.addDatabaseRole('app', { ttl: 60, maxTtl: 150, renewable: true });
      const creds = await client.read('database/creds/app');
      expect(creds.lease_id).toMatch(/^database\/creds\/app\//);
      expect(creds.lease_duration).toBe(60);
      expect(creds.renewable).toBe(true);
      expect(double.useCredential(creds.data.username, creds.data.password)).toBe(true);

      now += 45_000;
      const renewed = await client.renew({ lease_id: creds.lease_id, increment: 60 });
      expect(renewed.lease_duration).toBe(60);
      now += 50_000;
      const capped = await client.renew({ lease_id: creds.lease_id, increment: 60 });
      expect(capped.lease_duration).toBe(55);
      expect(capped.warnings[0]).toMatch(/^TTL of "1m0s" exceeded the effective max_ttl of "55s"/);
      const lookup = await client.write('sys/leases/lookup', { lease_id: creds.lease_id });
      expect(lookup.data.ttl).toBe(55);
      expect(lookup.data.renewable).toBe(true);

      now += 55_000;
      expect((await failure(client.renew({ lease_id: creds.lease_id, increment: 60 }))).message).toBe(
        'lease expired',
      );
      expect(double.useCredential(creds.data.username, creds.data.password)).toBe(false);
      now += 10_000;
      expect((await failure(client.renew({ lease_id: creds.lease_id }))).message).toBe('lease not found');
      expect((await failure(client.write('sys/leases/lookup', { lease_id: creds.lease_id }))).message).toBe(
        'invalid lease',
      );

      const other = await client.read('database/creds/app');
      expect(await client.revoke({ lease_id: other.lease_id })).toBe('');
      expect(double.credentialFailures).toHaveLength(1);
      expect(double.useCredential(other.data.username, other.data.password)).toBe(false);
    });

    it('answers a renewal at the max TTL with "past the max TTL, cannot renew"', async () => {
      double.addDatabaseRole('short', { ttl: 100, maxTtl: 100, renewable: true });
      const creds = await client.read('database/creds/short');
      now += 100_000 - 1;
      // Just before the end the cap leaves nothing: Vault refuses instead of renewing for 0 s.
      const almost = await client.renew({ lease_id: creds.lease_id });
      expect(almost.lease_duration).toBe(0);
      now += 1;
      const past = await failure(client.renew({ lease_id: creds.lease_id }));
      expect(['past the max TTL, cannot renew', 'lease expired']).toContain(past.message);
    });

    it('refuses to renew a non-renewable lease', async () => {
      double.addDatabaseRole('fixed', { ttl: 30, maxTtl: 30, renewable: false });
      const creds = await client.read('database/creds/fixed');
      expect(creds.renewable).toBe(false);
      expect((await failure(client.renew({ lease_id: creds.lease_id }))).message).toBe(
        'lease is not renewable',
      );
    });

    it('revokes the leases a token created when the token expires', async () => {
      double.addDatabaseRole('app', { ttl: 3600, maxTtl: 7200, renewable: true });
      const token = double.createToken({ ttl: 120 });
      const c = nodeVault({ endpoint: double.url, token: token.id });
      const creds = await c.read('database/creds/app');
      now += 121_000;
      expect(double.useCredential(creds.data.username, creds.data.password)).toBe(false);
      expect((await failure(client.renew({ lease_id: creds.lease_id }))).message).toBe('lease not found');
    });
  });

  describe('availability', () => {
    it('reports health by status, and answers sealed and standby with 503', async () => {
      expect((await client.health()).sealed).toBe(false);
      double.seal();
      expect((await client.health()).sealed).toBe(true);
      const sealed = await failure(client.read('secret/data/x'));
      expect(sealed.response?.statusCode).toBe(503);
      expect(sealed.message).toBe('Vault is sealed');
      double.unseal();
      double.setStandby('unavailable');
      expect((await rawRequest(double.url, 'GET', '/v1/sys/health')).status).toBe(429);
      expect((await failure(client.read('secret/data/x'))).response?.statusCode).toBe(503);
    });

    it('redirects a standby’s requests to the active node with 307, which node-vault follows', async () => {
      double.setStandby('redirect');
      await client.write('secret/data/r', { data: { v: '1' } });
      expect((await client.read('secret/data/r')).data.data).toEqual({ v: '1' });
      expect((await client.list('secret/metadata/')).data.keys).toEqual(['r']);
      const byListener = double.requests.map((r) => `${r.listener}:${r.status}`);
      expect(byListener).toEqual([
        'primary:307',
        'active:200',
        'primary:307',
        'active:200',
        'primary:307',
        'active:200',
      ]);
    });

    it('answers quota 429s with and without Retry-After', async () => {
      double.rateLimit({ count: 1, retryAfter: 7 });
      const limited = await rawRequest(double.url, 'GET', '/v1/secret/data/x', {
        'X-Vault-Token': double.rootToken,
      });
      expect(limited.status).toBe(429);
      expect(limited.headers['retry-after']).toBe('7');
      expect(JSON.parse(limited.body).errors[0]).toBe(
        'request path "secret/data/x": rate limit quota exceeded',
      );
      double.rateLimit({ count: 1 });
      const bare = await rawRequest(double.url, 'GET', '/v1/secret/data/x', {
        'X-Vault-Token': double.rootToken,
      });
      expect(bare.status).toBe(429);
      expect(bare.headers['retry-after']).toBeUndefined();
      expect((await failure(client.read('secret/data/x'))).response?.statusCode).toBe(404);
    });

    it('injects resets, hangs and statuses, and refuses connections while stopped', async () => {
      double.fail({ kind: 'reset', match: 'secret/' });
      expect((await failure(client.read('secret/data/x'))).code).toBe('ECONNRESET');
      double.fail({ kind: 'hang' });
      const timed = nodeVault({
        endpoint: double.url,
        token: double.rootToken,
        requestOptions: { timeout: 200 },
      });
      expect((await failure(timed.read('secret/data/x'))).code).toBe('ECONNABORTED');
      double.fail({ kind: 'status', status: 502, body: { errors: ['bad gateway'] } });
      expect((await failure(client.read('secret/data/x'))).response?.statusCode).toBe(502);
      await double.stopListening();
      // A pooled keep-alive connection may learn of the close only by a reset; a new one is refused.
      expect(['ECONNRESET', 'ECONNREFUSED']).toContain((await failure(client.read('secret/data/x'))).code);
      expect((await failure(client.read('secret/data/x'))).code).toBe('ECONNREFUSED');
      await double.resumeListening();
      expect((await failure(client.read('secret/data/x'))).response?.statusCode).toBe(404);
    });

    it('delays answers by the configured latency', async () => {
      double.latencyMs = 60;
      const started = Date.now();
      await failure(client.read('secret/data/x'));
      expect(Date.now() - started).toBeGreaterThanOrEqual(50);
    });

    it('answers 412 without X-Vault-Request when it requires the header, like a Vault Agent', async () => {
      double.state.requireRequestHeader = true;
      const error = await failure(client.read('secret/data/x'));
      expect(error.response?.statusCode).toBe(412);
      const res = await rawRequest(double.url, 'GET', '/v1/secret/data/x', {
        'X-Vault-Token': double.rootToken,
        'X-Vault-Request': 'true',
      });
      expect(res.status).toBe(404);
    });

    it('logs requests with their correlation header and namespace, never the token', async () => {
      const c = nodeVault({ endpoint: double.url, token: double.rootToken, namespace: 'team-a' });
      await failure(c.read('secret/data/x', { headers: { 'X-OperationId': 'op-1' } }));
      const [entry] = double.requests;
      expect(entry?.operationId).toBe('op-1');
      expect(entry?.namespace).toBe('team-a');
      expect(JSON.stringify(double.requests)).not.toContain(double.rootToken);
    });
  });
});
