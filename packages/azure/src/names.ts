/**
 * Application keys and Key Vault secret names.
 *
 * Key Vault names match `^[0-9a-zA-Z-]{1,127}$` and are case-insensitive; application keys are
 * free text (`DATABASE_URL`, `db.password`, `db:password`). A {@link KeyVaultNameMapper} turns
 * one into the other and back, so that `keys()` answers in application keys.
 */

/** Key Vault's own rule for secret names. */
export const KEY_VAULT_NAME_PATTERN: RegExp = /^[0-9a-zA-Z-]{1,127}$/;

/** Longest Key Vault secret name. */
export const KEY_VAULT_NAME_MAX_LENGTH = 127;

/**
 * Maps application keys to Key Vault secret names and back.
 *
 * `toVaultName` must return a valid Key Vault name (see {@link KEY_VAULT_NAME_PATTERN}) or throw;
 * `fromVaultName` returns the application key a vault name stands for, or `undefined` when the
 * name is not one this mapper produces (such names are left out of `keys()`, with a warning).
 * A mapper should be injective: when two application keys land on one vault name (Key Vault
 * ignores case), the provider reports a name collision instead of mixing them up.
 */
export interface KeyVaultNameMapper {
  toVaultName(key: string): string;
  fromVaultName(name: string): string | undefined;
}

/** Thrown by a mapper for a key it cannot map; the provider turns it into `INVALID_KEY`. */
export class UnmappableKeyError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'UnmappableKeyError';
  }
}

const ESCAPES: Readonly<Record<string, string>> = { '-': 'h', '.': 'd', ':': 'c', '/': 's', _: 'u' };
const UNESCAPES: Readonly<Record<string, string>> = { h: '-', d: '.', c: ':', s: '/', u: '_' };
const ALNUM = /[0-9a-zA-Z]/;
const PLAIN = /^[0-9a-zA-Z]+$/;
const UTF8 = new TextDecoder('utf-8', { fatal: false });

/**
 * The default mapping: readable for the usual keys, reversible for every key.
 *
 * | application key          | Key Vault name      |
 * |--------------------------|---------------------|
 * | letters and digits       | themselves          |
 * | `_`                      | `-`                 |
 * | `-`                      | `--h`               |
 * | `.`                      | `--d`               |
 * | `:`                      | `--c`               |
 * | `/`                      | `--s`               |
 * | `_` right after a `_`    | `--u`               |
 * | any other character      | `--x` + 2 hex digits per UTF-8 byte |
 *
 * So `DATABASE_URL` is `DATABASE-URL`, `db.password` is `db--dpassword`, `db:password` is
 * `db--cpassword`, `api-key` is `api--hkey`, and a vault name `my-secret` reads back as the key
 * `my_secret`. Decoding reads a run of one dash as `_`, two as an escape and three as `_` plus
 * an escape; a name that does not decode, or decodes to a key that would not encode back to
 * it, is not this mapping's and is reported rather than guessed.
 *
 * Key Vault ignores case, so keys that differ only in case (`DATABASE_URL`, `database_url`)
 * name one secret: the provider reports that as a collision.
 */
export const defaultNameMapper: KeyVaultNameMapper = Object.freeze({
  toVaultName(key: string): string {
    let out = '';
    let previousBare = false;
    for (const char of key) {
      if (ALNUM.test(char)) {
        out += char;
        previousBare = false;
      } else if (char === '_' && !previousBare) {
        out += '-';
        previousBare = true;
      } else {
        const code = ESCAPES[char];
        if (code !== undefined) {
          out += `--${code}`;
        } else {
          for (const byte of Buffer.from(char, 'utf8')) out += `--x${byte.toString(16).padStart(2, '0')}`;
        }
        previousBare = false;
      }
    }
    if (out.length > KEY_VAULT_NAME_MAX_LENGTH) {
      throw new UnmappableKeyError(
        `maps to a Key Vault name of ${out.length} characters, at most ${KEY_VAULT_NAME_MAX_LENGTH} allowed`,
      );
    }
    return out;
  },

  fromVaultName(name: string): string | undefined {
    if (!KEY_VAULT_NAME_PATTERN.test(name)) return undefined;
    if (PLAIN.test(name)) return name;
    const bytes: number[] = [];
    let i = 0;
    while (i < name.length) {
      const char = name[i] as string;
      if (char !== '-') {
        bytes.push(char.charCodeAt(0));
        i++;
        continue;
      }
      let run = 0;
      while (name[i + run] === '-') run++;
      i += run;
      if (run === 1) {
        bytes.push(0x5f);
        continue;
      }
      if (run > 3) return undefined;
      if (run === 3) bytes.push(0x5f);
      const code = name[i]?.toLowerCase();
      if (code === undefined) return undefined;
      i++;
      if (code === 'x') {
        const hex = name.slice(i, i + 2);
        if (!/^[0-9a-fA-F]{2}$/.test(hex)) return undefined;
        bytes.push(Number.parseInt(hex, 16));
        i += 2;
        continue;
      }
      const decoded = UNESCAPES[code];
      if (decoded === undefined) return undefined;
      bytes.push(decoded.charCodeAt(0));
    }
    const key = UTF8.decode(Uint8Array.from(bytes));
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters cannot be keys
    if (key.length === 0 || /[\u0000-\u001f\u007f\ufffd]/.test(key)) return undefined;
    // Only the canonical spelling of a key decodes, so no two vault names read as one key.
    let canonical: string;
    try {
      canonical = defaultNameMapper.toVaultName(key);
    } catch {
      return undefined;
    }
    return canonical.toLowerCase() === name.toLowerCase() ? key : undefined;
  },
});

/**
 * Keys are Key Vault names already (`api-key` is `api-key`); any other key is rejected with
 * `INVALID_KEY`. For vaults whose names were chosen by hand with dashes.
 */
export const identityNameMapper: KeyVaultNameMapper = Object.freeze({
  toVaultName(key: string): string {
    if (!KEY_VAULT_NAME_PATTERN.test(key)) {
      throw new UnmappableKeyError('is not a Key Vault name (1-127 of 0-9, a-z, A-Z and -)');
    }
    return key;
  },
  fromVaultName(name: string): string | undefined {
    return KEY_VAULT_NAME_PATTERN.test(name) ? name : undefined;
  },
});
