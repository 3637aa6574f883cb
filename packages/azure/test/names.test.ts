import { randomInt } from 'node:crypto';
import {
  defaultNameMapper,
  identityNameMapper,
  KEY_VAULT_NAME_PATTERN,
  UnmappableKeyError,
} from '@secret-provider/azure';
import { describe, expect, it } from 'vitest';

const { toVaultName, fromVaultName } = defaultNameMapper;

describe('defaultNameMapper', () => {
  it.each([
    ['DATABASE_URL', 'DATABASE-URL'],
    ['db.password', 'db--dpassword'],
    ['db:password', 'db--cpassword'],
    ['api-key', 'api--hkey'],
    ['billing/stripe', 'billing--sstripe'],
    ['__init__', '---uinit---u'],
    ['a_.b', 'a---db'],
    ['a._b', 'a--d-b'],
    ['trailing_', 'trailing-'],
    ['clé', 'cl--xc3--xa9'],
    ['a b', 'a--x20b'],
    ['x', 'x'],
  ])('maps %j to %j and back', (key, name) => {
    expect(toVaultName(key)).toBe(name);
    expect(KEY_VAULT_NAME_PATTERN.test(name)).toBe(true);
    expect(fromVaultName(name)).toBe(key);
  });

  it('reads a hand-made dashed name as underscores, and ignores the case of escapes', () => {
    expect(fromVaultName('my-secret')).toBe('my_secret');
    expect(fromVaultName('DB--Dpassword')).toBe('DB.password');
    expect(fromVaultName('cl--XC3--XA9')).toBe('clé');
  });

  it.each([
    ['a----b', 'four dashes'],
    ['a--zb', 'unknown escape'],
    ['a--', 'escape without code'],
    ['a--x4', 'short hex'],
    ['a--ub', 'non-canonical underscore (the canonical spelling is a-b)'],
    ['a--x41', 'non-canonical hex for a letter'],
    ['a--x00', 'control character'],
    ['a--xff', 'invalid UTF-8'],
    ['under_score', 'not a Key Vault name'],
    ['', 'empty'],
  ])('does not decode %j (%s)', (name) => {
    expect(fromVaultName(name)).toBeUndefined();
  });

  it('round-trips random keys and never maps two keys to one name', () => {
    const alphabet = ['a', 'Z', '0', '9', '_', '-', '.', ':', '/', ' ', 'é', '€', '😀', '@', '#', '%'];
    const names = new Map<string, string>();
    for (let i = 0; i < 5_000; i++) {
      const length = 1 + randomInt(12);
      let key = '';
      for (let j = 0; j < length; j++) key += alphabet[randomInt(alphabet.length)];
      let name: string;
      try {
        name = toVaultName(key);
      } catch (error) {
        expect(error).toBeInstanceOf(UnmappableKeyError);
        continue;
      }
      expect(KEY_VAULT_NAME_PATTERN.test(name), `${key} -> ${name}`).toBe(true);
      expect(fromVaultName(name), `${key} -> ${name}`).toBe(key);
      const other = names.get(name);
      expect(other === undefined || other === key, `${key} and ${other} -> ${name}`).toBe(true);
      names.set(name, key);
    }
  });

  it('rejects keys whose name would pass 127 characters', () => {
    expect(toVaultName('a'.repeat(127))).toHaveLength(127);
    expect(() => toVaultName('a'.repeat(128))).toThrow(UnmappableKeyError);
    expect(() => toVaultName('.'.repeat(43))).toThrow(/129 characters/);
  });
});

describe('identityNameMapper', () => {
  it('passes Key Vault names through and rejects anything else', () => {
    expect(identityNameMapper.toVaultName('api-key')).toBe('api-key');
    expect(identityNameMapper.fromVaultName('api-key')).toBe('api-key');
    expect(() => identityNameMapper.toVaultName('DATABASE_URL')).toThrow(UnmappableKeyError);
  });
});
