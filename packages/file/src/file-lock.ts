import { Mutex } from 'async-mutex';

const locks = new Map<string, { mutex: Mutex; users: number }>();

/**
 * Runs `task` while holding the lock of `path`, shared by every provider of this process: writes
 * to one file are read-modify-write cycles and must not interleave.
 */
export async function withFileLock<T>(path: string, task: () => Promise<T>): Promise<T> {
  let slot = locks.get(path);
  if (slot === undefined) {
    slot = { mutex: new Mutex(), users: 0 };
    locks.set(path, slot);
  }
  slot.users++;
  try {
    return await slot.mutex.runExclusive(task);
  } finally {
    slot.users--;
    if (slot.users === 0) locks.delete(path);
  }
}
