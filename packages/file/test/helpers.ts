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
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import {
  createEmitter,
  type SecretEvents,
  type SecretProvider,
  type WatchHandle,
} from '@secret-provider/core';

/** A fresh directory under the system's temporary directory, removed by `cleanup`. */
export async function tempDir(): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), 'file-provider-'));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

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

export interface Recorded {
  type: keyof SecretEvents;
  event: SecretEvents[keyof SecretEvents];
}

/** Watches `provider`, recording every event; `handle` stops it. */
export async function record(provider: SecretProvider): Promise<{ events: Recorded[]; handle: WatchHandle }> {
  const emitter = createEmitter();
  const events: Recorded[] = [];
  emitter.on('*', (type, event) => events.push({ type, event } as Recorded));
  const handle = provider.watch(emitter);
  await handle.ready;
  return { events, handle };
}

/** Polls `probe` until it returns something other than `undefined`/`false`. */
export async function waitFor<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 5_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe();
    if (found !== undefined && found !== false) return found;
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await sleep(5);
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

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

/** A compact, value-free view of events for assertions: `added:a`, `rotated:a,b`, `removed:c`. */
export function summary(
  events: readonly Recorded[],
  types: ReadonlyArray<keyof SecretEvents> = ['added', 'rotated', 'removed'],
): string[] {
  return events
    .filter((e) => types.includes(e.type))
    .map((e) => {
      const event = e.event as { key?: string; keys?: readonly string[] };
      return `${e.type}:${event.key ?? [...(event.keys ?? [])].sort().join(',')}`;
    });
}

/** Every way a logger could print `things`, checked for each secret. */
export function assertNoLeak(things: readonly unknown[], secrets: readonly string[]): void {
  for (const thing of things) {
    const forms = [
      String(thing),
      JSON.stringify(thing) ?? '',
      inspect(thing, { depth: Infinity, showHidden: true }),
      (thing as Error)?.stack ?? '',
    ];
    for (const form of forms) {
      for (const secret of secrets) {
        if (form.includes(secret)) throw new Error(`a secret value leaked into a ${typeof thing}`);
      }
    }
  }
}
