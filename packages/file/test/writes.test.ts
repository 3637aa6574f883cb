import { fork } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDotenv } from '@secret-provider/file';
import { pause } from '@secret-provider/testing';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { providersInTempDir } from './helpers.js';

let dir: string;
const open = providersInTempDir('file-provider-', (made) => {
  dir = made;
});

const keys100 = Array.from({ length: 100 }, (_, i) => `key_${i}`);
const mode = (path: string) => statSync(path).mode & 0o777;

describe('100 concurrent sets of distinct keys', () => {
  it('JSON: all 100 keys in the file, mode 0600', async () => {
    const path = join(dir, 'secrets.json');
    const provider = open({ path });
    await Promise.all(keys100.map((key, i) => provider.set(key, `value-${i}`)));
    const document = JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>;
    expect(Object.keys(document).sort()).toEqual([...keys100].sort());
    expect(document.key_42).toBe('value-42');
    expect(mode(path)).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['secrets.json']);
  });

  it('.env: all 100 keys in the file, mode 0600', async () => {
    const path = join(dir, '.env');
    writeFileSync(path, '# existing\nKEEP=me\n', { mode: 0o644 });
    const provider = open({ path });
    await Promise.all(keys100.map((key, i) => provider.set(key, `value ${i}`)));
    const parsed = parseDotenv(readFileSync(path, 'utf8'));
    expect(parsed.size).toBe(101);
    expect(parsed.get('key_7')).toBe('value 7');
    expect(parsed.get('KEEP')).toBe('me');
    expect(mode(path)).toBe(0o600);
  });

  it('directory: 100 files, each mode 0600, in a directory created 0700', async () => {
    const target = join(dir, 'created');
    const provider = open({ path: target });
    await Promise.all(keys100.map((key, i) => provider.set(key, `value-${i}`)));
    expect(readdirSync(target).sort()).toEqual([...keys100].sort());
    for (const key of keys100) expect(mode(join(target, key))).toBe(0o600);
    expect(mode(target)).toBe(0o700);
    expect((await provider.keys()).length).toBe(100);
  });

  it('two providers on one file in one process share the lock', async () => {
    const path = join(dir, 'shared.json');
    const a = open({ path });
    const b = open({ path });
    await Promise.all(keys100.map((key, i) => (i % 2 ? a : b).set(key, `v${i}`)));
    expect(Object.keys(JSON.parse(readFileSync(path, 'utf8'))).length).toBe(100);
  });
});

describe('atomic replacement', () => {
  it('a reader never sees a partial file while large values are written', async () => {
    const path = join(dir, 'big.json');
    const provider = open({ path });
    await provider.set('seed', 'x');
    let reads = 0;
    let broken = 0;
    let writing = true;
    const reader = (async () => {
      while (writing) {
        const text = readFileSync(path, 'utf8');
        try {
          JSON.parse(text);
        } catch {
          broken++;
        }
        reads++;
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    for (let i = 0; i < 30; i++) await provider.set(`big${i % 3}`, 'y'.repeat(200_000 + i));
    writing = false;
    await reader;
    expect(reads).toBeGreaterThan(0);
    expect(broken).toBe(0);
    expect(readdirSync(dir)).toEqual(['big.json']);
  });

  it('a process killed mid-write leaves the old file or the new one, never a truncated one', async () => {
    // The writer runs in a child process (the writing code itself, transpiled), killed with
    // SIGKILL at random moments while it rewrites a 300 kB file in a loop.
    const source = readFileSync(fileURLToPath(new URL('../src/atomic-write.ts', import.meta.url)), 'utf8');
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    });
    writeFileSync(join(dir, 'atomic-write.mjs'), outputText);
    writeFileSync(
      join(dir, 'writer.mjs'),
      `import { writeFileAtomic } from './atomic-write.mjs';
       const target = process.argv[2];
       process.send('started');
       for (let i = 0; ; i++) await writeFileAtomic(target, JSON.stringify({ i, pad: 'p'.repeat(300000) }));`,
    );
    const target = join(dir, 'out', 'secrets.json');
    let checked = 0;
    for (let round = 0; round < 8; round++) {
      const child = fork(join(dir, 'writer.mjs'), [target], { stdio: 'ignore' });
      await new Promise((resolve) => child.once('message', resolve));
      await pause(15 + Math.random() * 40);
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      if (!existsSync(target)) continue;
      const parsed = JSON.parse(readFileSync(target, 'utf8')) as { pad: string };
      expect(parsed.pad.length).toBe(300_000);
      expect(mode(target)).toBe(0o600);
      checked++;
    }
    expect(checked).toBeGreaterThan(0);
    // Leftover temporary files are possible after a kill; readers skip their `..` names.
    for (const name of readdirSync(join(dir, 'out')))
      expect(name === 'secrets.json' || name.startsWith('..tmp-')).toBe(true);
  });
});

describe('read-only', () => {
  it('refuses set and delete with READ_ONLY and declares it', async () => {
    const path = join(dir, 'ro.json');
    writeFileSync(path, '{"a":"b"}');
    const provider = open({ path, readOnly: true });
    expect(provider.capabilities.write).toBe(false);
    expect(provider.capabilities.delete).toBe(false);
    await expect(provider.set('a', 'c')).rejects.toMatchObject({ code: 'READ_ONLY' });
    await expect(provider.delete('a')).rejects.not.toMatchObject({ code: 'NOT_FOUND' });
    expect(readFileSync(path, 'utf8')).toBe('{"a":"b"}');
  });

  it('refuses to rewrite a file that does not parse (it would drop its content)', async () => {
    const path = join(dir, 'broken.json');
    writeFileSync(path, '{"a": "b",');
    const provider = open({ path });
    await expect(provider.set('c', 'd')).rejects.toMatchObject({ code: 'INVALID_VALUE' });
    expect(readFileSync(path, 'utf8')).toBe('{"a": "b",');
  });
});
