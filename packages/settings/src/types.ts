import type { Secret, SecretError, SecretProvider, SecretValue } from '@secret-provider/core';
import type { Clock } from '@secret-provider/core/adapter';
import type { StandardSchemaV1 } from '@standard-schema/spec';

/**
 * How a key is derived from a field's path when the field names none.
 *
 * - `'SCREAMING_SNAKE'` (default): every path segment is split into words at case changes and
 *   non-alphanumerics, upper-cased and joined with `_`: `dbPassword` -> `DB_PASSWORD`,
 *   `db.password` -> `DB_PASSWORD`, `apiURL` -> `API_URL`, `oauth2Token` -> `OAUTH2_TOKEN`.
 * - `'kebab'`: the same words lower-cased and joined with `-` (names Azure Key Vault accepts):
 *   `db.password` -> `db-password`.
 * - `'dot'`: the segments as written, joined with `.` (nested addressing of JSON files):
 *   `db.password` -> `db.password`.
 * - a function of the path and the name of the provider the field is routed to.
 *
 * `keyPrefix` is prepended to every derived key, never to a key a field names itself.
 */
export type KeyStyle =
  | 'SCREAMING_SNAKE'
  | 'kebab'
  | 'dot'
  | ((path: readonly string[], provider: string | undefined) => string);

/** How the text of a secret reaches the schema. */
export type FieldFormat = 'text' | 'json';

/** Routing of one field of the settings object to a secret. */
export interface FieldOptions {
  /**
   * The key (secret name) to read.
   * @default derived from the field path, see {@link KeyStyle}
   */
  readonly key?: string | undefined;
  /**
   * The name of the provider the field must come from: a key of `providers`, or the `name` of a
   * child of the source chain. @default the `source`
   */
  readonly provider?: string | undefined;
  /**
   * The strings of this field reach the schema as `Secret<string>` (for a JSON document: every
   * string in it), so they stay wrapped in the typed object unless the schema unwraps them.
   * @default false
   */
  readonly secret?: boolean | undefined;
  /**
   * `'text'` gives the schema the string; `'json'` parses it as a JSON document first.
   * @default `'json'` when the schema of the field is an object, an array or a record that could be
   * discovered (zod, valibot), else `'text'`
   */
  readonly format?: FieldFormat | undefined;
  /** Input given to the schema in place of the value when the key does not exist. */
  readonly default?: unknown;
  /** Do not read this field (its `default`, if any, is still given to the schema). */
  readonly skip?: boolean | undefined;
}

/**
 * Routing of a nested object whose fields are read from one key each. `provider` and `secret`
 * apply to every field inside unless a field says otherwise.
 */
export interface NestedFieldOptions<T = unknown> {
  readonly fields: FieldsSpec<T>;
  readonly provider?: string | undefined;
  readonly secret?: boolean | undefined;
  readonly skip?: boolean | undefined;
}

type Leaf =
  | string
  | number
  | boolean
  | bigint
  | symbol
  | null
  | undefined
  | Secret<SecretValue>
  | Date
  | Uint8Array;

/** The routing of one field: a key name, {@link FieldOptions}, or for objects {@link NestedFieldOptions}. */
export type FieldSpec<V = unknown> =
  | string
  | FieldOptions
  | (unknown extends V
      ? NestedFieldOptions
      : [V] extends [Leaf]
        ? never
        : V extends object
          ? NestedFieldOptions<V>
          : never);

/**
 * The routing of the fields of a settings object, keyed like the schema's input. Fields left out
 * are routed by convention when they can be discovered from the schema (zod and valibot objects);
 * list every field for other schema libraries.
 */
export type FieldsSpec<Input = unknown> = unknown extends Input
  ? { readonly [field: string]: FieldSpec }
  : Input extends object
    ? { readonly [K in keyof Input & string]?: FieldSpec<NonNullable<Input[K]>> }
    : { readonly [field: string]: FieldSpec };

/** `T` with every plain object and array made read-only, as the settings snapshot is frozen. */
export type DeepReadonly<T> = T extends Leaf | ((...args: never[]) => unknown) | RegExp | URL | Error
  ? T
  : T extends Map<infer K, infer V>
    ? ReadonlyMap<K, V>
    : T extends Set<infer V>
      ? ReadonlySet<V>
      : { readonly [K in keyof T]: DeepReadonly<T[K]> };

/** The typed, frozen settings object a schema produces. */
export type SettingsOf<S extends StandardSchemaV1> = DeepReadonly<StandardSchemaV1.InferOutput<S>>;

type PlainObject<T> = T extends
  | Leaf
  | readonly unknown[]
  | ((...args: never[]) => unknown)
  | RegExp
  | URL
  | Error
  ? false
  : T extends object
    ? true
    : false;

type Prev = [never, 0, 1, 2, 3, 4, 5];

/** Dotted paths of the fields of `T` (`'db'`, `'db.password'`), up to six levels deep. */
export type FieldPath<T, Depth extends number = 6> = [Depth] extends [never]
  ? never
  : T extends object
    ? {
        [K in keyof T & string]:
          | K
          | (PlainObject<NonNullable<T[K]>> extends true
              ? `${K}.${FieldPath<NonNullable<T[K]>, Prev[Depth]>}`
              : never);
      }[keyof T & string]
    : never;

/** The type at a dotted path of `T`. */
export type FieldValue<T, P extends string> = P extends `${infer Head}.${infer Rest}`
  ? Head extends keyof T
    ? FieldValue<NonNullable<T[Head]>, Rest> | (undefined extends T[Head] ? undefined : never)
    : unknown
  : P extends keyof T
    ? T[P]
    : unknown;

/** Settings options. */
export interface SettingsOptions<S extends StandardSchemaV1> {
  /** Validates the assembled input and gives the typed object: zod, valibot, arktype, any Standard Schema. */
  readonly schema: S;
  /** Where fields are read unless they name a provider: a provider or a chain. */
  readonly source?: SecretProvider | undefined;
  /** Named providers (vaults) fields can be routed to with `provider: 'name'`. */
  readonly providers?: Readonly<Record<string, SecretProvider>> | undefined;
  /** Routing per field; see {@link FieldsSpec}. */
  readonly fields?: FieldsSpec<StandardSchemaV1.InferInput<S>> | undefined;
  /** @default 'SCREAMING_SNAKE' */
  readonly keyStyle?: KeyStyle | undefined;
  /** Prepended to derived keys (`'APP_'`). @default '' */
  readonly keyPrefix?: string | undefined;
  /** A label for errors, events and `util.inspect`. @default 'settings' */
  readonly name?: string | undefined;
  /** Follow the providers' `added`/`rotated`/`removed` events after `load()`. @default true */
  readonly live?: boolean | undefined;
  /** Quiet time after the last event of a burst before the affected fields are re-read, in ms. @default 100 */
  readonly debounceMs?: number | undefined;
  /** Longest a reload waits while events keep coming (a source that is never quiet), in ms. @default 1000 */
  readonly maxWaitMs?: number | undefined;
  /** Least time between the starts of two live reloads (throttles noisy sources), in ms. @default 250 */
  readonly minIntervalMs?: number | undefined;
  /** Deadline of `load()` and of each live reload, in ms; `refresh` takes its own. @default 30000 */
  readonly timeoutMs?: number | undefined;
  /**
   * First wait before a field whose live re-read failed (not "not found": a failure) is read
   * again; doubles per consecutive failure up to 30 s, with jitter (each wait is between half and
   * all of its step). When the backend said how long to wait (`Retry-After`, a `RATE_LIMITED`
   * error's `retryAfterMs`), that wait is used instead. `0` turns retries off. @default 1000
   */
  readonly retryDelayMs?: number | undefined;
  /**
   * Treat a key whose value is the empty string as not set: the field's `default` (or the
   * schema's) applies, and a required field is `MISSING`. As t3-env's option of the same name:
   * an empty environment variable (`APP_PORT=`) usually means "not configured", while
   * `z.coerce.number()` would read it as `0`. Off by default, so that an empty value a backend
   * holds on purpose reaches the schema as it is. @default false
   */
  readonly emptyStringAsUndefined?: boolean | undefined;
  /**
   * The clock of debounce, throttle, retries and deadlines (from `@secret-provider/core/adapter`);
   * a `ManualClock` runs them in simulated time. @default systemClock
   */
  readonly clock?: Clock | undefined;
  /**
   * Describes a validation issue for error messages. By default only the issue's path (its
   * declared names; keys and positions inside a JSON document show as `*`) and the codes and
   * expectations the schema library attaches are kept: libraries' messages can quote the input
   * (valibot's do: `Invalid length: Expected >=8 but received "hunter2"`). Return `undefined` to
   * fall back to the default. Whatever this returns is printed as is; the issue it receives is
   * the library's own, whose `path` and `message` may hold keys of a secret document.
   */
  readonly describeIssue?: ((issue: StandardSchemaV1.Issue) => string | undefined) | undefined;
}

/** One thing wrong with a load or an update. Names, codes and expectations, never values. */
export interface SettingsProblem {
  /** The dotted field path (`''` for the whole object). */
  readonly field: string;
  /** The key the field is read from, when it is one routed field. */
  readonly key?: string | undefined;
  /** The provider the field is read from. */
  readonly provider?: string | undefined;
  /**
   * A short code: a provider error code (`NOT_FOUND`, `ACCESS_DENIED`, `UNAVAILABLE`, ...),
   * `INVALID_JSON`, `MISSING` (the key does not exist and the schema requires it), `SCHEMA_THREW`,
   * or the schema library's own issue code (`invalid_type`, `too_small`, `min_length`, ...).
   */
  readonly code: string;
  /** Why, without the value. */
  readonly reason: string;
  /** The provider's error, for read failures. */
  readonly error?: SecretError | undefined;
}

/** One successful change of the settings. */
export interface SettingsUpdate<T> {
  /** Counts successful swaps; the first load is revision 1. */
  readonly revision: number;
  /** Dotted paths of the fields whose source value changed. */
  readonly changed: readonly string[];
  /** The keys of those fields. */
  readonly keys: readonly string[];
  readonly previous: T;
  readonly current: T;
  /** When the new snapshot took effect. */
  readonly at: Date;
}

/** A failure reported while the settings are live: a rejected update, a failed watcher, a watch error. */
export interface SettingsErrorEvent {
  readonly error: SecretError;
  /** Dotted paths of the fields concerned. */
  readonly fields: readonly string[];
  /** Keys concerned. */
  readonly keys: readonly string[];
  readonly detectedAt: Date;
}

/** A provider warning passed on (loose file mode, watch unsupported, failover). */
export interface SettingsWarningEvent {
  readonly code: string;
  readonly message: string;
  readonly provider: string;
  readonly key?: string | undefined;
  readonly detectedAt: Date;
}

/** The events of a settings object, for `on(type, listener)`. */
export interface SettingsEvents<T> {
  update: SettingsUpdate<T>;
  error: SettingsErrorEvent;
  warning: SettingsWarningEvent;
}
