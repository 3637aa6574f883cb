import type { SecretProvider } from '@secret-provider/core';

/** A test body as runners call it. */
export type TestBody = () => Promise<void> | void;

/**
 * The parts of a test runner the suite registers under (vitest, jest, mocha, `node:test`).
 * `it.skip` is how tests that cannot run (a harness hook is missing, a group is switched off)
 * are reported: by name, as skipped, never as passed.
 */
export interface ConformanceTestApi {
  describe(name: string, body: () => void): unknown;
  it: ((name: string, body: TestBody, timeout?: number) => unknown) & {
    skip: (name: string, body: TestBody) => unknown;
  };
  beforeEach?(body: TestBody): unknown;
  afterEach?(body: TestBody): unknown;
}

/**
 * The backend behind the provider, reached without the provider, so the suite can check reads
 * and `watch` without trusting the adapter to read back its own writes.
 */
export interface ConformanceBackend {
  /** Stores `value` under `key` the way another client of the backend would. */
  set(key: string, value: string): Promise<void>;
  /** Removes `key`; without it, removals are checked only through the provider. */
  delete?(key: string): Promise<void>;
  /** The value the backend holds for `key`, `undefined` when none; checks writes out of band. */
  read?(key: string): Promise<string | undefined>;
}

/** What the factory returns for each test. Extra fields are handed to the failure hooks. */
export interface ConformanceSubject {
  readonly provider: SecretProvider;
  readonly backend?: ConformanceBackend | undefined;
  /** Called after each test, after the provider is closed. */
  readonly cleanup?: (() => Promise<void> | void) | undefined;
}

/** Restores a backend made unreachable. */
export type RestoreBackend = () => Promise<void> | void;

/** The harness hooks the suite needs for some tests; a test whose hook is missing is not run. */
export interface ConformanceHooks<S extends ConformanceSubject = ConformanceSubject> {
  /**
   * Makes the next call the provider makes to its backend fail. `error` is the kind of error a
   * client library throws: its message, own properties and cause quote the key and the value
   * involved. Throw it from a wrapped client if you can (that is how an adapter that copies a
   * client's error into its own is caught); otherwise fail the call your own way.
   */
  readonly failNextCall?: ((subject: S, error: Error) => Promise<void> | void) | undefined;
  /**
   * Makes the backend unreachable (stop the container, point at a closed port, rename the
   * directory away) until the returned function is called.
   */
  readonly makeUnreachable?: ((subject: S) => Promise<RestoreBackend> | RestoreBackend) | undefined;
}

/** The names of the hooks in {@link ConformanceHooks}. */
export type HookName = keyof ConformanceHooks;

/** The groups of the suite, by capability. */
export type GroupName =
  | 'read'
  | 'write'
  | 'list'
  | 'delete'
  | 'watch'
  | 'versions'
  | 'checkAndSet'
  | 'expiry'
  | 'failure'
  | 'leaks'
  | 'lifecycle';

/** Every group, in the order {@link describeProviderConformance} registers them. */
export const GROUP_NAMES: readonly GroupName[] = Object.freeze([
  'read',
  'write',
  'list',
  'delete',
  'watch',
  'versions',
  'checkAndSet',
  'expiry',
  'failure',
  'leaks',
  'lifecycle',
]);

/** How one group (or the whole suite) is run. */
export interface ConformanceOptions<S extends ConformanceSubject = ConformanceSubject>
  extends ConformanceHooks<S> {
  /** Label of the suite. */
  readonly name: string;
  /** The runner's functions. */
  readonly test: ConformanceTestApi;
  /** Makes a fresh provider (and backend) for each test. */
  readonly create: () => Promise<S> | S;
  /** Valid, fresh keys for this backend. @default random `cf<hex>-<i>` per test */
  readonly makeKey?: ((index: number) => string) | undefined;
  /** How long to wait for a watch event or for a change to become visible. @default 5_000 */
  readonly eventTimeoutMs?: number | undefined;
  /**
   * Shortest time the suite waits to be sure no event arrives. The quiet checks wait at least
   * four times the slowest change detection they measured, so a slow poller gets a longer wait.
   * @default 250
   */
  readonly quietPeriodMs?: number | undefined;
  /** How long sockets and handles may take to go away after `close`. @default 2_000 */
  readonly settleMs?: number | undefined;
  /** Per-test timeout handed to the runner. @default 30_000 */
  readonly testTimeoutMs?: number | undefined;
  /** Concurrent writes in the concurrency test. @default 100 */
  readonly concurrency?: number | undefined;
  /**
   * Groups to leave out, with the reason (reported as skipped, by name, with the reason). For a
   * group that does not apply because a capability is absent, there is nothing to skip: the
   * group then checks the typed refusal.
   */
  readonly skip?: Partial<Record<GroupName, string>> | undefined;
}

/** A test that was registered as not run, and why. */
export interface NotRunTest {
  readonly group: GroupName;
  readonly test: string;
  readonly reason: string;
}

/** What one group registered. */
export interface GroupReport {
  readonly group: GroupName;
  /** Titles of the tests registered to run. */
  readonly run: readonly string[];
  /** Tests registered as skipped, with the reason. */
  readonly notRun: readonly NotRunTest[];
}

/** What the suite registered: which tests run and which do not, by name. */
export interface ConformanceReport {
  readonly name: string;
  readonly groups: readonly GroupReport[];
  /** Every test registered as not run, across groups. */
  readonly notRun: readonly NotRunTest[];
}
