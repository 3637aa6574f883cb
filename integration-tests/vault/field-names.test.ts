import { isSecretError } from '@secret-provider/core';
import { rejection } from '@secret-provider/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Setup, setup, trackUnhandledRejections } from './helpers.js';

// Field names that are also names of Object.prototype's members are ordinary field names: missing
// when the secret has no such field, stored and read like any other when it has.

trackUnhandledRejections({ beforeAll, afterAll });

let current: Setup | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

const INHERITED = [
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  'valueOf',
  'toString.x',
  '__proto__.x',
];

async function kv(): Promise<Setup> {
  current = await setup({ watch: false });
  current.double.kvPut('secret', 'app', { value: 'v', other: 'o' });
  return current;
}

describe('inherited names as KV field names', () => {
  it('are missing (NOT_FOUND) when the secret has no such field', async () => {
    const s = await kv();
    for (const name of INHERITED) {
      const error = await rejection(s.provider.get(`secret/app#${name}`));
      expect(isSecretError(error, 'NOT_FOUND'), name).toBe(true);
    }
  });

  it('are written and read back like any field, next to the others', async () => {
    const s = await kv();
    for (const [i, name] of INHERITED.entries()) await s.provider.set(`secret/app#${name}`, `value-${i}`);
    for (const [i, name] of INHERITED.entries())
      expect((await s.provider.get(`secret/app#${name}`)).reveal(), name).toBe(`value-${i}`);
    expect((await s.provider.get('secret/app#other')).reveal()).toBe('o');
    const whole = JSON.parse((await s.provider.get('secret/app')).reveal()) as Record<string, unknown>;
    for (const name of INHERITED) expect(Object.hasOwn(whole, name), name).toBe(true);
  });

  it('written by another client, are read as fields', async () => {
    const s = await kv();
    s.double.kvPut('secret', 'raw', JSON.parse('{"__proto__":"p","constructor":"c"}'));
    expect((await s.provider.get('secret/raw#__proto__')).reveal()).toBe('p');
    expect((await s.provider.get('secret/raw#constructor')).reveal()).toBe('c');
    // Writing a field next to them keeps them (the whole secret is written back).
    await s.provider.set('secret/raw#added', 'a');
    expect(s.double.call('GET', 'secret/data/raw').body).toMatchObject({
      data: { data: JSON.parse('{"__proto__":"p","constructor":"c","added":"a"}') },
    });
    const stored = (s.double.call('GET', 'secret/data/raw').body as { data: { data: object } }).data.data;
    expect(Object.keys(stored).sort()).toEqual(['__proto__', 'added', 'constructor']);
  });

  it('keep a custom-metadata tag named __proto__ as a tag', async () => {
    const s = await kv();
    s.double.call(
      'POST',
      'secret/metadata/app',
      JSON.parse('{"custom_metadata":{"__proto__":"x","team":"a"}}'),
    );
    const tags = (await s.provider.metadata('secret/app')).tags ?? {};
    expect(Object.hasOwn(tags, '__proto__')).toBe(true);
    expect(Object.entries(tags)).toEqual([
      ['__proto__', 'x'],
      ['team', 'a'],
    ]);
  });
});
