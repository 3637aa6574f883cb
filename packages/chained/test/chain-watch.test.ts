import { ChainedProvider } from '@secret-provider/chained';
import type { SecretEvents } from '@secret-provider/core';
import { ProviderUnavailableError } from '@secret-provider/core';
import { type EnvObject, EnvProvider } from '@secret-provider/env';
import { MemoryProvider } from '@secret-provider/memory';
import { expectNoLeak, keysOf, pause, type Recorded, record, until } from '@secret-provider/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { FlakyProvider } from './helpers.js';

// Events describe what `get` returns through the chain: a change hidden by a provider before the
// one that changed is no change at all, and a value uncovered or covered is a rotation.

let chain: ChainedProvider | undefined;
afterEach(async () => {
  await chain?.close();
  chain = undefined;
});

/** Settles the chain's event queue: lets asynchronous effective-value checks finish. */
const settle = () => pause(50);

const layered = async (index = false) => {
  const top = new MemoryProvider({ name: 'top' });
  const bottom = new MemoryProvider({ name: 'bottom' });
  chain = new ChainedProvider([top, bottom], { index });
  const recorded = await record(chain);
  return { top, bottom, chain, ...recorded };
};

const only = (events: Recorded[]) => events.map((e) => [e.type, (e.event as { source?: string }).source]);

describe.each([false, true])('ChainedProvider.watch: effective values (index: %s)', (index) => {
  it('reports an addition with nothing below as added', async () => {
    const { top, events } = await layered(index);
    await top.set('K', 'top-1');
    await until(() => events.length === 1, 2_000, 'added');
    expect(only(events)).toEqual([['added', 'top']]);
    expect(events[0]?.event).toMatchObject({
      provider: 'chain',
      key: 'K',
      version: (await top.metadata('K')).version,
    });
  });

  it('emits nothing for a change shadowed by a provider before it', async () => {
    const { top, bottom, events } = await layered(index);
    await top.set('K', 'top-1');
    await bottom.set('K', 'bottom-1');
    await bottom.set('K', 'bottom-2');
    await bottom.delete('K');
    await bottom.set('K', 'bottom-3');
    await settle();
    expect(only(events)).toEqual([['added', 'top']]);
  });

  it('reports a removal that uncovers a lower value as rotated, from old to new version', async () => {
    const { top, bottom, events } = await layered(index);
    await bottom.set('K', 'bottom-1');
    await top.set('K', 'top-1');
    const topVersion = (await top.metadata('K')).version;
    const bottomVersion = (await bottom.metadata('K')).version;
    await settle();
    events.length = 0;
    await top.delete('K');
    await until(() => events.length >= 1, 2_000, 'rotated');
    await settle();
    expect(only(events)).toEqual([['rotated', 'top']]);
    const rotated = events[0]?.event as SecretEvents['rotated'];
    expect(rotated.keys).toEqual(['K']);
    expect(rotated.changes).toEqual([{ key: 'K', oldVersion: topVersion, newVersion: bottomVersion }]);
    expect((await chain?.get('K'))?.reveal()).toBe('bottom-1');
  });

  it('reports an addition over an existing lower value as rotated', async () => {
    const { top, bottom, events } = await layered(index);
    await bottom.set('K', 'bottom-1');
    await until(() => events.length === 1, 2_000, 'added');
    await top.set('K', 'top-1');
    await until(() => events.length === 2, 2_000, 'rotated');
    await settle();
    expect(only(events)).toEqual([
      ['added', 'bottom'],
      ['rotated', 'top'],
    ]);
    expect((events[1]?.event as SecretEvents['rotated'] | undefined)?.changes).toEqual([
      {
        key: 'K',
        oldVersion: (await bottom.metadata('K')).version,
        newVersion: (await top.metadata('K')).version,
      },
    ]);
  });

  it('reports each step of a layered key: added, covered, uncovered, removed', async () => {
    const { top, bottom, events } = await layered(index);
    const step = async (change: () => Promise<void>, count: number) => {
      await change();
      await until(() => events.length === count, 2_000, `event ${count}`);
    };
    await step(() => bottom.set('K', 'bottom-1'), 1);
    await step(() => top.set('K', 'top-1'), 2);
    await step(() => top.delete('K'), 3);
    await step(() => bottom.delete('K'), 4);
    await settle();
    expect(only(events)).toEqual([
      ['added', 'bottom'],
      ['rotated', 'top'],
      ['rotated', 'top'],
      ['removed', 'bottom'],
    ]);
  });

  it('replays a burst of changes made in one tick step by step, as each happened', async () => {
    const { top, bottom, events, chain } = await layered(index);
    // All in one tick: by the time the chain looks, only the end state is left to see, so it
    // takes the state of other providers from their own queued events.
    void bottom.set('K', 'bottom-1');
    void top.set('K', 'top-1');
    void top.delete('K');
    void bottom.delete('K');
    void bottom.set('L', 'bottom-l');
    void top.set('L', 'top-l');
    await until(() => events.length >= 6, 2_000, 'six events');
    await settle();
    expect(
      events.map((e) => [e.type, (e.event as { source?: string }).source, keysOf([e], e.type)[0]]),
    ).toEqual([
      ['added', 'bottom', 'K'],
      ['rotated', 'top', 'K'],
      ['rotated', 'top', 'K'],
      ['removed', 'bottom', 'K'],
      ['added', 'bottom', 'L'],
      ['rotated', 'top', 'L'],
    ]);
    expect((await chain.get('L')).reveal()).toBe('top-l');
  });

  it('rotations of the serving provider pass through', async () => {
    const { top, bottom, events } = await layered(index);
    await top.set('K', 'top-1');
    await bottom.set('K', 'bottom-1');
    await top.set('K', 'top-2');
    await until(() => events.length === 2, 2_000, 'two events');
    await settle();
    expect(only(events)).toEqual([
      ['added', 'top'],
      ['rotated', 'top'],
    ]);
  });
});

describe('ChainedProvider.watch: with env and several keys at once', () => {
  it('keeps the unshadowed keys of a multi-key rotation and drops the shadowed ones', async () => {
    const env: EnvObject = { APP_A: 'env-a1', APP_B: 'env-b1' };
    const top = new MemoryProvider({ name: 'memory', initial: { A: 'memory-a' } });
    chain = new ChainedProvider([top, new EnvProvider({ env, prefix: 'APP_', pollInterval: 20 })]);
    const { events } = await record(chain);
    // One poll of the environment sees both changes and reports them in one `rotated` event.
    env.APP_A = 'env-a2';
    env.APP_B = 'env-b2';
    await until(() => events.length >= 1, 5_000, 'rotation');
    await settle();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'rotated',
      event: { keys: ['B'], source: 'env', provider: 'chain' },
    });
    expectNoLeak(
      events.map((e) => e.event),
      ['env-a1', 'env-a2', 'env-b1', 'env-b2', 'memory-a'],
    );
  });

  it('reports an environment variable that starts overriding a lower value as rotated', async () => {
    const env: EnvObject = {};
    chain = new ChainedProvider([
      new EnvProvider({ env, prefix: 'APP_', pollInterval: 20 }),
      new MemoryProvider({ name: 'memory', initial: { DB_URL: 'memory-url' } }),
    ]);
    const { events } = await record(chain);
    env.APP_DB_URL = 'env-url';
    await until(() => events.length >= 1, 5_000, 'rotation');
    expect(events[0]).toMatchObject({ type: 'rotated', event: { keys: ['DB_URL'], source: 'env' } });
    delete env.APP_DB_URL;
    await until(() => events.length >= 2, 5_000, 'second rotation');
    await settle();
    expect(events.map((e) => e.type)).toEqual(['rotated', 'rotated']);
    expect((await chain.get('DB_URL')).reveal()).toBe('memory-url');
  });

  it('forwards providers errors and warnings with their source', async () => {
    const flaky = new FlakyProvider({ name: 'flaky' });
    const memory = new MemoryProvider({ name: 'memory' });
    chain = new ChainedProvider([flaky, memory]);
    const { events } = await record(chain);
    // A change below a provider that cannot answer is reported, and so is the failure.
    flaky.failure = () => new ProviderUnavailableError({ provider: 'flaky' });
    await memory.set('K', 'k-secret');
    await until(() => events.length >= 2, 2_000, 'error and added');
    expect(events.map((e) => e.type).sort()).toEqual(['added', 'error']);
    expect(events.find((e) => e.type === 'error')?.event).toMatchObject({
      provider: 'chain',
      source: 'flaky',
    });
    expectNoLeak(
      events.map((e) => e.event),
      ['k-secret'],
    );
  });
});
