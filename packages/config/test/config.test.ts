import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ConfigError,
  configSchema,
  defineConfig,
  loadConfig,
  PROVIDER_TYPES,
  RoutedProvider,
  readConfig,
  type SecretProviderConfig,
  secretFields,
  validateAgainstSchema,
  validateConfig,
} from '@secret-provider/config';
import { CachedProvider, isSecretError } from '@secret-provider/core';
import { expectNoLeak, rejection, tempDir } from '@secret-provider/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

let temp: { dir: string; remove: () => void };
beforeEach(() => {
  temp = tempDir('secret-provider-config-');
});
afterEach(() => temp.remove());

function secretFile(name: string, text: string, mode = 0o600): string {
  const file = join(temp.dir, name);
  writeFileSync(file, text, { mode });
  chmodSync(file, mode);
  return file;
}

const LITERAL = 'hvs.CAESIliteral-token-value-0123456789';

describe('the schema is the validator', () => {
  it('the provider types of the schema are the factories', () => {
    const types = (configSchema().$defs?.provider?.oneOf ?? []).map((branch) => {
      const name = /^#\/\$defs\/(.+)$/.exec(branch.$ref ?? '')?.[1] ?? '';
      return configSchema().$defs?.[name]?.properties?.type?.const;
    });
    expect([...types].sort()).toEqual([...PROVIDER_TYPES].sort());
  });

  it('the secret-bearing fields are read from the schema', () => {
    const fields = secretFields();
    expect(fields.get('vault')).toEqual(['auth.token', 'auth.roleId', 'auth.secretId']);
    expect(fields.get('azure')).toEqual(['credential.token']);
    expect(fields.get('http')).toEqual(['bearer']);
    expect(fields.get('consul')).toEqual(['token']);
    expect(fields.get('etcd')).toEqual(['auth.password']);
    expect(fields.get('env')).toEqual([]);
  });

  it("the README's example file is valid against the schema", () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const example = /```json\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(example).toBeDefined();
    expect(validateAgainstSchema(JSON.parse(example as string))).toEqual([]);
  });

  it('the published export is the same file', async () => {
    const { createRequire } = await import('node:module');
    const published = createRequire(import.meta.url).resolve('@secret-provider/config/schema.json');
    expect(JSON.parse(readFileSync(published, 'utf8'))).toEqual(configSchema());
  });
});

describe('validateConfig', () => {
  it('accepts a typed configuration', async () => {
    const config = defineConfig({
      providers: [
        { name: 'env', type: 'env', prefix: 'APP_' },
        {
          name: 'vault',
          type: 'vault',
          endpoint: 'https://vault:8200',
          auth: { method: 'token', token: { env: 'T' } },
        },
      ],
      cache: { ttl: 1000 },
      telemetry: { enabled: true, metrics: false },
    });
    const report = await validateConfig(config, { env: { T: 'x' } });
    expect(report.errors).toEqual([]);
  });

  it('refuses a literal secret at its path, without quoting it', async () => {
    const report = await validateConfig(
      { providers: [{ name: 'vault', type: 'vault', auth: { method: 'token', token: LITERAL } }] },
      { env: {} },
    );
    expect(report.errors).toContainEqual(
      expect.objectContaining({ path: 'providers[0].auth.token', code: 'LITERAL_SECRET' }),
    );
    expectNoLeak([report], [LITERAL]);
  });

  it('finds unknown fields, bad types, duplicate names, missing references and routes', async () => {
    const report = await validateConfig(
      {
        providers: [
          { name: 'a', type: 'env', colour: 'blue' },
          { name: 'a', type: 'file', path: 'x.json', pollInterval: -1 },
          { name: 'h', type: 'http', url: 'https://cfg', bearer: { provider: 'later', key: 'k' } },
          { name: 'c', type: 'consul', token: { env: 'UNSET_VAR' } },
          {
            name: 'e',
            type: 'etcd',
            hosts: ['http://etcd:2379'],
            auth: { username: 'u', password: { file: 'missing' } },
          },
          { name: 'later', type: 'memory' },
          { name: 'n', type: 'nosuch' },
        ],
        routing: { keys: { K: 'ghost' } },
      },
      { env: {}, baseDir: temp.dir },
    );
    const found = report.errors.map((e) => [e.path, e.code]);
    expect(found).toEqual(
      expect.arrayContaining([
        ['providers[0].colour', 'UNKNOWN_FIELD'],
        ['providers[1].pollInterval', 'SCHEMA'],
        ['providers[1].name', 'DUPLICATE_NAME'],
        ['providers[2].bearer', 'UNRESOLVED_REFERENCE'],
        ['providers[3].token', 'UNRESOLVED_REFERENCE'],
        ['providers[4].auth.password', 'UNRESOLVED_REFERENCE'],
        ['providers[6].type', 'SCHEMA'],
        ['routing.keys.K', 'UNRESOLVED_REFERENCE'],
      ]),
    );
  });

  it('refuses secret files and a config file with modes looser than 0640', async () => {
    const token = secretFile('token', 'x', 0o644);
    const config = secretFile('config.json', '{}', 0o666);
    const report = await validateConfig(
      { providers: [{ name: 'v', type: 'vault', auth: { method: 'token', token: { file: token } } }] },
      { env: {}, configFile: config },
    );
    expect(report.errors.map((e) => [e.path, e.code])).toEqual([
      ['', 'FILE_MODE'],
      ['providers[0].auth.token', 'FILE_MODE'],
    ]);
    secretFile('ok', 'x', 0o640);
    const fine = await validateConfig(
      {
        providers: [
          { name: 'v', type: 'vault', auth: { method: 'token', token: { file: join(temp.dir, 'ok') } } },
        ],
      },
      { env: {} },
    );
    expect(fine.errors).toEqual([]);
  });

  it('warns when a vendor variable is set but the file sets the field', async () => {
    const report = await validateConfig(
      {
        providers: [
          {
            name: 'v',
            type: 'vault',
            endpoint: 'https://a:8200',
            auth: { method: 'token', token: { env: 'MY_TOKEN' } },
          },
          { name: 'kv', type: 'azure', vaultUrl: 'https://x.vault.azure.net' },
        ],
      },
      {
        env: {
          VAULT_ADDR: 'https://b:8200',
          VAULT_TOKEN: LITERAL,
          MY_TOKEN: 'x',
          AZURE_KEYVAULT_URL: 'https://y',
        },
      },
    );
    expect(report.errors).toEqual([]);
    expect(report.warnings.map((w) => [w.path, w.code])).toEqual([
      ['providers[0].endpoint', 'SHADOWED_ENV'],
      ['providers[0].auth.token', 'SHADOWED_ENV'],
      ['providers[1].vaultUrl', 'SHADOWED_ENV'],
    ]);
    expectNoLeak([report], [LITERAL]);
  });

  it('validates the telemetry section; serviceName is not one of its fields (the SDK resource is)', async () => {
    const report = await validateConfig(
      {
        providers: [{ name: 'm', type: 'memory' }],
        telemetry: { enabled: 'yes', exporter: 'otlp', serviceName: 'api' },
      },
      { env: {} },
    );
    expect(report.errors.map((e) => [e.path, e.code])).toEqual([
      ['telemetry.enabled', 'SCHEMA'],
      ['telemetry.exporter', 'UNKNOWN_FIELD'],
      ['telemetry.serviceName', 'UNKNOWN_FIELD'],
    ]);
  });

  it('a Vault without token and without VAULT_TOKEN is unresolved; with VAULT_TOKEN it is not', async () => {
    const config = { providers: [{ name: 'v', type: 'vault' }] };
    expect((await validateConfig(config, { env: {} })).errors).toContainEqual(
      expect.objectContaining({ path: 'providers[0].auth.token', code: 'UNRESOLVED_REFERENCE' }),
    );
    expect((await validateConfig(config, { env: { VAULT_TOKEN: 't' } })).errors).toEqual([]);
  });
});

describe('readConfig', () => {
  it('a JSON syntax error gives a position, never the text', async () => {
    const file = secretFile('bad.json', `{"providers": [${LITERAL}]}`);
    const error = await rejection(readConfig(file));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ reason: 'PARSE' });
    expectNoLeak([error], [LITERAL, LITERAL.slice(0, 8)]);
  });

  it('reads the default export of an .mjs file', async () => {
    const file = secretFile('c.mjs', 'export default { providers: [{ name: "m", type: "memory" }] };');
    expect((await readConfig(file)).value).toEqual({ providers: [{ name: 'm', type: 'memory' }] });
  });
});

describe('loadConfig', () => {
  it('builds the chain in order from env and real files, resolving a provider reference', async () => {
    mkdirSync(join(temp.dir, 'volume'));
    secretFile('volume/db-password', 'from-volume\n');
    secretFile('volume/shared', 'volume-shared');
    const file = secretFile(
      'secret-provider.config.json',
      JSON.stringify({
        providers: [
          { name: 'env', type: 'env', prefix: 'APP_', stripPrefix: true },
          { name: 'files', type: 'file', path: 'volume', format: 'directory' },
        ],
      }),
    );
    await using loaded = await loadConfig(file, { env: { APP_shared: 'env-shared' } });
    expect(loaded.chain.mode).toBe('ordered');
    expect([...loaded.providers.keys()]).toEqual(['env', 'files']);
    expect((await loaded.provider.get('shared')).reveal()).toBe('env-shared');
    expect((await loaded.provider.get('db-password')).reveal()).toBe('from-volume');
    expect((await loaded.chain.explain('shared')).servedBy).toBe('env');
  });

  it('routes a key to one provider only, and caches in front when asked', async () => {
    const config: SecretProviderConfig = {
      providers: [
        { name: 'env', type: 'env', all: true },
        { name: 'mem', type: 'memory' },
      ],
      routing: { keys: { ONLY_MEM: 'mem' }, prefixes: { 'mem/': 'mem' } },
      cache: { ttl: 60_000 },
    };
    await using loaded = await loadConfig(config, { env: { ONLY_MEM: 'from-env', OTHER: 'o' } });
    expect(isSecretError(await rejection(loaded.provider.get('ONLY_MEM')), 'NOT_FOUND')).toBe(true);
    await loaded.provider.set('mem/x', 'y');
    expect((await loaded.providers.get('mem')?.get('mem/x'))?.reveal()).toBe('y');
    expect((await loaded.provider.get('OTHER')).reveal()).toBe('o');
    expect(loaded.provider).toBeInstanceOf(CachedProvider);
    expect((loaded.provider as CachedProvider).provider).toBeInstanceOf(RoutedProvider);
  });

  it('without cache or routing, the provider is the chain itself', async () => {
    await using loaded = await loadConfig({ providers: [{ name: 'mem', type: 'memory' }] }, { env: {} });
    expect(loaded.provider).toBe(loaded.chain);
  });

  it('rejects an invalid configuration with a ConfigError listing every issue by path', async () => {
    const error = await rejection(
      loadConfig(
        {
          providers: [
            { name: 'v', type: 'vault', auth: { method: 'token', token: LITERAL } },
            { name: 'v', type: 'env' },
          ],
        } as never,
        { env: {} },
      ),
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect(isSecretError(error, 'INVALID_CONFIG')).toBe(true);
    expect((error as ConfigError).issues.map((i) => i.code)).toEqual(['LITERAL_SECRET', 'DUPLICATE_NAME']);
    expect((error as ConfigError).path).toBe('providers[0].auth.token');
    expectNoLeak([error], [LITERAL]);
  });

  it('a reference that fails at load time names the reference, not the value', async () => {
    const error = await rejection(
      loadConfig(
        {
          providers: [
            { name: 'mem', type: 'memory' },
            {
              name: 'v',
              type: 'vault',
              endpoint: 'http://127.0.0.1:9',
              auth: { method: 'token', token: { provider: 'mem', key: 'absent' } },
            },
          ],
        },
        { env: {} },
      ),
    );
    expect(error).toMatchObject({ reason: 'UNRESOLVED_REFERENCE', path: 'providers[1].auth.token' });
    expect((error as Error).message).toContain('key absent of provider "mem"');
  });
});
