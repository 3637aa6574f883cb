import * as nodeFs from 'node:fs/promises';
import { describeProviderConformance } from '@secret-provider/conformance';
import { tempDir } from '@secret-provider/testing';
import { describe, expect, it } from 'vitest';
import { type VersionedDirFs, VersionedDirProvider } from '../src/index.js';

/** `node:fs/promises` with a switch that makes the next call fail, the way a wrapped client would. */
function faultyFs(): { fs: VersionedDirFs; failNext(error: Error): void } {
  let next: Error | undefined;
  const wrap =
    <A extends unknown[], R>(call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const error = next;
      next = undefined;
      if (error !== undefined) throw error;
      return call(...args);
    };
  const fs = {
    readdir: wrap(nodeFs.readdir),
    readFile: wrap(nodeFs.readFile),
    writeFile: wrap(nodeFs.writeFile),
    link: wrap(nodeFs.link),
    unlink: wrap(nodeFs.unlink),
    mkdir: wrap(nodeFs.mkdir),
    stat: wrap(nodeFs.stat),
  } as VersionedDirFs;
  return {
    fs,
    failNext: (error) => {
      next = error;
    },
  };
}

const report = describeProviderConformance({
  name: 'versioned directory',
  test: { describe, it },
  create: () => {
    const { dir, remove } = tempDir('versioned-dir-');
    const faults = faultyFs();
    // The out-of-band writer is a second provider on the same directory, as another process is.
    const other = new VersionedDirProvider({ root: dir });
    return {
      provider: new VersionedDirProvider({ root: dir, pollInterval: 20, fs: faults.fs }),
      faults,
      dir,
      backend: {
        set: (key: string, value: string) => other.set(key, value),
        delete: (key: string) => other.delete(key),
        read: (key: string) =>
          other.get(key).then(
            (secret) => secret.reveal(),
            () => undefined,
          ),
      },
      cleanup: async () => {
        await other.close();
        remove();
      },
    };
  },
  failNextCall: ({ faults }, error) => faults.failNext(error),
  // Unreachable: the directory is renamed away, as an unmounted volume would leave it.
  makeUnreachable: async ({ dir }) => {
    await nodeFs.rename(dir, `${dir}.away`);
    return () => nodeFs.rename(`${dir}.away`, dir);
  },
});

it('runs every group of the suite, none left out for lack of a hook', () => {
  expect(report.notRun).toEqual([]);
  expect(report.groups.every((group) => group.run.length > 0)).toBe(true);
});
