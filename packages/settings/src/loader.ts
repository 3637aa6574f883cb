import { isSecretError, Secret, type SecretError, type SecretProvider } from '@secret-provider/core';
import { toSecretError } from '@secret-provider/core/adapter';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { type Declared, declaredTree, publicPath } from './declared.js';
import { describeIssue, issuePath, SettingsError } from './errors.js';
import { isRecord, type PlannedField } from './fields.js';
import { seal, setPath, startsWith } from './snapshot.js';
import type { SettingsOf, SettingsProblem } from './types.js';

/** What a transaction does: the first load, an explicit refresh, or a live reload. */
export type Mode = 'load' | 'refresh' | 'live';

/** How a failure of `mode` is named in messages. */
export function modeName(mode: Mode): string {
  return mode === 'live' ? 'update' : mode;
}

/** What was last read for one field. The text stays wrapped: this object may be inspected. */
export interface RawValue {
  readonly found: boolean;
  readonly text: Secret<string> | undefined;
  /** The `Secret` handed to the schema for a secret text field, reused while the value is unchanged. */
  handed: Secret<string> | undefined;
}

/** The outcome of reading one field. */
export type ReadOutcome =
  | { readonly found: true; readonly secret: Secret<string> }
  | { readonly found: false }
  | { readonly error: SecretError };

/** A field that could not be read, with why. */
export interface ReadFailure {
  readonly field: PlannedField;
  readonly error: SecretError;
}

export interface LoaderOptions<S extends StandardSchemaV1> {
  readonly name: string;
  readonly schema: S;
  readonly fields: readonly PlannedField[];
  readonly describeIssue: ((issue: StandardSchemaV1.Issue) => string | undefined) | undefined;
  readonly emptyStringAsUndefined: boolean;
}

/**
 * Loading and validation: reads the routed keys, assembles the schema's input, validates it as
 * one snapshot and turns issues into value-free problems. Holds no state between transactions;
 * the settings keep the last good raw values and snapshot.
 */
export class SnapshotLoader<S extends StandardSchemaV1> {
  readonly #name: string;
  readonly #schema: S;
  readonly #fields: readonly PlannedField[];
  readonly #describeIssue: LoaderOptions<S>['describeIssue'];
  readonly #emptyAsUndefined: boolean;
  /** The names that may be shown in problems and snapshot views. */
  readonly #declared: Declared;

  constructor(options: LoaderOptions<S>) {
    this.#name = options.name;
    this.#schema = options.schema;
    this.#fields = options.fields;
    this.#describeIssue = options.describeIssue;
    this.#emptyAsUndefined = options.emptyStringAsUndefined;
    this.#declared = declaredTree(options.fields);
  }

  /**
   * Reads `targets`: one batch per provider (`getMany`; key by key when it has none or the batch
   * fails), each key once however many fields share it,
   * and merges what was read into a copy of `previous`. Unchanged values keep their `RawValue`,
   * so that a `Secret` handed to the schema stays the same object while its value does.
   */
  async read(
    targets: readonly PlannedField[],
    previous: ReadonlyMap<number, RawValue>,
    signal: AbortSignal,
  ): Promise<{ next: Map<number, RawValue>; failures: ReadFailure[] }> {
    const outcomes = await readAll(targets, signal);
    const next = new Map(previous);
    const failures: ReadFailure[] = [];
    for (const field of targets) {
      const outcome = outcomes.get(field.index);
      if (outcome === undefined) continue;
      if ('error' in outcome) {
        failures.push({ field, error: outcome.error });
        continue;
      }
      const read = this.#rawOf(outcome);
      const last = previous.get(field.index);
      next.set(field.index, last !== undefined && sameRaw(last, read) ? last : read);
    }
    return { next, failures };
  }

  /** The problem that reports a read failure. */
  problemOfFailure({ field, error }: ReadFailure): SettingsProblem {
    return {
      field: field.name,
      key: field.key,
      provider: field.providerName,
      code: error.code,
      reason: `${error.code}: ${error.message}`,
      error,
    };
  }

  /**
   * Validates the input assembled from `raw` and resolves the sealed snapshot; throws a
   * {@link SettingsError} listing `earlier` problems (read failures, whose fields are left out of
   * `raw`) and every new one.
   */
  async validate(
    raw: ReadonlyMap<number, RawValue>,
    mode: Mode,
    earlier: readonly SettingsProblem[],
  ): Promise<SettingsOf<S>> {
    const { input, problems: parseProblems } = this.#buildInput(raw);
    const problems = [...earlier, ...parseProblems];
    const unreadable = new Set(problems.map((problem) => problem.field));
    let result: StandardSchemaV1.Result<unknown>;
    try {
      result = await this.#schema['~standard'].validate(input);
    } catch (error) {
      problems.push({
        field: '',
        code: 'SCHEMA_THREW',
        reason: `SCHEMA_THREW: the schema threw ${error instanceof Error ? error.name : typeof error}`,
      });
      throw new SettingsError(this.#name, modeName(mode), problems);
    }
    if (result.issues !== undefined) {
      for (const issue of result.issues) {
        const problem = this.#problemOf(issue, raw);
        const reported = [...unreadable].some(
          (name) => problem.field === name || problem.field.startsWith(`${name}.`),
        );
        // Entries of one document masked alike are one problem: how many failed is content too.
        if (!reported && !problems.some((known) => sameProblem(known, problem))) problems.push(problem);
      }
    }
    if (problems.length > 0 || result.issues !== undefined) {
      throw new SettingsError(this.#name, modeName(mode), problems);
    }
    return seal(result.value, this.#name, this.#declared) as SettingsOf<S>;
  }

  #rawOf(outcome: { found: true; secret: Secret<string> } | { found: false }): RawValue {
    if (!outcome.found) return { found: false, text: undefined, handed: undefined };
    // An empty string is then "not set", as an empty environment variable usually means.
    if (this.#emptyAsUndefined && outcome.secret.reveal() === '') {
      return { found: false, text: undefined, handed: undefined };
    }
    return { found: true, text: outcome.secret, handed: undefined };
  }

  #buildInput(raw: ReadonlyMap<number, RawValue>): {
    input: Record<string, unknown>;
    problems: SettingsProblem[];
  } {
    const input: Record<string, unknown> = {};
    const problems: SettingsProblem[] = [];
    for (const field of this.#fields) {
      const value = raw.get(field.index);
      if (field.skip || value === undefined || !value.found || value.text === undefined) {
        if (field.hasDefault)
          setPath(input, field.path, field.secret ? wrapStrings(field.defaultValue) : field.defaultValue);
        continue;
      }
      if (field.format === 'json') {
        let parsed: unknown;
        try {
          parsed = JSON.parse(value.text.reveal());
        } catch {
          // V8's message quotes the start of the input and gives a position: neither is passed on.
          problems.push({
            field: field.name,
            key: field.key,
            provider: field.providerName,
            code: 'INVALID_JSON',
            reason: 'INVALID_JSON: the value is not a valid JSON document',
          });
          continue;
        }
        setPath(input, field.path, field.secret ? wrapStrings(parsed) : parsed);
        continue;
      }
      if (field.secret) {
        if (value.handed === undefined || value.handed.disposed) {
          value.handed = new Secret(value.text.reveal(), value.text.metadata);
        }
        setPath(input, field.path, value.handed);
      } else {
        setPath(input, field.path, value.text.reveal());
      }
    }
    return { input, problems };
  }

  #problemOf(issue: StandardSchemaV1.Issue, raw: ReadonlyMap<number, RawValue>): SettingsProblem {
    const path = issuePath(issue).map(String);
    // The field holding the issue (the issue is at the field or inside its JSON document) ...
    const owner = this.#fields.find((field) => startsWith(path, field.path));
    // Outside every field, the object was assembled from the settings' own field names.
    const described = describeIssue(issue, { namesKeys: owner === undefined });
    const custom = this.#describeIssue?.(issue);
    const reason = custom ?? described.reason;
    const name = publicPath(path, this.#declared).join('.');
    if (owner !== undefined) {
      const value = raw.get(owner.index);
      const atField = path.length === owner.path.length;
      const missing = (value === undefined || !value.found) && !owner.hasDefault && atField;
      // The usual mistake with secret fields: a string schema for what arrives as a Secret.
      const hint =
        owner.secret && owner.format === 'text' && !missing && atField && /type|string/.test(described.code)
          ? ' (a secret field reaches the schema as a Secret<string>: validate it with a custom schema and isSecretString)'
          : '';
      const absent = owner.skip
        ? 'the field is skipped'
        : this.#emptyAsUndefined
          ? 'the key does not exist or is empty'
          : 'the key does not exist';
      return {
        field: name,
        key: owner.skip ? undefined : owner.key,
        provider: owner.skip ? undefined : owner.providerName,
        code: missing ? 'MISSING' : described.code,
        reason: missing ? `MISSING: ${absent} (${reason})` : `${reason}${hint}`,
      };
    }
    // ... or the fields below an object the settings assembled, or the whole object.
    const below = this.#fields.filter((field) => startsWith(field.path, path) && !field.skip);
    return {
      field: name,
      code: described.code,
      reason: below.length > 0 ? `${reason} (keys ${below.map((f) => `"${f.key}"`).join(', ')})` : reason,
    };
  }
}

/**
 * Reads every routed key once: one `getMany` per provider where it has one (a batch read where
 * the backend has one), else one `get` per key.
 */
async function readAll(
  fields: readonly PlannedField[],
  signal: AbortSignal,
): Promise<Map<number, ReadOutcome>> {
  const keysOf = new Map<SecretProvider, Set<string>>();
  for (const field of fields) {
    if (field.provider === undefined) continue;
    let keys = keysOf.get(field.provider);
    if (keys === undefined) {
      keys = new Set();
      keysOf.set(field.provider, keys);
    }
    keys.add(field.key);
  }
  const read = new Map<SecretProvider, Map<string, ReadOutcome>>();
  await Promise.all(
    [...keysOf].map(async ([provider, keys]) => {
      read.set(provider, await readProvider(provider, [...keys], signal));
    }),
  );
  const outcomes = new Map<number, ReadOutcome>();
  for (const field of fields) {
    const outcome = field.provider === undefined ? undefined : read.get(field.provider)?.get(field.key);
    if (outcome !== undefined) outcomes.set(field.index, outcome);
  }
  return outcomes;
}

async function readProvider(
  provider: SecretProvider,
  keys: readonly string[],
  signal: AbortSignal,
): Promise<Map<string, ReadOutcome>> {
  const outcomes = new Map<string, ReadOutcome>();
  if (typeof provider.getMany === 'function' && keys.length > 1) {
    try {
      const found = await provider.getMany(keys, { signal });
      for (const key of keys) {
        const secret = found.get(key);
        outcomes.set(key, secret === undefined ? { found: false } : { found: true, secret });
      }
      return outcomes;
    } catch {
      if (signal.aborted) throw signal.reason;
      // A failed batch does not say which keys failed: each field's problem must name its own,
      // so the keys are read again one by one.
    }
  }
  await Promise.all(
    keys.map(async (key) => {
      outcomes.set(key, await readOne(provider, key, signal));
    }),
  );
  return outcomes;
}

async function readOne(provider: SecretProvider, key: string, signal: AbortSignal): Promise<ReadOutcome> {
  try {
    return { found: true, secret: await provider.get(key, { signal }) };
  } catch (error) {
    if (isSecretError(error, 'NOT_FOUND')) return { found: false };
    // The deadline's own error (or the caller's abort) ends the whole transaction.
    if (signal.aborted) throw signal.reason;
    return { error: toSecretError(error, { provider: provider.name, key, operation: 'get' }) };
  }
}

/** Whether two reads of a field hold the same thing (compared without revealing either). */
export function sameRaw(a: RawValue | undefined, b: RawValue | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.found !== b.found) return false;
  if (a.text === undefined || b.text === undefined) return a.text === b.text;
  return Secret.equals(a.text, b.text);
}

function sameProblem(a: SettingsProblem, b: SettingsProblem): boolean {
  return (
    a.field === b.field &&
    a.key === b.key &&
    a.provider === b.provider &&
    a.code === b.code &&
    a.reason === b.reason
  );
}

/** Wraps every string of a value (a parsed JSON document, a default) in a `Secret`. */
function wrapStrings(value: unknown): unknown {
  if (typeof value === 'string') return new Secret(value);
  if (Array.isArray(value)) return value.map(wrapStrings);
  if (isRecord(value) && !Secret.isSecret(value) && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, wrapStrings(inner)]));
  }
  return value;
}
