// What the model-based runs share: settings from the environment, the values a run writes, the
// observer of errors, events, warnings and unhandled rejections, and the runner that turns a list
// of steps into a fast-check property (and replays a shrunk list as a plain test).
import { inspect } from 'node:util';
import {
  isSecretError,
  ProviderClosedError,
  ProviderUnavailableError,
  SecretError,
  type SecretErrorCode,
  SecretNotFoundError,
} from '@secret-provider/core';
import { expectNoLeak } from '@secret-provider/testing';
import fc from 'fast-check';

function positiveNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
}

/**
 * Settings of a run. The default run uses one fixed seed, so the suite explores the same
 * operations every time (a CI run is reproducible); `MODEL_SEED=random` explores new ones, and
 * `MODEL_SEED=<n>` replays a seed. `MODEL_RUNS` multiplies the number of runs of
 * every property (a longer run: `MODEL_RUNS=20`), `MODEL_PATH` replays one counterexample path
 * (with `MODEL_SEED` and a test name filter), `MODEL_SETTLE_MS` is how long a watched file
 * provider may take to converge.
 */
export const settings = {
  seed:
    process.env.MODEL_SEED === undefined || process.env.MODEL_SEED === ''
      ? 20_261_203
      : process.env.MODEL_SEED === 'random'
        ? (Date.now() ^ (Math.random() * 0x7fffffff)) | 0
        : Number(process.env.MODEL_SEED) | 0,
  factor: positiveNumber('MODEL_RUNS', 1),
  path: process.env.MODEL_PATH === '' ? undefined : process.env.MODEL_PATH,
  settleMs: positiveNumber('MODEL_SETTLE_MS', 2_000),
};

/** A key's state: its value, or `null` when it does not exist. */
export type State = string | null;

/** Suffixes that make values awkward for files, parsers and encoders. */
export const TAILS = ['', '\n', ' ', '"q"', '\\', 'ü€', '=x', ' #c', '\r\n', '$' + '{HOME}', '\t', '\r'];

/**
 * The values of one run. Each is distinctive (a leak is found by substring) and unique (a read
 * tells which write it came from). `tail` indexes {@link TAILS}; past its end the value is empty.
 */
export class ValueBook {
  #n = 0;
  readonly #values: string[] = [];

  next(tail: number, pad = 0): string {
    if (tail >= TAILS.length) return '';
    this.#n++;
    const token = `Qz7${this.#n.toString(36).padStart(4, '0')}Xw9K`;
    const value = `${token}${'x'.repeat(pad)}${TAILS[tail]}`;
    // The token alone too: a value cut at its first awkward character still leaks.
    this.#values.push(value, token);
    return value;
  }

  /** Every value (and value token) written so far. */
  all(): readonly string[] {
    return this.#values;
  }

  get count(): number {
    return this.#n;
  }
}

/** A short, readable name of a state for failure messages (values here are test data). */
export function show(state: unknown): string {
  if (state === null) return 'absent';
  if (typeof state === 'string') return JSON.stringify(state);
  if (state instanceof Error) return `${state.name}${isSecretError(state) ? `(${state.code})` : ''}`;
  return inspect(state, { depth: 2, breakLength: Number.POSITIVE_INFINITY });
}

/** A check of the model failed: fast-check shrinks the steps that led here. */
export class ModelViolation extends Error {
  override name = 'ModelViolation';
}

export function violation(message: string): never {
  throw new ModelViolation(message);
}

/** Records what a run must never produce, and what it must scan for leaked values. */
export class Observer {
  readonly errors: unknown[] = [];
  readonly events: unknown[] = [];
  readonly unhandled: unknown[] = [];
  #checkedErrors = 0;
  #checkedEvents = 0;
  readonly #onUnhandled = (reason: unknown) => {
    this.unhandled.push(reason);
  };
  readonly #onWarning = (warning: Error) => {
    this.events.push(warning);
  };

  start(): void {
    process.on('unhandledRejection', this.#onUnhandled);
    process.on('warning', this.#onWarning);
  }

  stop(): void {
    process.off('unhandledRejection', this.#onUnhandled);
    process.off('warning', this.#onWarning);
  }

  error(error: unknown): void {
    this.errors.push(error);
  }

  event(event: unknown): void {
    this.events.push(event);
  }

  /** No value in any error or event recorded since the last check; no unhandled rejection. */
  check(book: ValueBook): void {
    if (this.unhandled.length > 0) violation(`unhandled rejection: ${show(this.unhandled[0])}`);
    try {
      expectNoLeak(this.errors.slice(this.#checkedErrors), book.all(), { encodings: true });
      expectNoLeak(this.events.slice(this.#checkedEvents), book.all(), { encodings: true });
    } catch (error) {
      violation((error as Error).message);
    }
    this.#checkedErrors = this.errors.length;
    this.#checkedEvents = this.events.length;
  }

  /** Everything recorded against every value of the run (later values against earlier events too). */
  checkAll(book: ValueBook): void {
    this.#checkedErrors = 0;
    this.#checkedEvents = 0;
    this.check(book);
  }
}

/** Lets every pending reaction and I/O callback of the memory providers run. */
export async function drain(turns = 2): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

export const realPause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * How an operation is aborted: not at all, before it is called, right after it is called, or a
 * little later (after a turn of the event loop, or a millisecond on real files).
 */
export type AbortMode = 'none' | 'before' | 'during' | 'late';

/** Abort reasons of several kinds: the contract says any reason is passed through as it is. */
export function abortReason(kind: number): unknown {
  switch (kind % 4) {
    case 0:
      return new Error('caller gave up');
    case 1:
      return new DOMException('This operation was aborted', 'AbortError');
    case 2:
      return new DOMException('The operation timed out.', 'TimeoutError');
    default:
      return { reason: 'shutdown' };
  }
}

const CLASSES: Partial<Record<SecretErrorCode, abstract new (...args: never[]) => SecretError>> = {
  NOT_FOUND: SecretNotFoundError,
  UNAVAILABLE: ProviderUnavailableError,
  CLOSED: ProviderClosedError,
};

/** The code of a typed failure; anything that is not a `SecretError` of its code's class is a violation. */
export function codeOf(error: unknown, what: string): SecretErrorCode {
  if (!isSecretError(error) || !(error instanceof SecretError))
    violation(`${what} rejected with an untyped ${show(error)}`);
  const Class = CLASSES[error.code];
  if (Class !== undefined && !((error as unknown) instanceof Class))
    violation(`${what} rejected with code ${error.code} but not its class (${error.name})`);
  if (typeof error.message !== 'string' || error.message === '')
    violation(`${what} rejected with an empty message`);
  return error.code;
}

/** Counts of what the runs of one test file did, printed at the end. */
export class Tally {
  readonly #started = performance.now();
  readonly #byKind = new Map<string, number>();
  readonly #byVariant = new Map<string, number>();
  operations = 0;
  runs = 0;

  count(variant: string, kind: string): void {
    this.operations++;
    this.#byKind.set(kind, (this.#byKind.get(kind) ?? 0) + 1);
    this.#byVariant.set(variant, (this.#byVariant.get(variant) ?? 0) + 1);
  }

  report(title: string): string {
    const seconds = ((performance.now() - this.#started) / 1000).toFixed(1);
    const kinds = [...this.#byKind].map(([k, n]) => `${k} ${n}`).join(', ');
    const variants = [...this.#byVariant].map(([k, n]) => `${k} ${n}`).join(', ');
    return `${title}: seed ${settings.seed}, ${this.runs} runs, ${this.operations} operations in ${seconds} s\n  by kind: ${kinds}\n  by variant: ${variants}`;
  }
}

/** One system under test with its model: what a run of steps needs. */
export interface Harness<Step> {
  /** Whether `step` makes sense now (fast-check skips it otherwise, and so does a replay). */
  applicable(step: Step): boolean;
  run(step: Step): Promise<void>;
  /** Final checks: everything in flight settles, nothing leaked. */
  finish(): Promise<void>;
  dispose(): Promise<void>;
}

class StepCommand<Step> implements fc.AsyncCommand<Harness<Step>, Harness<Step>> {
  constructor(readonly step: Step) {}
  check(model: Readonly<Harness<Step>>): boolean {
    return model.applicable(this.step);
  }
  async run(model: Harness<Step>): Promise<void> {
    await model.run(this.step);
  }
  toString(): string {
    return JSON.stringify(this.step);
  }
}

/** Runs `steps` against a fresh harness, as a regression test replays a shrunk counterexample. */
export async function replay<Step>(
  create: () => Promise<Harness<Step>>,
  steps: readonly Step[],
): Promise<void> {
  const harness = await create();
  try {
    for (const step of steps) if (harness.applicable(step)) await harness.run(step);
    await harness.finish();
  } finally {
    await harness.dispose();
  }
}

/** A fast-check property over random step lists of one system. */
export async function checkModel<Step>(options: {
  readonly name: string;
  readonly step: fc.Arbitrary<Step>;
  readonly create: () => Promise<Harness<Step>>;
  readonly runs: number;
  readonly maxSteps: number;
  readonly tally: Tally;
  /** Stop shrinking after this long (a failure is still reported, with the smallest list so far). */
  readonly shrinkBudgetMs?: number;
}): Promise<void> {
  const commands = fc.commands([options.step.map((step) => new StepCommand(step))], {
    maxCommands: options.maxSteps,
    size: 'max',
  });
  // Shrinking replays failing lists; past the budget every further candidate is skipped, so the
  // smallest list found so far is reported instead of shrinking for many minutes.
  const budget = (options.shrinkBudgetMs ?? 60_000) * settings.factor;
  let firstFailure: number | undefined;
  const property = fc.asyncProperty(commands, async (cmds) => {
    fc.pre(firstFailure === undefined || performance.now() - firstFailure < budget);
    options.tally.runs++;
    const harness = await options.create();
    try {
      await fc.asyncModelRun(() => ({ model: harness, real: harness }), cmds);
      await harness.finish();
    } catch (error) {
      firstFailure ??= performance.now();
      throw error;
    } finally {
      await harness.dispose();
    }
  });
  const numRuns = Math.max(1, Math.round(options.runs * settings.factor));
  // Each property draws its own sequence from the run's seed.
  let seed = settings.seed;
  for (const char of options.name) seed = (Math.imul(seed, 31) + char.charCodeAt(0)) | 0;
  const details = await fc.check(property, {
    seed,
    numRuns,
    ...(settings.path === undefined ? {} : { path: settings.path }),
  });
  if (details.failed) {
    const shrunk = details.counterexample?.[0];
    // fast-check hands back its wrappers; the steps that ran are the counterexample.
    const wrappers = (shrunk === undefined ? [] : [...shrunk]) as unknown as Array<{
      cmd?: StepCommand<Step>;
      hasRan?: boolean;
      step?: Step;
    }>;
    const steps = wrappers.filter((w) => w.hasRan !== false).map((w) => w.cmd?.step ?? w.step);
    throw new ModelViolation(
      [
        `model "${options.name}" failed after ${details.numRuns} runs (run seed ${settings.seed}, property seed ${details.seed}, path "${details.counterexamplePath}", shrunk ${details.numShrinks} times)`,
        `replay: MODEL_SEED=${settings.seed} MODEL_PATH=${details.counterexamplePath} npx vitest run integration-tests/model -t '${options.name}'`,
        `steps: ${JSON.stringify(steps)}`,
        `error: ${details.errorInstance instanceof Error ? (details.errorInstance.stack ?? details.errorInstance.message) : String(details.errorInstance)}`,
      ].join('\n'),
    );
  }
}
