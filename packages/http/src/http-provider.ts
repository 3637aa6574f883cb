import {
  InvalidConfigError,
  isSecretError,
  ProviderUnavailableError,
  type SecretError,
  type SecretMetadata,
} from '@secret-provider/core';
import {
  BaseProvider,
  type BaseProviderOptions,
  diffSnapshots,
  type EmitFunction,
  emitDiff,
  fingerprint,
  type HookContext,
  jittered,
  raceSignal,
  retryDelay,
  type StoredSecret,
  type VersionSnapshot,
} from '@secret-provider/core/adapter';
import {
  type DocumentFormat,
  formatOfContentType,
  formatOfPath,
  type JsonKeyStyle,
  type KeyedFormat,
  readDocument,
} from './document.js';
import {
  type CredentialReference,
  CredentialSource,
  type HttpAnswer,
  type RequestContext,
  sendRequest,
  statusError,
} from './transport.js';

/** The default name of an {@link HttpProvider} in errors and events. */
export const PROVIDER_NAME = 'http';

/** Options of {@link HttpProvider}. Durations in milliseconds. */
export interface HttpProviderOptions
  extends Omit<BaseProviderOptions, 'name' | 'cache' | 'capabilities' | 'maxKeyLength'> {
  /** The document's URL (`http:` or `https:`). Never shown in errors or events. */
  readonly url: string | URL;
  /** @default 'http' */
  readonly name?: string | undefined;
  /**
   * `json`, `yaml`, `toml` (keys as the file provider names them: `db.password`), `env`, or
   * `value` (the body is one value, read as `valueKey`). @default from the response's
   * `Content-Type` (JSON, `application/yaml`, `text/yaml`, `application/toml`), else from the
   * URL's path (`.json`, `.yaml`, `.yml`, `.toml`, `.env`)
   */
  readonly format?: DocumentFormat | undefined;
  /** For `json`, `yaml`, `toml`: `nested` keys address leaves of nested objects, `flat` only top-level names. @default 'nested' */
  readonly jsonKeys?: JsonKeyStyle | undefined;
  /** For `value`: the key the body is read as. */
  readonly valueKey?: string | undefined;
  /** Headers sent with every request (they may hold credentials: they are never shown). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /**
   * A bearer token held by another provider, sent as `Authorization: Bearer`; read again when
   * that provider reports it rotated, and once when the server answers 401 or 403.
   */
  readonly bearer?: CredentialReference | undefined;
  /** Longest time for one request, body included (`TIMEOUT`). @default 10_000 */
  readonly timeout?: number | undefined;
  /** Shortest freshness of a document, whatever `Cache-Control` says (`no-cache`, `max-age=0`). @default 1_000 */
  readonly minInterval?: number | undefined;
  /** Longest freshness of a document, whatever `Cache-Control` says. @default 3_600_000 */
  readonly maxInterval?: number | undefined;
  /**
   * How long after a document stops being fresh reads keep answering from it while the server
   * fails (stale-if-error); past that they reject with the failure. `0` turns it off,
   * `Infinity` never lets a held document go. @default 86_400_000 (one day)
   */
  readonly staleIfError?: number | undefined;
  /** Largest body accepted, in bytes. @default 8_388_608 */
  readonly maxBytes?: number | undefined;
  /**
   * Passed to `fetch` as its `dispatcher` (an undici `Agent` with TLS options such as `ca`, a
   * proxy agent). Without it, Node's global dispatcher is used; extra CAs then come from
   * `NODE_EXTRA_CA_CERTS`.
   */
  readonly dispatcher?: unknown;
}

/** Counters of an {@link HttpProvider}, for tests and dashboards. */
export interface HttpProviderStats {
  /** Requests sent. */
  readonly requests: number;
  /** Answers 304 Not Modified. */
  readonly notModified: number;
  /** Bodies parsed (a 200 whose body is unchanged is not parsed again). */
  readonly parses: number;
  /** Failed refreshes. */
  readonly failures: number;
}

/** One document as last validated. */
interface LoadedDocument {
  readonly values: ReadonlyMap<string, string>;
  readonly versions: VersionSnapshot;
  readonly bodyHash: string;
  etag: string | undefined;
  lastModified: string | undefined;
  /** Clock time it was last confirmed current (a 200 or a 304). */
  validatedAt: number;
  /** How long it stays fresh from then. */
  lifetime: number;
}

const FORMATS: readonly DocumentFormat[] = ['json', 'yaml', 'toml', 'env', 'value'];

const ACCEPT: Record<DocumentFormat | 'auto', string> = {
  json: 'application/json',
  yaml: 'application/yaml, text/yaml;q=0.9, */*;q=0.5',
  toml: 'application/toml, */*;q=0.5',
  env: 'text/plain, */*;q=0.5',
  value: '*/*',
  auto: 'application/json, application/yaml, application/toml, */*;q=0.5',
};

/**
 * Secrets from one document served over HTTP (a config service, an object store): JSON, YAML,
 * TOML, `.env` or one raw value, read with Node's `fetch` and kept as an HTTP cache keeps it. Reads answer
 * from the document while it is fresh (`Cache-Control: max-age`, clamped to `minInterval` and
 * `maxInterval`, else `pollInterval`), then revalidate it with `If-None-Match` /
 * `If-Modified-Since`: a 304 costs no parse and changes nothing. A watch polls on the same
 * schedule and reports `added`/`rotated`/`removed` per key; failures back off (honouring
 * `Retry-After` on 429 and 503) and the last good document keeps answering reads for
 * `staleIfError`. Read-only.
 *
 * A missing document (404) is an outage (`UNAVAILABLE`), never "every key is missing"; so is a
 * body that does not parse. 401 and 403 are `ACCESS_DENIED`. Errors never carry the body, the
 * URL or a header.
 *
 * @example
 * ```ts
 * const config = new HttpProvider({
 *   url: 'https://config.internal/app.json',
 *   bearer: { provider: vault, key: 'config-service/token' },
 *   pollInterval: 30_000,
 * });
 * (await config.get('db.password')).reveal();
 * ```
 */
export class HttpProvider extends BaseProvider {
  readonly #url: URL;
  readonly #format: DocumentFormat | undefined;
  /** What the URL's path names: asked for in `Accept`, read when `Content-Type` names nothing. */
  readonly #pathFormat: KeyedFormat | undefined;
  readonly #jsonKeys: JsonKeyStyle;
  readonly #valueKey: string | undefined;
  readonly #headers: Readonly<Record<string, string>>;
  readonly #bearer: CredentialSource | undefined;
  readonly #timeout: number;
  readonly #minInterval: number;
  readonly #maxInterval: number;
  readonly #staleIfError: number;
  readonly #maxBytes: number;
  readonly #dispatcher: unknown;
  /** Aborted by `close`: ends a request in flight. */
  readonly #closer = new AbortController();
  #document: LoadedDocument | undefined;
  #refreshing: Promise<LoadedDocument> | undefined;
  #failures = 0;
  #retryAt = 0;
  #lastFailure: SecretError | undefined;
  #warnedStale = false;
  readonly #stats = { requests: 0, notModified: 0, parses: 0, failures: 0 };

  constructor(options: HttpProviderOptions) {
    super({ ...options, name: options.name ?? PROVIDER_NAME, capabilities: { write: false, delete: false } });
    this.#url = parseUrl(options.url, this.name);
    if (options.format !== undefined && !FORMATS.includes(options.format)) {
      throw new InvalidConfigError(
        { provider: this.name },
        `provider "${this.name}": format must be one of ${FORMATS.join(', ')}`,
      );
    }
    this.#format = options.format;
    this.#pathFormat = formatOfPath(this.#url);
    if (this.#format === 'value' && (typeof options.valueKey !== 'string' || options.valueKey === '')) {
      throw new InvalidConfigError(
        { provider: this.name },
        `provider "${this.name}": format "value" needs valueKey, the key the body is read as`,
      );
    }
    this.#jsonKeys = options.jsonKeys ?? 'nested';
    this.#valueKey = options.valueKey;
    this.#headers = { ...options.headers };
    this.#bearer = options.bearer === undefined ? undefined : new CredentialSource(options.bearer);
    this.#timeout = duration(options.timeout, 10_000, 'timeout', this.name);
    this.#minInterval = duration(options.minInterval, 1_000, 'minInterval', this.name);
    this.#maxInterval = duration(options.maxInterval, 3_600_000, 'maxInterval', this.name);
    this.#staleIfError =
      options.staleIfError === 0
        ? 0
        : duration(options.staleIfError, 86_400_000, 'staleIfError', this.name, true);
    this.#maxBytes = duration(options.maxBytes, 8 * 1024 * 1024, 'maxBytes', this.name);
    if (this.#maxInterval < this.#minInterval) {
      throw new InvalidConfigError(
        { provider: this.name },
        `provider "${this.name}": maxInterval must not be below minInterval`,
      );
    }
    this.#dispatcher = options.dispatcher;
  }

  /** Request and parse counters. */
  stats(): HttpProviderStats {
    return { ...this.#stats };
  }

  // ---- hooks ---------------------------------------------------------------------------------

  protected override async readSecret(key: string, context: HookContext): Promise<StoredSecret | undefined> {
    const document = await this.#current(context);
    const value = document.values.get(key);
    return value === undefined ? undefined : { value, metadata: { version: document.versions.get(key) } };
  }

  protected override async readMetadata(
    key: string,
    context: HookContext,
  ): Promise<Omit<SecretMetadata, 'key'> | undefined> {
    const version = (await this.#current(context)).versions.get(key);
    return version === undefined ? undefined : { version };
  }

  protected override async hasSecret(key: string, context: HookContext): Promise<boolean> {
    return (await this.#current(context)).values.has(key);
  }

  protected override async listKeys(context: HookContext): Promise<string[]> {
    return [...(await this.#current(context)).values.keys()];
  }

  protected override async startWatch(_emit: EmitFunction): Promise<() => Promise<void>> {
    // The starting point. While the server fails it rejects: the base class reports that and
    // starts the watch again on its back-off.
    await this.#current({ operation: 'watch' });
    // The validation the next poll was scheduled after: a poll revalidates unless a read did
    // so meanwhile (then it waits out that document's freshness instead). The first run only
    // schedules the first poll, at the freshness of the document just read.
    let scheduledAfter: number | undefined;
    const poller = this.createPoller(
      async () => {
        const held = this.#document;
        const document =
          held !== undefined && held.validatedAt !== scheduledAfter ? held : await this.#refresh('watch');
        scheduledAfter = document.validatedAt;
        const remaining = document.validatedAt + document.lifetime - this.clock.now();
        return { nextDelay: Math.max(this.#minInterval, jittered(remaining, this.pollJitter)) };
      },
      { minInterval: this.#minInterval, first: 'now' },
    ).start();
    return () => poller.stop();
  }

  protected override async onClose(): Promise<void> {
    this.#closer.abort(new ProviderUnavailableError({ provider: this.name }, 'provider closed'));
    await this.#bearer?.close();
  }

  // ---- the document --------------------------------------------------------------------------

  /**
   * The document to answer from: the held one while fresh; else a revalidated one; while the
   * server fails (and during the back-off after a failure), the held one for `staleIfError`.
   */
  async #current(context: HookContext): Promise<LoadedDocument> {
    const held = this.#document;
    const now = this.clock.now();
    if (held !== undefined && now - held.validatedAt < held.lifetime) return held;
    // During the back-off after a failure, a held document answers (or the failure does)
    // without a request; with nothing held, a read asks again: it has nothing else to give.
    if (held !== undefined && this.#lastFailure !== undefined && now < this.#retryAt) {
      return this.#stale(this.#lastFailure);
    }
    try {
      return await raceSignal(this.#refresh(context.operation === 'watch' ? 'watch' : 'get'), context.signal);
    } catch (error) {
      if (context.signal?.aborted) throw context.signal.reason;
      return this.#stale(this.#asError(error));
    }
  }

  /**
   * The held document if stale-if-error allows it, else `failure`. As in RFC 5861, only outages
   * qualify (unreachable, 5xx, timeouts, throttling, a missing or unreadable document): a refused
   * credential is never answered around.
   */
  #stale(failure: SecretError): LoadedDocument {
    const held = this.#document;
    if (
      held !== undefined &&
      failure.code !== 'ACCESS_DENIED' &&
      this.clock.now() - (held.validatedAt + held.lifetime) <= this.#staleIfError
    ) {
      return held;
    }
    throw failure;
  }

  /** One revalidation at a time; callers share it. */
  #refresh(operation: 'get' | 'watch'): Promise<LoadedDocument> {
    this.#refreshing ??= this.#fetch(operation).then(
      (document) => {
        this.#refreshing = undefined;
        this.#failures = 0;
        this.#retryAt = 0;
        this.#lastFailure = undefined;
        this.#warnedStale = false;
        return document;
      },
      (error: unknown) => {
        this.#refreshing = undefined;
        const failure = this.#asError(error);
        this.#stats.failures++;
        this.#failures++;
        this.#lastFailure = failure;
        this.#retryAt =
          this.clock.now() +
          retryDelay(this.#failures, failure, { base: this.#minInterval, max: 32 * this.#minInterval });
        if (this.#document !== undefined && !this.#warnedStale && !this.closed) {
          this.#warnedStale = true;
          this.emit('warning', {
            provider: this.name,
            code: 'STALE_DOCUMENT',
            message: `provider "${this.name}" answers from its last good document while the server fails (${failure.code})`,
            detectedAt: new Date(),
          });
        }
        throw failure;
      },
    );
    return this.#refreshing;
  }

  async #fetch(operation: 'get' | 'watch'): Promise<LoadedDocument> {
    const context: RequestContext = { provider: this.name, operation };
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = {
        accept: ACCEPT[this.#format ?? this.#pathFormat ?? 'auto'],
        ...this.#headers,
      };
      const credential = await this.#bearer?.credential(context, this.#closer.signal);
      if (credential !== undefined) headers.authorization = `Bearer ${credential.token}`;
      const held = this.#document;
      if (held?.etag !== undefined) headers['if-none-match'] = held.etag;
      if (held?.lastModified !== undefined) headers['if-modified-since'] = held.lastModified;
      this.#stats.requests++;
      const answer = await sendRequest({
        url: this.#url,
        headers,
        signal: this.#closer.signal,
        timeoutMs: this.#timeout,
        maxBytes: this.#maxBytes,
        clock: this.clock,
        dispatcher: this.#dispatcher,
        context,
      });
      if ((answer.status === 401 || answer.status === 403) && credential !== undefined && attempt === 0) {
        // The token may have rotated before its provider said so: read it again, once.
        this.#bearer?.refused(credential.generation);
        continue;
      }
      return await this.#accept(answer, context);
    }
  }

  async #accept(answer: HttpAnswer, context: RequestContext): Promise<LoadedDocument> {
    const now = this.clock.now();
    const held = this.#document;
    if (answer.status === 304 && held !== undefined) {
      this.#stats.notModified++;
      held.validatedAt = now;
      held.lifetime = this.#lifetime(answer.headers);
      held.etag = answer.headers.get('etag') ?? held.etag;
      held.lastModified = answer.headers.get('last-modified') ?? held.lastModified;
      return held;
    }
    if (answer.status !== 200 && answer.status !== 203) {
      if (answer.status === 404 || answer.status === 410) {
        throw new ProviderUnavailableError(
          { ...context, status: answer.status },
          `the document of provider "${this.name}" was not found (HTTP ${answer.status}): an outage, not missing keys`,
        );
      }
      throw statusError(answer, context, now, 'read the document');
    }
    const etag = answer.headers.get('etag') ?? undefined;
    const lastModified = answer.headers.get('last-modified') ?? undefined;
    const lifetime = this.#lifetime(answer.headers);
    const bodyHash = fingerprint(answer.body);
    if (held !== undefined && held.bodyHash === bodyHash) {
      // Same bytes (a server without validators): nothing to parse, nothing changed.
      Object.assign(held, { etag, lastModified, validatedAt: now, lifetime });
      return held;
    }
    const values = await this.#parse(answer, context);
    this.#stats.parses++;
    const versions = new Map([...values].map(([key, value]) => [key, fingerprint(value)]));
    const document: LoadedDocument = {
      values,
      versions,
      bodyHash,
      etag,
      lastModified,
      validatedAt: now,
      lifetime,
    };
    this.#document = document;
    if (held !== undefined) emitDiff(this.emit, this.name, diffSnapshots(held.versions, versions));
    return document;
  }

  async #parse(answer: HttpAnswer, context: RequestContext): Promise<Map<string, string>> {
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(answer.body);
    } catch {
      throw this.#unreadable(context, 'the document is not valid UTF-8');
    }
    if (this.#format === 'value') return new Map([[this.#valueKey as string, text]]);
    const format =
      this.#format ?? formatOfContentType(answer.headers.get('content-type') ?? '') ?? this.#pathFormat;
    if (format === undefined) {
      throw this.#unreadable(
        context,
        'cannot tell the document format from the Content-Type or the URL; set `format`',
      );
    }
    try {
      return await readDocument(text, format, this.#jsonKeys);
    } catch (error) {
      // The reader's messages give a position at most.
      throw this.#unreadable(context, error instanceof Error ? error.message : 'unreadable document');
    }
  }

  #unreadable(context: RequestContext, reason: string): SecretError {
    return new ProviderUnavailableError(context, `${reason} (provider "${this.name}")`);
  }

  /** Freshness of a response: `max-age` (less `Age`) clamped to the bounds, else the poll interval. */
  #lifetime(headers: Headers): number {
    const directives = (headers.get('cache-control') ?? '').toLowerCase();
    let seconds: number | undefined;
    if (/(?:^|,)\s*(?:no-cache|no-store)\b/.test(directives)) seconds = 0;
    else {
      const maxAge = /(?:^|,)\s*max-age\s*=\s*"?(\d+)"?/.exec(directives);
      if (maxAge !== null) seconds = Number(maxAge[1]);
    }
    if (seconds === undefined) return this.pollInterval;
    const age = /^\d+$/.test(headers.get('age') ?? '') ? Number(headers.get('age')) : 0;
    return Math.min(this.#maxInterval, Math.max(this.#minInterval, (seconds - age) * 1000));
  }

  #asError(error: unknown): SecretError {
    if (isSecretError(error)) return error;
    return this.mapError(error, { operation: 'get' });
  }
}

function parseUrl(input: string | URL, provider: string): URL {
  let url: URL;
  try {
    url = new URL(String(input));
  } catch {
    // The URL is not quoted: it may carry a token.
    throw new InvalidConfigError({ provider }, `provider "${provider}": url is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidConfigError({ provider }, `provider "${provider}": url must be http: or https:`);
  }
  return url;
}

function duration(
  value: number | undefined,
  fallback: number,
  option: string,
  provider: string,
  allowInfinity = false,
): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== 'number' ||
    !(value > 0) ||
    (!allowInfinity && !Number.isFinite(value)) ||
    Number.isNaN(value)
  ) {
    throw new InvalidConfigError(
      { provider },
      `provider "${provider}": ${option} must be a ${allowInfinity ? '' : 'finite '}number > 0`,
    );
  }
  return value;
}
