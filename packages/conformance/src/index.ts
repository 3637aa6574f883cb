import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import {
  createEmitter,
  isSecretError,
  Secret,
  type SecretErrorCode,
  type SecretEvents,
  type SecretProvider,
} from '@secret-provider/core';

/** The parts of a test runner the suite registers under (vitest, jest, mocha, `node:test`). */
export interface ConformanceTestApi {
  describe(name: string, body: () => void): unknown;
  it: ((name: string, body: () => Promise<void> | void, timeout?: number) => unknown) & {
    skip?: (name: string, body: () => Promise<void> | void) => unknown;
  };
  beforeEach?(body: () => Promise<void> | void): unknown;
  afterEach?(body: () => Promise<void> | void): unknown;
}

/**
 * Writes to the backend that bypass the provider, so the suite can check reads and `watch`
 * without trusting the adapter to read back its own writes.
 */
export interface ConformanceBackend {
  set(key: string, value: string): Promise<void>;
  delete?(key: string): Promise<void>;
}

/** What the factory returns for each test. */
export interface ConformanceSubject {
  readonly provider: SecretProvider;
  readonly backend?: ConformanceBackend | undefined;
  /** Called after each test, after the provider is closed. */
  readonly cleanup?: (() => Promise<void> | void) | undefined;
}

export interface ConformanceOptions {
  /** Label of the suite. */
  readonly name: string;
  /** The runner's functions. */
  readonly test: ConformanceTestApi;
  /** Makes a fresh provider (and backend) for each test. */
  readonly create: () => Promise<ConformanceSubject> | ConformanceSubject;
  /** Valid, fresh keys for this backend. @default random `cf<hex>-<i>` */
  readonly makeKey?: ((index: number) => string) | undefined;
  /** How long to wait for a watch event. @default 5_000 */
  readonly eventTimeoutMs?: number | undefined;
  /** Per-test timeout handed to the runner. @default 30_000 */
  readonly testTimeoutMs?: number | undefined;
  /** Concurrent writes in the concurrency test. @default 100 */
  readonly concurrency?: number | undefined;
  /** Tests to skip, by title, with the reason (shown in the runner's output). */
  readonly skip?: Readonly<Record<string, string>> | undefined;
}

interface Context {
  subject: ConformanceSubject;
  provider: SecretProvider;
  key: (index: number) => string;
  /** A distinctive value per test, so that any leak of it can be searched for. */
  value: (label: string) => string;
  values: string[];
  errors: unknown[];
  events: Array<{ type: keyof SecretEvents; event: unknown }>;
}

/**
 * Registers the `SecretProvider` contract tests under the caller's runner. Groups switch on by
 * the capabilities the provider declares; the suite also checks that undeclared capabilities
 * fail with the right typed errors.
 *
 * @example
 * ```ts
 * import { describe, it } from 'vitest';
 * import { describeProviderConformance } from '@secret-provider/conformance';
 * import { MemoryProvider, MemoryStore } from '@secret-provider/memory';
 *
 * describeProviderConformance({
 *   name: 'memory',
 *   test: { describe, it },
 *   create: () => {
 *     const store = new MemoryStore();
 *     return {
 *       provider: new MemoryProvider({ store }),
 *       backend: { set: async (k, v) => void store.set(k, v), delete: async (k) => void store.delete(k) },
 *     };
 *   },
 * });
 * ```
 */
export function describeProviderConformance(options: ConformanceOptions): void {
  const { test } = options;
  const eventTimeout = options.eventTimeoutMs ?? 5_000;
  const timeout = options.testTimeoutMs ?? 30_000;
  const concurrency = options.concurrency ?? 100;

  /** Runs `body` with a fresh provider, then closes it, cleans up and scans for leaks. */
  const withProvider = (body: (ctx: Context) => Promise<void>) => async (): Promise<void> => {
    const subject = await options.create();
    const run = randomBytes(4).toString('hex');
    const ctx: Context = {
      subject,
      provider: subject.provider,
      key: options.makeKey ?? ((i) => `cf${run}-${i}`),
      values: [],
      errors: [],
      events: [],
      value: (label) => {
        const value = `cfvalue-${label}-${randomBytes(8).toString('hex')}`;
        ctx.values.push(value);
        return value;
      },
    };
    try {
      await body(ctx);
      assertNoLeak(ctx);
    } finally {
      await subject.provider.close().catch(() => {});
      await subject.cleanup?.();
    }
  };

  const it = (title: string, body: (ctx: Context) => Promise<void>): void => {
    const reason = options.skip?.[title];
    if (reason !== undefined && test.it.skip !== undefined) {
      // An adapter author's documented opt-out (`skip: { title: reason }`), not a skipped test of this
      // repository: the author's runner reports it as skipped, with the reason in its title.
      test.it.skip(`${title} (skipped: ${reason})`, () => {}); // reason: given by the suite's caller
      return;
    }
    if (reason !== undefined) return;
    test.it(title, withProvider(body), timeout);
  };

  /** Seeds `key` through the backend when there is one, else through the provider. */
  const seed = async (ctx: Context, key: string, value: string): Promise<void> => {
    if (ctx.subject.backend !== undefined) await ctx.subject.backend.set(key, value);
    else await ctx.provider.set(key, value);
  };

  test.describe(`SecretProvider conformance: ${options.name}`, () => {
    it('declares a name and boolean capabilities, and can be seeded', async ({ provider, subject }) => {
      assert.ok(
        subject.backend !== undefined || provider.capabilities.write,
        'a read-only provider needs a `backend` in the factory so the suite can put secrets in front of it',
      );
      assert.equal(typeof provider.name, 'string');
      assert.ok(provider.name.length > 0, 'name is empty');
      for (const capability of ['write', 'delete', 'list', 'watch', 'metadata', 'versions'] as const) {
        assert.equal(typeof provider.capabilities[capability], 'boolean', `capabilities.${capability}`);
      }
    });

    it('reads a seeded value as a redacting Secret', async (ctx) => {
      const key = ctx.key(1);
      const value = ctx.value('read');
      await seed(ctx, key, value);
      const secret = await ctx.provider.get(key);
      assert.ok(Secret.isSecret(secret), 'get resolves a Secret');
      assert.equal(secret.reveal(), value);
      assert.ok(!String(secret).includes(value) && !JSON.stringify({ secret }).includes(value));
      assert.ok(!inspect(secret, { depth: 10, showHidden: true }).includes(value));
    });

    it('rejects a missing key with NOT_FOUND, naming key and provider', async (ctx) => {
      const key = ctx.key(2);
      const error = await rejection(ctx, ctx.provider.get(key));
      assertCode(error, 'NOT_FOUND');
      assert.equal((error as { key?: string }).key, key);
      assert.equal((error as { provider?: string }).provider, ctx.provider.name);
      assert.equal((error as { retryable?: boolean }).retryable, false);
    });

    it('reads metadata without the value, and NOT_FOUND for a missing key', async (ctx) => {
      assertCode(await rejection(ctx, ctx.provider.metadata(ctx.key(3))), 'NOT_FOUND');
      const key = ctx.key(4);
      await seed(ctx, key, ctx.value('meta'));
      const metadata = await ctx.provider.metadata(key);
      assert.equal(metadata.key, key);
    });

    it('changes the version in metadata when the value changes', async (ctx) => {
      const key = ctx.key(5);
      await seed(ctx, key, ctx.value('v1'));
      const before = await ctx.provider.metadata(key);
      if (before.version === undefined) {
        // A backend without versions must still serve the new value.
        await seed(ctx, key, ctx.value('v2'));
        await waitUntil(
          async () => ((await ctx.provider.get(key)).reveal() === ctx.values.at(-1) ? true : undefined),
          eventTimeout,
        );
        return;
      }
      await seed(ctx, key, ctx.value('v2'));
      const after = await waitUntil(async () => {
        const m = await ctx.provider.metadata(key);
        return m.version !== before.version ? m : undefined;
      }, eventTimeout);
      assert.notEqual(after.version, before.version);
      assert.equal((await ctx.provider.get(key)).reveal(), ctx.values.at(-1));
    });

    it('rejects bad keys (empty, NUL, very long, not a string) with INVALID_KEY and writes nothing', async (ctx) => {
      const badKeys: unknown[] = ['', 'a\u0000b', 'k'.repeat(100_000), 42, undefined, null];
      const before = ctx.provider.capabilities.list ? await ctx.provider.keys() : [];
      for (const bad of badKeys) {
        const key = bad as string;
        assertCode(await rejection(ctx, ctx.provider.get(key)), 'INVALID_KEY');
        assertCode(await rejection(ctx, ctx.provider.metadata(key)), 'INVALID_KEY');
        assertCode(await rejection(ctx, ctx.provider.set(key, ctx.value('badkey'))), 'INVALID_KEY');
        assertCode(await rejection(ctx, ctx.provider.delete(key)), 'INVALID_KEY');
      }
      if (ctx.provider.capabilities.list) assert.deepEqual((await ctx.provider.keys()).sort(), before.sort());
    });

    it('rejects operations on an aborted signal', async (ctx) => {
      const controller = new AbortController();
      controller.abort(new Error('caller gave up'));
      const error = await rejection(ctx, ctx.provider.get(ctx.key(6), { signal: controller.signal }));
      assert.equal((error as Error).message, 'caller gave up');
    });

    it('matches its declared capabilities with typed refusals', async (ctx) => {
      const { capabilities } = ctx.provider;
      const key = ctx.key(7);
      if (!capabilities.write) {
        assertCode(await rejection(ctx, ctx.provider.set(key, ctx.value('ro'))), 'READ_ONLY');
        assertCode(await rejection(ctx, ctx.provider.get(key)), 'NOT_FOUND');
      }
      if (!capabilities.delete) {
        const error = await rejection(ctx, ctx.provider.delete(key));
        assert.ok(
          isSecretError(error, 'UNSUPPORTED') || isSecretError(error, 'READ_ONLY'),
          describeError(error),
        );
      }
      if (!capabilities.list) assertCode(await rejection(ctx, ctx.provider.keys()), 'UNSUPPORTED');
      if (!capabilities.versions) {
        const error = await rejection(ctx, ctx.provider.get(key, { version: '1' }));
        assert.ok(
          isSecretError(error, 'UNSUPPORTED') || isSecretError(error, 'NOT_FOUND'),
          describeError(error),
        );
      }
    });

    it('is not revealed by JSON.stringify or util.inspect of the provider', async (ctx) => {
      const key = ctx.key(8);
      await seed(ctx, key, ctx.value('introspect'));
      await ctx.provider.get(key);
      assertNoValueIn(ctx, JSON.stringify(ctx.provider) ?? '', 'JSON.stringify(provider)');
      assertNoValueIn(
        ctx,
        inspect(ctx.provider, { depth: Infinity, showHidden: true }),
        'util.inspect(provider)',
      );
    });

    it('closes idempotently and rejects every later call with CLOSED', async (ctx) => {
      const { provider } = ctx;
      await provider.close();
      await provider.close();
      assertCode(await rejection(ctx, provider.get(ctx.key(9))), 'CLOSED');
      assertCode(await rejection(ctx, provider.metadata(ctx.key(9))), 'CLOSED');
      assertCode(await rejection(ctx, provider.set(ctx.key(9), ctx.value('closed'))), 'CLOSED');
      assertCode(await rejection(ctx, provider.delete(ctx.key(9))), 'CLOSED');
      assertCode(await rejection(ctx, provider.keys()), 'CLOSED');
      // watch never throws: on a closed provider its handle is stopped and `ready` rejects.
      const handle = provider.watch(createEmitter());
      assert.equal(handle.stopped, true, 'a watch of a closed provider is already stopped');
      assertCode(await rejection(ctx, handle.ready), 'CLOSED');
      await handle.stop();
    });

    test.describe('write', () => {
      // Without the capability, each test checks the typed refusal instead.
      const ifWritable = (title: string, body: (ctx: Context) => Promise<void>) =>
        it(title, async (ctx) => {
          if (ctx.provider.capabilities.write) return body(ctx);
          assertCode(await rejection(ctx, ctx.provider.set(ctx.key(13), ctx.value('ro'))), 'READ_ONLY');
        });

      ifWritable('set then get round-trips, and overwrites', async (ctx) => {
        const key = ctx.key(10);
        await ctx.provider.set(key, ctx.value('first'));
        assert.equal((await ctx.provider.get(key)).reveal(), ctx.values.at(-1));
        await ctx.provider.set(key, new Secret(ctx.value('second')));
        assert.equal((await ctx.provider.get(key)).reveal(), ctx.values.at(-1));
      });

      ifWritable(
        'rejects values that are neither strings nor Secrets with INVALID_VALUE and writes nothing',
        async (ctx) => {
          const key = ctx.key(11);
          for (const bad of [42, { value: 'x' }, null, undefined]) {
            assertCode(
              await rejection(ctx, ctx.provider.set(key, bad as unknown as string)),
              'INVALID_VALUE',
            );
          }
          assertCode(await rejection(ctx, ctx.provider.get(key)), 'NOT_FOUND');
        },
      );

      ifWritable(`keeps every one of ${concurrency} concurrent writes of distinct keys`, async (ctx) => {
        const keys = Array.from({ length: concurrency }, (_, i) => ctx.key(100 + i));
        const values = keys.map((_, i) => ctx.value(`c${i}`));
        await Promise.all(keys.map((key, i) => ctx.provider.set(key, values[i] as string)));
        const read = await Promise.all(keys.map(async (key) => (await ctx.provider.get(key)).reveal()));
        assert.deepEqual(read, values);
        if (ctx.provider.capabilities.list) {
          const listed = new Set(await ctx.provider.keys());
          for (const key of keys) assert.ok(listed.has(key), `keys() lists ${key}`);
        }
      });

      ifWritable('answers concurrent reads of one key alike', async (ctx) => {
        const key = ctx.key(12);
        await ctx.provider.set(key, ctx.value('shared'));
        const read = await Promise.all(Array.from({ length: 50 }, () => ctx.provider.get(key)));
        for (const secret of read) assert.equal(secret.reveal(), ctx.values.at(-1));
      });
    });

    test.describe('list', () => {
      it('lists seeded keys once each, and filters by prefix', async (ctx) => {
        if (!ctx.provider.capabilities.list) {
          assertCode(await rejection(ctx, ctx.provider.keys()), 'UNSUPPORTED');
          return;
        }
        const keys = [ctx.key(20), ctx.key(21), ctx.key(22)];
        for (const key of keys) await seed(ctx, key, ctx.value('list'));
        const listed = await ctx.provider.keys();
        assert.equal(new Set(listed).size, listed.length, 'no duplicates');
        for (const key of keys) assert.ok(listed.includes(key), `lists ${key}`);
        const prefix = commonPrefix(keys);
        if (prefix.length > 0) {
          const filtered = await ctx.provider.keys({ prefix });
          assert.ok(filtered.every((k) => k.startsWith(prefix)));
          for (const key of keys) assert.ok(filtered.includes(key));
        }
        for (const value of ctx.values)
          assert.ok(!listed.includes(value), 'keys() returns names, not values');
      });
    });

    test.describe('delete', () => {
      it('deletes a key, then reports NOT_FOUND for it and for deleting it again', async (ctx) => {
        const key = ctx.key(30);
        if (!ctx.provider.capabilities.delete) {
          const error = await rejection(ctx, ctx.provider.delete(key));
          assert.ok(
            isSecretError(error, 'UNSUPPORTED') || isSecretError(error, 'READ_ONLY'),
            describeError(error),
          );
          return;
        }
        await seed(ctx, key, ctx.value('delete'));
        await ctx.provider.delete(key);
        assertCode(await rejection(ctx, ctx.provider.get(key)), 'NOT_FOUND');
        assertCode(await rejection(ctx, ctx.provider.delete(key)), 'NOT_FOUND');
      });
    });

    test.describe('watch', () => {
      const watching = (title: string, body: (ctx: Context, change: ConformanceBackend) => Promise<void>) =>
        it(title, async (ctx) => {
          const change = ctx.subject.backend ?? providerAsBackend(ctx.provider);
          if (ctx.provider.capabilities.watch) return body(ctx, change);
          // A provider that cannot watch still hands out a handle that stops cleanly.
          const handle = ctx.provider.watch(createEmitter());
          await handle.ready;
          await handle.stop();
          assert.equal(handle.stopped, true);
        });

      watching(
        'reports out-of-band additions, rotations and removals, without values',
        async (ctx, change) => {
          const emitter = createEmitter();
          emitter.on('*', (type, event) => ctx.events.push({ type, event }));
          const handle = ctx.provider.watch(emitter);
          await handle.ready;
          const key = ctx.key(40);
          await change.set(key, ctx.value('watch-added'));
          await waitForEvent(
            ctx,
            eventTimeout,
            (type, e) => (type === 'added' || type === 'rotated') && mentions(e, key),
          );
          await change.set(key, ctx.value('watch-rotated'));
          await waitForEvent(ctx, eventTimeout, (type, e) => type === 'rotated' && mentions(e, key));
          assert.equal((await ctx.provider.get(key)).reveal(), ctx.values.at(-1));
          if (change.delete !== undefined) {
            await change.delete(key);
            await waitForEvent(ctx, eventTimeout, (type, e) => type === 'removed' && mentions(e, key));
          }
          for (const { event } of ctx.events) {
            assert.equal(typeof (event as { provider?: unknown }).provider, 'string');
            assert.ok((event as { detectedAt?: unknown }).detectedAt instanceof Date);
          }
          await handle.stop();
        },
      );

      watching(
        'stops reporting after stop(), abort or asyncDispose; stop is idempotent',
        async (ctx, change) => {
          const emitter = createEmitter();
          const seen: string[] = [];
          emitter.on('*', (type) => seen.push(String(type)));
          const controller = new AbortController();
          const handle = ctx.provider.watch(emitter, { signal: controller.signal });
          await handle.ready;
          controller.abort();
          assert.equal(handle.stopped, true);
          await handle.stop();
          await handle[Symbol.asyncDispose]();
          await change.set(ctx.key(41), ctx.value('after-stop'));
          await new Promise((resolve) => setTimeout(resolve, Math.min(eventTimeout, 1_000)));
          assert.deepEqual(
            seen.filter((t) => t !== 'warning'),
            [],
          );
        },
      );
    });
  });
}

function providerAsBackend(provider: SecretProvider): ConformanceBackend {
  return {
    set: (key, value) => provider.set(key, value),
    ...(provider.capabilities.delete ? { delete: (key: string) => provider.delete(key) } : {}),
  };
}

/** Awaits a promise that must reject, records the error for the leak scan and returns it. */
async function rejection(ctx: Context, promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    ctx.errors.push(error);
    return error;
  }
  throw new assert.AssertionError({ message: 'expected the call to reject, it resolved' });
}

function assertCode(error: unknown, code: SecretErrorCode): void {
  assert.ok(
    isSecretError(error, code),
    `expected a SecretError with code ${code}, got ${describeError(error)}`,
  );
}

function describeError(error: unknown): string {
  if (isSecretError(error)) return `${error.name} ${error.code}: ${error.message}`;
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** Every error and event of the test, in every form a logger could print it, free of values. */
function assertNoLeak(ctx: Context): void {
  for (const error of ctx.errors) {
    const forms = [
      String(error),
      (error as Error)?.stack ?? '',
      JSON.stringify(error) ?? '',
      inspect(error, { depth: Infinity, showHidden: true }),
    ];
    for (const form of forms) assertNoValueIn(ctx, form, 'an error');
  }
  for (const { event } of ctx.events) {
    assertNoValueIn(ctx, JSON.stringify(event) ?? '', 'an event');
    assertNoValueIn(ctx, inspect(event, { depth: Infinity, showHidden: true }), 'an event');
  }
}

function assertNoValueIn(ctx: Context, text: string, where: string): void {
  for (const value of ctx.values) assert.ok(!text.includes(value), `${where} contains a secret value`);
}

function mentions(event: unknown, key: string): boolean {
  const e = event as { key?: string; keys?: readonly string[] };
  return e.key === key || (e.keys?.includes(key) ?? false);
}

async function waitForEvent(
  ctx: Context,
  timeoutMs: number,
  match: (type: keyof SecretEvents, event: unknown) => boolean,
): Promise<void> {
  await waitUntil(
    async () => (ctx.events.some(({ type, event }) => match(type, event)) ? true : undefined),
    timeoutMs,
    () => {
      const seen = ctx.events.map(({ type, event }) => `${type}:${JSON.stringify(event)}`).join(', ');
      return `expected event did not arrive within ${timeoutMs} ms; seen: ${seen || 'none'}`;
    },
  );
}

async function waitUntil<T>(
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  message?: () => string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline)
      throw new assert.AssertionError({ message: message?.() ?? `condition not met within ${timeoutMs} ms` });
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function commonPrefix(keys: string[]): string {
  let prefix = keys[0] ?? '';
  for (const key of keys) while (!key.startsWith(prefix)) prefix = prefix.slice(0, -1);
  return prefix;
}
