import { constants, lstatSync, statSync } from 'node:fs';
import { lstat, open, readdir, readFile, readlink, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, normalize, resolve } from 'node:path';
import {
  InvalidConfigError,
  InvalidKeyError,
  InvalidValueError,
  isSecretError,
  ReadOnlyError,
  SecretConflictError,
  type SecretError,
  type SecretMetadata,
  type SecretOperation,
  type SetOptions,
} from '@secret-provider/core';
import {
  BaseProvider,
  type BaseProviderOptions,
  diffSnapshots,
  type EmitFunction,
  emitDiff,
  fingerprint,
  type HookContext,
  type StoredSecret,
  sanitizeCause,
} from '@secret-provider/core/adapter';
import { syncDirectory, TEMP_PREFIX, writeFileAtomic } from './atomic-write.js';
import { DirWatcher } from './dir-watcher.js';
import { DotenvSyntaxError, deleteDotenvValue, isDotenvKey, parseDotenv, setDotenvValue } from './dotenv.js';
import { describeMode, InsecurePermissionsError, mapFileError } from './errors.js';
import { withFileLock } from './file-lock.js';
import {
  deleteJsonValue,
  flattenJson,
  formatJson,
  isForbiddenSegment,
  type JsonKeyStyle,
  JsonSyntaxError,
  parseJsonDocument,
  setJsonValue,
} from './json.js';

/** Name of this adapter in errors and events unless another is given. */
export const PROVIDER_NAME = 'file';

/** The layouts a {@link FileProvider} reads. */
export type FileFormat = 'json' | 'env' | 'directory';

/**
 * What happens to newlines at the end of a file in `directory` format (tools like `echo` and
 * editors add one; `kubectl create secret --from-file` keeps whatever the file had).
 * - `strip-one`: remove one `\n` or `\r\n`. Writes add one `\n` to values that end with a newline,
 *   so every value reads back exactly as it was set.
 * - `strip-all`: remove every trailing `\r` and `\n`.
 * - `keep`: the bytes as they are.
 */
export type TrailingNewline = 'strip-one' | 'strip-all' | 'keep';

/** Options of {@link FileProvider}. */
export interface FileProviderOptions
  extends Partial<Pick<BaseProviderOptions, 'name' | 'maxKeyLength' | 'cache'>> {
  /** A `.json` or `.env` file, or a directory with one file per key. */
  readonly path: string;
  /**
   * The layout. By default: `json` for `*.json`, `env` for `.env`, `.env.*` and `*.env`, else
   * `directory` when the path is a directory or does not exist yet.
   */
  readonly format?: FileFormat | undefined;
  /**
   * How keys address a JSON document: `nested` reads `{"db":{"password":"x"}}` as `db.password`;
   * `flat` uses the top-level names as they are (objects become their JSON text).
   * @default 'nested'
   */
  readonly jsonKeys?: JsonKeyStyle | undefined;
  /** Trailing newlines in `directory` format. @default 'strip-one' */
  readonly trailingNewline?: TrailingNewline | undefined;
  /**
   * Quiet time, in ms, after the last change before `added`/`rotated`/`removed` are emitted and a
   * file that is still being written is read again. New values are readable as soon as a complete
   * file is seen; only events and deletions wait for this.
   * @default 25
   */
  readonly debounceMs?: number | undefined;
  /** Refuse `set` and `delete` with `READ_ONLY`. @default false */
  readonly readOnly?: boolean | undefined;
  /**
   * Refuse (with {@link InsecurePermissionsError}) to read files or directories that group or
   * others can read, instead of emitting a `warning` event.
   * @default false
   */
  readonly strict?: boolean | undefined;
  /** Check permission bits at all (ignored on Windows, where they mean nothing). @default true */
  readonly checkPermissions?: boolean | undefined;
  /**
   * Watch by polling (for network file systems and bind mounts where change notifications do
   * not arrive) instead of the platform's notifications.
   * @default false
   */
  readonly usePolling?: boolean | undefined;
  /** Poll interval in ms when polling, or when notifications cannot be armed. @default 1000 */
  readonly pollInterval?: number | undefined;
  /** Keep the process alive while a watch is armed. @default false */
  readonly persistent?: boolean | undefined;
}

/** Counters of a {@link FileProvider}, for tests, benchmarks and dashboards. No values. */
export interface FileProviderStats {
  /** Times the source was read: a whole file, a directory scan, or one key file. */
  readonly reloads: number;
  /** File-system notifications received while watching. */
  readonly fsEvents: number;
  /** Notifications known not to affect any key (temporary files, Kubernetes bookkeeping). */
  readonly ignoredEvents: number;
}

interface Entry {
  readonly value: string;
  readonly version: string;
  readonly updatedAt: Date | undefined;
  /** The file had no bytes at all: possibly truncated by a writer that has not written yet. */
  readonly empty: boolean;
}

type FileLoad =
  | {
      readonly kind: 'ok';
      readonly entries: Map<string, Entry>;
      readonly empty: boolean;
      readonly signature: string;
      readonly mtimeMs: number;
    }
  | { readonly kind: 'missing' }
  | { readonly kind: 'invalid'; readonly error: SecretError; readonly signature: string };

type KeyLoad =
  | { readonly kind: 'ok'; readonly entry: Entry }
  | { readonly kind: 'missing' }
  | { readonly kind: 'invalid'; readonly error: SecretError };

interface DirScan {
  readonly entries: Map<string, Entry>;
  readonly problems: Map<string, SecretError>;
  /** Names inside `..data` (Kubernetes layout), empty otherwise. */
  readonly dataNames: ReadonlySet<string>;
  readonly hasData: boolean;
}

type Target = 'all' | Set<string>;

interface WatchState {
  readonly watcher: DirWatcher;
  armed: boolean;
  stopped: boolean;
  /** Key -> version as last reported to watchers. */
  emitted: Map<string, string>;
  /** What the next immediate re-read covers, and what changed since the last emission. */
  pending: Target | undefined;
  touched: Target | undefined;
  eventSeq: number;
  /** `eventSeq` when the latest re-read started: later events need another one. */
  readSeq: number;
  /** A re-read saw a state that may be a write in progress (missing, empty, unparsable). */
  suspect: boolean;
  running: Promise<void> | undefined;
  immediateQueued: boolean;
  immediateRuns: number;
  settleTimer: NodeJS.Timeout | undefined;
  burstStart: number;
}

const DEFAULT_DEBOUNCE_MS = 25;
const IMMEDIATE_REREADS = 3;

/**
 * Secrets from a JSON file, a `.env` file, or a directory with one file per key (Docker's
 * `/run/secrets`, Kubernetes secret volumes with their `..data` link), with live watching and
 * atomic writes.
 *
 * - Reads: without a watch, each `get` checks the file (one `stat`) and re-reads it when it
 *   changed; a directory is read key by key. While watched, values are served from memory and
 *   kept current by the watch.
 * - Watching: the directory is watched (not the file's inode), so in-place writes, editors'
 *   rename-over, delete and re-create, a directory created later, and the Kubernetes `..data`
 *   switch are all seen. A new value is readable as soon as a complete file is seen; events
 *   come once per effective change after `debounceMs` of quiet.
 * - A file that does not parse keeps the last good values and emits `error`, whose message has a
 *   line number at most, never the file's text.
 * - Writes go to a temporary file, are flushed, renamed over the target (mode 0600) and the
 *   directory is flushed: a crash leaves the old file or the new one, never a truncated one.
 *   Writes to one file are serialized within the process.
 * - Files or directories readable by group or others cause a `warning` event, or a refusal in
 *   `strict` mode.
 *
 * @example
 * ```ts
 * const secrets = new FileProvider({ path: '/var/run/secrets/app' }); // a Kubernetes volume
 * const password = await secrets.get('db-password');
 * const handle = secrets.watch(emitter); // `rotated` when kubelet swaps `..data`
 * ```
 */
export class FileProvider extends BaseProvider {
  /** Absolute path of the file or directory. */
  readonly path: string;
  /** The layout in use (given or detected). */
  readonly format: FileFormat;
  readonly #jsonKeys: JsonKeyStyle;
  readonly #trailingNewline: TrailingNewline;
  readonly #debounceMs: number;
  readonly #strict: boolean;
  readonly #checkPermissions: boolean;
  readonly #polling: boolean;
  readonly #pollInterval: number;
  readonly #persistent: boolean;

  /** The last good values (file formats always; directory format while watched). */
  #entries: Map<string, Entry> | undefined;
  /** Stat signature of the file the entries (or the load error) came from. */
  #signature: string | undefined;
  /** Why the file cannot be read, when there are no last good values to serve. */
  #loadError: SecretError | undefined;
  /** Per-key failures of a directory (strict permissions), served by `get`. */
  #keyErrors = new Map<string, SecretError>();
  #refreshing: Promise<void> | undefined;
  /** Names that Kubernetes links into `..data`: their links change after a switch, not values. */
  #dataNames: ReadonlySet<string> = new Set();
  #hasData = false;
  #previousDataNames: ReadonlySet<string> = new Set();
  #watch: WatchState | undefined;
  #warned = new Set<string>();
  /** Bumped by this provider's own writes: a read that started before one must not undo it. */
  #writes = 0;
  #stats = { reloads: 0, fsEvents: 0, ignoredEvents: 0 };

  constructor(options: FileProviderOptions) {
    super({ ...options, name: options.name ?? PROVIDER_NAME, capabilities: { checkAndSet: true } });
    if (typeof options.path !== 'string' || options.path === '') {
      throw new InvalidConfigError(
        { provider: this.name },
        `invalid configuration: "path" must be a non-empty string (provider "${this.name}")`,
      );
    }
    this.path = resolve(options.path);
    this.format = options.format ?? detectFormat(this.path, this.name);
    if (!['json', 'env', 'directory'].includes(this.format)) {
      throw new InvalidConfigError(
        { provider: this.name },
        `invalid configuration: unknown format (provider "${this.name}")`,
      );
    }
    this.#jsonKeys = options.jsonKeys ?? 'nested';
    this.#trailingNewline = options.trailingNewline ?? 'strip-one';
    this.#debounceMs = Math.max(0, options.debounceMs ?? DEFAULT_DEBOUNCE_MS);
    this.#strict = options.strict ?? false;
    this.#checkPermissions = (options.checkPermissions ?? true) && process.platform !== 'win32';
    this.#polling = options.usePolling ?? false;
    this.#pollInterval = Math.max(10, options.pollInterval ?? 1000);
    this.#persistent = options.persistent ?? false;
    // kubelet owns a volume with a `..data` link: such a directory is read-only from the start.
    const kubernetesVolume =
      this.format === 'directory' && lstatSyncOrUndefined(join(this.path, '..data')) !== undefined;
    if (options.readOnly || kubernetesVolume) {
      // A read-only instance has no write hooks, so its capabilities say so.
      Object.defineProperty(this, 'writeSecret', { value: undefined });
      Object.defineProperty(this, 'deleteSecret', { value: undefined });
    }
  }

  /** Counters since construction. */
  stats(): FileProviderStats {
    return { ...this.#stats };
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), format: this.format, path: this.path };
  }

  // ---- keys ----------------------------------------------------------------------------------

  protected override validateKey(raw: unknown): string {
    const key = super.validateKey(raw);
    const reject = (why: string) => {
      throw new InvalidKeyError(
        { provider: this.name },
        `invalid key for a ${this.format} secrets source: ${why}`,
      );
    };
    if (this.format === 'directory') {
      if (key.includes('/') || key.includes('\\')) reject('path separators are not allowed');
      if (key === '.' || key === '..' || key.startsWith('..'))
        reject('names starting with ".." are reserved');
      if (Buffer.byteLength(key) > 255) reject('longer than a file name may be');
    } else if (this.format === 'env') {
      if (!isDotenvKey(key)) reject('only letters, digits, "_", "." and "-" are allowed');
    } else {
      const segments = this.#jsonKeys === 'nested' ? key.split('.') : [key];
      if (segments.some((segment) => segment === '')) reject('empty path segment');
      if (segments.some(isForbiddenSegment)) reject('reserved name');
    }
    return key;
  }

  // ---- reads ---------------------------------------------------------------------------------

  protected override async readSecret(key: string): Promise<StoredSecret | undefined> {
    const entry = await this.#entry(key);
    return entry === undefined ? undefined : { value: entry.value, metadata: metadataOf(entry) };
  }

  protected override async readMetadata(key: string): Promise<Omit<SecretMetadata, 'key'> | undefined> {
    const entry = await this.#entry(key);
    return entry === undefined ? undefined : metadataOf(entry);
  }

  protected override async listKeys(): Promise<string[]> {
    if (this.#watch?.armed && this.#entries !== undefined) return [...this.#entries.keys()];
    if (this.format === 'directory') {
      const scan = await this.#scanDirectory();
      return scan === undefined ? [] : [...scan.entries.keys()];
    }
    await this.#refreshFile();
    if (this.#entries === undefined && this.#loadError !== undefined) throw this.#loadError;
    return [...(this.#entries?.keys() ?? [])];
  }

  async #entry(key: string): Promise<Entry | undefined> {
    if (this.#watch?.armed && this.#entries !== undefined) {
      const entry = this.#entries.get(key);
      if (entry === undefined && this.#keyErrors.has(key)) throw this.#keyErrors.get(key);
      if (entry === undefined && this.#loadError !== undefined) throw this.#loadError;
      return entry;
    }
    if (this.format === 'directory') {
      const loaded = await this.#loadKey(key);
      if (loaded.kind === 'invalid') throw loaded.error;
      return loaded.kind === 'ok' ? loaded.entry : undefined;
    }
    await this.#refreshFile();
    if (this.#entries === undefined && this.#loadError !== undefined) throw this.#loadError;
    return this.#entries?.get(key);
  }

  /** Brings the file's values up to date when its stat changed (unwatched reads). */
  #refreshFile(): Promise<void> {
    this.#refreshing ??= (async () => {
      try {
        const info = await statOrUndefined(this.path);
        if (info === undefined) {
          this.#apply(new Map(), 'missing');
          return;
        }
        if (signatureOf(info) === this.#signature) return;
        const writes = this.#writes;
        const loaded = await this.#loadFile();
        // Our own write replaced the file meanwhile and already set what it wrote.
        if (writes !== this.#writes) return;
        if (loaded.kind === 'missing') {
          this.#apply(new Map(), 'missing');
        } else if (loaded.kind === 'invalid') {
          // Keep the last good values; remember the failure so the same bad file is not re-parsed.
          if (this.#entries === undefined) this.#loadError = loaded.error;
          this.#signature = loaded.signature;
        } else if (
          loaded.empty &&
          nonEmpty(this.#entries) &&
          Date.now() - loaded.mtimeMs < this.#debounceMs
        ) {
          // Just truncated: a writer is probably about to fill it. The next read looks again.
        } else {
          this.#apply(loaded.entries, loaded.signature);
        }
      } finally {
        this.#refreshing = undefined;
      }
    })();
    return this.#refreshing;
  }

  #apply(entries: Map<string, Entry>, signature: string | undefined): void {
    this.#entries = entries;
    this.#signature = signature;
    this.#loadError = undefined;
  }

  /** Reads and parses the whole file. I/O failures other than "missing" throw. */
  async #loadFile(): Promise<FileLoad> {
    this.#stats.reloads++;
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(this.path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (error) {
      if (isMissing(error)) return { kind: 'missing' };
      throw error;
    }
    try {
      const info = await handle.stat({ bigint: true });
      const signature = signatureOf(info);
      if (!info.isFile()) {
        const error = new InvalidConfigError(
          { provider: this.name, operation: 'get' },
          `secrets path "${this.path}" is not a regular file (provider "${this.name}")`,
        );
        return { kind: 'invalid', error, signature };
      }
      const refusal = this.#checkMode(this.path, Number(info.mode));
      if (refusal !== undefined) return { kind: 'invalid', error: refusal, signature };
      const text = await handle.readFile('utf8');
      let values: Map<string, string>;
      try {
        values = this.#parse(text);
      } catch (error) {
        return { kind: 'invalid', error: this.#parseError(error), signature };
      }
      const updatedAt = new Date(Number(info.mtimeMs));
      const entries = new Map<string, Entry>();
      for (const [key, value] of values)
        entries.set(key, { value, version: fingerprint(value), updatedAt, empty: false });
      return { kind: 'ok', entries, empty: text.length === 0, signature, mtimeMs: Number(info.mtimeMs) };
    } finally {
      await handle.close().catch(() => {});
    }
  }

  #parse(text: string): Map<string, string> {
    if (this.format === 'env') return parseDotenv(text);
    // An empty JSON file is "no secrets yet", which is what a new file provider writes into.
    if (text.trim() === '') return new Map();
    return flattenJson(parseJsonDocument(text), this.#jsonKeys);
  }

  #parseError(error: unknown, operation: SecretOperation = 'get'): SecretError {
    const where =
      error instanceof DotenvSyntaxError || error instanceof JsonSyntaxError
        ? error.message
        : 'invalid content';
    const kind = this.format === 'env' ? '.env' : 'JSON';
    // The parsers' messages carry a position at most; the cause keeps only the error's name.
    return new InvalidValueError(
      { provider: this.name, operation, cause: sanitizeCause(error, where) },
      `secrets file "${this.path}" is not valid ${kind} (${where}) (provider "${this.name}")`,
    );
  }

  /** Every key of the directory, following Kubernetes' `..data` link. `undefined`: no directory. */
  async #scanDirectory(): Promise<DirScan | undefined> {
    this.#stats.reloads++;
    let names: string[];
    try {
      names = await readdir(this.path);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    const dirInfo = await statOrUndefined(this.path);
    if (dirInfo === undefined) return undefined;
    const refusal = this.#checkMode(this.path, Number(dirInfo.mode));
    if (refusal !== undefined) throw refusal;
    let dataNames: string[] = [];
    if (names.includes('..data')) {
      try {
        dataNames = (await readdir(join(this.path, '..data'))).filter((name) => !name.startsWith('..'));
      } catch (error) {
        if (!isMissing(error)) throw error;
      }
    }
    const keys = new Set([...names.filter((name) => !name.startsWith('..')), ...dataNames]);
    const entries = new Map<string, Entry>();
    const problems = new Map<string, SecretError>();
    await Promise.all(
      [...keys].map(async (key) => {
        const loaded = await this.#readKeyFile(key);
        if (loaded.kind === 'ok') entries.set(key, loaded.entry);
        else if (loaded.kind === 'invalid') problems.set(key, loaded.error);
      }),
    );
    // Keep the directory's order stable for `keys()`.
    const ordered = new Map([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    return { entries: ordered, problems, dataNames: new Set(dataNames), hasData: names.includes('..data') };
  }

  async #loadKey(key: string): Promise<KeyLoad> {
    this.#stats.reloads++;
    return this.#readKeyFile(key);
  }

  /**
   * One key of the directory: `<dir>/<key>` (a file, or a link such as Kubernetes' `<key> ->
   * ..data/<key>`), else `<dir>/..data/<key>` (a key kubelet has not linked yet). Entries that
   * are not regular files (sub-directories) are not keys.
   */
  async #readKeyFile(key: string): Promise<KeyLoad> {
    let path = join(this.path, key);
    try {
      await lstat(path);
    } catch (error) {
      if (!isMissing(error)) throw error;
      path = join(this.path, '..data', key);
    }
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (error) {
      if (isMissing(error) || (error as { code?: string }).code === 'ELOOP') return { kind: 'missing' };
      throw error;
    }
    try {
      const info = await handle.stat();
      if (!info.isFile()) return { kind: 'missing' };
      const refusal = this.#checkMode(path, info.mode, key);
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
    switch (this.#trailingNewline) {
      case 'keep':
        return raw;
      case 'strip-all':
        return raw.replace(/[\r\n]+$/, '');
      default:
        if (raw.endsWith('\r\n')) return raw.slice(0, -2);
        return raw.endsWith('\n') ? raw.slice(0, -1) : raw;
    }
  }

  /** Warns (once per path and mode) or, in strict mode, returns the refusal. */
  #checkMode(path: string, mode: number, key?: string): SecretError | undefined {
    if (!this.#checkPermissions || (mode & 0o044) === 0) return undefined;
    if (this.#strict)
      return new InsecurePermissionsError({ provider: this.name, key, operation: 'get' }, path, mode);
    const id = `${path}\0${mode}`;
    if (!this.#warned.has(id)) {
      this.#warned.add(id);
      this.emit('warning', {
        provider: this.name,
        code: 'INSECURE_PERMISSIONS',
        message: describeMode(path, mode),
        key,
        detectedAt: new Date(),
      });
    }
    return undefined;
  }

  // ---- writes --------------------------------------------------------------------------------

  protected override async writeSecret(
    key: string,
    value: string,
    context: HookContext & SetOptions,
  ): Promise<void> {
    if (this.format === 'directory') {
      await this.#assertDirectoryWritable(key, 'set');
      const path = join(this.path, key);
      await withFileLock(path, async () => {
        const current = await this.#readKeyFile(key);
        if (current.kind === 'invalid') throw current.error;
        this.#checkVersion(key, current.kind === 'ok' ? current.entry.version : undefined, context.ifVersion);
        // With `strip-one`, a value ending in a newline gets one more, so it reads back unchanged.
        const content = this.#trailingNewline === 'strip-one' && value.endsWith('\n') ? `${value}\n` : value;
        await writeFileAtomic(path, content);
        this.#applyOwnWrite(key, value);
      });
      return;
    }
    await withFileLock(this.path, async () => {
      const text = await this.#readForUpdate('set');
      const values = this.#parseForUpdate(text, 'set');
      const current = values.get(key);
      this.#checkVersion(key, current === undefined ? undefined : fingerprint(current), context.ifVersion);
      let next: string;
      if (this.format === 'env') {
        next = setDotenvValue(text, key, value);
      } else {
        const document = text.trim() === '' ? {} : parseJsonDocument(text);
        setJsonValue(document, key, value, this.#jsonKeys);
        next = formatJson(document);
      }
      await writeFileAtomic(this.path, next);
      await this.#applyOwnFile(next);
    });
  }

  protected override async deleteSecret(key: string): Promise<boolean> {
    if (this.format === 'directory') {
      await this.#assertDirectoryWritable(key, 'delete');
      const path = join(this.path, key);
      return withFileLock(path, async () => {
        try {
          const info = await lstat(path);
          if (info.isDirectory()) return false;
        } catch (error) {
          if (isMissing(error)) return false;
          throw error;
        }
        await unlink(path);
        await syncDirectory(this.path);
        this.#applyOwnWrite(key, undefined);
        return true;
      });
    }
    return withFileLock(this.path, async () => {
      const text = await this.#readForUpdate('delete');
      const values = this.#parseForUpdate(text, 'delete');
      if (!values.has(key)) return false;
      let next: string | undefined;
      if (this.format === 'env') {
        next = deleteDotenvValue(text, key);
      } else {
        const document = parseJsonDocument(text);
        next = deleteJsonValue(document, key, this.#jsonKeys) ? formatJson(document) : undefined;
      }
      if (next === undefined) return false;
      await writeFileAtomic(this.path, next);
      await this.#applyOwnFile(next);
      return true;
    });
  }

  async #assertDirectoryWritable(key: string, operation: SecretOperation): Promise<void> {
    // kubelet owns a `..data` layout and would undo or trip over our files.
    if ((await lstatOrUndefined(join(this.path, '..data'))) !== undefined) {
      throw new ReadOnlyError(
        { provider: this.name, key, operation },
        `secrets directory "${this.path}" is a Kubernetes volume (it has "..data"); it is read-only (provider "${this.name}")`,
      );
    }
  }

  async #readForUpdate(operation: SecretOperation): Promise<string> {
    try {
      return await readFile(this.path, 'utf8');
    } catch (error) {
      if (isMissing(error)) return '';
      throw mapFileError(error, { provider: this.name, operation }) ?? error;
    }
  }

  #parseForUpdate(text: string, operation: SecretOperation): Map<string, string> {
    try {
      return this.#parse(text);
    } catch (error) {
      // Rewriting a file we cannot read would drop whatever it holds.
      throw this.#parseError(error, operation);
    }
  }

  #checkVersion(key: string, current: string | undefined, expected: string | null | undefined): void {
    if (expected === undefined) return;
    const wanted = expected === null || expected === '0' ? undefined : expected;
    if (current !== wanted) {
      throw new SecretConflictError(
        { provider: this.name, key, operation: 'set' },
        `check-and-set failed for "${key}": version mismatch (provider "${this.name}")`,
      );
    }
  }

  /** After writing the whole file: serve what was written, and let watchers hear of it. */
  async #applyOwnFile(text: string): Promise<void> {
    this.#writes++;
    const info = await statOrUndefined(this.path);
    const updatedAt = info === undefined ? new Date() : new Date(Number(info.mtimeMs));
    const entries = new Map<string, Entry>();
    for (const [key, value] of this.#parse(text))
      entries.set(key, { value, version: fingerprint(value), updatedAt, empty: false });
    this.#apply(entries, info === undefined ? undefined : signatureOf(info));
    if (this.#watch?.armed) this.#scheduleSettle(this.#watch);
  }

  #applyOwnWrite(key: string, value: string | undefined): void {
    this.#writes++;
    const watch = this.#watch;
    if (watch?.armed !== true || this.#entries === undefined) return;
    if (value === undefined) this.#entries.delete(key);
    else
      this.#entries.set(key, {
        value,
        version: fingerprint(value),
        updatedAt: new Date(),
        empty: value === '',
      });
    this.#keyErrors.delete(key);
    this.#scheduleSettle(watch);
  }

  // ---- watching ------------------------------------------------------------------------------

  protected override async startWatch(emit: EmitFunction): Promise<() => Promise<void>> {
    const watcher = new DirWatcher(
      {
        dir: this.format === 'directory' ? this.path : dirname(this.path),
        polling: this.#polling,
        interval: this.#pollInterval,
        persistent: this.#persistent,
      },
      {
        onChange: (name) => this.#onFsEvent(state, name),
        onError: (error) => this.#reportError(emit, error),
      },
    );
    const state: WatchState = {
      watcher,
      armed: false,
      stopped: false,
      emitted: new Map(),
      pending: undefined,
      touched: undefined,
      eventSeq: 0,
      readSeq: 0,
      suspect: false,
      running: undefined,
      immediateQueued: false,
      immediateRuns: 0,
      settleTimer: undefined,
      burstStart: 0,
    };
    this.#watch = state;
    this.#warned.clear();
    // Arm first, then read: a change during the read is then both seen and notified.
    await watcher.start();
    state.readSeq = state.eventSeq;
    state.pending = undefined;
    state.touched = undefined;
    try {
      await this.#reread(state, 'all', true);
    } catch (error) {
      this.#reportError(emit, error);
    }
    state.emitted = versionsOf(this.#entries);
    state.armed = true;
    // Anything notified during the first read gets its own pass.
    if (state.eventSeq !== state.readSeq) {
      state.pending = 'all';
      state.touched = 'all';
      this.#queueImmediate(state);
      this.#scheduleSettle(state);
    }
    return async () => {
      state.stopped = true;
      state.armed = false;
      clearTimeout(state.settleTimer);
      await watcher.stop();
      await state.running?.catch(() => {});
      if (this.#watch === state) this.#watch = undefined;
      // Unwatched directory reads go to the disk; file reads re-check the stat.
      if (this.format === 'directory') this.#entries = undefined;
    };
  }

  #reportError(emit: EmitFunction, error: unknown): void {
    const mapped = isSecretError(error) ? error : this.mapError(error, { operation: 'watch' });
    emit('error', { provider: this.name, error: mapped, key: mapped.key, detectedAt: new Date() });
  }

  /** Which keys a notification may concern: all of them, one, or none. */
  #classify(name: string | null): Target | undefined {
    if (name === null) return 'all';
    if (this.format !== 'directory') {
      // `..data` swaps when the file sits in a Kubernetes volume.
      return name === basename(this.path) || name === '..data' ? 'all' : undefined;
    }
    if (name === '..data') return 'all';
    // Timestamped directories, `..data_tmp` and our own temporary files.
    if (name.startsWith('..') || name.startsWith(TEMP_PREFIX)) return undefined;
    return new Set([name]);
  }

  #onFsEvent(state: WatchState, name: string | null): void {
    if (state.stopped) return;
    this.#stats.fsEvents++;
    const target = this.#classify(name);
    if (target === undefined) {
      this.#stats.ignoredEvents++;
      return;
    }
    if (name !== null && target !== 'all' && this.#hasData) {
      // In a Kubernetes layout, a top-level name that is (or was) a `..data/<name>` link changes
      // after a switch whose `..data` notification already caused a read: no second read.
      void this.#isDataLink(name).then((link) => {
        if (link) this.#stats.ignoredEvents++;
        else this.#accept(state, target);
      });
      return;
    }
    this.#accept(state, target);
  }

  async #isDataLink(name: string): Promise<boolean> {
    try {
      return normalize(await readlink(join(this.path, name))) === join('..data', name);
    } catch (error) {
      return isMissing(error) && (this.#dataNames.has(name) || this.#previousDataNames.has(name));
    }
  }

  #accept(state: WatchState, target: Target): void {
    if (state.stopped) return;
    state.eventSeq++;
    state.pending = merge(state.pending, target);
    state.touched = merge(state.touched, target);
    if (!state.armed) return;
    this.#queueImmediate(state);
    this.#scheduleSettle(state);
  }

  /**
   * Re-reads at once (after the current tick, so one batch of notifications gives one read):
   * the new value is readable within a read of the change. Notifications that arrive during a
   * read cause another read right after it, a few times, then the settle re-read takes over.
   */
  #queueImmediate(state: WatchState): void {
    if (state.immediateQueued || state.running !== undefined || state.stopped) return;
    state.immediateQueued = true;
    setImmediate(() => {
      state.immediateQueued = false;
      if (state.running !== undefined || state.pending === undefined || state.stopped) return;
      const target = state.pending;
      state.pending = undefined;
      this.#run(state, target, false).finally(() => {
        if (state.pending !== undefined && state.immediateRuns < IMMEDIATE_REREADS) {
          state.immediateRuns++;
          this.#queueImmediate(state);
        }
      });
    });
  }

  #run(state: WatchState, target: Target, settled: boolean): Promise<void> {
    state.readSeq = state.eventSeq;
    const running = this.#reread(state, target, settled)
      .catch((error: unknown) => {
        if (!state.stopped) this.#reportError(this.emit, error);
      })
      .finally(() => {
        if (state.running === running) state.running = undefined;
      });
    state.running = running;
    return running;
  }

  /** Debounced: after `debounceMs` of quiet (at most 20 times that in a storm), settle. */
  #scheduleSettle(state: WatchState): void {
    if (state.stopped) return;
    const now = performance.now();
    if (state.settleTimer === undefined) state.burstStart = now;
    else clearTimeout(state.settleTimer);
    const delay = Math.max(0, Math.min(this.#debounceMs, state.burstStart + this.#debounceMs * 20 - now));
    state.settleTimer = setTimeout(() => void this.#settle(state), delay);
    if (!this.#persistent) state.settleTimer.unref();
  }

  /**
   * The end of a burst of changes: re-read what may still be in flux (a file seen missing, empty
   * or unparsable, or changed after the last read; always when polling, where notifications can
   * be dropped), then emit one event per effective change since the last emission.
   */
  async #settle(state: WatchState): Promise<void> {
    state.settleTimer = undefined;
    while (state.running !== undefined) await state.running;
    if (state.stopped) return;
    const touched = state.touched ?? 'all';
    const reread =
      state.suspect ||
      state.eventSeq !== state.readSeq ||
      state.pending !== undefined ||
      state.watcher.polling;
    state.touched = undefined;
    state.suspect = false;
    state.immediateRuns = 0;
    if (reread) {
      state.pending = undefined;
      await this.#run(state, touched, true);
      if (state.stopped) return;
    }
    const versions = versionsOf(this.#entries);
    emitDiff(this.emit, this.name, diffSnapshots(state.emitted, versions));
    state.emitted = versions;
  }

  /**
   * Reads `target` and applies it to the served values. Before the quiet period (`settled` is
   * false) a file seen missing, empty or unparsable may be mid-write: it keeps the last good
   * value and marks the burst for a re-read. Once settled, what is on disk is the truth, and a
   * file that still does not parse is reported.
   */
  async #reread(state: WatchState, target: Target, settled: boolean): Promise<void> {
    const writes = this.#writes;
    // Our own write landed during the read, which may predate it: drop the result, read again.
    const overtaken = () => {
      if (state.stopped) return true;
      if (writes === this.#writes) return false;
      state.pending = merge(state.pending, target);
      state.eventSeq++;
      return true;
    };
    if (this.format !== 'directory') {
      const loaded = await this.#loadFile();
      if (overtaken()) return;
      const current = this.#entries ?? new Map<string, Entry>();
      if (loaded.kind === 'ok') {
        if (!settled && loaded.empty && current.size > 0) state.suspect = true;
        else this.#apply(loaded.entries, loaded.signature);
      } else if (loaded.kind === 'missing') {
        if (!settled && current.size > 0) state.suspect = true;
        else this.#apply(new Map(), 'missing');
      } else if (!settled) {
        state.suspect = true;
      } else {
        if (this.#entries === undefined) this.#loadError = loaded.error;
        this.#signature = loaded.signature;
        this.#reportError(this.emit, loaded.error);
      }
      return;
    }
    let scan: DirScan | undefined;
    let loads: ReadonlyArray<readonly [string, KeyLoad]> = [];
    if (target === 'all') scan = await this.#scanDirectory();
    else loads = await Promise.all([...target].map(async (key) => [key, await this.#loadKey(key)] as const));
    if (overtaken()) return;
    const current = this.#entries ?? new Map<string, Entry>();
    const next = new Map(current);
    const errors: SecretError[] = [];
    // Keys read through `..data` come from a payload kubelet switched in whole: never mid-write.
    const atomic: ReadonlySet<string> = scan?.hasData
      ? new Set([...scan.dataNames, ...this.#dataNames])
      : new Set();
    const accept = (key: string, loaded: KeyLoad) => {
      const old = current.get(key);
      const vanishing = loaded.kind === 'missing' || (loaded.kind === 'ok' && loaded.entry.empty);
      if (!settled && old !== undefined && !old.empty && vanishing && !atomic.has(key)) {
        state.suspect = true;
        return;
      }
      if (loaded.kind === 'ok') {
        next.set(key, loaded.entry);
        this.#keyErrors.delete(key);
      } else if (loaded.kind === 'missing') {
        next.delete(key);
        this.#keyErrors.delete(key);
      } else {
        // Last good value stays; the refusal is served to `get` when there is none.
        this.#keyErrors.set(key, loaded.error);
        if (settled) errors.push(loaded.error);
      }
    };
    if (target === 'all') {
      const keys = new Set([
        ...current.keys(),
        ...(scan?.entries.keys() ?? []),
        ...(scan?.problems.keys() ?? []),
      ]);
      for (const key of keys) {
        const entry = scan?.entries.get(key);
        const problem = scan?.problems.get(key);
        accept(
          key,
          entry !== undefined
            ? { kind: 'ok', entry }
            : problem !== undefined
              ? { kind: 'invalid', error: problem }
              : { kind: 'missing' },
        );
      }
      if (scan !== undefined) {
        this.#previousDataNames = this.#dataNames;
        this.#dataNames = scan.dataNames;
        this.#hasData = scan.hasData;
      }
    } else {
      for (const [key, loaded] of loads) accept(key, loaded);
    }
    // Sorted like a scan, so `keys()` does not depend on the order changes arrived in.
    this.#entries = new Map([...next].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    for (const error of errors) this.#reportError(this.emit, error);
  }

  protected override mapError(
    error: unknown,
    context: { operation: SecretOperation; key?: string | undefined },
  ): SecretError {
    return mapFileError(error, { provider: this.name, ...context }) ?? super.mapError(error, context);
  }
}

function detectFormat(path: string, provider: string): FileFormat {
  const name = basename(path).toLowerCase();
  if (name.endsWith('.json')) return 'json';
  if (name === '.env' || name.startsWith('.env.') || name.endsWith('.env')) return 'env';
  let isDirectory: boolean;
  try {
    isDirectory = statSync(path).isDirectory();
  } catch {
    // Not there yet: a secrets directory that a volume mount or a deploy step will create.
    return 'directory';
  }
  if (isDirectory) return 'directory';
  throw new InvalidConfigError(
    { provider },
    `cannot tell the format of "${path}" from its name: pass format 'json', 'env' or 'directory' (provider "${provider}")`,
  );
}

function metadataOf(entry: Entry): Omit<SecretMetadata, 'key'> {
  return { version: entry.version, updatedAt: entry.updatedAt };
}

function versionsOf(entries: Map<string, Entry> | undefined): Map<string, string> {
  return new Map([...(entries ?? [])].map(([key, entry]) => [key, entry.version]));
}

function nonEmpty(entries: Map<string, Entry> | undefined): boolean {
  return entries !== undefined && entries.size > 0;
}

function merge(into: Target | undefined, target: Target): Target {
  if (into === 'all' || target === 'all') return 'all';
  if (into === undefined) return new Set(target);
  for (const name of target) into.add(name);
  return into;
}

function signatureOf(info: {
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  dev: bigint;
}): string {
  return `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
}

function isMissing(error: unknown): boolean {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

async function statOrUndefined(path: string) {
  try {
    return await stat(path, { bigint: true });
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

async function lstatOrUndefined(path: string) {
  try {
    return await lstat(path);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

function lstatSyncOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}
