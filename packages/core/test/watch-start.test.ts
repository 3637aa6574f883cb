import {
  AccessDeniedError,
  createEmitter,
  ProviderUnavailableError,
  type SecretError,
  type SecretEvents,
} from '@secret-provider/core';
import {
  BaseProvider,
  diffSnapshots,
  type EmitFunction,
  emitDiff,
  ManualClock,
  type StoredSecret,
} from '@secret-provider/core/adapter';
import { describe, expect, it } from 'vitest';

/**
 * An adapter with a push source (a subscription) that fails to start while `outage` holds errors,
 * one per attempt. A started source diffs against the baseline it read when it started.
 */
class PushedBackend extends BaseProvider {
  readonly data = new Map<string, number>();
  readonly outage: SecretError[] = [];
  /** Clock time of each call of `startWatch`. */
  readonly attempts: number[] = [];
  /** Sources started and not yet stopped. */
  active = 0;
  stoppedSources = 0;
  /** When set, the next start waits for this before it resolves. */
  gate: Promise<void> | undefined;
  #notify: (() => void) | undefined;

  constructor(readonly manual: ManualClock) {
    super({ name: 'pushed', clock: manual, pollJitter: 0, watchRetry: { base: 1_000, max: 8_000 } });
  }

  put(key: string): void {
    this.data.set(key, (this.data.get(key) ?? 0) + 1);
    this.#notify?.();
  }

  protected override async readSecret(key: string): Promise<StoredSecret | undefined> {
    const version = this.data.get(key);
    return version === undefined
      ? undefined
      : { value: `value-${key}`, metadata: { version: String(version) } };
  }

  protected override async startWatch(emit: EmitFunction): Promise<() => void> {
    this.attempts.push(this.manual.now());
    const failure = this.outage.shift();
    if (failure !== undefined) throw failure;
    if (this.gate !== undefined) await this.gate;
    let baseline = this.#versions();
    this.#notify = () => {
      const next = this.#versions();
      emitDiff(emit, this.name, diffSnapshots(baseline, next));
      baseline = next;
    };
    this.active++;
    return () => {
      this.#notify = undefined;
      this.active--;
      this.stoppedSources++;
    };
  }

  #versions(): Map<string, string> {
    return new Map([...this.data].map(([key, version]) => [key, String(version)]));
  }
}

const unavailable = () => new ProviderUnavailableError({ provider: 'pushed', operation: 'watch' });
const denied = () => new AccessDeniedError({ provider: 'pushed', operation: 'watch' });

function record(provider: BaseProvider) {
  const events: Array<{ type: keyof SecretEvents; event: SecretEvents[keyof SecretEvents] }> = [];
  const emitter = createEmitter();
  emitter.on('*', (type, event) => events.push({ type, event }));
  const handle = provider.watch(emitter);
  return { events, handle };
}

const codes = (events: ReturnType<typeof record>['events']) =>
  events.map(({ type, event }) =>
    type === 'error' ? `error:${(event as SecretEvents['error']).error.code}` : type,
  );

describe('a push source that fails to start', () => {
  it('is started again on the back-off until it starts; then changes are reported from its own baseline', async () => {
    const clock = new ManualClock();
    const provider = new PushedBackend(clock);
    provider.put('before');
    provider.outage.push(unavailable(), unavailable(), unavailable(), unavailable(), denied(), unavailable());
    const { events, handle } = record(provider);
    // Ready once the first attempt failed and was reported: the watch is alive and retrying.
    await handle.ready;
    expect(handle.stopped).toBe(false);
    expect(codes(events)).toEqual(['error:UNAVAILABLE']);
    expect(clock.pending).toBe(1);
    while (provider.active === 0 && provider.attempts.length < 20) await clock.advanceToNext();
    expect(provider.attempts).toHaveLength(7);
    const gaps = provider.attempts.slice(1).map((at, i) => at - (provider.attempts[i] as number));
    // Equal jitter from 1 s, doubling, capped at 8 s: [1, 1], [1, 2], [2, 4], [4, 8], [4, 8], [4, 8].
    const bounds = [
      [1_000, 1_000],
      [1_000, 2_000],
      [2_000, 4_000],
      [4_000, 8_000],
      [4_000, 8_000],
      [4_000, 8_000],
    ];
    gaps.forEach((gap, i) => {
      const [low, high] = bounds[i] as [number, number];
      expect(gap, `wait before attempt ${i + 2}`).toBeGreaterThanOrEqual(low);
      expect(gap, `wait before attempt ${i + 2}`).toBeLessThanOrEqual(high);
    });
    // Six failures, reported once per code in a row; the start that succeeded is silent.
    expect(codes(events)).toEqual(['error:UNAVAILABLE', 'error:ACCESS_DENIED', 'error:UNAVAILABLE']);
    expect(provider.active).toBe(1);
    expect(clock.pending).toBe(0);
    await clock.advance(60_000);
    expect(provider.attempts).toHaveLength(7);
    // `before` existed when the source started: not a change. What comes after is.
    provider.put('after');
    provider.put('before');
    expect(codes(events).slice(3)).toEqual(['added', 'rotated']);
    expect(events.at(-1)?.event).toMatchObject({ keys: ['before'] });
    await handle.stop();
    expect(provider.active).toBe(0);
    await provider.close();
  });

  it('honours a Retry-After of the failure in the wait before the next attempt', async () => {
    const clock = new ManualClock();
    const provider = new PushedBackend(clock);
    const throttled = new ProviderUnavailableError({
      provider: 'pushed',
      operation: 'watch',
      retryAfterMs: 30_000,
    });
    provider.outage.push(unavailable(), throttled);
    const { handle } = record(provider);
    await handle.ready;
    await clock.advance(1_000);
    expect(provider.attempts).toHaveLength(2);
    await clock.advance(29_000);
    expect(provider.attempts).toHaveLength(2);
    await clock.advance(15_000);
    expect(provider.attempts).toHaveLength(3);
    expect(provider.active).toBe(1);
    await provider.close();
    expect(provider.active).toBe(0);
  });

  it('stopping the last watcher during the wait cancels the retry: no timer, no later start', async () => {
    const clock = new ManualClock();
    const provider = new PushedBackend(clock);
    for (let i = 0; i < 100; i++) provider.outage.push(unavailable());
    const first = record(provider);
    const second = record(provider);
    await Promise.all([first.handle.ready, second.handle.ready]);
    await clock.advance(1_000);
    expect(provider.attempts).toHaveLength(2);
    // One watcher left: the retries go on.
    await first.handle.stop();
    expect(clock.pending).toBe(1);
    await second.handle.stop();
    expect(clock.pending).toBe(0);
    await clock.advance(3_600_000);
    expect(provider.attempts).toHaveLength(2);
    // A new watcher starts afresh.
    provider.outage.length = 0;
    const third = record(provider);
    await third.handle.ready;
    expect(provider.attempts).toHaveLength(3);
    expect(provider.active).toBe(1);
    expect(codes(third.events)).toEqual([]);
    await provider.close();
    expect(provider.active).toBe(0);
  });

  it('closing the provider during the wait cancels the retry and ends the watch', async () => {
    const clock = new ManualClock();
    const provider = new PushedBackend(clock);
    for (let i = 0; i < 100; i++) provider.outage.push(unavailable());
    const { events, handle } = record(provider);
    await handle.ready;
    await clock.advance(1_000);
    expect(provider.attempts).toHaveLength(2);
    await provider.close();
    expect(clock.pending).toBe(0);
    await handle.done;
    expect(handle.stopped).toBe(true);
    provider.outage.length = 0;
    await clock.advance(3_600_000);
    expect(provider.attempts).toHaveLength(2);
    expect(provider.active).toBe(0);
    expect(codes(events)).toEqual(['error:UNAVAILABLE']);
  });

  it('a start that succeeds after the watch was stopped is disarmed at once', async () => {
    const clock = new ManualClock(undefined, { settleTimeoutMs: 20 });
    const provider = new PushedBackend(clock);
    provider.outage.push(unavailable());
    let open!: () => void;
    provider.gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const { events, handle } = record(provider);
    await handle.ready;
    // The retry is under way, waiting on the backend.
    await clock.advance(1_000);
    expect(provider.attempts).toHaveLength(2);
    const stopping = handle.stop();
    open();
    await stopping;
    expect(provider.stoppedSources).toBe(1);
    expect(provider.active).toBe(0);
    expect(clock.pending).toBe(0);
    provider.put('late');
    expect(codes(events)).toEqual(['error:UNAVAILABLE']);
    await provider.close();
  });

  it('refuses a watchRetry that is not a positive number of ms, when the provider is made', () => {
    class Bad extends BaseProvider {
      constructor(base: number) {
        super({ name: 'bad', watchRetry: { base } });
      }
      protected override async readSecret(): Promise<StoredSecret | undefined> {
        return undefined;
      }
    }
    for (const base of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new Bad(base)).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    }
    expect(() => new Bad(10)).not.toThrow();
  });
});
