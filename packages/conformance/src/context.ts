import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  isSecretError,
  type OperationOptions,
  type SecretErrorCode,
  type SecretEventEmitter,
  type SecretEvents,
  type SecretProvider,
  type WatchHandle,
  type WatchOptions,
} from '@secret-provider/core';
import type { ConformanceBackend, ConformanceOptions, ConformanceSubject } from './options.js';
import { findLeak, type Needle, needleFor } from './scan.js';

/** Options with their defaults applied. */
export interface Settings {
  /** The caller's options; hooks get the caller's own subject (`S`), typed loosely inside the suite. */
  readonly options: ConformanceOptions;
  readonly eventTimeout: number;
  readonly quietPeriod: number;
  readonly settle: number;
  readonly timeout: number;
  readonly concurrency: number;
}

export function settingsOf<S extends ConformanceSubject>(options: ConformanceOptions<S>): Settings {
  return {
    options: options as unknown as ConformanceOptions,
    eventTimeout: options.eventTimeoutMs ?? 5_000,
    quietPeriod: options.quietPeriodMs ?? 250,
    settle: options.settleMs ?? 2_000,
    timeout: options.testTimeoutMs ?? 30_000,
    concurrency: options.concurrency ?? 100,
  };
}

/** One event a watcher of the test received. */
export interface SeenEvent {
  readonly type: keyof SecretEvents;
  readonly event: unknown;
  /** `performance.now()` when it arrived. */
  readonly at: number;
}

/** What each test body gets: a fresh provider, fresh keys and values, and what it received. */
export interface TestContext {
  readonly settings: Settings;
  readonly subject: ConformanceSubject;
  /** The provider, seen through a recorder: everything it returns or throws is scanned for values. */
  readonly provider: SecretProvider;
  /** The provider itself, for identity checks. */
  readonly raw: SecretProvider;
  /** A fresh key for this test. */
  key(index: number): string;
  /** A distinctive fresh value; any later appearance of it where it does not belong fails the test. */
  value(label: string): string;
  /** The values made so far, in order. */
  readonly values: string[];
  /** Events received by every watcher armed through {@link TestContext.provider}. */
  readonly events: SeenEvent[];
  /** Records something the test received, to be scanned for values at the end. */
  receive(where: string, what: unknown): void;
  /** Writes behind the provider's back when the harness can, else through the provider. */
  seed(key: string, value: string): Promise<void>;
  /** The backend the watch tests change, or the provider itself when there is none. */
  readonly change: ConformanceBackend;
  /** Slowest change detection measured so far in this test, in ms. */
  latency: number;
  /** Active resources by type, counted just before the factory made this test's provider. */
  readonly resourcesBefore: ReadonlyMap<string, number>;
  /** Closes the provider and runs the harness cleanup, once (the suite also does after the test). */
  finish(): Promise<void>;
}

/**
 * Runs `body` with a fresh provider; afterwards closes it, cleans up, and fails the test if any
 * value written in it appears in anything the test received.
 */
export async function runWithProvider(
  settings: Settings,
  body: (ctx: TestContext) => Promise<void>,
): Promise<void> {
  const resourcesBefore = activeResources();
  const subject = await settings.options.create();
  const ctx = createContext(settings, subject, resourcesBefore);
  const onWarning = (warning: Error) => ctx.receive('a process warning', warning);
  process.on('warning', onWarning);
  try {
    await body(ctx);
    assertNoLeak(ctx);
  } finally {
    process.off('warning', onWarning);
    await ctx.finish();
  }
}

export function createContext(
  settings: Settings,
  subject: ConformanceSubject,
  resourcesBefore: ReadonlyMap<string, number> = new Map(),
): TestContext {
  const run = randomBytes(4).toString('hex');
  const makeKey = settings.options.makeKey ?? ((i: number) => `cf${run}-${i}`);
  const received: Array<{ where: string; what: unknown }> = [];
  const needles: Needle[] = [];
  const values: string[] = [];
  const events: SeenEvent[] = [];
  const receive = (where: string, what: unknown) => void received.push({ where, what });
  const provider = subject.provider;
  let finishing: Promise<void> | undefined;
  const ctx: TestContext = {
    resourcesBefore,
    finish: () => {
      finishing ??= (async () => {
        await provider.close().catch(() => {});
        await subject.cleanup?.();
      })();
      return finishing;
    },
    settings,
    subject,
    raw: provider,
    provider: recorder(provider, receive, events),
    key: makeKey,
    values,
    events,
    receive,
    latency: 0,
    value: (label) => {
      const random = randomBytes(10).toString('hex');
      const value = `cfvalue-${label}-${random}`;
      values.push(value);
      needles.push(needleFor(`the value "${label}" (#${values.length})`, value, random));
      return value;
    },
    seed: async (key, value) => {
      if (subject.backend !== undefined) await subject.backend.set(key, value);
      else await provider.set(key, value);
    },
    change: subject.backend ?? {
      set: (key, value) => provider.set(key, value),
      ...(provider.capabilities.delete ? { delete: (key: string) => provider.delete(key) } : {}),
    },
  };
  leakState.set(ctx, { received, needles });
  return ctx;
}

const leakState = new WeakMap<
  TestContext,
  { received: Array<{ where: string; what: unknown }>; needles: Needle[] }
>();

/** Fails when a value of the test appears in anything the test received. */
export function assertNoLeak(ctx: TestContext): void {
  const state = leakState.get(ctx);
  if (state === undefined) return;
  for (const { where, what } of state.received) {
    const leak = findLeak(what, state.needles, where);
    if (leak !== undefined)
      throw new assert.AssertionError({ message: `a secret value leaked: ${leak}`, operator: 'noLeak' });
  }
}

/**
 * The provider as the tests use it: each call goes to the real provider, and what it returns,
 * throws or emits is recorded for the leak scan.
 */
function recorder(
  provider: SecretProvider,
  receive: (where: string, what: unknown) => void,
  events: SeenEvent[],
): SecretProvider {
  const track = <T>(operation: string, result: Promise<T>): Promise<T> =>
    result.then(
      (value) => {
        receive(`the result of ${operation}()`, value);
        return value;
      },
      (error: unknown) => {
        receive(`the error of ${operation}()`, error);
        throw error;
      },
    );
  const call = <T>(operation: string, invoke: () => Promise<T>): Promise<T> => {
    try {
      return track(operation, invoke());
    } catch (error) {
      receive(`the error thrown synchronously by ${operation}()`, error);
      return Promise.reject(error);
    }
  };
  const facade = {
    get name() {
      return provider.name;
    },
    get capabilities() {
      return provider.capabilities;
    },
    get: (key, options) => call('get', () => provider.get(key, options)),
    metadata: (key, options) => call('metadata', () => provider.metadata(key, options)),
    set: (key, value, options) => call('set', () => provider.set(key, value, options)),
    delete: (key, options) => call('delete', () => provider.delete(key, options)),
    keys: (options) => call('keys', () => provider.keys(options)),
    close: () => call('close', () => provider.close()),
    watch: (emitter: SecretEventEmitter, options?: WatchOptions) => {
      emitter.on('*', (type, event) => {
        events.push({ type, event, at: performance.now() });
        receive(`a "${String(type)}" event`, event);
      });
      let handle: ReturnType<SecretProvider['watch']>;
      try {
        handle = provider.watch(emitter, options);
      } catch (error) {
        receive('the error thrown synchronously by watch()', error);
        throw error;
      }
      handle.ready.catch((error: unknown) => receive('the rejection of watch().ready', error));
      return handle;
    },
    [Symbol.asyncDispose]: () => call('[Symbol.asyncDispose]', async () => provider[Symbol.asyncDispose]()),
  } as SecretProvider;
  const has = provider.has;
  if (typeof has === 'function') {
    // Awaited: `has` may answer synchronously, and a synchronous throw becomes a rejection.
    Object.defineProperty(facade, 'has', {
      value: (key: string, options?: OperationOptions) =>
        call('has', async () => has.call(provider, key, options)),
    });
  }
  return facade;
}

/** The provider's `has`, awaited, or `undefined` when it has none. */
export function hasOf(
  provider: SecretProvider,
): ((key: string, options?: OperationOptions) => Promise<boolean>) | undefined {
  const has = provider.has;
  return typeof has === 'function' ? async (key, options) => has.call(provider, key, options) : undefined;
}

/** Awaits a promise that must reject and returns the error. */
export async function rejection(promise: Promise<unknown>, what = 'the call'): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new assert.AssertionError({ message: `expected ${what} to reject, it resolved` });
}

/** Awaits a promise that must reject with a `SecretError` of one of `codes`; returns the error. */
export async function rejectsWith(
  promise: Promise<unknown>,
  codes: SecretErrorCode | readonly SecretErrorCode[],
  what = 'the call',
): Promise<unknown> {
  const error = await rejection(promise, what);
  assertCode(error, codes, what);
  return error;
}

export function assertCode(
  error: unknown,
  code: SecretErrorCode | readonly SecretErrorCode[],
  what = '',
): void {
  const codes = typeof code === 'string' ? [code] : code;
  assert.ok(
    codes.some((c) => isSecretError(error, c)),
    `${what ? `${what}: ` : ''}expected a SecretError with code ${codes.join(' or ')}, got ${describeError(error)}`,
  );
}

/** A short description of an error for assertion messages (codes and names, never messages). */
export function describeError(error: unknown): string {
  if (isSecretError(error)) return `${error.name} ${error.code}`;
  if (error instanceof Error) return `${error.name} (not a SecretError)`;
  return `${typeof error} (not an Error)`;
}

/** Polls `probe` until it answers something other than `undefined`. */
export async function waitUntil<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  message?: () => string,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (performance.now() > deadline)
      throw new assert.AssertionError({ message: message?.() ?? `condition not met within ${timeoutMs} ms` });
    await delay(10);
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function mentions(event: unknown, key: string): boolean {
  const e = event as { key?: string; keys?: readonly string[] };
  return e.key === key || (e.keys?.includes(key) ?? false);
}

export function describeEvents(events: readonly SeenEvent[]): string {
  if (events.length === 0) return 'none';
  return events
    .map(({ type, event }) => {
      const e = event as { key?: string; keys?: readonly string[] };
      return `${type}(${e.key ?? e.keys?.join(',') ?? ''})`;
    })
    .join(', ');
}

/**
 * Waits for an event matching `match` (one that arrived at or after `since`, when given: then
 * how long it took is recorded as the test's detection latency).
 */
export async function waitForEvent(
  ctx: TestContext,
  match: (type: keyof SecretEvents, event: unknown) => boolean,
  what: string,
  since?: number,
): Promise<SeenEvent> {
  const { eventTimeout } = ctx.settings;
  const seen = await waitUntil(
    () => ctx.events.find((e) => (since === undefined || e.at >= since) && match(e.type, e.event)),
    eventTimeout,
    () => `${what} did not arrive within ${eventTimeout} ms; events seen: ${describeEvents(ctx.events)}`,
  );
  if (since !== undefined) ctx.latency = Math.max(ctx.latency, seen.at - since);
  return seen;
}

/** How long a quiet check waits: the configured minimum, or four detection latencies. */
export function quietWindow(ctx: TestContext): number {
  return Math.min(
    Math.max(ctx.settings.quietPeriod, 4 * ctx.latency),
    Math.max(ctx.settings.eventTimeout, ctx.settings.quietPeriod),
  );
}

/**
 * Waits until a quiet window from `since` (default now) has passed and fails if any event but a
 * warning arrived in it. Pass `since` from before a change that must not be reported: a push
 * source reports synchronously, inside the call that made the change.
 */
export async function assertQuiet(
  ctx: TestContext,
  what: string,
  { since = performance.now(), ms = quietWindow(ctx) }: { since?: number; ms?: number } = {},
): Promise<void> {
  await delay(Math.max(0, since + ms - performance.now()));
  const during = ctx.events.filter((e) => e.at >= since && e.type !== 'warning');
  assert.equal(
    during.length,
    0,
    `${what}: expected no event within ${Math.round(ms)} ms, got ${describeEvents(during)}`,
  );
}

/** Fails unless the handle's `done` (when it has one) resolves within the event timeout. */
export async function assertEnded(ctx: TestContext, handle: WatchHandle, what: string): Promise<void> {
  if (handle.done === undefined) return;
  const limit = ctx.settings.eventTimeout;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), limit);
  });
  try {
    const outcome = await Promise.race([handle.done.then(() => 'done' as const), late]);
    assert.equal(outcome, 'done', `${what}: handle.done did not resolve within ${limit} ms`);
  } finally {
    clearTimeout(timer);
  }
}

/** `process.getActiveResourcesInfo()` as counts per type. */
export function activeResources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) counts.set(type, (counts.get(type) ?? 0) + 1);
  return counts;
}
