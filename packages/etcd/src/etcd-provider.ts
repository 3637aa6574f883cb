import {
  InvalidConfigError,
  InvalidKeyError,
  Secret,
  SecretConflictError,
  type SecretError,
  type SecretMetadata,
  type SetOptions,
} from '@secret-provider/core';
import {
  BaseProvider,
  type BaseProviderOptions,
  backoffDelay,
  type EmitFunction,
  type ErrorContext,
  type HookContext,
  type StoredSecret,
  sleep,
} from '@secret-provider/core/adapter';
import type { Etcd3, IKeyValue, IOptions, Namespace } from 'etcd3';
import { createClient, type Etcd3Module, loadEtcd3, loadedEtcd3 } from './client.js';
import {
  deleteDocumentValue,
  flattenDocument,
  formatDocument,
  isForbiddenSegment,
  type JsonKeyStyle,
  parseDocument,
  setDocumentValue,
} from './document.js';
import { mapEtcdError } from './errors.js';
import { type EtcdWatchStats, type Snapshot, type WatchScope, WatchSession } from './watch-session.js';

/** Name of this adapter in errors and events unless another is given. */
export const PROVIDER_NAME = 'etcd';

const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
/** Read-modify-write rounds of a document before concurrent writers count as a conflict. */
const DOCUMENT_WRITE_ATTEMPTS = 8;

/** etcd's user/password authentication. */
export interface EtcdAuth {
  readonly username: string;
  /** A string or a `Secret`; never shown in errors, events or output. */
  readonly password: string | Secret<string>;
}

export interface EtcdProviderOptions extends Partial<BaseProviderOptions> {
  /**
   * Client endpoints of the cluster's members, `http://host:2379` (or all `https://`). The
   * client spreads requests over them and moves to another when one fails.
   */
  readonly hosts: string | readonly string[];
  /**
   * The keys under this prefix are the secrets, named without it (`app/` and `app/db` give
   * `db`). @default '' (the whole key space)
   */
  readonly prefix?: string | undefined;
  /**
   * Read one etcd key (under `prefix`) as a JSON document instead: its leaves are the secrets,
   * named as the file provider names them (`db.password`).
   */
  readonly document?: string | undefined;
  /** How keys address the document: `nested` (`db.password`) or `flat`. @default 'nested' */
  readonly jsonKeys?: JsonKeyStyle | undefined;
  /** User and password, when the cluster has authentication on. */
  readonly auth?: EtcdAuth | undefined;
  /** TLS material for `https://` endpoints (CA, and a client certificate for mutual TLS). */
  readonly tls?: IOptions['credentials'] | undefined;
  /**
   * Longest wait for one operation, every member tried included; past it the operation fails
   * with `UNAVAILABLE` (a cluster without a quorum does not answer). @default 5_000
   */
  readonly requestTimeout?: number | undefined;
  /**
   * Waits between watch reconnections (core's back-off): first `base`, doubling to `max`; also
   * between attempts to start a watch while no member answers (unless `watchRetry` is given).
   */
  readonly watchReconnect?: { readonly base?: number; readonly max?: number } | undefined;
  /** Refuse writes with `READ_ONLY`. @default false */
  readonly readOnly?: boolean | undefined;
}

interface Connection {
  readonly etcd: Etcd3Module;
  readonly client: Etcd3;
  /** The client scoped to the prefix: keys go in and come out without it. */
  readonly namespace: Namespace;
}

/** A document read: its parsed leaves and the revision it was written at (0: absent). */
interface DocumentRead {
  readonly document: Record<string, unknown>;
  readonly modRevision: string;
  readonly exists: boolean;
}

/**
 * Secrets in etcd v3: the keys under a prefix (values as strings), or the leaves of a JSON
 * document held by one key. Versions are etcd's `mod_revision`s, the same in every process, and
 * `get(key, { version })` reads an older one while etcd keeps it. `set` with `ifVersion` is a
 * transaction comparing the key's `mod_revision`. `watch` reports changes made by anyone,
 * across compactions and member failures, without losing or repeating one.
 *
 * @example
 * ```ts
 * const etcd = new EtcdProvider({ hosts: ['http://10.0.0.1:2379', 'http://10.0.0.2:2379'], prefix: 'app/' });
 * (await etcd.get('db-password')).reveal();
 * for await (const change of etcd.changes()) console.log(change.type, change);
 * ```
 */
export class EtcdProvider extends BaseProvider {
  /** The prefix of the keys this provider sees. */
  readonly prefix: string;
  /** The key holding the JSON document, when the provider reads one. */
  readonly document: string | undefined;
  readonly #hosts: readonly string[];
  readonly #jsonKeys: JsonKeyStyle;
  readonly #auth: EtcdAuth | undefined;
  readonly #tls: IOptions['credentials'] | undefined;
  readonly #requestTimeout: number;
  readonly #watchReconnect: { readonly base: number; readonly max: number };
  #connection: Promise<Connection> | undefined;
  #session: WatchSession | undefined;
  #documentWrites: Promise<void> = Promise.resolve();

  constructor(options: EtcdProviderOptions) {
    const name = options.name ?? PROVIDER_NAME;
    const hosts = validateHosts(options.hosts, name);
    const requestTimeout = options.requestTimeout ?? DEFAULT_REQUEST_TIMEOUT_MS;
    if (!(Number.isFinite(requestTimeout) && requestTimeout > 0)) {
      throw new InvalidConfigError({ provider: name }, 'requestTimeout must be a number of ms > 0');
    }
    if (options.document !== undefined && (typeof options.document !== 'string' || options.document === '')) {
      throw new InvalidConfigError({ provider: name }, 'document must name a key');
    }
    if (options.jsonKeys !== undefined && options.jsonKeys !== 'nested' && options.jsonKeys !== 'flat') {
      throw new InvalidConfigError({ provider: name }, "jsonKeys must be 'nested' or 'flat'");
    }
    if (
      options.auth !== undefined &&
      (typeof options.auth.username !== 'string' || options.auth.username === '')
    ) {
      throw new InvalidConfigError({ provider: name }, 'auth.username must be a non-empty string');
    }
    const watchReconnect = {
      base: options.watchReconnect?.base ?? 100,
      max: options.watchReconnect?.max ?? 5_000,
    };
    super({
      ...options,
      name,
      // A watch that cannot start (no member answers) is started again by the base class, on the
      // same waits as a reconnection.
      watchRetry: options.watchRetry ?? watchReconnect,
      capabilities: {
        checkAndSet: true,
        versions: true,
        ...options.capabilities,
        ...(options.readOnly ? { write: false, delete: false } : {}),
      },
    });
    this.#hosts = hosts;
    this.prefix = options.prefix ?? '';
    this.document = options.document;
    this.#jsonKeys = options.jsonKeys ?? 'nested';
    this.#auth = options.auth;
    this.#tls = options.tls;
    this.#requestTimeout = requestTimeout;
    this.#watchReconnect = watchReconnect;
  }

  /** The client endpoints (no credentials). */
  get hosts(): readonly string[] {
    return this.#hosts;
  }

  protected override validateKey(raw: unknown): string {
    const key = super.validateKey(raw);
    if (this.document !== undefined) {
      const segments = this.#jsonKeys === 'nested' ? key.split('.') : [key];
      if (segments.some((segment) => segment === '' || isForbiddenSegment(segment))) {
        throw new InvalidKeyError(
          { provider: this.name },
          'invalid key for a JSON document: empty or reserved path segment',
        );
      }
    }
    return key;
  }

  // ---- connection ----------------------------------------------------------------------------

  /** The client, created on first use (loading etcd3 then). */
  #connect(): Promise<Connection> {
    this.#connection ??= loadEtcd3(this.name).then((etcd) => {
      const password = this.#auth?.password;
      const client = createClient(etcd, {
        hosts: this.#hosts,
        auth:
          this.#auth === undefined
            ? undefined
            : {
                username: this.#auth.username,
                password: Secret.isSecret(password) ? String(password.reveal()) : String(password),
              },
        tls: this.#tls,
        requestTimeoutMs: this.#requestTimeout,
        watchBackoff: this.#watchReconnect,
      });
      return { etcd, client, namespace: this.prefix === '' ? client : client.namespace(this.prefix) };
    });
    this.#connection.catch(() => {
      this.#connection = undefined;
    });
    return this.#connection;
  }

  /** Call options of one operation: one deadline for every attempt the client makes. */
  #call(): { deadline: number } {
    return { deadline: Date.now() + this.#requestTimeout };
  }

  // ---- reads ---------------------------------------------------------------------------------

  protected override async readSecret(
    key: string,
    context: HookContext & { version?: string | undefined },
  ): Promise<StoredSecret | undefined> {
    if (context.version !== undefined && !/^[1-9]\d{0,18}$/.test(context.version)) return undefined;
    if (this.document !== undefined) {
      const read = await this.#readDocument(context.version);
      if (read === undefined) return undefined;
      const value = flattenDocument(read.document, this.#jsonKeys).get(key);
      return value === undefined ? undefined : { value, metadata: { version: read.modRevision } };
    }
    const { namespace } = await this.#connect();
    const range = namespace.get(key).options(this.#call());
    if (context.version !== undefined) range.revision(context.version);
    const response = await range.exec();
    const kv = response.kvs[0];
    if (kv === undefined) return undefined;
    if (context.version !== undefined && kv.mod_revision !== context.version) return undefined;
    return { value: kv.value.toString('utf8'), metadata: { version: kv.mod_revision } };
  }

  protected override async readMetadata(key: string): Promise<Omit<SecretMetadata, 'key'> | undefined> {
    if (this.document !== undefined) {
      const read = await this.#readDocument();
      if (read === undefined || !flattenDocument(read.document, this.#jsonKeys).has(key)) return undefined;
      return { version: read.modRevision };
    }
    const kv = await this.#keyOnly(key);
    return kv === undefined ? undefined : { version: kv.mod_revision };
  }

  /** Presence from a keys-only read (the document's leaves in document mode). */
  protected override async hasSecret(key: string): Promise<boolean> {
    if (this.document !== undefined) {
      const read = await this.#readDocument();
      return read !== undefined && flattenDocument(read.document, this.#jsonKeys).has(key);
    }
    return (await this.#keyOnly(key)) !== undefined;
  }

  async #keyOnly(key: string): Promise<IKeyValue | undefined> {
    const { namespace } = await this.#connect();
    const range = namespace.get(key).options(this.#call());
    (range as unknown as { request: { keys_only?: boolean } }).request.keys_only = true;
    return (await range.exec()).kvs[0];
  }

  protected override async listKeys(
    context: HookContext & { prefix?: string | undefined },
  ): Promise<string[]> {
    if (this.document !== undefined) {
      const read = await this.#readDocument();
      return read === undefined ? [] : [...flattenDocument(read.document, this.#jsonKeys).keys()];
    }
    const { namespace } = await this.#connect();
    return namespace
      .getAll()
      .prefix(context.prefix ?? '')
      .options(this.#call())
      .keys('utf8');
  }

  /** The document, parsed; `undefined` when its key does not exist (at `revision`). */
  async #readDocument(revision?: string): Promise<DocumentRead | undefined> {
    const { namespace } = await this.#connect();
    const range = namespace.get(this.document as string).options(this.#call());
    if (revision !== undefined) range.revision(revision);
    const kv = (await range.exec()).kvs[0];
    if (kv === undefined) return undefined;
    if (revision !== undefined && kv.mod_revision !== revision) return undefined;
    return { document: parseDocument(kv.value.toString('utf8')), modRevision: kv.mod_revision, exists: true };
  }

  // ---- writes --------------------------------------------------------------------------------

  protected override async writeSecret(
    key: string,
    value: string,
    context: HookContext & SetOptions,
  ): Promise<void> {
    if (this.document !== undefined) {
      await this.#editDocument(key, context.ifVersion, (document) => {
        if (flattenDocument(document, this.#jsonKeys).get(key) === value) return false;
        setDocumentValue(document, key, value, this.#jsonKeys);
        return true;
      });
      return;
    }
    const { namespace } = await this.#connect();
    if (context.ifVersion === undefined) {
      await namespace.put(key).value(value).options(this.#call()).exec();
      return;
    }
    const expected = context.ifVersion === null || context.ifVersion === '0' ? '0' : context.ifVersion;
    if (!/^\d{1,19}$/.test(expected)) throw this.#conflict(key);
    // mod_revision 0 is what etcd compares for a key that does not exist.
    const result = await namespace
      .if(key, 'Mod', '==', expected)
      .then(namespace.put(key).value(value))
      .options(this.#call())
      .commit();
    if (!result.succeeded) throw this.#conflict(key);
  }

  protected override async deleteSecret(key: string): Promise<boolean> {
    if (this.document !== undefined) {
      return this.#editDocument(key, undefined, (document) =>
        deleteDocumentValue(document, key, this.#jsonKeys),
      );
    }
    const { namespace } = await this.#connect();
    const response = await namespace.delete().key(key).options(this.#call()).exec();
    return response.deleted !== '0';
  }

  /**
   * Changes the document in a transaction that commits only if nobody wrote it since it was read
   * (its `mod_revision`); a lost race is read and applied again. With `ifVersion`, the key's
   * version (the document's revision) must match.
   */
  #editDocument(
    key: string,
    ifVersion: string | null | undefined,
    edit: (document: Record<string, unknown>) => boolean,
  ): Promise<boolean> {
    // This provider's own writes take turns: only writers in other processes make a round lose.
    const turn = this.#documentWrites.then(() => this.#editDocumentNow(key, ifVersion, edit));
    this.#documentWrites = turn.then(
      () => {},
      () => {},
    );
    return turn;
  }

  async #editDocumentNow(
    key: string,
    ifVersion: string | null | undefined,
    edit: (document: Record<string, unknown>) => boolean,
  ): Promise<boolean> {
    const { namespace } = await this.#connect();
    const documentKey = this.document as string;
    for (let attempt = 0; attempt < DOCUMENT_WRITE_ATTEMPTS; attempt++) {
      const current = (await this.#readDocument()) ?? { document: {}, modRevision: '0', exists: false };
      if (ifVersion !== undefined) {
        const present = flattenDocument(current.document, this.#jsonKeys).has(key);
        const matches =
          ifVersion === null || ifVersion === '0' ? !present : present && ifVersion === current.modRevision;
        if (!matches) throw this.#conflict(key);
      }
      if (!edit(current.document)) return false;
      const result = await namespace
        .if(documentKey, 'Mod', '==', current.modRevision)
        .then(namespace.put(documentKey).value(formatDocument(current.document)))
        .options(this.#call())
        .commit();
      if (result.succeeded) return true;
      if (ifVersion !== undefined) throw this.#conflict(key);
      // Another process wrote in between: wait a little (core's back-off) and read again.
      await sleep(backoffDelay(attempt + 1, { base: 10, max: 200 }), undefined, this.clock);
    }
    throw new SecretConflictError(
      { provider: this.name, key, operation: 'set' },
      `cannot write "${key}": the document kept changing under concurrent writers (provider "${this.name}")`,
    );
  }

  #conflict(key: string): SecretError {
    return new SecretConflictError(
      { provider: this.name, key, operation: 'set' },
      `check-and-set failed for "${key}": version mismatch (provider "${this.name}")`,
    );
  }

  // ---- watch ---------------------------------------------------------------------------------

  protected override async startWatch(emit: EmitFunction): Promise<() => Promise<void>> {
    const { namespace } = await this.#connect();
    const scope: WatchScope =
      this.document === undefined
        ? { kind: 'prefix' }
        : { kind: 'document', key: this.document, jsonKeys: this.#jsonKeys };
    const session = new WatchSession({
      name: this.name,
      scope,
      namespace,
      clock: this.clock,
      emit,
      read: () => this.#snapshot(namespace),
      mapError: (error) => this.mapError(error, { operation: 'watch' }),
      retrier: (task) =>
        this.createPoller(task, {
          first: 'now',
          jitter: 0,
          interval: this.#watchReconnect.base,
          backoff: { base: this.#watchReconnect.base, max: this.#watchReconnect.max },
        }),
    });
    await session.start();
    this.#session = session;
    return async () => {
      if (this.#session === session) this.#session = undefined;
      await session.stop();
    };
  }

  /** Everything watched, with the revision of the read (linearizable). */
  async #snapshot(namespace: Namespace): Promise<Snapshot> {
    const range =
      this.document === undefined
        ? namespace.getAll().prefix('').options(this.#call())
        : namespace.get(this.document).options(this.#call());
    const response = await range.exec();
    if (this.document !== undefined) {
      // The single-key builder leaves the namespace's prefix on the keys it returns.
      for (const kv of response.kvs) kv.key = Buffer.from(this.document, 'utf8');
    }
    return { revision: BigInt(response.header.revision), kvs: response.kvs };
  }

  /** Counters of the running watch (watchers created, re-reads, duplicates dropped), if any. */
  watchStats(): Readonly<EtcdWatchStats> | undefined {
    return this.#session === undefined ? undefined : { ...this.#session.stats };
  }

  // ---- errors and lifecycle ------------------------------------------------------------------

  protected override mapError(error: unknown, context: ErrorContext): SecretError {
    return (
      mapEtcdError(error, loadedEtcd3(), {
        provider: this.name,
        key: context.key,
        operation: context.operation,
        requestTimeoutMs: this.#requestTimeout,
      }) ?? super.mapError(error, context)
    );
  }

  protected override async onClose(): Promise<void> {
    const connection = this.#connection;
    if (connection === undefined) return;
    try {
      (await connection).client.close();
    } catch {
      // A client that never came to be (etcd3 could not load) has nothing to release.
    }
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), hosts: this.#hosts, prefix: this.prefix, document: this.document };
  }
}

function validateHosts(hosts: unknown, provider: string): readonly string[] {
  const list = typeof hosts === 'string' ? [hosts] : Array.isArray(hosts) ? [...(hosts as unknown[])] : [];
  if (list.length === 0) {
    throw new InvalidConfigError({ provider }, 'hosts must name at least one etcd client endpoint');
  }
  const checked = list.map((host) => {
    if (typeof host !== 'string' || !/^(https?:\/\/)?[A-Za-z0-9.\-_[\]:]+:\d{1,5}\/?$/.test(host)) {
      throw new InvalidConfigError(
        { provider },
        'each host must be an endpoint like http://127.0.0.1:2379 (no path, no credentials)',
      );
    }
    return host.replace(/\/$/, '');
  });
  const secure = checked.filter((host) => host.startsWith('https://')).length;
  if (secure > 0 && secure < checked.length) {
    throw new InvalidConfigError({ provider }, 'hosts must be all https:// or all http://');
  }
  return Object.freeze(checked);
}
