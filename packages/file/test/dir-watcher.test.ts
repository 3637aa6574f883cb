// The one directory watcher of the product (the file provider and the env provider's .env files
// use it): real directories, real inotify.
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DirWatcher } from '@secret-provider/file/watcher';
import { pause, tempDir, until } from '@secret-provider/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

let dir: string;
let remove: () => void;
const watchers: DirWatcher[] = [];

beforeEach(() => {
  ({ dir, remove } = tempDir('dir-watcher-'));
});
afterEach(async () => {
  await Promise.all(watchers.splice(0).map((w) => w.stop()));
  remove();
});

async function watch(target: string, polling = false) {
  const changes: Array<string | null> = [];
  const errors: unknown[] = [];
  const watcher = new DirWatcher(
    { dir: target, polling, interval: 20, persistent: false },
    { onChange: (name) => changes.push(name), onError: (error) => errors.push(error) },
  );
  watchers.push(watcher);
  await watcher.start();
  return { watcher, changes, errors };
}

describe('DirWatcher', () => {
  it('reports the names of entries that change', async () => {
    const { changes, watcher, errors } = await watch(dir);
    expect(watcher.watchingDir).toBe(true);
    writeFileSync(join(dir, 'a'), '1');
    await until(() => changes.includes('a'), 5_000, 'a change of a');
    expect(errors).toEqual([]);
  });

  it('waits for a directory that does not exist yet, then watches it', async () => {
    const target = join(dir, 'not', 'yet');
    const { changes, watcher } = await watch(target);
    expect(watcher.watchingDir).toBe(false);
    mkdirSync(join(dir, 'not'));
    await pause(20);
    mkdirSync(target);
    await until(() => changes.includes(null), 5_000, 'the directory appearing');
    expect(watcher.watchingDir).toBe(true);
    writeFileSync(join(target, 'late'), 'x');
    await until(() => changes.includes('late'), 5_000, 'a change inside it');
  });

  it('is armed again when its directory is deleted and re-created, even with the same inode number', async () => {
    const target = join(dir, 'watched');
    mkdirSync(target);
    const { changes } = await watch(target);
    const inodes = new Set([statSync(target).ino]);
    for (let round = 0; round < 3; round++) {
      rmSync(target, { recursive: true });
      mkdirSync(target);
      inodes.add(statSync(target).ino);
      await until(() => changes.includes(null), 5_000, `round ${round}: the directory replaced`);
      changes.length = 0;
      await pause(20);
      writeFileSync(join(target, `after-${round}`), 'x');
      await until(
        () => changes.includes(`after-${round}`),
        5_000,
        `round ${round}: a change in the new directory`,
      );
    }
    console.log(`re-created 3 times, ${inodes.size} distinct inode number(s)`);
  });

  it('polling mode reports changes too', async () => {
    const { changes, watcher } = await watch(dir, true);
    expect(watcher.polling).toBe(true);
    await pause(50);
    writeFileSync(join(dir, 'p'), '1');
    await until(() => changes.length > 0, 5_000, 'a change');
  });

  it('reports nothing after stop', async () => {
    const { changes, watcher } = await watch(dir);
    await watcher.stop();
    writeFileSync(join(dir, 'b'), '1');
    await pause(100);
    expect(changes).toEqual([]);
  });
});
