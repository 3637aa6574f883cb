// A complete adapter over a small real backend, to copy: secrets in a directory, one
// sub-directory per key, one record file per version. Versions are numbers taken by creating
// `<n>.json` exclusively (a hard link fails if another writer took `n` first), so every process
// sharing the directory sees the same version for the same state, and check-and-set holds
// across processes without locks.
import * as nodeFs from 'node:fs/promises';
import { join } from 'node:path';
import {
  AccessDeniedError,
  InvalidKeyError,
  isSecretError,
  ProviderUnavailableError,
  SecretConflictError,
  type SecretError,
  type SecretMetadata,
  type SetOptions,
} from '@secret-provider/core';
import {
  BaseProvider,
  type BaseProviderOptions,
  type ErrorContext,
  type HookContext,
  type StoredSecret,
  type VersionSnapshot,
} from '@secret-provider/core/adapter';

/** Name of this adapter in errors and events unless another is given. */
export const PROVIDER_NAME = 'versioned-dir';

/** The file operations the provider uses; `node:fs/promises` unless a test wraps it. */
export type VersionedDirFs = Pick<
  typeof nodeFs,
  'readdir' | 'readFile' | 'writeFile' | 'link' | 'unlink' | 'mkdir' | 'stat'
>;

export interface VersionedDirProviderOptions extends Partial<Omit<BaseProviderOptions, 'capabilities'>> {
  /** The directory holding the secrets. It must exist: a missing one is an outage, not an empty store. */
  readonly root: string;
  /** Older versions kept per key, readable with `get(key, { version })`. @default 10 */
  readonly keepVersions?: number | undefined;
  /** Refuse writes and deletes. @default false */
  readonly readOnly?: boolean | undefined;
  /** File operations to use instead of `node:fs/promises` (to wrap them in tests). */
  readonly fs?: VersionedDirFs | undefined;
}

/** One version of a key as stored in `<n>.json`; `file` names the value, `null` marks a deletion. */
interface VersionRecord {
  readonly file: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly expiresAt?: string | undefined;
  readonly tags?: Readonly<Record<string, string>> | undefined;
  readonly contentType?: string | undefined;
}

interface Current {
  readonly version: number;
  readonly record: VersionRecord;
}

const RECORD = /^(\d+)\.json$/;
/** Longest directory name most file systems accept is 255 bytes; keep a margin. */
const MAX_ENCODED_KEY = 200;

/**
 * Secrets in a directory shared by any number of processes: reads, writes with check-and-set,
 * expiry, tags and content type, versions, deletes, listing, and watching by polling snapshots
 * of versions through the base class (every `pollInterval` ms, 30 s by default).
 *
 * @example
 * ```ts
 * const secrets = new VersionedDirProvider({ root: '/var/lib/app/secrets', pollInterval: 5_000 });
 * await secrets.set('db/password', 'hunter2', { ifVersion: null }); // create only
 * const { version } = await secrets.metadata('db/password'); // '1', in every process
 * ```
 */
export class VersionedDirProvider extends BaseProvider {
  readonly root: string;
  readonly #fs: VersionedDirFs;
  readonly #keep: number;

  constructor(options: VersionedDirProviderOptions) {
    const writable = options.readOnly !== true;
    super({
      ...options,
      name: options.name ?? PROVIDER_NAME,
      capabilities: {
        write: writable,
        delete: writable,
        versions: true,
        checkAndSet: true,
        expiry: true,
        tags: true,
        contentType: true,
      },
    });
    this.root = options.root;
    this.#fs = options.fs ?? nodeFs;
    this.#keep = Math.max(1, options.keepVersions ?? 10);
  }

  protected override validateKey(key: unknown): string {
    const valid = super.validateKey(key);
    if (encode(valid).length > MAX_ENCODED_KEY)
      throw new InvalidKeyError(
        { provider: this.name },
        `invalid key: longer than ${MAX_ENCODED_KEY} bytes once encoded as a file name`,
      );
    return valid;
  }

  protected override async readSecret(
    key: string,
    context: HookContext & { version?: string | undefined },
  ): Promise<StoredSecret | undefined> {
    const wanted =
      context.version === undefined ? await this.#current(key) : await this.#at(key, context.version);
    if (wanted === undefined || !isLive(wanted.record)) return undefined;
    const value = await this.#fs.readFile(join(this.#dir(key), wanted.record.file as string), 'utf8');
    return { value, metadata: metadataOf(wanted) };
  }

  protected override async readMetadata(key: string): Promise<Omit<SecretMetadata, 'key'> | undefined> {
    const current = await this.#current(key);
    return current !== undefined && isLive(current.record) ? metadataOf(current) : undefined;
  }

  protected override async hasSecret(key: string): Promise<boolean> {
    const current = await this.#current(key);
    return current !== undefined && isLive(current.record);
  }

  protected override async writeSecret(
    key: string,
    value: string,
    options: HookContext & SetOptions,
  ): Promise<void> {
    await this.#fs.mkdir(this.#dir(key), { mode: 0o700 }).catch((error: { code?: string }) => {
      if (error.code !== 'EEXIST') throw error;
    });
    await this.#publish(key, options.ifVersion, (previous) => ({
      value,
      record: {
        createdAt:
          previous !== undefined && isLive(previous.record)
            ? previous.record.createdAt
            : new Date().toISOString(),
        updatedAt: new Date().toISOString(),
        expiresAt: options.expiresAt?.toISOString(),
        tags: options.tags,
        contentType: options.contentType,
      },
    }));
  }

  protected override async deleteSecret(key: string): Promise<boolean> {
    for (;;) {
      const current = await this.#current(key);
      if (current === undefined || !isLive(current.record)) return false;
      try {
        // A deletion is a version too, so a key deleted and created again never reuses a version.
        await this.#publish(key, String(current.version), () => ({
          record: { createdAt: current.record.createdAt, updatedAt: new Date().toISOString() },
        }));
        return true;
      } catch (error) {
        if (!isSecretError(error, 'CONFLICT')) throw error;
      }
    }
  }

  protected override async listKeys(): Promise<string[]> {
    return [...(await this.readSnapshot()).keys()];
  }

  protected override async readSnapshot(): Promise<VersionSnapshot> {
    const snapshot = new Map<string, string>();
    for (const name of await this.#fs.readdir(this.root)) {
      const key = decodeURIComponent(name);
      const current = await this.#current(key);
      if (current !== undefined && isLive(current.record)) snapshot.set(key, String(current.version));
    }
    return snapshot;
  }

  protected override mapError(error: unknown, context: ErrorContext): SecretError {
    if (isSecretError(error)) return error;
    const code = (error as { code?: unknown }).code;
    const details = { provider: this.name, key: context.key, operation: context.operation, cause: error };
    if (code === 'EACCES' || code === 'EPERM') return new AccessDeniedError(details);
    // A missing root, a full disk or a record that does not parse: the backend is not serving.
    if (typeof code === 'string' || error instanceof SyntaxError)
      return new ProviderUnavailableError(details);
    return super.mapError(error, context);
  }

  #dir(key: string): string {
    return join(this.root, encode(key));
  }

  /** The latest version of `key`, or `undefined` when it never existed. */
  async #current(key: string): Promise<Current | undefined> {
    const versions = await this.#versions(key);
    const latest = versions.at(-1);
    return latest === undefined ? undefined : { version: latest, record: await this.#record(key, latest) };
  }

  async #at(key: string, version: string): Promise<Current | undefined> {
    if (!/^\d+$/.test(version) || !(await this.#versions(key)).includes(Number(version))) return undefined;
    return { version: Number(version), record: await this.#record(key, Number(version)) };
  }

  async #versions(key: string): Promise<number[]> {
    let names: string[];
    try {
      names = await this.#fs.readdir(this.#dir(key));
    } catch (error) {
      // A missing key directory is a missing key only if the root is there.
      if ((error as { code?: unknown }).code !== 'ENOENT') throw error;
      await this.#fs.stat(this.root);
      return [];
    }
    return names
      .flatMap((name) => RECORD.exec(name)?.[1] ?? [])
      .map(Number)
      .sort((a, b) => a - b);
  }

  async #record(key: string, version: number): Promise<VersionRecord> {
    return JSON.parse(
      await this.#fs.readFile(join(this.#dir(key), `${version}.json`), 'utf8'),
    ) as VersionRecord;
  }

  /**
   * Publishes the next version: the value file first, then `<n>.json` by a hard link, which
   * fails if another writer published `n` first. Then either the expected version was wrong
   * (`CONFLICT`) or, for an unconditional write, it tries again on top of the winner's version.
   */
  async #publish(
    key: string,
    ifVersion: string | null | undefined,
    build: (previous: Current | undefined) => { value?: string; record: Omit<VersionRecord, 'file'> },
  ): Promise<void> {
    const dir = this.#dir(key);
    for (;;) {
      const previous = await this.#current(key);
      const live = previous !== undefined && isLive(previous.record) ? String(previous.version) : null;
      if (ifVersion !== undefined && live !== (ifVersion === '0' ? null : ifVersion))
        throw new SecretConflictError({ provider: this.name, key, operation: 'set' });
      const next = (previous?.version ?? 0) + 1;
      const { value, record } = build(previous);
      const unique = `${next}-${process.pid}-${Math.random().toString(36).slice(2)}`;
      const file = value === undefined ? null : `${unique}.value`;
      const staged = join(dir, `${unique}.staged`);
      let published = false;
      try {
        if (file !== null)
          await this.#fs.writeFile(join(dir, file), value as string, { flag: 'wx', mode: 0o600 });
        await this.#fs.writeFile(staged, JSON.stringify({ ...record, file }), { flag: 'wx', mode: 0o600 });
        await this.#fs.link(staged, join(dir, `${next}.json`));
        published = true;
      } catch (error) {
        if ((error as { code?: unknown }).code !== 'EEXIST') throw error;
        if (ifVersion !== undefined)
          throw new SecretConflictError({ provider: this.name, key, operation: 'set' });
      } finally {
        await this.#fs.unlink(staged).catch(() => {});
        if (!published && file !== null) await this.#fs.unlink(join(dir, file)).catch(() => {});
      }
      if (published) return this.#prune(key, next);
    }
  }

  /** Removes versions older than the ones kept; a failure here loses nothing. */
  async #prune(key: string, latest: number): Promise<void> {
    const dir = this.#dir(key);
    for (const version of await this.#versions(key)) {
      if (version > latest - this.#keep) break;
      const { file } = await this.#record(key, version);
      await this.#fs.unlink(join(dir, `${version}.json`)).catch(() => {});
      if (file !== null) await this.#fs.unlink(join(dir, file)).catch(() => {});
    }
  }
}

/** A key as a directory name: percent-encoded, dots too, so `.`, `..` and `a/b` are plain names. */
function encode(key: string): string {
  return encodeURIComponent(key).replace(/\./g, '%2E').replace(/\*/g, '%2A');
}

function isLive(record: VersionRecord): boolean {
  return (
    record.file !== null && (record.expiresAt === undefined || Date.parse(record.expiresAt) > Date.now())
  );
}

function metadataOf({ version, record }: Current): Omit<SecretMetadata, 'key'> {
  return {
    version: String(version),
    createdAt: new Date(record.createdAt),
    updatedAt: new Date(record.updatedAt),
    expiresAt: record.expiresAt === undefined ? undefined : new Date(record.expiresAt),
    tags: record.tags,
    contentType: record.contentType,
  };
}
