import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { KeyVaultDouble } from '@secret-provider/doubles/key-vault';
import { VaultDouble } from '@secret-provider/doubles/vault';
import { expectNoLeak, tempDir } from '@secret-provider/testing';
import { generate } from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { built, documentOf, outputs, runBin, writeConfig, writeSecretFile } from './run-bin.js';

// The built bin in a child process against the Vault and Key Vault doubles, with real files.
// Every output is kept and scanned for the secrets involved at the end.

const DB_PASSWORD = 'db-pass-7Qm2vX9kLr4T';
const FILE_SECRET = 'file-secret-Hn3pW8zQ';
const KV_VALUE = 'kv-value-Zt6yB1cN0s';

let vault: VaultDouble;
let keyVault: KeyVaultDouble;
let temp: { dir: string; remove: () => void };
let appToken: string;
let narrowToken: string;
let kvToken: string;
let kvListless: string;
let kvGetless: string;
const secrets: string[] = [DB_PASSWORD, FILE_SECRET, KV_VALUE];

beforeAll(async () => {
  expect(built(), 'build the packages first (pnpm build)').toBe(true);
  temp = tempDir('secret-provider-cli-');
  vault = await VaultDouble.start();
  vault.call('POST', 'secret/data/app/db', { data: { password: DB_PASSWORD } });
  vault.call('POST', 'secret/data/forbidden/x', { data: { password: DB_PASSWORD } });
  appToken = vault.createToken({ ttl: 3600, renewable: true, policies: ['default', 'app'] }).id;
  narrowToken = vault.createToken({ ttl: 3600, policies: ['default'], deny: ['secret/data/forbidden/'] }).id;
  keyVault = await KeyVaultDouble.start();
  keyVault.setSecret('app-key', KV_VALUE);
  kvToken = keyVault.issueToken();
  kvListless = keyVault.issueToken(['get']);
  kvGetless = keyVault.issueToken(['list']);
  secrets.push(vault.rootToken, appToken, narrowToken, kvToken, kvListless, kvGetless);
  mkdirSync(join(temp.dir, 'volume'));
  writeSecretFile(join(temp.dir, 'volume'), 'api-key', FILE_SECRET);
});

afterAll(async () => {
  await vault?.close();
  await keyVault?.stop();
  temp?.remove();
});

/** A directory with a config of a file volume and a Vault whose token is read from `tokenFile`. */
function vaultSetup(name: string, token: string) {
  const dir = join(temp.dir, name);
  mkdirSync(dir);
  const tokenFile = writeSecretFile(dir, 'vault-token', `${token}\n`);
  writeConfig(dir, {
    providers: [
      { name: 'files', type: 'file', path: join(temp.dir, 'volume'), format: 'directory' },
      {
        name: 'vault',
        type: 'vault',
        endpoint: vault.url,
        auth: { method: 'token', token: { file: tokenFile } },
        requestTimeoutMs: 2000,
      },
    ],
  });
  return dir;
}

describe('check against the Vault double', () => {
  it('healthy: exit 0, active and unsealed, the token with its TTL, renewability and policies', async () => {
    const cwd = vaultSetup('healthy', appToken);
    const run = await runBin(['check', '--json'], { cwd });
    expect(run.code).toBe(0);
    const doc = documentOf(run);
    expect(doc).toMatchObject({ command: 'check', ok: true, exitCode: 0 });
    const auth = doc.results.find((r) => r.provider === 'vault' && r.check === 'auth');
    expect(auth?.outcome).toBe('ok');
    expect(auth?.data).toMatchObject({ renewable: true, policies: ['default', 'app'], source: 'auth.token' });
    expect(auth?.data?.ttl).toBeGreaterThan(3500);
    expect(doc.results.find((r) => r.provider === 'vault' && r.check === 'reachable')?.outcome).toBe('ok');
    expect(doc.results.find((r) => r.provider === 'files')).toMatchObject({
      outcome: 'ok',
      data: { count: 1 },
    });
  });

  it('sealed: exit 2, the reachability line says sealed', async () => {
    const cwd = vaultSetup('sealed', appToken);
    vault.seal();
    try {
      const run = await runBin(['check', '--json'], { cwd });
      expect(run.code).toBe(2);
      const line = documentOf(run).results.find((r) => r.provider === 'vault');
      expect(line).toMatchObject({ check: 'reachable', outcome: 'remote', data: { sealed: true } });
      const human = await runBin(['check'], { cwd });
      expect(human.code).toBe(2);
      expect(human.stdout).toMatch(/✗ vault reachable: .*sealed/);
    } finally {
      vault.unseal();
    }
  });

  it('wrong token: exit 3, the token is reported invalid', async () => {
    const cwd = vaultSetup('wrong-token', 'hvs.not-a-token-of-this-vault');
    const run = await runBin(['check', '--json'], { cwd });
    expect(run.code).toBe(3);
    const auth = documentOf(run).results.find((r) => r.provider === 'vault' && r.check === 'auth');
    expect(auth).toMatchObject({ outcome: 'denied' });
    expect(auth?.detail).toMatch(/invalid, expired or revoked/);
  });

  it('unreachable: exit 2', async () => {
    const dir = join(temp.dir, 'unreachable');
    mkdirSync(dir);
    const tokenFile = writeSecretFile(dir, 'vault-token', appToken);
    // A port nothing listens on: the double's own, after it is closed, would race; port 9 (discard) is closed here.
    writeConfig(dir, {
      providers: [
        {
          name: 'vault',
          type: 'vault',
          endpoint: 'http://127.0.0.1:9',
          auth: { method: 'token', token: { file: tokenFile } },
        },
      ],
    });
    const run = await runBin(['check', '--json', '--timeout', '2000'], { cwd: dir });
    expect(run.code).toBe(2);
    expect(documentOf(run).results[0]).toMatchObject({ check: 'reachable', outcome: 'remote' });
  });
});

describe('check against failing Vaults', () => {
  it('standby: a warning, exit by what follows (the standby refuses the token lookup: 2)', async () => {
    const cwd = vaultSetup('standby', appToken);
    vault.setStandby('unavailable');
    try {
      const run = await runBin(['check', '--json'], { cwd });
      const reachable = documentOf(run).results.find((r) => r.check === 'reachable');
      expect(reachable).toMatchObject({ outcome: 'warn', data: { status: 429, standby: true } });
      expect(run.code).toBe(2);
    } finally {
      vault.setStandby(false);
    }
  });

  it('a 500 from sys/health: exit 2', async () => {
    const cwd = vaultSetup('five-hundred', appToken);
    vault.fail({ kind: 'status', status: 500, match: 'sys/health', count: 1 });
    try {
      const run = await runBin(['check', '--json'], { cwd });
      expect(run.code).toBe(2);
      expect(documentOf(run).results.find((r) => r.provider === 'vault')).toMatchObject({
        check: 'reachable',
        outcome: 'remote',
        data: { status: 500 },
      });
    } finally {
      vault.clearFaults();
    }
  });

  it('a hanging Vault: exit 2 after --timeout', async () => {
    const cwd = vaultSetup('hang', appToken);
    vault.fail({ kind: 'hang', match: 'sys/health', count: 1 });
    try {
      const run = await runBin(['check', '--json', '--timeout', '500'], { cwd });
      expect(run.code).toBe(2);
      expect(documentOf(run).results.find((r) => r.provider === 'vault')).toMatchObject({
        outcome: 'remote',
        data: { kind: 'timeout' },
      });
    } finally {
      vault.clearFaults();
    }
  });

  it('HTTPS: the certificate expiry with the right CA; a TLS failure (exit 2) without it', async () => {
    const pems = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
      keyType: 'ec',
      algorithm: 'sha256',
      extensions: [
        { name: 'basicConstraints', cA: true },
        { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] },
      ],
    });
    const tlsVault = await VaultDouble.start({ tls: { key: pems.private, cert: pems.cert } });
    try {
      const token = tlsVault.createToken({ ttl: 600, policies: ['default'] }).id;
      secrets.push(token, tlsVault.rootToken);
      const dir = join(temp.dir, 'https');
      mkdirSync(dir);
      const tokenFile = writeSecretFile(dir, 'vault-token', token);
      writeSecretFile(dir, 'ca.pem', pems.cert, 0o644);
      const entry = {
        name: 'vault',
        type: 'vault',
        endpoint: tlsVault.url,
        auth: { method: 'token', token: { file: tokenFile } },
      };
      writeConfig(dir, { providers: [{ ...entry, tls: { caFile: 'ca.pem' } }] });
      const trusted = await runBin(['check', '--json'], { cwd: dir });
      expect(trusted.code).toBe(0);
      const tls = documentOf(trusted).results.find((r) => r.check === 'tls');
      expect(tls?.outcome).toBe('ok');
      expect(tls?.data?.days).toBeGreaterThan(300);
      // The same CA through VAULT_CACERT, the vendor fallback.
      writeConfig(dir, { providers: [entry] });
      const viaEnv = await runBin(['check', '--json'], {
        cwd: dir,
        env: { VAULT_CACERT: join(dir, 'ca.pem') },
      });
      expect(viaEnv.code).toBe(0);
      const untrusted = await runBin(['check', '--json'], { cwd: dir });
      expect(untrusted.code).toBe(2);
      expect(documentOf(untrusted).results[0]).toMatchObject({
        check: 'reachable',
        outcome: 'remote',
        data: { kind: 'tls' },
      });
    } finally {
      await tlsVault.close();
    }
  });
});

describe('can-i against the Vault double', () => {
  it('denied key: exit 3; one batch request; each key with its path, capability and a fix', async () => {
    const cwd = vaultSetup('denied', narrowToken);
    vault.clearLog();
    const run = await runBin(['can-i', 'get', 'secret/app/db', 'secret/forbidden/x', '--json'], { cwd });
    expect(run.code).toBe(3);
    const lines = documentOf(run).results.filter((r) => r.provider === 'vault');
    expect(lines.map((l) => [l.check, l.outcome])).toEqual([
      ['get secret/app/db', 'ok'],
      ['get secret/forbidden/x', 'denied'],
    ]);
    expect(lines[1]?.data).toMatchObject({
      path: 'secret/data/forbidden/x',
      needs: ['read'],
      capabilities: ['deny'],
    });
    expect(vault.count((e) => e.path === 'sys/capabilities-self')).toBe(1);
  });

  it('allowed keys: exit 0', async () => {
    const cwd = vaultSetup('allowed', appToken);
    const run = await runBin(['can-i', 'set', 'secret/app/db', '--json'], { cwd });
    expect(run.code).toBe(0);
    expect(documentOf(run).results[0]).toMatchObject({
      outcome: 'ok',
      data: { needs: ['create', 'update'] },
    });
  });
});

describe('against the Key Vault double', () => {
  function azureSetup(name: string, token: string) {
    const dir = join(temp.dir, name);
    mkdirSync(dir);
    writeSecretFile(dir, 'ca.pem', keyVault.ca, 0o644);
    writeConfig(dir, {
      providers: [
        {
          name: 'kv',
          type: 'azure',
          vaultUrl: keyVault.url,
          credential: { type: 'access-token', token: { env: 'KV_TOKEN' } },
          caFile: 'ca.pem',
          disableChallengeResourceVerification: true,
        },
      ],
    });
    return { cwd: dir, env: { KV_TOKEN: token } };
  }

  it('healthy: exit 0, the challenge names the tenant, the certificate expiry is reported', async () => {
    const run = await runBin(['check', '--json'], azureSetup('kv-healthy', kvToken));
    expect(run.code).toBe(0);
    const results = documentOf(run).results;
    expect(results.find((r) => r.check === 'reachable')?.data).toMatchObject({ tenant: keyVault.tenantId });
    expect(results.find((r) => r.check === 'tls')?.outcome).toBe('ok');
    expect(results.find((r) => r.check === 'auth')).toMatchObject({ outcome: 'ok', data: { count: 1 } });
  });

  it('a token without list: check exits 3 with the permission to grant', async () => {
    const run = await runBin(['check', '--json'], azureSetup('kv-listless', kvListless));
    expect(run.code).toBe(3);
    const auth = documentOf(run).results.find((r) => r.check === 'auth');
    expect(auth?.outcome).toBe('denied');
    expect(JSON.stringify(auth)).toContain('secrets/list');
  });

  it('can-i: get is probed, set is unknown (no probe writes nothing)', async () => {
    const setup = azureSetup('kv-can-i', kvListless);
    // The application key app_key is the Key Vault secret app-key (the default name mapping).
    const get = await runBin(['can-i', 'get', 'app_key', '--json'], setup);
    expect(get.code).toBe(0);
    expect(documentOf(get).results[0]).toMatchObject({
      outcome: 'ok',
      detail: 'allowed (secrets/get)',
      data: { action: 'secrets/get' },
    });
    const getless = await runBin(['can-i', 'get', 'app_key', '--json'], azureSetup('kv-getless', kvGetless));
    expect(getless.code).toBe(3);
    expect(documentOf(getless).results[0]).toMatchObject({
      outcome: 'denied',
      detail: 'denied (secrets/get)',
    });
    const list = await runBin(['can-i', 'list', 'app', '--json'], setup);
    expect(list.code).toBe(3);
    expect(documentOf(list).results[0]).toMatchObject({
      outcome: 'denied',
      data: { action: 'secrets/list' },
    });
    const set = await runBin(['can-i', 'set', 'app_key', '--json'], setup);
    expect(set.code).toBe(0);
    expect(documentOf(set).results[0]).toMatchObject({ outcome: 'unknown', data: { action: 'secrets/set' } });
  });
});

describe('keys and explain over the doubles and files', () => {
  it('list names and explain who serves a key, without values', async () => {
    const cwd = vaultSetup('keys', appToken);
    const keys = await runBin(['keys', '--json'], { cwd });
    expect(keys.code).toBe(0);
    expect(documentOf(keys).keys).toMatchObject({ files: ['api-key'] });
    const explain = await runBin(['explain', 'api-key'], { cwd });
    expect(explain.code).toBe(0);
    expect(explain.stdout).toContain('api-key: served by files');
  });
});

describe('leak scan', () => {
  it('no output of any run above holds a secret value or token', () => {
    expect(outputs.length).toBeGreaterThan(20);
    expectNoLeak(outputs, secrets, { encodings: true });
  });
});
