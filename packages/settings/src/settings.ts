import { inspect } from 'node:util';
import {
  createEmitter,
  InvalidConfigError,
  isSecretError,
  Secret,
  SecretError,
  type SecretProvider,
  type SecretValue,
  type WatchHandle,
} from '@secret-provider/core';
import { raceSignal, throwIfAborted, toSecretError, withTimeout } from '@secret-provider/core/adapter';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { describeIssue, issuePath, SettingsError } from './errors.js';
import { isRecord, type PlannedField, planFields } from './fields.js';
import { ReloadScheduler } from './scheduler.js';
import { getPath, seal, setPath } from './snapshot.js';
import type {
  FieldPath,
  FieldValue,
  SettingsErrorEvent,
  SettingsEvents,
  SettingsOf,
  SettingsOptions,
  SettingsProblem,
  SettingsUpdate,
} from './types.js';

/** Defaults of {@link SettingsOptions}. */
export const SETTINGS_DEFAULTS = Object.freeze({
  name: 'settings',
  debounceMs: 100,
  maxWaitMs: 1000,
  minIntervalMs: 250,
  timeoutMs: 30_000,
  retryDelayMs: 1000,
});

const MAX_RETRY_DELAY_MS = 30_000;

/** What was last read for one field. The text stays wrapped: this object may be inspected. */
interface RawValue {
  readonly found: boolean;
  readonly text: Secret<string> | undefined;
  /** The `Secret` handed to the schema for a secret text field, reused while the value is unchanged. */
  handed: Secret<string> | undefined;
}

type ReadOutcome =
  | { readonly found: true; readonly secret: Secret<string> }
  | { readonly found: false }
  | { readonly error: SecretError };

interface Watcher {
  readonly label: string;
  readonly matches: (changed: readonly PlannedField[]) => boolean;
  readonly path: readonly string[];
  readonly fn: (oldValue: unknown, newValue: unknown) => unknown;
}

interface Channel<T> {
  push(update: T): void;
  end(): void;
}

/** Options of `load()` and `refresh()`. */
export interface LoadOptions {
  /** Deadline in ms; rejects with a `TIMEOUT` {@link SecretError} when it passes. */
  readonly timeout?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** Options of `onChange`. */
export interface WatcherOptions {
  /** Removes the watcher when aborted. */
  readonly signal?: AbortSignal | undefined;
}

/** A watcher: called with the old and the new value after a successful swap, awaited in turn. */
export type ChangeWatcher<V> = (oldValue: V, newValue: V) => void | Promise<void>;

/**
 * A typed settings object routed to secrets, validated through a Standard Schema, and kept
 * current while the secrets rotate. Make one with {@link defineSettings}.
 *
 * Every update is validated as a whole snapshot before it replaces the last good one; an update
 * that fails keeps the old snapshot and is reported as an `error` event. Errors, events and
 * `util.inspect`/`JSON.stringify` of this object and of its snapshots never show a value.
 */
export class Settings<S extends StandardSchemaV1> implements AsyncDisposable {
  /** The label in errors, events and `util.inspect`. */
  readonly name: string;
  readonly #schema: S;
  readonly #fields: readonly PlannedField[];
  readonly #byKey = new Map<string, PlannedField[]>();
  readonly #live: boolean;
  readonly #timeoutMs: number;
  readonly #retryDelayMs: number;
  readonly #describeIssue: SettingsOptions<S>['describeIssue'];
  readonly #scheduler: ReloadScheduler;
  readonly #listeners: { [K in keyof SettingsEvents<unknown>]: Set<(event: never) => void> } = {
    update: new Set(),
    error: new Set(),
    warning: new Set(),
  };
  readonly #channels = new Set<Channel<SettingsUpdate<SettingsOf<S>>>>();
  readonly #retryFailures = new Map<number, number>();
  readonly #retryTimers = new Set<NodeJS.Timeout>();
  #watchers: Watcher[] = [];
  #raw: ReadonlyMap<number, RawValue> = new Map();
  #current: SettingsOf<S> | undefined;
  #revision = 0;
  #loading: Promise<SettingsOf<S>> | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #notifying: Promise<void> = Promise.resolve();
  #handles: WatchHandle[] = [];
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: SettingsOptions<S>) {
    if (!isRecord(options.schema) || !isRecord(options.schema['~standard'])) {
      throw new InvalidConfigError(
        {},
        'invalid settings: `schema` must be a Standard Schema (zod, valibot, arktype, ...)',
      );
    }
    this.name = options.name ?? SETTINGS_DEFAULTS.name;
    this.#schema = options.schema;
    this.#fields = planFields(options.schema, options.fields, {
      source: options.source,
      providers: options.providers ?? {},
      keyStyle: options.keyStyle ?? 'SCREAMING_SNAKE',
      keyPrefix: options.keyPrefix ?? '',
    });
    for (const field of this.#fields) {
      if (field.skip) continue;
      const list = this.#byKey.get(field.key) ?? [];
      list.push(field);
      this.#byKey.set(field.key, list);
    }
    this.#live = options.live ?? true;
    this.#timeoutMs = positive(options.timeoutMs, SETTINGS_DEFAULTS.timeoutMs, 'timeoutMs');
    this.#retryDelayMs = positive(options.retryDelayMs, SETTINGS_DEFAULTS.retryDelayMs, 'retryDelayMs');
    this.#describeIssue = options.describeIssue;
    this.#scheduler = new ReloadScheduler(
      {
        debounceMs: positive(options.debounceMs, SETTINGS_DEFAULTS.debounceMs, 'debounceMs'),
        maxWaitMs: positive(options.maxWaitMs, SETTINGS_DEFAULTS.maxWaitMs, 'maxWaitMs'),
        minIntervalMs: positive(options.minIntervalMs, SETTINGS_DEFAULTS.minIntervalMs, 'minIntervalMs'),
      },
      (fields) => this.#reloadLive(fields),
    );
  }

  // ---- reading ---------------------------------------------------------------------------------

  /**
   * Reads every routed key concurrently, validates, and resolves the frozen typed object. Live
   * settings start following their providers' events. Calling it again resolves the current
   * snapshot.
   * @throws {SettingsError} with every problem found (missing, unreadable, invalid fields).
   * @throws {SecretError} `TIMEOUT` when `timeout` (default `timeoutMs`) passes first.
   */
  load(options: LoadOptions = {}): Promise<SettingsOf<S>> {
    if (this.#closed) return Promise.reject(this.#closedError('load'));
    if (this.#current !== undefined) return Promise.resolve(this.#current);
    this.#loading ??= this.#load(options);
    return this.#loading;
  }

  /** The current snapshot. @throws {SecretError} before the first successful `load()`. */
  get current(): SettingsOf<S> {
    if (this.#current === undefined) {
      throw new SecretError(
        'INVALID_CONFIG',
        `settings "${this.name}" are not loaded yet: await load() first`,
        {
          provider: this.name,
        },
      );
    }
    return this.#current;
  }

  /** Whether a snapshot has been loaded. */
  get loaded(): boolean {
    return this.#current !== undefined;
  }

  /** Counts successful swaps; 1 after the first load, 0 before. */
  get revision(): number {
    return this.#revision;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The routing, for diagnostics: dotted field path, key, provider name, secret, skipped. No values. */
  get routes(): ReadonlyArray<{
    field: string;
    key: string;
    provider: string;
    secret: boolean;
    skip: boolean;
  }> {
    return this.#fields.map((field) => ({
      field: field.name,
      key: field.key,
      provider: field.providerName,
      secret: field.secret,
      skip: field.skip,
    }));
  }

  /**
   * Re-reads every field now, validates and swaps if anything changed. Before the first load it
   * loads. A rejected refresh keeps the last good snapshot.
   * @throws {SettingsError} when a field cannot be read or the new snapshot is invalid.
   * @throws {SecretError} `TIMEOUT` when `timeout` (default `timeoutMs`) passes first.
   */
  refresh(options: LoadOptions = {}): Promise<SettingsOf<S>> {
    if (this.#closed) return Promise.reject(this.#closedError('refresh'));
    if (this.#current === undefined) return this.load(options);
    return this.#transaction('all', 'refresh', options);
  }

  // ---- watching --------------------------------------------------------------------------------

  /**
   * Calls `watcher(oldValue, newValue)` after each successful swap that changed the field (a
   * dotted path such as `'db.password'`; a parent path fires for any change below it) or, with
   * `{ key: 'DB_PASSWORD' }`, the field read from that key (the first, if several share it).
   * From JavaScript a plain string that is no field but a routed key works too.
   * Watchers run one at a time in the order they were added and are awaited; one that throws is
   * reported as an `error` event and the others still run.
   * @returns a function that removes the watcher.
   * @throws {InvalidConfigError} when the field or key is not routed.
   */
  onChange<P extends FieldPath<SettingsOf<S>>>(
    field: P,
    watcher: ChangeWatcher<FieldValue<SettingsOf<S>, P>>,
    options?: WatcherOptions,
  ): () => void;
  onChange(
    target: { readonly key: string },
    watcher: ChangeWatcher<unknown>,
    options?: WatcherOptions,
  ): () => void;
  onChange(
    target: string | { readonly key: string },
    watcher: ChangeWatcher<never>,
    options: WatcherOptions = {},
  ): () => void {
    const entry = this.#watcherFor(target, watcher as (oldValue: unknown, newValue: unknown) => unknown);
    this.#watchers = [...this.#watchers, entry];
    const remove = () => {
      this.#watchers = this.#watchers.filter((candidate) => candidate !== entry);
      options.signal?.removeEventListener('abort', remove);
    };
    if (options.signal?.aborted) remove();
    else options.signal?.addEventListener('abort', remove, { once: true });
    return remove;
  }

  /**
   * The successful updates, as they happen, until the settings are closed or `signal` aborts
   * (then the iteration ends without an error). Failures are `error` events, not items.
   *
   * @example
   * ```ts
   * for await (const update of settings.updates({ signal })) {
   *   console.log('changed:', update.changed);
   * }
   * ```
   */
  updates(
    options: { readonly signal?: AbortSignal | undefined } = {},
  ): AsyncIterableIterator<SettingsUpdate<SettingsOf<S>>> {
    type Update = SettingsUpdate<SettingsOf<S>>;
    const queue: Update[] = [];
    let ended = this.#closed || options.signal?.aborted === true;
    let wake: (() => void) | undefined;
    const channel: Channel<Update> = {
      push: (update) => {
        queue.push(update);
        wake?.();
      },
      end: () => {
        ended = true;
        wake?.();
      },
    };
    const finish = () => {
      ended = true;
      this.#channels.delete(channel);
      options.signal?.removeEventListener('abort', onAbort);
      wake?.();
    };
    const onAbort = () => {
      // An abort stops at once; a close lets the updates already queued be read.
      queue.length = 0;
      finish();
    };
    if (!ended) {
      this.#channels.add(channel);
      options.signal?.addEventListener('abort', onAbort, { once: true });
    }
    const iterator: AsyncIterableIterator<Update> = {
      next: async (): Promise<IteratorResult<Update>> => {
        for (;;) {
          const update = queue.shift();
          if (update !== undefined) return { value: update, done: false };
          if (ended) {
            finish();
            return { value: undefined, done: true };
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
        }
      },
      return: async (): Promise<IteratorResult<Update>> => {
        queue.length = 0;
        finish();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  /**
   * Listens to `update`, `error` (rejected updates, failed watchers, providers' watch errors) and
   * `warning` (providers' warnings). Without an `error` listener, errors become process warnings.
   * @returns a function that removes the listener.
   */
  on<K extends keyof SettingsEvents<SettingsOf<S>>>(
    type: K,
    listener: (event: SettingsEvents<SettingsOf<S>>[K]) => void,
  ): () => void {
    const set = this.#listeners[type] as Set<typeof listener>;
    set.add(listener);
    return () => set.delete(listener);
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  /**
   * Stops following the providers, ends the update iterators and drops pending reloads. The
   * providers are not closed: they belong to the caller. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#closed = true;
      this.#scheduler.close();
      for (const timer of this.#retryTimers) clearTimeout(timer);
      this.#retryTimers.clear();
      for (const channel of [...this.#channels]) channel.end();
      this.#closing = this.#stopWatching();
    }
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  toJSON(): Record<string, unknown> {
    return {
      settings: this.name,
      fields: this.#fields.length,
      revision: this.#revision,
      live: this.#live,
      closed: this.#closed,
    };
  }

  [inspect.custom](): string {
    return `Settings { name: ${JSON.stringify(this.name)}, fields: ${this.#fields.length}, revision: ${this.#revision}${this.#live ? ', live' : ''}${this.#closed ? ', closed' : ''} }`;
  }

  // ---- internals -------------------------------------------------------------------------------

  async #load(options: LoadOptions): Promise<SettingsOf<S>> {
    try {
      const timeout = options.timeout ?? this.#timeoutMs;
      const started = Date.now();
      // Watch first, so that a change made while the first read runs is not missed. Arming the
      // watches counts against the same deadline.
      if (this.#live) {
        await raceSignal(
          withTimeout(() => this.#startWatching(), timeout, { provider: this.name, operation: 'refresh' }),
          options.signal,
        );
      }
      return await this.#transaction('all', 'load', {
        ...options,
        timeout: Math.max(0, timeout - (Date.now() - started)),
      });
    } catch (error) {
      this.#loading = undefined;
      await this.#stopWatching();
      throw error;
    }
  }

  #transaction(
    fields: 'all' | ReadonlySet<number>,
    mode: Mode,
    options: LoadOptions,
  ): Promise<SettingsOf<S>> {
    const timeout = options.timeout ?? this.#timeoutMs;
    const run = withTimeout(
      (deadline) => {
        const signal = options.signal === undefined ? deadline : AbortSignal.any([deadline, options.signal]);
        return this.#enqueue(() => this.#apply(fields, mode, signal));
      },
      timeout,
      { provider: this.name, operation: 'refresh' },
    );
    return raceSignal(run, options.signal);
  }

  #enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #reloadLive(fields: ReadonlySet<number>): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#transaction(fields, 'live', {});
    } catch (error) {
      if (this.#closed || this.#current === undefined) return;
      const concerned = [...fields].flatMap((index) => this.#fields[index] ?? []);
      this.#reportError(toSecretError(error, { provider: this.name, operation: 'refresh' }), concerned);
    }
  }

  /** Reads, validates and swaps, as one step of the queue. */
  async #apply(which: 'all' | ReadonlySet<number>, mode: Mode, signal: AbortSignal): Promise<SettingsOf<S>> {
    throwIfAborted(signal);
    if (this.#closed) throw this.#closedError(mode);
    // A live change queued behind a first load that failed has nothing to update.
    if (mode === 'live' && this.#current === undefined) {
      throw new SecretError('INVALID_CONFIG', `settings "${this.name}" are not loaded`, {
        provider: this.name,
      });
    }
    const targets = this.#fields.filter(
      (field) => !field.skip && (which === 'all' || which.has(field.index)),
    );
    const outcomes = await this.#readAll(targets, signal);
    throwIfAborted(signal);

    const problems: SettingsProblem[] = [];
    const failedLive: PlannedField[] = [];
    const next = new Map(this.#raw);
    for (const field of targets) {
      const outcome = outcomes.get(field.index);
      if (outcome === undefined) continue;
      if ('error' in outcome) {
        problems.push({
          field: field.name,
          key: field.key,
          provider: field.providerName,
          code: outcome.error.code,
          reason: `${outcome.error.code}: ${outcome.error.message}`,
          error: outcome.error,
        });
        // Live: a field that cannot be read now keeps its last good value and is retried.
        if (mode === 'live' && this.#raw.has(field.index)) failedLive.push(field);
        continue;
      }
      this.#retryFailures.delete(field.index);
      const previous = this.#raw.get(field.index);
      const read: RawValue = outcome.found
        ? { found: true, text: outcome.secret, handed: undefined }
        : { found: false, text: undefined, handed: undefined };
      next.set(field.index, previous !== undefined && sameRaw(previous, read) ? previous : read);
    }
    if (mode === 'live' && failedLive.length > 0) {
      const readProblems = problems.splice(0);
      this.#reportError(new SettingsError(this.name, 'live re-read', readProblems), failedLive);
      this.#scheduleRetry(failedLive);
    }
    if (problems.length > 0) {
      // Validate what could be read too, so that one error lists every problem.
      for (const problem of problems) {
        const field = targets.find((candidate) => candidate.name === problem.field);
        if (field !== undefined) next.delete(field.index);
      }
      await this.#validate(next, mode, problems);
      throw new SettingsError(this.name, mode, problems);
    }

    const changed = targets.filter((field) => !sameRaw(this.#raw.get(field.index), next.get(field.index)));
    if (this.#current !== undefined && changed.length === 0) return this.#current;

    const snapshot = await this.#validate(next, mode, []);
    throwIfAborted(signal);
    if (this.#closed) throw this.#closedError(mode);

    const previous = this.#current;
    this.#raw = next;
    this.#current = snapshot;
    this.#revision++;
    if (previous !== undefined) this.#publish(previous, snapshot, changed);
    return snapshot;
  }

  async #readAll(fields: readonly PlannedField[], signal: AbortSignal): Promise<Map<number, ReadOutcome>> {
    // One read per provider and key, however many fields share it.
    const reads = new Map<SecretProvider, Map<string, Promise<ReadOutcome>>>();
    const outcomes = new Map<number, ReadOutcome>();
    await Promise.all(
      fields.map(async (field) => {
        const provider = field.provider;
        if (provider === undefined) return;
        let byKey = reads.get(provider);
        if (byKey === undefined) {
          byKey = new Map();
          reads.set(provider, byKey);
        }
        let read = byKey.get(field.key);
        if (read === undefined) {
          read = readOne(provider, field.key, signal);
          byKey.set(field.key, read);
        }
        outcomes.set(field.index, await read);
      }),
    );
    return outcomes;
  }

  /**
   * Validates the input assembled from `raw`; throws a {@link SettingsError} listing `earlier`
   * problems (read failures, whose fields are left out of `raw`) and every new one.
   */
  async #validate(
    raw: ReadonlyMap<number, RawValue>,
    mode: Mode,
    earlier: SettingsProblem[],
  ): Promise<SettingsOf<S>> {
    const { input, problems: parseProblems } = this.#buildInput(raw);
    const problems = earlier;
    problems.push(...parseProblems);
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
      throw new SettingsError(this.name, mode, problems);
    }
    if (result.issues !== undefined) {
      for (const issue of result.issues) {
        const problem = this.#problemOf(issue, raw);
        const reported = [...unreadable].some(
          (name) => problem.field === name || problem.field.startsWith(`${name}.`),
        );
        if (!reported) problems.push(problem);
      }
    }
    if (problems.length > 0 || result.issues !== undefined) {
      throw new SettingsError(this.name, mode === 'live' ? 'update' : mode, problems);
    }
    return seal(result.value, this.name) as SettingsOf<S>;
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
          // V8's message quotes the start of the input: it is not passed on.
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
    const custom = this.#describeIssue?.(issue);
    const described =
      custom === undefined ? describeIssue(issue) : { code: describeIssue(issue).code, reason: custom };
    const name = path.join('.');
    // The field holding the issue (the issue is at the field or inside its JSON document) ...
    const owner = this.#fields.find((field) => startsWith(path, field.path));
    if (owner !== undefined) {
      const value = raw.get(owner.index);
      const missing =
        (value === undefined || !value.found) && !owner.hasDefault && path.length === owner.path.length;
      // The usual mistake with secret fields: a string schema for what arrives as a Secret.
      const hint =
        owner.secret &&
        owner.format === 'text' &&
        !missing &&
        path.length === owner.path.length &&
        /type|string/.test(described.code)
          ? ' (a secret field reaches the schema as a Secret<string>: validate it with a custom schema and isSecretString)'
          : '';
      return {
        field: name,
        key: owner.skip ? undefined : owner.key,
        provider: owner.skip ? undefined : owner.providerName,
        code: missing ? 'MISSING' : described.code,
        reason: missing
          ? `MISSING: ${owner.skip ? 'the field is skipped' : 'the key does not exist'} (${described.reason})`
          : `${described.reason}${hint}`,
      };
    }
    // ... or the fields below an object the settings assembled, or the whole object.
    const below = this.#fields.filter((field) => startsWith(field.path, path) && !field.skip);
    return {
      field: name,
      code: described.code,
      reason:
        below.length > 0
          ? `${described.reason} (keys ${below.map((f) => `"${f.key}"`).join(', ')})`
          : described.reason,
    };
  }

  #publish(previous: SettingsOf<S>, current: SettingsOf<S>, changed: readonly PlannedField[]): void {
    const update: SettingsUpdate<SettingsOf<S>> = Object.freeze({
      revision: this.#revision,
      changed: Object.freeze(changed.map((field) => field.name)),
      keys: Object.freeze([...new Set(changed.map((field) => field.key))]),
      previous,
      current,
      at: new Date(),
    });
    this.#emit('update', update);
    for (const channel of this.#channels) channel.push(update);
    const watchers = this.#watchers.filter((watcher) => watcher.matches(changed));
    if (watchers.length === 0) return;
    this.#notifying = this.#notifying.then(async () => {
      for (const watcher of watchers) {
        try {
          await watcher.fn(getPath(previous, watcher.path), getPath(current, watcher.path));
        } catch (error) {
          const reason = isSecretError(error)
            ? error.code
            : error instanceof Error
              ? error.name
              : typeof error;
          this.#reportError(
            new SecretError(
              'UNKNOWN',
              `settings "${this.name}": the watcher of "${watcher.label}" threw ${reason}`,
              {
                provider: this.name,
                cause: error,
              },
            ),
            changed,
          );
        }
      }
    });
  }

  #watcherFor(
    target: string | { readonly key: string },
    fn: (oldValue: unknown, newValue: unknown) => unknown,
  ): Watcher {
    const byKey = (key: string): Watcher | undefined => {
      const fields = this.#byKey.get(key);
      const first = fields?.[0];
      if (fields === undefined || first === undefined) return undefined;
      return {
        label: key,
        path: first.path,
        fn,
        matches: (changed) => changed.some((field) => field.key === key),
      };
    };
    if (typeof target === 'string') {
      const path = target.split('.');
      const routed = this.#fields.some(
        (field) => startsWith(field.path, path) || startsWith(path, field.path),
      );
      if (routed) {
        return {
          label: target,
          path,
          fn,
          matches: (changed) =>
            changed.some((field) => startsWith(field.path, path) || startsWith(path, field.path)),
        };
      }
      const watcher = byKey(target);
      if (watcher !== undefined) return watcher;
    } else if (isRecord(target) && typeof target.key === 'string') {
      const watcher = byKey(target.key);
      if (watcher !== undefined) return watcher;
    }
    const label = typeof target === 'string' ? target : String((target as { key?: unknown }).key);
    throw new InvalidConfigError(
      { provider: this.name },
      `settings "${this.name}": no routed field or key "${label}" to watch`,
    );
  }

  async #startWatching(): Promise<void> {
    // A field routed to a child of the chain is watched on the child itself: the chain reports
    // changes of the effective value only, and a child's key may be shadowed by a higher layer.
    // A change seen both ways falls into one debounce window and makes one reload.
    const targets = new Set(
      this.#fields.flatMap((field) => (field.skip || field.provider === undefined ? [] : [field.provider])),
    );
    for (const provider of targets) {
      const emitter = createEmitter();
      emitter.on('rotated', (event) => this.#changed(event.keys));
      emitter.on('added', (event) => this.#changed([event.key]));
      emitter.on('removed', (event) => this.#changed([event.key]));
      emitter.on('error', (event) => {
        const fields = event.key === undefined ? [] : (this.#byKey.get(event.key) ?? []);
        this.#reportError(event.error, fields, event.key);
      });
      emitter.on('warning', (event) =>
        this.#emit('warning', {
          code: event.code,
          message: event.message,
          provider: event.source ?? event.provider,
          key: event.key,
          detectedAt: event.detectedAt,
        }),
      );
      this.#handles.push(provider.watch(emitter));
    }
    await Promise.all(this.#handles.map((handle) => handle.ready));
  }

  async #stopWatching(): Promise<void> {
    const handles = this.#handles.splice(0);
    await Promise.allSettled(handles.map((handle) => handle.stop()));
  }

  #changed(keys: readonly string[]): void {
    const indices = keys.flatMap((key) => (this.#byKey.get(key) ?? []).map((field) => field.index));
    if (indices.length > 0) this.#scheduler.add(indices);
  }

  #scheduleRetry(fields: readonly PlannedField[]): void {
    if (this.#retryDelayMs === 0 || this.#closed) return;
    let delay = MAX_RETRY_DELAY_MS;
    for (const field of fields) {
      const failures = (this.#retryFailures.get(field.index) ?? 0) + 1;
      this.#retryFailures.set(field.index, failures);
      delay = Math.min(delay, this.#retryDelayMs * 2 ** (failures - 1));
    }
    const timer = setTimeout(() => {
      this.#retryTimers.delete(timer);
      this.#scheduler.add(fields.map((field) => field.index));
    }, delay);
    timer.unref?.();
    this.#retryTimers.add(timer);
  }

  #reportError(error: SecretError, fields: readonly PlannedField[], key?: string): void {
    const event: SettingsErrorEvent = Object.freeze({
      error,
      fields: Object.freeze(fields.map((field) => field.name)),
      keys: Object.freeze(key !== undefined ? [key] : [...new Set(fields.map((field) => field.key))]),
      detectedAt: new Date(),
    });
    if (this.#listeners.error.size === 0) {
      process.emitWarning(error.message, { code: 'SECRET_SETTINGS_ERROR' });
      return;
    }
    this.#emit('error', event);
  }

  #emit<K extends keyof SettingsEvents<SettingsOf<S>>>(
    type: K,
    event: SettingsEvents<SettingsOf<S>>[K],
  ): void {
    for (const listener of [...this.#listeners[type]] as Array<
      (event: SettingsEvents<SettingsOf<S>>[K]) => void
    >) {
      try {
        listener(event);
      } catch (error) {
        process.emitWarning(
          `a listener of the "${type}" settings event threw ${error instanceof Error ? error.name : typeof error}`,
          { code: 'SECRET_SETTINGS_LISTENER_ERROR' },
        );
      }
    }
  }

  #closedError(operation: string): SecretError {
    return new SecretError('CLOSED', `settings "${this.name}" are closed, cannot ${operation}`, {
      provider: this.name,
    });
  }
}

type Mode = 'load' | 'refresh' | 'live';

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

function sameRaw(a: RawValue | undefined, b: RawValue | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.found !== b.found) return false;
  if (a.text === undefined || b.text === undefined) return a.text === b.text;
  return Secret.equals(a.text, b.text);
}

function startsWith(path: readonly string[], prefix: readonly string[]): boolean {
  return prefix.length <= path.length && prefix.every((segment, i) => path[i] === segment);
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

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidConfigError({}, `invalid settings: \`${name}\` must be a finite number >= 0`);
  }
  return value;
}

/**
 * Defines a typed settings object: fields routed to secrets, validated by a Standard Schema
 * (zod, valibot, arktype), kept current while secrets rotate. Nothing is read until `load()`.
 *
 * @example
 * ```ts
 * const settings = defineSettings({
 *   source: new ChainedProvider([env, file, vault]),
 *   schema: z.object({
 *     port: z.coerce.number().int(),
 *     dbPassword: z.custom<Secret<string>>(isSecretString),
 *   }),
 *   fields: { dbPassword: { secret: true } }, // port -> PORT, dbPassword -> DB_PASSWORD
 * });
 * const config = await settings.load();
 * settings.onChange('dbPassword', async (_old, password) => pool.reconnect(password));
 * ```
 * @throws {InvalidConfigError} when a field is routed to an unknown provider or to none.
 */
export function defineSettings<S extends StandardSchemaV1>(options: SettingsOptions<S>): Settings<S> {
  return new Settings(options);
}

/** {@link defineSettings} and `load()` in one step; resolves the loaded settings. */
export async function loadSettings<S extends StandardSchemaV1>(
  options: SettingsOptions<S> & LoadOptions,
): Promise<Settings<S>> {
  const settings = new Settings(options);
  await settings.load(options);
  return settings;
}

/** True for a `Secret` holding a string; for schemas of secret fields: `z.custom<Secret<string>>(isSecretString)`. */
export function isSecretString(value: unknown): value is Secret<string> {
  return (
    Secret.isSecret(value) && !value.disposed && typeof (value as Secret<SecretValue>).reveal() === 'string'
  );
}
