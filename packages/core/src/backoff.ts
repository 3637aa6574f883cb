import { isSecretError } from './errors.js';

/** How waits grow after consecutive failures. Durations in milliseconds. */
export interface BackoffOptions {
  /** The wait after the first failure (before jitter). @default 1_000 */
  readonly base?: number | undefined;
  /** The longest wait. @default 60_000 */
  readonly max?: number | undefined;
  /**
   * When the backend said how long to wait (`Retry-After`), the wait is stretched at random by up
   * to this fraction of itself, so a fleet that was told the same instant does not return in it.
   * @default 0.5
   */
  readonly retryAfterSpread?: number | undefined;
  /** The longest `Retry-After` honoured; a longer one is capped here. @default 3_600_000 */
  readonly maxRetryAfter?: number | undefined;
  /** Random source in [0, 1) (simulations). @default Math.random */
  readonly random?: (() => number) | undefined;
}

/**
 * The wait after `failures` consecutive failures (1 for the first): exponential from `base`,
 * capped at `max`, with the upper half random ("equal jitter"), so that clients that failed
 * together do not retry together. The one back-off formula of the product.
 */
export function backoffDelay(failures: number, options: BackoffOptions = {}): number {
  const base = options.base ?? 1_000;
  const max = options.max ?? 60_000;
  const random = options.random ?? Math.random;
  const ceiling = Math.min(max, base * 2 ** Math.max(0, Math.min(failures - 1, 30)));
  return ceiling / 2 + (ceiling / 2) * random();
}

/**
 * The wait before trying again after `error`, the `failures`-th failure in a row: the backend's
 * `Retry-After` (a {@link SecretError}'s `retryAfterMs`) when it gave one, spread at random,
 * else {@link backoffDelay}.
 */
export function retryDelay(failures: number, error: unknown, options: BackoffOptions = {}): number {
  const retryAfter = isSecretError(error) ? error.retryAfterMs : undefined;
  if (retryAfter === undefined) return backoffDelay(failures, options);
  const capped = Math.min(retryAfter, options.maxRetryAfter ?? 3_600_000);
  const random = options.random ?? Math.random;
  return capped * (1 + (options.retryAfterSpread ?? 0.5) * random());
}

/**
 * Parses an HTTP `Retry-After` value into milliseconds from `now`: delay-seconds first (digits
 * only: `Date.parse("120")` is the year 120), an HTTP date second. `undefined` when absent or
 * unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value === null) return undefined;
  const text = value.trim();
  if (text === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  // An HTTP date starts with the day's name (`Sun, 06 Nov 1994 08:49:37 GMT`).
  if (!/^[A-Za-z]/.test(text)) return undefined;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
