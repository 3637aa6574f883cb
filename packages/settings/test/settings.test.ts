import { inspect } from 'node:util';
import { isSecretError, Secret, SecretError } from '@secret-provider/core';
import { AsyncQueue } from '@secret-provider/core/adapter';
import { EnvProvider } from '@secret-provider/env';
import { MemoryProvider, MemoryStore } from '@secret-provider/memory';
import {
  defineSettings,
  isSecretString,
  loadSettings,
  SETTINGS_ERROR_WARNING,
  SETTINGS_LISTENER_WARNING,
  SettingsError,
  type SettingsErrorEvent,
  type SettingsUpdate,
} from '@secret-provider/settings';
import { expectNoLeak, rejection, until } from '@secret-provider/testing';
import * as v from 'valibot';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ControlledProvider, spySchema } from './helpers.js';

const PASSWORD = 'hunter2-correct-horse';
const NEXT_PASSWORD = 'tr0ub4dor-and-3-more';

const appSchema = z.object({
  port: z.coerce.number().int().min(1).max(65535),
  logLevel: z.enum(['debug', 'info', 'warn']).default('info'),
  dbPassword: z.custom<Secret<string>>(isSecretString),
  db: z.object({ host: z.string().min(1), user: z.string() }),
  features: z.object({ beta: z.boolean(), ratio: z.number() }),
});

const disposers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const dispose of disposers.splice(0)) await dispose();
});

function track<T extends { close(): Promise<void> }>(thing: T): T {
  disposers.push(() => thing.close());
  return thing;
}

function appSource(extra: Record<string, string> = {}) {
  const store = new MemoryStore({
    PORT: '8080',
    DB_PASSWORD: PASSWORD,
    DB_HOST: 'db.internal',
    DB_USER: 'app',
    FEATURES: '{"beta":true,"ratio":0.25}',
    ...extra,
  });
  return { store, provider: track(new MemoryProvider({ store })) };
}

describe('load', () => {
  it('routes fields by convention, parses JSON documents and returns a frozen typed object', async () => {
    const { provider } = appSource();
    const settings = track(
      defineSettings({
        source: provider,
        schema: appSchema,
        fields: { dbPassword: { secret: true }, features: { format: 'json' } },
        live: false,
      }),
    );
    expect(settings.routes.map((route) => [route.field, route.key])).toEqual([
      ['port', 'PORT'],
      ['logLevel', 'LOG_LEVEL'],
      ['dbPassword', 'DB_PASSWORD'],
      ['db.host', 'DB_HOST'],
      ['db.user', 'DB_USER'],
      ['features', 'FEATURES'],
    ]);
    const config = await settings.load();
    expect(config.port).toBe(8080);
    expect(config.logLevel).toBe('info');
    expect(config.db).toEqual({ host: 'db.internal', user: 'app' });
    expect(config.features).toEqual({ beta: true, ratio: 0.25 });
    expect(Secret.isSecret(config.dbPassword)).toBe(true);
    expect(config.dbPassword.reveal()).toBe(PASSWORD);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.db)).toBe(true);
    expect(() => {
      (config as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(settings.current).toBe(config);
    expect(await settings.load()).toBe(config);
    expect(settings.revision).toBe(1);
  });

  it('discovers object fields as JSON documents when a key is named, and honours defaults and skips', async () => {
    const store = new MemoryStore({ APP_DB: '{"host":"h","user":"u"}', APP_PORT: '1', SHARED: 'x' });
    const provider = track(new MemoryProvider({ store }));
    const schema = z.object({
      db: z.object({ host: z.string(), user: z.string() }),
      port: z.coerce.number(),
      region: z.string(),
      unused: z.string().optional(),
      alias: z.string(),
    });
    const config = await track(
      defineSettings({
        source: provider,
        schema,
        keyPrefix: 'APP_',
        fields: {
          db: { key: 'APP_DB' },
          region: { default: 'eu-west' },
          unused: { skip: true },
          alias: 'SHARED',
        },
        live: false,
      }),
    ).load();
    expect(config).toEqual({ db: { host: 'h', user: 'u' }, port: 1, region: 'eu-west', alias: 'x' });
  });

  it('reads every key concurrently, one read per provider and key', async () => {
    const provider = track(new ControlledProvider({ initial: { A: '1', B: '2', C: '3' } }));
    provider.delayMs = 200;
    const schema = z.object({ a: z.string(), b: z.string(), c: z.string(), alsoA: z.string() });
    const settings = track(defineSettings({ source: provider, schema, fields: { alsoA: 'A' }, live: false }));
    const started = Date.now();
    await settings.load();
    // Sequential reads would take 600 ms or more; concurrent ones about 200.
    expect(Date.now() - started).toBeLessThan(550);
    expect(provider.reads).toBe(3);
  });

  it('reports every problem at once, with field, key, provider and why, and no value', async () => {
    const { provider } = appSource({ PORT: 'not-a-port-hunter2', FEATURES: `{"beta": ${PASSWORD}` });
    await provider.delete('DB_HOST');
    const vault = track(new ControlledProvider({ name: 'vault', initial: { DB_PASSWORD: PASSWORD } }));
    vault.failing.add('DB_PASSWORD');
    const settings = track(
      defineSettings({
        source: provider,
        providers: { vault },
        schema: appSchema,
        fields: { dbPassword: { secret: true, provider: 'vault' }, features: { format: 'json' } },
        live: false,
      }),
    );
    const error = await settings.load().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SettingsError);
    const problems = (error as SettingsError).problems;
    expect(problems.map((p) => [p.field, p.key, p.provider, p.code])).toEqual(
      expect.arrayContaining([
        ['dbPassword', 'DB_PASSWORD', 'vault', 'UNAVAILABLE'],
        ['features', 'FEATURES', 'memory', 'INVALID_JSON'],
        ['port', 'PORT', 'memory', 'invalid_type'],
        ['db.host', 'DB_HOST', 'memory', 'MISSING'],
      ]),
    );
    expect(problems).toHaveLength(4);
    expect((error as SettingsError).message).toContain('db.host (key "DB_HOST", provider "memory"): MISSING');
    expect((error as SettingsError).code).toBe('INVALID_VALUE');
    expect(isSecretError(error)).toBe(true);
    expectNoLeak([error], [PASSWORD, 'not-a-port', 'hunter2']);
    expect(settings.loaded).toBe(false);
    expect(() => settings.current).toThrow(/not loaded/);
  });

  it('keeps valibot messages, which quote the input, out of errors', async () => {
    const provider = track(new MemoryProvider({ initial: { TOKEN: 'short-hunter2', MODE: 'hunter2-mode' } }));
    const schema = v.object({
      token: v.pipe(v.string(), v.minLength(64)),
      mode: v.picklist(['a', 'b']),
    });
    // The library's own message quotes the value: what must not come through.
    const raw = await schema['~standard'].validate({ token: 'short-hunter2', mode: 'hunter2-mode' });
    expect(JSON.stringify(raw.issues)).toContain('hunter2');
    const error = await track(defineSettings({ source: provider, schema, live: false }))
      .load()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SettingsError);
    expect((error as SettingsError).problems.map((p) => [p.field, p.code])).toEqual([
      ['token', 'min_length'],
      ['mode', 'picklist'],
    ]);
    expect((error as SettingsError).message).toContain('min_length: expected >=64');
    expectNoLeak([error], ['hunter2']);
  });

  it('uses the problem code of the read failure when nothing else is wrong', async () => {
    const provider = track(new ControlledProvider({ initial: { A: 'x' } }));
    provider.failing.add('A');
    const error = await track(
      defineSettings({ source: provider, schema: z.object({ a: z.string() }), live: false }),
    )
      .load()
      .catch((e: unknown) => e);
    expect((error as SettingsError).code).toBe('UNAVAILABLE');
    expect((error as SettingsError).retryable).toBe(true);
  });

  it('rejects routing to unknown providers and schemas without discoverable fields when defined', () => {
    const provider = track(new MemoryProvider());
    expect(() =>
      defineSettings({
        source: provider,
        schema: z.object({ a: z.string() }),
        fields: { a: { provider: 'nope' } },
      }),
    ).toThrow(/unknown provider "nope"/);
    const opaque: import('@standard-schema/spec').StandardSchemaV1<unknown, { a: string }> = {
      '~standard': { version: 1, vendor: 'custom', validate: (value) => ({ value: value as { a: string } }) },
    };
    expect(() => defineSettings({ source: provider, schema: opaque })).toThrow(/no field found/);
    expect(() => defineSettings({ schema: z.object({ a: z.string() }) })).toThrow(/no `source`/);
  });

  it('works with any Standard Schema when the fields are listed', async () => {
    const provider = track(new MemoryProvider({ initial: { API_KEY: 'k-123' } }));
    const schema: import('@standard-schema/spec').StandardSchemaV1<unknown, { apiKey: string }> = {
      '~standard': {
        version: 1,
        vendor: 'hand-written',
        validate: (value) => {
          const key = (value as { apiKey?: unknown }).apiKey;
          return typeof key === 'string'
            ? { value: { apiKey: key } }
            : { issues: [{ message: 'bad', path: ['apiKey'] }] };
        },
      },
    };
    const config = await track(
      defineSettings({ source: provider, schema, fields: { apiKey: {} }, live: false }),
    ).load();
    expect(config.apiKey).toBe('k-123');
  });

  it('rejects with a TIMEOUT error when load takes too long', async () => {
    const provider = track(new ControlledProvider({ initial: { A: 'x' } }));
    provider.delayMs = 2000;
    const settings = track(
      defineSettings({ source: provider, schema: z.object({ a: z.string() }), live: false }),
    );
    const error = await settings.load({ timeout: 50 }).catch((e: unknown) => e);
    expect(isSecretError(error, 'TIMEOUT')).toBe(true);
  });
});

describe('secrets in the typed object', () => {
  it('keeps secret fields wrapped, string leaves of secret JSON documents too, unless the schema unwraps', async () => {
    const provider = track(
      new MemoryProvider({
        initial: { DB_CREDS: `{"user":"app","password":"${PASSWORD}","port":5432}`, TOKEN: PASSWORD },
      }),
    );
    const schema = z.object({
      dbCreds: z.object({
        user: z.custom<Secret<string>>(isSecretString),
        password: z.custom<Secret<string>>(isSecretString),
        port: z.number(),
      }),
      token: z.custom<Secret<string>>(isSecretString).transform((secret) => secret.reveal()),
    });
    const settings = track(
      defineSettings({
        source: provider,
        schema,
        fields: { dbCreds: { key: 'DB_CREDS', secret: true }, token: { secret: true } },
        live: false,
      }),
    );
    const config = await settings.load();
    expect(config.dbCreds.password.reveal()).toBe(PASSWORD);
    expect(config.dbCreds.port).toBe(5432);
    expect(config.token).toBe(PASSWORD);
  });

  it('says how to validate a secret field when its schema expects a plain string', async () => {
    const provider = track(new MemoryProvider({ initial: { TOKEN: PASSWORD } }));
    const error = await track(
      defineSettings({
        source: provider,
        schema: z.object({ token: z.string() }),
        fields: { token: { secret: true } },
      }),
    )
      .load()
      .catch((e: unknown) => e);
    expect((error as SettingsError).message).toContain('reaches the schema as a Secret<string>');
    expectNoLeak([error], [PASSWORD]);
  });

  it('never shows a value through util.inspect or JSON of the settings or their snapshot', async () => {
    const { provider } = appSource();
    const settings = track(
      defineSettings({
        source: provider,
        schema: appSchema,
        fields: { dbPassword: { secret: true }, features: { format: 'json' } },
        name: 'app',
        live: false,
      }),
    );
    const config = await settings.load();
    for (const rendering of [
      inspect(settings),
      inspect(config, { depth: 10 }),
      inspect(config.db),
      inspect({ config }, { depth: 10 }),
      JSON.stringify(config),
      JSON.stringify(settings),
      JSON.stringify({ nested: config }),
      `${config.dbPassword}`,
    ]) {
      for (const value of [PASSWORD, 'db.internal', '8080', '0.25']) expect(rendering).not.toContain(value);
    }
    expect(inspect(config)).toContain('port: [REDACTED]');
    expect(inspect(config)).toContain('db: { host: [REDACTED], user: [REDACTED] }');
    expect(JSON.parse(JSON.stringify(config))).toMatchObject({
      port: '[REDACTED]',
      db: { host: '[REDACTED]' },
    });
    expect(inspect(settings)).toBe('Settings { name: "app", fields: 6, revision: 1 }');
  });
});

describe('live updates', () => {
  const schema = z.object({
    port: z.coerce.number().int().min(1),
    dbPassword: z.custom<Secret<string>>(isSecretString),
  });

  function live(options: { debounceMs?: number; minIntervalMs?: number } = {}) {
    const store = new MemoryStore({ PORT: '8080', DB_PASSWORD: PASSWORD });
    const provider = track(new MemoryProvider({ store }));
    const spy = spySchema(schema);
    const settings = track(
      defineSettings({
        source: provider,
        schema: spy.schema,
        fields: { dbPassword: { secret: true } },
        debounceMs: options.debounceMs ?? 20,
        minIntervalMs: options.minIntervalMs ?? 0,
      }),
    );
    const errors: SettingsErrorEvent[] = [];
    settings.on('error', (event) => errors.push(event));
    return { store, settings, errors, validations: spy.calls };
  }

  it('applies a rotation to the typed object and calls the watcher with old and new values', async () => {
    const { store, settings } = live();
    const first = await settings.load();
    const calls: Array<[string, string]> = [];
    settings.onChange('dbPassword', async (oldValue, newValue) => {
      calls.push([oldValue.reveal(), newValue.reveal()]);
    });
    store.set('DB_PASSWORD', NEXT_PASSWORD);
    await until(() => calls.length === 1, 2000, 'the watcher');
    expect(calls).toEqual([[PASSWORD, NEXT_PASSWORD]]);
    expect(settings.current.dbPassword.reveal()).toBe(NEXT_PASSWORD);
    expect(settings.current.port).toBe(8080);
    expect(first.dbPassword.reveal()).toBe(PASSWORD);
    expect(settings.revision).toBe(2);
  });

  it('validates before swapping: an invalid value keeps the last good snapshot and emits an error event', async () => {
    const { store, settings, errors, validations } = live();
    const first = await settings.load();
    let watcherCalls = 0;
    settings.onChange('port', () => {
      watcherCalls++;
    });
    store.set('PORT', '-hunter2');
    await until(() => errors.length === 1, 2000, 'the error event');
    expect(settings.current).toBe(first);
    expect(settings.current.port).toBe(8080);
    expect(watcherCalls).toBe(0);
    expect(validations()).toBe(2);
    const event = errors[0];
    expect(event?.error).toBeInstanceOf(SettingsError);
    expect(event?.fields).toEqual(['port']);
    expect(event?.keys).toEqual(['PORT']);
    expect((event?.error as SettingsError | undefined)?.problems[0]).toMatchObject({
      field: 'port',
      key: 'PORT',
      code: 'invalid_type',
    });
    expectNoLeak([errors], ['hunter2', PASSWORD]);
    // A later valid value is applied.
    store.set('PORT', '9090');
    await until(() => settings.current.port === 9090, 2000, 'the valid update');
    expect(watcherCalls).toBe(1);
  });

  it('turns a burst of 100 rotations in 50 ms into one validation and one watcher call', async () => {
    const { store, settings, validations } = live({ debounceMs: 150 });
    await settings.load();
    expect(validations()).toBe(1);
    const calls: Array<[string, string]> = [];
    settings.onChange('dbPassword', (oldValue, newValue) => {
      calls.push([oldValue.reveal(), newValue.reveal()]);
    });
    const started = Date.now();
    for (let i = 0; i < 100; i++) {
      store.set('DB_PASSWORD', `${NEXT_PASSWORD}-${i}`);
      if (i % 10 === 9) await new Promise((resolve) => setTimeout(resolve, 4));
    }
    const burstMs = Date.now() - started;
    await until(() => calls.length >= 1, 3000, 'the watcher');
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(burstMs).toBeLessThan(150);
    expect(validations()).toBe(2);
    expect(calls).toEqual([[PASSWORD, `${NEXT_PASSWORD}-99`]]);
  });

  it('reloads a source that is never quiet at least every maxWaitMs, and throttles reloads', async () => {
    const store = new MemoryStore({ A: '0' });
    const provider = track(new MemoryProvider({ store }));
    const spy = spySchema(z.object({ a: z.string() }));
    const settings = track(
      defineSettings({
        source: provider,
        schema: spy.schema,
        debounceMs: 100,
        maxWaitMs: 200,
        minIntervalMs: 300,
      }),
    );
    await settings.load();
    const started = Date.now();
    let i = 0;
    // An event every 20 ms for 1 s: debounce alone would never fire.
    while (Date.now() - started < 1000) {
      store.set('A', String(++i));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const validations = spy.calls() - 1;
    expect(validations).toBeGreaterThanOrEqual(1);
    // minIntervalMs 300 allows at most 4 reloads in 1 s (plus one at the very end).
    expect(validations).toBeLessThanOrEqual(5);
    await until(() => settings.current.a === String(i), 2000, 'the last value');
  });

  it('follows added and removed keys through the schema', async () => {
    const store = new MemoryStore({ A: 'x' });
    const provider = track(new MemoryProvider({ store }));
    const settings = track(
      defineSettings({
        source: provider,
        schema: z.object({ a: z.string(), b: z.string().optional() }),
        debounceMs: 10,
      }),
    );
    const errors: SettingsErrorEvent[] = [];
    settings.on('error', (event) => errors.push(event));
    await settings.load();
    expect(settings.current.b).toBeUndefined();
    store.set('B', 'y');
    await until(() => settings.current.b === 'y', 2000, 'the added key');
    store.delete('B');
    await until(() => settings.current.b === undefined, 2000, 'the removed key');
    // Removing a required key is an invalid update: the old snapshot stays.
    store.delete('A');
    await until(() => errors.length === 1, 2000, 'the error event');
    expect(settings.current.a).toBe('x');
    expect((errors[0]?.error as SettingsError | undefined)?.problems[0]).toMatchObject({
      field: 'a',
      code: 'MISSING',
    });
  });

  it('ignores events for keys no field reads', async () => {
    const { store, settings, validations } = live();
    await settings.load();
    store.set('UNRELATED', 'x');
    store.set('UNRELATED', 'y');
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(validations()).toBe(1);
    expect(settings.revision).toBe(1);
  });

  it('keeps the last good value of a field that cannot be re-read, reports it, and retries', async () => {
    const store = new MemoryStore({ A: 'a1', B: 'b1' });
    const provider = track(new ControlledProvider({ store }));
    const settings = track(
      defineSettings({
        source: provider,
        schema: z.object({ a: z.string(), b: z.string() }),
        debounceMs: 10,
        retryDelayMs: 50,
      }),
    );
    const errors: SettingsErrorEvent[] = [];
    settings.on('error', (event) => errors.push(event));
    await settings.load();
    provider.failing.add('A');
    store.set('A', 'a2');
    store.set('B', 'b2');
    await until(() => settings.current.b === 'b2', 2000, 'the readable field');
    expect(settings.current.a).toBe('a1');
    expect(errors[0]?.error.code).toBe('UNAVAILABLE');
    expect(errors[0]?.fields).toEqual(['a']);
    provider.failing.delete('A');
    await until(() => settings.current.a === 'a2', 3000, 'the retried field');
  });
});

describe('watchers and updates', () => {
  it('awaits watchers in order; one that throws is reported and the others still run', async () => {
    const store = new MemoryStore({ A: '1', B: '2' });
    const provider = track(new MemoryProvider({ store }));
    const settings = track(
      defineSettings({
        source: provider,
        schema: z.object({ a: z.string(), b: z.string() }),
        debounceMs: 20,
      }),
    );
    const errors: SettingsErrorEvent[] = [];
    settings.on('error', (event) => errors.push(event));
    await settings.load();
    const log: string[] = [];
    settings.onChange('a', async (oldValue, newValue) => {
      log.push(`first start ${oldValue}->${newValue}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
      log.push('first end');
    });
    settings.onChange('a', () => {
      throw new Error(`leaky watcher: ${PASSWORD}`);
    });
    settings.onChange({ key: 'A' }, (oldValue, newValue) => {
      log.push(`by key ${String(oldValue)}->${String(newValue)}`);
    });
    const removed = settings.onChange('b', () => {
      log.push('b');
    });
    removed();
    store.set('A', '10');
    store.set('B', '20');
    await until(() => log.length === 3, 2000, 'the watchers');
    expect(log).toEqual(['first start 1->10', 'first end', 'by key 1->10']);
    await until(() => errors.length === 1, 2000, 'the watcher error');
    expect(errors[0]?.error.message).toContain('the watcher of "a" threw Error');
    expectNoLeak([errors], [PASSWORD]);
  });

  it('refuses to watch what is not routed', async () => {
    const provider = track(new MemoryProvider({ initial: { A: '1' } }));
    const settings = track(
      defineSettings({ source: provider, schema: z.object({ a: z.string() }), live: false }),
    );
    // @ts-expect-error not a field of the settings
    expect(() => settings.onChange('nope', () => {})).toThrow(/no routed field or key "nope"/);
    expect(() => settings.onChange({ key: 'NOPE' }, () => {})).toThrow(/no routed field or key/);
  });

  it('iterates updates until the settings are closed', async () => {
    const store = new MemoryStore({ A: '1' });
    const provider = track(new MemoryProvider({ store }));
    const settings = defineSettings({
      source: provider,
      schema: z.object({ a: z.string() }),
      debounceMs: 10,
    });
    await settings.load();
    const seen: Array<SettingsUpdate<{ readonly a: string }>> = [];
    const consumer = (async () => {
      for await (const update of settings.updates()) {
        seen.push(update);
        if (seen.length === 2) await settings.close();
      }
      return 'ended';
    })();
    store.set('A', '2');
    await until(() => seen.length === 1, 2000, 'the first update');
    store.set('A', '3');
    expect(await consumer).toBe('ended');
    expect(
      seen.map((update) => [
        update.revision,
        update.changed,
        update.keys,
        update.previous.a,
        update.current.a,
      ]),
    ).toEqual([
      [2, ['a'], ['A'], '1', '2'],
      [3, ['a'], ['A'], '2', '3'],
    ]);
    expect(inspect(seen[0])).not.toContain("'2'");
  });

  it('ends the iteration when its signal aborts', async () => {
    const provider = track(new MemoryProvider({ initial: { A: '1' } }));
    const settings = track(defineSettings({ source: provider, schema: z.object({ a: z.string() }) }));
    await settings.load();
    const controller = new AbortController();
    const consumer = (async () => {
      let count = 0;
      for await (const _ of settings.updates({ signal: controller.signal })) count++;
      return count;
    })();
    setTimeout(() => controller.abort(), 30);
    expect(await consumer).toBe(0);
  });
});

describe('refresh and lifecycle', () => {
  it('re-reads everything now, and rejects with a TIMEOUT error when too slow', async () => {
    const store = new MemoryStore({ A: '1' });
    const provider = track(new ControlledProvider({ store }));
    const settings = track(
      defineSettings({ source: provider, schema: z.object({ a: z.string() }), live: false }),
    );
    await settings.load();
    store.set('A', '2');
    expect((await settings.refresh()).a).toBe('2');
    provider.delayMs = 2000;
    store.set('A', '3');
    const error = await settings.refresh({ timeout: 50 }).catch((e: unknown) => e);
    expect(isSecretError(error, 'TIMEOUT')).toBe(true);
    expect((error as SecretError).message).toContain('timed out after 50 ms');
    expect(settings.current.a).toBe('2');
  });

  it('rejects an invalid refresh and keeps the last good snapshot', async () => {
    const store = new MemoryStore({ N: '1' });
    const provider = track(new MemoryProvider({ store }));
    const settings = track(
      defineSettings({ source: provider, schema: z.object({ n: z.coerce.number() }), live: false }),
    );
    const first = await settings.load();
    store.set('N', 'NaN-hunter2');
    await expect(settings.refresh()).rejects.toBeInstanceOf(SettingsError);
    expect(settings.current).toBe(first);
  });

  it('stops following the source on close, rejects later calls, and supports await using', async () => {
    const store = new MemoryStore({ A: '1' });
    const provider = track(new MemoryProvider({ store }));
    const spy = spySchema(z.object({ a: z.string() }));
    {
      await using settings = defineSettings({ source: provider, schema: spy.schema, debounceMs: 10 });
      await settings.load();
    }
    store.set('A', '2');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(spy.calls()).toBe(1);
    const settings = defineSettings({ source: provider, schema: spy.schema });
    await settings.close();
    await settings.close();
    await expect(settings.load()).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(settings.refresh()).rejects.toMatchObject({ code: 'CLOSED' });
    expect(settings.closed).toBe(true);
  });

  it('loadSettings defines and loads in one step', async () => {
    const provider = track(new MemoryProvider({ initial: { A: '1' } }));
    const settings = track(
      await loadSettings({ source: provider, schema: z.object({ a: z.string() }), live: false }),
    );
    expect(settings.current.a).toBe('1');
  });

  it('is an instance of the error taxonomy', () => {
    expect(new SettingsError('s', 'load', [{ field: 'a', code: 'x', reason: 'x' }])).toBeInstanceOf(
      SecretError,
    );
  });
});

describe('empty strings', () => {
  const portSchema = z.object({ port: z.coerce.number().int().min(1).default(8080), name: z.string() });

  it('reach the schema as they are by default: APP_PORT= is 0 to z.coerce.number()', async () => {
    const env = new EnvProvider({ env: { APP_PORT: '', APP_NAME: 'api' }, prefix: 'APP_' });
    disposers.push(() => env.close());
    const error = (await rejection(
      track(defineSettings({ source: env, schema: portSchema, live: false })).load(),
    )) as SettingsError;
    expect(error.problems.map((p) => [p.field, p.code])).toEqual([['port', 'too_small']]);
  });

  it('are unset with emptyStringAsUndefined: the default applies, a required field is MISSING', async () => {
    const env = new EnvProvider({ env: { APP_PORT: '', APP_NAME: '' }, prefix: 'APP_' });
    disposers.push(() => env.close());
    const error = (await rejection(
      track(
        defineSettings({ source: env, schema: portSchema, live: false, emptyStringAsUndefined: true }),
      ).load(),
    )) as SettingsError;
    expect(error.problems.map((p) => [p.field, p.code])).toEqual([['name', 'MISSING']]);
    expect(error.message).toContain('the key does not exist or is empty');

    const store = new MemoryStore({ PORT: '', NAME: 'api' });
    const provider = track(new MemoryProvider({ store }));
    const settings = track(
      defineSettings({
        source: provider,
        schema: portSchema,
        emptyStringAsUndefined: true,
        debounceMs: 5,
        minIntervalMs: 0,
      }),
    );
    expect((await settings.load()).port).toBe(8080);
    store.set('PORT', '9090');
    await until(() => settings.current.port === 9090, 2000, 'the set port');
    // Emptied again: unset, so the default is back.
    store.set('PORT', '');
    await until(() => settings.current.port === 8080, 2000, 'the default port');
  });
});

describe('process warnings', () => {
  it('are coded SECRET_PROVIDER_SETTINGS_*, and carry no value', async () => {
    const warnings: Array<Error & { code?: string }> = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const store = new MemoryStore({ A: '1' });
      const provider = track(new MemoryProvider({ store }));
      const settings = track(
        defineSettings({
          source: provider,
          schema: z.object({ a: z.string().min(2) }).or(z.object({ a: z.literal('1') })),
          fields: { a: {} },
          debounceMs: 5,
          minIntervalMs: 0,
        }),
      );
      await settings.load();
      // No `error` listener: a rejected update becomes a process warning.
      store.set('A', PASSWORD.slice(0, 1));
      await until(() => warnings.some((w) => w.code === SETTINGS_ERROR_WARNING), 2000, 'the error warning');
      // A listener that throws (with a value in its message) is reported by the kind of error only.
      settings.on('update', () => {
        throw new Error(`listener saw ${PASSWORD}`);
      });
      store.set('A', NEXT_PASSWORD);
      await until(
        () => warnings.some((w) => w.code === SETTINGS_LISTENER_WARNING),
        2000,
        'the listener warning',
      );
      expect(SETTINGS_ERROR_WARNING).toBe('SECRET_PROVIDER_SETTINGS_ERROR');
      expect(SETTINGS_LISTENER_WARNING).toBe('SECRET_PROVIDER_SETTINGS_LISTENER_ERROR');
      expect(warnings.find((w) => w.code === SETTINGS_LISTENER_WARNING)?.message).toBe(
        'a listener of the "update" settings event threw Error',
      );
      expectNoLeak(warnings, [PASSWORD, NEXT_PASSWORD]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('the update stream', () => {
  async function withTwoUpdates() {
    const store = new MemoryStore({ A: '1' });
    const provider = track(new MemoryProvider({ store }));
    const settings = track(
      defineSettings({
        source: provider,
        schema: z.object({ a: z.string() }),
        debounceMs: 5,
        minIntervalMs: 0,
      }),
    );
    await settings.load();
    return { store, settings };
  }

  it("is core's AsyncQueue, the mechanism of providers' changes()", async () => {
    const { settings } = await withTwoUpdates();
    expect(settings.updates()).toBeInstanceOf(AsyncQueue);
  });

  it('ends on close after the updates already queued', async () => {
    const { store, settings } = await withTwoUpdates();
    const stream = settings.updates();
    store.set('A', '2');
    await until(() => settings.revision === 2, 2000, 'the first update');
    store.set('A', '3');
    await until(() => settings.revision === 3, 2000, 'the second update');
    await settings.close();
    const seen: string[] = [];
    for await (const update of stream) seen.push(update.current.a);
    expect(seen).toEqual(['2', '3']);
    // One asked for after the close ends at once.
    expect(await settings.updates().next()).toEqual({ value: undefined, done: true });
  });

  it('drops what is queued when its signal aborts', async () => {
    const { store, settings } = await withTwoUpdates();
    const controller = new AbortController();
    const stream = settings.updates({ signal: controller.signal });
    store.set('A', '2');
    await until(() => settings.revision === 2, 2000, 'the update');
    controller.abort();
    expect(await stream.next()).toEqual({ value: undefined, done: true });
    const aborted = settings.updates({ signal: AbortSignal.abort() });
    expect(await aborted.next()).toEqual({ value: undefined, done: true });
  });
});
