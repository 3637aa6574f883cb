// Chain-specific test doubles. The shared helpers (until, record, expectNoLeak, rejection...)
// come from @secret-provider/testing.
import {
  InvalidKeyError,
  Secret,
  type SecretEventEmitter,
  type SecretMetadata,
  SecretNotFoundError,
  type SecretProvider,
  type WatchHandle,
} from '@secret-provider/core';
import type { StoredSecret } from '@secret-provider/core/adapter';
import { MemoryProvider, type MemoryProviderOptions, MemoryStore } from '@secret-provider/memory';

/**
 * A memory provider that fails on demand: while `failure` is set, reads, metadata and listing
 * throw what it makes. Counts the reads that reached it.
 */
export class FlakyProvider extends MemoryProvider {
  failure: (() => unknown) | undefined;
  reads = 0;
  metadataReads = 0;

  constructor(options: MemoryProviderOptions = {}) {
    super(options);
  }

  protected override async readSecret(key: string): Promise<StoredSecret | undefined> {
    this.reads++;
    if (this.failure) throw this.failure();
    return super.readSecret(key);
  }

  protected override async readMetadata(key: string): Promise<Omit<SecretMetadata, 'key'> | undefined> {
    this.metadataReads++;
    if (this.failure) throw this.failure();
    return super.readMetadata(key);
  }

  protected override async listKeys(): Promise<string[]> {
    if (this.failure) throw this.failure();
    return super.listKeys();
  }
}

/** A memory provider whose keys may not contain `_` (like Key Vault names). */
export class DashOnlyProvider extends MemoryProvider {
  protected override validateKey(key: unknown): string {
    const checked = super.validateKey(key);
    if (checked.includes('_')) {
      throw new InvalidKeyError(
        { provider: this.name, key: checked },
        'invalid key: only letters, digits and dashes',
      );
    }
    return checked;
  }
}

/** A provider written against the contract alone, as a third party might: see {@link plainProvider}. */
export type PlainProvider = SecretProvider & {
  readonly store: MemoryStore;
  /** Calls of get, metadata, has, keys, set and delete that reached it. */
  calls: number;
};

/**
 * A provider over a {@link MemoryStore} that is not built on the core base class and ignores
 * `signal` (nothing in the contract makes a provider look at it, so a chain must). It lists,
 * watches (the store's changes, as they happen) and writes; `has` is synchronous, asynchronous
 * (a promise a tick later) or absent.
 */
export function plainProvider(
  name: string,
  initial: Record<string, string> = {},
  options: { has?: 'sync' | 'async' | false } = {},
): PlainProvider {
  const store = new MemoryStore(initial);
  const hasMode = options.has ?? false;
  const read = (key: string) => {
    provider.calls++;
    const entry = store.read(key);
    if (entry === undefined) throw new SecretNotFoundError({ provider: name, key });
    return entry;
  };
  const provider: PlainProvider = {
    name,
    store,
    calls: 0,
    capabilities: {
      write: true,
      delete: true,
      list: true,
      watch: true,
      metadata: true,
      versions: false,
      has: hasMode !== false,
      checkAndSet: false,
      expiry: false,
      tags: false,
      contentType: false,
    },
    async get(key) {
      const entry = read(key);
      return new Secret(entry.value, { key, version: String(entry.version) });
    },
    async metadata(key) {
      return { key, version: String(read(key).version) };
    },
    ...(hasMode === false
      ? {}
      : {
          has(key: string) {
            provider.calls++;
            const present = store.has(key);
            return hasMode === 'sync'
              ? present
              : new Promise<boolean>((resolve) => setImmediate(() => resolve(present)));
          },
        }),
    async set(key, value) {
      provider.calls++;
      store.set(key, typeof value === 'string' ? value : String(value.reveal()));
    },
    async delete(key) {
      provider.calls++;
      if (!store.delete(key)) throw new SecretNotFoundError({ provider: name, key });
    },
    async keys() {
      provider.calls++;
      return store.keys();
    },
    watch(emitter: SecretEventEmitter): WatchHandle {
      const unsubscribe = store.subscribe((change) => {
        const detectedAt = new Date();
        if (change.type === 'rotated') {
          emitter.emit('rotated', {
            provider: name,
            keys: [change.key],
            changes: [{ key: change.key, oldVersion: change.oldVersion, newVersion: change.version }],
            detectedAt,
          });
        } else
          emitter.emit(change.type, { provider: name, key: change.key, version: change.version, detectedAt });
      });
      let stopped = false;
      const stop = async () => {
        stopped = true;
        unsubscribe();
      };
      return {
        ready: Promise.resolve(),
        get stopped() {
          return stopped;
        },
        stop,
        [Symbol.asyncDispose]: stop,
      };
    },
    async close() {},
    async [Symbol.asyncDispose]() {},
  };
  return provider;
}
