// Helpers of the file provider's tests only; the shared ones come from @secret-provider/testing.
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { SecretProvider } from '@secret-provider/core';
import { FileProvider, type FileProviderOptions } from '@secret-provider/file';
import { tempDir, waitFor } from '@secret-provider/testing';
import { afterEach, beforeEach } from 'vitest';

/** A distinctive secret value, so that leaks can be searched for. */
export function secretValue(label: string): string {
  return `s3cr3t-${label}-${randomBytes(6).toString('hex')}`;
}

/**
 * Updates a Kubernetes secret volume the way kubelet's AtomicWriter does
 * (`pkg/volume/util/atomic_writer.go`): payload into a new `..<timestamp>.<random>` directory,
 * `..data_tmp -> ..<timestamp>`, rename `..data_tmp` over `..data` (the switch), link new keys
 * `<key> -> ..data/<key>`, remove links of gone keys, remove the old timestamped directory.
 */
export function atomicWriterUpdate(
  dir: string,
  payload: Readonly<Record<string, string>>,
  mode = 0o400,
): void {
  const stamp = new Date().toISOString().replace(/[-:T]/g, '_').slice(0, 19);
  const tsDir = mkdtempSync(join(dir, `..${stamp}.`));
  for (const [key, value] of Object.entries(payload)) writeFileSync(join(tsDir, key), value, { mode });
  const dataLink = join(dir, '..data');
  const oldTsDir = existsSync(dataLink) ? readlinkSync(dataLink) : undefined;
  const tmpLink = join(dir, '..data_tmp');
  symlinkSync(tsDir.slice(dir.length + 1), tmpLink);
  renameSync(tmpLink, dataLink);
  for (const key of Object.keys(payload)) {
    if (!existsSync(join(dir, key))) symlinkSync(join('..data', key), join(dir, key));
  }
  for (const name of readdirSync(dir)) {
    if (!name.startsWith('..') && !(name in payload)) unlinkSync(join(dir, name));
  }
  if (oldTsDir !== undefined) rmSync(join(dir, oldTsDir), { recursive: true, force: true });
}

/** The payload currently visible through `..data` (for out-of-band edits of a volume). */
export function currentPayload(dir: string, read: (path: string) => string): Record<string, string> {
  const data = join(dir, '..data');
  if (!existsSync(data)) return {};
  return Object.fromEntries(readdirSync(data).map((key) => [key, read(join(data, key))]));
}

/** Waits until `provider.get(key)` reveals `value`. */
export function waitForValue(
  provider: SecretProvider,
  key: string,
  value: string,
  timeoutMs = 5_000,
): Promise<true> {
  return waitFor(
    async () => {
      try {
        return (await provider.get(key)).reveal() === value;
      } catch {
        return false;
      }
    },
    timeoutMs,
    `value of ${key}`,
  );
}

/**
 * For each test: a fresh temporary directory (given to `onDir`), and an `open` that builds
 * providers (permission checks off) which are closed, with the directory removed, after it.
 */
export function providersInTempDir(
  prefix: string,
  onDir: (dir: string) => void,
): (options: FileProviderOptions) => FileProvider {
  let remove: (() => void) | undefined;
  const providers: FileProvider[] = [];
  beforeEach(() => {
    const made = tempDir(prefix);
    remove = made.remove;
    onDir(made.dir);
  });
  afterEach(async () => {
    await Promise.all(providers.splice(0).map((provider) => provider.close()));
    remove?.();
  });
  return (options) => {
    const provider = new FileProvider({ checkPermissions: false, ...options });
    providers.push(provider);
    return provider;
  };
}
