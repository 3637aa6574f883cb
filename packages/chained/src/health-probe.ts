import { isSecretError, type SecretErrorCode, type SecretProvider } from '@secret-provider/core';
import { type Clock, Poller, raceSignal, systemClock, withTimeout } from '@secret-provider/core/adapter';

/** Checks that a provider serves; resolving means healthy. */
export type HealthCheck = (provider: SecretProvider, signal: AbortSignal) => Promise<unknown>;

/**
 * Failures of a check that still show the backend answering: a missing, invalid or denied key is
 * an answer, so the provider counts as healthy.
 */
export const ANSWER_CODES: ReadonlySet<SecretErrorCode> = new Set([
  'NOT_FOUND',
  'INVALID_KEY',
  'ACCESS_DENIED',
]);

/** The key the default check asks about. */
export const DEFAULT_PROBE_KEY = 'secret-provider-probe';

/** The default check: the `metadata` of `probeKey` (see {@link ANSWER_CODES}). */
export function metadataCheck(probeKey: string = DEFAULT_PROBE_KEY): HealthCheck {
  return (provider, signal) => provider.metadata(probeKey, { signal });
}

/** Options of {@link HealthProbe}. Durations in milliseconds. */
export interface HealthProbeOptions {
  /** The provider to probe. */
  readonly provider: SecretProvider;
  /** @default {@link metadataCheck}() */
  readonly check?: HealthCheck | undefined;
  /** Time between checks. */
  readonly interval: number;
  /** Fraction of `interval` removed at random from each wait. @default 0.1 */
  readonly jitter?: number | undefined;
  /** How long one check may take before it counts as failed. */
  readonly timeout: number;
  /** @default systemClock */
  readonly clock?: Clock | undefined;
  /** Random source in [0, 1) (simulations). @default Math.random */
  readonly random?: (() => number) | undefined;
  /** Called once, when a check finds the provider healthy; probing stops then. */
  readonly onHealthy: () => void;
}

/**
 * Probes a provider that failed until it serves again, on core's {@link Poller}: a check every
 * `interval` (jittered), each bounded by `timeout`, never sooner than a `Retry-After` the
 * provider gave (when it failed, or when a check is throttled). The first healthy check calls
 * `onHealthy` and ends the probe. Time is the `clock`'s, so a `ManualClock` drives it.
 *
 * @example
 * ```ts
 * const probe = new HealthProbe({ provider, interval: 5_000, timeout: 5_000, onHealthy: () => markUp() });
 * probe.start(error.retryAfterMs);
 * await probe.stop();
 * ```
 */
export class HealthProbe {
  readonly #options: HealthProbeOptions;
  readonly #clock: Clock;
  readonly #check: HealthCheck;
  #poller: Poller | undefined;
  /** No check before this time (the clock's epoch ms). */
  #notBefore = 0;

  constructor(options: HealthProbeOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#check = options.check ?? metadataCheck();
  }

  /** Whether a probe is under way. */
  get running(): boolean {
    return this.#poller !== undefined;
  }

  /**
   * Starts probing: the first check after one interval, or after `retryAfterMs` when that is
   * longer. A probe already under way goes on (with the later of the two limits).
   */
  start(retryAfterMs?: number): void {
    if (retryAfterMs !== undefined && retryAfterMs > 0) {
      this.#notBefore = Math.max(this.#notBefore, this.#clock.now() + retryAfterMs);
    }
    if (this.#poller !== undefined) return;
    const { interval } = this.#options;
    const poller: Poller = new Poller((signal) => this.#run(poller, signal), {
      interval,
      jitter: this.#options.jitter ?? 0.1,
      first: 'interval',
      // A failed check waits one interval again (not growing), or the provider's Retry-After.
      backoff: { base: interval, max: interval },
      clock: this.#clock,
      random: this.#options.random,
    });
    this.#poller = poller;
    poller.start();
  }

  /** Stops probing; waits for a check in progress to end. */
  async stop(): Promise<void> {
    const poller = this.#poller;
    this.#poller = undefined;
    this.#notBefore = 0;
    await poller?.stop();
  }

  async #run(poller: Poller, signal: AbortSignal): Promise<{ nextDelay: number } | undefined> {
    const wait = this.#notBefore - this.#clock.now();
    if (wait > 0) return { nextDelay: wait };
    const { provider, timeout } = this.#options;
    try {
      // Raced against the stop as well: a check that ignores its signal must not hold up `stop()`.
      await raceSignal(
        withTimeout(
          (timedOut) => this.#check(provider, AbortSignal.any([signal, timedOut])),
          timeout,
          { provider: provider.name },
          this.#clock,
        ),
        signal,
      );
    } catch (error) {
      // Anything else tells the poller to wait (and to honour a Retry-After) before the next check.
      if (!isSecretError(error) || !ANSWER_CODES.has(error.code)) throw error;
    }
    if (signal.aborted || this.#poller !== poller) return undefined;
    this.#poller = undefined;
    this.#notBefore = 0;
    // Not awaited: stopping waits for this very run.
    void poller.stop();
    this.#options.onHealthy();
    return undefined;
  }
}
