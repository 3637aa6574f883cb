// A settings object over a chain of env + a secret directory + memory: the path most applications
// take. Rotations arrive through the chain's events; every update is validated before it is used.
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChainedProvider } from '@secret-provider/chained';
import { isSecretError, type Secret } from '@secret-provider/core';
import { sleep } from '@secret-provider/core/adapter';
import { EnvProvider } from '@secret-provider/env';
import { FileProvider } from '@secret-provider/file';
import { MemoryProvider } from '@secret-provider/memory';
import {
  defineSettings,
  isSecretString,
  SettingsError,
  type SettingsErrorEvent,
  type SettingsUpdate,
  type StandardSchemaV1,
} from '@secret-provider/settings';
import { expectNoLeak, until } from '@secret-provider/testing';
import * as v from 'valibot';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';

const DB_PASSWORD = 'file-secret-hunter2-0';
const API_KEY = 'memory-api-key-s3cr3t';
const VALUES = [DB_PASSWORD, API_KEY, 'hunter2', 's3cr3t'];

let dir: string;
let secretsDir: string;
let chain: ChainedProvider;
let memory: MemoryProvider;
let env: Record<string, string | undefined>;

/** Replaces a secret file the way editors and tools do: a complete temporary file renamed over it. */
function writeSecret(name: string, value: string): void {
  // `..`-prefixed names are ignored by the directory layout, so the temporary file is never a key.
  const temporary = join(secretsDir, `..tmp-${name}`);
  writeFileSync(temporary, value, { mode: 0o600 });
  renameSync(temporary, join(secretsDir, name));
}

/** Counts validations without changing what the schema does. */
function spySchema<S extends StandardSchemaV1>(schema: S): { schema: S; calls: () => number } {
  let calls = 0;
  const standard = schema['~standard'];
  const spy = Object.create(schema) as S;
  Object.defineProperty(spy, '~standard', {
    value: {
      ...standard,
      validate: (value: unknown, options?: StandardSchemaV1.Options) => {
        calls++;
        return standard.validate(value, options);
      },
    },
  });
  return { schema: spy, calls: () => calls };
}

function expectNoValue(...things: unknown[]): void {
  expectNoLeak(things, VALUES);
}

const schema = z.object({
  port: z.coerce.number().int().min(1).max(65535),
  dbPassword: z
    .custom<Secret<string>>(isSecretString, { message: 'expected a secret' })
    .refine((secret) => secret.reveal().length >= 12, { message: 'password too short' }),
  apiKey: z.custom<Secret<string>>(isSecretString),
  limits: z.object({ rps: z.number().positive(), burst: z.number().int() }),
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'settings-chain-'));
  secretsDir = join(dir, 'secrets');
  mkdirSync(secretsDir, { mode: 0o700 });
  chmodSync(secretsDir, 0o700);
  writeSecret('DB_PASSWORD', DB_PASSWORD);
  writeSecret('PORT', '1111'); // shadowed by the environment
  env = { APP_PORT: '8080' };
  memory = new MemoryProvider({ initial: { API_KEY, LIMITS: '{"rps":50,"burst":10}' } });
  chain = new ChainedProvider([
    new EnvProvider({ env, prefix: 'APP_', pollInterval: 50 }),
    new FileProvider({ path: secretsDir, debounceMs: 20 }),
    memory,
  ]);
});

afterEach(async () => {
  await chain.close();
  rmSync(dir, { recursive: true, force: true });
});

function defineAppSettings(options: { debounceMs?: number } = {}) {
  const spy = spySchema(schema);
  const settings = defineSettings({
    source: chain,
    schema: spy.schema,
    fields: {
      dbPassword: { secret: true, provider: 'file' },
      apiKey: { secret: true, provider: 'memory' },
      limits: { format: 'json' },
    },
    debounceMs: options.debounceMs ?? 100,
    minIntervalMs: 0,
  });
  const errors: SettingsErrorEvent[] = [];
  settings.on('error', (event) => errors.push(event));
  return { settings, errors, validations: spy.calls };
}

describe('settings over env + file + memory', () => {
  it('loads each field from its layer', async () => {
    const { settings } = defineAppSettings();
    await using _ = settings;
    const config = await settings.load();
    expect(config.port).toBe(8080);
    expect(config.dbPassword.reveal()).toBe(DB_PASSWORD);
    expect(config.apiKey.reveal()).toBe(API_KEY);
    expect(config.limits).toEqual({ rps: 50, burst: 10 });
    expect(settings.routes.map((route) => [route.field, route.key, route.provider])).toEqual([
      ['port', 'PORT', 'chain'],
      ['dbPassword', 'DB_PASSWORD', 'file'],
      ['apiKey', 'API_KEY', 'memory'],
      ['limits', 'LIMITS', 'chain'],
    ]);
    expectNoValue(settings, config);
  });

  it('brings a rotation of a file-backed field to the typed object and its watcher within a second', async () => {
    const { settings, errors } = defineAppSettings();
    await using _ = settings;
    await settings.load();
    const seen: Array<{ old: string; next: string; at: number }> = [];
    settings.onChange('dbPassword', async (oldValue, newValue) => {
      seen.push({ old: oldValue.reveal(), next: newValue.reveal(), at: Date.now() });
    });
    const rotated = 'file-secret-hunter2-1';
    const writtenAt = Date.now();
    writeSecret('DB_PASSWORD', rotated);
    await until(() => seen.length === 1, 5000, 'the watcher');
    const elapsed = (seen[0]?.at ?? Number.POSITIVE_INFINITY) - writtenAt;
    expect(elapsed).toBeLessThan(1000);
    expect(seen[0]).toMatchObject({ old: DB_PASSWORD, next: rotated });
    expect(settings.current.dbPassword.reveal()).toBe(rotated);
    expect(settings.current.port).toBe(8080);
    expect(errors).toEqual([]);
  });

  it('rejects an invalid rotated value and keeps the old snapshot', async () => {
    const { settings, errors } = defineAppSettings();
    await using _ = settings;
    const first = await settings.load();
    let watcherCalls = 0;
    settings.onChange('dbPassword', () => {
      watcherCalls++;
    });
    writeSecret('DB_PASSWORD', 'hunter2');
    await until(() => errors.length >= 1, 5000, 'the error event');
    expect(settings.current).toBe(first);
    expect(settings.current.dbPassword.reveal()).toBe(DB_PASSWORD);
    expect(watcherCalls).toBe(0);
    const error = errors[0]?.error;
    expect(error).toBeInstanceOf(SettingsError);
    expect((error as SettingsError).problems).toEqual([
      expect.objectContaining({ field: 'dbPassword', key: 'DB_PASSWORD', provider: 'file', code: 'custom' }),
    ]);
    // A JSON document that does not parse is rejected too, without quoting it.
    await memory.set('LIMITS', '{"rps": s3cr3t');
    await until(() => errors.length >= 2, 5000, 'the second error event');
    expect((errors[1]?.error as SettingsError | undefined)?.problems[0]).toMatchObject({
      field: 'limits',
      code: 'INVALID_JSON',
    });
    expect(settings.current).toBe(first);
    expectNoValue(errors, settings, settings.current);
  });

  it('turns a burst of 100 rotations in 50 ms into one validation and one watcher call', async () => {
    const { settings, validations, errors } = defineAppSettings({ debounceMs: 150 });
    await using _ = settings;
    await settings.load();
    expect(validations()).toBe(1);
    const calls: Array<[string, string]> = [];
    settings.onChange('apiKey', (oldValue, newValue) => {
      calls.push([oldValue.reveal(), newValue.reveal()]);
    });
    const updates: Array<SettingsUpdate<unknown>> = [];
    settings.on('update', (update) => updates.push(update));
    const started = Date.now();
    for (let i = 0; i < 100; i++) {
      await memory.set('API_KEY', `${API_KEY}-${i}`);
      if (i % 20 === 19) await sleep(8);
    }
    const burstMs = Date.now() - started;
    await until(() => calls.length >= 1, 5000, 'the watcher');
    await sleep(500);
    expect(burstMs).toBeLessThan(150);
    expect(validations()).toBe(2);
    expect(calls).toEqual([[API_KEY, `${API_KEY}-99`]]);
    expect(updates.map((update) => update.changed)).toEqual([['apiKey']]);
    expect(errors).toEqual([]);
  });

  it('follows a change in the environment layer and a key uncovered by a removal', async () => {
    const { settings, errors } = defineAppSettings();
    await using _ = settings;
    await settings.load();
    env.APP_PORT = '9090';
    await until(() => settings.current.port === 9090, 5000, 'the environment change');
    // Removing the variable uncovers the file's PORT: a rotation of the effective value.
    delete env.APP_PORT;
    await until(() => settings.current.port === 1111, 5000, 'the uncovered value');
    expect(errors).toEqual([]);
  });

  it('follows a field routed to a layer even where a higher layer shadows its key', async () => {
    // The chain reports changes of effective values only; this field reads the file layer itself.
    env.APP_DB_PASSWORD = 'env-password-hunter2';
    const { settings, errors } = defineAppSettings();
    await using _ = settings;
    await settings.load();
    expect(settings.current.dbPassword.reveal()).toBe(DB_PASSWORD);
    writeSecret('DB_PASSWORD', 'file-secret-hunter2-3');
    await until(
      () => settings.current.dbPassword.reveal() === 'file-secret-hunter2-3',
      5000,
      'the shadowed rotation',
    );
    expect(errors).toEqual([]);
  });

  it('refreshes with a deadline', async () => {
    const settings = defineSettings({
      source: chain,
      schema,
      fields: { dbPassword: { secret: true }, apiKey: { secret: true }, limits: { format: 'json' } },
      live: false,
    });
    await using _ = settings;
    await settings.load();
    await memory.set('API_KEY', `${API_KEY}-refreshed`);
    const refreshed = await settings.refresh({ timeout: 5000 });
    expect(refreshed.apiKey.reveal()).toBe(`${API_KEY}-refreshed`);
    // A backend that stops answering: the refresh gives up at its deadline and keeps the snapshot.
    const hanging = new MemoryProvider({ name: 'hanging', initial: { API_KEY } });
    const stuck = defineSettings({
      source: chain,
      providers: { hanging },
      schema,
      fields: {
        dbPassword: { secret: true },
        apiKey: { secret: true, provider: 'hanging' },
        limits: { format: 'json' },
      },
      live: false,
    });
    await using __ = stuck;
    const before = await stuck.load();
    hanging.get = (_key, options) =>
      new Promise((_resolve, reject) =>
        options?.signal?.addEventListener('abort', () => reject(options.signal?.reason)),
      );
    const started = Date.now();
    const error = await stuck.refresh({ timeout: 100 }).catch((e: unknown) => e);
    expect(isSecretError(error, 'TIMEOUT')).toBe(true);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(stuck.current).toBe(before);
  });

  it('works the same with a valibot schema, whose messages quote values', async () => {
    const settings = defineSettings({
      source: chain,
      schema: v.object({
        port: v.pipe(v.string(), v.transform(Number), v.integer()),
        dbPassword: v.pipe(v.string(), v.minLength(64)),
      }),
      live: false,
    });
    await using _ = settings;
    const error = await settings.load().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SettingsError);
    expect((error as SettingsError).problems).toEqual([
      expect.objectContaining({
        field: 'dbPassword',
        key: 'DB_PASSWORD',
        provider: 'chain',
        code: 'min_length',
      }),
    ]);
    expectNoValue(error);
  });
});

describe('settings over a Kubernetes secret volume', () => {
  let volume: string;
  let generation = 0;

  /** What the kubelet's AtomicWriter does: a new timestamped directory, then one rename of `..data`. */
  function publish(values: Record<string, string>): void {
    const stamp = `..2026_11_22_00_00_0${generation++}.${Math.random().toString(36).slice(2, 8)}`;
    mkdirSync(join(volume, stamp), { mode: 0o700 });
    for (const [name, value] of Object.entries(values))
      writeFileSync(join(volume, stamp, name), value, { mode: 0o600 });
    symlinkSync(stamp, join(volume, '..data_tmp'));
    renameSync(join(volume, '..data_tmp'), join(volume, '..data'));
    for (const name of Object.keys(values)) {
      try {
        symlinkSync(join('..data', name), join(volume, name));
      } catch {
        // the key's link exists from an earlier generation
      }
    }
  }

  beforeEach(() => {
    volume = join(dir, 'volume');
    mkdirSync(volume, { mode: 0o700 });
    publish({ DB_PASSWORD: DB_PASSWORD, DB_USER: 'app' });
  });

  it('applies an AtomicWriter switch as one validated update', async () => {
    const file = new FileProvider({ path: volume, debounceMs: 20, name: 'volume' });
    const spy = spySchema(
      z.object({
        db: z.object({ user: z.string(), password: z.custom<Secret<string>>(isSecretString) }),
      }),
    );
    const settings = defineSettings({
      source: file,
      schema: spy.schema,
      fields: { db: { fields: { password: { secret: true } } } },
      debounceMs: 100,
    });
    try {
      await settings.load();
      const seen: Array<[string, string]> = [];
      settings.onChange('db', (oldDb, newDb) => {
        seen.push([`${oldDb.user}/${oldDb.password.reveal()}`, `${newDb.user}/${newDb.password.reveal()}`]);
      });
      // Both keys change in one switch: one validation, one watcher call, both values at once.
      publish({ DB_PASSWORD: 'file-secret-hunter2-9', DB_USER: 'app2' });
      await until(() => seen.length === 1, 5000, 'the switch');
      await sleep(300);
      expect(seen).toEqual([[`app/${DB_PASSWORD}`, 'app2/file-secret-hunter2-9']]);
      expect(spy.calls()).toBe(2);
      expectNoValue(settings, settings.current);
    } finally {
      await settings.close();
      await file.close();
    }
  });
});
