import { InvalidKeyError } from './errors.js';

/** A key that may name one field of a structured secret: `name#field`. */
export interface FieldAddress {
  /** The secret without the field (`app/db`): what backends, caches and events group by. */
  readonly base: string;
  /** One field of the secret, or the whole secret when absent. */
  readonly field: string | undefined;
}

/**
 * Splits `name#field` at the first `#` (a secret name cannot hold one; a field name may).
 * @throws {InvalidKeyError} for an empty field name (`name#`). The message does not quote the key:
 *   a caller may have passed a value by mistake.
 */
export function splitFieldKey(key: string, provider: string): FieldAddress {
  const hash = key.indexOf('#');
  if (hash < 0) return { base: key, field: undefined };
  const field = key.slice(hash + 1);
  if (field === '') throw new InvalidKeyError({ provider }, 'invalid key: empty field name after "#"');
  return { base: key.slice(0, hash), field };
}

/**
 * The value of `field` in `data` as text: a string as is, anything else as its JSON. Own fields
 * only (`#__proto__` or `#toString` of a secret without such a field is missing); a `null` or
 * absent field is `undefined`.
 */
export function pickField(data: Readonly<Record<string, unknown>>, field: string): string | undefined {
  if (!Object.hasOwn(data, field)) return undefined;
  const value = data[field];
  if (value === undefined || value === null) return undefined;
  return typeof value === 'string' ? value : JSON.stringify(value);
}
