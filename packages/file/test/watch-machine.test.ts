// The watch state machine on its own: a simulated disk, a simulated clock, and each state and
// move of the machine (quiet period, early re-read, doubtful keys, settle, overtaken re-read, own
// writes, a source that fails).
import { createEmitter, InvalidValueError, type SecretEvents } from '@secret-provider/core';
import { ManualClock } from '@secret-provider/core/adapter';
import { type Recorded, summary } from '@secret-provider/testing';
import { describe, expect, it } from 'vitest';
import type { Entry, KeyLoad, Reading, Target } from '../src/source.js';
import { WatchMachine } from '../src/watch-machine.js';

const DEBOUNCE = 25;

const entry = (value: string): Entry => ({
  value,
  version: `v:${value}`,
  updatedAt: undefined,
  empty: value === '',
});

/** A disk of keys; reads see it as it is when they start, and can be held to resolve later. */
class Disk {
  readonly files = new Map<string, string>();
  /** Set to make every read a document that does not parse. */
  failure: InvalidValueError | undefined;
  hold = false;
  readonly held: Array<() => void> = [];
  readonly reads: Array<{ target: string; at: number }> = [];
  atomic: ReadonlySet<string> | undefined;

  constructor(
    readonly clock: ManualClock,
    initial: Record<string, string> = {},
  ) {
    for (const [key, value] of Object.entries(initial)) this.files.set(key, value);
  }

  read = (target: Target): Promise<Reading> => {
    this.reads.push({
      target: target === 'all' ? 'all' : [...target].sort().join(','),
      at: this.clock.now(),
    });
    const reading = this.#snapshot(target);
    if (!this.hold) return Promise.resolve(reading);
    return new Promise((resolve) => this.held.push(() => resolve(reading)));
  };

  release(): void {
    for (const resolve of this.held.splice(0)) resolve();
  }

  #snapshot(target: Target): Reading {
    if (this.failure !== undefined) return { keys: new Map(), complete: true, failure: this.failure };
    const keys = new Map<string, KeyLoad>();
    const names = target === 'all' ? [...this.files.keys()] : [...target];
    for (const key of names) {
      const value = this.files.get(key);
      keys.set(key, value === undefined ? { kind: 'missing' } : { kind: 'ok', entry: entry(value) });
    }
    return { keys, complete: target === 'all', atomic: this.atomic };
  }
}

async function setup(initial: Record<string, string>, options: { lossy?: boolean; sorted?: boolean } = {}) {
  const clock = new ManualClock();
  const disk = new Disk(clock, initial);
  const events: Recorded[] = [];
  const errors: unknown[] = [];
  const emitter = createEmitter();
  emitter.on('*', (type, event) => events.push({ type, event: event as SecretEvents[keyof SecretEvents] }));
  const machine = new WatchMachine({
    read: disk.read,
    debounceMs: DEBOUNCE,
    lossy: () => options.lossy ?? false,
    sorted: options.sorted ?? true,
    provider: 'test',
    emit: (type, event) => emitter.emit(type, event),
    report: (error) => errors.push(error),
    clock,
  });
  await machine.start();
  const value = (key: string) => machine.lookup(key)?.value;
  return { clock, disk, machine, events, errors, value };
}

/** Lets the immediate re-reads (scheduled with setImmediate) and their promises run. */
const flush = async () => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
};

describe('WatchMachine', () => {
  it('quiet: serves the first read, emits nothing, reads nothing more', async () => {
    const { clock, disk, machine, events, value } = await setup({ a: '1', b: '2' });
    expect(machine.serving).toBe(true);
    expect(value('a')).toBe('1');
    expect(machine.keys()).toEqual(['a', 'b']);
    await clock.advance(10 * DEBOUNCE);
    expect(disk.reads).toHaveLength(1);
    expect(events).toEqual([]);
  });

  it('notified: the new value is served after one early read; the event waits for the quiet period', async () => {
    const { clock, disk, machine, events, value } = await setup({ a: '1' });
    disk.files.set('a', '2');
    machine.notify(new Set(['a']));
    machine.notify(new Set(['a']));
    await flush();
    expect(value('a')).toBe('2');
    expect(disk.reads.map((r) => r.target)).toEqual(['all', 'a']);
    expect(events).toEqual([]);
    await clock.advance(DEBOUNCE);
    expect(summary(events)).toEqual(['rotated:a']);
    // Nothing was notified since the early read: the settle does not read again.
    expect(disk.reads).toHaveLength(2);
  });

  it('doubtful: a key an early read sees missing keeps its value until the settle reads it again', async () => {
    const { clock, disk, machine, events, value } = await setup({ a: '1', b: '2' });
    disk.files.delete('a');
    machine.notify(new Set(['a']));
    await flush();
    expect(value('a')).toBe('1');
    await clock.advance(DEBOUNCE);
    expect(value('a')).toBeUndefined();
    expect(disk.reads.map((r) => r.target)).toEqual(['all', 'a', 'a']);
    expect(summary(events)).toEqual(['removed:a']);
  });

  it('doubtful: deleted and re-created with the same value within the quiet period is no event', async () => {
    const { clock, disk, machine, events, value } = await setup({ a: '1' });
    disk.files.set('a', '');
    machine.notify(new Set(['a']));
    await flush();
    expect(value('a')).toBe('1');
    disk.files.set('a', '1');
    machine.notify(new Set(['a']));
    await clock.advance(DEBOUNCE);
    expect(value('a')).toBe('1');
    expect(events).toEqual([]);
  });

  it('atomic switch: keys gone from an atomic payload are removed at the early read', async () => {
    const { clock, disk, machine, events, value } = await setup({ a: '1', b: '2' });
    disk.files.delete('a');
    disk.atomic = new Set(['a', 'b']);
    machine.notify('all');
    await flush();
    expect(value('a')).toBeUndefined();
    await clock.advance(DEBOUNCE);
    expect(summary(events)).toEqual(['removed:a']);
  });

  it('settle: a burst of notifications gives one event per key, at most 20 quiet periods late', async () => {
    const { clock, disk, machine, events } = await setup({ a: '0' });
    let emittedAt: number | undefined;
    const start = clock.now();
    for (let i = 1; i <= 60 && emittedAt === undefined; i++) {
      disk.files.set('a', String(i));
      machine.notify(new Set(['a']));
      await flush();
      await clock.advance(DEBOUNCE / 2);
      if (events.length > 0) emittedAt = clock.now();
    }
    expect(emittedAt).toBeDefined();
    expect((emittedAt as number) - start).toBeLessThanOrEqual(20 * DEBOUNCE + DEBOUNCE);
    expect(summary(events)).toEqual(['rotated:a']);
  });

  it('lossy notifications: every settle reads again', async () => {
    const { clock, disk, machine, events, value } = await setup({ a: '1' }, { lossy: true });
    machine.notify(new Set(['a']));
    await flush();
    // A change the notifications missed.
    disk.files.set('a', '2');
    await clock.advance(DEBOUNCE);
    expect(value('a')).toBe('2');
    expect(summary(events)).toEqual(['rotated:a']);
  });

  it('own writes: served at once, reported once at the next settle, without a read', async () => {
    const { clock, disk, machine, events, value } = await setup({ a: '1' });
    disk.files.set('b', 'mine');
    machine.own({ keys: new Map([['b', { kind: 'ok', entry: entry('mine') }]]), complete: false });
    expect(value('b')).toBe('mine');
    await clock.advance(DEBOUNCE);
    expect(summary(events)).toEqual(['added:b']);
    expect(disk.reads).toHaveLength(1);
  });

  it('overtaken: an own write during the settle read drops its result and the next settle reads its keys', async () => {
    const { clock, disk, machine, events, value } = await setup({ doomed: 'x', mine: '0' });
    // Deleted outside: the early read keeps it (doubtful).
    disk.files.delete('doomed');
    machine.notify(new Set(['doomed']));
    await flush();
    expect(value('doomed')).toBe('x');
    // The settle reads it again, and an own write of another key lands during that read.
    disk.hold = true;
    const settling = clock.advance(DEBOUNCE);
    await flush();
    expect(disk.held).toHaveLength(1);
    disk.files.set('mine', '1');
    machine.own({ keys: new Map([['mine', { kind: 'ok', entry: entry('1') }]]), complete: false });
    // Its notification, as the own write's rename produces one, is read early (and finds the
    // doomed key missing again: doubtful again).
    machine.notify(new Set(['mine']));
    disk.hold = false;
    disk.release();
    await settling;
    await flush();
    expect(value('mine')).toBe('1');
    await clock.advance(DEBOUNCE);
    await flush();
    expect(value('doomed')).toBeUndefined();
    expect(summary(events).sort()).toEqual(['removed:doomed', 'rotated:mine']);
    const settledReadsOfDoomed = disk.reads.filter((r) => r.target.includes('doomed') && r.at >= DEBOUNCE);
    expect(settledReadsOfDoomed.length).toBeGreaterThanOrEqual(2);
  });

  it('a source that does not parse: keeps the last good values, reports once settled, serves the failure without them', async () => {
    const { clock, disk, machine, errors, value } = await setup({ a: '1' });
    disk.failure = new InvalidValueError({ provider: 'test' }, 'not valid');
    machine.notify('all');
    await flush();
    expect(errors).toEqual([]);
    expect(value('a')).toBe('1');
    await clock.advance(DEBOUNCE);
    expect(errors).toEqual([disk.failure]);
    expect(value('a')).toBe('1');

    const empty = await setup({});
    empty.disk.failure = new InvalidValueError({ provider: 'test' }, 'not valid');
    empty.machine.notify('all');
    await flush();
    await empty.clock.advance(DEBOUNCE);
    expect(() => empty.machine.lookup('a')).toThrow('not valid');
    empty.disk.failure = undefined;
    empty.disk.files.set('a', 'fixed');
    empty.machine.notify('all');
    await flush();
    expect(empty.value('a')).toBe('fixed');
  });

  it('per-key refusals: served when there is no value, the last good value otherwise', async () => {
    const { clock, machine, errors, value } = await setup({ a: '1' });
    const refusal = new InvalidValueError({ provider: 'test', key: 'b' }, 'refused');
    machine.own({ keys: new Map([['b', { kind: 'invalid', error: refusal }]]), complete: false });
    expect(() => machine.lookup('b')).toThrow('refused');
    machine.own({
      keys: new Map([['a', { kind: 'invalid', error: new InvalidValueError({}, 'refused a') }]]),
      complete: false,
    });
    expect(value('a')).toBe('1');
    await clock.advance(DEBOUNCE);
    expect(errors).toEqual([]);
  });

  it('notifications before the first read completes get a read of their own', async () => {
    const clock = new ManualClock();
    const disk = new Disk(clock, { a: '1' });
    disk.hold = true;
    const events: string[] = [];
    const machine = new WatchMachine({
      read: disk.read,
      debounceMs: DEBOUNCE,
      lossy: () => false,
      sorted: true,
      provider: 'test',
      emit: (type) => events.push(type),
      report: () => {},
      clock,
    });
    const started = machine.start();
    await flush();
    disk.files.set('a', '2');
    machine.notify(new Set(['a']));
    disk.hold = false;
    disk.release();
    await started;
    await flush();
    expect(machine.lookup('a')?.value).toBe('2');
    await clock.advance(DEBOUNCE);
    expect(events).toEqual(['rotated']);
  });

  it('stopped: no more reads or events, an in-flight read is waited for', async () => {
    const { clock, disk, machine, events } = await setup({ a: '1' });
    disk.hold = true;
    disk.files.set('a', '2');
    machine.notify(new Set(['a']));
    await flush();
    const stopping = machine.stop();
    disk.release();
    await stopping;
    machine.notify(new Set(['a']));
    await clock.advance(10 * DEBOUNCE);
    expect(machine.serving).toBe(false);
    expect(events).toEqual([]);
    expect(disk.reads).toHaveLength(2);
  });
});
