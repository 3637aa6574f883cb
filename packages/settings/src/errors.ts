import { SecretError, type SecretErrorCode } from '@secret-provider/core';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { SettingsProblem } from './types.js';

/**
 * A load, refresh or update that failed, with every problem found at once. The message and
 * `problems` name fields, keys, providers and why; never a value.
 *
 * `code` is `INVALID_VALUE` when any value failed validation or parsing, else the code of the
 * first read failure (`UNAVAILABLE`, `ACCESS_DENIED`, ...); `retryable` is true only when every
 * problem is a retryable read failure.
 */
export class SettingsError extends SecretError {
  readonly problems: readonly SettingsProblem[];

  constructor(settings: string, what: string, problems: readonly SettingsProblem[]) {
    const readFailures = problems.filter((problem) => problem.error !== undefined);
    const code: SecretErrorCode =
      readFailures.length === problems.length && readFailures[0]?.error !== undefined
        ? readFailures[0].error.code
        : 'INVALID_VALUE';
    const retryable = problems.length > 0 && problems.every((problem) => problem.error?.retryable === true);
    const lines = problems.map((problem) => `  - ${describeProblem(problem)}`);
    super(
      code,
      `settings "${settings}": ${what} failed, ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${lines.join('\n')}`,
      { provider: settings, operation: 'refresh', retryable, cause: readFailures[0]?.error },
    );
    this.name = 'SettingsError';
    this.problems = Object.freeze(problems.map((problem) => Object.freeze({ ...problem })));
  }

  override toJSON(): Record<string, unknown> {
    return {
      ...super.toJSON(),
      problems: this.problems.map(({ error, ...rest }) => ({ ...rest, error: error?.toJSON() })),
    };
  }
}

/** One problem on one line: field, key, provider and why. No value. */
export function describeProblem(problem: SettingsProblem): string {
  const where = [
    problem.key === undefined ? undefined : `key "${problem.key}"`,
    problem.provider === undefined ? undefined : `provider "${problem.provider}"`,
  ].filter((part) => part !== undefined);
  const field = problem.field === '' ? '(settings object)' : problem.field;
  return `${field}${where.length > 0 ? ` (${where.join(', ')})` : ''}: ${problem.reason}`;
}

/** Issue fields schema libraries attach that describe the schema, not the input. */
const SAFE_NUMBERS = ['minimum', 'maximum', 'size', 'length'] as const;
const MAX_EXPECTED_LENGTH = 120;

/** The path of an issue as plain keys. */
export function issuePath(issue: StandardSchemaV1.Issue): PropertyKey[] {
  return (issue.path ?? []).map((segment) =>
    typeof segment === 'object' && segment !== null ? (segment as StandardSchemaV1.PathSegment).key : segment,
  );
}

/**
 * A value-free description of an issue: the library's code (zod `code`, valibot `type`) and what
 * the schema expected. The issue's `message` is dropped: libraries put the received input in it
 * (valibot: `received "hunter2"`) and users' refinements may too. Valibot's `received` and
 * zod's `input` are dropped for the same reason. The names of unrecognised keys (zod
 * `unrecognized_keys`) are listed only with `namesKeys`, for an object the settings assembled
 * from their own field names; inside a secret JSON document they are part of the secret.
 */
export function describeIssue(
  issue: StandardSchemaV1.Issue,
  options: { readonly namesKeys?: boolean } = {},
): { code: string; reason: string } {
  const fields = issue as unknown as Record<string, unknown>;
  const code =
    typeof fields.code === 'string' ? fields.code : typeof fields.type === 'string' ? fields.type : 'invalid';
  const parts: string[] = [];
  // zod: `expected` is a type name; valibot: the schema's expectation (`>=8`, `"a" | "b"`), from
  // the schema's definition, never from the input.
  if (typeof fields.expected === 'string' && fields.expected.length <= MAX_EXPECTED_LENGTH) {
    parts.push(`expected ${fields.expected}`);
  }
  if (typeof fields.format === 'string') parts.push(`format ${fields.format}`);
  // zod `invalid_value`: the options the schema allows (its own constants).
  if (Array.isArray(fields.values) && fields.values.length <= 20 && fields.values.every(isPrimitive)) {
    parts.push(
      `one of ${fields.values.map((option) => JSON.stringify(option) ?? String(option)).join(' | ')}`,
    );
  }
  for (const name of SAFE_NUMBERS) {
    const value = fields[name];
    if (typeof value === 'number' || typeof value === 'bigint') parts.push(`${name} ${String(value)}`);
  }
  if (typeof fields.origin === 'string' && parts.length > 0) parts.push(`(${fields.origin})`);
  if (
    options.namesKeys === true &&
    Array.isArray(fields.keys) &&
    fields.keys.every((key) => typeof key === 'string')
  ) {
    parts.push(`keys ${fields.keys.join(', ')}`);
  }
  return { code, reason: parts.length > 0 ? `${code}: ${parts.join(' ')}` : code };
}

function isPrimitive(value: unknown): boolean {
  return value === null || ['string', 'number', 'boolean'].includes(typeof value);
}
