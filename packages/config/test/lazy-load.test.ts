import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadRecorder, tempDir } from '@secret-provider/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// A fresh Node process imports the BUILT package as a user would and records every module it
// resolves: adapters (and their SDKs) load only for the provider types a configuration declares.

const run = promisify(execFile);
const packageDir = fileURLToPath(new URL('..', import.meta.url));
let temp: { dir: string; remove: () => void };

beforeAll(() => {
  temp = tempDir('secret-provider-config-loads-');
  mkdirSync(join(temp.dir, 'volume'));
  writeFileSync(join(temp.dir, 'volume', 'k'), 'v', { mode: 0o600 });
});
afterAll(() => temp.remove());

async function modulesLoaded(config: unknown): Promise<string[]> {
  const file = join(temp.dir, `config-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
  const log = join(temp.dir, `loads-${Math.random().toString(36).slice(2)}.txt`);
  const script = `const { loadConfig } = await import('@secret-provider/config');
const loaded = await loadConfig(${JSON.stringify(file)}, { env: { VAULT_TOKEN: 't' } });
await loaded.close();`;
  await run(process.execPath, ['--import', loadRecorder, '--input-type=module', '-e', script], {
    cwd: packageDir,
    env: { PATH: process.env.PATH ?? '', LOAD_LOG: log },
    timeout: 30_000,
  });
  return readFileSync(log, 'utf8').split('\n').filter(Boolean);
}

const heavy = (urls: string[]) =>
  urls.filter((url) =>
    /@secret-provider[/+](vault|azure|etcd|consul|http|aws|opentelemetry)\b|packages\/(vault|azure|etcd|consul|http|aws|opentelemetry)\/|[/+]node-vault|[/+]@azure[/+]|[/+]etcd3|[/+]@aws-sdk[/+]|[/+]@smithy[/+]|[/+]@opentelemetry[/+]/.test(
      url,
    ),
  );

describe('lazy loading of adapters', () => {
  it('runs against the build', () => {
    expect(existsSync(join(packageDir, 'dist', 'index.js')), 'build first (pnpm build)').toBe(true);
  });

  it('a configuration of env and file loads neither Vault nor Azure (nor etcd, Consul, HTTP, AWS, OpenTelemetry)', async () => {
    const urls = await modulesLoaded({
      providers: [
        { name: 'env', type: 'env' },
        { name: 'files', type: 'file', path: join(temp.dir, 'volume'), format: 'directory' },
      ],
    });
    expect(urls.some((url) => /@secret-provider[/+]file\b|packages\/file\//.test(url))).toBe(true);
    expect(heavy(urls)).toEqual([]);
  });

  it('a configuration with a Vault loads the Vault adapter (so the check above can fail)', async () => {
    const urls = await modulesLoaded({
      providers: [{ name: 'vault', type: 'vault', endpoint: 'http://127.0.0.1:9' }],
    });
    expect(heavy(urls).some((url) => /vault/.test(url))).toBe(true);
    expect(heavy(urls).some((url) => /azure/.test(url))).toBe(false);
  });

  it('a configuration with an AWS provider loads the adapter but no SDK module until a request', async () => {
    const urls = await modulesLoaded({
      providers: [{ name: 'aws', type: 'aws', region: 'eu-west-1', endpoint: 'http://127.0.0.1:9' }],
    });
    expect(heavy(urls).some((url) => /@secret-provider[/+]aws\b|packages\/aws\//.test(url))).toBe(true);
    expect(urls.filter((url) => /[/+]@aws-sdk[/+]|[/+]@smithy[/+]/.test(url))).toEqual([]);
  });
});

describe('optional packages not installed', () => {
  /** Loads `config` in an installation of config and its dependencies only (no adapters but memory). */
  async function loadWithout(config: string, env = '{}'): Promise<Record<string, string>> {
    // The built package copied, its dependencies linked, no optional package to resolve.
    const root = join(temp.dir, `app-${Math.random().toString(36).slice(2)}`);
    const scope = join(root, 'node_modules', '@secret-provider');
    mkdirSync(scope, { recursive: true });
    cpSync(join(packageDir, 'dist'), join(scope, 'config', 'dist'), { recursive: true });
    for (const file of ['package.json', 'schema.json'])
      cpSync(join(packageDir, file), join(scope, 'config', file));
    for (const name of ['core', 'chained', 'memory'])
      symlinkSync(join(packageDir, '..', name), join(scope, name), 'dir');
    const script = `const { loadConfig } = await import('@secret-provider/config');
try {
  await loadConfig(${config}, { env: ${env} });
  console.log('"loaded"');
} catch (error) {
  console.log(JSON.stringify({ name: error.name, code: error.code, reason: error.reason, path: error.path, message: error.message }));
}`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '' },
      timeout: 30_000,
    });
    return JSON.parse(stdout) as Record<string, string>;
  }

  it('telemetry.enabled without @secret-provider/opentelemetry installed is a ConfigError naming it', async () => {
    const error = await loadWithout(
      "{ providers: [{ name: 'm', type: 'memory' }], telemetry: { enabled: true } }",
    );
    expect(error).toMatchObject({
      name: 'ConfigError',
      code: 'INVALID_CONFIG',
      reason: 'MISSING_PACKAGE',
      path: 'telemetry.enabled',
    });
    expect(error.message).toContain('install them next to @secret-provider/config');
    expect(error.message).toContain('@secret-provider/opentelemetry');
  });

  it('a provider type whose adapter is not installed is a ConfigError at its entry, naming the package', async () => {
    const error = await loadWithout(
      "{ providers: [{ name: 'm', type: 'memory' }, { name: 'v', type: 'vault', endpoint: 'http://127.0.0.1:9', auth: { method: 'token', token: { env: 'T' } } }] }",
      "{ T: 'not-a-real-token' }",
    );
    expect(error).toMatchObject({
      name: 'ConfigError',
      code: 'INVALID_CONFIG',
      reason: 'MISSING_PACKAGE',
      path: 'providers[1].type',
    });
    expect(error.message).toContain(
      'needs @secret-provider/vault: install it next to @secret-provider/config',
    );
  });
});
