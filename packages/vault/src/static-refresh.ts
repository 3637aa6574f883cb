import { isSecretError, type SecretError } from '@secret-provider/core';
import type { Clock, Timer } from '@secret-provider/core/adapter';
import { compilePattern, type KvAddress } from './addressing.js';
import type { KvRead } from './kv.js';

/** One refresh interval rule. */
export interface IntervalRule {
  readonly pattern: string;
  readonly regex: RegExp;
  readonly ms: number;
}

/** What a problem with the interval configuration looks like, reported as a warning event. */
export interface ConfigWarning {
  readonly code: string;
  readonly message: string;
}

/**
 * Builds the interval rules: the environment variable's JSON first (it overrides), then the
 * options'. Invalid JSON or entries become warnings, never exceptions: a typo in an environment
 * variable must not take a service down.
 */
export function resolveIntervals(
  fromOptions: Readonly<Record<string, number>> | undefined,
  envName: string,
  envValue: string | undefined,
): { rules: IntervalRule[]; warnings: ConfigWarning[] } {
  const warnings: ConfigWarning[] = [];
  const rules: IntervalRule[] = [];
  const seen = new Set<string>();
  const add = (pattern: string, seconds: unknown, source: string) => {
    const value =
      typeof seconds === 'string' && /^\d+(\.\d+)?$/.test(seconds.trim()) ? Number(seconds) : seconds;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      warnings.push({
        code: 'INVALID_REFRESH_INTERVAL',
        message: `${source}: the interval for pattern "${pattern}" is not a number of seconds >= 0; ignored`,
      });
      return;
    }
    if (seen.has(pattern)) return;
    seen.add(pattern);
    rules.push({ pattern, regex: compilePattern(pattern), ms: value * 1000 });
  };
  if (envValue !== undefined && envValue.trim() !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(envValue);
    } catch {
      // JSON.parse quotes the input in its message; the warning does not.
      warnings.push({
        code: 'INVALID_REFRESH_INTERVALS',
        message: `${envName} is not valid JSON; it is ignored`,
      });
    }
    if (parsed !== undefined) {
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        warnings.push({
          code: 'INVALID_REFRESH_INTERVALS',
          message: `${envName} must be a JSON object of pattern -> seconds; it is ignored`,
        });
      } else for (const [pattern, seconds] of Object.entries(parsed)) add(pattern, seconds, envName);
    }
  }
  for (const [pattern, seconds] of Object.entries(fromOptions ?? {}))
    add(pattern, seconds, 'staticRefresh.intervals');
  return { rules, warnings };
}

export interface StaticRefresherConfig {
  readonly clock: Clock;
  readonly random: () => number;
  readonly rules: readonly IntervalRule[];
  readonly defaultMs: number;
  readonly jitter: number;
  readonly spreadFirst: boolean;
  readonly loopIntervalMs: number;
  readonly maxTracked: number;
  /** Re-reads one secret once (no inline retries); `undefined` when it is gone. */
  readonly read: (address: KvAddress) => Promise<KvRead | undefined>;
  /** Reports what a re-read saw (the provider compares versions and emits). */
  readonly seen: (address: KvAddress, read: KvRead | undefined) => void;
  readonly failed: (error: SecretError, key: string) => void;
  readonly backoff: (attempt: number) => number;
  readonly mapError: (error: unknown, key: string) => SecretError;
  /** How long Vault asked to hold off (429); the loop sends nothing until then. */
  readonly heldBackFor: () => number;
}

interface Tracked {
  readonly address: KvAddress;
  read: KvRead;
  readonly intervalMs: number;
  nextAt: number;
  failures: number;
  refreshing: Promise<boolean> | undefined;
}

/** The outcome of {@link StaticRefresher.refreshAll}. */
export interface RefreshReport {
  /** Secrets re-read successfully. */
  readonly refreshed: number;
  /** Secrets whose version changed. */
  readonly changed: string[];
  /** Secrets that could not be re-read (their last value is kept). */
  readonly failed: Array<{ readonly key: string; readonly error: SecretError }>;
}

/**
 * Keeps static (KV) secrets current: a secret whose key matches an interval rule is held after
 * its first read and re-read in the background when its interval is up, by one loop that wakes
 * every `loopIntervalMs`. Intervals are drawn from `interval * (1 ± jitter)` so that the mean is
 * the interval, and the first one from `[0.1, 1.1] * interval` so that instances started
 * together spread out. A failed re-read keeps the last value, reports an error event and tries
 * again after a back-off (or the server's `Retry-After`).
 */
export class StaticRefresher {
  readonly #config: StaticRefresherConfig;
  readonly #tracked = new Map<string, Tracked>();
  #timer: Timer | undefined;
  #closed = false;
  /** The last re-read was throttled: the next one is a lone probe. */
  #throttled = false;

  constructor(config: StaticRefresherConfig) {
    this.#config = config;
  }

  get size(): number {
    return this.#tracked.size;
  }

  /** The keys (bases) held. */
  bases(): string[] {
    return [...this.#tracked.keys()];
  }

  /** Re-read interval of a secret in ms; 0 when it is not kept. */
  intervalFor(base: string): number {
    for (const rule of this.#config.rules) if (rule.regex.test(base)) return rule.ms;
    return this.#config.defaultMs;
  }

  /** The held read of `base`, refreshing its place in the LRU order. */
  get(base: string): KvRead | undefined {
    const entry = this.#tracked.get(base);
    if (entry === undefined) return undefined;
    this.#tracked.delete(base);
    this.#tracked.set(base, entry);
    return entry.read;
  }

  /** Starts holding a secret just read, if a rule gives it an interval. */
  track(address: KvAddress, read: KvRead): void {
    if (this.#closed) return;
    const intervalMs = this.intervalFor(address.base);
    if (intervalMs <= 0) return;
    const existing = this.#tracked.get(address.base);
    if (existing !== undefined) {
      existing.read = read;
      return;
    }
    const { clock, random, spreadFirst } = this.#config;
    const first = spreadFirst ? intervalMs * (0.1 + random()) : this.#next(intervalMs);
    this.#tracked.set(address.base, {
      address,
      read,
      intervalMs,
      nextAt: clock.now() + first,
      failures: 0,
      refreshing: undefined,
    });
    while (this.#tracked.size > this.#config.maxTracked) {
      const oldest = this.#tracked.keys().next().value;
      if (oldest === undefined) break;
      this.#tracked.delete(oldest);
    }
    this.#ensureLoop();
  }

  /** Forgets a secret (written, deleted, or changed as seen elsewhere); its next read goes to Vault. */
  invalidate(base: string): void {
    this.#tracked.delete(base);
  }

  /** Re-reads every held secret now. */
  async refreshAll(): Promise<RefreshReport> {
    const entries = [...this.#tracked.values()];
    const changed: string[] = [];
    const failed: Array<{ key: string; error: SecretError }> = [];
    let refreshed = 0;
    for (let i = 0; i < entries.length; i += 8) {
      const batch = entries.slice(i, i + 8);
      await Promise.all(
        batch.map(async (entry) => {
          const before = entry.read.version;
          try {
            const ok = await this.#refresh(entry, true);
            if (ok) {
              refreshed++;
              if (entry.read.version !== before) changed.push(entry.address.base);
            }
          } catch (error) {
            failed.push({ key: entry.address.base, error: this.#config.mapError(error, entry.address.base) });
          }
        }),
      );
    }
    return { refreshed, changed, failed };
  }

  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#tracked.clear();
  }

  #next(intervalMs: number): number {
    const { jitter, random } = this.#config;
    return intervalMs * (1 + jitter * (2 * random() - 1));
  }

  #ensureLoop(): void {
    if (this.#timer !== undefined || this.#closed) return;
    const { clock, loopIntervalMs, random } = this.#config;
    this.#timer = clock.setTimer(() => this.#tick(), loopIntervalMs * (1 - 0.1 * random()));
  }

  async #tick(): Promise<void> {
    this.#timer = undefined;
    if (this.#closed) return;
    const now = this.#config.clock.now();
    const due = [...this.#tracked.values()].filter((e) => e.nextAt <= now && e.refreshing === undefined);
    // While Vault throttles this client, send nothing; after it, one re-read probes first, and
    // the backlog is spread over the next interval instead of arriving all at once (a fleet
    // coming out of throttling together would otherwise be throttled again).
    if (due.length > 0 && this.#config.heldBackFor() === 0) {
      let rest = due;
      if (this.#throttled) {
        const [probe, ...others] = due as [Tracked, ...Tracked[]];
        await this.#refresh(probe, false).catch(() => false);
        if (!this.#throttled) {
          for (const entry of others) entry.nextAt = now + entry.intervalMs * this.#config.random();
        }
        rest = [];
      }
      for (let i = 0; i < rest.length; i += 4) {
        await Promise.all(
          rest.slice(i, i + 4).map((entry) => this.#refresh(entry, false).catch(() => false)),
        );
        if (this.#config.heldBackFor() > 0) break;
      }
    }
    if (this.#tracked.size > 0) this.#ensureLoop();
  }

  /** Re-reads one secret. Resolves whether it is still held; `rethrow` makes failures reject. */
  #refresh(entry: Tracked, rethrow: boolean): Promise<boolean> {
    if (entry.refreshing !== undefined) return entry.refreshing;
    const run = async (): Promise<boolean> => {
      const { clock, read, seen, failed, backoff } = this.#config;
      try {
        const result = await read(entry.address);
        if (this.#tracked.get(entry.address.base) !== entry) return false;
        if (result === undefined) {
          this.#tracked.delete(entry.address.base);
          seen(entry.address, undefined);
          return false;
        }
        entry.read = result;
        entry.failures = 0;
        this.#throttled = false;
        entry.nextAt = clock.now() + this.#next(entry.intervalMs);
        seen(entry.address, result);
        return true;
      } catch (error) {
        const mapped = this.#config.mapError(error, entry.address.base);
        if (mapped.code === 'RATE_LIMITED') this.#throttled = true;
        entry.failures++;
        const wait = Math.max(mapped.retryAfterMs ?? 0, backoff(Math.min(entry.failures, 8)));
        entry.nextAt = clock.now() + Math.min(wait, entry.intervalMs);
        if (!rethrow) failed(mapped, entry.address.base);
        if (rethrow || !isSecretError(mapped)) throw mapped;
        return true;
      }
    };
    entry.refreshing = run().finally(() => {
      entry.refreshing = undefined;
    });
    return entry.refreshing;
  }
}
