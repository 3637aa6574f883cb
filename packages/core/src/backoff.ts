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
 * `Retry-After` (a `SecretError`'s `retryAfterMs`) when it gave one, spread at random,
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

interface Held {
  until: number;
  failures: number;
  window: number;
}

/**
 * Keys waiting to be tried again after failures, and when each may go: the one hold-off of the
 * product, behind the cache's stale-if-error and adapters' background refresh loops, so that both
 * come out of an outage or a throttling the same way.
 *
 * After an ordinary failure a key waits {@link retryDelay}, never longer than its `window` (its
 * normal period: a TTL, a refresh interval). After a throttling answer (`RATE_LIMITED`) the
 * backend has said it is overloaded: every key held waits the backend's `Retry-After` (else the
 * back-off) plus a random point of its window, and the first success afterwards spreads the keys
 * still held over their window from then. An instance's backlog, and a fleet's, then reaches the
 * backend at its normal rate instead of all at once when the throttling ends.
 */
export class HoldOff<K = string> {
  readonly #held = new Map<K, Held>();
  readonly #options: BackoffOptions;
  readonly #random: () => number;
  #throttled = false;

  constructor(options: BackoffOptions = {}) {
    this.#options = options;
    this.#random = options.random ?? Math.random;
  }

  /** Keys held. */
  get size(): number {
    return this.#held.size;
  }

  /** Whether the last failure was a throttling answer and nothing has succeeded since. */
  get throttled(): boolean {
    return this.#throttled;
  }

  /** When `key` may be tried again, or `undefined` when it is not held. */
  until(key: K): number | undefined {
    return this.#held.get(key)?.until;
  }

  /** Consecutive failures of `key` (0 when it is not held). */
  failures(key: K): number {
    return this.#held.get(key)?.failures ?? 0;
  }

  /**
   * Records a failure of `key` at `now` (on the caller's clock) and returns when it may be tried
   * again. `window` is the key's normal period in ms.
   */
  fail(key: K, error: unknown, now: number, window: number): number {
    const failures = this.failures(key) + 1;
    const span = Math.max(0, window);
    if (!isSecretError(error, 'RATE_LIMITED')) {
      const until = now + Math.min(retryDelay(failures, error, this.#options), span || Infinity);
      this.#held.set(key, { until, failures, window: span });
      return until;
    }
    this.#throttled = true;
    const hold = Math.min(
      error.retryAfterMs ?? backoffDelay(failures, this.#options),
      this.#options.maxRetryAfter ?? 3_600_000,
    );
    const entry: Held = { until: now, failures, window: span };
    this.#held.set(key, entry);
    for (const held of this.#held.values()) held.until = now + hold + held.window * this.#random();
    return entry.until;
  }

  /** `key` succeeded at `now`: it is no longer held (see the class for what follows a throttling). */
  succeed(key: K, now: number): void {
    this.#held.delete(key);
    if (!this.#throttled) return;
    this.#throttled = false;
    for (const held of this.#held.values()) held.until = now + held.window * this.#random();
  }

  /** Forgets `key` (written, deleted, no longer tracked). */
  delete(key: K): void {
    this.#held.delete(key);
  }

  clear(): void {
    this.#held.clear();
    this.#throttled = false;
  }
}
