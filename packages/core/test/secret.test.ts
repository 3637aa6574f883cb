import { format, inspect } from 'node:util';
import { serialize } from 'node:v8';
import { REDACTED, Secret, SecretError } from '@secret-provider/core';
import { describe, expect, it } from 'vitest';

const VALUE = 'hunter2-correct-horse-battery';

/** Every path through which Node code commonly turns a value into text. */
const leakPaths: Array<[string, (s: Secret) => unknown]> = [
  ['String()', (s) => String(s)],
  ['template literal', (s) => `${s}`],
  ['+ concatenation', (s) => `x${s}`],
  ['toString()', (s) => s.toString()],
  ['valueOf()', (s) => s.valueOf()],
  [
    'Symbol.toPrimitive (number hint)',
    (s) => (s as unknown as { [Symbol.toPrimitive](h: string): unknown })[Symbol.toPrimitive]('number'),
  ],
  ['JSON.stringify', (s) => JSON.stringify(s)],
  ['JSON.stringify nested deep', (s) => JSON.stringify({ a: [{ b: { c: [s] } }] })],
  ['util.inspect', (s) => inspect(s)],
  [
    'util.inspect at depth in objects',
    (s) => inspect({ a: { b: { c: { d: { e: s } } } } }, { depth: Infinity }),
  ],
  ['util.inspect showHidden', (s) => inspect(s, { showHidden: true, depth: Infinity, getters: true })],
  ['util.inspect of an array of secrets', (s) => inspect([s, s], { depth: Infinity })],
  ['util.format %s', (s) => format('%s', s)],
  ['util.format %o', (s) => format('%o', s)],
  ['util.format %O', (s) => format('%O', s)],
  ['util.format %j', (s) => format('%j', s)],
  ['util.format without placeholders', (s) => format('value', s)],
  ['structuredClone', (s) => inspect(structuredClone(s), { depth: Infinity, showHidden: true })],
  ['v8.serialize', (s) => serialize(s).toString('latin1')],
  ['v8.serialize nested', (s) => serialize({ nested: [s] }).toString('latin1')],
  ['spread', (s) => inspect({ ...s }, { depth: Infinity })],
  ['Object.assign', (s) => JSON.stringify(Object.assign({}, s))],
  ['Object.entries', (s) => JSON.stringify(Object.entries(s))],
  ['Object.values', (s) => JSON.stringify(Object.values(s))],
  [
    'Object.getOwnPropertyNames values',
    (s) =>
      Object.getOwnPropertyNames(s)
        .map((n) => String((s as never)[n]))
        .join(),
  ],
  ['Reflect.ownKeys', (s) => Reflect.ownKeys(s).map(String).join()],
  ['error message embedding it', (s) => new Error(`failed with ${s}`).message],
  ['error cause, inspected', (s) => inspect(new Error('failed', { cause: s }), { depth: Infinity })],
  ['error cause, stack', (s) => new Error('failed', { cause: s }).stack],
  ['AggregateError of it', (s) => inspect(new AggregateError([s], 'many'), { depth: Infinity })],
  ['console.log-style formatting', (s) => format('%s %o', 'db password', { password: s })],
  ['Map and Set', (s) => inspect(new Map([['k', s]])) + inspect(new Set([s]))],
  ['Array join', (s) => [s, s].join(',')],
];

describe('Secret<T> redaction matrix', () => {
  for (const [path, show] of leakPaths) {
    it(`shows no value through ${path}`, () => {
      const secret = new Secret(VALUE);
      const shown = String(show(secret));
      expect(shown).not.toContain(VALUE);
      expect(shown).not.toContain('hunter2');
    });
  }

  it('shows the redacted label where a label is shown', () => {
    const secret = new Secret(VALUE);
    expect(String(secret)).toBe(REDACTED);
    expect(JSON.stringify({ secret })).toBe(`{"secret":"${REDACTED}"}`);
    expect(inspect(secret)).toContain(REDACTED);
    expect(format('%s|%j', secret, secret)).toBe(`${REDACTED}|"${REDACTED}"`);
    expect({ ...secret }.redacted).toBe(REDACTED);
    expect((structuredClone(secret) as { redacted: string }).redacted).toBe(REDACTED);
  });

  it('reveals the value only through reveal()', () => {
    expect(new Secret(VALUE).reveal()).toBe(VALUE);
  });

  it('keeps bytes out of every path too', () => {
    const bytes = new TextEncoder().encode(VALUE);
    const secret = new Secret(bytes);
    for (const [, show] of leakPaths) {
      const shown = String(show(secret as unknown as Secret));
      expect(shown).not.toContain(VALUE);
      expect(shown).not.toContain(Array.from(bytes.slice(0, 6)).join(','));
    }
  });

  it('wipes a Uint8Array on dispose and refuses to reveal afterwards', () => {
    const bytes = new TextEncoder().encode(VALUE);
    {
      using secret = new Secret(bytes);
      expect(secret.reveal()).toBe(bytes);
    }
    expect(bytes.every((b) => b === 0)).toBe(true);
    const disposed = new Secret('x');
    disposed.dispose();
    expect(disposed.disposed).toBe(true);
    expect(() => disposed.reveal()).toThrowError(expect.objectContaining({ code: 'DISPOSED' }));
  });

  it('compares in constant time without revealing, across lengths and types', () => {
    const secret = new Secret(VALUE);
    expect(secret.equals(VALUE)).toBe(true);
    expect(secret.equals(new Secret(VALUE))).toBe(true);
    expect(secret.equals(`${VALUE}!`)).toBe(false);
    expect(secret.equals('short')).toBe(false);
    expect(Secret.equals(new Secret(new TextEncoder().encode(VALUE)), VALUE)).toBe(true);
  });

  it('maps into a new Secret without exposing the value to callers', () => {
    const json = new Secret('{"password":"p4ss-w0rd-x"}');
    const password = json.map((text) => (JSON.parse(text) as { password: string }).password);
    expect(password.reveal()).toBe('p4ss-w0rd-x');
    expect(String(password)).toBe(REDACTED);
  });

  it('does not let a failing transform leak the value through its error', () => {
    const secret = new Secret('not-json-hunter2');
    let thrown: unknown;
    try {
      secret.map((text) => JSON.parse(text) as string);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ code: 'INVALID_VALUE' });
    expect(inspect(thrown, { depth: Infinity })).not.toContain('hunter2');
  });

  it('rejects values that are neither strings nor bytes with a typed error', () => {
    expect(() => new Secret(42 as unknown as string)).toThrowError(SecretError);
  });

  it('is recognised across copies by its brand', () => {
    expect(Secret.isSecret(new Secret('x'))).toBe(true);
    expect(Secret.isSecret({ redacted: REDACTED })).toBe(false);
  });
});
