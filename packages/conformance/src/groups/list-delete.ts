import assert from 'node:assert/strict';
import { assertCode, hasOf, rejection, rejectsWith, waitUntil } from '../context.js';
import type { GroupSpec } from '../group.js';

/** Listing names: by the names given, once each, filtered by prefix. */
export const listGroup: GroupSpec = {
  name: 'list',
  tests: [
    {
      title: 'lists seeded keys once each by the names given, and filters by prefix',
      body: async (ctx) => {
        if (!ctx.provider.capabilities.list) {
          await rejectsWith(ctx.provider.keys(), 'UNSUPPORTED', 'keys() without the list capability');
          return;
        }
        const keys = [ctx.key(20), ctx.key(21), ctx.key(22)];
        for (const key of keys) await ctx.seed(key, ctx.value('list'));
        const listed = await waitUntil(
          async () => {
            const names = await ctx.provider.keys();
            return keys.every((key) => names.includes(key)) ? names : undefined;
          },
          ctx.settings.eventTimeout,
          () => 'keys() does not list the seeded keys by the names they were seeded under',
        );
        assert.equal(new Set(listed).size, listed.length, 'keys() lists a name twice');
        const prefix = commonPrefix(keys);
        if (prefix.length > 0) {
          const filtered = await ctx.provider.keys({ prefix });
          assert.ok(
            filtered.every((k) => k.startsWith(prefix)),
            'keys({ prefix }) lists other names',
          );
          for (const key of keys) assert.ok(filtered.includes(key), `keys({ prefix }) misses ${key}`);
        }
        const none = await ctx.provider.keys({ prefix: `${ctx.key(29)}-no-such-prefix` });
        assert.deepEqual(none, [], 'keys() with a prefix nothing has');
      },
    },
    {
      title: 'stops listing a key once it is deleted',
      body: async (ctx) => {
        if (!ctx.provider.capabilities.list) {
          await rejectsWith(ctx.provider.keys(), 'UNSUPPORTED', 'keys() without the list capability');
          return;
        }
        const key = ctx.key(23);
        const remove =
          ctx.subject.backend?.delete ??
          (ctx.provider.capabilities.delete ? (k: string) => ctx.provider.delete(k) : undefined);
        await ctx.seed(key, ctx.value('listed'));
        await waitUntil(
          async () => ((await ctx.provider.keys()).includes(key) ? true : undefined),
          ctx.settings.eventTimeout,
        );
        if (remove === undefined) return;
        await remove(key);
        await waitUntil(
          async () => ((await ctx.provider.keys()).includes(key) ? undefined : true),
          ctx.settings.eventTimeout,
          () => `keys() still lists ${key} after it was deleted`,
        );
      },
    },
  ],
};

/** Removing keys, or refusing to with a typed error. */
export const deleteGroup: GroupSpec = {
  name: 'delete',
  tests: [
    {
      title: 'deletes a key, then reports NOT_FOUND for it and for deleting it again',
      body: async (ctx) => {
        const key = ctx.key(30);
        await ctx.seed(key, ctx.value('delete'));
        if (!ctx.provider.capabilities.delete) {
          await rejectsWith(
            ctx.provider.delete(key),
            ['UNSUPPORTED', 'READ_ONLY'],
            'delete() without the capability',
          );
          assert.equal(
            (await ctx.provider.get(key)).reveal(),
            ctx.values.at(-1),
            'a refused delete removed the key',
          );
          return;
        }
        await ctx.provider.delete(key);
        await rejectsWith(ctx.provider.get(key), 'NOT_FOUND', 'get() after delete()');
        await rejectsWith(ctx.provider.metadata(key), 'NOT_FOUND', 'metadata() after delete()');
        const has = hasOf(ctx.provider);
        if (has !== undefined) assert.equal(await has(key), false, 'has() after delete()');
        if (ctx.provider.capabilities.list)
          assert.ok(!(await ctx.provider.keys()).includes(key), 'keys() after delete()');
        const read = ctx.subject.backend?.read;
        if (read !== undefined)
          assert.equal(await read(key), undefined, 'the backend still holds a deleted key');
        await rejectsWith(ctx.provider.delete(key), 'NOT_FOUND', 'delete() of a deleted key');
      },
    },
    {
      title: 'rejects deleting a key that never existed with NOT_FOUND',
      body: async (ctx) => {
        const key = ctx.key(31);
        const error = await rejection(ctx.provider.delete(key));
        if (!ctx.provider.capabilities.delete)
          assertCode(error, ['UNSUPPORTED', 'READ_ONLY'], 'delete() without the capability');
        else assertCode(error, 'NOT_FOUND', 'delete() of a missing key');
      },
    },
  ],
};

function commonPrefix(keys: string[]): string {
  let prefix = keys[0] ?? '';
  for (const key of keys) while (!key.startsWith(prefix)) prefix = prefix.slice(0, -1);
  return prefix;
}
