import {
  InvalidConfigError,
  InvalidKeyError,
  ProviderUnavailableError,
  SecretConflictError,
  type SecretError,
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
  type SnapshotDiff,
  type StoredSecret,
} from '@secret-provider/core/adapter';
import {
  type CredentialReference,
  CredentialSource,
  type HttpAnswer,
  type JsonKeyStyle,
  type RequestContext,
  readDocument,
  sendRequest,
  statusError,
} from '@secret-provider/http/transport';

/** The default name of a {@link ConsulProvider} in errors and events. */
export const PROVIDER_NAME = 'consul';

/** Options of {@link ConsulProvider}. Durations in milliseconds. */
export interface ConsulProviderOptions
  extends Omit<BaseProviderOptions, 'name' | 'cache' | 'capabilities' | 'pollInterval'> {
  /** The agent's HTTP address. @default 'http://127.0.0.1:8500' */
  readonly address?: string | URL | undefined;
  /** @default 'consul' */
  readonly name?: string | undefined;
  /**
   * Prefix mode (the default): every KV entry under this prefix is one secret, named by the
   * rest of its key (`app/prod/` + `db/password` -> `db/password`). Readable, writable (with
   * check-and-set), listable, watchable. @default '' (the whole KV store)
   */
  readonly prefix?: string | undefined;
  /**
   * Document mode: one KV entry holding a JSON or `.env` document, whose keys are named as the
   * file provider names them (`db.password`). Read-only. Excludes `prefix`.
   */
  readonly key?: string | undefined;
  /** Document mode: the document's format. @default 'json' */
  readonly format?: 'json' | 'env' | undefined;
  /** Document mode, JSON: `nested` (`db.password`) or `flat` keys. @default 'nested' */
  readonly jsonKeys?: JsonKeyStyle | undefined;
  /** An ACL token, or where to read one (sent as `X-Consul-Token`, never shown). */
  readonly token?: string | CredentialReference | undefined;
  /** Asks another datacenter (`?dc=`). */
  readonly datacenter?: string | undefined;
  /** Refuses writes and deletes. @default false */
  readonly readOnly?: boolean | undefined;
  /** Longest time for one request that does not block, body included. @default 10_000 */
  readonly timeout?: number | undefined;
  /** How long one blocking query of a watch may wait (`?wait=`, at most 10 minutes). @default 300_000 */
  readonly wait?: number | undefined;
  /**
   * At least this long between the starts of two blocking queries: a key that changes all the
   * time (or an agent that answers at once) cannot make the watch spin. @default 250
   */
  readonly minInterval?: number | undefined;
  /** Largest answer accepted, in bytes. @default 33_554_432 */
  readonly maxBytes?: number | undefined;
  /** Passed to `fetch` as its `dispatcher` (an undici `Agent` with TLS options). */
  readonly dispatcher?: unknown;
}

/** One KV entry as read. */
interface Entry {
  readonly key: string;
  readonly value: string;
  readonly modifyIndex: number;
}

/** What a watch holds of the watched data: key -> content fingerprint and version. */
type Contents = Map<string, { readonly hash: string; readonly version: string }>;

/**
 * Secrets and configuration in Consul KV, over its HTTP API with Node's `fetch`. Prefix mode
 * (default): each entry under `prefix` is one secret; `set` writes it (with `ifVersion`, a
 * check-and-set on its `ModifyIndex`), `delete` removes it, `keys` lists it. Document mode
 * (`key`): one entry holding a JSON or `.env` document. `watch` runs blocking queries
 * (`?index=&wait=`) as Consul asks clients to: an index that goes backwards starts over from 0,
 * an index is at least 1, a return is not a change (changes are found by comparing contents),
 * queries start at most once per `minInterval`, and failures back off and the watch resumes.
 *
 * @example
 * ```ts
 * const consul = new ConsulProvider({
 *   prefix: 'app/prod/',
 *   token: { provider: vault, key: 'consul/token' },
 * });
 * (await consul.get('db/password')).reveal();
 * ```
 */
export class ConsulProvider extends BaseProvider {
  readonly #address: URL;
  readonly #prefix: string;
  readonly #documentKey: string | undefined;
  readonly #format: 'json' | 'env';
  readonly #jsonKeys: JsonKeyStyle;
  readonly #staticToken: string | undefined;
  readonly #token: CredentialSource | undefined;
  readonly #datacenter: string | undefined;
  readonly #timeout: number;
  readonly #wait: number;
  readonly #minInterval: number;
  readonly #maxBytes: number;
  readonly #dispatcher: unknown;
  readonly #closer = new AbortController();
  /** The parsed document of document mode, by the entry's ModifyIndex. */
  #parsed: { readonly index: number; readonly values: Map<string, string> } | undefined;

  constructor(options: ConsulProviderOptions = {}) {
    const name = options.name ?? PROVIDER_NAME;
    const documentMode = options.key !== undefined;
    const readOnly = options.readOnly === true || documentMode;
    super({
      ...options,
      name,
      capabilities: readOnly ? { write: false, delete: false } : { checkAndSet: true },
    });
    if (documentMode && options.prefix !== undefined) {
      throw new InvalidConfigError(
        { provider: name },
        `provider "${name}": give either prefix or key, not both`,
      );
    }
    this.#address = parseAddress(options.address ?? 'http://127.0.0.1:8500', name);
    this.#prefix = options.prefix ?? '';
    if (this.#prefix.startsWith('/')) {
      throw new InvalidConfigError({ provider: name }, `provider "${name}": prefix must not begin with "/"`);
    }
    this.#documentKey = options.key;
    if (documentMode && (options.key === '' || options.key?.startsWith('/') || options.key?.endsWith('/'))) {
      throw new InvalidConfigError({ provider: name }, `provider "${name}": key must name one entry`);
    }
    this.#format = options.format ?? 'json';
    this.#jsonKeys = options.jsonKeys ?? 'nested';
    this.#staticToken = typeof options.token === 'string' ? options.token : undefined;
    this.#token =
      options.token !== undefined && typeof options.token !== 'string'
        ? new CredentialSource(options.token)
        : undefined;
    this.#datacenter = options.datacenter;
    this.#timeout = positive(options.timeout, 10_000, 'timeout', name);
    this.#wait = Math.min(positive(options.wait, 300_000, 'wait', name), 600_000);
    this.#minInterval = positive(options.minInterval, 250, 'minInterval', name);
    this.#maxBytes = positive(options.maxBytes, 32 * 1024 * 1024, 'maxBytes', name);
    this.#dispatcher = options.dispatcher;
  }

  // ---- hooks ---------------------------------------------------------------------------------

  protected override validateKey(key: unknown): string {
    const valid = super.validateKey(key);
    if (this.#documentKey === undefined) {
      // `.` and `..` segments would be resolved by the URL and leave the prefix.
      if (valid.startsWith('/') || valid.split('/').some((segment) => segment === '.' || segment === '..')) {
        throw new InvalidKeyError(
          { provider: this.name, key: valid },
          `invalid key "${valid}": it must not begin with "/" or hold "." or ".." segments (provider "${this.name}")`,
        );
      }
    }
    return valid;
  }

  protected override async readSecret(key: string, context: HookContext): Promise<StoredSecret | undefined> {
    if (this.#documentKey !== undefined) {
      const values = await this.#documentValues(context);
      const value = values.get(key);
      return value === undefined ? undefined : { value, metadata: { version: fingerprint(value) } };
    }
    const entry = await this.#readEntry(this.#prefix + key, context, key);
    return entry === undefined
      ? undefined
      : { value: entry.value, metadata: { version: String(entry.modifyIndex) } };
  }

  protected override async writeSecret(
    key: string,
    value: string,
    context: HookContext & SetOptions,
  ): Promise<void> {
    const request: RequestContext = { provider: this.name, operation: 'set', key };
    let cas: number | undefined;
    if (context.ifVersion !== undefined) {
      const wanted = context.ifVersion;
      if (wanted === null || wanted === '0') cas = 0;
      else if (/^\d+$/.test(wanted)) cas = Number(wanted);
      else {
        // No ModifyIndex looks like this: the version cannot be the current one.
        throw new SecretConflictError(
          request,
          `check-and-set failed for "${key}": no such version (provider "${this.name}")`,
        );
      }
    }
    const answer = await this.#send({
      method: 'PUT',
      key: this.#prefix + key,
      query: cas === undefined ? {} : { cas: String(cas) },
      body: value,
      context: request,
      signal: context.signal,
    });
    if (answer.status !== 200) throw this.#failure(answer, request);
    const result = this.#boolean(answer, request);
    if (result) return;
    // Consul answers `false` for a lost check-and-set (a plain write always answers `true`).
    if (cas !== undefined) {
      throw new SecretConflictError(
        request,
        `check-and-set failed for "${key}": the current version is not ${cas === 0 ? 'absence' : cas} (provider "${this.name}")`,
      );
    }
    throw this.#unexpected(request, 'a write answered false');
  }

  protected override async deleteSecret(key: string, context: HookContext): Promise<boolean> {
    const request: RequestContext = { provider: this.name, operation: 'delete', key };
    // Consul answers `true` to the delete of a missing key: presence is read first, and the
    // delete is a check-and-set on what was read, so a key re-written meanwhile is read again.
    for (let attempt = 0; attempt < 3; attempt++) {
      const entry = await this.#readEntry(
        this.#prefix + key,
        { operation: 'delete', signal: context.signal },
        key,
      );
      if (entry === undefined) return false;
      const answer = await this.#send({
        method: 'DELETE',
        key: this.#prefix + key,
        query: { cas: String(entry.modifyIndex) },
        context: request,
        signal: context.signal,
      });
      if (answer.status !== 200) throw this.#failure(answer, request);
      if (this.#boolean(answer, request)) return true;
    }
    throw new SecretConflictError(
      request,
      `"${key}" kept changing while it was deleted (provider "${this.name}")`,
    );
  }

  protected override async listKeys(
    context: HookContext & { prefix?: string | undefined },
  ): Promise<string[]> {
    if (this.#documentKey !== undefined) return [...(await this.#documentValues(context)).keys()];
    const request: RequestContext = { provider: this.name, operation: 'keys' };
    const answer = await this.#send({
      method: 'GET',
      key: this.#prefix + (context.prefix ?? ''),
      query: { keys: '' },
      context: request,
      signal: context.signal,
    });
    if (answer.status === 404) return [];
    if (answer.status !== 200) throw this.#failure(answer, request);
    const names = this.#json(answer, request);
    if (!Array.isArray(names) || !names.every((name) => typeof name === 'string')) {
      throw this.#unexpected(request, 'the key list is not a list of names');
    }
    return names
      .filter((name) => name.startsWith(this.#prefix) && name.length > this.#prefix.length)
      .map((name) => name.slice(this.#prefix.length));
  }

  protected override async startWatch(_emit: EmitFunction): Promise<() => Promise<void>> {
    let index = 0;
    let contents: Contents | undefined;
    const round = async (signal: AbortSignal | undefined, blocking: boolean) => {
      const read = await this.#readWatched(signal, blocking ? index : 0);
      // Consul's rules for blocking clients: an index is at least 1; one that goes backwards
      // (a snapshot restore, a new leader that lags) starts over from 0, which does not block.
      const next = Math.max(1, read.index);
      index = next < index ? 0 : next;
      if (contents !== undefined) emitDiff(this.emit, this.name, versionsOf(contents, read.contents));
      contents = read.contents;
    };
    // The first read is the starting point. While Consul is down it rejects: the base class
    // reports that and starts the watch again on its back-off.
    await round(undefined, false);
    const poller = this.createPoller(
      async (signal) => {
        await round(signal, true);
        // A return is the moment to ask again (minInterval keeps a flapping key from spinning).
        return { nextDelay: 0 };
      },
      {
        interval: 1_000,
        first: 'now',
        minInterval: this.#minInterval,
        backoff: { base: 1_000, max: 60_000 },
      },
    ).start();
    return () => poller.stop();
  }

  protected override async onClose(): Promise<void> {
    this.#closer.abort(new ProviderUnavailableError({ provider: this.name }, 'provider closed'));
    await this.#token?.close();
  }

  // ---- Consul --------------------------------------------------------------------------------

  /** What a watch watches, read once (`index` 0) or as a blocking query. */
  async #readWatched(
    signal: AbortSignal | undefined,
    index: number,
  ): Promise<{ index: number; contents: Contents }> {
    const request: RequestContext = { provider: this.name, operation: 'watch' };
    const blocking = index > 0 ? { index: String(index), wait: `${this.#wait}ms` } : {};
    const documentKey = this.#documentKey;
    const answer = await this.#send({
      method: 'GET',
      key: documentKey ?? this.#prefix,
      query: documentKey === undefined ? { recurse: '', ...blocking } : blocking,
      context: request,
      signal,
      // The agent holds a blocking query for `wait` plus up to 1/16 of it.
      timeout: index > 0 ? this.#wait + this.#wait / 16 + this.#timeout : this.#timeout,
    });
    const answered = indexOf(answer);
    const contents: Contents = new Map();
    if (answer.status === 404) return { index: answered, contents };
    if (answer.status !== 200) throw this.#failure(answer, request);
    const entries = this.#entries(answer, request);
    if (documentKey !== undefined) {
      const entry = entries[0];
      if (entry !== undefined) {
        for (const [key, value] of await this.#parseDocument(entry, request)) {
          const hash = fingerprint(value);
          contents.set(key, { hash, version: hash });
        }
      }
    } else {
      for (const entry of entries) {
        const key = entry.key.slice(this.#prefix.length);
        if (key === '' || !entry.key.startsWith(this.#prefix)) continue;
        contents.set(key, { hash: fingerprint(entry.value), version: String(entry.modifyIndex) });
      }
    }
    return { index: answered, contents };
  }

  async #readEntry(consulKey: string, context: HookContext, key?: string): Promise<Entry | undefined> {
    const request: RequestContext = { provider: this.name, operation: context.operation, key };
    const answer = await this.#send({
      method: 'GET',
      key: consulKey,
      query: {},
      context: request,
      signal: context.signal,
    });
    if (answer.status === 404) return undefined;
    if (answer.status !== 200) throw this.#failure(answer, request);
    const entry = this.#entries(answer, request).find((e) => e.key === consulKey);
    if (entry === undefined) throw this.#unexpected(request, 'the answer does not hold the key asked for');
    return entry;
  }

  async #documentValues(context: HookContext): Promise<Map<string, string>> {
    const request: RequestContext = { provider: this.name, operation: context.operation };
    const entry = await this.#readEntry(this.#documentKey as string, context);
    // A missing document is an outage of the configuration, not "every key is missing".
    if (entry === undefined) {
      throw new ProviderUnavailableError(
        { ...request, status: 404 },
        `the document entry of provider "${this.name}" does not exist`,
      );
    }
    const cached = this.#parsed;
    if (cached !== undefined && cached.index === entry.modifyIndex) return cached.values;
    const values = await this.#parseDocument(entry, request);
    this.#parsed = { index: entry.modifyIndex, values };
    return values;
  }

  async #parseDocument(entry: Entry, request: RequestContext): Promise<Map<string, string>> {
    try {
      return await readDocument(entry.value, this.#format, this.#jsonKeys);
    } catch (error) {
      // The reader's messages give a position at most, never the text.
      throw this.#unexpected(request, error instanceof Error ? error.message : 'unreadable document');
    }
  }

  /** One request to `/v1/kv/<key>`; a refused token is read again once. */
  async #send(spec: {
    method: 'GET' | 'PUT' | 'DELETE';
    key: string;
    query: Record<string, string>;
    body?: string | undefined;
    context: RequestContext;
    signal: AbortSignal | undefined;
    timeout?: number | undefined;
  }): Promise<HttpAnswer> {
    const url = new URL(`v1/kv/${spec.key.split('/').map(encodeURIComponent).join('/')}`, this.#address);
    for (const [name, value] of Object.entries(spec.query)) url.searchParams.set(name, value);
    if (this.#datacenter !== undefined) url.searchParams.set('dc', this.#datacenter);
    // Flags are presence tests: `recurse=` and `keys=` read as `?recurse` and `?keys`.
    url.search = url.search.replace(/=(?=&|$)/g, '');
    const signal =
      spec.signal === undefined ? this.#closer.signal : AbortSignal.any([spec.signal, this.#closer.signal]);
    for (let attempt = 0; ; attempt++) {
      const credential = await this.#token?.credential(spec.context, signal);
      const token = credential?.token ?? this.#staticToken;
      const answer = await sendRequest({
        url,
        method: spec.method,
        headers: token === undefined ? {} : { 'X-Consul-Token': token },
        body: spec.body,
        signal,
        timeoutMs: spec.timeout ?? this.#timeout,
        maxBytes: this.#maxBytes,
        clock: this.clock,
        dispatcher: this.#dispatcher,
        context: spec.context,
      });
      if (answer.status === 403 && credential !== undefined && attempt === 0) {
        // The token may have rotated before its provider said so ("ACL not found"): read it again, once.
        this.#token?.refused(credential.generation);
        continue;
      }
      return answer;
    }
  }

  #failure(answer: HttpAnswer, context: RequestContext): SecretError {
    return statusError(
      answer,
      context,
      this.clock.now(),
      `${context.operation}${context.key === undefined ? '' : ` "${context.key}"`} on Consul`,
    );
  }

  #json(answer: HttpAnswer, context: RequestContext): unknown {
    try {
      return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(answer.body));
    } catch {
      throw this.#unexpected(context, 'the answer is not JSON');
    }
  }

  /** A write's answer: the JSON `true` or `false`, nothing else. */
  #boolean(answer: HttpAnswer, context: RequestContext): boolean {
    const result = this.#json(answer, context);
    if (result !== true && result !== false)
      throw this.#unexpected(context, 'a write answered neither true nor false');
    return result;
  }

  #entries(answer: HttpAnswer, context: RequestContext): Entry[] {
    const body = this.#json(answer, context);
    if (!Array.isArray(body)) throw this.#unexpected(context, 'the answer is not a list of entries');
    return body.map((raw: unknown) => {
      const entry = raw as { Key?: unknown; Value?: unknown; ModifyIndex?: unknown } | null;
      if (
        typeof entry?.Key !== 'string' ||
        typeof entry.ModifyIndex !== 'number' ||
        !(entry.Value === null || entry.Value === undefined || typeof entry.Value === 'string')
      ) {
        throw this.#unexpected(context, 'an entry of the answer is malformed');
      }
      const value =
        typeof entry.Value === 'string' ? Buffer.from(entry.Value, 'base64').toString('utf8') : '';
      return { key: entry.Key, value, modifyIndex: entry.ModifyIndex };
    });
  }

  #unexpected(context: RequestContext, reason: string): SecretError {
    return new ProviderUnavailableError(
      context,
      `unexpected answer from Consul: ${reason} (provider "${this.name}")`,
    );
  }
}

/** `X-Consul-Index` as a number; 0 when absent or unreadable (then floored to 1 by the watch). */
function indexOf(answer: HttpAnswer): number {
  const header = answer.headers.get('x-consul-index');
  return header !== null && /^\d+$/.test(header) ? Number(header) : 0;
}

/** The diff of two watch contents, by content, with Consul's versions in the events. */
function versionsOf(previous: Contents, next: Contents): SnapshotDiff {
  const hashes = (contents: Contents) => new Map([...contents].map(([key, { hash }]) => [key, hash]));
  const diff = diffSnapshots(hashes(previous), hashes(next));
  const version = (contents: Contents, key: string) => contents.get(key)?.version ?? '';
  return {
    added: diff.added.map(({ key }) => ({ key, version: version(next, key) })),
    removed: diff.removed.map(({ key }) => ({ key, version: version(previous, key) })),
    rotated: diff.rotated.map(({ key }) => ({
      key,
      oldVersion: version(previous, key),
      newVersion: version(next, key),
    })),
  };
}

function parseAddress(input: string | URL, provider: string): URL {
  let url: URL;
  try {
    url = new URL(String(input));
  } catch {
    throw new InvalidConfigError({ provider }, `provider "${provider}": address is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidConfigError({ provider }, `provider "${provider}": address must be http: or https:`);
  }
  if (!url.pathname.endsWith('/')) url.pathname = `${url.pathname}/`;
  return url;
}

function positive(value: number | undefined, fallback: number, option: string, provider: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || !(value > 0)) {
    throw new InvalidConfigError(
      { provider },
      `provider "${provider}": ${option} must be a finite number > 0`,
    );
  }
  return value;
}
