import assert from 'node:assert/strict';
import { Secret } from '@secret-provider/core';
import { assertCode, hasOf, rejection, rejectsWith, type TestContext, waitUntil } from '../context.js';
import type { GroupSpec } from '../group.js';

/** Every capability flag of the contract. */
export const CAPABILITY_FLAGS = [
  'write',
  'delete',
  'list',
  'watch',
  'metadata',
  'versions',
  'has',
  'checkAndSet',
  'expiry',
  'tags',
  'contentType',
] as const;

/** Values that cannot name a secret anywhere. */
export const BAD_KEYS: readonly unknown[] = ['', 'a\u0000b', 'k'.repeat(100_000), 42, undefined, null];

/** Reads, metadata, presence, key validation and aborted signals. */
export const readGroup: GroupSpec = {
  name: 'read',
  tests: [
    {
      title: 'declares a name and every capability as a boolean, and can be seeded',
      body: async ({ provider, subject }) => {
        assert.ok(
          subject.backend !== undefined || provider.capabilities.write,
          'a read-only provider needs a `backend` in the factory so the suite can put secrets in front of it',
        );
        assert.equal(typeof provider.name, 'string');
        assert.ok(provider.name.length > 0, 'name is empty');
        const capabilities = provider.capabilities as unknown as Record<string, unknown>;
        for (const flag of CAPABILITY_FLAGS)
          assert.equal(typeof capabilities[flag], 'boolean', `capabilities.${flag} is not a boolean`);
        if (capabilities.has === true)
          assert.equal(typeof hasOf(provider), 'function', 'capabilities.has is true but has() is missing');
      },
    },
    {
      title: 'reads a seeded value as a redacting Secret',
      body: async (ctx) => {
        const key = ctx.key(1);
        const value = ctx.value('read');
        await ctx.seed(key, value);
        const secret = await ctx.provider.get(key);
        assert.ok(Secret.isSecret(secret), 'get resolves a Secret');
        assert.equal(secret.reveal(), value);
        // What a Secret prints is checked by the leak scan of everything the test received.
      },
    },
    {
      title: 'getMany (when the provider has it) agrees with get for existing, missing and invalid keys',
      body: async (ctx) => {
        const getMany = (ctx.provider as { getMany?: (keys: readonly string[]) => Promise<unknown> }).getMany;
        if (typeof getMany !== 'function') return;
        const read = (keys: readonly string[]): Promise<Map<string, unknown>> =>
          getMany.call(ctx.provider, keys) as Promise<Map<string, unknown>>;
        const present = [ctx.key(30), ctx.key(31)];
        const missing = ctx.key(32);
        for (const [i, key] of present.entries()) await ctx.seed(key, ctx.value(`many-${i}`));
        const found = await read([present[1] as string, missing, present[0] as string, present[1] as string]);
        assert.ok(found instanceof Map, 'getMany resolves a Map');
        assert.deepEqual(
          [...found.keys()],
          [present[1], present[0]],
          'getMany holds the existing keys once each, in the order asked, and not the missing one',
        );
        for (const key of present) {
          const secret = found.get(key);
          assert.ok(Secret.isSecret(secret), `getMany gives a Secret for "${key}"`);
          assert.equal(secret.reveal(), (await ctx.provider.get(key)).reveal(), 'getMany agrees with get');
        }
        await rejectsWith(ctx.provider.get(missing), 'NOT_FOUND', 'get() of the key getMany left out');
        assert.equal((await read([])).size, 0, 'getMany of no keys is an empty Map');
        for (const bad of BAD_KEYS) {
          await rejectsWith(
            read([present[0] as string, bad as string]),
            'INVALID_KEY',
            'getMany with an invalid key',
          );
        }
      },
    },
    {
      title: 'rejects a missing key with NOT_FOUND, naming key and provider',
      body: async (ctx) => {
        const key = ctx.key(2);
        const error = await rejection(ctx.provider.get(key), 'get() of a missing key');
        assertCode(error, 'NOT_FOUND', 'get() of a missing key');
        assert.equal((error as { key?: string }).key, key, 'the error names the key');
        assert.equal(
          (error as { provider?: string }).provider,
          ctx.provider.name,
          'the error names the provider',
        );
        assert.equal((error as { retryable?: boolean }).retryable, false, 'a missing key is not retryable');
        await rejectsWith(ctx.provider.metadata(key), 'NOT_FOUND', 'metadata() of a missing key');
      },
    },
    {
      title: 'has() answers true for a present key and false for a missing one',
      body: async (ctx) => {
        const has = hasOf(ctx.provider);
        if (has === undefined) {
          assert.notEqual(
            ctx.provider.capabilities.has,
            true,
            'capabilities.has is true but has() is missing',
          );
          return;
        }
        const key = ctx.key(3);
        assert.equal(await has(key), false, 'has() of a missing key');
        await ctx.seed(key, ctx.value('has'));
        assert.equal(
          await waitUntil(async () => ((await has(key)) ? true : undefined), ctx.settings.eventTimeout),
          true,
        );
      },
    },
    {
      title: 'reads metadata without the value, with a version that stays put while the value does',
      body: async (ctx) => {
        const key = ctx.key(4);
        await ctx.seed(key, ctx.value('meta'));
        const first = await ctx.provider.metadata(key);
        assert.equal(first.key, key, 'metadata names its key');
        const second = await ctx.provider.metadata(key);
        assert.equal(second.version, first.version, 'the version changed although the value did not');
        await ctx.provider.get(key);
        const third = await ctx.provider.metadata(key);
        assert.equal(third.version, first.version, 'reading the value changed its version');
      },
    },
    {
      title: 'changes the version in metadata when the value changes',
      body: async (ctx) => versionChanges(ctx),
    },
    {
      title: 'rejects bad keys (empty, NUL, very long, not a string) with INVALID_KEY and writes nothing',
      body: async (ctx) => {
        const before = ctx.provider.capabilities.list ? await ctx.provider.keys() : [];
        const has = hasOf(ctx.provider);
        for (const bad of BAD_KEYS) {
          const key = bad as string;
          const label = typeof bad === 'string' ? `a key of ${bad.length} characters` : String(bad);
          await rejectsWith(ctx.provider.get(key), 'INVALID_KEY', `get(${label})`);
          await rejectsWith(ctx.provider.metadata(key), 'INVALID_KEY', `metadata(${label})`);
          await rejectsWith(ctx.provider.set(key, ctx.value('badkey')), 'INVALID_KEY', `set(${label})`);
          await rejectsWith(ctx.provider.delete(key), 'INVALID_KEY', `delete(${label})`);
          if (has !== undefined) await rejectsWith(has(key), 'INVALID_KEY', `has(${label})`);
        }
        if (ctx.provider.capabilities.list)
          assert.deepEqual((await ctx.provider.keys()).sort(), before.sort(), 'a bad key was written');
      },
    },
    {
      title: "rejects an operation whose signal was already aborted with the signal's reason",
      body: async (ctx) => {
        const key = ctx.key(6);
        await ctx.seed(key, ctx.value('aborted'));
        const has = hasOf(ctx.provider);
        for (const reason of [new Error('caller gave up'), 'a reason that is not an Error']) {
          const controller = new AbortController();
          controller.abort(reason);
          const signal = controller.signal;
          const calls: Array<[string, () => Promise<unknown>]> = [
            ['get', () => ctx.provider.get(key, { signal })],
            ['metadata', () => ctx.provider.metadata(key, { signal })],
            ['keys', () => ctx.provider.keys({ signal })],
            ['set', () => ctx.provider.set(key, ctx.value('aborted-write'), { signal })],
            ['delete', () => ctx.provider.delete(key, { signal })],
          ];
          if (has !== undefined) calls.push(['has', () => has(key, { signal })]);
          for (const [operation, call] of calls) {
            const error = await rejection(call(), `${operation}() with an aborted signal`);
            assert.equal(
              error,
              reason,
              `${operation}() with an aborted signal rejects with the signal's reason`,
            );
          }
        }
        assert.equal(
          (await ctx.provider.get(key)).reveal(),
          ctx.values[0],
          'an aborted write changed the value',
        );
      },
    },
    {
      title: "rejects a read aborted while in flight with the signal's reason",
      body: async (ctx) => {
        const key = ctx.key(7);
        await ctx.seed(key, ctx.value('in-flight'));
        const calls: Array<[string, (signal: AbortSignal) => Promise<unknown>]> = [
          ['get', (signal) => ctx.provider.get(key, { signal })],
          ['metadata', (signal) => ctx.provider.metadata(key, { signal })],
        ];
        if (ctx.provider.capabilities.list) calls.push(['keys', (signal) => ctx.provider.keys({ signal })]);
        for (const [operation, call] of calls) {
          const controller = new AbortController();
          const reason = new Error(`stopped waiting for ${operation}`);
          const pending = call(controller.signal);
          // Aborted before the operation can have settled: it must not be waited for.
          controller.abort(reason);
          const error = await rejection(pending, `${operation}() aborted in flight`);
          assert.equal(error, reason, `${operation}() aborted in flight rejects with the signal's reason`);
        }
      },
    },
  ],
};

/** Seeds two values and checks that the second is served, with a new version when versioned. */
async function versionChanges(ctx: TestContext): Promise<void> {
  const key = ctx.key(5);
  await ctx.seed(key, ctx.value('v1'));
  const before = await ctx.provider.metadata(key);
  const next = ctx.value('v2');
  await ctx.seed(key, next);
  const { eventTimeout } = ctx.settings;
  if (before.version === undefined) {
    // A backend without versions must still serve the new value.
    await waitUntil(
      async () => ((await ctx.provider.get(key)).reveal() === next ? true : undefined),
      eventTimeout,
    );
    return;
  }
  const after = await waitUntil(
    async () => {
      const m = await ctx.provider.metadata(key);
      return m.version !== before.version ? m : undefined;
    },
    eventTimeout,
    () => `the version stayed ${before.version} after the value changed`,
  );
  assert.notEqual(after.version, before.version);
  assert.equal((await ctx.provider.get(key)).reveal(), next);
}
