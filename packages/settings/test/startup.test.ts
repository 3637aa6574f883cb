// "Fail fast at boot": loadSettingsOrExit in a real process, its exit code and what it prints.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '@secret-provider/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleFixture, runScript } from './helpers.js';

const fixture = fileURLToPath(new URL('./fixtures/boot.ts', import.meta.url));
const PASSWORD = 'short-hunter2';
const LEVEL = 'verbose-s3cr3t';
const HOST = 'db.internal.example';
const GOOD_PASSWORD = 'a-long-enough-password-0123';

let workDir: { dir: string; remove: () => void };
let script: string;

beforeAll(async () => {
  workDir = tempDir('settings-boot-');
  script = join(workDir.dir, 'boot.mjs');
  await bundleFixture(fixture, script);
}, 60_000);

afterAll(() => workDir?.remove());

function boot(env: Record<string, string>) {
  return runScript(script, env);
}

function expectNoValueIn(text: string): void {
  for (const value of [PASSWORD, LEVEL, HOST, GOOD_PASSWORD, 'hunter2', 's3cr3t']) {
    expect(text.includes(value), 'a value was printed').toBe(false);
  }
}

describe('loadSettingsOrExit', () => {
  it('prints every problem to stderr, with field names and codes and no value, and exits 1', () => {
    const { status, stdout, stderr } = boot({
      APP_PORT: '',
      APP_DB_PASSWORD: PASSWORD,
      APP_LOG_LEVEL: LEVEL,
      APP_DB_HOST: HOST,
    });
    expect(status).toBe(1);
    expect(stdout).not.toContain('started');
    const lines = stderr.trim().split('\n');
    expect(lines[0]).toBe('settings "boot": cannot start, 3 problems (values are not shown):');
    // `APP_PORT=` reaches z.coerce.number() as 0 unless emptyStringAsUndefined is on.
    expect(stderr).toContain('port (key "PORT", provider "env"): too_small: minimum 1');
    expect(stderr).toContain('dbPassword (key "DB_PASSWORD", provider "env"): custom');
    expect(stderr).toContain(
      'logLevel (key "LOG_LEVEL", provider "env"): invalid_value: one of "debug" | "info" | "warn"',
    );
    expect(lines).toHaveLength(4);
    expectNoValueIn(stdout + stderr);
  });

  it('names a missing key, and an empty one with emptyStringAsUndefined', () => {
    const { status, stderr } = boot({
      EMPTY_AS_UNDEFINED: '1',
      APP_PORT: '',
      APP_DB_PASSWORD: GOOD_PASSWORD,
      APP_LOG_LEVEL: 'info',
    });
    expect(status).toBe(1);
    expect(stderr).toContain(
      'port (key "PORT", provider "env"): MISSING: the key does not exist or is empty',
    );
    // An object none of whose keys exist: named by the keys it would be read from.
    expect(stderr).toContain('db: invalid_type: expected object (keys "DB_HOST")');
    expect(stderr).toContain('2 problems');
    expectNoValueIn(stderr);
  });

  it('hands the report to a custom reporter, awaits it, and exits with the code asked for', () => {
    const { status, stderr } = boot({
      REPORTER: 'json',
      EXIT_CODE: '78',
      APP_PORT: '8080',
      APP_DB_PASSWORD: PASSWORD,
      APP_LOG_LEVEL: 'info',
      APP_DB_HOST: HOST,
    });
    expect(status).toBe(78);
    expect(JSON.parse(stderr.trim())).toEqual({
      msg: 'invalid settings',
      problems: [{ field: 'dbPassword', key: 'DB_PASSWORD', code: 'custom' }],
    });
    expectNoValueIn(stderr);
  });

  it('starts when the settings are valid', () => {
    const { status, stdout, stderr } = boot({
      APP_PORT: '8080',
      APP_DB_PASSWORD: GOOD_PASSWORD,
      APP_LOG_LEVEL: 'info',
      APP_DB_HOST: HOST,
    });
    expect(stderr).toBe('');
    expect(status).toBe(0);
    expect(stdout.trim()).toBe('started on port 8080, log level info');
  });
});
