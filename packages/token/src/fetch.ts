import { AccessDeniedError, RateLimitedError } from '@secret-provider/core';
import { type Clock, parseRetryAfter, retryDelay, sleep } from '@secret-provider/core/adapter';
import { networkError } from '@secret-provider/http/transport';
import type { CurrentToken } from './token-source.js';

/** Options of {@link TokenSource.createFetch}. Durations in milliseconds. */
export interface TokenFetchOptions {
  /** The `fetch` to wrap. @default globalThis.fetch */
  readonly fetch?: typeof fetch | undefined;
  /** The wait after a `429` without a readable `Retry-After`. @default 2_000 */
  readonly rateLimitPause?: number | undefined;
  /**
   * The longest `Retry-After` waited for inside one call; a longer one rejects at once with
   * `RATE_LIMITED` and its `retryAfterMs`. @default 60_000
   */
  readonly maxRateLimitWait?: number | undefined;
  /** A `Retry-After` is stretched at random by up to this fraction, so callers do not return together. @default 0.1 */
  readonly retryAfterSpread?: number | undefined;
}

/** A `fetch` that carries a token; see {@link TokenSource.createFetch}. */
export type TokenFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** What the wrapper needs of its source. */
export interface TokenFetchSource {
  readonly name: string;
  readonly key: string;
  readonly clock: Clock;
  readonly random: () => number;
  current(signal: AbortSignal | undefined): Promise<CurrentToken>;
  rejected(generation: number, signal: AbortSignal | undefined): Promise<CurrentToken>;
  refreshable(): boolean;
  warn(code: string, message: string): void;
}

/**
 * Wraps `fetch`: each request carries `Authorization: Bearer <token>`. A `401` makes the source
 * refresh the token (one refresh for all requests refused with the same token) and the request
 * is sent once more, with a `TOKEN_REJECTED` warning; a second `401` rejects with
 * `ACCESS_DENIED`. A `429` warns (`RATE_LIMITED`), waits its `Retry-After` (or
 * `rateLimitPause`) and sends once more; a second `429` rejects with `RATE_LIMITED`. Other
 * answers are returned as they are. A network failure rejects with `UNAVAILABLE`, its cause
 * reduced to a code. Bodies are replayed from a clone of the request, so any body can be retried.
 */
export function createTokenFetch(source: TokenFetchSource, options: TokenFetchOptions = {}): TokenFetch {
  const send = options.fetch ?? globalThis.fetch;
  const pause = options.rateLimitPause ?? 2_000;
  const maxWait = options.maxRateLimitWait ?? 60_000;
  const spread = options.retryAfterSpread ?? 0.1;
  const context = { provider: source.name, key: source.key, operation: 'get' as const };

  const attempt = async (request: Request, token: CurrentToken): Promise<Response> => {
    const headers = new Headers(request.headers);
    headers.set('authorization', `Bearer ${token.token.reveal()}`);
    try {
      return await send(new Request(request, { headers }));
    } catch (error) {
      if (request.signal.aborted) throw request.signal.reason;
      throw networkError(error, context);
    }
  };

  return async (input, init) => {
    const original = new Request(input, init);
    const signal = original.signal;
    let token = await source.current(signal);
    let response = await attempt(original.clone(), token);
    let refused = false;
    let throttled = false;
    for (;;) {
      if (response.status === 401 && !refused) {
        refused = true;
        await discard(response);
        if (!source.refreshable()) {
          source.warn(
            'TOKEN_REJECTED',
            `a request was refused (HTTP 401) and the fixed token cannot be refreshed`,
          );
          throw denied(source, 'the fixed token was refused and cannot be refreshed');
        }
        source.warn(
          'TOKEN_REJECTED',
          'a request was refused (HTTP 401); refreshing the token and retrying once',
        );
        token = await source.rejected(token.generation, signal);
        response = await attempt(original.clone(), token);
        continue;
      }
      if (response.status === 401) {
        await discard(response);
        throw denied(source, 'the request was refused (HTTP 401) again after the token was refreshed');
      }
      if (response.status === 429) {
        const now = source.clock.now();
        const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), now);
        await discard(response);
        const limited = new RateLimitedError(
          { ...context, status: 429, retryAfterMs: retryAfterMs ?? pause },
          `rate limited: the request was refused (HTTP 429)${throttled ? ' again after waiting' : ''} (provider "${source.name}")`,
        );
        if (throttled || (retryAfterMs ?? pause) > maxWait) throw limited;
        throttled = true;
        const wait = retryDelay(1, limited, { retryAfterSpread: spread, random: source.random });
        source.warn(
          'RATE_LIMITED',
          `a request was throttled (HTTP 429); retrying once in ${Math.round(wait)} ms`,
        );
        if (!(await sleep(wait, signal, source.clock))) throw signal.reason;
        token = await source.current(signal);
        response = await attempt(original.clone(), token);
        continue;
      }
      return response;
    }
  };
}

function denied(source: TokenFetchSource, why: string): AccessDeniedError {
  return new AccessDeniedError(
    { provider: source.name, key: source.key, operation: 'get', status: 401 },
    `access denied: ${why} (provider "${source.name}")`,
  );
}

async function discard(response: Response): Promise<void> {
  await response.body?.cancel().catch(() => {});
}
