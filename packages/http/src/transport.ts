// What HTTP-based adapters share: one request with a deadline and a body limit, the mapping of
// network failures and statuses into the taxonomy, and credentials held by another provider.
// Nothing here keeps a response body, a request header or a URL in an error.
import {
  AccessDeniedError,
  createEmitter,
  isSecretError,
  ProviderUnavailableError,
  RateLimitedError,
  type Secret,
  type SecretError,
  type SecretErrorDetails,
  type SecretOperation,
  type SecretProvider,
  SecretTimeoutError,
  type WatchHandle,
} from '@secret-provider/core';
import {
  type Clock,
  parseRetryAfter,
  raceSignal,
  sanitizeCause,
  withTimeout,
} from '@secret-provider/core/adapter';

export { type DocumentFormat, type JsonKeyStyle, readDocument } from './document.js';

/** A credential another provider holds: `{ provider: vault, key: 'config-service/token' }`. */
export interface CredentialReference {
  readonly provider: SecretProvider;
  readonly key: string;
}

/** One HTTP request, as {@link sendRequest} sends it. */
export interface HttpRequest {
  readonly url: URL;
  readonly method?: 'GET' | 'POST' | 'PUT' | 'DELETE' | undefined;
  readonly headers?: Readonly<Record<string, string>> | undefined;
  readonly body?: string | undefined;
  /** Aborts the request (a caller's signal, a poller's stop). */
  readonly signal?: AbortSignal | undefined;
  /** The whole exchange, body included, must end within this many ms. */
  readonly timeoutMs: number;
  /** Longest body accepted, in bytes. */
  readonly maxBytes: number;
  /** The clock the deadline runs on. */
  readonly clock: Clock;
  /** Passed to `fetch` as is (an undici `Dispatcher`: TLS options, proxies). */
  readonly dispatcher?: unknown;
  /** For errors: who asked, and for what. */
  readonly context: RequestContext;
}

/** What errors of a request name. */
export interface RequestContext {
  readonly provider: string;
  readonly operation: SecretOperation;
  readonly key?: string | undefined;
}

/** A response read to its end. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Uint8Array;
}

/**
 * Sends one request with Node's `fetch` and reads the body to its end, within `timeoutMs` on
 * `clock` (`TIMEOUT`) and `maxBytes` (`UNAVAILABLE`). Network failures (refused, reset mid-body,
 * TLS) reject with `UNAVAILABLE` and a sanitized cause; an abort of `signal` rejects with its
 * reason. Redirects are followed within the URL's origin (5 at most); one to another origin is
 * refused (`UNAVAILABLE`), since the request's headers would go there. Any other status
 * resolves: the caller decides what it means ({@link statusError}).
 */
export async function sendRequest(request: HttpRequest): Promise<HttpAnswer> {
  const { context } = request;
  try {
    return await withTimeout(
      async (deadline) => {
        const signal = request.signal === undefined ? deadline : AbortSignal.any([request.signal, deadline]);
        let url = request.url;
        for (let hop = 0; ; hop++) {
          const init: Record<string, unknown> = {
            method: request.method ?? 'GET',
            headers: { ...request.headers },
            signal,
            // Redirects are followed here, within the origin only: `fetch` would carry every
            // header but `Authorization` (API keys, `X-Consul-Token`) to any other origin.
            redirect: 'manual',
          };
          if (request.body !== undefined) init.body = request.body;
          // undici's own option, absent from the DOM `RequestInit` type.
          if (request.dispatcher !== undefined) init.dispatcher = request.dispatcher;
          const response = await fetch(url, init as RequestInit);
          const location = REDIRECTS.has(response.status) ? response.headers.get('location') : null;
          if (location !== null) {
            await response.body?.cancel().catch(() => {});
            const next = resolveRedirect(url, location);
            if (next === undefined || next.origin !== url.origin || hop >= MAX_REDIRECTS) {
              throw new ProviderUnavailableError(
                { ...context, status: response.status, retryable: false },
                `${describe(context)} was redirected ${hop >= MAX_REDIRECTS ? 'too many times' : 'to another origin'}; not followed (provider "${context.provider}")`,
              );
            }
            url = next;
            continue;
          }
          const body = await readBody(response, request.maxBytes, context);
          return { status: response.status, headers: response.headers, body };
        }
      },
      request.timeoutMs,
      context.key === undefined
        ? { provider: context.provider }
        : { provider: context.provider, key: context.key },
      request.clock,
    );
  } catch (error) {
    if (request.signal?.aborted) throw request.signal.reason;
    if (isSecretError(error, 'TIMEOUT')) {
      throw new SecretTimeoutError(
        context,
        `${describe(context)} timed out after ${request.timeoutMs} ms (provider "${context.provider}")`,
      );
    }
    throw networkError(error, context);
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

function resolveRedirect(base: URL, location: string): URL | undefined {
  try {
    return new URL(location, base);
  } catch {
    return undefined;
  }
}

/** Reads a body up to `maxBytes`; a longer one is cancelled and refused. */
async function readBody(response: Response, maxBytes: number, context: RequestContext): Promise<Uint8Array> {
  if (response.body === null) return new Uint8Array(0);
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body.cancel().catch(() => {});
    throw tooLarge(maxBytes, context);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge(maxBytes, context);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

function tooLarge(maxBytes: number, context: RequestContext): SecretError {
  return new ProviderUnavailableError(
    { ...context, retryable: false },
    `the response to ${describe(context)} is larger than ${maxBytes} bytes (provider "${context.provider}")`,
  );
}

const SAFE_CODE = /^[A-Z][A-Z0-9_]{1,48}$/;

/**
 * A network failure as `UNAVAILABLE`. undici rejects with `TypeError('fetch failed')` (or
 * `'terminated'` mid-body) whose `cause` holds the system error; only its code is kept.
 */
export function networkError(error: unknown, context: RequestContext): SecretError {
  if (isSecretError(error)) return error;
  const cause = (error as { cause?: unknown } | null)?.cause ?? error;
  const rawCode = (cause as { code?: unknown } | null)?.code;
  const code = typeof rawCode === 'string' && SAFE_CODE.test(rawCode) ? rawCode : undefined;
  const tls = code !== undefined && /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_|EPROTO/.test(code);
  const what = tls ? 'a TLS failure' : 'a network failure';
  return new ProviderUnavailableError(
    { ...context, cause: sanitizeCause(cause) },
    `${describe(context)} failed with ${what}${code === undefined ? '' : ` (${code})`} (provider "${context.provider}")`,
  );
}

/**
 * The error of an answer with a failing status: 401/403 `ACCESS_DENIED`; 429 `RATE_LIMITED` and
 * 503 `UNAVAILABLE`, both with the `Retry-After` they carried; any other status `UNAVAILABLE`.
 * The body is never read into it.
 */
export function statusError(
  answer: Pick<HttpAnswer, 'status' | 'headers'>,
  context: RequestContext,
  now: number,
  what = describe(context),
): SecretError {
  const { status } = answer;
  const details: SecretErrorDetails = { ...context, status };
  const suffix = `(HTTP ${status}, provider "${context.provider}")`;
  if (status === 401 || status === 403)
    return new AccessDeniedError(details, `access denied: ${what} ${suffix}`);
  const retryAfterMs =
    status === 429 || status === 503 ? parseRetryAfter(answer.headers.get('retry-after'), now) : undefined;
  if (status === 429)
    return new RateLimitedError({ ...details, retryAfterMs }, `rate limited: ${what} ${suffix}`);
  return new ProviderUnavailableError({ ...details, retryAfterMs }, `${what} failed ${suffix}`);
}

function describe(context: RequestContext): string {
  return `${context.operation}${context.key === undefined ? '' : ` "${context.key}"`}`;
}

/** The token a request carries, and which reading of the credential it came from. */
export interface Credential {
  readonly token: string;
  readonly generation: number;
}

/**
 * A credential held by another provider (a bearer token in Vault, an ACL token in a file): read
 * on first use and kept; read again once that provider reports the key rotated, added or
 * removed, or once a server refused the token ({@link CredentialSource.refused}). Reads of one
 * generation are shared. `close` stops watching the other provider (it does not close it).
 */
export class CredentialSource {
  readonly #reference: CredentialReference;
  readonly #onChange: (() => void) | undefined;
  #current: Promise<Secret<string>> | undefined;
  #generation = 0;
  #watch: WatchHandle | undefined;
  #closed = false;

  /**
   * @param options.onChange called after the other provider reported the key rotated, added or
   * removed (a signing key replaced: what was made with the old one should be made again).
   */
  constructor(reference: CredentialReference, options: { onChange?: () => void } = {}) {
    this.#reference = reference;
    this.#onChange = options.onChange;
  }

  /** Starts watching the other provider now, instead of at the first read. */
  watch(): void {
    this.#arm();
  }

  /**
   * The current token. A credential that cannot be read makes the request impossible, never a
   * missing key: `NOT_FOUND` or `ACCESS_DENIED` of the other provider reject as `ACCESS_DENIED`,
   * anything else as `UNAVAILABLE` (retryable as the original), with the original as the cause.
   */
  async credential(context: RequestContext, signal?: AbortSignal): Promise<Credential> {
    this.#arm();
    const generation = this.#generation;
    if (this.#current === undefined) {
      const reading = this.#reference.provider.get(this.#reference.key);
      this.#current = reading;
      // A failed read is not kept: the next request reads again.
      reading.catch(() => {
        if (this.#current === reading) this.#current = undefined;
      });
    }
    try {
      const secret = await raceSignal(this.#current, signal);
      return { token: secret.reveal(), generation };
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw this.#failure(error, context);
    }
  }

  /** The server refused the token of `generation`: the next request reads it again. */
  refused(generation: number): void {
    if (generation === this.#generation) this.#drop();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#current = undefined;
    await this.#watch?.stop();
  }

  #failure(error: unknown, context: RequestContext): SecretError {
    const { provider, key } = this.#reference;
    const where = `the credential "${key}" of provider "${provider.name}"`;
    const details = { ...context, cause: error };
    if (isSecretError(error, 'NOT_FOUND') || isSecretError(error, 'ACCESS_DENIED')) {
      return new AccessDeniedError(
        details,
        `cannot ${describe(context)}: ${where} cannot be read (${error.code}) (provider "${context.provider}")`,
      );
    }
    return new ProviderUnavailableError(
      { ...details, retryable: isSecretError(error) ? error.retryable : true },
      `cannot ${describe(context)}: ${where} cannot be read (provider "${context.provider}")`,
    );
  }

  #drop(): void {
    this.#generation++;
    this.#current = undefined;
  }

  /** Starts watching the other provider for changes of the key, once. */
  #arm(): void {
    if (this.#watch !== undefined || this.#closed) return;
    const key = this.#reference.key;
    const events = createEmitter();
    const changed = () => {
      this.#drop();
      this.#onChange?.();
    };
    events.on('rotated', (event) => {
      if (event.keys.includes(key)) changed();
    });
    events.on('added', (event) => {
      if (event.key === key) changed();
    });
    events.on('removed', (event) => {
      if (event.key === key) changed();
    });
    this.#watch = this.#reference.provider.watch(events);
    // A provider that cannot watch, or is closed, still serves reads; refusals re-read.
    this.#watch.ready.catch(() => {});
  }
}
