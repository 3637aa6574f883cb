import { InvalidConfigError } from '@secret-provider/core';
import { settingsOf } from './context.js';
import { type GroupSpec, planGroup, registerGroup } from './group.js';
import { failureGroup } from './groups/failure.js';
import { leaksGroup } from './groups/leaks.js';
import { lifecycleGroup } from './groups/lifecycle.js';
import { deleteGroup, listGroup } from './groups/list-delete.js';
import { checkAndSetGroup, expiryGroup, versionsGroup } from './groups/options.js';
import { readGroup } from './groups/read.js';
import { watchGroup } from './groups/watch.js';
import { writeGroup } from './groups/write.js';
import {
  type ConformanceOptions,
  type ConformanceReport,
  type ConformanceSubject,
  GROUP_NAMES,
  type GroupName,
  type GroupReport,
} from './options.js';

export { clientError } from './groups/failure.js';
export { BAD_KEYS, CAPABILITY_FLAGS } from './groups/read.js';
export type {
  ConformanceBackend,
  ConformanceHooks,
  ConformanceOptions,
  ConformanceReport,
  ConformanceSubject,
  ConformanceTestApi,
  GroupName,
  GroupReport,
  HookName,
  NotRunTest,
  RestoreBackend,
  TestBody,
} from './options.js';
export { GROUP_NAMES } from './options.js';
export { findLeak, type Needle, needleFor } from './scan.js';

const GROUPS: Readonly<Record<GroupName, GroupSpec>> = {
  read: readGroup,
  write: writeGroup,
  list: listGroup,
  delete: deleteGroup,
  watch: watchGroup,
  versions: versionsGroup,
  checkAndSet: checkAndSetGroup,
  expiry: expiryGroup,
  failure: failureGroup,
  leaks: leaksGroup,
  lifecycle: lifecycleGroup,
};

/** The titles of every test of `group`, as the runner reports them. */
export function conformanceTests(group: GroupName): readonly string[] {
  return GROUPS[group].tests.map((t) => t.title);
}

const group =
  (name: GroupName) =>
  <S extends ConformanceSubject>(options: ConformanceOptions<S>): GroupReport =>
    registerGroup(GROUPS[name], options);

/**
 * Reads: seeded values as redacting `Secret`s, `NOT_FOUND` (never `undefined`) for a missing
 * key, `has()`, metadata with a stable version that changes with the value, `INVALID_KEY` for
 * bad keys, aborted signals rejecting with their reason.
 */
export const readConformance = group('read');
/** Writes: round trips seen by the backend, `INVALID_VALUE`, concurrency, tags and content type (or `READ_ONLY`). */
export const writeConformance = group('write');
/** Listing: the names given (no backend prefix), once each, by prefix (or `UNSUPPORTED`). */
export const listConformance = group('list');
/** Deleting: `NOT_FOUND` afterwards and for a missing key (or a typed refusal). */
export const deleteConformance = group('delete');
/** Watching: out-of-band additions, rotations, removals; silence when nothing changes; stopping. */
export const watchConformance = group('watch');
/** `get(key, { version })` reads older versions (or is refused with `UNSUPPORTED`). */
export const versionsConformance = group('versions');
/** `ifVersion` is honoured with `CONFLICT` (or refused with `UNSUPPORTED`), never ignored. */
export const checkAndSetConformance = group('checkAndSet');
/** `expiresAt` is stored and reported (or refused with `UNSUPPORTED`), never ignored. */
export const expiryConformance = group('expiry');
/**
 * Failed backend calls and outages (needs the `failNextCall` and `makeUnreachable` hooks):
 * typed failures, never `NOT_FOUND`, no value in errors, watches that survive, and a watch
 * started during an outage that starts by itself once the backend is back.
 */
export const failureConformance = group('failure');
/** No value in what the provider prints; no timer, socket or handle left after `close()`. */
export const leaksConformance = group('leaks');
/** `close()`: idempotent, `CLOSED` afterwards, watches ended, calls in flight settled. */
export const lifecycleConformance = group('lifecycle');

/**
 * Registers the `SecretProvider` contract tests under the caller's runner, every group of the
 * suite in one `describe`. Groups follow the capabilities the provider declares: where one is
 * absent, its tests check the typed refusal instead. Tests that need a harness hook the caller
 * did not give, and groups switched off with `skip`, are registered as skipped, by name, with
 * the reason, and listed in the returned report.
 *
 * Each group is also exported on its own ({@link readConformance}, {@link watchConformance}, ...)
 * for suites that pick.
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
export function describeProviderConformance<S extends ConformanceSubject>(
  options: ConformanceOptions<S>,
): ConformanceReport {
  const unknown = Object.keys(options.skip ?? {}).filter((name) => !GROUP_NAMES.includes(name as GroupName));
  if (unknown.length > 0) {
    throw new InvalidConfigError(
      {},
      `conformance: unknown group${unknown.length > 1 ? 's' : ''} in skip: ${unknown.join(', ')} (groups: ${GROUP_NAMES.join(', ')})`,
    );
  }
  const settings = settingsOf(options);
  // Planned first: some runners (vitest) call `describe` bodies only after this returns.
  const groups = GROUP_NAMES.map((name) => planGroup(GROUPS[name], options));
  options.test.describe(`SecretProvider conformance: ${options.name}`, () => {
    for (const [i, name] of GROUP_NAMES.entries()) registerGroup(GROUPS[name], options, settings, groups[i]);
  });
  return { name: options.name, groups, notRun: groups.flatMap((g) => g.notRun) };
}

/** One line per group: how many tests run, and which do not, by name and why. */
export function formatConformanceReport(report: ConformanceReport): string {
  const lines = report.groups.map(({ group, run, notRun }) => {
    const skipped = notRun.map((t) => `\n    not run: ${t.test} (${t.reason})`).join('');
    return `  ${group}: ${run.length} run${notRun.length > 0 ? `, ${notRun.length} not run` : ''}${skipped}`;
  });
  return `conformance of ${report.name}\n${lines.join('\n')}`;
}
