import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { isSecretError, ReadOnlyError } from '@secret-provider/core';
import { type EnvObject, EnvProvider, PROVIDER_NAME } from '@secret-provider/env';
import { expectNoLeak, rejection, tempDir } from '@secret-provider/testing';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const reveal = async (provider: EnvProvider, key: string) => (await provider.get(key)).reveal();
const codeOf = (error: unknown) =>
  isSecretError(error) ? error.code : `not a SecretError: ${String(error)}`;

describe('EnvProvider: selecting variables', () => {
  const env: EnvObject = {
    APP_DB_URL: 'db-secret-1',
    APP_TOKEN: 'token-secret-2',
    PATH: '/usr/bin',
    HOME: '/root',
  };

  it('is named "env" by default', () => {
    expect(new EnvProvider({ env, all: true }).name).toBe(PROVIDER_NAME);
    expect(PROVIDER_NAME).toBe('env');
  });

  it('strips the prefix by default and exposes only prefixed variables', async () => {
    const provider = new EnvProvider({ env, prefix: 'APP_' });
    expect(await reveal(provider, 'DB_URL')).toBe('db-secret-1');
    expect((await provider.keys()).sort()).toEqual(['DB_URL', 'TOKEN']);
    expect(codeOf(await rejection(provider.get('PATH')))).toBe('NOT_FOUND');
    expect(codeOf(await rejection(provider.get('APP_DB_URL')))).toBe('NOT_FOUND');
  });

  it('keeps the prefix in keys when stripPrefix is false', async () => {
    const provider = new EnvProvider({ env, prefix: 'APP_', stripPrefix: false });
    expect(await reveal(provider, 'APP_TOKEN')).toBe('token-secret-2');
    expect((await provider.keys()).sort()).toEqual(['APP_DB_URL', 'APP_TOKEN']);
    expect(codeOf(await rejection(provider.get('TOKEN')))).toBe('NOT_FOUND');
    expect(codeOf(await rejection(provider.get('HOME')))).toBe('NOT_FOUND');
  });

  it('exposes only allow-listed keys, applied after the prefix is stripped', async () => {
    const allowOnly = new EnvProvider({ env, allow: ['APP_TOKEN', 'MISSING'] });
    expect(await allowOnly.keys()).toEqual(['APP_TOKEN']);
    expect(codeOf(await rejection(allowOnly.get('APP_DB_URL')))).toBe('NOT_FOUND');
    const combined = new EnvProvider({ env, prefix: 'APP_', allow: ['DB_URL'] });
    expect(await combined.keys()).toEqual(['DB_URL']);
    expect(await reveal(combined, 'DB_URL')).toBe('db-secret-1');
    expect(codeOf(await rejection(combined.get('TOKEN')))).toBe('NOT_FOUND');
  });

  it('maps variable names to keys with a function, leaving out what it rejects', async () => {
    const provider = new EnvProvider({
      env,
      prefix: 'APP_',
      map: (name) => (name === 'TOKEN' ? undefined : name.toLowerCase().replaceAll('_', '.')),
    });
    expect(await provider.keys()).toEqual(['db.url']);
    expect(await reveal(provider, 'db.url')).toBe('db-secret-1');
    expect(codeOf(await rejection(provider.get('TOKEN')))).toBe('NOT_FOUND');
    expect(codeOf(await rejection(provider.get('token')))).toBe('NOT_FOUND');
  });

  it('lists the whole environment only with all: true', async () => {
    const all = new EnvProvider({ env, all: true });
    expect((await all.keys()).sort()).toEqual(['APP_DB_URL', 'APP_TOKEN', 'HOME', 'PATH']);
    expect(all.capabilities.list).toBe(true);
  });

  it('without a selection reads any variable but refuses to list them', async () => {
    const open = new EnvProvider({ env });
    expect(await reveal(open, 'PATH')).toBe('/usr/bin');
    expect(open.capabilities.list).toBe(false);
    const error = await rejection(open.keys());
    expect(codeOf(error)).toBe('UNSUPPORTED');
    expect((error as Error).message).toMatch(/prefix, allow, map or all: true/);
  });

  it('reads own variables only, never inherited properties of a plain object', async () => {
    const provider = new EnvProvider({ env: { A: '1' } });
    for (const key of ['toString', '__proto__', 'constructor', 'hasOwnProperty']) {
      expect(codeOf(await rejection(provider.get(key)))).toBe('NOT_FOUND');
      expect(provider.has(key)).toBe(false);
    }
  });

  it('reads process.env by default', async () => {
    const name = `SP_ENV_TEST_${process.pid}`;
    process.env[`${name}_KEY`] = 'from-process-env';
    try {
      const provider = new EnvProvider({ prefix: `${name}_` });
      expect(await reveal(provider, 'KEY')).toBe('from-process-env');
      expect(await provider.keys()).toEqual(['KEY']);
    } finally {
      delete process.env[`${name}_KEY`];
    }
  });

  it('rejects contradictory or malformed options with INVALID_CONFIG', () => {
    const attempts: Array<() => unknown> = [
      () => new EnvProvider({ env, prefix: '' }),
      () => new EnvProvider({ env, all: true, prefix: 'APP_' }),
      () => new EnvProvider({ env, allow: 'APP_TOKEN' as unknown as string[] }),
      () => new EnvProvider({ env, map: 'lower' as unknown as (name: string) => string }),
      () => new EnvProvider({ env, all: true, pollInterval: 0 }),
      () => new EnvProvider({ env, all: true, debounce: -1 }),
      () => new EnvProvider({ env, all: true, files: [''] }),
    ];
    for (const attempt of attempts) {
      let error: unknown;
      try {
        attempt();
      } catch (caught) {
        error = caught;
      }
      expect(codeOf(error)).toBe('INVALID_CONFIG');
    }
  });

  it('answers has() synchronously without an error for a missing key', () => {
    const provider = new EnvProvider({ env, prefix: 'APP_' });
    expect(provider.has('TOKEN')).toBe(true);
    expect(provider.has('PATH')).toBe(false);
  });

  it('rejects has() of a key that cannot name a variable with INVALID_KEY', async () => {
    const provider = new EnvProvider({ env, prefix: 'APP_' });
    expect(codeOf(await rejection(Promise.resolve(provider.has(''))))).toBe('INVALID_KEY');
  });

  it('rejects every call after close with CLOSED, has() included', async () => {
    const provider = new EnvProvider({ env, prefix: 'APP_' });
    await provider.close();
    await provider.close();
    expect(codeOf(await rejection(provider.get('TOKEN')))).toBe('CLOSED');
    expect(codeOf(await rejection(provider.keys()))).toBe('CLOSED');
    expect(codeOf(await rejection(Promise.resolve(provider.has('TOKEN'))))).toBe('CLOSED');
  });
});

describe('EnvProvider: .env files', () => {
  let dir: string;
  let remove: () => void;
  beforeEach(async () => {
    ({ dir, remove } = tempDir('env-provider-'));
  });
  afterEach(async () => {
    await remove();
  });

  it('lets the real environment win over files, and later files over earlier ones', async () => {
    await writeFile(join(dir, '.env'), 'APP_A=file-a\nAPP_B=file-b\nAPP_C=file-c\n');
    await writeFile(join(dir, '.env.local'), 'APP_B=local-b\n');
    const env: EnvObject = { APP_C: 'env-c' };
    const provider = new EnvProvider({
      env,
      prefix: 'APP_',
      files: [join(dir, '.env'), join(dir, '.env.local')],
    });
    expect(await reveal(provider, 'A')).toBe('file-a');
    expect(await reveal(provider, 'B')).toBe('local-b');
    expect(await reveal(provider, 'C')).toBe('env-c');
    expect((await provider.keys()).sort()).toEqual(['A', 'B', 'C']);
    // Files are read into the provider, never copied into the environment.
    expect(env).toEqual({ APP_C: 'env-c' });
  });

  it('lets files win over the environment with override: true', async () => {
    await writeFile(join(dir, '.env'), 'APP_C=file-c\n');
    const provider = new EnvProvider({
      env: { APP_C: 'env-c', APP_D: 'env-d' },
      prefix: 'APP_',
      files: join(dir, '.env'),
      override: true,
    });
    expect(await reveal(provider, 'C')).toBe('file-c');
    expect(await reveal(provider, 'D')).toBe('env-d');
  });

  it('says where a value comes from in metadata tags, and versions by fingerprint', async () => {
    await writeFile(join(dir, '.env'), 'APP_A=same-value\nAPP_B=other-value\n');
    const provider = new EnvProvider({
      env: { APP_E: 'same-value' },
      prefix: 'APP_',
      files: join(dir, '.env'),
    });
    const fromFile = await provider.metadata('A');
    const fromEnv = await provider.metadata('E');
    expect(fromFile.tags).toEqual({ source: 'file', variable: 'APP_A', file: join(dir, '.env') });
    expect(fromEnv.tags).toEqual({ source: 'environment', variable: 'APP_E' });
    expect(fromFile.version).toBe(fromEnv.version);
    expect((await provider.metadata('B')).version).not.toBe(fromFile.version);
    expect((await provider.get('A')).metadata?.version).toBe(fromFile.version);
    expectNoLeak([fromFile, fromEnv], ['same-value', 'other-value']);
  });

  it('parses with dotenv: quotes, escaped newlines, export and comments', async () => {
    await writeFile(
      join(dir, '.env'),
      [
        '# comment',
        'export APP_A=plain # trailing',
        "APP_B='single quoted'",
        'APP_C="line1\\nline2"',
        '',
      ].join('\n'),
    );
    const provider = new EnvProvider({ env: {}, prefix: 'APP_', files: join(dir, '.env') });
    expect(await reveal(provider, 'A')).toBe('plain');
    expect(await reveal(provider, 'B')).toBe('single quoted');
    expect(await reveal(provider, 'C')).toBe('line1\nline2');
  });

  it('skips lines it cannot parse without failing or showing them', async () => {
    const garbage = 'this line is not a variable secret-garbage-123';
    await writeFile(join(dir, '.env'), `${garbage}\nAPP_OK=fine\n\u0000\u0001binary\n`);
    const provider = new EnvProvider({ env: {}, all: true, files: join(dir, '.env') });
    expect(await reveal(provider, 'APP_OK')).toBe('fine');
    expect(await provider.keys()).toEqual(['APP_OK']);
  });

  it('ignores a missing file unless files are required', async () => {
    const missing = join(dir, 'nope.env');
    const lenient = new EnvProvider({ env: { APP_A: 'a' }, prefix: 'APP_', files: missing });
    expect(await reveal(lenient, 'A')).toBe('a');
    const strict = new EnvProvider({
      env: { APP_A: 'a' },
      prefix: 'APP_',
      files: missing,
      requireFiles: true,
    });
    const error = await rejection(strict.get('A'));
    expect(codeOf(error)).toBe('INVALID_CONFIG');
    expect((error as Error).message).toContain(missing);
  });

  it('reports an unreadable file with a typed error that names the path only', async () => {
    const path = join(dir, '.env');
    await mkdir(path);
    const provider = new EnvProvider({ env: {}, prefix: 'APP_', files: path });
    const error = await rejection(provider.get('A'));
    expect(isSecretError(error)).toBe(true);
    expect((error as Error).message).toContain(path);
    expect(JSON.stringify(error)).toContain('EISDIR');
  });

  it('re-reads the files on reload()', async () => {
    const path = join(dir, '.env');
    await writeFile(path, 'APP_A=one\n');
    const provider = new EnvProvider({ env: {}, prefix: 'APP_', files: path });
    expect(await reveal(provider, 'A')).toBe('one');
    await writeFile(path, 'APP_A=two\n');
    expect(await reveal(provider, 'A')).toBe('one');
    await provider.reload();
    expect(await reveal(provider, 'A')).toBe('two');
  });

  it('answers has() with a promise until the files are loaded, then synchronously', async () => {
    await writeFile(join(dir, '.env'), 'APP_A=one\n');
    const provider = new EnvProvider({ env: {}, prefix: 'APP_', files: join(dir, '.env') });
    const first = provider.has('A');
    expect(first).toBeInstanceOf(Promise);
    expect(await first).toBe(true);
    expect(provider.has('A')).toBe(true);
    expect(provider.has('B')).toBe(false);
  });
});

describe('EnvProvider: writes', () => {
  it('is read-only by default: set rejects with READ_ONLY and changes nothing', async () => {
    const env: EnvObject = { APP_A: 'a' };
    const provider = new EnvProvider({ env, prefix: 'APP_' });
    expect(provider.capabilities).toMatchObject({ write: false, delete: false });
    const error = await rejection(provider.set('A', 'new-secret-value'));
    expect(error).toBeInstanceOf(ReadOnlyError);
    expect(codeOf(error)).toBe('READ_ONLY');
    expectNoLeak([error], ['new-secret-value']);
    expect(codeOf(await rejection(provider.delete('A')))).toBe('UNSUPPORTED');
    expect(env).toEqual({ APP_A: 'a' });
  });

  it('writes and deletes variables of the injected object when writable', async () => {
    const env: EnvObject = {};
    const provider = new EnvProvider({ env, prefix: 'APP_', writable: true });
    expect(provider.capabilities).toMatchObject({ write: true, delete: true });
    await provider.set('A', 'written');
    expect(env).toEqual({ APP_A: 'written' });
    expect(await reveal(provider, 'A')).toBe('written');
    await provider.delete('A');
    expect(env).toEqual({});
    expect(codeOf(await rejection(provider.delete('A')))).toBe('NOT_FOUND');
  });

  it('supports check-and-set by version', async () => {
    const provider = new EnvProvider({ env: {}, prefix: 'APP_', writable: true });
    await provider.set('A', 'v1', { ifVersion: null });
    expect(codeOf(await rejection(provider.set('A', 'v2', { ifVersion: null })))).toBe('CONFLICT');
    const { version } = await provider.metadata('A');
    expect(codeOf(await rejection(provider.set('A', 'v2', { ifVersion: 'stale' })))).toBe('CONFLICT');
    await provider.set('A', 'v2', { ifVersion: version });
    expect(await reveal(provider, 'A')).toBe('v2');
  });

  it('refuses keys it could not read back', async () => {
    const env: EnvObject = {};
    const allowOnly = new EnvProvider({ env, allow: ['A'], writable: true });
    expect(codeOf(await rejection(allowOnly.set('B', 'x')))).toBe('INVALID_KEY');
    expect(codeOf(await rejection(allowOnly.set('A=B', 'x')))).toBe('INVALID_KEY');
    const unstripped = new EnvProvider({ env, prefix: 'APP_', stripPrefix: false, writable: true });
    expect(codeOf(await rejection(unstripped.set('OTHER', 'x')))).toBe('INVALID_KEY');
    expect(env).toEqual({});
  });

  it('with a map function updates existing variables only', async () => {
    const env: EnvObject = { APP_DB_URL: 'old' };
    const provider = new EnvProvider({ env, prefix: 'APP_', map: (n) => n.toLowerCase(), writable: true });
    await provider.set('db_url', 'new');
    expect(env).toEqual({ APP_DB_URL: 'new' });
    expect(codeOf(await rejection(provider.set('fresh', 'x')))).toBe('INVALID_KEY');
  });

  it('will not write a variable that a file overrides, nor delete a file value', async () => {
    const { dir, remove } = tempDir('env-provider-');
    try {
      await writeFile(join(dir, '.env'), 'APP_F=from-file\n');
      const overriding = new EnvProvider({
        env: {},
        prefix: 'APP_',
        files: join(dir, '.env'),
        override: true,
        writable: true,
      });
      expect(codeOf(await rejection(overriding.set('F', 'x')))).toBe('CONFLICT');
      const env: EnvObject = {};
      const plain = new EnvProvider({ env, prefix: 'APP_', files: join(dir, '.env'), writable: true });
      expect(codeOf(await rejection(plain.delete('F')))).toBe('READ_ONLY');
      // Writing the environment covers the file value (the environment wins by default).
      await plain.set('F', 'from-env');
      expect(await reveal(plain, 'F')).toBe('from-env');
      await plain.delete('F');
      expect(await reveal(plain, 'F')).toBe('from-file');
    } finally {
      await remove();
    }
  });
});

describe('EnvProvider: nothing shows values', () => {
  it('keeps values out of errors, metadata, inspect and JSON of the provider', async () => {
    const values = ['hunter2-secret-value', 'db-password-xyz'];
    const provider = new EnvProvider({
      env: { APP_A: values[0], APP_B: values[1] },
      prefix: 'APP_',
      writable: false,
    });
    const things: unknown[] = [
      provider,
      inspect(provider),
      await provider.metadata('A'),
      await provider.get('A'),
      await rejection(provider.set('A', values[0] as string)),
      await rejection(provider.get('MISSING')),
    ];
    expectNoLeak(things, values);
  });
});

describe('EnvProvider: option names shared with the other packages', () => {
  it('readOnly: false allows writes; capabilities say so per instance', async () => {
    const env: EnvObject = {};
    const writable = new EnvProvider({ env, prefix: 'APP_', readOnly: false });
    expect(writable.capabilities).toMatchObject({ write: true, delete: true, list: true, checkAndSet: true });
    await writable.set('A', 'x');
    expect(env).toEqual({ APP_A: 'x' });
    const readOnly = new EnvProvider({ env, prefix: 'APP_' });
    expect(readOnly.capabilities).toMatchObject({ write: false, delete: false, checkAndSet: false });
    const unlisted = new EnvProvider({ env, readOnly: true });
    expect(unlisted.capabilities.list).toBe(false);
  });

  it('writable and debounce are deprecated aliases: they work and warn once each, with a SECRET_PROVIDER_ code', async () => {
    // A fresh copy of the module: earlier tests of this file have drawn the warnings already.
    vi.resetModules();
    const { EnvProvider: Fresh } = await import('@secret-provider/env');
    const warnings: Array<Error & { code?: string }> = [];
    const listener = (warning: Error & { code?: string }) => warnings.push(warning);
    process.on('warning', listener);
    try {
      const env: EnvObject = {};
      new Fresh({ env, all: true, writable: true, debounce: 5 });
      new Fresh({ env, all: true, writable: true, debounce: 5 });
      const provider = new Fresh({ env, all: true, writable: true });
      await provider.set('A', 'v');
      expect(env).toEqual({ A: 'v' });
      await new Promise((resolve) => setTimeout(resolve, 10));
    } finally {
      process.off('warning', listener);
    }
    expect(warnings.map((w) => [w.name, w.code])).toEqual([
      ['DeprecationWarning', 'SECRET_PROVIDER_DEPRECATED_OPTION'],
      ['DeprecationWarning', 'SECRET_PROVIDER_DEPRECATED_OPTION'],
    ]);
    expect(warnings.map((w) => w.message).join('\n')).toMatch(
      /"writable".*"readOnly"[\s\S]*"debounce".*"debounceMs"/,
    );
  });

  it('an option and its deprecated alias that disagree are INVALID_CONFIG', () => {
    for (const options of [
      { readOnly: true, writable: true },
      { debounceMs: 10, debounce: 20 },
    ]) {
      let error: unknown;
      try {
        new EnvProvider({ env: {}, all: true, ...options });
      } catch (caught) {
        error = caught;
      }
      expect(codeOf(error)).toBe('INVALID_CONFIG');
    }
    expect(() => new EnvProvider({ env: {}, all: true, readOnly: false, writable: true })).not.toThrow();
  });

  it('debounceMs is validated like debounce was', () => {
    let error: unknown;
    try {
      new EnvProvider({ env: {}, all: true, debounceMs: -1 });
    } catch (caught) {
      error = caught;
    }
    expect(codeOf(error)).toBe('INVALID_CONFIG');
  });
});
