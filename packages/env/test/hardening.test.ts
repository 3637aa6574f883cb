// Inherited names (`__proto__`, `constructor`, `toString`, `hasOwnProperty`) are variables like
// any other, in the environment object and in `.env` files: never stored nowhere, never dropped.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isSecretError } from '@secret-provider/core';
import { type EnvObject, EnvProvider } from '@secret-provider/env';
import { rejection, tempDir } from '@secret-provider/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const NAMES = ['__proto__', 'constructor', 'toString', 'hasOwnProperty'];
const reveal = async (provider: EnvProvider, key: string) => (await provider.get(key)).reveal();

let dir: string;
let remove: () => void;
beforeEach(() => {
  ({ dir, remove } = tempDir('env-hardening-'));
});
afterEach(() => remove());

describe('inherited names', () => {
  it('set() stores them as variables of the environment object, readable, listed and deletable', async () => {
    const env: EnvObject = {};
    const provider = new EnvProvider({ env, all: true, readOnly: false });
    for (const name of NAMES) {
      await provider.set(name, `value-of-${name}`);
      expect(Object.hasOwn(env, name), name).toBe(true);
      expect(await reveal(provider, name)).toBe(`value-of-${name}`);
      expect(provider.has(name)).toBe(true);
    }
    expect((await provider.keys()).sort()).toEqual([...NAMES].sort());
    expect(Object.getPrototypeOf(env)).toBe(Object.prototype);
    for (const name of NAMES) {
      await provider.delete(name);
      expect(Object.hasOwn(env, name)).toBe(false);
      expect(isSecretError(await rejection(provider.get(name)), 'NOT_FOUND')).toBe(true);
    }
  });

  it('with a prefix too (the name is then APP___proto__ and the like)', async () => {
    const env: EnvObject = {};
    const provider = new EnvProvider({ env, prefix: 'APP_', readOnly: false });
    await provider.set('__proto__', 'p');
    expect(env.APP___proto__).toBe('p');
    expect(await reveal(provider, '__proto__')).toBe('p');
  });

  it('.env lines that define them are read, never dropped', async () => {
    const path = join(dir, '.env');
    writeFileSync(path, NAMES.map((name) => `${name}=file-${name}`).join('\n'));
    const provider = new EnvProvider({ env: {}, all: true, files: path });
    for (const name of NAMES) expect(await reveal(provider, name)).toBe(`file-${name}`);
    expect((await provider.keys()).sort()).toEqual([...NAMES].sort());
    expect((await provider.metadata('__proto__')).tags).toEqual({
      source: 'file',
      variable: '__proto__',
      file: path,
    });
  });

  it('an environment object that refuses a variable makes set() reject with INVALID_KEY', async () => {
    const env = Object.freeze({}) as EnvObject;
    const provider = new EnvProvider({ env, all: true, readOnly: false });
    expect(isSecretError(await rejection(provider.set('A', 'v')), 'INVALID_KEY')).toBe(true);
  });
});
