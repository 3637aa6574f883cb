import assert from 'node:assert/strict';
import { createEmitter, isSecretError, type SecretErrorCode } from '@secret-provider/core';
import {
  assertCode,
  assertQuiet,
  delay,
  describeEvents,
  hasOf,
  mentions,
  quietWindow,
  rejectsWith,
  type TestContext,
  waitForEvent,
  waitUntil,
} from '../context.js';
import type { GroupSpec } from '../group.js';
import type { RestoreBackend } from '../options.js';

/** What a failed backend call may be reported as: a failure, never an outcome such as NOT_FOUND. */
const FAILURE_CODES: readonly SecretErrorCode[] = [
  'UNAVAILABLE',
  'UNKNOWN',
  'TIMEOUT',
  'RATE_LIMITED',
  'ACCESS_DENIED',
];
/** What an unreachable backend must be reported as. */
const OUTAGE_CODES: readonly SecretErrorCode[] = ['UNAVAILABLE', 'TIMEOUT'];

/**
 * An error as a client library throws it: the command, the key and the value in its message,
 * in a non-enumerable own property, in a response body and in its cause.
 */
export function clientError(command: string, key: string, value: string): Error {
  const error = new Error(`ERR backend command failed: ${command} ${key} ${value}`, {
    cause: new Error(`reply to ${command} ${key}: ${value}`),
  });
  error.name = 'BackendCommandError';
  Object.defineProperty(error, 'command', {
    value: { name: command, args: [key, value] },
    enumerable: false,
  });
  Object.assign(error, { response: { status: 500, body: `{"error":"failed","value":"${value}"}` } });
  return error;
}

async function failNext(ctx: TestContext, error: Error): Promise<void> {
  const hook = ctx.settings.options.failNextCall;
  assert.ok(hook !== undefined);
  await hook(ctx.subject, error);
}

async function goDown(ctx: TestContext): Promise<RestoreBackend> {
  const hook = ctx.settings.options.makeUnreachable;
  assert.ok(hook !== undefined);
  return hook(ctx.subject);
}

/** Settles `promise`, failing the test if it takes longer than an outage may. */
async function settled<T>(
  ctx: TestContext,
  what: string,
  promise: Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  const limit = 2 * ctx.settings.eventTimeout;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), limit);
  });
  try {
    const outcome = await Promise.race([
      promise.then(
        (value) => ({ ok: true as const, value }),
        (error: unknown) => ({ ok: false as const, error }),
      ),
      late,
    ]);
    assert.notEqual(outcome, 'late', `${what} did not settle within ${limit} ms`);
    return outcome as { ok: true; value: T } | { ok: false; error: unknown };
  } finally {
    clearTimeout(timer);
  }
}

function assertOutage(error: unknown, what: string): void {
  assertCode(error, OUTAGE_CODES, `${what} while the backend is unreachable`);
  assert.equal((error as { retryable?: unknown }).retryable, true, `${what}: an outage is retryable`);
}

/** Failed calls and outages: typed failures, never "not found", never a value in the error. */
export const failureGroup: GroupSpec = {
  name: 'failure',
  tests: [
    {
      title: 'reports a failed backend write as a typed failure that quotes no value',
      needs: ['failNextCall'],
      body: async (ctx) => {
        const key = ctx.key(200);
        if (!ctx.provider.capabilities.write) {
          // A read-only provider refuses before any backend call; the read test covers its failures.
          await rejectsWith(
            ctx.provider.set(key, ctx.value('ro')),
            'READ_ONLY',
            'set() on a read-only provider',
          );
          return;
        }
        const value = ctx.value('failed-write');
        await failNext(ctx, clientError('SET', key, value));
        const outcome = await settled(ctx, 'a failed set()', ctx.provider.set(key, value));
        if (outcome.ok) {
          // The provider retried past the failure: then the write must have happened.
          assert.equal(
            (await ctx.provider.get(key)).reveal(),
            value,
            'set() resolved but the value is not stored',
          );
        } else {
          assertCode(outcome.error, FAILURE_CODES, 'set() whose backend call failed');
        }
        const next = ctx.value('write-after-failure');
        await ctx.provider.set(key, next);
        assert.equal((await ctx.provider.get(key)).reveal(), next, 'a write after a failed one');
      },
    },
    {
      title: 'reports a failed backend read as a typed failure, never NOT_FOUND, and reads again afterwards',
      needs: ['failNextCall'],
      body: async (ctx) => {
        const key = ctx.key(201);
        const value = ctx.value('failed-read');
        await ctx.seed(key, value);
        const has = hasOf(ctx.provider);
        const reads: Array<[string, () => Promise<unknown>, (result: unknown) => boolean]> = [
          ['get', () => ctx.provider.get(key), (s) => (s as { reveal(): string }).reveal() === value],
          ['metadata', () => ctx.provider.metadata(key), (m) => (m as { key: string }).key === key],
        ];
        if (has !== undefined) reads.push(['has', () => has(key), (present) => present === true]);
        if (ctx.provider.capabilities.list)
          reads.push(['keys', () => ctx.provider.keys(), (names) => (names as string[]).includes(key)]);
        for (const [operation, read, correct] of reads) {
          await failNext(ctx, clientError(operation.toUpperCase(), key, value));
          const outcome = await settled(ctx, `a failed ${operation}()`, read());
          if (outcome.ok)
            assert.ok(
              correct(outcome.value),
              `${operation}() resolved a wrong answer after a failed backend call`,
            );
          else assertCode(outcome.error, FAILURE_CODES, `${operation}() whose backend call failed`);
          const again = await settled(ctx, `${operation}() after a failed one`, read());
          assert.ok(
            again.ok && correct(again.value),
            `${operation}() after a failed backend call: ${again.ok ? 'a wrong answer' : 'still failing'}`,
          );
        }
      },
    },
    {
      title: 'reports an unreachable backend as UNAVAILABLE or TIMEOUT, never NOT_FOUND, and recovers',
      needs: ['makeUnreachable'],
      body: async (ctx) => {
        const key = ctx.key(210);
        const value = ctx.value('outage');
        await ctx.seed(key, value);
        const has = hasOf(ctx.provider);
        const restore = await goDown(ctx);
        let restored = false;
        try {
          // A provider may serve what it already holds (a last-good value); it may not deny what exists.
          const read = await settled(ctx, 'get()', ctx.provider.get(key));
          if (read.ok)
            assert.equal(read.value.reveal(), value, 'get() during an outage served a wrong value');
          else assertOutage(read.error, 'get()');
          const metadata = await settled(ctx, 'metadata()', ctx.provider.metadata(key));
          if (metadata.ok) assert.equal(metadata.value.key, key);
          else assertOutage(metadata.error, 'metadata()');
          if (has !== undefined) {
            const present = await settled(ctx, 'has()', has(key));
            if (present.ok)
              assert.equal(
                present.value,
                true,
                'has() answered false for a key that exists, during an outage',
              );
            else assertOutage(present.error, 'has()');
          }
          if (ctx.provider.capabilities.list) {
            const names = await settled(ctx, 'keys()', ctx.provider.keys());
            if (names.ok)
              assert.ok(names.value.includes(key), 'keys() during an outage left out a key that exists');
            else assertOutage(names.error, 'keys()');
          }
          let written: string | undefined;
          if (ctx.provider.capabilities.write) {
            const other = ctx.key(211);
            const wrote = await settled(ctx, 'set()', ctx.provider.set(other, ctx.value('outage-write')));
            if (wrote.ok) written = other;
            else assertOutage(wrote.error, 'set()');
          }
          if (ctx.provider.capabilities.delete) {
            const deleted = await settled(ctx, 'delete()', ctx.provider.delete(ctx.key(212)));
            assert.ok(!deleted.ok, 'delete() of a key that does not exist resolved during an outage');
            assertOutage(deleted.error, 'delete()');
          }
          await restore();
          restored = true;
          await waitUntil(
            async () =>
              (await ctx.provider.get(key).then(
                (s) => s.reveal(),
                () => undefined,
              )) === value
                ? true
                : undefined,
            ctx.settings.eventTimeout,
            () => 'get() does not recover after the backend is reachable again',
          );
          if (written !== undefined)
            assert.equal(
              (await ctx.provider.get(written)).reveal(),
              ctx.values.at(-1),
              'a write that resolved during the outage was lost',
            );
        } finally {
          if (!restored) await restore();
        }
      },
    },
    {
      title: 'reports an outage to watchers as an error, not as removals, and goes on reporting afterwards',
      needs: ['makeUnreachable'],
      body: async (ctx) => {
        const key = ctx.key(220);
        await ctx.seed(key, ctx.value('watched-outage'));
        if (!ctx.provider.capabilities.watch) {
          // Nothing to report: a provider without watch hands out a silent handle even in an outage.
          const handle = ctx.provider.watch(createEmitter());
          await handle.ready;
          const since = performance.now();
          const restore = await goDown(ctx);
          await assertQuiet(ctx, 'an unwatchable provider during an outage', { since });
          await restore();
          await handle.stop();
          return;
        }
        const handle = ctx.provider.watch(createEmitter());
        await handle.ready;
        let since = performance.now();
        await ctx.change.set(key, ctx.value('before-outage'));
        await waitForEvent(
          ctx,
          (type, e) => type === 'rotated' && mentions(e, key),
          `a "rotated" event for ${key}`,
          since,
        );
        since = performance.now();
        const restore = await goDown(ctx);
        try {
          // Long enough for several polls (four detection latencies), or until the error is reported.
          const window = quietWindow(ctx);
          await waitUntil(
            () =>
              ctx.events.some((e) => e.at >= since && e.type === 'error') ||
              performance.now() - since > window
                ? true
                : undefined,
            window + 1_000,
          );
          await delay(Math.min(window, ctx.settings.quietPeriod));
        } finally {
          await restore();
        }
        const during = ctx.events.filter((e) => e.at >= since && e.type !== 'error' && e.type !== 'warning');
        assert.equal(
          during.length,
          0,
          `events during an outage in which nothing changed: ${describeEvents(during)}`,
        );
        for (const e of ctx.events.filter((e) => e.at >= since && e.type === 'error')) {
          const error = (e.event as { error?: unknown }).error;
          assert.ok(isSecretError(error), 'an "error" event whose error is not a SecretError');
          assert.ok(error.code !== 'NOT_FOUND', 'an outage reported to watchers as NOT_FOUND');
        }
        // Back up with nothing changed: no event about keys; then changes are reported again.
        const after = performance.now();
        await delay(quietWindow(ctx));
        const spurious = ctx.events.filter(
          (e) => e.at >= after && e.type !== 'error' && e.type !== 'warning',
        );
        assert.equal(
          spurious.length,
          0,
          `events after an outage in which nothing changed: ${describeEvents(spurious)}`,
        );
        since = performance.now();
        await ctx.change.set(key, ctx.value('after-outage'));
        await waitForEvent(
          ctx,
          (type, e) => type === 'rotated' && mentions(e, key),
          `a "rotated" event for ${key} after the outage`,
          since,
        );
        await handle.stop();
      },
    },
    {
      title:
        'a watch started while the backend is unreachable is ready, reports the outage, starts by itself once it is back, and reports only later changes',
      needs: ['makeUnreachable'],
      body: async (ctx) => {
        const key = ctx.key(240);
        const later = ctx.key(241);
        await ctx.seed(key, ctx.value('before-watch'));
        const since = performance.now();
        const restore = await goDown(ctx);
        let handle: ReturnType<typeof ctx.provider.watch> | undefined;
        try {
          handle = ctx.provider.watch(createEmitter());
          const ready = await settled(ctx, 'watch().ready while the backend is unreachable', handle.ready);
          assert.ok(ready.ok, 'watch().ready rejected while the backend was unreachable: it must resolve');
          assert.equal(handle.stopped, false, 'a watch started during an outage is stopped');
          // Until the outage is reported, or long enough for several attempts.
          const window = quietWindow(ctx);
          await waitUntil(
            () =>
              ctx.events.some((e) => e.at >= since && e.type === 'error') ||
              performance.now() - since > window
                ? true
                : undefined,
            window + 1_000,
          );
        } finally {
          await restore();
        }
        assert.ok(handle !== undefined);
        for (const e of ctx.events.filter((e) => e.at >= since && e.type === 'error')) {
          const error = (e.event as { error?: unknown }).error;
          assert.ok(isSecretError(error), 'an "error" event whose error is not a SecretError');
          assert.ok(error.code !== 'NOT_FOUND', 'an outage at the start of a watch reported as NOT_FOUND');
        }
        if (!ctx.provider.capabilities.watch) {
          await assertQuiet(ctx, 'an unwatchable provider after an outage');
          await handle.stop();
          return;
        }
        // No new watcher: the one started during the outage must start by itself (with
        // back-off, hence the longer wait). A write made before it has started is part of its
        // starting point, so `later` is written again until a write of it is reported.
        const changed = performance.now();
        const limit = 2 * ctx.settings.eventTimeout;
        const step = Math.max(ctx.settings.quietPeriod, 100);
        const reported = () =>
          ctx.events.some(
            (e) =>
              e.at >= changed && (e.type === 'added' || e.type === 'rotated') && mentions(e.event, later),
          );
        for (let round = 0; !reported(); round++) {
          assert.ok(
            performance.now() - changed < limit,
            `a watch started during an outage reported none of the writes of ${later} made in the ${limit} ms after it; events seen: ${describeEvents(ctx.events)}`,
          );
          await ctx.change.set(later, ctx.value(`after-outage-start-${round}`));
          await waitUntil(() => (reported() ? true : undefined), step).catch(() => undefined);
        }
        // What existed when the watch started is its starting point, never a change.
        const spurious = ctx.events.filter(
          (e) => e.type !== 'error' && e.type !== 'warning' && mentions(e.event, key),
        );
        assert.equal(
          spurious.length,
          0,
          `events about a key that existed before a watch started during an outage: ${describeEvents(spurious)}`,
        );
        await handle.stop();
      },
    },
    {
      title: "rejects an operation aborted during an outage with the signal's reason",
      needs: ['makeUnreachable'],
      body: async (ctx) => {
        const key = ctx.key(230);
        await ctx.seed(key, ctx.value('aborted-outage'));
        const restore = await goDown(ctx);
        try {
          const controller = new AbortController();
          const reason = new Error('stopped waiting for an unreachable backend');
          const pending = ctx.provider.get(key, { signal: controller.signal });
          controller.abort(reason);
          const outcome = await settled(ctx, 'get() aborted during an outage', pending);
          assert.ok(!outcome.ok, 'get() aborted during an outage resolved');
          assert.equal(
            outcome.error,
            reason,
            "get() aborted during an outage rejects with the signal's reason",
          );
        } finally {
          await restore();
        }
      },
    },
  ],
};
