import type { AddedEvent, RemovedEvent, RotatedEvent } from '@secret-provider/core';
import { record } from '@secret-provider/testing';
import { ManualClock, type VaultProviderOptions } from '@secret-provider/vault';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Setup, settle, setup, trackUnhandledRejections } from './helpers.js';

trackUnhandledRejections({ beforeAll, afterAll });

let current: Setup | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

async function watched(options: VaultProviderOptions = {}, seed?: (s: Setup) => void) {
  const clock = new ManualClock();
  const s = await setup({
    clock,
    provider: (double) => {
      if (seed) seed({ double } as Setup);
      return { random: () => 0.5, pollInterval: 10_000, ...options };
    },
  });
  current = s;
  return { s, clock };
}

const summary = (s: Setup) =>
  s.events
    .filter((e) => e.type !== 'warning' && e.type !== 'error')
    .map((e) => {
      if (e.type === 'rotated') {
        const r = e.event as RotatedEvent;
        return `rotated ${r.keys.join(',')} ${r.changes[0]?.oldVersion}->${r.changes[0]?.newVersion}`;
      }
      const a = e.event as AddedEvent | RemovedEvent;
      return `${e.type} ${a.key} ${a.version}`;
    });

describe('watch (KV v2 metadata polling)', () => {
  it('reports additions, rotations, soft deletes and undeletes with versions, reading no values', async () => {
    const { s, clock } = await watched({}, ({ double }) =>
      double.kvPut('secret', 'app/existing', { value: 'e' }),
    );
    s.double.kvPut('secret', 'app/new', { value: 'n1' });
    await clock.advance(10_000);
    s.double.kvPut('secret', 'app/new', { value: 'n2' });
    await clock.advance(10_000);
    s.double.call('DELETE', 'secret/data/app/new');
    await clock.advance(10_000);
    s.double.call('POST', 'secret/undelete/app/new', { versions: [2] });
    await clock.advance(10_000);
    s.double.call('DELETE', 'secret/metadata/app/existing');
    await clock.advance(10_000);
    expect(summary(s)).toEqual([
      'added secret/app/new 1',
      'rotated secret/app/new 1->2',
      'removed secret/app/new 2',
      'added secret/app/new 2',
      'removed secret/app/existing 1',
    ]);
    // The watch reads metadata only: never a value.
    expect(s.double.count((r) => r.path.startsWith('secret/data/'))).toBe(0);
  });

  it('names the field keys read through a secret, so caches of each field drop them', async () => {
    const { s, clock } = await watched({}, ({ double }) =>
      double.kvPut('secret', 'app/db', { password: 'p1', user: 'u' }),
    );
    await s.provider.get('secret/app/db#password');
    s.double.kvPut('secret', 'app/db', { password: 'p2', user: 'u' });
    await clock.advance(10_000);
    expect(summary(s)).toEqual(['rotated secret/app/db,secret/app/db#password 1->2']);
  });

  it('polls with jitter, only the configured prefixes, and keeps going after failures', async () => {
    const { s, clock } = await watched({
      pollInterval: 10_000,
      watch: { prefixes: ['secret/app/'] },
      random: () => 0.5,
    });
    s.double.clearLog();
    s.double.kvPut('secret', 'elsewhere', { value: 'x' });
    await clock.advance(30_000);
    const lists = s.double.requests.filter((r) => r.method === 'LIST');
    expect(lists.every((r) => r.path === 'secret/metadata/app/')).toBe(true);
    // 10 s less up to 10 % (random 0.5: 5 %): polls every 9.5 s.
    expect(lists.map((r) => r.at - (lists[0]?.at ?? 0))).toEqual([0, 9_500, 19_000]);
    expect(summary(s)).toEqual([]);

    s.double.seal();
    await clock.advance(60_000);
    const errors = s.events.filter((e) => e.type === 'error').length;
    expect(errors).toBeGreaterThanOrEqual(2);
    expect(errors).toBeLessThanOrEqual(4);
    s.double.unseal();
    s.double.kvPut('secret', 'app/later', { value: 'l' });
    await clock.advance(400_000);
    expect(summary(s)).toEqual(['added secret/app/later 1']);
  });

  it('a watch started while Vault is sealed reports it once, starts by itself once unsealed, and reports later changes only', async () => {
    const clock = new ManualClock();
    const s = await setup({
      clock,
      watch: false,
      provider: () => ({ random: () => 0.5, pollInterval: 10_000, watch: { prefixes: ['secret/app/'] } }),
    });
    current = s;
    s.double.kvPut('secret', 'app/before', { value: 'b' });
    s.double.seal();
    // The first attempt backs off on the clock between its own retries: move time to settle it.
    const { events, handle } = await settle(record(s.provider), clock);
    const changes = () => events.filter((e) => e.type !== 'error' && e.type !== 'warning').map((e) => e.type);
    expect(events.map((e) => e.type)).toEqual(['error']);
    s.double.clearLog();
    // Attempts after 1 s, 1-2 s, 2-4 s, 4-8 s ...: several fail the same way, one event.
    await clock.advance(20_000);
    expect(s.double.requests.length).toBeGreaterThanOrEqual(3);
    expect(events.map((e) => e.type)).toEqual(['error']);
    s.double.unseal();
    await clock.advance(60_000);
    // `before` was there when the watch started: no change.
    expect(changes()).toEqual([]);
    s.double.kvPut('secret', 'app/later', { value: 'l' });
    await clock.advance(30_000);
    expect(changes()).toEqual(['added']);
    expect(events.at(-1)?.event).toMatchObject({ key: 'secret/app/later', version: '1' });
    await handle.stop();
  });

  it('watches KV v1 by fingerprint', async () => {
    const clock = new ManualClock();
    const s = await setup({
      clock,
      double: { kv: { kv: { version: 1 } } },
      provider: () => ({ mounts: { kv: { version: 1 } }, pollInterval: 10_000 }),
    });
    current = s;
    s.double.kvPut('kv', 'a', { value: '1' });
    await clock.advance(10_000);
    s.double.kvPut('kv', 'a', { value: '2' });
    await clock.advance(10_000);
    const types = s.events.map((e) => e.type);
    expect(types).toEqual(['added', 'rotated']);
    const rotated = s.events[1]?.event as RotatedEvent;
    expect(rotated.changes[0]?.oldVersion).toMatch(/^fp:/);
    expect(rotated.changes[0]?.newVersion).not.toBe(rotated.changes[0]?.oldVersion);
  });
});
