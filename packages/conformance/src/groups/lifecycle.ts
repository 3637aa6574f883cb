import assert from 'node:assert/strict';
import { createEmitter, isSecretError, type WatchHandle } from '@secret-provider/core';
import {
  assertEnded,
  assertQuiet,
  hasOf,
  mentions,
  rejectsWith,
  type TestContext,
  waitForEvent,
} from '../context.js';
import type { GroupSpec } from '../group.js';

/** Every operation of a closed provider rejects with `CLOSED`, and nothing is written. */
async function assertClosed(ctx: TestContext, key: string): Promise<void> {
  const { provider } = ctx;
  await rejectsWith(provider.get(key), 'CLOSED', 'get() after close()');
  await rejectsWith(provider.metadata(key), 'CLOSED', 'metadata() after close()');
  await rejectsWith(provider.set(key, ctx.value('closed')), 'CLOSED', 'set() after close()');
  await rejectsWith(provider.delete(key), 'CLOSED', 'delete() after close()');
  await rejectsWith(provider.keys(), 'CLOSED', 'keys() after close()');
  const has = hasOf(provider);
  if (has !== undefined) await rejectsWith(has(key), 'CLOSED', 'has() after close()');
  const read = ctx.subject.backend?.read;
  if (read !== undefined)
    assert.equal(await read(key), undefined, 'a write after close() reached the backend');
}

/** `watch()` on a closed provider: a stopped handle whose `ready` rejects with `CLOSED`. */
async function assertClosedWatch(ctx: TestContext): Promise<void> {
  let handle: WatchHandle;
  try {
    handle = ctx.provider.watch(createEmitter());
  } catch (error) {
    assert.fail(
      `watch() on a closed provider threw synchronously (${isSecretError(error) ? error.code : typeof error}) instead of returning a stopped handle`,
    );
  }
  assert.equal(handle.stopped, true, 'the handle of watch() on a closed provider is not stopped');
  await rejectsWith(handle.ready, 'CLOSED', 'watch().ready on a closed provider');
  await handle.stop();
}

/** Closing: idempotent, final, and tidy with watches and calls in flight. */
export const lifecycleGroup: GroupSpec = {
  name: 'lifecycle',
  tests: [
    {
      title: 'closes idempotently and rejects every later call with CLOSED, writing nothing',
      body: async (ctx) => {
        const key = ctx.key(400);
        await ctx.provider.close();
        await ctx.provider.close();
        await assertClosed(ctx, key);
      },
    },
    {
      title: 'watch() on a closed provider returns a stopped handle whose ready rejects with CLOSED',
      body: async (ctx) => {
        await ctx.provider.close();
        await assertClosedWatch(ctx);
      },
    },
    {
      title: 'close() ends running watches: no event after it, and stop() still resolves',
      body: async (ctx) => {
        const handle = ctx.provider.watch(createEmitter());
        await handle.ready;
        const key = ctx.key(401);
        if (ctx.provider.capabilities.watch) {
          // How fast a change is noticed sets how long silence must last after close().
          const since = performance.now();
          await ctx.change.set(key, ctx.value('before-close'));
          await waitForEvent(
            ctx,
            (type, e) => type !== 'warning' && mentions(e, key),
            `an event for ${key}`,
            since,
          );
        }
        await ctx.provider.close();
        const closedAt = performance.now();
        // Only a backend of the harness can still change after the provider closed.
        if (ctx.subject.backend !== undefined) await ctx.subject.backend.set(key, ctx.value('after-close'));
        await assertQuiet(ctx, 'after close()', { since: closedAt });
        await assertEnded(ctx, handle, 'a watch its provider closed');
        await handle.stop();
        assert.equal(handle.stopped, true, 'handle.stopped after stop()');
      },
    },
    {
      title: 'Symbol.asyncDispose closes the provider',
      body: async (ctx) => {
        // Checked at run time: an adapter written in JavaScript may lack it.
        const dispose: unknown = (ctx.raw as Partial<AsyncDisposable>)[Symbol.asyncDispose];
        assert.equal(typeof dispose, 'function', 'the provider is not AsyncDisposable');
        await ctx.provider[Symbol.asyncDispose]();
        await rejectsWith(ctx.provider.get(ctx.key(402)), 'CLOSED', 'get() after asyncDispose');
      },
    },
    {
      title: 'close() while calls are in flight settles each of them',
      body: async (ctx) => {
        const key = ctx.key(403);
        await ctx.seed(key, ctx.value('in-flight-close'));
        const calls: Promise<unknown>[] = [ctx.provider.get(key), ctx.provider.metadata(key)];
        if (ctx.provider.capabilities.list) calls.push(ctx.provider.keys());
        if (ctx.provider.capabilities.write)
          calls.push(ctx.provider.set(ctx.key(404), ctx.value('racing-close')));
        await ctx.provider.close();
        const outcomes = await Promise.allSettled(calls);
        for (const outcome of outcomes) {
          if (outcome.status === 'rejected')
            assert.ok(
              isSecretError(outcome.reason),
              `a call in flight during close() rejected with a non-SecretError`,
            );
        }
        await assertClosed(ctx, ctx.key(405));
      },
    },
  ],
};
