// Vault-specific helpers; the shared ones (`rejection`, `waitFor`, `record`, `expectNoLeak`...)
// come from @secret-provider/testing.
import { VaultDouble, type VaultDoubleOptions } from '@secret-provider/doubles/vault';
import { type Recorded, record } from '@secret-provider/testing';
import { type ManualClock, VaultProvider, type VaultProviderOptions } from '@secret-provider/vault';

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
  const recorded = options.watch === false ? undefined : await record(provider);
  const events: Recorded[] = recorded?.events ?? [];
  const handle = recorded?.handle;
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
