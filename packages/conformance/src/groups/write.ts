import assert from 'node:assert/strict';
import { Secret } from '@secret-provider/core';
import { assertCode, rejection, rejectsWith, type TestContext } from '../context.js';
import type { GroupSpec } from '../group.js';

/**
 * A test of a write feature; on a provider without `write`, the same test checks that `set`
 * refuses with `READ_ONLY` and writes nothing.
 */
function writeTest(title: string, body: (ctx: TestContext) => Promise<void>) {
  return {
    title,
    body: async (ctx: TestContext) => {
      if (ctx.provider.capabilities.write) return body(ctx);
      await assertReadOnly(ctx, ctx.key(90));
    },
  };
}

/** `set` refuses with `READ_ONLY` and the key stays missing. */
export async function assertReadOnly(ctx: TestContext, key: string): Promise<void> {
  await rejectsWith(
    ctx.provider.set(key, ctx.value('read-only')),
    'READ_ONLY',
    'set() on a read-only provider',
  );
  await rejectsWith(ctx.provider.get(key), 'NOT_FOUND', 'a refused write is not readable');
  const read = ctx.subject.backend?.read;
  if (read !== undefined) assert.equal(await read(key), undefined, 'a refused write reached the backend');
}

/** Checks one `set` option: honoured when the capability says so, else refused with `UNSUPPORTED`. */
export function optionTest(
  title: string,
  capability: 'tags' | 'contentType',
  honoured: (ctx: TestContext, key: string) => Promise<void>,
  options: () => Record<string, unknown>,
) {
  return writeTest(title, async (ctx) => {
    const key = ctx.key(80);
    if (ctx.provider.capabilities[capability] === true) return honoured(ctx, key);
    const error = await rejection(ctx.provider.set(key, ctx.value(`refused-${capability}`), options()));
    assertCode(error, 'UNSUPPORTED', `set() with ${capability} the provider does not declare`);
    await rejectsWith(ctx.provider.get(key), 'NOT_FOUND', `a write refused for ${capability} was stored`);
  });
}

/** Writes through the provider: round trips, bad values, concurrency, and set options. */
export const writeGroup: GroupSpec = {
  name: 'write',
  tests: [
    writeTest('set then get round-trips and overwrites, and the backend holds the value', async (ctx) => {
      const key = ctx.key(10);
      const read = ctx.subject.backend?.read;
      await ctx.provider.set(key, ctx.value('first'));
      assert.equal((await ctx.provider.get(key)).reveal(), ctx.values.at(-1));
      if (read !== undefined) assert.equal(await read(key), ctx.values.at(-1), 'the backend holds the write');
      await ctx.provider.set(key, new Secret(ctx.value('second')));
      assert.equal((await ctx.provider.get(key)).reveal(), ctx.values.at(-1));
      if (read !== undefined)
        assert.equal(await read(key), ctx.values.at(-1), 'the backend holds the overwrite');
    }),
    writeTest(
      'rejects values that are neither strings nor Secrets with INVALID_VALUE and writes nothing',
      async (ctx) => {
        const key = ctx.key(11);
        for (const bad of [42, { value: 'x' }, null, undefined]) {
          await rejectsWith(
            ctx.provider.set(key, bad as unknown as string),
            'INVALID_VALUE',
            `set() of ${bad === null ? 'null' : typeof bad}`,
          );
        }
        await rejectsWith(ctx.provider.get(key), 'NOT_FOUND', 'a refused value was stored');
      },
    ),
    {
      title: 'keeps every one of many concurrent writes of distinct keys',
      body: async (ctx) => {
        if (!ctx.provider.capabilities.write) return assertReadOnly(ctx, ctx.key(90));
        const { concurrency } = ctx.settings;
        const keys = Array.from({ length: concurrency }, (_, i) => ctx.key(100 + i));
        const values = keys.map((_, i) => ctx.value(`c${i}`));
        await Promise.all(keys.map((key, i) => ctx.provider.set(key, values[i] as string)));
        const read = await Promise.all(keys.map(async (key) => (await ctx.provider.get(key)).reveal()));
        assert.deepEqual(read, values, `some of ${concurrency} concurrent writes were lost`);
        if (ctx.provider.capabilities.list) {
          const listed = new Set(await ctx.provider.keys());
          for (const key of keys) assert.ok(listed.has(key), `keys() lists ${key}`);
        }
      },
    },
    writeTest('answers concurrent reads of one key alike', async (ctx) => {
      const key = ctx.key(12);
      await ctx.provider.set(key, ctx.value('shared'));
      const read = await Promise.all(Array.from({ length: 50 }, () => ctx.provider.get(key)));
      for (const secret of read) assert.equal(secret.reveal(), ctx.values.at(-1));
    }),
    optionTest(
      'stores tags and reports them in metadata, or refuses them with UNSUPPORTED',
      'tags',
      async (ctx, key) => {
        await ctx.provider.set(key, ctx.value('tagged'), { tags: { team: 'payments', tier: 'gold' } });
        const { tags } = await ctx.provider.metadata(key);
        assert.equal(tags?.team, 'payments', 'metadata().tags holds the tags written');
        assert.equal(tags?.tier, 'gold', 'metadata().tags holds the tags written');
      },
      () => ({ tags: { team: 'payments' } }),
    ),
    optionTest(
      'stores a content type and reports it in metadata, or refuses it with UNSUPPORTED',
      'contentType',
      async (ctx, key) => {
        await ctx.provider.set(key, ctx.value('typed'), { contentType: 'application/x-pem-file' });
        const { contentType } = await ctx.provider.metadata(key);
        assert.equal(contentType, 'application/x-pem-file', 'metadata().contentType holds the type written');
      },
      () => ({ contentType: 'application/x-pem-file' }),
    ),
  ],
};
