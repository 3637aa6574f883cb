import { isSecretError, type SecretError } from '@secret-provider/core';
import { type Clock, HoldOff, type Timer } from '@secret-provider/core/adapter';
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
  readonly mapError: (error: unknown, key: string) => SecretError;
  /** How long Vault asked to hold off (429); the loop sends nothing until then. */
  readonly heldBackFor: () => number;
}

interface Tracked {
  readonly address: KvAddress;
  read: KvRead;
  readonly intervalMs: number;
  /** The next re-read, unless the hold-off says later (after a failure). */
  nextAt: number;
  refreshing: Promise<boolean> | undefined;
}

/** The outcome of a refresh of every static secret (`refreshAll`). */
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
 * together spread out. A failed re-read keeps the last value, reports an error event and is held
 * off by core's {@link HoldOff} (the cache's hold-off): a back-off or the server's `Retry-After`,
 * and after a throttling the backlog comes back spread over one interval.
 */
export class StaticRefresher {
  readonly #config: StaticRefresherConfig;
  readonly #tracked = new Map<string, Tracked>();
  /** Background re-reads back off further than requests do: a fleet must not hammer a struggling Vault. */
  readonly #holdOff: HoldOff<string>;
  #timer: Timer | undefined;
  #closed = false;

  constructor(config: StaticRefresherConfig) {
    this.#config = config;
    this.#holdOff = new HoldOff({ base: 1_000, max: 60_000, random: config.random });
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
      refreshing: undefined,
    });
    while (this.#tracked.size > this.#config.maxTracked) {
      const oldest = this.#tracked.keys().next().value;
      if (oldest === undefined) break;
      this.#forget(oldest);
    }
    this.#ensureLoop();
  }

  /** Forgets a secret (written, deleted, or changed as seen elsewhere); its next read goes to Vault. */
  invalidate(base: string): void {
    this.#forget(base);
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
    this.#holdOff.clear();
  }

  #forget(base: string): void {
    this.#tracked.delete(base);
    this.#holdOff.delete(base);
  }

  /** When `entry` is to be re-read next: its schedule, or later while it is held off. */
  #dueAt(entry: Tracked): number {
    return this.#holdOff.until(entry.address.base) ?? entry.nextAt;
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
    const isDue = (e: Tracked) => this.#dueAt(e) <= now && e.refreshing === undefined;
    const due = [...this.#tracked.values()].filter(isDue);
    // While Vault holds this client off, send nothing. After a throttling, re-reads go one at a
    // time: the first is a probe, and if it is throttled too the others join the backlog without
    // a request (the transport answers for Vault); once one succeeds the hold-off spreads the
    // backlog over an interval.
    if (due.length > 0 && this.#config.heldBackFor() === 0) {
      if (this.#holdOff.throttled) {
        for (const entry of due) if (isDue(entry)) await this.#refresh(entry, false).catch(() => false);
      } else {
        for (let i = 0; i < due.length; i += 4) {
          await Promise.all(
            due.slice(i, i + 4).map((entry) => this.#refresh(entry, false).catch(() => false)),
          );
          if (this.#config.heldBackFor() > 0) break;
        }
      }
    }
    if (this.#tracked.size > 0) this.#ensureLoop();
  }

  /** Re-reads one secret. Resolves whether it is still held; `rethrow` makes failures reject. */
  #refresh(entry: Tracked, rethrow: boolean): Promise<boolean> {
    if (entry.refreshing !== undefined) return entry.refreshing;
    const run = async (): Promise<boolean> => {
      const { clock, read, seen, failed } = this.#config;
      const base = entry.address.base;
      try {
        const result = await read(entry.address);
        if (this.#tracked.get(base) !== entry) return false;
        this.#holdOff.succeed(base, clock.now());
        if (result === undefined) {
          this.#forget(base);
          seen(entry.address, undefined);
          return false;
        }
        entry.read = result;
        entry.nextAt = clock.now() + this.#next(entry.intervalMs);
        seen(entry.address, result);
        return true;
      } catch (error) {
        const mapped = this.#config.mapError(error, base);
        // The hold-off's window is the shortest interval: a backlog spread over it is re-read
        // before the first of its re-reads comes back.
        const window = entry.intervalMs * (1 - this.#config.jitter);
        if (this.#tracked.get(base) === entry) this.#holdOff.fail(base, mapped, clock.now(), window);
        if (!rethrow) failed(mapped, base);
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
