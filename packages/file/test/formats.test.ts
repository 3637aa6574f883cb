import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isSecretError } from '@secret-provider/core';
import { FileProvider, parseDotenv } from '@secret-provider/file';
import { tempDir } from '@secret-provider/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { atomicWriterUpdate } from './helpers.js';

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

function open(options: ConstructorParameters<typeof FileProvider>[0]): FileProvider {
  const provider = new FileProvider({ checkPermissions: false, ...options });
  providers.push(provider);
  return provider;
}

const reveal = async (provider: FileProvider, key: string) => (await provider.get(key)).reveal();

describe('JSON files', () => {
  it('addresses nested objects by dotted paths and lists leaves', async () => {
    const path = join(dir, 'secrets.json');
    writeFileSync(
      path,
      JSON.stringify({ db: { password: 'pw', port: 5432, tls: true }, api: 'k', none: null, list: [1, 2] }),
    );
    const provider = open({ path });
    expect(provider.format).toBe('json');
    expect(await reveal(provider, 'db.password')).toBe('pw');
    expect(await reveal(provider, 'db.port')).toBe('5432');
    expect(await reveal(provider, 'db.tls')).toBe('true');
    expect(await reveal(provider, 'list')).toBe('[1,2]');
    expect((await provider.keys()).sort()).toEqual(['api', 'db.password', 'db.port', 'db.tls', 'list']);
    await expect(provider.get('db')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(provider.get('none')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('flat mode uses top-level names as they are', async () => {
    const path = join(dir, 'flat.json');
    writeFileSync(path, JSON.stringify({ 'db.password': 'pw', nested: { a: 1 } }));
    const provider = open({ path, jsonKeys: 'flat' });
    expect(await reveal(provider, 'db.password')).toBe('pw');
    expect(await reveal(provider, 'nested')).toBe('{"a":1}');
  });

  it('writes nested keys into objects, keeps the rest of the document, and prunes on delete', async () => {
    const path = join(dir, 'app.json');
    writeFileSync(path, JSON.stringify({ keep: { me: 1 }, db: { user: 'u' } }));
    const provider = open({ path });
    await provider.set('db.password', 'pw');
    await provider.set('new.deep.key', 'v');
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({
      keep: { me: 1 },
      db: { user: 'u', password: 'pw' },
      new: { deep: { key: 'v' } },
    });
    await provider.delete('new.deep.key');
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({
      keep: { me: 1 },
      db: { user: 'u', password: 'pw' },
    });
    await expect(provider.set('db.user.x', 'v')).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(provider.set('db', 'v')).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(await reveal(provider, 'db.user')).toBe('u');
  });

  it('creates the file (and its directory) on the first set', async () => {
    const path = join(dir, 'sub', 'new.json');
    const provider = open({ path });
    await expect(provider.get('a')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await provider.keys()).toEqual([]);
    await provider.set('a', 'b');
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ a: 'b' });
  });

  it('sees changes made by others between reads (no watch)', async () => {
    const path = join(dir, 'live.json');
    writeFileSync(path, JSON.stringify({ a: '1' }));
    const provider = open({ path });
    expect(await reveal(provider, 'a')).toBe('1');
    writeFileSync(path, JSON.stringify({ a: '2', b: '3' }));
    expect(await reveal(provider, 'a')).toBe('2');
    expect(await provider.keys()).toEqual(['a', 'b']);
  });

  it('check-and-set writes only over the expected version', async () => {
    const path = join(dir, 'cas.json');
    const provider = open({ path });
    await provider.set('k', 'v1', { ifVersion: null });
    await expect(provider.set('k', 'v2', { ifVersion: null })).rejects.toMatchObject({ code: 'CONFLICT' });
    const { version } = await provider.metadata('k');
    await provider.set('k', 'v2', { ifVersion: version });
    await expect(provider.set('k', 'v3', { ifVersion: version })).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(await reveal(provider, 'k')).toBe('v2');
  });
});

describe('.env files', () => {
  it('parses quotes, export, comments, escapes and multi-line values', async () => {
    const path = join(dir, '.env');
    writeFileSync(
      path,
      [
        '# comment',
        'PLAIN=value',
        'export EXPORTED=yes',
        'SPACED =  padded value   # a comment',
        'HASH=pa#ss',
        'QUOTED_HASH="pa#ss"',
        "SINGLE='lit\\n $eral'",
        'DOUBLE="line1\\nline2 \\t \'q\'"',
        'MULTI="first',
        'second"',
        'BACKTICK=`it\'s "both"`',
        'EMPTY=',
        'COLON: yes',
        'PLAIN=later wins',
        '',
      ].join('\r\n'),
    );
    const provider = open({ path });
    expect(provider.format).toBe('env');
    expect(await reveal(provider, 'PLAIN')).toBe('later wins');
    expect(await reveal(provider, 'EXPORTED')).toBe('yes');
    expect(await reveal(provider, 'SPACED')).toBe('padded value');
    // As dotenv reads it: an unquoted `#` starts a comment; double quotes expand `\n` (and `\r`) only.
    expect(await reveal(provider, 'HASH')).toBe('pa');
    expect(await reveal(provider, 'QUOTED_HASH')).toBe('pa#ss');
    expect(await reveal(provider, 'SINGLE')).toBe('lit\\n $eral');
    expect(await reveal(provider, 'DOUBLE')).toBe("line1\nline2 \\t 'q'");
    expect(await reveal(provider, 'MULTI')).toBe('first\nsecond');
    expect(await reveal(provider, 'BACKTICK')).toBe('it\'s "both"');
    expect(await reveal(provider, 'EMPTY')).toBe('');
    expect(await reveal(provider, 'COLON')).toBe('yes');
  });

  it('edits in place: keeps comments and order, replaces the definition, round-trips any value', async () => {
    const path = join(dir, 'app.env');
    writeFileSync(path, '# header\nA=1\nexport B=2\n# trailer\n');
    const provider = open({ path });
    const tricky = [
      'it\'s "quoted" \\ # not a comment',
      'multi\nline\r\nvalue\t',
      'ends with backslash\\',
      ' spaced ',
      '',
      'ünïcødé ✓',
    ];
    for (const [i, value] of tricky.entries()) await provider.set(`T${i}`, value);
    await provider.set('B', 'two');
    await provider.delete('A');
    const text = readFileSync(path, 'utf8');
    expect(text.startsWith('# header\nexport B=two\n# trailer\nT0=')).toBe(true);
    const fresh = open({ path });
    for (const [i, value] of tricky.entries()) expect(await reveal(fresh, `T${i}`)).toBe(value);
    expect(parseDotenv(text).get('T0')).toBe(tricky[0]);
  });

  it('is detected by name: .env, .env.local, prod.env', () => {
    for (const name of ['.env', '.env.local', 'prod.env'])
      expect(open({ path: join(dir, name) }).format).toBe('env');
  });
});

describe('directories of files', () => {
  it('reads one key per file, strips one trailing newline by default, skips ..entries and sub-directories', async () => {
    writeFileSync(join(dir, 'db_password'), 'pw\n');
    writeFileSync(join(dir, 'two_newlines'), 'x\n\n');
    writeFileSync(join(dir, 'crlf'), 'y\r\n');
    writeFileSync(join(dir, '..hidden'), 'no');
    mkdirSync(join(dir, 'subdir'));
    const provider = open({ path: dir });
    expect(provider.format).toBe('directory');
    expect(await reveal(provider, 'db_password')).toBe('pw');
    expect(await reveal(provider, 'two_newlines')).toBe('x\n');
    expect(await reveal(provider, 'crlf')).toBe('y');
    expect(await provider.keys()).toEqual(['crlf', 'db_password', 'two_newlines']);
    await expect(provider.get('subdir')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('trailingNewline keep and strip-all', async () => {
    writeFileSync(join(dir, 'k'), 'v\n\n');
    expect(await reveal(open({ path: dir, trailingNewline: 'keep' }), 'k')).toBe('v\n\n');
    expect(await reveal(open({ path: dir, trailingNewline: 'strip-all' }), 'k')).toBe('v');
  });

  it('writes one file per key and reads every value back exactly', async () => {
    const provider = open({ path: join(dir, 'new-dir') });
    const values = ['plain', 'ends with newline\n', 'two\n\n', '', 'crlf\r\n'];
    for (const [i, value] of values.entries()) await provider.set(`k${i}`, value);
    for (const [i, value] of values.entries()) expect(await reveal(provider, `k${i}`)).toBe(value);
    expect(readFileSync(join(dir, 'new-dir', 'k0'), 'utf8')).toBe('plain');
    await provider.delete('k0');
    await expect(provider.get('k0')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(provider.delete('k0')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('follows a Kubernetes volume through ..data and treats it as read-only', async () => {
    atomicWriterUpdate(dir, { username: 'admin', password: 'pw1' });
    const provider = open({ path: dir });
    expect(await reveal(provider, 'password')).toBe('pw1');
    expect(await provider.keys()).toEqual(['password', 'username']);
    expect(provider.capabilities.write).toBe(false);
    await expect(provider.set('password', 'x')).rejects.toMatchObject({ code: 'READ_ONLY' });
    atomicWriterUpdate(dir, { password: 'pw2', token: 't' });
    expect(await reveal(provider, 'password')).toBe('pw2');
    expect(await provider.keys()).toEqual(['password', 'token']);
  });

  it('reads Docker-style secrets that are links to elsewhere, where that is allowed', async () => {
    mkdirSync(join(dir, 'store'));
    mkdirSync(join(dir, 'run'));
    writeFileSync(join(dir, 'store', 'real'), 'linked\n');
    symlinkSync(join(dir, 'store', 'real'), join(dir, 'run', 'api_key'));
    symlinkSync(join(dir, 'store', 'missing'), join(dir, 'run', 'dangling'));
    const provider = open({ path: join(dir, 'run'), allowLinksInto: join(dir, 'store') });
    expect(await reveal(provider, 'api_key')).toBe('linked');
    expect(await provider.keys()).toEqual(['api_key']);
    // Links out of the directory are refused unless their target's root is allowed.
    const strict = open({ path: join(dir, 'run') });
    await expect(strict.get('api_key')).rejects.toMatchObject({ code: 'ACCESS_DENIED' });
    expect(await strict.keys()).toEqual([]);
  });

  it('refuses a path that exists but has no recognisable format, unless told', () => {
    writeFileSync(join(dir, 'secrets.txt'), 'x');
    let error: unknown;
    try {
      open({ path: join(dir, 'secrets.txt') });
    } catch (e) {
      error = e;
    }
    expect(isSecretError(error, 'INVALID_CONFIG')).toBe(true);
    expect(open({ path: join(dir, 'secrets.txt'), format: 'env' }).format).toBe('env');
  });
});
