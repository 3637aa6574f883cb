import { realpath } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Mutex } from 'async-mutex';

const locks = new Map<string, { mutex: Mutex; users: number }>();

/**
 * Runs `task` while holding the lock of the file at `path`, shared by every provider of this
 * process: writes to one file are read-modify-write cycles and must not interleave. The lock is
 * keyed on the file's real location, so providers that reach one file through different paths
 * (a symlinked directory, `..` in a path) share it.
 */
export async function withFileLock<T>(path: string, task: () => Promise<T>): Promise<T> {
  const key = await realLocation(path);
  let slot = locks.get(key);
  if (slot === undefined) {
    slot = { mutex: new Mutex(), users: 0 };
    locks.set(key, slot);
  }
  slot.users++;
  try {
    return await slot.mutex.runExclusive(task);
  } finally {
    slot.users--;
    if (slot.users === 0) locks.delete(key);
  }
}

/**
 * The real path of `path`'s directory (links resolved) joined with its name. The name itself is
 * not resolved: writes replace the entry at that name (a link there is replaced, not followed).
 * A directory that does not exist yet is resolved as far as it exists.
 */
async function realLocation(path: string): Promise<string> {
  const rest: string[] = [basename(path)];
  let dir = dirname(path);
  for (;;) {
    try {
      return join(await realpath(dir), ...rest);
    } catch {
      const parent = dirname(dir);
      if (parent === dir) return path;
      rest.unshift(basename(dir));
      dir = parent;
    }
  }
}
