import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SECRET_FILE_MODE, writeFileAtomic } from '@secret-provider/file/atomic-write';
import { tempDir } from '@secret-provider/testing';
import { afterEach, beforeEach, expect, it } from 'vitest';

let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir('atomic-write-');
});
afterEach(() => dir.remove());

it('writes bytes as given, replacing the old file, with mode 0600 and no temporary file left', async () => {
  const target = join(dir.dir, 'sub', 'state.bin');
  const bytes = Buffer.from([0, 255, 1, 128, 0x0a, 0xc3]);
  await writeFileAtomic(target, 'old');
  await writeFileAtomic(target, bytes);
  expect(readFileSync(target).equals(bytes)).toBe(true);
  expect(statSync(target).mode & 0o777).toBe(SECRET_FILE_MODE);
  expect(readdirSync(join(dir.dir, 'sub'))).toEqual(['state.bin']);
});

it('removes its temporary file when the rename fails, and touches nothing else', async () => {
  writeFileSync(join(dir.dir, 'other'), 'kept');
  // The target is a non-empty directory: the rename over it fails.
  const blocked = join(dir.dir, 'blocked');
  await writeFileAtomic(join(blocked, 'x'), 'x');
  await expect(writeFileAtomic(blocked, Buffer.from('new'))).rejects.toThrow();
  expect(readdirSync(dir.dir).sort()).toEqual(['blocked', 'other']);
  expect(readFileSync(join(dir.dir, 'other'), 'utf8')).toBe('kept');
  expect(readdirSync(blocked)).toEqual(['x']);
});
