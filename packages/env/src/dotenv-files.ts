import { open, stat } from 'node:fs/promises';
import { AccessDeniedError, InvalidConfigError, isSecretError, SecretError } from '@secret-provider/core';
import { parseDotenv } from '@secret-provider/file/dotenv';

/** Where a variable read from `.env` files came from. */
export interface FileEntry {
  readonly value: string;
  readonly file: string;
}

interface FileState {
  /** Parsed variables; empty while the file is missing. */
  readonly entries: ReadonlyMap<string, string>;
  /** Inode, size and modification time at the last read; `undefined` while missing. */
  readonly stamp: string | undefined;
}

const MISSING: FileState = { entries: new Map(), stamp: undefined };

/**
 * The `.env` files of one provider: their last good contents, merged so that later files win
 * over earlier ones. Files are read with the product's one `.env` reader, which reads every line
 * as `dotenv.parse` does (lines it does not understand are skipped) and keeps every key, inherited
 * names such as `__proto__` included, as an entry of a `Map`. A file that cannot be read keeps its last good contents; a missing file
 * contributes nothing (or is an error when files are required).
 */
export class DotenvFiles {
  readonly paths: readonly string[];
  readonly #provider: string;
  readonly #required: boolean;
  readonly #states = new Map<string, FileState>();
  #merged = new Map<string, FileEntry>();
  #loading: Promise<void> | undefined;
  #loaded = false;

  constructor(paths: readonly string[], provider: string, required: boolean) {
    this.paths = paths;
    this.#provider = provider;
    this.#required = required;
  }

  /** Whether the first load has completed. */
  get loaded(): boolean {
    return this.#loaded;
  }

  /** Reads every file once; later calls share the first load. A failed load is retried next time. */
  load(): Promise<void> {
    if (this.#loaded) return Promise.resolve();
    this.#loading ??= (async () => {
      const errors = await this.reload(this.paths);
      const first = errors[0];
      if (first !== undefined) throw first;
      this.#loaded = true;
    })().finally(() => {
      this.#loading = undefined;
    });
    return this.#loading;
  }

  /** The merged entry for a variable name. */
  lookup(name: string): FileEntry | undefined {
    return this.#merged.get(name);
  }

  /** Every variable name the files define. */
  names(): IterableIterator<string> {
    return this.#merged.keys();
  }

  /**
   * Re-reads `paths` (some of this provider's files) and rebuilds the merged view. Files that
   * fail keep their last good contents; their errors are returned, never thrown.
   */
  async reload(paths: Iterable<string>): Promise<SecretError[]> {
    const errors: SecretError[] = [];
    for (const path of new Set(paths)) {
      try {
        this.#states.set(path, await this.#read(path));
      } catch (error) {
        errors.push(this.#toError(error, path));
      }
    }
    this.#merge();
    return errors;
  }

  /**
   * The files whose inode, size or modification time differ from the last read: a backstop for
   * file-system events that never arrive (network file systems, a directory created later).
   */
  async changed(): Promise<string[]> {
    const changed: string[] = [];
    for (const path of this.paths) {
      let current: string | undefined;
      try {
        current = stampOf(await stat(path, { bigint: true }));
      } catch {
        current = undefined;
      }
      if (current !== this.#states.get(path)?.stamp) changed.push(path);
    }
    return changed;
  }

  async #read(path: string): Promise<FileState> {
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if (isMissing(error) && !this.#required) return MISSING;
      throw error;
    }
    try {
      // The stamp is taken from the open handle, so it describes the content read (a rename
      // over the path after this point changes the inode and is noticed by `changed`).
      const stamp = stampOf(await handle.stat({ bigint: true }));
      const text = await handle.readFile('utf8');
      return { entries: parseDotenv(text), stamp };
    } finally {
      await handle.close();
    }
  }

  #merge(): void {
    const merged = new Map<string, FileEntry>();
    for (const path of this.paths) {
      const state = this.#states.get(path);
      if (state === undefined) continue;
      for (const [name, value] of state.entries) merged.set(name, { value, file: path });
    }
    this.#merged = merged;
  }

  #toError(error: unknown, path: string): SecretError {
    if (isSecretError(error)) return error;
    const code = (error as { code?: unknown } | null)?.code;
    if (code === 'EACCES' || code === 'EPERM') {
      return new AccessDeniedError(
        { provider: this.#provider, cause: error },
        `cannot read .env file ${path}: permission denied`,
      );
    }
    if (isMissing(error)) {
      return new InvalidConfigError(
        { provider: this.#provider, cause: error },
        `required .env file ${path} does not exist`,
      );
    }
    return new SecretError('UNAVAILABLE', `cannot read .env file ${path}`, {
      provider: this.#provider,
      cause: error,
    });
  }
}

function isMissing(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function stampOf(info: { ino: bigint; size: bigint; mtimeNs: bigint }): string {
  return `${info.ino}:${info.size}:${info.mtimeNs}`;
}
