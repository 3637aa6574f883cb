// YAML and TOML documents: detection, nested keys like JSON's, in-place writes (YAML keeps its
// comments; TOML is rewritten), parse errors with a position and never the text.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isSecretError } from '@secret-provider/core';
import type { FileProvider } from '@secret-provider/file';
import { expectNoLeak, record, rejection, summary, waitFor } from '@secret-provider/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { providersInTempDir, secretValue, waitForValue } from './helpers.js';

let dir: string;
const open = providersInTempDir('file-yaml-toml-', (made) => {
  dir = made;
});

const reveal = async (provider: FileProvider, key: string) => (await provider.get(key)).reveal();
const codeOf = (error: unknown) =>
  isSecretError(error) ? error.code : `not a SecretError: ${String(error)}`;

describe('YAML', () => {
  it('is detected from .yaml and .yml, and reads nested keys like JSON', async () => {
    expect(open({ path: join(dir, 'a.yml') }).format).toBe('yaml');
    const path = join(dir, 'secrets.yaml');
    writeFileSync(
      path,
      [
        '# database',
        'db:',
        '  password: "p#ss"   # a comment',
        '  port: 5432',
        '  tls: true',
        'api: plain text',
        'list: [1, two]',
        'none: ~',
        'multi: |',
        '  line1',
        '  line2',
        '',
      ].join('\n'),
    );
    const provider = open({ path });
    expect(provider.format).toBe('yaml');
    expect(await reveal(provider, 'db.password')).toBe('p#ss');
    expect(await reveal(provider, 'db.port')).toBe('5432');
    expect(await reveal(provider, 'db.tls')).toBe('true');
    expect(await reveal(provider, 'list')).toBe('[1,"two"]');
    expect(await reveal(provider, 'multi')).toBe('line1\nline2\n');
    expect(codeOf(await rejection(provider.get('none')))).toBe('NOT_FOUND');
    expect(codeOf(await rejection(provider.get('db')))).toBe('NOT_FOUND');
    expect((await provider.keys()).sort()).toEqual([
      'api',
      'db.password',
      'db.port',
      'db.tls',
      'list',
      'multi',
    ]);
    const flat = open({ path, jsonKeys: 'flat' });
    expect(JSON.parse(await reveal(flat, 'db'))).toEqual({ password: 'p#ss', port: 5432, tls: true });
  });

  it('writes in place: comments, order and other keys stay; values read back exactly', async () => {
    const path = join(dir, 'app.yaml');
    writeFileSync(path, '# header\ndb:\n  user: admin # who\n  empty:\nkeep: 1\n');
    const provider = open({ path });
    const tricky = [
      '1e3',
      'true',
      'null',
      '~',
      '# not a comment',
      ' padded ',
      'multi\nline\n',
      'a: b',
      '',
      'it\'s "q"',
    ];
    for (const [i, value] of tricky.entries()) await provider.set(`db.t${i}`, value);
    await provider.set('db.empty.inner', 'filled');
    await provider.set('new.deep.key', 'v');
    const text = readFileSync(path, 'utf8');
    expect(text.startsWith('# header\ndb:\n  user: admin # who\n')).toBe(true);
    const fresh = open({ path });
    for (const [i, value] of tricky.entries()) expect(await reveal(fresh, `db.t${i}`)).toBe(value);
    expect(await reveal(fresh, 'db.empty.inner')).toBe('filled');
    expect(await reveal(fresh, 'keep')).toBe('1');
    await provider.delete('new.deep.key');
    expect(readFileSync(path, 'utf8')).not.toContain('new:');
    expect(readFileSync(path, 'utf8')).toContain('# who');
    expect(codeOf(await rejection(provider.set('db', 'x')))).toBe('CONFLICT');
    expect(codeOf(await rejection(provider.set('keep.x', 'x')))).toBe('CONFLICT');
    expect(codeOf(await rejection(provider.set('__proto__', 'x')))).toBe('INVALID_KEY');
    await provider.set('toString.x', 'own');
    expect(await reveal(provider, 'toString.x')).toBe('own');
  });

  it('creates the file on the first set', async () => {
    const path = join(dir, 'new', 'fresh.yaml');
    const provider = open({ path });
    await provider.set('a.b', 'c');
    expect(readFileSync(path, 'utf8')).toBe('a:\n  b: c\n');
  });

  it('a document that does not parse: line and column, never the text', async () => {
    const secret = secretValue('yaml');
    const errors: unknown[] = [];
    for (const [name, content, line] of [
      ['flow.yaml', `a: 1\nb: [\n  ${secret}\n`, 4],
      ['dup.yaml', `a: ${secret}\na: ${secret}\n`, 2],
      ['tab.yaml', `a:\n\t- ${secret}\n`, 2],
      ['top.yaml', `- ${secret}\n`, undefined],
    ] as const) {
      const path = join(dir, name);
      writeFileSync(path, content);
      const provider = open({ path });
      const error = await rejection(provider.get('a'));
      expect(codeOf(error), name).toBe('INVALID_VALUE');
      if (line !== undefined)
        expect((error as Error).message, name).toMatch(new RegExp(`line ${line}, column \\d+`));
      errors.push(error, await rejection(provider.set('x', 'y')));
      expect(readFileSync(path, 'utf8')).toBe(content);
    }
    expectNoLeak(errors, [secret]);
  });

  it('refuses a document that expands aliases without bound', async () => {
    const path = join(dir, 'bomb.yaml');
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 9; i++) {
      const prev = String.fromCharCode(96 + i);
      const next = String.fromCharCode(97 + i);
      lines.push(`${next}: &${next} [${Array(9).fill(`*${prev}`).join(',')}]`);
    }
    writeFileSync(path, `${lines.join('\n')}\n`);
    const provider = open({ path });
    expect(codeOf(await rejection(provider.get('a')))).toBe('INVALID_VALUE');
  });

  it('is watched like any document: one event per changed key', async () => {
    const path = join(dir, 'watched.yml');
    writeFileSync(path, 'a: 1\nb: 2\n');
    const provider = open({ path });
    const { events } = await record(provider);
    writeFileSync(path, 'a: 1\nb: 3\nc: 4\n');
    await waitForValue(provider, 'b', '3');
    await waitFor(() => summary(events).length >= 2, 5_000, 'events');
    expect(summary(events).sort()).toEqual(['added:c', 'rotated:b']);
  });
});

describe('TOML', () => {
  it('is detected from .toml; tables are nested keys, dates read as ISO 8601', async () => {
    const path = join(dir, 'secrets.toml');
    writeFileSync(
      path,
      [
        '# comment',
        'api = "k"',
        '[db]',
        'password = "p#ss"',
        'port = 5432',
        'when = 1979-05-27T07:32:00Z',
        'hosts = ["a", "b"]',
        '[db.replica]',
        'host = "r"',
        '',
      ].join('\n'),
    );
    const provider = open({ path });
    expect(provider.format).toBe('toml');
    expect(await reveal(provider, 'db.password')).toBe('p#ss');
    expect(await reveal(provider, 'db.port')).toBe('5432');
    expect(await reveal(provider, 'db.when')).toBe('1979-05-27T07:32:00.000Z');
    expect(await reveal(provider, 'db.hosts')).toBe('["a","b"]');
    expect(await reveal(provider, 'db.replica.host')).toBe('r');
    expect((await provider.keys()).sort()).toEqual([
      'api',
      'db.hosts',
      'db.password',
      'db.port',
      'db.replica.host',
      'db.when',
    ]);
  });

  it('writes keep every value (comments are not kept: the document is rewritten)', async () => {
    const path = join(dir, 'app.toml');
    writeFileSync(path, '# gone after a write\n[db]\nuser = "admin"\nport = 5432\n');
    const provider = open({ path });
    await provider.set('db.password', 'multi\nline "quoted" \\ ');
    await provider.set('new.key', 'v');
    const fresh = open({ path });
    expect(await reveal(fresh, 'db.password')).toBe('multi\nline "quoted" \\ ');
    expect(await reveal(fresh, 'db.user')).toBe('admin');
    expect(await reveal(fresh, 'db.port')).toBe('5432');
    await provider.delete('new.key');
    expect(codeOf(await rejection(fresh.get('new.key')))).toBe('NOT_FOUND');
    expect(readFileSync(path, 'utf8')).not.toContain('[new]');
    expect(codeOf(await rejection(provider.set('db', 'x')))).toBe('CONFLICT');
  });

  it('a document that does not parse: line and column, never the text', async () => {
    const secret = secretValue('toml');
    const errors: unknown[] = [];
    for (const [name, content, line] of [
      ['open.toml', `a = "${secret}\n`, 1],
      ['dup.toml', `a = 1\nb = "${secret}"\na = 2\n`, 3],
      ['bare.toml', `ok = 1\n${secret}\n`, 2],
    ] as const) {
      const path = join(dir, name);
      writeFileSync(path, content);
      const provider = open({ path });
      const error = await rejection(provider.get('a'));
      expect(codeOf(error), name).toBe('INVALID_VALUE');
      expect((error as Error).message, name).toMatch(new RegExp(`invalid TOML at line ${line}, column \\d+`));
      errors.push(error, await rejection(provider.set('x', 'y')));
    }
    expectNoLeak(errors, [secret]);
  });
});

describe('randomized round-trip of written values', () => {
  for (const extension of ['yaml', 'toml', 'json']) {
    it(`${extension}: every value set reads back exactly (or is refused, typed, leaving the file)`, async () => {
      const path = join(dir, `round.${extension}`);
      const provider = open({ path });
      let refused = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('a', 'b.c', 'b.d', 'e.f.g'),
          fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 8 })),
          async (key, value) => {
            let before = '';
            try {
              before = readFileSync(path, 'utf8');
            } catch {}
            try {
              await provider.set(key, value);
            } catch (error) {
              expect(codeOf(error)).toBe('INVALID_VALUE');
              expect(readFileSync(path, 'utf8')).toBe(before);
              refused++;
              return;
            }
            expect(await reveal(open({ path }), key)).toBe(value);
          },
        ),
        { seed: 20_260_101, numRuns: 150 },
      );
      expect(refused).toBeLessThan(150);
    }, 60_000);
  }
});
