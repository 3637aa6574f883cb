import { setMaxListeners } from 'node:events';
import { inspect } from 'node:util';
import { InvalidConfigError, Secret, SecretError, type SecretValue } from '@secret-provider/core';
import {
  type Clock,
  raceSignal,
  systemClock,
  throwIfAborted,
  toSecretError,
  withTimeout,
} from '@secret-provider/core/adapter';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { SettingsError } from './errors.js';
import { isRecord, type PlannedField, planFields } from './fields.js';
import { LiveReload } from './live.js';
import { type Mode, modeName, type RawValue, SnapshotLoader, sameRaw } from './loader.js';
import type {
  FieldPath,
  FieldValue,
  SettingsEvents,
  SettingsOf,
  SettingsOptions,
  SettingsUpdate,
} from './types.js';
import { SettingsEventHub } from './updates.js';
import { type ChangeWatcher, type WatcherOptions, Watchers } from './watchers.js';

/** Defaults of {@link SettingsOptions}. */
export const SETTINGS_DEFAULTS = Object.freeze({
  name: 'settings',
  debounceMs: 100,
  maxWaitMs: 1000,
  minIntervalMs: 250,
  timeoutMs: 30_000,
  retryDelayMs: 1000,
  emptyStringAsUndefined: false,
});

/** Options of `load()` and `refresh()`. */
export interface LoadOptions {
  /** Deadline in ms; rejects with a `TIMEOUT` {@link SecretError} when it passes. */
  readonly timeout?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

/**
 * A typed settings object routed to secrets, validated through a Standard Schema, and kept
 * current while the secrets rotate. Make one with {@link defineSettings}.
 *
 * Every update is validated as a whole snapshot before it replaces the last good one; an update
 * that fails keeps the old snapshot and is reported as an `error` event. Errors, events and
 * `util.inspect`/`JSON.stringify` of this object and of its snapshots never show a value, nor
 * anything else taken from a secret (the keys of a JSON document, its size, positions in it).
 */
export class Settings<S extends StandardSchemaV1> implements AsyncDisposable {
  /** The label in errors, events and `util.inspect`. */
  readonly name: string;
  readonly #fields: readonly PlannedField[];
  readonly #live: boolean;
  readonly #timeoutMs: number;
  readonly #clock: Clock;
  readonly #loader: SnapshotLoader<S>;
  readonly #reload: LiveReload;
  readonly #watchers: Watchers;
  readonly #hub = new SettingsEventHub<SettingsOf<S>>();
  #raw: ReadonlyMap<number, RawValue> = new Map();
  #current: SettingsOf<S> | undefined;
  #revision = 0;
  #loading: Promise<SettingsOf<S>> | undefined;
  #queue: Promise<unknown> = Promise.resolve();
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
    this.#fields = planFields(options.schema, options.fields, {
      source: options.source,
      providers: options.providers ?? {},
      keyStyle: options.keyStyle ?? 'SCREAMING_SNAKE',
      keyPrefix: options.keyPrefix ?? '',
    });
    this.#live = options.live ?? true;
    this.#timeoutMs = positive(options.timeoutMs, SETTINGS_DEFAULTS.timeoutMs, 'timeoutMs');
    this.#clock = options.clock ?? systemClock;
    this.#loader = new SnapshotLoader({
      name: this.name,
      schema: options.schema,
      fields: this.#fields,
      describeIssue: options.describeIssue,
      emptyStringAsUndefined: options.emptyStringAsUndefined ?? SETTINGS_DEFAULTS.emptyStringAsUndefined,
    });
    this.#reload = new LiveReload({
      fields: this.#fields,
      clock: this.#clock,
      timing: {
        debounceMs: positive(options.debounceMs, SETTINGS_DEFAULTS.debounceMs, 'debounceMs'),
        maxWaitMs: positive(options.maxWaitMs, SETTINGS_DEFAULTS.maxWaitMs, 'maxWaitMs'),
        minIntervalMs: positive(options.minIntervalMs, SETTINGS_DEFAULTS.minIntervalMs, 'minIntervalMs'),
      },
      retryDelayMs: positive(options.retryDelayMs, SETTINGS_DEFAULTS.retryDelayMs, 'retryDelayMs'),
      reload: (fields) => this.#reloadLive(fields),
      onError: (error, fields, key) => this.#reportError(error, fields, key),
      onWarning: (event) => this.#hub.emit('warning', event),
    });
    this.#watchers = new Watchers(this.name, this.#fields, (error, fields) =>
      this.#reportError(error, fields),
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
    return this.#watchers.add(target, watcher as (oldValue: unknown, newValue: unknown) => unknown, options);
  }

  /**
   * The successful updates, as they happen, until the settings are closed (the updates already
   * queued are still read) or `signal` aborts (the iteration ends at once, without an error).
   * Failures are `error` events, not items. Built on the same queue as providers' `changes()`.
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
    return this.#hub.updates(options.signal);
  }

  /**
   * Listens to `update`, `error` (rejected updates, failed watchers, providers' watch errors) and
   * `warning` (providers' warnings). Without an `error` listener, errors become process warnings
   * with code `SECRET_PROVIDER_SETTINGS_ERROR`.
   * @returns a function that removes the listener.
   */
  on<K extends keyof SettingsEvents<SettingsOf<S>>>(
    type: K,
    listener: (event: SettingsEvents<SettingsOf<S>>[K]) => void,
  ): () => void {
    return this.#hub.on(type, listener);
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  /**
   * Stops following the providers, ends the update iterators and drops pending reloads. The
   * providers are not closed: they belong to the caller. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#closed = true;
      this.#reload.close();
      this.#hub.end();
      this.#closing = this.#reload.stop();
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
      const started = this.#clock.now();
      // Watch first, so that a change made while the first read runs is not missed. Arming the
      // watches counts against the same deadline.
      if (this.#live) {
        await raceSignal(
          withTimeout(
            () => this.#reload.start(),
            timeout,
            { provider: this.name, operation: 'refresh' },
            this.#clock,
          ),
          options.signal,
        );
      }
      return await this.#transaction('all', 'load', {
        ...options,
        timeout: Math.max(0, timeout - (this.#clock.now() - started)),
      });
    } catch (error) {
      this.#loading = undefined;
      await this.#reload.stop();
      throw error;
    }
  }

  #transaction(
    fields: 'all' | ReadonlySet<number>,
    mode: Mode,
    options: LoadOptions,
  ): Promise<SettingsOf<S>> {
    const run = withTimeout(
      (deadline) => {
        const signal = options.signal === undefined ? deadline : AbortSignal.any([deadline, options.signal]);
        // Every read of the transaction listens to this one signal (see withTimeout).
        setMaxListeners(0, signal);
        return this.#enqueue(() => this.#apply(fields, mode, signal));
      },
      options.timeout ?? this.#timeoutMs,
      { provider: this.name, operation: 'refresh' },
      this.#clock,
    );
    return raceSignal(run, options.signal);
  }

  /** One transaction at a time, in order. */
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
    const { next, failures } = await this.#loader.read(targets, this.#raw, signal);
    throwIfAborted(signal);

    const failed = new Set(failures.map((failure) => failure.field.index));
    for (const field of targets) if (!failed.has(field.index)) this.#reload.succeeded(field);
    // Live: a field that cannot be read now keeps its last good value and is read again later.
    const retried = mode === 'live' ? failures.filter(({ field }) => this.#raw.has(field.index)) : [];
    if (retried.length > 0) {
      this.#reportError(
        new SettingsError(
          this.name,
          'live re-read',
          retried.map((failure) => this.#loader.problemOfFailure(failure)),
        ),
        retried.map((failure) => failure.field),
      );
      this.#reload.retry(retried);
    }
    const unread = failures.filter((failure) => !retried.includes(failure));
    if (unread.length > 0) {
      // Validate what could be read too, so that one error lists every problem.
      for (const { field } of unread) next.delete(field.index);
      const problems = unread.map((failure) => this.#loader.problemOfFailure(failure));
      await this.#loader.validate(next, mode, problems);
      throw new SettingsError(this.name, modeName(mode), problems);
    }

    const changed = targets.filter((field) => !sameRaw(this.#raw.get(field.index), next.get(field.index)));
    if (this.#current !== undefined && changed.length === 0) return this.#current;

    const snapshot = await this.#loader.validate(next, mode, []);
    throwIfAborted(signal);
    if (this.#closed) throw this.#closedError(mode);

    const previous = this.#current;
    this.#raw = next;
    this.#current = snapshot;
    this.#revision++;
    if (previous !== undefined) this.#publish(previous, snapshot, changed);
    return snapshot;
  }

  #publish(previous: SettingsOf<S>, current: SettingsOf<S>, changed: readonly PlannedField[]): void {
    this.#hub.publish(
      Object.freeze({
        revision: this.#revision,
        changed: Object.freeze(changed.map((field) => field.name)),
        keys: Object.freeze([...new Set(changed.map((field) => field.key))]),
        previous,
        current,
        at: new Date(this.#clock.now()),
      }),
    );
    this.#watchers.notify(previous, current, changed);
  }

  #reportError(error: SecretError, fields: readonly PlannedField[], key?: string): void {
    this.#hub.reportError(
      Object.freeze({
        error,
        fields: Object.freeze(fields.map((field) => field.name)),
        keys: Object.freeze(key !== undefined ? [key] : [...new Set(fields.map((field) => field.key))]),
        detectedAt: new Date(this.#clock.now()),
      }),
    );
  }

  #closedError(operation: string): SecretError {
    return new SecretError('CLOSED', `settings "${this.name}" are closed, cannot ${operation}`, {
      provider: this.name,
    });
  }
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
