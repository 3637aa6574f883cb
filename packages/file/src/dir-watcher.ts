import { type FSWatcher, watch as fsWatch } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, relative, sep } from 'node:path';
import { Poller } from '@secret-provider/core/adapter';

/** What a {@link DirWatcher} reports. */
export interface DirWatcherHandlers {
  /**
   * Something in the directory changed: `name` is the entry (one path component), or `null` when
   * anything may have changed (the directory appeared, was replaced, or the event had no name).
   */
  readonly onChange: (name: string | null) => void;
  /** The watcher failed; it goes on (by polling if the native watcher cannot be armed). */
  readonly onError: (error: unknown) => void;
}

export interface DirWatcherOptions {
  readonly dir: string;
  /** Poll with chokidar instead of the platform's notifications (network and some container filesystems). */
  readonly polling: boolean;
  /** Poll interval in ms (polling mode, and while waiting for the directory without notifications). */
  readonly interval: number;
  /** Keep the process alive while watching. */
  readonly persistent: boolean;
}

interface Closer {
  close(): Promise<void> | void;
}

/**
 * Watches one directory, including one that does not exist yet or is deleted and re-created.
 *
 * The directory itself is watched (not its files): editors and `writeFileAtomic` replace files by
 * rename, and Kubernetes swaps the `..data` link, so a watch on a file's inode would go deaf.
 * Node's `fs.watch` is used directly: it reports every inotify event as it comes, where chokidar
 * throttles `change` to one per 50 ms and drops later writes in that window. While the directory
 * is missing, its nearest existing ancestor is watched for the next path component.
 */
export class DirWatcher {
  readonly #options: DirWatcherOptions;
  readonly #handlers: DirWatcherHandlers;
  #current: Closer | undefined;
  #watchingDir = false;
  #stopped = false;
  #queue: Promise<void> = Promise.resolve();
  #polling: boolean;

  constructor(options: DirWatcherOptions, handlers: DirWatcherHandlers) {
    this.#options = options;
    this.#handlers = handlers;
    this.#polling = options.polling;
  }

  /** Whether changes are found by polling (asked for, or the native watcher could not be armed). */
  get polling(): boolean {
    return this.#polling;
  }

  /** Whether the directory itself is being watched (it exists). */
  get watchingDir(): boolean {
    return this.#watchingDir;
  }

  /** Arms the watcher; resolves once changes from now on will be reported. */
  start(): Promise<void> {
    return this.#serial(() => this.#arm());
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#queue;
    await this.#closeCurrent();
  }

  #serial(task: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(async () => {
      if (!this.#stopped) await task();
    });
    this.#queue = run.catch((error: unknown) => this.#handlers.onError(error));
    return run;
  }

  async #closeCurrent(): Promise<void> {
    const current = this.#current;
    this.#current = undefined;
    this.#watchingDir = false;
    await current?.close();
  }

  async #arm(): Promise<void> {
    await this.#closeCurrent();
    const info = await statOrUndefined(this.#options.dir);
    if (info?.isDirectory()) {
      await this.#armDir();
      this.#watchingDir = true;
    } else {
      await this.#armAncestor();
    }
  }

  async #armDir(): Promise<void> {
    const dir = this.#options.dir;
    if (!this.#polling) {
      const watcher = this.#native(dir, (event, name) => {
        this.#handlers.onChange(name);
        // The watched directory itself was deleted or moved (inotify reports its own name): this
        // watch is dead even if a new directory already stands at the path, possibly with the
        // same inode number (ext4 reuses them at once), so it is always armed again.
        if (event === 'rename' && (name === null || name === basename(dir)))
          void this.#serial(() => this.#rearm());
      });
      if (watcher !== undefined) {
        this.#current = watcher;
        return;
      }
    }
    const { watch: chokidarWatch } = await import('chokidar');
    // Polling is the last resort (no inotify): any event means "re-read", and the reader always
    // re-reads after its debounce, so chokidar's throttling cannot hide a write.
    const watcher = chokidarWatch(dir, {
      usePolling: true,
      interval: this.#options.interval,
      binaryInterval: this.#options.interval,
      ignoreInitial: true,
      persistent: this.#options.persistent,
      followSymlinks: false,
      depth: 0,
      atomic: false,
      awaitWriteFinish: false,
    });
    watcher.on('all', (event, path) => {
      const rel = relative(dir, path);
      if (rel === '' && event === 'unlinkDir') {
        void this.#serial(() => this.#rearm());
        return;
      }
      this.#handlers.onChange(rel === '' ? null : (rel.split(sep)[0] ?? null));
    });
    watcher.on('error', (error) => this.#handlers.onError(error));
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    this.#current = { close: () => watcher.close() };
  }

  /** Waits for the directory to appear, watching the deepest ancestor that exists. */
  async #armAncestor(): Promise<void> {
    const dir = this.#options.dir;
    let ancestor = dirname(dir);
    while (!(await statOrUndefined(ancestor))?.isDirectory()) {
      const parent = dirname(ancestor);
      if (parent === ancestor) break;
      ancestor = parent;
    }
    const next = relative(ancestor, dir).split(sep)[0];
    if (!this.#polling) {
      const watcher = this.#native(ancestor, (_event, name) => {
        if (name === null || name === next) void this.#serial(() => this.#recheck());
      });
      if (watcher !== undefined) {
        this.#current = watcher;
        // The directory may have appeared between the stat and the arming.
        if ((await statOrUndefined(dir))?.isDirectory()) void this.#serial(() => this.#recheck());
        return;
      }
    }
    // Until the directory exists (or where notifications fail): look again every interval.
    const poller = new Poller(() => this.#serial(() => this.#recheck()), {
      interval: this.#options.interval,
      jitter: 0,
      first: 'interval',
      keepAlive: this.#options.persistent,
    }).start();
    this.#current = { close: () => void poller.stop() };
  }

  /** Arms again from scratch (the watched directory went away) and reports a change of anything. */
  async #rearm(): Promise<void> {
    await this.#arm();
    this.#handlers.onChange(null);
  }

  /**
   * While waiting for the directory: arms on it once it exists (reporting a change of anything),
   * or on a deeper ancestor once an intermediate directory exists.
   */
  async #recheck(): Promise<void> {
    if (this.#watchingDir) return;
    await this.#arm();
    if (this.#watchingDir) this.#handlers.onChange(null);
  }

  #native(path: string, listener: (event: string, name: string | null) => void): Closer | undefined {
    let watcher: FSWatcher;
    try {
      watcher = fsWatch(path, { persistent: this.#options.persistent, encoding: 'utf8' }, (event, name) =>
        listener(event, name ?? null),
      );
    } catch (error) {
      // Out of inotify watches or descriptors: report it and fall back to polling for good.
      this.#handlers.onError(error);
      this.#polling = true;
      return undefined;
    }
    watcher.on('error', (error) => {
      this.#handlers.onError(error);
      void this.#serial(() => this.#arm().then(() => this.#handlers.onChange(null)));
    });
    return { close: () => watcher.close() };
  }
}

async function statOrUndefined(path: string) {
  try {
    return await stat(path, { bigint: true });
  } catch {
    return undefined;
  }
}
