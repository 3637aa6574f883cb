import assert from 'node:assert/strict';
import { createEmitter, type SecretEvents } from '@secret-provider/core';
import {
  assertEnded,
  assertQuiet,
  describeEvents,
  mentions,
  type TestContext,
  waitForEvent,
} from '../context.js';
import type { GroupSpec } from '../group.js';

/**
 * A watch test; on a provider without `watch`, the same test checks that `watch` still hands out
 * a handle that is ready, stops cleanly and reports no change.
 */
function watchTest(title: string, body: (ctx: TestContext) => Promise<void>) {
  return {
    title,
    body: async (ctx: TestContext) => {
      if (ctx.provider.capabilities.watch) return body(ctx);
      const handle = ctx.provider.watch(createEmitter());
      await handle.ready;
      const since = performance.now();
      await ctx.change.set(ctx.key(49), ctx.value('unwatched'));
      await assertQuiet(ctx, 'a provider without the watch capability', { since });
      await handle.stop();
      assert.equal(handle.stopped, true, 'handle.stopped after stop()');
    },
  };
}

const changeOf =
  (key: string) =>
  (type: keyof SecretEvents, event: unknown): boolean =>
    (type === 'added' || type === 'rotated') && mentions(event, key);

/** Change events: out-of-band changes, silence when nothing changes, stopping. */
export const watchGroup: GroupSpec = {
  name: 'watch',
  tests: [
    watchTest('reports out-of-band additions, rotations and removals', async (ctx) => {
      const handle = ctx.provider.watch(createEmitter());
      await handle.ready;
      const key = ctx.key(40);
      const addedSince = performance.now();
      await ctx.change.set(key, ctx.value('watch-added'));
      await waitForEvent(ctx, changeOf(key), `an "added" event for ${key}`, addedSince);
      const since = performance.now();
      await ctx.change.set(key, ctx.value('watch-rotated'));
      await waitForEvent(
        ctx,
        (type, e) => type === 'rotated' && mentions(e, key),
        `a "rotated" event for ${key}`,
        since,
      );
      assert.equal((await ctx.provider.get(key)).reveal(), ctx.values.at(-1), 'the rotated value is served');
      if (ctx.change.delete !== undefined) {
        const removedSince = performance.now();
        await ctx.change.delete(key);
        await waitForEvent(
          ctx,
          (type, e) => type === 'removed' && mentions(e, key),
          `a "removed" event for ${key}`,
          removedSince,
        );
      }
      for (const { type, event } of ctx.events) {
        const e = event as { provider?: unknown; detectedAt?: unknown; keys?: unknown; changes?: unknown };
        assert.equal(typeof e.provider, 'string', `a "${type}" event without its provider's name`);
        assert.ok(e.detectedAt instanceof Date, `a "${type}" event without detectedAt`);
        if (type === 'rotated') {
          assert.ok(Array.isArray(e.keys), 'a "rotated" event without keys');
          assert.ok(Array.isArray(e.changes), 'a "rotated" event without changes');
        }
      }
      await handle.stop();
    }),
    watchTest('stays quiet while nothing changes, and reports each change once', async (ctx) => {
      const [a, b] = [ctx.key(42), ctx.key(43)];
      await ctx.seed(a, ctx.value('quiet-a'));
      await ctx.seed(b, ctx.value('quiet-b'));
      const handle = ctx.provider.watch(createEmitter());
      await handle.ready;
      await assertQuiet(ctx, 'after the watch was armed, with nothing changing');
      // A change measures how fast this provider notices one, which sets the next quiet window.
      const since = performance.now();
      await ctx.change.set(a, ctx.value('quiet-a2'));
      await waitForEvent(ctx, changeOf(a), `a "rotated" event for ${a}`, since);
      await assertQuiet(ctx, 'after one change was reported, with nothing else changing');
      const about = ctx.events.filter((e) => e.type !== 'warning');
      assert.ok(
        about.every((e) => mentions(e.event, a) && !mentions(e.event, b)),
        `events about keys that did not change: ${describeEvents(about)}`,
      );
      assert.equal(about.length, 1, `one change, several events: ${describeEvents(about)}`);
      await handle.stop();
    }),
    watchTest('stops reporting after stop(), abort or asyncDispose; stop is idempotent', async (ctx) => {
      const controller = new AbortController();
      const byAbort = ctx.provider.watch(createEmitter(), { signal: controller.signal });
      const byStop = ctx.provider.watch(createEmitter());
      const byDispose = ctx.provider.watch(createEmitter());
      await Promise.all([byAbort.ready, byStop.ready, byDispose.ready]);
      // One change first: how fast it is noticed sets how long silence must last afterwards.
      const key = ctx.key(41);
      const since = performance.now();
      await ctx.change.set(key, ctx.value('before-stop'));
      await waitForEvent(ctx, changeOf(key), `an event for ${key}`, since);
      controller.abort();
      assert.equal(byAbort.stopped, true, 'an aborted watch says it is stopped');
      await byStop.stop();
      await byStop.stop();
      assert.equal(byStop.stopped, true, 'handle.stopped after stop()');
      await byDispose[Symbol.asyncDispose]();
      assert.equal(byDispose.stopped, true, 'handle.stopped after asyncDispose');
      await byAbort.stop();
      await assertEnded(ctx, byAbort, 'an aborted watch');
      await assertEnded(ctx, byStop, 'a stopped watch');
      await assertEnded(ctx, byDispose, 'a disposed watch');
      const stoppedAt = performance.now();
      await ctx.change.set(key, ctx.value('after-stop'));
      await assertQuiet(ctx, 'after every watch was stopped', { since: stoppedAt });
    }),
    watchTest('serves several watchers at once; stopping one leaves the others reporting', async (ctx) => {
      const first = createEmitter();
      const second = createEmitter();
      const seenBySecond: string[] = [];
      second.on('*', (type) => seenBySecond.push(String(type)));
      const one = ctx.provider.watch(first);
      const two = ctx.provider.watch(second);
      await Promise.all([one.ready, two.ready]);
      const key = ctx.key(44);
      await ctx.change.set(key, ctx.value('two-watchers'));
      await waitForEvent(ctx, changeOf(key), `an event for ${key}`);
      await waitForEvent(
        ctx,
        (type, e) => changeOf(key)(type, e) && countOf(ctx, key) >= 2,
        `the second watcher's event for ${key}`,
      );
      await one.stop();
      const since = performance.now();
      await ctx.change.set(key, ctx.value('one-watcher'));
      await waitForEvent(
        ctx,
        (type, e) => type === 'rotated' && mentions(e, key),
        `a "rotated" event for ${key} after one watcher stopped`,
        since,
      );
      assert.ok(seenBySecond.includes('rotated'), 'the watcher left running missed the rotation');
      await two.stop();
    }),
  ],
};

function countOf(ctx: TestContext, key: string): number {
  return ctx.events.filter((e) => changeOf(key)(e.type, e.event)).length;
}
