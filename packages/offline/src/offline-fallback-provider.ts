import { readFile } from 'node:fs/promises';
import {
  type GetOptions,
  InvalidConfigError,
  isSecretError,
  type OperationOptions,
  ProviderUnavailableError,
  Secret,
  type SecretError,
  type SecretEvents,
  type SecretMetadata,
  type SecretProvider,
  type SecretValue,
  type SetOptions,
} from '@secret-provider/core';
import { type Clock, systemClock, type Timer, WrappingProvider } from '@secret-provider/core/adapter';
import { writeFileAtomic } from '@secret-provider/file/atomic-write';
import { FallbackTooOldError, FallbackUnreadableError } from './errors.js';
import {
  DecodeFailure,
  decodeFallback,
  encodeFallback,
  type KeyDerivation,
  type StoredEntry,
} from './fallback-file.js';
import { keyMaterialOf, type OfflineFallbackKey } from './key.js';

/** `metadata().attributes.servedFrom` of a value served from the fallback file. */
export const SERVED_FROM_FALLBACK = 'offline-fallback';
/** Warning code when a value is served from the fallback (once per key and outage). */
export const FALLBACK_SERVED = 'OFFLINE_FALLBACK_SERVED';
/** Warning code when the backend answers again for a key that was served from the fallback. */
export const FALLBACK_ENDED = 'OFFLINE_FALLBACK_ENDED';

export interface OfflineFallbackOptions {
  /** The fallback file. Its directory is created (0700) if missing; the file is always 0600. */
  readonly path: string;
  /** The encryption key (see {@link OfflineFallbackKey}). */
  readonly key: OfflineFallbackKey;
  /**
   * Longest time, in ms, after the backend last gave a value that it may be served from the
   * file. Older values are refused with {@link FallbackTooOldError}. Required: how stale a
   * credential may be is the operator's decision.
   */
  readonly maxAge: number;
  /** How the file key comes from `key`. @default 'none' (the key is used as given) */
  readonly keyDerivation?: KeyDerivation | undefined;
  /** Where `{ env }` keys are read. @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
  /** How long, in ms, values are gathered before one write of the file. @default 1000 */
  readonly writeDelay?: number | undefined;
  /**
   * An unchanged value is stored again (its `storedAt` moved) once its stored copy is this old,
   * in ms, so that `maxAge` counts from about the last time the backend gave it, without a
   * write for every read. @default a quarter of `maxAge`, at most one hour
   */
  readonly refreshAfter?: number | undefined;
  /** Most keys kept; beyond it the one stored longest ago is dropped. @default 1000 */
  readonly maxEntries?: number | undefined;
  /** The clock for stored times and the write-behind timer. @default systemClock */
  readonly clock?: Clock | undefined;
  /** Name in errors and events. @default the wrapped provider's name */
  readonly name?: string | undefined;
  /** Close the wrapped provider on `close`. @default true */
  readonly ownsProvider?: boolean | undefined;
}

/** Counters of an {@link OfflineFallbackProvider}. */
export interface OfflineFallbackStats {
  /** Keys held (from the file and recorded since). */
  readonly entries: number;
  /** Values served from the fallback. */
  readonly served: number;
  /** Requests the fallback refused as too old or expired. */
  readonly refused: number;
  /** Writes of the file. */
  readonly writes: number;
  /** Writes that failed (each reported as an `error` event). */
  readonly writeFailures: number;
}

/**
 * Keeps the last good value of each key the wrapped provider (any provider or chain) serves in
 * an encrypted file, and serves from that file only while the wrapped provider fails with
 * `UNAVAILABLE` or `TIMEOUT`, so that a process can start, and go on, while its backend is
 * unreachable. Values older than `maxAge` are refused. A served fallback is announced by a
 * `warning` event and by `metadata.attributes.servedFrom`. The file is written behind the reads
 * (coalesced, never before a get resolves), atomically, with mode 0600; names and values are
 * both inside its AES-256-GCM ciphertext.
 *
 * @example
 * ```ts
 * const secrets = new OfflineFallbackProvider(vault, {
 *   path: '/var/lib/app/secrets.fallback',
 *   key: { env: 'SECRETS_FALLBACK_KEY' },
 *   maxAge: 24 * 3_600_000,
 * });
 * const password = await secrets.get('secret/app/db#password');
 * ```
 */
export class OfflineFallbackProvider extends WrappingProvider {
  readonly #path: string;
  readonly #maxAge: number;
  readonly #derivation: KeyDerivation;
  readonly #writeDelay: number;
  readonly #refreshAfter: number;
  readonly #maxEntries: number;
  readonly #clock: Clock;
  readonly #material: Buffer | ((signal?: AbortSignal) => Promise<Buffer>);
  #materialLoading: Promise<Buffer> | undefined;
  readonly #entries = new Map<string, StoredEntry>();
  /** Keys dropped before the file was read, which reading it must not bring back. */
  readonly #dropped = new Set<string>();
  #loading: Promise<void> | undefined;
  #loaded = false;
  /** Why the file on disk cannot be used, until a write replaces it. */
  #unreadable: FallbackUnreadableError | undefined;
  /** Keys served from the fallback since the backend last answered for them. */
  readonly #announced = new Set<string>();
  #dirty = false;
  #timer: Timer | undefined;
  #writing: Promise<void> | undefined;
  #counts = { served: 0, refused: 0, writes: 0, writeFailures: 0 };
  #closingFlush: Promise<void> | undefined;

  /**
   * @throws {InvalidConfigError} for a missing path, a `maxAge` that is not a positive number, or
   * a key that is not 32 bytes (the key from a provider is checked when first needed).
   */
  constructor(provider: SecretProvider, options: OfflineFallbackOptions) {
    super(provider, options);
    const name = this.name;
    const fail = (what: string) =>
      new InvalidConfigError({ provider: name }, `offline fallback: ${what} (provider "${name}")`);
    if (typeof options?.path !== 'string' || options.path.length === 0)
      throw fail('`path` must be a file path');
    const positive = (value: unknown, what: string, fallback?: number): number => {
      if (value === undefined && fallback !== undefined) return fallback;
      if (typeof value !== 'number' || !(value >= 0) || !Number.isFinite(value))
        throw fail(`\`${what}\` must be a finite number >= 0`);
      return value;
    };
    this.#path = options.path;
    this.#maxAge = positive(options.maxAge, 'maxAge');
    if (this.#maxAge === 0) throw fail('`maxAge` must be more than 0');
    const derivation = options.keyDerivation ?? 'none';
    if (derivation !== 'none' && derivation !== 'hkdf-sha256')
      throw fail("`keyDerivation` must be 'none' or 'hkdf-sha256'");
    this.#derivation = derivation;
    this.#writeDelay = positive(options.writeDelay, 'writeDelay', 1_000);
    this.#refreshAfter = positive(
      options.refreshAfter,
      'refreshAfter',
      Math.min(this.#maxAge / 4, 3_600_000),
    );
    this.#maxEntries = Math.max(1, Math.floor(positive(options.maxEntries, 'maxEntries', 1_000)));
    this.#clock = options.clock ?? systemClock;
    this.#material = keyMaterialOf(options.key, {
      provider: name,
      derivation,
      env: options.env ?? process.env,
    });
  }

  override async get(key: string, options?: GetOptions): Promise<Secret<string>> {
    this.assertOpen('get');
    try {
      const secret = await this.provider.get(key, options);
      if (options?.version === undefined) this.#record(key, secret);
      return secret;
    } catch (error) {
      if (options?.version !== undefined) throw error;
      if (isSecretError(error, 'NOT_FOUND')) this.#drop(key);
      if (!isOutage(error) || options?.forceFetch === true) throw error;
      const entry = await this.#fallback(key, error, 'get', options?.maxAge);
      return new Secret(entry.value, this.#metadataOf(key, entry));
    }
  }

  override async metadata(key: string, options?: OperationOptions): Promise<SecretMetadata> {
    this.assertOpen('metadata');
    try {
      return await this.provider.metadata(key, options);
    } catch (error) {
      if (isSecretError(error, 'NOT_FOUND')) this.#drop(key);
      if (!isOutage(error)) throw error;
      return this.#metadataOf(key, await this.#fallback(key, error, 'metadata', undefined));
    }
  }

  /** A successful write makes the stored value stale: it is dropped, and the next get records. */
  override async set(key: string, value: string | Secret<SecretValue>, options?: SetOptions): Promise<void> {
    await super.set(key, value, options);
    this.#drop(key);
  }

  override async delete(key: string, options?: OperationOptions): Promise<void> {
    await super.delete(key, options);
    this.#drop(key);
  }

  /**
   * Writes what was recorded now, without waiting for `writeDelay`. Resolves once it is on disk,
   * or once a failure was reported as an `error` event (it never rejects).
   */
  async flush(): Promise<void> {
    this.#timer?.cancel();
    this.#timer = undefined;
    await this.#writeLoop();
  }

  stats(): OfflineFallbackStats {
    return { entries: this.#entries.size, ...this.#counts };
  }

  /** Writes what is pending, then closes like any wrapper. */
  override close(): Promise<void> {
    if (this.#closingFlush === undefined) {
      const closing = super.close();
      this.#closingFlush = (async () => {
        await this.flush();
        await closing;
        this.#entries.clear();
        if (typeof this.#material !== 'function') this.#material.fill(0);
        (await this.#materialLoading?.catch(() => undefined))?.fill(0);
      })();
    }
    return this.#closingFlush;
  }

  /** The wrapped provider's watch reports removed keys: they leave the fallback too. */
  protected override onInnerEvent(type: keyof SecretEvents, event: SecretEvents[keyof SecretEvents]): void {
    if (type === 'removed') this.#drop((event as SecretEvents['removed']).key);
  }

  protected override describe(): Record<string, unknown> {
    return { offlineFallback: true, entries: this.#entries.size, maxAge: this.#maxAge };
  }

  // ---- recording -------------------------------------------------------------------------------

  /** Synchronous and cheap: the write happens later, off the get's path. */
  #record(key: string, secret: Secret<string>): void {
    if (this.closed) return;
    if (this.#announced.delete(key)) {
      this.emit('warning', {
        provider: this.name,
        code: FALLBACK_ENDED,
        message: `"${key}" is served by the backend again, no longer from the offline fallback`,
        key,
        detectedAt: new Date(this.#clock.now()),
      });
    }
    const value = secret.reveal();
    if (typeof value !== 'string') return;
    const now = this.#clock.now();
    const metadata = secret.metadata;
    const held = this.#entries.get(key);
    if (
      held !== undefined &&
      held.value === value &&
      held.version === metadata?.version &&
      now - held.storedAt < this.#refreshAfter
    ) {
      return;
    }
    this.#dropped.delete(key);
    this.#entries.delete(key);
    this.#entries.set(key, {
      value,
      storedAt: now,
      version: metadata?.version,
      updatedAt: metadata?.updatedAt?.getTime(),
      expiresAt: metadata?.expiresAt?.getTime(),
    });
    this.#bound();
    this.#schedule();
  }

  #drop(key: string): void {
    if (!this.#loaded) this.#dropped.add(key);
    if (this.#entries.delete(key) || !this.#loaded) this.#schedule();
  }

  /** Keeps at most `maxEntries`, dropping those stored longest ago. */
  #bound(): void {
    while (this.#entries.size > this.#maxEntries) {
      let oldest: string | undefined;
      let oldestAt = Number.POSITIVE_INFINITY;
      for (const [key, entry] of this.#entries) {
        if (entry.storedAt < oldestAt) {
          oldest = key;
          oldestAt = entry.storedAt;
        }
      }
      if (oldest === undefined) return;
      this.#entries.delete(oldest);
    }
  }

  #schedule(): void {
    this.#dirty = true;
    if (this.#timer !== undefined || this.#writing !== undefined || this.#closingFlush !== undefined) return;
    // Kept alive: a recorded value should reach the disk before the process exits.
    this.#timer = this.#clock.setTimer(
      () => {
        this.#timer = undefined;
        return this.#writeLoop();
      },
      this.#writeDelay,
      { keepAlive: true },
    );
  }

  /** One writer at a time; what is recorded meanwhile goes into its next round. */
  #writeLoop(): Promise<void> {
    this.#writing ??= (async () => {
      let written = true;
      try {
        while (this.#dirty && written) {
          this.#dirty = false;
          written = await this.#writeOnce();
        }
      } finally {
        this.#writing = undefined;
      }
      // Recorded while the last round was finishing, after the loop looked. After a failure the
      // next recorded value schedules the retry, so a broken disk is not retried in a loop.
      if (written && this.#dirty && this.#closingFlush === undefined) this.#schedule();
    })();
    return this.#writing;
  }

  async #writeOnce(): Promise<boolean> {
    await this.#load();
    if (!this.#loaded) {
      // The file could not be read (a passing failure, or no key yet): writing now would replace
      // its entries with only those recorded since. The next record tries again.
      this.#dirty = true;
      return false;
    }
    try {
      const material = await this.#keyMaterial();
      const now = this.#clock.now();
      for (const [key, entry] of this.#entries) {
        if (now - entry.storedAt > this.#maxAge) this.#entries.delete(key);
      }
      await writeFileAtomic(this.#path, encodeFallback(this.#entries, material, this.#derivation));
      this.#unreadable = undefined;
      this.#counts.writes++;
      return true;
    } catch (error) {
      this.#dirty = true;
      this.#counts.writeFailures++;
      const failure = isSecretError(error)
        ? error
        : new ProviderUnavailableError(
            { provider: this.name, operation: 'set', cause: error },
            `cannot write the offline fallback file "${this.#path}" (provider "${this.name}")`,
          );
      this.#report(failure);
      return false;
    }
  }

  // ---- serving ---------------------------------------------------------------------------------

  async #fallback(
    key: string,
    outage: SecretError,
    operation: 'get' | 'metadata',
    callerMaxAge: number | undefined,
  ): Promise<StoredEntry> {
    await this.#load();
    const details = { provider: this.name, key, operation, cause: outage };
    if (this.#unreadable !== undefined && !this.#entries.has(key)) {
      throw new FallbackUnreadableError(details, this.#unreadable.reason, this.#path);
    }
    const entry = this.#entries.get(key);
    if (entry === undefined) throw outage;
    const now = this.#clock.now();
    const limit = callerMaxAge === undefined ? this.#maxAge : Math.min(callerMaxAge, this.#maxAge);
    if (now - entry.storedAt > limit) {
      this.#counts.refused++;
      throw new FallbackTooOldError(details, { storedAt: new Date(entry.storedAt), maxAge: limit });
    }
    if (entry.expiresAt !== undefined && entry.expiresAt <= now) {
      this.#counts.refused++;
      throw new FallbackTooOldError(details, {
        storedAt: new Date(entry.storedAt),
        expiresAt: new Date(entry.expiresAt),
      });
    }
    this.#counts.served++;
    if (!this.#announced.has(key)) {
      this.#announced.add(key);
      this.emit('warning', {
        provider: this.name,
        code: FALLBACK_SERVED,
        message: `"${key}" is served from the offline fallback stored at ${new Date(entry.storedAt).toISOString()}: the backend failed with ${outage.code}`,
        key,
        detectedAt: new Date(now),
      });
    }
    return entry;
  }

  #metadataOf(key: string, entry: StoredEntry): SecretMetadata {
    return {
      key,
      ...(entry.version === undefined ? {} : { version: entry.version }),
      ...(entry.updatedAt === undefined ? {} : { updatedAt: new Date(entry.updatedAt) }),
      ...(entry.expiresAt === undefined ? {} : { expiresAt: new Date(entry.expiresAt) }),
      attributes: { servedFrom: SERVED_FROM_FALLBACK, fallbackStoredAt: new Date(entry.storedAt) },
    };
  }

  // ---- the file --------------------------------------------------------------------------------

  /** Reads the file once; never rejects (an unusable file is kept in `#unreadable`). */
  #load(): Promise<void> {
    this.#loading ??= (async () => {
      this.#unreadable = undefined;
      let bytes: Buffer;
      try {
        bytes = await readFile(this.#path);
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        // No file there (nor can there be one: a writer will report why).
        if (code !== 'ENOENT' && code !== 'ENOTDIR') {
          this.#report(
            new ProviderUnavailableError(
              { provider: this.name, operation: 'get', cause: error },
              `cannot read the offline fallback file "${this.#path}" (provider "${this.name}")`,
            ),
          );
          // A passing failure (EMFILE, EIO): the next need tries again.
          this.#loading = undefined;
          return;
        }
        this.#finishLoad(new Map());
        return;
      }
      let material: Buffer;
      try {
        material = await this.#keyMaterial();
      } catch (error) {
        this.#loading = undefined;
        this.#unreadable = new FallbackUnreadableError(
          { provider: this.name, operation: 'get', cause: error },
          'key',
          this.#path,
        );
        this.#report(this.#unreadable);
        return;
      }
      try {
        this.#finishLoad(decodeFallback(bytes, material));
      } catch (error) {
        if (!(error instanceof DecodeFailure)) throw error;
        this.#unreadable = new FallbackUnreadableError(
          { provider: this.name, operation: 'get' },
          error.reason,
          this.#path,
        );
        this.#report(this.#unreadable);
        // Nothing of it is used; what the backend gives from now on replaces it.
        this.#finishLoad(new Map());
      } finally {
        bytes.fill(0);
      }
    })();
    return this.#loading;
  }

  /** Merges the file's entries under those recorded meanwhile (newer) and the keys dropped. */
  #finishLoad(fromFile: Map<string, StoredEntry>): void {
    for (const [key, entry] of fromFile) {
      if (!this.#entries.has(key) && !this.#dropped.has(key)) this.#entries.set(key, entry);
    }
    this.#dropped.clear();
    this.#loaded = true;
    this.#bound();
  }

  #keyMaterial(): Promise<Buffer> {
    const material = this.#material;
    if (typeof material !== 'function') return Promise.resolve(material);
    const loading =
      this.#materialLoading ??
      material().catch((error: unknown) => {
        // A key provider that failed may answer later.
        this.#materialLoading = undefined;
        throw error;
      });
    this.#materialLoading = loading;
    return loading;
  }

  #report(error: SecretError): void {
    this.emit('error', { provider: this.name, error, detectedAt: new Date(this.#clock.now()) });
  }
}

function isOutage(error: unknown): error is SecretError {
  return isSecretError(error, 'UNAVAILABLE') || isSecretError(error, 'TIMEOUT');
}
