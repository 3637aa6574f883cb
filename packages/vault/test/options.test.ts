import { createRequire } from 'node:module';
import { inspect } from 'node:util';
import { isSecretError, Secret } from '@secret-provider/core';
import { expectNoLeak } from '@secret-provider/testing';
import { redactOptions, resolveIntervals, VaultProvider } from '@secret-provider/vault';
import { describe, expect, it } from 'vitest';
import { parseBool } from '../src/options.js';

const TOKEN = 'hvs.options-token-must-not-show';
const SECRET_ID = 'secret-id-must-not-show';

describe('options', () => {
  it('redacts credentials wherever the options or the provider are printed', async () => {
    const provider = new VaultProvider({
      endpoint: 'http://127.0.0.1:1',
      auth: { method: 'approle', roleId: 'role-id-hidden', secretId: new Secret(SECRET_ID) },
      tls: { key: 'PRIVATE KEY', ca: 'CA' },
      env: {},
    });
    const options = provider.options;
    for (const text of [
      JSON.stringify(options),
      inspect(options, { depth: 10 }),
      inspect(provider, { depth: 10, showHidden: true }),
      JSON.stringify(provider),
    ]) {
      expect(text).not.toContain(SECRET_ID);
      expect(text).not.toContain('role-id-hidden');
      expect(text).not.toContain('PRIVATE KEY');
    }
    expect(options.auth).toEqual({ method: 'approle', roleId: '[REDACTED]', secretId: '[REDACTED]' });
    expect(inspect(provider)).toBe(
      'VaultProvider { name: "vault", endpoint: "http://127.0.0.1:1", auth: "approle" }',
    );
    expect(redactOptions({ auth: { method: 'token', token: TOKEN } }).auth).toEqual({
      method: 'token',
      token: '[REDACTED]',
    });
    await provider.close();
  });

  it('reads VAULT_* from the given environment; node-vault never reads its own', async () => {
    const provider = new VaultProvider({
      env: { VAULT_ADDR: 'http://127.0.0.1:2/', VAULT_TOKEN: TOKEN, VAULT_NAMESPACE: 'ns' },
    });
    expect(provider.endpoint).toBe('http://127.0.0.1:2');
    expect(provider.client.token).toBe('');
    expect(provider.client.namespace).toBe('ns');
    expect(inspect(provider, { depth: 10, showHidden: true })).not.toContain(TOKEN);
    await provider.close();
  });

  it('parses VAULT_SKIP_VERIFY as Vault does: only true values turn verification off', () => {
    for (const value of ['1', 't', 'true', 'TRUE', 'True']) expect(parseBool(value)).toBe(true);
    for (const value of ['0', 'f', 'false', 'FALSE']) expect(parseBool(value)).toBe(false);
    for (const value of ['', 'no', 'yes', undefined]) expect(parseBool(value)).toBeUndefined();
    const off = new VaultProvider({ endpoint: 'https://127.0.0.1:1', env: { VAULT_SKIP_VERIFY: 'false' } });
    expect(off.configWarnings).toEqual([]);
    const on = new VaultProvider({ endpoint: 'https://127.0.0.1:1', env: { VAULT_SKIP_VERIFY: '1' } });
    expect(on.configWarnings.map((w) => w.code)).toEqual(['TLS_VERIFY_DISABLED']);
  });

  it('rejects invalid configuration with INVALID_CONFIG', () => {
    const attempts: Array<() => unknown> = [
      () => new VaultProvider({ env: {}, endpoint: 'nope' }),
      () => new VaultProvider({ env: {}, mounts: { 'a/b': { version: 2 } } }),
      () => new VaultProvider({ env: {}, mounts: { kv: { version: 3 as 2 } } }),
      () => new VaultProvider({ env: {}, leases: { renewFraction: 1.5 } }),
      () => new VaultProvider({ env: {}, leases: { renewFraction: 0 } }),
      () => new VaultProvider({ env: {}, retry: { retries: -1 } }),
      () => new VaultProvider({ env: {}, requestTimeoutMs: 0 }),
      () => new VaultProvider({ env: {}, auth: { method: 'ldap' } as never }),
      () => new VaultProvider({ env: { VAULT_CACERT: '/nonexistent/ca.pem' } }),
    ];
    for (const attempt of attempts) {
      let error: unknown;
      try {
        attempt();
      } catch (e) {
        error = e;
      }
      expect(isSecretError(error, 'INVALID_CONFIG'), String(attempt)).toBe(true);
    }
  });
});

describe('the endpoint', () => {
  const PASSWORD = 'hunter2-in-the-url';
  const nodeVault = createRequire(import.meta.url)('node-vault') as (options: object) => never;

  it('refuses credentials, a query or a fragment in the address with INVALID_CONFIG, quoting none', () => {
    const attempts: Array<[string, () => unknown]> = [
      [
        'user and password',
        () => new VaultProvider({ env: {}, endpoint: `http://app:${PASSWORD}@127.0.0.1:8200` }),
      ],
      [
        'password only',
        () => new VaultProvider({ env: {}, endpoint: `https://:${PASSWORD}@vault.internal` }),
      ],
      ['user only', () => new VaultProvider({ env: {}, endpoint: `https://${PASSWORD}@vault.internal` })],
      [
        'VAULT_ADDR',
        () => new VaultProvider({ env: { VAULT_ADDR: `http://app:${PASSWORD}@127.0.0.1:8200` } }),
      ],
      [
        'an injected client',
        () =>
          new VaultProvider({
            env: {},
            client: nodeVault({ endpoint: `http://app:${PASSWORD}@127.0.0.1:1` }),
          }),
      ],
      ['a query', () => new VaultProvider({ env: {}, endpoint: `http://127.0.0.1:8200/?token=${PASSWORD}` })],
      ['a fragment', () => new VaultProvider({ env: {}, endpoint: `http://127.0.0.1:8200/#${PASSWORD}` })],
    ];
    for (const [what, attempt] of attempts) {
      let error: unknown;
      try {
        attempt();
      } catch (e) {
        error = e;
      }
      expect(isSecretError(error, 'INVALID_CONFIG'), what).toBe(true);
      expectNoLeak([error], [PASSWORD]);
    }
  });

  it('keeps a plain address, with a path prefix, as given', async () => {
    const provider = new VaultProvider({ env: {}, endpoint: 'https://vault.internal:8200/prefix/' });
    expect(provider.endpoint).toBe('https://vault.internal:8200/prefix');
    await provider.close();
  });
});

describe('refresh intervals from options and the environment', () => {
  it('puts the environment first, per pattern, and converts seconds to ms', () => {
    const { rules, warnings } = resolveIntervals(
      { 'secret/a/*': 60, 'secret/b/*': 30 },
      'ENV',
      '{"secret/a/*": 300, "secret/c/**": "15"}',
    );
    expect(rules.map((r) => [r.pattern, r.ms])).toEqual([
      ['secret/a/*', 300_000],
      ['secret/c/**', 15_000],
      ['secret/b/*', 30_000],
    ]);
    expect(warnings).toEqual([]);
  });

  it('turns invalid JSON, a non-object and bad values into warnings, never exceptions', () => {
    const broken = resolveIntervals({ x: 1 }, 'ENV', '{"secret/a": 1');
    expect(broken.warnings.map((w) => w.code)).toEqual(['INVALID_REFRESH_INTERVALS']);
    expect(broken.warnings[0]?.message).not.toContain('secret/a');
    expect(broken.rules.map((r) => r.pattern)).toEqual(['x']);
    expect(resolveIntervals(undefined, 'ENV', '[1,2]').warnings.map((w) => w.code)).toEqual([
      'INVALID_REFRESH_INTERVALS',
    ]);
    const bad = resolveIntervals({ ok: 5, neg: -1 }, 'ENV', '{"a": "soon", "b": null}');
    expect(bad.warnings.map((w) => w.code)).toEqual([
      'INVALID_REFRESH_INTERVAL',
      'INVALID_REFRESH_INTERVAL',
      'INVALID_REFRESH_INTERVAL',
    ]);
    expect(bad.rules.map((r) => r.pattern)).toEqual(['ok']);
  });
});
