import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expectNoLeak, tempDir } from '@secret-provider/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BIN,
  built,
  documentOf,
  outputs,
  PACKAGE_BIN,
  runBin,
  runInTty,
  writeConfig,
  writeSecretFile,
} from './run-bin.js';

// The built bin on real files: validate, init, schema, refusals, and terminal output (colour,
// spinner) in a pseudo-terminal made by util-linux `script`.

const LITERAL = 'hvs.CAESIliteralTokenValue0123456789abcdef';
const FILE_VALUE = 'volume-value-Kp4sW9xR2m';
let temp: { dir: string; remove: () => void };
let n = 0;
const fresh = () => {
  const dir = join(temp.dir, `case-${n++}`);
  mkdirSync(dir);
  return dir;
};

const hasScript = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

beforeAll(() => {
  expect(built(), 'build the packages first (pnpm build)').toBe(true);
  temp = tempDir('secret-provider-cli-local-');
  mkdirSync(join(temp.dir, 'volume'));
  writeSecretFile(join(temp.dir, 'volume'), 'app-key', FILE_VALUE);
});
afterAll(() => temp?.remove());

const volumeConfig = () => ({
  providers: [
    { name: 'env', type: 'env', prefix: 'APP_' },
    { name: 'files', type: 'file', path: join(temp.dir, 'volume'), format: 'directory' },
  ],
});

describe('validate', () => {
  it('a valid configuration: exit 0', async () => {
    const cwd = fresh();
    writeConfig(cwd, volumeConfig());
    const run = await runBin(['validate'], { cwd });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('✓ config valid');
  });

  it('a literal token, an unknown field, a loose file and a shadowed variable: exit 1, each at its path', async () => {
    const cwd = fresh();
    const tokenFile = writeSecretFile(cwd, 'token', 't', 0o644);
    writeConfig(cwd, {
      providers: [
        {
          name: 'v',
          type: 'vault',
          endpoint: 'http://a:8200',
          auth: { method: 'approle', roleId: LITERAL, secretId: { file: tokenFile } },
        },
        { name: 'e', type: 'env', colour: 'blue' },
      ],
    });
    const run = await runBin(['validate', '--json'], { cwd, env: { VAULT_ADDR: 'http://b:8200' } });
    expect(run.code).toBe(1);
    const byPath = Object.fromEntries(
      documentOf(run).results.map((r) => [r.data?.path, [r.data?.code, r.outcome]]),
    );
    expect(byPath).toMatchObject({
      'providers[0].auth.roleId': ['LITERAL_SECRET', 'local'],
      'providers[0].auth.secretId': ['FILE_MODE', 'local'],
      'providers[1].colour': ['UNKNOWN_FIELD', 'local'],
      'providers[0].endpoint': ['SHADOWED_ENV', 'warn'],
    });
  });

  it('a configuration file readable by others: exit 1', async () => {
    const cwd = fresh();
    writeSecretFile(cwd, 'secret-provider.config.json', JSON.stringify(volumeConfig()), 0o644);
    const run = await runBin(['validate', '--json'], { cwd });
    expect(run.code).toBe(1);
    expect(documentOf(run).results[0]).toMatchObject({ data: { code: 'FILE_MODE', path: '' } });
  });

  it('broken JSON: exit 1, with a position and without the text', async () => {
    const cwd = fresh();
    writeSecretFile(cwd, 'secret-provider.config.json', `{"providers": [${LITERAL}]}`);
    const run = await runBin(['validate'], { cwd });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/is not valid JSON/);
  });
});

describe('init and schema', () => {
  it('init writes a 0600 template that validates once its variable is set, and never overwrites without --force', async () => {
    const cwd = fresh();
    expect((await runBin(['init'], { cwd })).code).toBe(0);
    const file = join(cwd, 'secret-provider.config.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    writeFileSync(file, '{"providers":[{"name":"mine","type":"memory"}]}');
    const again = await runBin(['init'], { cwd });
    expect(again.code).toBe(1);
    expect(again.stdout).toContain('--force');
    expect(readFileSync(file, 'utf8')).toContain('mine');
    expect((await runBin(['init', '--force'], { cwd })).code).toBe(0);
    expect(readFileSync(file, 'utf8')).toContain('"vault"');
    const validate = await runBin(['validate', '--json'], { cwd, env: { VAULT_TOKEN: 'x' } });
    expect(validate.code).toBe(0);
  });

  it('schema prints the published schema', async () => {
    const run = await runBin(['schema'], { cwd: temp.dir });
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).title).toBe('secret-provider configuration');
  });
});

describe('no secret on the command line', () => {
  it.each([
    [['check', '--token', 'abc']],
    [['check', '--vault-password=abc']],
    [['can-i', 'get', LITERAL]],
    [['explain', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl']],
  ])('%j is refused with exit 1, and not repeated', async (args) => {
    const run = await runBin(args, { cwd: temp.dir });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/refused/);
    expectNoLeak([run.stdout, run.stderr], [LITERAL, 'abc', 'eyJzdWIiOiIxIn0']);
  });

  it('runs through a bin link (as package managers install it), and not when imported', async () => {
    const link = join(fresh(), 'secret-provider');
    symlinkSync(PACKAGE_BIN, link);
    const help = execFileSync(process.execPath, [link, '--help'], { encoding: 'utf8' });
    expect(help).toContain('Usage: secret-provider');
    const imported = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(BIN)}); console.log(typeof m.main)`,
      ],
      { encoding: 'utf8' },
    );
    expect(imported.trim()).toBe('function');
  });

  it('usage errors exit 1; --json usage errors are one document', async () => {
    expect((await runBin(['frobnicate'], { cwd: temp.dir })).code).toBe(1);
    const run = await runBin(['can-i', 'fly', 'x', '--json'], { cwd: temp.dir });
    expect(run.code).toBe(1);
    expect(documentOf(run)).toMatchObject({ ok: false, exitCode: 1, error: { code: 'USAGE' } });
  });
});

describe('terminal output', () => {
  it('piped: no colour and no spinner; FORCE_COLOR turns colour on; NO_COLOR keeps it off', async () => {
    const cwd = fresh();
    writeConfig(cwd, volumeConfig());
    const plain = await runBin(['check'], { cwd });
    expect(plain.code).toBe(0);
    expect(plain.stdout).not.toContain('\u001b[');
    expect(plain.stdout).toMatch(/^✓ files readable: 1 key/m);
    const forced = await runBin(['check'], { cwd, env: { FORCE_COLOR: '1' } });
    expect(forced.stdout).toContain('\u001b[32m✓\u001b[0m files readable');
    const none = await runBin(['check'], { cwd, env: { NO_COLOR: '1' } });
    expect(none.stdout).not.toContain('\u001b[');
  });

  it.skipIf(!hasScript)(
    'in a pseudo-terminal: colour and a spinner that is cleared before each line',
    async () => {
      const cwd = fresh();
      writeConfig(cwd, volumeConfig());
      const run = await runInTty(['check'], { cwd });
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('\u001b[32m✓\u001b[0m files readable');
      // The spinner draws a frame naming what runs, and erases it ("\r" + clear line) before output.
      expect(run.stdout).toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] (env|files)/);
      expect(run.stdout).toContain('\r\u001b[2K');
    },
  );

  it.skipIf(!hasScript)(
    'in a pseudo-terminal under CI: colour, no spinner; NO_COLOR: neither colour',
    async () => {
      const cwd = fresh();
      writeConfig(cwd, volumeConfig());
      const ci = await runInTty(['check'], { cwd, env: { CI: 'true' } });
      expect(ci.code).toBe(0);
      expect(ci.stdout).not.toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/);
      expect(ci.stdout).toContain('\u001b[32m');
      const noColour = await runInTty(['check'], { cwd, env: { CI: 'true', NO_COLOR: '1' } });
      expect(noColour.stdout).not.toContain('\u001b[3');
    },
  );

  it.skipIf(!hasScript)(
    '--json in a pseudo-terminal is the one document, with no spinner or colour',
    async () => {
      const cwd = fresh();
      writeConfig(cwd, volumeConfig());
      const run = await runInTty(['check', '--json'], { cwd });
      expect(run.code).toBe(0);
      expect(JSON.parse(run.stdout.replaceAll('\r\n', '\n'))).toMatchObject({ command: 'check', ok: true });
    },
  );
});

describe('keys and explain on real files', () => {
  it('names and sources, never values', async () => {
    const cwd = fresh();
    writeConfig(cwd, volumeConfig());
    const keys = await runBin(['keys'], { cwd, env: { APP_TOKEN: LITERAL } });
    expect(keys.code).toBe(0);
    expect(keys.stdout).toContain('files keys: app-key');
    const explain = await runBin(['explain', 'app-key', '--json'], { cwd });
    expect(documentOf(explain)).toMatchObject({ servedBy: 'files' });
    const missing = await runBin(['explain', 'nothing-here'], { cwd });
    expect(missing.code).toBe(1);
    expect(missing.stdout).toContain('no provider has it');
  });
});

describe('leak scan', () => {
  it('no output of any run above holds a value', () => {
    expect(outputs.length).toBeGreaterThan(20);
    expectNoLeak(outputs, [LITERAL, FILE_VALUE], { encodings: true });
  });
});
