import { isSecretError } from '@secret-provider/core';
import { encodePath, parseKey } from '@secret-provider/vault';
import { describe, expect, it } from 'vitest';
import { compilePattern, listStarts } from '../src/addressing.js';

const mounts = new Map<string, 1 | 2>([
  ['secret', 2],
  ['kv', 1],
]);

describe('key addressing', () => {
  it('splits mount, path and field on KV mounts', () => {
    expect(parseKey('secret/app/db#password', mounts, 'vault')).toEqual({
      kind: 'kv',
      key: 'secret/app/db#password',
      base: 'secret/app/db',
      mount: 'secret',
      version: 2,
      path: 'app/db',
      field: 'password',
    });
    expect(parseKey('kv/app', mounts, 'vault')).toMatchObject({
      kind: 'kv',
      version: 1,
      path: 'app',
      field: undefined,
    });
    // Only the first '#' separates the field.
    expect(parseKey('secret/x#a#b', mounts, 'vault')).toMatchObject({ base: 'secret/x', field: 'a#b' });
  });

  it('reads other paths as they are (dynamic engines)', () => {
    expect(parseKey('database/creds/app#username', mounts, 'vault')).toEqual({
      kind: 'logical',
      key: 'database/creds/app#username',
      base: 'database/creds/app',
      path: 'database/creds/app',
      field: 'username',
    });
  });

  it('refuses keys that cannot name a secret, without quoting them', () => {
    for (const bad of [
      'kv',
      '/secret/x',
      'secret/x/',
      'secret//x',
      'secret/../sys',
      'secret/./x',
      'secret/x#',
      '#field',
    ]) {
      let error: unknown;
      try {
        parseKey(bad, mounts, 'vault');
      } catch (e) {
        error = e;
      }
      expect(isSecretError(error, 'INVALID_KEY'), bad).toBe(true);
      expect((error as Error).message).not.toContain(bad);
    }
  });

  it('percent-encodes each segment so a key cannot change the request', () => {
    expect(encodePath('app/a b/c?d=1&e#f%')).toBe('app/a%20b/c%3Fd%3D1%26e%23f%25');
    expect(encodePath('app/')).toBe('app/');
  });

  it('finds the folders to list for a prefix', () => {
    expect(listStarts(undefined, mounts)).toEqual([
      { mount: 'secret', version: 2, folder: '' },
      { mount: 'kv', version: 1, folder: '' },
    ]);
    expect(listStarts('secret/app/d', mounts)).toEqual([{ mount: 'secret', version: 2, folder: 'app/' }]);
    expect(listStarts('secret/app/', mounts)).toEqual([{ mount: 'secret', version: 2, folder: 'app/' }]);
    expect(listStarts('se', mounts)).toEqual([{ mount: 'secret', version: 2, folder: '' }]);
    expect(listStarts('database/creds/', mounts)).toEqual([]);
    expect(listStarts('secret/../', mounts)).toEqual([]);
  });

  it('matches refresh patterns: * within a segment, ** across', () => {
    const one = compilePattern('secret/app/*');
    expect(one.test('secret/app/db')).toBe(true);
    expect(one.test('secret/app/db/x')).toBe(false);
    const any = compilePattern('secret/**');
    expect(any.test('secret/app/db/x')).toBe(true);
    expect(any.test('kv/x')).toBe(false);
    expect(compilePattern('secret/a.b').test('secret/aXb')).toBe(false);
  });
});
