// Writes a secret volume the way the kubelet's AtomicWriter does, so the demo and the tests
// rotate secrets exactly as a Kubernetes cluster would:
//   <dir>/..<timestamp>/<key>   real files
//   <dir>/..data -> ..<timestamp>
//   <dir>/<key>  -> ..data/<key>
// An update writes a new timestamped directory, points `..data_tmp` at it, renames `..data_tmp`
// over `..data` (the atomic switch), fixes the per-key links and removes the old directory.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readlink, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

let sequence = 0;

/** Makes `dir` hold exactly `files` (key -> value), switching atomically like the kubelet. */
export async function writeSecretVolume(dir, files) {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const stamp = new Date().toISOString().replace(/[-:T]/g, '_').slice(0, 19);
  const version = `..${stamp}.${String(sequence++).padStart(4, '0')}${randomBytes(3).toString('hex')}`;
  const versionDir = join(dir, version);
  await mkdir(versionDir, { mode: 0o700 });
  for (const [key, value] of Object.entries(files)) {
    await writeFile(join(versionDir, key), value, { mode: 0o600 });
  }
  const previous = await readlink(join(dir, '..data')).catch(() => undefined);
  await symlink(version, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  for (const key of Object.keys(files)) {
    await symlink(join('..data', key), join(dir, key)).catch((error) => {
      if (error.code !== 'EEXIST') throw error;
    });
  }
  if (previous !== undefined) {
    const { readdir } = await import('node:fs/promises');
    for (const entry of await readdir(dir)) {
      if (!entry.startsWith('..') && !(entry in files)) await unlink(join(dir, entry));
    }
    await rm(join(dir, previous), { recursive: true, force: true });
  }
}
