import type { SecretEvents } from '@secret-provider/core';
import { ProviderUnavailableError } from '@secret-provider/core';
import { describe, expect, it } from 'vitest';
import { EffectiveEvents, type LayerState } from '../src/effective-events.js';

// The engine alone, over layers whose state a test sets by hand: each row of the translation
// table, the replay of a burst from queued prior states, and failures.

type Emitted = { type: keyof SecretEvents; event: SecretEvents[keyof SecretEvents] };

/** An engine over `layers` layers; `state[position][key]` is a layer's version (absent: missing). */
function engine(layers: number, options: { unknown?: Set<number>; throwing?: boolean } = {}) {
  const state: Array<Record<string, string>> = Array.from({ length: layers }, () => ({}));
  const emitted: Emitted[] = [];
  const failures: Array<{ position: number; source: string; error: unknown }> = [];
  const asked: Array<[number, string]> = [];
  let active = true;
  const events = new EffectiveEvents({
    chain: 'chain',
    layers,
    active: () => active,
    stateOf: async (position, key): Promise<LayerState> => {
      asked.push([position, key]);
      if (options.throwing) throw new ProviderUnavailableError({ provider: `p${position}` });
      if (options.unknown?.has(position)) return 'unknown';
      const version = state[position]?.[key];
      return version === undefined ? null : { version };
    },
    emit: (type, event) => emitted.push({ type, event }),
    onFailure: (position, source, error) => failures.push({ position, source, error }),
  });
  const detectedAt = new Date(0);
  const change = {
    /** Layer `position` adds `key` at `version` (its state changes, and the change is queued). */
    added(position: number, key: string, version: string) {
      (state[position] as Record<string, string>)[key] = version;
      events.push(position, `p${position}`, 'added', { provider: `p${position}`, key, version, detectedAt });
    },
    removed(position: number, key: string) {
      const version = state[position]?.[key];
      delete (state[position] as Record<string, string>)[key];
      events.push(position, `p${position}`, 'removed', {
        provider: `p${position}`,
        key,
        version,
        detectedAt,
      });
    },
    rotated(position: number, versions: Record<string, string>) {
      const changes = Object.entries(versions).map(([key, newVersion]) => {
        const oldVersion = state[position]?.[key];
        (state[position] as Record<string, string>)[key] = newVersion;
        return { key, oldVersion, newVersion };
      });
      events.push(position, `p${position}`, 'rotated', {
        provider: `p${position}`,
        keys: changes.map((c) => c.key),
        changes,
        detectedAt,
      });
    },
  };
  return {
    state,
    emitted,
    failures,
    asked,
    change,
    events,
    stopListening: () => {
      active = false;
    },
  };
}

/** The version changes of a `rotated` event that must be there. */
const changesOf = (emitted: Emitted | undefined) => {
  if (emitted?.type !== 'rotated') throw new Error(`expected a rotated event, got ${emitted?.type}`);
  return (emitted.event as SecretEvents['rotated']).changes;
};

const brief = (emitted: Emitted[]) =>
  emitted.map(({ type, event }) => {
    const e = event as { source?: string; key?: string; keys?: readonly string[] };
    return `${type}:${e.source}:${e.key ?? e.keys?.join(',')}`;
  });

describe('EffectiveEvents', () => {
  it('passes an addition with no other layer holding the key as added, tagged with chain and source', async () => {
    const { change, emitted, events } = engine(2);
    change.added(1, 'K', 'v1');
    await events.settled();
    expect(emitted).toEqual([
      {
        type: 'added',
        event: { provider: 'chain', source: 'p1', key: 'K', version: 'v1', detectedAt: new Date(0) },
      },
    ]);
  });

  it('drops every change shadowed by a layer before the one that changed', async () => {
    const { change, state, emitted, events } = engine(2);
    state[0] = { K: 'top' };
    change.added(1, 'K', 'b1');
    change.rotated(1, { K: 'b2' });
    change.removed(1, 'K');
    await events.settled();
    expect(emitted).toEqual([]);
  });

  it('turns an addition over a lower value into a rotation from the lower version to the new one', async () => {
    const { change, state, emitted, events } = engine(3);
    state[2] = { K: 'low' };
    change.added(0, 'K', 'top');
    await events.settled();
    expect(brief(emitted)).toEqual(['rotated:p0:K']);
    expect(changesOf(emitted[0])).toEqual([{ key: 'K', oldVersion: 'low', newVersion: 'top' }]);
  });

  it('turns a removal that uncovers a lower value into a rotation to the lower version', async () => {
    const { change, state, emitted, events } = engine(2);
    state[0] = { K: 'top' };
    state[1] = { K: 'low' };
    change.removed(0, 'K');
    await events.settled();
    expect(changesOf(emitted[0])).toEqual([{ key: 'K', oldVersion: 'top', newVersion: 'low' }]);
  });

  it('passes a removal with nothing below as removed', async () => {
    const { change, state, emitted, events } = engine(2);
    state[0] = { K: 'top' };
    change.removed(0, 'K');
    await events.settled();
    expect(brief(emitted)).toEqual(['removed:p0:K']);
  });

  it('keeps the unshadowed keys of a multi-key rotation, and gives keys without a change entry one', async () => {
    const { events, state, emitted } = engine(2);
    state[0] = { A: 'top' };
    events.push(1, 'p1', 'rotated', {
      provider: 'p1',
      keys: ['A', 'B', 'C'],
      changes: [{ key: 'B', oldVersion: '1', newVersion: '2' }],
      detectedAt: new Date(0),
    });
    await events.settled();
    expect(emitted).toHaveLength(1);
    expect(emitted[0]?.event).toMatchObject({
      keys: ['B', 'C'],
      changes: [{ key: 'B', oldVersion: '1', newVersion: '2' }, { key: 'C' }],
    });
  });

  it('replays a burst step by step from the prior states of queued changes, not the end state', async () => {
    const { change, emitted, events, asked } = engine(2);
    // All queued before any is translated: by then both layers are empty again.
    change.added(1, 'K', 'b1');
    change.added(0, 'K', 't1');
    change.removed(0, 'K');
    change.removed(1, 'K');
    await events.settled();
    expect(brief(emitted)).toEqual(['added:p1:K', 'rotated:p0:K', 'rotated:p0:K', 'removed:p1:K']);
    expect(changesOf(emitted[1])).toEqual([{ key: 'K', oldVersion: 'b1', newVersion: 't1' }]);
    expect(changesOf(emitted[2])).toEqual([{ key: 'K', oldVersion: 't1', newVersion: 'b1' }]);
    // Every judgement came from a queued later change, except the last one's view of layer 0.
    expect(asked).toEqual([[0, 'K']]);
  });

  it('passes over a layer that cannot say, as if it lacked the key', async () => {
    const { change, state, emitted, events } = engine(2, { unknown: new Set([0]) });
    state[0] = { K: 'top' };
    change.added(1, 'K', 'b1');
    await events.settled();
    expect(brief(emitted)).toEqual(['added:p1:K']);
  });

  it('reports a failed translation and goes on with the next change', async () => {
    const { change, emitted, failures, events } = engine(2, { throwing: true });
    change.added(1, 'K', 'b1');
    change.added(1, 'L', 'b1');
    await events.settled();
    expect(emitted).toEqual([]);
    expect(failures.map((f) => [f.position, f.source])).toEqual([
      [1, 'p1'],
      [1, 'p1'],
    ]);
  });

  it('drops changes untranslated while nobody listens', async () => {
    const { change, emitted, asked, events, stopListening } = engine(2);
    stopListening();
    change.added(1, 'K', 'b1');
    await events.settled();
    expect(emitted).toEqual([]);
    expect(asked).toEqual([]);
  });
});
