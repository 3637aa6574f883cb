import { SecretConflictError, type SecretMetadata, type SetOptions } from '@secret-provider/core';
import {
  BaseProvider,
  type BaseProviderOptions,
  type EmitFunction,
  type HookContext,
  type StoredSecret,
} from '@secret-provider/core/adapter';

/** Name of this adapter in errors and events unless another is given. */
export const PROVIDER_NAME = 'memory';

/** A change to a {@link MemoryStore}, as its subscribers see it. Carries no value. */
export type MemoryChange =
  | { readonly type: 'added'; readonly key: string; readonly version: string }
  | { readonly type: 'rotated'; readonly key: string; readonly oldVersion: string; readonly version: string }
  | { readonly type: 'removed'; readonly key: string; readonly version: string };

interface Entry {
  readonly value: string;
  readonly version: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly expiresAt?: Date | undefined;
  readonly tags?: Readonly<Record<string, string>> | undefined;
  readonly contentType?: string | undefined;
}

/** What a write may say about the value besides the value itself. */
export interface MemoryWriteOptions {
  readonly ifVersion?: string | null | undefined;
  readonly expiresAt?: Date | undefined;
  readonly tags?: Readonly<Record<string, string>> | undefined;
  readonly contentType?: string | undefined;
}

/**
 * The backing map of one or more {@link MemoryProvider}s. Tests change it "out of band" to
 * check that providers report changes they did not make themselves.
 */
export class MemoryStore {
  readonly #entries = new Map<string, Entry>();
  readonly #listeners = new Set<(change: MemoryChange) => void>();
  #lastVersion = 0;

  constructor(initial?: Readonly<Record<string, string>>) {
    for (const [key, value] of Object.entries(initial ?? {})) this.set(key, value);
  }

  /** Stores `value`; returns the version. Storing the value a key already has changes nothing. */
  set(key: string, value: string, options?: string | null | MemoryWriteOptions): string {
    const write: MemoryWriteOptions =
      typeof options === 'object' && options !== null ? options : { ifVersion: options };
    const ifVersion = write.ifVersion;
    const previous = this.#entries.get(key);
    if (ifVersion !== undefined) {
      const current = previous === undefined ? null : String(previous.version);
      const expected = ifVersion === '0' ? null : ifVersion;
      if (current !== expected)
        throw new SecretConflictError(
          { key, operation: 'set' },
          `check-and-set failed for "${key}": version mismatch`,
        );
    }
    const sameFacts =
      previous !== undefined &&
      previous.value === value &&
      previous.expiresAt?.getTime() === write.expiresAt?.getTime() &&
      previous.contentType === write.contentType &&
      JSON.stringify(previous.tags) === JSON.stringify(write.tags);
    if (previous !== undefined && sameFacts) return String(previous.version);
    const now = new Date();
    // Versions are unique across the store, so a deleted and re-created key never reuses one.
    const version = ++this.#lastVersion;
    this.#entries.set(key, {
      value,
      version,
      createdAt: previous?.createdAt ?? now,
      updatedAt: now,
      expiresAt: write.expiresAt,
      tags: write.tags === undefined ? undefined : Object.freeze({ ...write.tags }),
      contentType: write.contentType,
    });
    this.#notify(
      previous === undefined
        ? { type: 'added', key, version: String(version) }
        : { type: 'rotated', key, oldVersion: String(previous.version), version: String(version) },
    );
    return String(version);
  }

  /** Removes `key`; returns whether it existed. */
  delete(key: string): boolean {
    const previous = this.#entries.get(key);
    if (previous === undefined) return false;
    this.#entries.delete(key);
    this.#notify({ type: 'removed', key, version: String(previous.version) });
    return true;
  }

  has(key: string): boolean {
    return this.read(key) !== undefined;
  }

  /** @internal used by providers. An entry past its `expiresAt` is gone. */
  read(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry?.expiresAt !== undefined && entry.expiresAt.getTime() <= Date.now()) return undefined;
    return entry;
  }

  keys(): string[] {
    return [...this.#entries.keys()].filter((key) => this.read(key) !== undefined);
  }

  /** Key -> version of every entry. */
  versions(): Map<string, string> {
    return new Map(this.keys().map((key) => [key, String(this.#entries.get(key)?.version)]));
  }

  /** Calls `listener` on every change until the returned function is called. */
  subscribe(listener: (change: MemoryChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #notify(change: MemoryChange): void {
    for (const listener of [...this.#listeners]) listener(change);
  }

  toJSON(): Record<string, unknown> {
    return { size: this.#entries.size };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `MemoryStore { size: ${this.#entries.size} }`;
  }
}

export interface MemoryProviderOptions extends Partial<BaseProviderOptions> {
  /** Values to start with. */
  readonly initial?: Readonly<Record<string, string>> | undefined;
  /** A store to share with other providers or to change from a test; a new one by default. */
  readonly store?: MemoryStore | undefined;
  /** Refuse writes with `READ_ONLY`. @default false */
  readonly readOnly?: boolean | undefined;
}

/**
 * Secrets in a map: a default layer, test doubles, overrides. Read/write, versions every value,
 * and reports `added`/`rotated`/`removed` for every change of its store, whoever made it.
 *
 * @example
 * ```ts
 * const memory = new MemoryProvider({ initial: { API_KEY: 'dev-key' } });
 * (await memory.get('API_KEY')).reveal(); // 'dev-key'
 * ```
 */
export class MemoryProvider extends BaseProvider {
  /** The backing store. */
  readonly store: MemoryStore;

  constructor(options: MemoryProviderOptions = {}) {
    super({
      ...options,
      name: options.name ?? PROVIDER_NAME,
      capabilities: {
        checkAndSet: true,
        expiry: true,
        tags: true,
        contentType: true,
        ...options.capabilities,
        ...(options.readOnly ? { write: false, delete: false } : {}),
      },
    });
    this.store = options.store ?? new MemoryStore();
    for (const [key, value] of Object.entries(options.initial ?? {}))
      this.store.set(this.validateKey(key), value);
  }

  /** Presence is a map lookup: answered synchronously, so a chain skips this provider cheaply. */
  protected override hasSecret(key: string): boolean {
    return this.store.has(key);
  }

  protected override async readSecret(key: string): Promise<StoredSecret | undefined> {
    const entry = this.store.read(key);
    return entry === undefined ? undefined : { value: entry.value, metadata: metadataOf(entry) };
  }

  /** Every key in one pass over the store, so a `getMany` sees one moment of it. */
  protected override async readMany(keys: readonly string[]): Promise<Map<string, StoredSecret>> {
    const found = new Map<string, StoredSecret>();
    for (const key of keys) {
      const entry = this.store.read(key);
      if (entry !== undefined) found.set(key, { value: entry.value, metadata: metadataOf(entry) });
    }
    return found;
  }

  protected override async readMetadata(key: string): Promise<Omit<SecretMetadata, 'key'> | undefined> {
    const entry = this.store.read(key);
    return entry === undefined ? undefined : metadataOf(entry);
  }

  protected override async writeSecret(
    key: string,
    value: string,
    context: HookContext & SetOptions,
  ): Promise<void> {
    this.store.set(key, value, context);
  }

  protected override async deleteSecret(key: string): Promise<boolean> {
    return this.store.delete(key);
  }

  protected override async listKeys(): Promise<string[]> {
    return this.store.keys();
  }

  protected override async startWatch(emit: EmitFunction): Promise<() => void> {
    return this.store.subscribe((change) => {
      const detectedAt = new Date();
      if (change.type === 'rotated') {
        emit('rotated', {
          provider: this.name,
          keys: [change.key],
          changes: [{ key: change.key, oldVersion: change.oldVersion, newVersion: change.version }],
          detectedAt,
        });
      } else {
        emit(change.type, { provider: this.name, key: change.key, version: change.version, detectedAt });
      }
    });
  }
}

function metadataOf(entry: Entry): Omit<SecretMetadata, 'key'> {
  if (entry.expiresAt === undefined && entry.tags === undefined && entry.contentType === undefined) {
    return { version: String(entry.version), createdAt: entry.createdAt, updatedAt: entry.updatedAt };
  }
  return {
    version: String(entry.version),
    createdAt: entry.createdAt,
    updatedAt: entry.updatedAt,
    expiresAt: entry.expiresAt,
    tags: entry.tags,
    contentType: entry.contentType,
  };
}
