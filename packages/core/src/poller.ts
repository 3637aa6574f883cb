import { type BackoffOptions, retryDelay } from './backoff.js';
import { type Clock, systemClock, type Timer } from './clock.js';
import { InvalidConfigError } from './errors.js';
import { jittered } from './util.js';

/** Settings of a {@link Poller}. Durations in milliseconds. */
export interface PollerOptions {
  /** Wait between two successful runs. */
  readonly interval: number;
  /** Fraction of `interval` removed at random from each wait. @default 0.1 */
  readonly jitter?: number | undefined;
  /**
   * When the first run happens: `'spread'` anywhere in the first interval (instances started
   * together then never poll in step), `'interval'` after one jittered interval, `'now'` at once.
   * @default 'spread' when `jitter` > 0, else 'interval'
   */
  readonly first?: 'spread' | 'interval' | 'now' | undefined;
  /**
   * At least this long between the starts of two runs, whatever a run asks for: a source that
   * answers at once (a flapping blocking query) cannot make the loop spin. @default 0
   */
  readonly minInterval?: number | undefined;
  /**
   * Waits after failures: a backend's `Retry-After` (spread at random), else exponential
   * back-off from twice `interval`, capped.
   * @default { base: interval, max: 32 × interval }
   */
  readonly backoff?: BackoffOptions | undefined;
  /** @default systemClock */
  readonly clock?: Clock | undefined;
  /** Keep the process alive while waiting for the next run (a persistent watcher). @default false */
  readonly keepAlive?: boolean | undefined;
  /** Stops the poller when aborted. */
  readonly signal?: AbortSignal | undefined;
  /** Random source in [0, 1) (simulations). @default Math.random */
  readonly random?: (() => number) | undefined;
}

/** What a run may tell the poller about the next one. */
export interface PollOutcome {
  /**
   * Wait this long before the next run instead of the interval (a server's `max-age`, or 0 for a
   * blocking query that returns when something changed); `minInterval` still applies.
   */
  readonly nextDelay?: number | undefined;
}

/** One run of a poll; `signal` aborts when the poller stops. */
// biome-ignore lint/suspicious/noConfusingVoidType: a run that reports nothing is an `async` function returning nothing
export type PollTask = (signal: AbortSignal) => Promise<PollOutcome | undefined | void>;

/**
 * The one poll loop of the product: runs `task` every `interval` with jitter, backs off after
 * failures (honouring `Retry-After`), can be woken early, and stops on `stop()` or an abort,
 * waiting for a run in progress. Runs are scheduled on a {@link Clock}, so a `ManualClock`
 * drives them in simulated time. Runs never overlap. A failure goes to `onError` and the loop
 * goes on.
 *
 * @example
 * ```ts
 * const poller = new Poller(async (signal) => check(signal), { interval: 30_000 }, (error) => report(error));
 * poller.start();
 * await poller.stop();
 * ```
 */
export class Poller {
  readonly #task: PollTask;
  readonly #onError: ((error: unknown, failures: number) => void) | undefined;
  readonly #interval: number;
  readonly #jitter: number;
  readonly #first: 'spread' | 'interval' | 'now';
  readonly #minInterval: number;
  readonly #backoff: BackoffOptions;
  readonly #clock: Clock;
  readonly #keepAlive: boolean;
  readonly #random: () => number;
  readonly #controller = new AbortController();
  readonly #external: AbortSignal | undefined;
  #timer: Timer | undefined;
  #running: Promise<void> | undefined;
  #started = false;
  #stopped = false;
  #failures = 0;
  #lastStart = Number.NEGATIVE_INFINITY;
  #wakeAfterRun = false;

  constructor(task: PollTask, options: PollerOptions, onError?: (error: unknown, failures: number) => void) {
    const { interval } = options;
    if (typeof interval !== 'number' || !(interval > 0) || !Number.isFinite(interval)) {
      throw new InvalidConfigError({}, 'invalid poll interval: must be a finite number > 0 (ms)');
    }
    const jitter = options.jitter ?? 0.1;
    if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) {
      throw new InvalidConfigError({}, 'invalid poll jitter: must be a number from 0 to 1');
    }
    this.#task = task;
    this.#onError = onError;
    this.#interval = interval;
    this.#jitter = jitter;
    this.#first = options.first ?? (jitter > 0 ? 'spread' : 'interval');
    this.#minInterval = Math.max(0, options.minInterval ?? 0);
    this.#clock = options.clock ?? systemClock;
    this.#keepAlive = options.keepAlive === true;
    this.#random = options.random ?? options.backoff?.random ?? Math.random;
    this.#backoff = {
      base: interval,
      max: Math.max(interval * 32, interval),
      ...options.backoff,
      random: this.#random,
    };
    this.#external = options.signal;
  }

  /** Consecutive failed runs (0 after a success). */
  get failures(): number {
    return this.#failures;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Schedules the first run. Idempotent. */
  start(): this {
    if (this.#started || this.#stopped) return this;
    this.#started = true;
    if (this.#external?.aborted) {
      void this.stop();
      return this;
    }
    this.#external?.addEventListener('abort', this.#onAbort, { once: true });
    const wait =
      this.#first === 'now'
        ? 0
        : this.#first === 'spread'
          ? this.#interval * this.#random()
          : jittered(this.#interval, this.#jitter, this.#random);
    this.#schedule(wait);
    return this;
  }

  /** Runs as soon as allowed (`minInterval`), instead of after the current wait. */
  trigger(): void {
    if (this.#stopped || !this.#started) return;
    if (this.#running !== undefined) {
      this.#wakeAfterRun = true;
      return;
    }
    this.#timer?.cancel();
    this.#schedule(this.#minimumWait());
  }

  /** Stops the loop: aborts a run in progress and waits for it to end. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#external?.removeEventListener('abort', this.#onAbort);
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#controller.abort();
    await this.#running;
  }

  readonly #onAbort = () => void this.stop();

  #minimumWait(): number {
    return Math.max(0, this.#lastStart + this.#minInterval - this.#clock.now());
  }

  #schedule(wait: number): void {
    if (this.#stopped) return;
    this.#timer = this.#clock.setTimer(() => this.#run(), Math.max(0, wait), { keepAlive: this.#keepAlive });
  }

  #run(): Promise<void> | undefined {
    this.#timer = undefined;
    if (this.#stopped || this.#running !== undefined) return undefined;
    this.#lastStart = this.#clock.now();
    this.#wakeAfterRun = false;
    // Started on the next microtask, so `#running` is set before the task can settle.
    const running = Promise.resolve().then(async () => {
      let wait: number;
      try {
        const outcome = await this.#task(this.#controller.signal);
        if (this.#stopped) return;
        this.#failures = 0;
        const asked = outcome?.nextDelay;
        wait =
          asked !== undefined && Number.isFinite(asked) && asked >= 0
            ? asked
            : jittered(this.#interval, this.#jitter, this.#random);
      } catch (error) {
        if (this.#stopped) return;
        this.#failures++;
        try {
          this.#onError?.(error, this.#failures);
        } catch {
          // A failing error handler must not end the loop.
        }
        wait = Math.max(
          jittered(this.#interval, this.#jitter, this.#random),
          retryDelay(this.#failures + 1, error, this.#backoff),
        );
      } finally {
        this.#running = undefined;
      }
      if (this.#wakeAfterRun) wait = 0;
      this.#schedule(Math.max(wait, this.#minimumWait()));
    });
    this.#running = running;
    return running;
  }
}
