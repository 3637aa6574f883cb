import { inspect } from 'node:util';
import { createEmitter, type SecretEvents } from '@secret-provider/core';
import { VaultDouble, type VaultDoubleOptions } from '@secret-provider/doubles/vault';
import { type ManualClock, VaultProvider, type VaultProviderOptions } from '@secret-provider/vault';

/** One recorded event. */
export interface Recorded {
  readonly type: keyof SecretEvents;
  readonly event: SecretEvents[keyof SecretEvents];
}

/** A double, a provider on it (token auth with the root token unless told), and their events. */
export interface Setup {
  readonly double: VaultDouble;
  readonly provider: VaultProvider;
  readonly events: Recorded[];
  readonly clock: ManualClock | undefined;
  close(): Promise<void>;
}

export async function setup(
  options: {
    double?: VaultDoubleOptions;
    provider?: (double: VaultDouble) => VaultProviderOptions;
    clock?: ManualClock;
    watch?: boolean;
  } = {},
): Promise<Setup> {
  const clock = options.clock;
  const double = await VaultDouble.start({ ...(clock ? { now: () => clock.now() } : {}), ...options.double });
  const extra = options.provider?.(double) ?? {};
  const provider = new VaultProvider({
    endpoint: double.url,
    auth: { method: 'token', token: double.rootToken },
    env: {},
    // These tests are about Vault's protocol: every get reaches the double unless a test turns
    // the (default) cache on; the cache's own tests do.
    cache: false,
    retry: { baseDelayMs: 5, maxDelayMs: 50 },
    ...(clock ? { clock } : {}),
    ...extra,
  });
  const events: Recorded[] = [];
  const emitter = createEmitter();
  emitter.on('*', (type, event) => events.push({ type, event } as Recorded));
  const handle = options.watch === false ? undefined : provider.watch(emitter);
  await handle?.ready;
  return {
    double,
    provider,
    events,
    clock,
    async close() {
      // The provider first: what it reports while closing (lease revocations) reaches the watcher.
      await provider.close();
      await handle?.stop();
      await double.close();
    },
  };
}

/** Polls `probe` (real time) until it returns something other than undefined. */
export async function waitFor<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 5_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe();
    if (found !== undefined && found !== false) return found;
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Awaits a promise that must reject and returns the error. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** Every printable form of `thing`, for leak scans. */
export function forms(thing: unknown): string[] {
  const out = [inspect(thing, { depth: Number.POSITIVE_INFINITY, showHidden: true })];
  try {
    out.push(JSON.stringify(thing) ?? '');
  } catch {
    // circular: inspect covers it
  }
  if (thing instanceof Error) out.push(String(thing), thing.stack ?? '');
  return out;
}

/** The needles (tokens, values) found in any printable form of `things`. */
export function leaks(things: readonly unknown[], needles: readonly string[]): string[] {
  const found = new Set<string>();
  for (const thing of things) {
    for (const form of forms(thing))
      for (const needle of needles) if (needle !== '' && form.includes(needle)) found.add(needle);
  }
  return [...found];
}

/**
 * Settles `promise` while moving a simulated clock forward, for calls that back off on that clock
 * (429, 503, connection errors). Time moves only to the next pending timer, and only after a
 * moment of real time without progress, so requests in flight finish at the time they started.
 */
export async function settle<T>(promise: Promise<T>, clock: ManualClock, maxSteps = 5_000): Promise<T> {
  let done = false;
  promise.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  for (let i = 0; !done && i < maxSteps; i++) {
    await new Promise((resolve) => setTimeout(resolve, 3));
    if (!done) await clock.advanceToNext();
  }
  return promise;
}

/**
 * Records unhandled promise rejections from here to the end of the test file, and fails the
 * file's last hook if there were any: every fault must be survived without a stray rejection.
 */
export function trackUnhandledRejections(hooks: {
  beforeAll(fn: () => void): void;
  afterAll(fn: () => void): void;
}): void {
  const seen: unknown[] = [];
  const record = (reason: unknown) => seen.push(reason);
  hooks.beforeAll(() => {
    process.on('unhandledRejection', record);
  });
  hooks.afterAll(() => {
    process.off('unhandledRejection', record);
    if (seen.length > 0) throw new Error(`${seen.length} unhandled rejection(s) during the file`);
  });
}
