import { constants, lstatSync } from 'node:fs';
import { lstat, open, readdir, readlink, realpath, unlink } from 'node:fs/promises';
import { join, normalize, resolve, sep } from 'node:path';
import { ReadOnlyError, type SecretError, type SecretOperation } from '@secret-provider/core';
import { fingerprint } from '@secret-provider/core/adapter';
import { MAX_FILE_NAME_BYTES, syncDirectory, TEMP_PREFIX, writeFileAtomic } from './atomic-write.js';
import { checkVersion, linkEscapeError } from './errors.js';
import { withFileLock } from './file-lock.js';
import { errorCode, isMissing, lstatOrUndefined, type SourceContext, statOrUndefined } from './fs-util.js';
import type { Entry, KeyLoad, OwnWrite, Reading, SecretSource, Target } from './source.js';

/**
 * What happens to newlines at the end of a file in `directory` format (tools like `echo` and
 * editors add one; `kubectl create secret --from-file` keeps whatever the file had).
 * - `strip-one`: remove one `\n` or `\r\n`. Writes add one `\n` to values that end with a newline,
 *   so every value reads back exactly as it was set.
 * - `strip-all`: remove every trailing `\r` and `\n`.
 * - `keep`: the bytes as they are.
 */
export type TrailingNewline = 'strip-one' | 'strip-all' | 'keep';

/** Settings of a {@link DirectorySource}. */
export interface DirectorySourceOptions {
  readonly trailingNewline: TrailingNewline;
  /** Directories outside the source that its links may point into. */
  readonly allowLinksInto: readonly string[];
}

interface Scan {
  readonly entries: Map<string, Entry>;
  readonly problems: Map<string, SecretError>;
  /** Names inside `..data` (Kubernetes layout), empty otherwise. */
  readonly dataNames: ReadonlySet<string>;
  readonly hasData: boolean;
}

/** Whether `dir` is a Kubernetes secret volume (it has kubelet's `..data` link): kubelet owns it. */
export function isKubernetesVolume(dir: string): boolean {
  try {
    lstatSync(join(dir, '..data'));
    return true;
  } catch {
    return false;
  }
}

/**
 * Secrets as one file per key in a directory (Docker's `/run/secrets`, Kubernetes secret volumes
 * with their `..data` link). Unwatched reads go to the disk key by key. Links are followed only
 * while they stay inside the directory (or inside a root named in `allowLinksInto`).
 */
export class DirectorySource implements SecretSource {
  readonly watchDir: string;
  readonly #dir: string;
  readonly #options: DirectorySourceOptions;
  readonly #context: SourceContext;
  /** Names that Kubernetes links into `..data`: their links change after a switch, not values. */
  #dataNames: ReadonlySet<string> = new Set();
  #previousDataNames: ReadonlySet<string> = new Set();
  #hasData = false;

  constructor(dir: string, options: DirectorySourceOptions, context: SourceContext) {
    this.#dir = dir;
    this.watchDir = dir;
    this.#options = options;
    this.#context = context;
  }

  keyProblem(key: string): string | undefined {
    if (key.includes('/') || key.includes('\\')) return 'path separators are not allowed';
    if (key === '.' || key.startsWith('..')) return 'names starting with ".." are reserved';
    if (Buffer.byteLength(key) > MAX_FILE_NAME_BYTES)
      return `longer than a file name may be (${MAX_FILE_NAME_BYTES} bytes of UTF-8)`;
    return undefined;
  }

  classify(name: string | null): Target | undefined | Promise<Target | undefined> {
    if (name === null || name === '..data') return 'all';
    // Timestamped directories, `..data_tmp` and temporary files of writes.
    if (name.startsWith('..') || name.startsWith(TEMP_PREFIX)) return undefined;
    const target = new Set([name]);
    // In a Kubernetes layout, a top-level name that is (or was) a `..data/<name>` link changes
    // after a switch whose `..data` notification already caused a read: no second read.
    if (this.#hasData) return this.#isDataLink(name).then((link) => (link ? undefined : target));
    return target;
  }

  async entry(key: string): Promise<Entry | undefined> {
    this.#context.stats.reloads++;
    const loaded = await this.#readKey(key);
    if (loaded.kind === 'invalid') throw loaded.error;
    return loaded.kind === 'ok' ? loaded.entry : undefined;
  }

  async list(): Promise<string[]> {
    const scan = await this.#scan();
    return scan === undefined ? [] : [...scan.entries.keys()];
  }

  async read(target: Target): Promise<Reading> {
    if (target !== 'all') {
      const loads = await Promise.all(
        [...target].map(async (key) => {
          this.#context.stats.reloads++;
          return [key, await this.#readKey(key)] as const;
        }),
      );
      return { keys: new Map(loads), complete: false };
    }
    const scan = await this.#scan();
    if (scan === undefined) return { keys: new Map(), complete: true };
    const keys = new Map<string, KeyLoad>();
    for (const [key, entry] of scan.entries) keys.set(key, { kind: 'ok', entry });
    for (const [key, error] of scan.problems) keys.set(key, { kind: 'invalid', error });
    // Keys read through `..data` come from a payload kubelet switched in whole: never mid-write.
    const atomic: ReadonlySet<string> = scan.hasData
      ? new Set([...scan.dataNames, ...this.#dataNames])
      : new Set();
    this.#previousDataNames = this.#dataNames;
    this.#dataNames = scan.dataNames;
    this.#hasData = scan.hasData;
    return { keys, complete: true, atomic };
  }

  async write(
    key: string,
    value: string,
    ifVersion: string | null | undefined,
    applied: OwnWrite,
  ): Promise<void> {
    await this.#assertWritable(key, 'set');
    const path = join(this.#dir, key);
    await withFileLock(path, async () => {
      const current = await this.#readKey(key);
      if (current.kind === 'invalid') throw current.error;
      checkVersion(
        { provider: this.#context.provider, key },
        current.kind === 'ok' ? current.entry.version : undefined,
        ifVersion,
      );
      // With `strip-one`, a value ending in a newline gets one more, so it reads back unchanged.
      const content =
        this.#options.trailingNewline === 'strip-one' && value.endsWith('\n') ? `${value}\n` : value;
      await writeFileAtomic(path, content);
      const entry = { value, version: fingerprint(value), updatedAt: new Date(), empty: value === '' };
      applied({ keys: new Map([[key, { kind: 'ok', entry }]]), complete: false });
    });
  }

  async remove(key: string, applied: OwnWrite): Promise<boolean> {
    await this.#assertWritable(key, 'delete');
    const path = join(this.#dir, key);
    return withFileLock(path, async () => {
      const info = await lstatOrUndefined(path);
      if (info === undefined || info.isDirectory()) return false;
      await unlink(path);
      await syncDirectory(this.#dir);
      applied({ keys: new Map([[key, { kind: 'missing' }]]), complete: false });
      return true;
    });
  }

  async #assertWritable(key: string, operation: SecretOperation): Promise<void> {
    // kubelet owns a `..data` layout and would undo or trip over our files.
    if ((await lstatOrUndefined(join(this.#dir, '..data'))) !== undefined) {
      const { provider } = this.#context;
      throw new ReadOnlyError(
        { provider, key, operation },
        `secrets directory "${this.#dir}" is a Kubernetes volume (it has "..data"); it is read-only (provider "${provider}")`,
      );
    }
  }

  async #isDataLink(name: string): Promise<boolean> {
    try {
      return normalize(await readlink(join(this.#dir, name))) === join('..data', name);
    } catch (error) {
      return isMissing(error) && (this.#dataNames.has(name) || this.#previousDataNames.has(name));
    }
  }

  /**
   * The real paths links may lead into: the directory's own, and those of `allowLinksInto`.
   * Resolved at each read, since the directory may be replaced or re-created.
   */
  async #roots(): Promise<string[]> {
    const roots = await Promise.all(
      [this.#dir, ...this.#options.allowLinksInto].map((dir) => realpath(dir).catch(() => undefined)),
    );
    return roots.filter((root): root is string => root !== undefined);
  }

  /** Every key of the directory, following Kubernetes' `..data` link. `undefined`: no directory. */
  async #scan(): Promise<Scan | undefined> {
    this.#context.stats.reloads++;
    let names: string[];
    try {
      names = await readdir(this.#dir);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    const dirInfo = await statOrUndefined(this.#dir);
    if (dirInfo === undefined) return undefined;
    const refusal = this.#context.permissions.check(this.#dir, Number(dirInfo.mode));
    if (refusal !== undefined) throw refusal;
    const roots = this.#roots();
    const hasData = names.includes('..data');
    let dataNames: string[] = [];
    if (hasData && (await this.#leadsInside(join(this.#dir, '..data'), roots))) {
      try {
        dataNames = (await readdir(join(this.#dir, '..data'))).filter((name) => !name.startsWith('..'));
      } catch (error) {
        if (!isMissing(error)) throw error;
      }
    }
    const keys = new Set([...names.filter((name) => !name.startsWith('..')), ...dataNames]);
    const entries = new Map<string, Entry>();
    const problems = new Map<string, SecretError>();
    await Promise.all(
      [...keys].map(async (key) => {
        const loaded = await this.#readKey(key, roots);
        if (loaded.kind === 'ok') entries.set(key, loaded.entry);
        else if (loaded.kind === 'invalid') problems.set(key, loaded.error);
      }),
    );
    // Keep the directory's order stable for `keys()`.
    const ordered = new Map([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    return { entries: ordered, problems, dataNames: new Set(dataNames), hasData };
  }

  /** Whether `path` (a link, followed to its end) stays inside one of `roots`; false when it leads nowhere. */
  async #leadsInside(path: string, roots: Promise<string[]>): Promise<boolean> {
    try {
      return within(await realpath(path), await roots);
    } catch {
      return false;
    }
  }

  /**
   * One key: `<dir>/<key>` (a file, or a link such as Kubernetes' `<key> -> ..data/<key>`), else
   * `<dir>/..data/<key>` (a key kubelet has not linked yet). Entries that are not regular files
   * (sub-directories) are not keys. A link is followed to its end only if that end lies inside
   * the directory or an allowed root; the file is then opened at its real path, without
   * following links, so a link swapped in meanwhile is not followed either.
   */
  async #readKey(key: string, roots?: Promise<string[]>): Promise<KeyLoad> {
    let shown = join(this.#dir, key);
    let linked: boolean;
    try {
      linked = (await lstat(shown)).isSymbolicLink();
    } catch (error) {
      if (!isMissing(error)) throw error;
      shown = join(this.#dir, '..data', key);
      linked = true;
    }
    let path = shown;
    if (linked) {
      try {
        path = await realpath(shown);
      } catch (error) {
        if (isMissing(error) || errorCode(error) === 'ELOOP') return { kind: 'missing' };
        throw error;
      }
      if (!within(path, await (roots ?? this.#roots()))) {
        return { kind: 'invalid', error: linkEscapeError(this.#context.provider, this.#dir, key) };
      }
    }
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
    } catch (error) {
      if (isMissing(error) || errorCode(error) === 'ELOOP') return { kind: 'missing' };
      throw error;
    }
    try {
      const info = await handle.stat();
      if (!info.isFile()) return { kind: 'missing' };
      const refusal = this.#context.permissions.check(shown, info.mode, key);
      if (refusal !== undefined) return { kind: 'invalid', error: refusal };
      const raw = await handle.readFile('utf8');
      const value = this.#stripNewline(raw);
      return {
        kind: 'ok',
        entry: { value, version: fingerprint(value), updatedAt: info.mtime, empty: raw.length === 0 },
      };
    } finally {
      await handle.close().catch(() => {});
    }
  }

  #stripNewline(raw: string): string {
    switch (this.#options.trailingNewline) {
      case 'keep':
        return raw;
      case 'strip-all':
        return raw.replace(/[\r\n]+$/, '');
      default:
        if (raw.endsWith('\r\n')) return raw.slice(0, -2);
        return raw.endsWith('\n') ? raw.slice(0, -1) : raw;
    }
  }
}

/** Whether the real path `path` is `root` or lies below it, for one of `roots`. */
function within(path: string, roots: readonly string[]): boolean {
  return roots.some((root) => path === root || path.startsWith(root.endsWith(sep) ? root : `${root}${sep}`));
}

/** Absolute forms of the roots a user allowed. */
export function resolveRoots(roots: string | readonly string[] | undefined): string[] {
  if (roots === undefined) return [];
  return (typeof roots === 'string' ? [roots] : [...roots]).map((root) => resolve(root));
}
