import { runWithProvider, type Settings, settingsOf, type TestContext } from './context.js';
import type {
  ConformanceOptions,
  ConformanceSubject,
  GroupName,
  GroupReport,
  HookName,
  NotRunTest,
} from './options.js';

/** One test of a group. */
export interface TestSpec {
  readonly title: string;
  /** Harness hooks the test cannot run without. */
  readonly needs?: readonly HookName[] | undefined;
  readonly body: (ctx: TestContext) => Promise<void>;
}

/** A group of tests about one capability. */
export interface GroupSpec {
  readonly name: GroupName;
  readonly tests: readonly TestSpec[];
}

/** Which tests of `spec` run, and which do not and why; decided before anything is registered. */
export function planGroup<S extends ConformanceSubject>(
  spec: GroupSpec,
  options: ConformanceOptions<S>,
): GroupReport {
  const run: string[] = [];
  const notRun: NotRunTest[] = [];
  const switchedOff = options.skip?.[spec.name];
  for (const { title, needs } of spec.tests) {
    const missing = (needs ?? []).filter((hook) => typeof options[hook] !== 'function');
    const reason =
      switchedOff !== undefined
        ? `group switched off: ${switchedOff}`
        : missing.length > 0
          ? `needs the harness hook${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`
          : undefined;
    if (reason === undefined) run.push(title);
    else notRun.push({ group: spec.name, test: title, reason });
  }
  return { group: spec.name, run, notRun };
}

/**
 * Registers a group under the caller's runner, as planned by {@link planGroup}. Tests whose
 * hooks the harness lacks, and every test of a group the caller switched off, are registered
 * with the runner's `skip` and the reason in their title, so they are never counted as passed.
 */
export function registerGroup<S extends ConformanceSubject>(
  spec: GroupSpec,
  options: ConformanceOptions<S>,
  settings: Settings = settingsOf(options),
  plan: GroupReport = planGroup(spec, options),
): GroupReport {
  const { test } = options;
  test.describe(spec.name, () => {
    for (const { title, body } of spec.tests) {
      const notRun = plan.notRun.find((t) => t.test === title);
      if (notRun !== undefined) {
        // Reported by the caller's runner as skipped, with the reason in its title.
        const register = test.it.skip;
        register(`${title} [not run: ${notRun.reason}]`, () => {});
        continue;
      }
      test.it(title, () => runWithProvider(settings, body), settings.timeout);
    }
  });
  return plan;
}
