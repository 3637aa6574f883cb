import { inspect } from 'node:util';
import { createEmitter } from '@secret-provider/core';
import { activeResources, mentions, type TestContext, waitForEvent, waitUntil } from '../context.js';
import type { GroupSpec } from '../group.js';

/** Uses every operation the provider has, so that whatever it opens on the way is open. */
async function exercise(ctx: TestContext): Promise<void> {
  const key = ctx.key(300);
  await ctx.seed(key, ctx.value('exercise'));
  await ctx.provider.get(key);
  await ctx.provider.metadata(key);
  if (ctx.provider.capabilities.list) await ctx.provider.keys();
  if (ctx.provider.capabilities.write) await ctx.provider.set(ctx.key(301), ctx.value('exercise-write'));
}

/** Resource types of connections (`process.getActiveResourcesInfo()` names). */
const CONNECTION = /Socket|Pipe|TLS/;

/** Types whose count went up between `before` and any of `samples`, with how many more. */
function grown(
  before: ReadonlyMap<string, number>,
  ...samples: ReadonlyMap<string, number>[]
): Map<string, number> {
  const more = new Map<string, number>();
  for (const sample of samples)
    for (const [type, count] of sample) {
      const extra = count - (before.get(type) ?? 0);
      if (extra > (more.get(type) ?? 0)) more.set(type, extra);
    }
  return more;
}

/** Waits until no type that grew is above its count in `before`; fails naming what stayed. */
async function assertReleased(
  ctx: TestContext,
  before: ReadonlyMap<string, number>,
  during: ReadonlyMap<string, number>,
  what: string,
  counted: (type: string) => boolean = () => true,
): Promise<void> {
  let left = new Map<string, number>();
  const types = new Set([...grown(before, during).keys()].filter(counted));
  await waitUntil(
    () => {
      const now = activeResources();
      for (const type of grown(before, now).keys()) if (counted(type)) types.add(type);
      left = new Map(
        [...types]
          .map((t) => [t, (now.get(t) ?? 0) - (before.get(t) ?? 0)] as const)
          .filter(([, n]) => n > 0),
      );
      return left.size === 0 ? true : undefined;
    },
    ctx.settings.settle,
    () =>
      `${what}: ${[...left].map(([type, n]) => `${n} ${type}`).join(', ')} still active ${ctx.settings.settle} ms later (process.getActiveResourcesInfo())`,
  );
}

/** Nothing stays behind: no value in what the provider shows, no timer or socket after close. */
export const leaksGroup: GroupSpec = {
  name: 'leaks',
  tests: [
    {
      title: 'is not revealed by JSON.stringify or util.inspect of the provider',
      body: async (ctx) => {
        await exercise(ctx);
        if (ctx.provider.capabilities.watch) {
          const handle = ctx.provider.watch(createEmitter());
          await handle.ready;
          const key = ctx.key(302);
          await ctx.change.set(key, ctx.value('introspect'));
          await waitForEvent(ctx, (type, e) => type !== 'warning' && mentions(e, key), `an event for ${key}`);
        }
        const forms: Array<[string, () => string | undefined]> = [
          ['String(provider)', () => String(ctx.raw)],
          ['JSON.stringify(provider)', () => JSON.stringify(ctx.raw)],
          [
            'util.inspect(provider)',
            () => inspect(ctx.raw, { depth: Number.POSITIVE_INFINITY, showHidden: true }),
          ],
          ['util.inspect(provider.capabilities)', () => inspect(ctx.raw.capabilities)],
        ];
        // Scanned with everything else the test received when it ends.
        for (const [where, print] of forms) ctx.receive(where, print() ?? '');
      },
    },
    {
      title: 'close() releases every timer, socket and handle it opened',
      body: async (ctx) => {
        await exercise(ctx);
        if (ctx.provider.capabilities.watch) {
          // One watch left running when close() is called, one stopped before.
          const running = ctx.provider.watch(createEmitter());
          const stopped = ctx.provider.watch(createEmitter());
          await Promise.all([running.ready, stopped.ready]);
          const key = ctx.key(303);
          await ctx.change.set(key, ctx.value('resources'));
          await waitForEvent(ctx, (type, e) => type !== 'warning' && mentions(e, key), `an event for ${key}`);
          await stopped.stop();
        }
        const during = activeResources();
        await ctx.finish();
        await assertReleased(ctx, ctx.resourcesBefore, during, 'after close() and the harness cleanup');
      },
    },
    {
      title: 'stopping its last watch releases what the watch held',
      body: async (ctx) => {
        await exercise(ctx);
        const before = activeResources();
        const one = ctx.provider.watch(createEmitter());
        const two = ctx.provider.watch(createEmitter());
        await Promise.all([one.ready, two.ready]);
        const key = ctx.key(304);
        await ctx.change.set(key, ctx.value('watch-resources'));
        if (ctx.provider.capabilities.watch)
          await waitForEvent(ctx, (type, e) => type !== 'warning' && mentions(e, key), `an event for ${key}`);
        const during = activeResources();
        await one.stop();
        await two.stop();
        // Connections are left out: an open provider may keep idle ones pooled for its next call.
        // close() must release them, which the test above checks.
        await assertReleased(
          ctx,
          before,
          during,
          'after every watch was stopped',
          (type) => !CONNECTION.test(type),
        );
      },
    },
  ],
};
