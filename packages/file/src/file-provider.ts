import { statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import {
  InvalidConfigError,
  InvalidKeyError,
  isSecretError,
  type SecretError,
  type SecretMetadata,
  type SecretOperation,
  type SetOptions,
} from '@secret-provider/core';
import {
  BaseProvider,
  type BaseProviderOptions,
  type EmitFunction,
  type HookContext,
  type StoredSecret,
} from '@secret-provider/core/adapter';
import { DirWatcher } from './dir-watcher.js';
import {
  DirectorySource,
  isKubernetesVolume,
  resolveRoots,
  type TrailingNewline,
} from './directory-source.js';
import { DocumentSource } from './document-source.js';
import { mapFileError } from './errors.js';
import { type DocumentFormat, dotenvFormat, jsonFormat, tomlFormat, yamlFormat } from './formats.js';
import type { JsonKeyStyle } from './json.js';
import { PermissionCheck } from './permissions.js';
import type { Entry, Reading, SecretSource } from './source.js';
import { WatchMachine } from './watch-machine.js';

export type { TrailingNewline } from './directory-source.js';

/** Name of this adapter in errors and events unless another is given. */
export const PROVIDER_NAME = 'file';

/** The layouts a {@link FileProvider} reads. */
export type FileFormat = 'json' | 'yaml' | 'toml' | 'env' | 'directory';

/** Options of {@link FileProvider}. */
export interface FileProviderOptions
  extends Partial<Pick<BaseProviderOptions, 'name' | 'maxKeyLength' | 'cache' | 'clock'>> {
  /** A `.json`, `.yaml`, `.toml` or `.env` file, or a directory with one file per key. */
  readonly path: string;
  /**
   * The layout. By default: `json` for `*.json`, `yaml` for `*.yaml` and `*.yml`, `toml` for
   * `*.toml`, `env` for `.env`, `.env.*` and `*.env`, else `directory` when the path is a
   * directory or does not exist yet.
   */
  readonly format?: FileFormat | undefined;
  /**
   * How keys address a JSON, YAML or TOML document: `nested` reads `{"db":{"password":"x"}}` as
   * `db.password`; `flat` uses the top-level names as they are (objects become their JSON text).
   * @default 'nested'
   */
  readonly jsonKeys?: JsonKeyStyle | undefined;
  /** Trailing newlines in `directory` format. @default 'strip-one' */
  readonly trailingNewline?: TrailingNewline | undefined;
  /**
   * `directory` format: directories outside `path` that its entries may be links into (a
   * Docker-style store of secret files linked from the secrets directory). A link whose target
   * lies anywhere else is refused with `ACCESS_DENIED`; links that stay inside `path` (the
   * Kubernetes `..data` layout) are always followed.
   * @default [] (no link may leave the directory)
   */
  readonly allowLinksInto?: string | readonly string[] | undefined;
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

const DEFAULT_DEBOUNCE_MS = 25;

/**
 * Secrets from a JSON, YAML, TOML or `.env` file, or a directory with one file per key (Docker's
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
 *   position at most, never the file's text.
 * - Writes go to a temporary file, are flushed, renamed over the target (mode 0600) and the
 *   directory is flushed: a crash leaves the old file or the new one, never a truncated one.
 *   Writes to one file are serialized within the process, whatever path reaches it.
 * - Files or directories readable by group or others cause a `warning` event, or a refusal in
 *   `strict` mode. In a directory, links that lead out of it are refused (`ACCESS_DENIED`).
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
  readonly #source: SecretSource;
  readonly #debounceMs: number;
  readonly #polling: boolean;
  readonly #pollInterval: number;
  readonly #persistent: boolean;
  readonly #permissions: PermissionCheck;
  /** While watched: the values served and the state of the watch. */
  #machine: WatchMachine | undefined;
  readonly #stats = { reloads: 0, fsEvents: 0, ignoredEvents: 0 };

  constructor(options: FileProviderOptions) {
    const name = options.name ?? PROVIDER_NAME;
    const { path, format } = locate(options, name);
    // kubelet owns a volume with a `..data` link: such a directory is read-only from the start.
    const readOnly = options.readOnly === true || (format === 'directory' && isKubernetesVolume(path));
    super({
      ...options,
      name,
      capabilities: readOnly ? { write: false, delete: false, checkAndSet: false } : { checkAndSet: true },
    });
    this.path = path;
    this.format = format;
    this.#debounceMs = Math.max(0, options.debounceMs ?? DEFAULT_DEBOUNCE_MS);
    this.#polling = options.usePolling ?? false;
    this.#pollInterval = Math.max(10, options.pollInterval ?? 1000);
    this.#persistent = options.persistent ?? false;
    this.#permissions = new PermissionCheck({
      provider: name,
      enabled: (options.checkPermissions ?? true) && process.platform !== 'win32',
      strict: options.strict ?? false,
      emit: (type, event) => this.emit(type, event),
    });
    const context = {
      provider: name,
      stats: this.#stats,
      permissions: this.#permissions,
      debounceMs: this.#debounceMs,
    };
    this.#source =
      format === 'directory'
        ? new DirectorySource(
            path,
            {
              trailingNewline: options.trailingNewline ?? 'strip-one',
              allowLinksInto: resolveRoots(options.allowLinksInto),
            },
            context,
          )
        : new DocumentSource(path, documentFormat(format, options.jsonKeys ?? 'nested'), context);
  }

  /** Counters since construction. */
  stats(): FileProviderStats {
    return { ...this.#stats };
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), format: this.format, path: this.path };
  }

  protected override validateKey(raw: unknown): string {
    const key = super.validateKey(raw);
    const problem = this.#source.keyProblem(key);
    if (problem !== undefined) {
      throw new InvalidKeyError(
        { provider: this.name },
        `invalid key for a ${this.format} secrets source: ${problem}`,
      );
    }
    return key;
  }

  protected override async readSecret(key: string): Promise<StoredSecret | undefined> {
    const entry = await this.#entry(key);
    return entry === undefined ? undefined : { value: entry.value, metadata: metadataOf(entry) };
  }

  protected override async readMetadata(key: string): Promise<Omit<SecretMetadata, 'key'> | undefined> {
    const entry = await this.#entry(key);
    return entry === undefined ? undefined : metadataOf(entry);
  }

  protected override async listKeys(): Promise<string[]> {
    const machine = this.#machine;
    return machine?.serving ? machine.keys() : this.#source.list();
  }

  protected override async writeSecret(
    key: string,
    value: string,
    context: HookContext & SetOptions,
  ): Promise<void> {
    await this.#source.write(key, value, context.ifVersion, (reading) => this.#applyOwn(reading));
  }

  protected override deleteSecret(key: string): Promise<boolean> {
    return this.#source.remove(key, (reading) => this.#applyOwn(reading));
  }

  #entry(key: string): Promise<Entry | undefined> {
    const machine = this.#machine;
    if (machine?.serving) {
      try {
        return Promise.resolve(machine.lookup(key));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.#source.entry(key);
  }

  #applyOwn(reading: Reading): void {
    this.#machine?.own(reading);
  }

  protected override async startWatch(emit: EmitFunction): Promise<() => Promise<void>> {
    const report = (error: unknown) => this.#reportError(emit, error);
    const watcher: DirWatcher = new DirWatcher(
      {
        dir: this.#source.watchDir,
        polling: this.#polling,
        interval: this.#pollInterval,
        persistent: this.#persistent,
      },
      { onChange: (name) => void this.#onFsEvent(machine, name), onError: report },
    );
    const machine = new WatchMachine({
      read: (target) => this.#source.read(target),
      debounceMs: this.#debounceMs,
      lossy: () => watcher.polling,
      sorted: this.format === 'directory',
      provider: this.name,
      emit,
      report,
      clock: this.clock,
    });
    this.#machine = machine;
    this.#permissions.reset();
    // Arm first, then read: a change during the read is then both seen and notified.
    await watcher.start();
    await machine.start();
    return async () => {
      await machine.stop();
      await watcher.stop();
      if (this.#machine === machine) this.#machine = undefined;
    };
  }

  async #onFsEvent(machine: WatchMachine, name: string | null): Promise<void> {
    this.#stats.fsEvents++;
    let target: Awaited<ReturnType<SecretSource['classify']>>;
    try {
      target = await this.#source.classify(name);
    } catch {
      target = 'all';
    }
    if (target === undefined) this.#stats.ignoredEvents++;
    else machine.notify(target);
  }

  #reportError(emit: EmitFunction, error: unknown): void {
    const mapped: SecretError = isSecretError(error) ? error : this.mapError(error, { operation: 'watch' });
    emit('error', { provider: this.name, error: mapped, key: mapped.key, detectedAt: new Date() });
  }

  protected override mapError(
    error: unknown,
    context: { operation: SecretOperation; key?: string | undefined },
  ): SecretError {
    return mapFileError(error, { provider: this.name, ...context }) ?? super.mapError(error, context);
  }
}

/** The absolute path and the format (given, or detected from the name and the disk). */
function locate(options: FileProviderOptions, provider: string): { path: string; format: FileFormat } {
  if (typeof options.path !== 'string' || options.path === '') {
    throw new InvalidConfigError(
      { provider },
      `invalid configuration: "path" must be a non-empty string (provider "${provider}")`,
    );
  }
  const path = resolve(options.path);
  const format = options.format ?? detectFormat(path, provider);
  if (!['json', 'yaml', 'toml', 'env', 'directory'].includes(format)) {
    throw new InvalidConfigError(
      { provider },
      `invalid configuration: unknown format (provider "${provider}")`,
    );
  }
  return { path, format };
}

function detectFormat(path: string, provider: string): FileFormat {
  const name = basename(path).toLowerCase();
  if (name.endsWith('.json')) return 'json';
  if (name.endsWith('.yaml') || name.endsWith('.yml')) return 'yaml';
  if (name.endsWith('.toml')) return 'toml';
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
    `cannot tell the format of "${path}" from its name: pass format 'json', 'yaml', 'toml', 'env' or 'directory' (provider "${provider}")`,
  );
}

function documentFormat(format: Exclude<FileFormat, 'directory'>, keys: JsonKeyStyle): DocumentFormat {
  switch (format) {
    case 'json':
      return jsonFormat(keys);
    case 'yaml':
      return yamlFormat(keys);
    case 'toml':
      return tomlFormat(keys);
    default:
      return dotenvFormat;
  }
}

function metadataOf(entry: Entry): Omit<SecretMetadata, 'key'> {
  return { version: entry.version, updatedAt: entry.updatedAt };
}
