import { ProviderUnavailableError } from '@secret-provider/core';
import { describe, expect, it } from 'vitest';
import { KeyIndex } from '../src/key-index.js';

// The index of one provider's keys: trusted only between a complete listing and the end of the
// watch that keeps it current, and nothing seen during a listing is lost.

/** A listing that resolves when the test says, with what the test says. */
function controlledListing() {
  const calls: Array<{ resolve: (keys: string[]) => void; reject: (error: unknown) => void }> = [];
  const list = () =>
    new Promise<string[]>((resolve, reject) => {
      calls.push({ resolve, reject });
    });
  return { list, calls };
}

const at = (detectedAt = new Date()) => ({ provider: 'p', detectedAt });

describe('KeyIndex', () => {
  it('says nothing before its first listing, then answers from it', async () => {
    const index = new KeyIndex(async () => ['A', 'B']);
    expect(index.has('A')).toBeUndefined();
    expect(index.trusted).toBe(false);
    await index.rebuild();
    expect(index.trusted).toBe(true);
    expect(index.has('A')).toBe(true);
    expect(index.has('C')).toBe(false);
  });

  it('follows the provider events once trusted', async () => {
    const index = new KeyIndex(async () => ['A']);
    await index.rebuild();
    index.observe('added', { ...at(), key: 'B' });
    index.observe('removed', { ...at(), key: 'A' });
    index.observe('rotated', { ...at(), keys: ['C'], changes: [{ key: 'C' }] });
    expect([index.has('A'), index.has('B'), index.has('C')]).toEqual([false, true, true]);
  });

  it('is untrusted while a listing is read, and applies the changes seen meanwhile on top of it', async () => {
    const { list, calls } = controlledListing();
    const index = new KeyIndex(list);
    const done = index.rebuild();
    // The listing was taken before these changes: they must not be lost.
    index.observe('added', { ...at(), key: 'NEW' });
    index.observe('removed', { ...at(), key: 'OLD' });
    expect(index.has('NEW')).toBeUndefined();
    calls[0]?.resolve(['OLD', 'KEPT']);
    await done;
    expect([index.has('NEW'), index.has('OLD'), index.has('KEPT')]).toEqual([true, false, true]);
  });

  it('lists once more when asked to rebuild during a listing (changes may have been missed)', async () => {
    const { list, calls } = controlledListing();
    const index = new KeyIndex(list);
    const first = index.rebuild();
    const second = index.rebuild();
    expect(second).toBe(first);
    calls[0]?.resolve(['STALE']);
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toHaveLength(2);
    expect(index.has('STALE')).toBeUndefined();
    calls[1]?.resolve(['FRESH']);
    await first;
    expect([index.has('STALE'), index.has('FRESH')]).toEqual([false, true]);
  });

  it('stays untrusted after a failed listing, until the next rebuild succeeds', async () => {
    let fail = true;
    const index = new KeyIndex(async () => {
      if (fail) throw new ProviderUnavailableError({ provider: 'p' });
      return ['A'];
    });
    await expect(index.rebuild()).resolves.toBeUndefined();
    expect(index.has('A')).toBeUndefined();
    index.observe('added', { ...at(), key: 'A' });
    expect(index.has('A')).toBeUndefined();
    fail = false;
    await index.rebuild();
    expect(index.has('A')).toBe(true);
  });

  it('forgets everything on reset, and a listing in flight then is dropped', async () => {
    const { list, calls } = controlledListing();
    const index = new KeyIndex(list);
    const done = index.rebuild();
    index.reset();
    calls[0]?.resolve(['A']);
    await done;
    expect(index.has('A')).toBeUndefined();
    // A rebuild after the reset lists afresh.
    const again = index.rebuild();
    expect(calls).toHaveLength(2);
    calls[1]?.resolve(['B']);
    await again;
    expect([index.has('A'), index.has('B')]).toEqual([false, true]);
    index.reset();
    expect(index.has('B')).toBeUndefined();
  });

  it('is never trusted while disabled (its watch never started), even by a listing in flight', async () => {
    const { list, calls } = controlledListing();
    const index = new KeyIndex(list);
    const done = index.rebuild();
    index.disable();
    calls[0]?.resolve(['A']);
    await done;
    expect(index.has('A')).toBeUndefined();
    await index.rebuild();
    expect(calls).toHaveLength(1);
    expect(index.trusted).toBe(false);
    index.reset();
    const after = index.rebuild();
    calls[1]?.resolve(['A']);
    await after;
    expect(index.has('A')).toBe(true);
  });
});
