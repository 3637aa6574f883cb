import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidConfigError, InvalidKeyError, isSecretError, type WarningEvent } from '@secret-provider/core';
import { FileProvider, type FileProviderOptions, InsecurePermissionsError } from '@secret-provider/file';
import { expectNoLeak, pause, record, rejection, tempDir, waitFor } from '@secret-provider/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { secretValue } from './helpers.js';

let dir: string;
let remove: () => void;
const providers: FileProvider[] = [];

beforeEach(() => {
  ({ dir, remove } = tempDir('file-provider-'));
});
afterEach(async () => {
  await Promise.all(providers.splice(0).map((p) => p.close()));
  remove();
});

function open(options: FileProviderOptions): FileProvider {
  const provider = new FileProvider(options);
  providers.push(provider);
  return provider;
}

describe('file permissions', () => {
  it('warns once when a secrets file is readable by group or others, not when it is 0600', async () => {
    const path = join(dir, 'loose.json');
    writeFileSync(path, '{"k":"v"}');
    chmodSync(path, 0o644);
    const provider = open({ path });
    const { events } = await record(provider);
    const warnings = () => events.filter((e) => e.type === 'warning').map((e) => e.event as WarningEvent);
    await waitFor(() => warnings().length > 0, 2_000, 'a warning');
    expect(warnings()[0]).toMatchObject({ code: 'INSECURE_PERMISSIONS', provider: 'file' });
    expect(warnings()[0]?.message).toContain('0644');
    expect(warnings()[0]?.message).toContain(path);
    writeFileSync(path, '{"k":"v2"}');
    await pause(150);
    expect(warnings()).toHaveLength(1);
    expect((await provider.get('k')).reveal()).toBe('v2');

    const tight = join(dir, 'tight.json');
    writeFileSync(tight, '{"k":"v"}', { mode: 0o600 });
    chmodSync(tight, 0o600);
    const quiet = open({ path: tight });
    const recorded = await record(quiet);
    await pause(100);
    expect(recorded.events.filter((e) => e.type === 'warning')).toEqual([]);
  });

  it('strict mode refuses a loose file with a typed error', async () => {
    const path = join(dir, '.env');
    writeFileSync(path, 'K=v\n');
    chmodSync(path, 0o640);
    const provider = open({ path, strict: true });
    const error = await rejection(provider.get('K'));
    expect(error).toBeInstanceOf(InsecurePermissionsError);
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect((error as InsecurePermissionsError).mode & 0o777).toBe(0o640);
    chmodSync(path, 0o600);
    expect((await provider.get('K')).reveal()).toBe('v');
  });

  it('directories: warns for a loose directory and loose key files; strict refuses the loose key', async () => {
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'ok'), 'fine', { mode: 0o600 });
    writeFileSync(join(dir, 'loose'), 'no', { mode: 0o644 });
    chmodSync(join(dir, 'loose'), 0o644);
    const provider = open({ path: dir });
    const { events } = await record(provider);
    const keysWarned = events.filter((e) => e.type === 'warning').map((e) => (e.event as WarningEvent).key);
    expect(keysWarned.sort()).toEqual(['loose', undefined].sort());

    chmodSync(dir, 0o700);
    const strict = open({ path: dir, strict: true });
    expect((await strict.get('ok')).reveal()).toBe('fine');
    expect(isSecretError(await rejection(strict.get('loose')), 'INVALID_CONFIG')).toBe(true);
    chmodSync(dir, 0o755);
    expect(await rejection(strict.keys())).toBeInstanceOf(InsecurePermissionsError);
  });

  it('checkPermissions: false turns the check off', async () => {
    const path = join(dir, 'x.json');
    writeFileSync(path, '{}');
    chmodSync(path, 0o666);
    const provider = open({ path, checkPermissions: false, strict: true });
    expect(await provider.keys()).toEqual([]);
  });
});

describe('keys that would escape', () => {
  it('directory format rejects traversal, absolute paths, separators, reserved names and NUL', async () => {
    mkdirSync(join(dir, 'secrets'));
    const provider = open({ path: join(dir, 'secrets'), checkPermissions: false });
    for (const key of [
      '../x',
      '../../etc/passwd',
      '/etc/passwd',
      'a/b',
      'a\\b',
      '..data',
      '..',
      '.',
      'a\u0000b',
      'x'.repeat(300),
    ]) {
      const calls = [
        () => provider.get(key),
        () => provider.set(key, 'v'),
        () => provider.delete(key),
        () => provider.metadata(key),
      ];
      for (const call of calls) {
        const error = await rejection(call());
        expect(error, key).toBeInstanceOf(InvalidKeyError);
        // The key is not echoed: a caller may have passed a value by mistake.
        if (key.length > 2) expect((error as Error).message).not.toContain(key);
      }
    }
    expect(readdirSync(dir)).toEqual(['secrets']);
    expect(readdirSync(join(dir, 'secrets'))).toEqual([]);
    expect(existsSync('/etc/passwd.tmp')).toBe(false);
  });

  it('JSON and .env formats reject keys they cannot hold', async () => {
    const json = open({ path: join(dir, 'a.json'), checkPermissions: false });
    for (const key of ['a..b', '.a', 'a.', '__proto__', 'a.__proto__.b', 'constructor']) {
      expect(await rejection(json.set(key, 'v')), key).toBeInstanceOf(InvalidKeyError);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const env = open({ path: join(dir, '.env'), checkPermissions: false });
    for (const key of ['A B', 'A=B', 'A\nB=x', 'A#', '../x', '/abs']) {
      expect(await rejection(env.set(key, 'v')), key).toBeInstanceOf(InvalidKeyError);
    }
    expect(existsSync(join(dir, '.env'))).toBe(false);
  });
});

describe('no value leaks through parse errors', () => {
  it('an unparsable JSON file rejects reads with a positioned message and no content', async () => {
    const secret = secretValue('hunter2');
    const cases: Array<[string, string]> = [
      ['plain.json', secret],
      ['quoted.json', `{"password": "${secret}",}`],
      ['tail.json', `{"a": 1} ${secret}`],
    ];
    const errors: unknown[] = [];
    for (const [name, content] of cases) {
      const path = join(dir, name);
      writeFileSync(path, content, { mode: 0o600 });
      const provider = open({ path, checkPermissions: false });
      const error = await rejection(provider.get('password'));
      expect(isSecretError(error, 'INVALID_VALUE'), name).toBe(true);
      expect((error as Error).message).toContain(path);
      errors.push(
        error,
        (error as Error).cause,
        await rejection(provider.keys()),
        await rejection(provider.set('x', 'y')),
      );
    }
    expect(String((errors[0] as Error).message)).toMatch(/invalid JSON/);
    expect(String((errors[4] as Error).message)).toMatch(/line 1, column/);
    expectNoLeak(errors, [secret, secret.slice(0, 10)]);
  });

  it('a .env line that is not a definition is skipped, as dotenv skips it, and shows nowhere', async () => {
    const secret = secretValue('hunter2');
    const path = join(dir, '.env');
    writeFileSync(path, `GOOD=1\n${secret}\n`, { mode: 0o600 });
    const provider = open({ path, checkPermissions: false });
    const { events } = await record(provider);
    expect((await provider.get('GOOD')).reveal()).toBe('1');
    expect(await provider.keys()).toEqual(['GOOD']);
    const missing = await rejection(provider.get('password'));
    expect(isSecretError(missing, 'NOT_FOUND')).toBe(true);
    await provider.set('NEXT', 'v');
    expect((await provider.get('NEXT')).reveal()).toBe('v');
    expectNoLeak([missing, ...events.map((e) => e.event)], [secret]);
  });
});
