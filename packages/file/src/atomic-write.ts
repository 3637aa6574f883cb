import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** Mode of every file this package writes: owner read/write only. */
export const SECRET_FILE_MODE = 0o600;
/** Mode of directories this package creates. */
export const SECRET_DIR_MODE = 0o700;

/** Longest file name, in bytes of UTF-8, that common file systems accept (`NAME_MAX`). */
export const MAX_FILE_NAME_BYTES = 255;

/**
 * Prefix of temporary files. Kubernetes reserves names starting with `..` in secret volumes and
 * readers of this package skip them, so a half-written temporary file is never taken for a key.
 */
export const TEMP_PREFIX = '..tmp-';

/**
 * Replaces `path` with `data` so that a reader (or a crash) sees either the old file or the new
 * one, never a mix: the data goes to a temporary file in the same directory, is flushed to disk,
 * renamed over the target, and the directory entry is flushed too. The file gets mode 0600 from
 * its creation on (it is never readable by others, even briefly). A string is written as UTF-8.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: SECRET_DIR_MODE });
  // The name does not include the target's: a target name of the longest length a file name
  // may have (255 bytes) must still leave room for its temporary file.
  const temp = join(dir, `${TEMP_PREFIX}${randomBytes(12).toString('hex')}`);
  const handle = await open(temp, 'wx', SECRET_FILE_MODE);
  try {
    await (typeof data === 'string' ? handle.writeFile(data, 'utf8') : handle.writeFile(data));
    // The creation mode is reduced by the umask; the result must be exactly 0600.
    await handle.chmod(SECRET_FILE_MODE);
    await handle.sync();
    await handle.close();
    await rename(temp, path);
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(temp, { force: true }).catch(() => {});
    throw error;
  }
  await syncDirectory(dir);
}

/** Flushes a directory's entries (a rename or unlink) to disk; a no-op where unsupported. */
export async function syncDirectory(dir: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Windows cannot open or fsync directories; the rename itself is still atomic there.
  } finally {
    await handle?.close().catch(() => {});
  }
}
