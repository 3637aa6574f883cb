// Versions must agree across processes that share one backend. Here separate Node processes
// open the same directory: the template bundled once, then run by each child.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tempDir } from '@secret-provider/testing';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VersionedDirProvider } from '../src/index.js';

const run = promisify(execFile);
const work = tempDir('versioned-dir-processes-');
const script = join(work.dir, 'child.mjs');

// A child opens the directory and runs one command: `version KEY`, `set KEY VALUE [IF_VERSION]`,
// or `race KEY N` (N concurrent writes); it prints what it saw as JSON.
const CHILD = `
import { VersionedDirProvider } from './template.mjs';
const [root, command, key, arg, ifVersion] = process.argv.slice(2);
const provider = new VersionedDirProvider({ root });
let result;
try {
  if (command === 'version') result = (await provider.metadata(key)).version;
  else if (command === 'set') {
    await provider.set(key, arg, ifVersion === undefined ? {} : { ifVersion });
    result = (await provider.metadata(key)).version;
  } else if (command === 'race')
    await Promise.all(Array.from({ length: Number(arg) }, (_, i) => provider.set(key, process.pid + '-' + i)));
} catch (error) {
  result = { code: error.code };
}
await provider.close();
console.log(JSON.stringify(result ?? null));
`;

beforeAll(async () => {
  await build({
    entryPoints: [fileURLToPath(new URL('../src/index.ts', import.meta.url))],
    outfile: join(work.dir, 'template.mjs'),
    bundle: true,
    format: 'esm',
    platform: 'node',
    conditions: ['@secret-provider/source'],
    logLevel: 'warning',
  });
  writeFileSync(script, CHILD);
});
afterAll(() => work.remove());

async function child(root: string, ...args: string[]): Promise<unknown> {
  const { stdout } = await run(process.execPath, [script, root, ...args], { timeout: 20_000 });
  return JSON.parse(stdout);
}

describe('a directory shared by processes', () => {
  it('gives every process the same version for the same state', async () => {
    const { dir, remove } = tempDir('versioned-dir-shared-');
    const here = new VersionedDirProvider({ root: dir });
    try {
      await here.set('db/password', 'first');
      const version = (await here.metadata('db/password')).version;
      expect(await child(dir, 'version', 'db/password')).toBe(version);
      const next = await child(dir, 'set', 'db/password', 'second');
      expect(next).not.toBe(version);
      expect((await here.metadata('db/password')).version).toBe(next);
      expect(await child(dir, 'version', 'db/password')).toBe(next);
    } finally {
      await here.close();
      remove();
    }
  });

  it('holds check-and-set across processes', async () => {
    const { dir, remove } = tempDir('versioned-dir-cas-');
    const here = new VersionedDirProvider({ root: dir });
    try {
      await here.set('token', 'first');
      const seen = (await here.metadata('token')).version as string;
      expect(await child(dir, 'set', 'token', 'theirs', seen)).not.toEqual({ code: 'CONFLICT' });
      await expect(here.set('token', 'mine', { ifVersion: seen })).rejects.toMatchObject({
        code: 'CONFLICT',
      });
      expect(await child(dir, 'set', 'token', 'late', seen)).toEqual({ code: 'CONFLICT' });
      expect((await here.get('token')).reveal()).toBe('theirs');
    } finally {
      await here.close();
      remove();
    }
  });

  it('gives racing writers in two processes a version each', async () => {
    const { dir, remove } = tempDir('versioned-dir-race-');
    const here = new VersionedDirProvider({ root: dir });
    try {
      await Promise.all([child(dir, 'race', 'hot', '20'), child(dir, 'race', 'hot', '20')]);
      // Forty writes, forty versions: no two writes took the same number.
      expect((await here.metadata('hot')).version).toBe('40');
    } finally {
      await here.close();
      remove();
    }
  });
});
