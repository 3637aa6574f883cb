import { basename, dirname, resolve } from 'node:path';
import {
  InvalidConfigError,
  InvalidKeyError,
  isSecretError,
  type KeysOptions,
  ProviderClosedError,
  ReadOnlyError,
  SecretConflictError,
  type SecretMetadata,
  type SetOptions,
  UnsupportedOperationError,
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
  type Timer,
  toSecretError,
  type VersionSnapshot,
} from '@secret-provider/core/adapter';
import { DirWatcher } from '@secret-provider/file/watcher';
import { DotenvFiles } from './dotenv-files.js';
import { compileSelection, type Selection } from './selection.js';

/** Name of this adapter in errors and events unless another is given. */
export const PROVIDER_NAME = 'env';

/** How many file re-reads in a row may be left unreported while the file keeps changing. */
const MAX_DEFERRALS = 20;

/** An environment: `process.env` or any object of the same shape. */
export type EnvObject = Record<string, string | undefined>;

/**
 * Options of {@link EnvProvider}.
 *
 * Selection: `prefix`, `allow` and `map` choose which variables are secrets and under which
 * keys; they combine in that order (the prefix is matched and stripped, the rest goes through
 * `map`, the result must be in `allow`). `all: true` exposes every variable. Without any of
 * them, `get` reads any variable by its name but `keys()` is refused, so that a redactor or a
 * chain never learns the names of the whole environment by accident.
 */
export interface EnvProviderOptions extends Partial<BaseProviderOptions> {
  /** The environment to read (and write, with `readOnly: false`). @default process.env */
  readonly env?: EnvObject | undefined;
  /** Only variables whose names start with this. */
  readonly prefix?: string | undefined;
  /**
   * Remove `prefix` from names to make keys (`APP_DB_URL` is read as `DB_URL`).
   * @default true
   */
  readonly stripPrefix?: boolean | undefined;
  /** Only these keys (after the prefix is stripped and `map` applied). */
  readonly allow?: readonly string[] | undefined;
  /**
   * Turns a variable name (after the prefix is stripped) into a key, or `undefined` to leave the
   * variable out. Should be one-to-one and pure; results are memoized. Keys of a mapped
   * provider are found by listing the environment, and `set` can only update existing keys.
   */
  readonly map?: ((name: string) => string | undefined) | undefined;
  /** Expose every variable, including through `keys()` and events. @default false */
  readonly all?: boolean | undefined;
  /**
   * `.env` files to load, parsed by dotenv. Later files win over earlier ones (unlike
   * `dotenv.config({ path: [...] })`, where the first wins), and the real environment wins over
   * all files unless `override` is set. Files are read on first use, not in the constructor,
   * and never copied into the environment object.
   */
  readonly files?: string | readonly string[] | undefined;
  /** Let `.env` files win over the real environment. @default false */
  readonly override?: boolean | undefined;
  /** Treat a missing `.env` file as an error instead of an empty one. @default false */
  readonly requireFiles?: boolean | undefined;
  /**
   * Refuse `set` and `delete`. With `readOnly: false`, they change the environment object (never
   * the files).
   * @default true (`set` rejects with `READ_ONLY`)
   */
  readonly readOnly?: boolean | undefined;
  /**
   * The opposite of `readOnly`.
   * @deprecated use `readOnly: false`.
   */
  readonly writable?: boolean | undefined;
  /**
   * While watched: time between polls of the environment, in ms. Each poll also checks the
   * files' inode, size and modification time, a backstop for missed file-system events.
   * @default 500
   */
  readonly pollInterval?: number | undefined;
  /** While watched: quiet time after a file-system event before the file is re-read, in ms. @default 25 */
  readonly debounceMs?: number | undefined;
  /**
   * The old name of `debounceMs`.
   * @deprecated use `debounceMs`.
   */
  readonly debounce?: number | undefined;
}

interface Found {
  readonly value: string;
  /** The variable's name. */
  readonly name: string;
  /** The `.env` file it came from; `undefined` for the environment object. */
  readonly file: string | undefined;
}

/**
 * Secrets from environment variables and `.env` files.
 *
 * Reads an injectable environment object (default `process.env`), with the variables chosen by
 * prefix, allow-list or mapping function (see {@link EnvProviderOptions}). Read-only unless
 * `readOnly: false`. Versions are fingerprints of the values (see `fingerprint` in core), so
 * `metadata` and events never carry values. `watch` polls the environment every `pollInterval`
 * and watches the directories of the `.env` files, re-reading a changed file after `debounceMs`
 * of quiet and again if it changed while being read, and reports `added`, `rotated` and
 * `removed` for the effective values.
 *
 * @example
 * ```ts
 * const env = new EnvProvider({ prefix: 'APP_', files: ['.env', '.env.local'] });
 * const url = await env.get('DATABASE_URL'); // APP_DATABASE_URL from the environment or a file
 * ```
 */
export class EnvProvider extends BaseProvider {
  readonly #env: EnvObject;
  readonly #selection: Selection;
  readonly #files: DotenvFiles | undefined;
  readonly #override: boolean;
  readonly #debounceMs: number;
  /** Last fingerprint per key, so unchanged values are not hashed again. */
  #versions = new Map<string, { readonly value: string; readonly version: string }>();
  /** While watched: re-checks now (after a write of this provider). */
  #recheck: (() => Promise<void>) | undefined;

  constructor(options: EnvProviderOptions = {}) {
    const name = options.name ?? PROVIDER_NAME;
    const pollInterval = options.pollInterval ?? 500;
    const invalid = (message: string) =>
      new InvalidConfigError({ provider: name }, `invalid configuration: ${message}`);
    const readOnly = renamed(options, 'readOnly', 'writable', (writable) => !writable, name) ?? true;
    const debounceMs = renamed(options, 'debounceMs', 'debounce', (debounce) => debounce, name) ?? 25;
    // Compiled before the base is built: what this instance can list is one of its capabilities.
    const selection = compileSelection(options, name);
    super({
      ...options,
      name,
      pollInterval,
      capabilities: {
        write: !readOnly,
        delete: !readOnly,
        list: selection.listable,
        checkAndSet: !readOnly,
      },
    });
    if (!(pollInterval > 0)) throw invalid('pollInterval must be a positive number of ms');
    if (!(typeof debounceMs === 'number' && debounceMs >= 0))
      throw invalid('debounceMs must be a number of ms >= 0');
    const env = options.env ?? process.env;
    if (typeof env !== 'object' || env === null) throw invalid('env must be an object');
    this.#env = env;
    this.#selection = selection;
    this.#override = options.override ?? false;
    this.#debounceMs = debounceMs;
    const files =
      options.files === undefined ? [] : typeof options.files === 'string' ? [options.files] : options.files;
    if (files.some((f) => typeof f !== 'string' || f.length === 0)) throw invalid('files must be paths');
    this.#files =
      files.length === 0
        ? undefined
        : new DotenvFiles(
            files.map((f) => resolve(f)),
            name,
            options.requireFiles ?? false,
          );
  }

  /** The `.env` files, as absolute paths, lowest precedence first. */
  get files(): readonly string[] {
    return this.#files?.paths ?? [];
  }

  /**
   * Whether `key` is set, without reading or fingerprinting its value and without an error for
   * a missing key. Synchronous once the `.env` files are loaded (a chain uses it to skip this
   * provider cheaply).
   */
  protected override hasSecret(key: string): boolean | Promise<boolean> {
    const files = this.#files;
    if (files !== undefined && !files.loaded) return files.load().then(() => this.#holds(key));
    return this.#holds(key);
  }

  /**
   * Re-reads the `.env` files now. While watched, the changes are reported as events.
   * @throws the first file's error; the other files are re-read anyway.
   */
  async reload(): Promise<void> {
    if (this.closed) throw new ProviderClosedError({ provider: this.name, operation: 'refresh' });
    const errors = (await this.#files?.reload(this.#files.paths)) ?? [];
    await this.#recheck?.();
    const first = errors[0];
    if (first !== undefined) throw first;
  }

  override keys(options?: KeysOptions): Promise<string[]> {
    if (!this.#selection.listable && !this.closed) {
      return Promise.reject(
        new UnsupportedOperationError(
          { provider: this.name, operation: 'keys' },
          `provider "${this.name}" lists keys only when told which variables are secrets: pass prefix, allow, map or all: true`,
        ),
      );
    }
    return super.keys(options);
  }

  // ---- hooks ---------------------------------------------------------------------------------

  // Not `async`: once the files are loaded (or when there are none) a read is synchronous, and
  // an async function would add a turn of the microtask queue to every `get`.
  protected override readSecret(key: string): Promise<StoredSecret | undefined> {
    const files = this.#files;
    if (files !== undefined && !files.loaded) return files.load().then(() => this.readSecret(key));
    const found = this.#find(key);
    return Promise.resolve(
      found === undefined ? undefined : { value: found.value, metadata: this.#metadataOf(key, found) },
    );
  }

  protected override readMetadata(key: string): Promise<Omit<SecretMetadata, 'key'> | undefined> {
    const files = this.#files;
    if (files !== undefined && !files.loaded) return files.load().then(() => this.readMetadata(key));
    const found = this.#find(key);
    return Promise.resolve(found === undefined ? undefined : this.#metadataOf(key, found));
  }

  protected override async listKeys(): Promise<string[]> {
    await this.#files?.load();
    return [...this.#entries().keys()];
  }

  protected override async writeSecret(
    key: string,
    value: string,
    context: HookContext & SetOptions,
  ): Promise<void> {
    await this.#files?.load();
    const current = this.#find(key);
    const name = this.#nameForWrite(key, current);
    if (context.ifVersion !== undefined) {
      const expected = context.ifVersion === '0' ? null : context.ifVersion;
      const actual = current === undefined ? null : this.#versionOf(key, current.value);
      if (actual !== expected) {
        throw new SecretConflictError(
          { provider: this.name, key, operation: 'set' },
          `check-and-set failed for "${key}": version mismatch`,
        );
      }
    }
    if (this.#override && this.#files?.lookup(name) !== undefined) {
      throw new SecretConflictError(
        { provider: this.name, key, operation: 'set' },
        `"${key}" is defined by a .env file, which takes precedence over the environment here (override: true); writing the environment would not change it`,
      );
    }
    this.#store(key, name, value);
    await this.#recheck?.();
  }

  protected override async deleteSecret(key: string): Promise<boolean> {
    await this.#files?.load();
    const current = this.#find(key);
    if (current === undefined) return false;
    if (current.file !== undefined) {
      throw new ReadOnlyError(
        { provider: this.name, key, operation: 'delete' },
        `"${key}" comes from a .env file, which this provider does not write (provider "${this.name}")`,
      );
    }
    delete this.#env[current.name];
    await this.#recheck?.();
    return true;
  }

  protected override async startWatch(emit: EmitFunction): Promise<() => Promise<void>> {
    await this.#files?.load();
    let stopped = false;
    let current = this.#snapshot();
    const dirtyFiles = new Set<string>();
    let running: Promise<void> | undefined;
    let again = false;
    let deferrals = 0;

    const reportError = (error: unknown) => {
      if (stopped) return;
      const mapped = isSecretError(error)
        ? error
        : toSecretError(error, { provider: this.name, operation: 'watch' });
      emit('error', { provider: this.name, error: mapped, detectedAt: new Date() });
    };

    // One check at a time; a request during a check runs another one right after it, so a
    // change made while a file was being read is never left unreported (the trailing re-read).
    const check = (): Promise<void> => {
      if (running !== undefined) {
        again = true;
        return running;
      }
      running = (async () => {
        do {
          again = false;
          if (this.#files !== undefined && dirtyFiles.size > 0) {
            const files = [...dirtyFiles];
            dirtyFiles.clear();
            for (const error of await this.#files.reload(files)) reportError(error);
            // More file events came in while reading: what was read may be half written (an
            // in-place write truncates first). The debounce timer, reset by those events, runs
            // another check once they settle; report then. Bounded, for files that never settle.
            if (dirtyFiles.size > 0 && deferrals < MAX_DEFERRALS) {
              deferrals++;
              if (!again) break;
              continue;
            }
          }
          deferrals = 0;
          if (stopped) return;
          try {
            const next = this.#snapshot();
            emitDiff(emit, this.name, diffSnapshots(current, next));
            current = next;
          } catch (error) {
            reportError(error);
          }
        } while (again && !stopped);
      })().finally(() => {
        running = undefined;
      });
      return running;
    };

    // File-system events are debounced: editors and writers produce bursts (truncate, write,
    // rename), and one re-read after the burst is enough.
    let debounceTimer: Timer | undefined;
    const onFileEvent = (paths: readonly string[]) => {
      for (const path of paths) dirtyFiles.add(path);
      debounceTimer?.cancel();
      debounceTimer = this.clock.setTimer(() => check(), this.#debounceMs);
    };

    // The product's one directory watcher, on each directory holding a `.env` file: it follows
    // rename-over, deletion and re-creation, and a directory that appears later.
    const directories = new Map<string, string[]>();
    for (const path of this.#files?.paths ?? []) {
      const dir = dirname(path);
      directories.set(dir, [...(directories.get(dir) ?? []), path]);
    }
    const watchers = [...directories].map(
      ([dir, paths]) =>
        new DirWatcher(
          { dir, polling: false, interval: this.pollInterval, persistent: false },
          {
            onChange: (name) => {
              const changed = name === null ? paths : paths.filter((path) => basename(path) === name);
              if (changed.length > 0) onFileEvent(changed);
            },
            onError: reportError,
          },
        ),
    );
    await Promise.all(watchers.map((watcher) => watcher.start()));

    // The environment has no notifications: it is compared at each poll, and the files' stamps
    // are a backstop for file-system events that never arrive (network file systems).
    const poller = this.createPoller(async () => {
      if (this.#files !== undefined) for (const path of await this.#files.changed()) dirtyFiles.add(path);
      await check();
    }).start();
    this.#recheck = check;

    return async () => {
      this.#recheck = undefined;
      stopped = true;
      debounceTimer?.cancel();
      await Promise.all(watchers.map((watcher) => watcher.stop()));
      await poller.stop();
      await running;
    };
  }

  // ---- internals -----------------------------------------------------------------------------

  #readEnv(name: string): string | undefined {
    // Own properties only: on a plain object, `toString` or `__proto__` would be found otherwise.
    if (!Object.hasOwn(this.#env, name)) return undefined;
    const value = this.#env[name];
    return typeof value === 'string' ? value : undefined;
  }

  /** The effective value of a variable, by the documented precedence. */
  #lookupName(name: string): Found | undefined {
    const fromEnv = this.#readEnv(name);
    if (fromEnv !== undefined && !this.#override) return { value: fromEnv, name, file: undefined };
    const fromFile = this.#files?.lookup(name);
    if (fromFile !== undefined) return { value: fromFile.value, name, file: fromFile.file };
    return fromEnv === undefined ? undefined : { value: fromEnv, name, file: undefined };
  }

  /** Whether `key` is set, without building the answer (the chain asks this for every miss). */
  #holds(key: string): boolean {
    if (!this.#selection.reversible) return this.#find(key) !== undefined;
    const name = this.#selection.toName(key);
    if (name === undefined) return false;
    return this.#readEnv(name) !== undefined || this.#files?.lookup(name) !== undefined;
  }

  #find(key: string): Found | undefined {
    if (this.#selection.reversible) {
      const name = this.#selection.toName(key);
      return name === undefined ? undefined : this.#lookupName(name);
    }
    // A mapping function goes one way only: find the variable that maps to the key.
    for (const name of this.#names()) {
      if (this.#selection.toKey(name) === key) return this.#lookupName(name);
    }
    return undefined;
  }

  /** Candidate variable names, highest-precedence source first. */
  *#names(): Generator<string> {
    const fromFiles = this.#files?.names() ?? [];
    if (this.#override) {
      yield* fromFiles;
      yield* Object.keys(this.#env);
    } else {
      yield* Object.keys(this.#env);
      yield* fromFiles;
    }
  }

  /** Every selected key with its effective value. */
  #entries(): Map<string, Found> {
    const entries = new Map<string, Found>();
    for (const name of this.#names()) {
      const key = this.#selection.toKey(name);
      if (key === undefined || entries.has(key)) continue;
      try {
        this.validateKey(key);
      } catch {
        continue;
      }
      const found = this.#lookupName(name);
      if (found !== undefined) entries.set(key, found);
    }
    return entries;
  }

  #snapshot(): VersionSnapshot {
    const snapshot = new Map<string, string>();
    for (const [key, found] of this.#entries()) snapshot.set(key, this.#versionOf(key, found.value));
    return snapshot;
  }

  #versionOf(key: string, value: string): string {
    const known = this.#versions.get(key);
    if (known !== undefined && known.value === value) return known.version;
    const version = fingerprint(value);
    if (this.#versions.size >= 10_000) this.#versions = new Map();
    this.#versions.set(key, { value, version });
    return version;
  }

  #metadataOf(key: string, found: Found): Omit<SecretMetadata, 'key'> {
    const tags: Record<string, string> =
      found.file === undefined
        ? { source: 'environment', variable: found.name }
        : { source: 'file', variable: found.name, file: found.file };
    return { version: this.#versionOf(key, found.value), tags };
  }

  /**
   * Sets a variable as an own property. An assignment would not do: on a plain object,
   * `env.__proto__ = value` changes nothing and throws nothing.
   */
  #store(key: string, name: string, value: string): void {
    const stored = Reflect.defineProperty(this.#env, name, {
      value,
      writable: true,
      enumerable: true,
      configurable: true,
    });
    if (!stored || this.#readEnv(name) !== value) {
      throw new InvalidKeyError(
        { provider: this.name, key, operation: 'set' },
        `invalid key "${key}": the environment object does not take a variable of this name`,
      );
    }
  }

  #nameForWrite(key: string, current: Found | undefined): string {
    if (key.includes('=')) {
      throw new InvalidKeyError(
        { provider: this.name, key, operation: 'set' },
        'invalid key: an environment variable name cannot contain "="',
      );
    }
    const name = this.#selection.reversible ? this.#selection.toName(key) : current?.name;
    if (name === undefined) {
      throw new InvalidKeyError(
        { provider: this.name, key, operation: 'set' },
        this.#selection.reversible
          ? `invalid key "${key}": not selected by this provider's prefix or allow-list`
          : `invalid key "${key}": a mapped provider can only update variables that already exist`,
      );
    }
    return name;
  }
}

/** Option names already warned about in this process (one deprecation warning each). */
const warnedAliases = new Set<string>();

/**
 * The value of option `current`, or of its deprecated alias `old` (converted), or `undefined`
 * when neither is set. The alias draws one `DeprecationWarning` per process; the two set to
 * different meanings is a configuration error.
 */
function renamed<K extends keyof EnvProviderOptions, O extends keyof EnvProviderOptions>(
  options: EnvProviderOptions,
  current: K,
  old: O,
  convert: (value: NonNullable<EnvProviderOptions[O]>) => EnvProviderOptions[K],
  provider: string,
): EnvProviderOptions[K] | undefined {
  const given = options[current];
  const legacy = options[old];
  if (legacy === undefined) return given;
  if (!warnedAliases.has(old)) {
    warnedAliases.add(old);
    process.emitWarning(`EnvProvider option "${old}" is deprecated: use "${current}"`, {
      type: 'DeprecationWarning',
      code: 'SECRET_PROVIDER_DEPRECATED_OPTION',
    });
  }
  const converted = convert(legacy as NonNullable<EnvProviderOptions[O]>);
  if (given !== undefined && given !== converted) {
    throw new InvalidConfigError(
      { provider },
      `invalid configuration: "${current}" and its deprecated alias "${old}" disagree; pass "${current}" only`,
    );
  }
  return converted;
}
