import assert from 'node:assert/strict';
import { type ProviderCapabilities, Secret } from '@secret-provider/core';
import { assertCode, rejection, rejectsWith, type TestContext } from '../context.js';
import type { GroupSpec } from '../group.js';
import { assertReadOnly } from './write.js';

const flag = (ctx: TestContext, name: keyof ProviderCapabilities): boolean =>
  ctx.provider.capabilities[name] === true;

/** Writes `value` the way the group can: through the provider when it writes, else the backend. */
async function put(ctx: TestContext, key: string, value: string): Promise<void> {
  if (ctx.provider.capabilities.write) await ctx.provider.set(key, value);
  else await ctx.seed(key, value);
}

/** The current version of `key`, which a versioned provider must report. */
async function versionOf(ctx: TestContext, key: string, capability: string): Promise<string> {
  const { version } = await ctx.provider.metadata(key);
  assert.equal(
    typeof version,
    'string',
    `capabilities.${capability} is true but metadata() reports no version`,
  );
  return version as string;
}

/** Reading older versions by id. */
export const versionsGroup: GroupSpec = {
  name: 'versions',
  tests: [
    {
      title: 'reads an older version by its id, or refuses version reads with UNSUPPORTED',
      body: async (ctx) => {
        const key = ctx.key(50);
        const first = ctx.value('version-1');
        await put(ctx, key, first);
        if (!ctx.provider.capabilities.versions) {
          const error = await rejection(ctx.provider.get(key, { version: '1' }));
          assertCode(error, 'UNSUPPORTED', 'get() with a version from a provider without versions');
          return;
        }
        const v1 = await versionOf(ctx, key, 'versions');
        await put(ctx, key, ctx.value('version-2'));
        assert.equal((await ctx.provider.get(key)).reveal(), ctx.values.at(-1), 'the latest value');
        assert.equal(
          (await ctx.provider.get(key, { version: v1 })).reveal(),
          first,
          `get(key, { version: ${v1} })`,
        );
        const missing = await rejection(ctx.provider.get(key, { version: `${v1}-no-such-version` }));
        assertCode(missing, ['NOT_FOUND', 'INVALID_KEY'], 'get() of a version that does not exist');
      },
    },
  ],
};

/** `SetOptions.ifVersion`: honoured, or refused, never ignored. */
export const checkAndSetGroup: GroupSpec = {
  name: 'checkAndSet',
  tests: [
    {
      title:
        'writes with ifVersion only over that version, CONFLICT otherwise, or refuses ifVersion with UNSUPPORTED',
      body: async (ctx) => {
        const key = ctx.key(60);
        if (!ctx.provider.capabilities.write) return assertReadOnly(ctx, key);
        const first = ctx.value('cas-1');
        await ctx.provider.set(key, first);
        const read = ctx.subject.backend?.read;
        if (!flag(ctx, 'checkAndSet')) {
          const { version } = await ctx.provider.metadata(key);
          const error = await rejection(
            ctx.provider.set(key, ctx.value('cas-refused'), { ifVersion: version ?? '1' }),
          );
          assertCode(error, 'UNSUPPORTED', 'set() with ifVersion on a provider without checkAndSet');
          assert.equal(
            (await ctx.provider.get(key)).reveal(),
            first,
            'a write refused for ifVersion overwrote the value',
          );
          if (read !== undefined)
            assert.equal(await read(key), first, 'a write refused for ifVersion reached the backend');
          return;
        }
        const v1 = await versionOf(ctx, key, 'checkAndSet');
        const second = ctx.value('cas-2');
        await ctx.provider.set(key, second, { ifVersion: v1 });
        assert.equal((await ctx.provider.get(key)).reveal(), second, 'a write over the expected version');
        const stale = await rejection(ctx.provider.set(key, ctx.value('cas-stale'), { ifVersion: v1 }));
        assertCode(stale, 'CONFLICT', 'set() with a stale ifVersion');
        assert.equal(
          (await ctx.provider.get(key)).reveal(),
          second,
          'a write with a stale ifVersion overwrote the value',
        );
        if (read !== undefined)
          assert.equal(await read(key), second, 'a write with a stale ifVersion reached the backend');
      },
    },
    {
      title: 'creates with ifVersion null only a key that does not exist, or refuses it with UNSUPPORTED',
      body: async (ctx) => {
        const key = ctx.key(61);
        if (!ctx.provider.capabilities.write) return assertReadOnly(ctx, key);
        const first = ctx.value('create-only');
        if (!flag(ctx, 'checkAndSet')) {
          const error = await rejection(ctx.provider.set(key, first, { ifVersion: null }));
          assertCode(error, 'UNSUPPORTED', 'set() with ifVersion null on a provider without checkAndSet');
          await rejectsWith(ctx.provider.get(key), 'NOT_FOUND', 'a write refused for ifVersion was stored');
          return;
        }
        await ctx.provider.set(key, first, { ifVersion: null });
        assert.equal((await ctx.provider.get(key)).reveal(), first, 'a create-only write of a missing key');
        const again = await rejection(ctx.provider.set(key, ctx.value('create-again'), { ifVersion: null }));
        assertCode(again, 'CONFLICT', 'set() with ifVersion null over an existing key');
        assert.equal(
          (await ctx.provider.get(key)).reveal(),
          first,
          'a create-only write overwrote an existing key',
        );
        const absent = ctx.key(62);
        const error = await rejection(
          ctx.provider.set(absent, ctx.value('cas-absent'), { ifVersion: 'no-such-version' }),
        );
        assertCode(error, 'CONFLICT', 'set() with ifVersion of a key that does not exist');
        await rejectsWith(ctx.provider.get(absent), 'NOT_FOUND', 'a conflicting write was stored');
      },
    },
  ],
};

/** `SetOptions.expiresAt`: honoured, or refused, never ignored. */
export const expiryGroup: GroupSpec = {
  name: 'expiry',
  tests: [
    {
      title: 'stores expiresAt and reports it in metadata, or refuses it with UNSUPPORTED',
      body: async (ctx) => {
        const key = ctx.key(70);
        if (!ctx.provider.capabilities.write) return assertReadOnly(ctx, key);
        // Whole seconds, a day ahead: what every backend with expiry can store.
        const expiresAt = new Date(Math.ceil(Date.now() / 1000) * 1000 + 86_400_000);
        if (!flag(ctx, 'expiry')) {
          const error = await rejection(ctx.provider.set(key, ctx.value('expiry-refused'), { expiresAt }));
          assertCode(error, 'UNSUPPORTED', 'set() with expiresAt on a provider without expiry');
          await rejectsWith(ctx.provider.get(key), 'NOT_FOUND', 'a write refused for expiresAt was stored');
          return;
        }
        await ctx.provider.set(key, ctx.value('expiring'), { expiresAt });
        const metadata = await ctx.provider.metadata(key);
        assert.ok(
          metadata.expiresAt instanceof Date,
          'metadata().expiresAt is missing after set() with expiresAt',
        );
        assert.ok(
          Math.abs(metadata.expiresAt.getTime() - expiresAt.getTime()) < 1_000,
          'metadata().expiresAt differs from the expiresAt written',
        );
        const secret = await ctx.provider.get(key);
        assert.equal(secret.reveal(), ctx.values.at(-1), 'a value with a future expiry is served');
      },
    },
    {
      title: 'does not pass off a value whose expiresAt has passed as valid',
      body: async (ctx) => {
        const key = ctx.key(71);
        if (!ctx.provider.capabilities.write) return assertReadOnly(ctx, key);
        const expiresAt = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
        const written = await ctx.provider.set(key, ctx.value('expired'), { expiresAt }).then(
          () => undefined,
          (error: unknown) => error,
        );
        if (!flag(ctx, 'expiry')) {
          assertCode(written, 'UNSUPPORTED', 'set() with expiresAt on a provider without expiry');
          return;
        }
        // Refusing a date in the past is fine; so is storing it, if readers learn it has expired.
        if (written !== undefined)
          return assertCode(written, 'INVALID_VALUE', 'set() with an expiresAt in the past');
        const read = await ctx.provider.get(key).then(
          (secret) => secret,
          (error: unknown) => error,
        );
        // Refused as missing, or as unusable (Key Vault answers 403 for an expired secret): not served.
        if (!Secret.isSecret(read))
          return assertCode(read, ['NOT_FOUND', 'ACCESS_DENIED'], 'get() of an expired value');
        const reported = read.metadata?.expiresAt ?? (await ctx.provider.metadata(key)).expiresAt;
        assert.ok(
          reported instanceof Date && reported.getTime() <= Date.now(),
          'an expired value is served without its expiry',
        );
      },
    },
  ],
};
