import type { Secret } from '@secret-provider/core';
import { ManualClock } from '@secret-provider/core/adapter';
import { MemoryProvider } from '@secret-provider/memory';
import {
  defineSettings,
  isSecretString,
  loadSettingsOrExit,
  type Settings,
  type SettingsOf,
  type SettingsReport,
  type SettingsUpdate,
} from '@secret-provider/settings';
import * as v from 'valibot';
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';

const source = new MemoryProvider();

describe('settings inferred from a zod schema', () => {
  const schema = z.object({
    port: z.coerce.number().int(),
    debug: z.stringbool().default(false),
    logLevel: z.enum(['debug', 'info']).optional(),
    dbPassword: z.custom<Secret<string>>(isSecretString),
    apiToken: z.custom<Secret<string>>(isSecretString).transform((secret) => secret.reveal()),
    db: z.object({ host: z.string(), replicas: z.array(z.string()) }),
  });
  const settings = defineSettings({
    source,
    schema,
    fields: {
      dbPassword: { secret: true },
      apiToken: { secret: true },
      db: { fields: { replicas: { format: 'json' } } },
    },
  });

  it('gives the schema output, read-only, with secret fields still Secret', async () => {
    const config = await settings.load();
    expectTypeOf(config.port).toEqualTypeOf<number>();
    expectTypeOf(config.debug).toEqualTypeOf<boolean>();
    expectTypeOf(config.logLevel).toEqualTypeOf<'debug' | 'info' | undefined>();
    expectTypeOf(config.dbPassword).toEqualTypeOf<Secret<string>>();
    // The schema unwrapped this one explicitly.
    expectTypeOf(config.apiToken).toEqualTypeOf<string>();
    expectTypeOf(config.db.host).toEqualTypeOf<string>();
    expectTypeOf(config.db.replicas).toEqualTypeOf<readonly string[]>();
    expectTypeOf(config).toEqualTypeOf<SettingsOf<typeof schema>>();
    expectTypeOf(settings.current).toEqualTypeOf<typeof config>();
    expectTypeOf(settings).toEqualTypeOf<Settings<typeof schema>>();
    // @ts-expect-error the snapshot is read-only
    config.port = 1;
    // @ts-expect-error nested objects too
    config.db.host = 'x';
  });

  it('types watchers by field path', () => {
    settings.onChange('dbPassword', (oldValue, newValue) => {
      expectTypeOf(oldValue).toEqualTypeOf<Secret<string>>();
      expectTypeOf(newValue).toEqualTypeOf<Secret<string>>();
    });
    settings.onChange('db.host', (_old, host) => {
      expectTypeOf(host).toEqualTypeOf<string>();
    });
    settings.onChange('db', (_old, db) => {
      expectTypeOf(db.replicas).toEqualTypeOf<readonly string[]>();
    });
    settings.onChange({ key: 'DB_PASSWORD' }, (_old, value) => {
      expectTypeOf(value).toEqualTypeOf<unknown>();
    });
    // @ts-expect-error not a field
    settings.onChange('dbPasword', () => {});
  });

  it('types updates', async () => {
    for await (const update of settings.updates()) {
      expectTypeOf(update).toEqualTypeOf<SettingsUpdate<SettingsOf<typeof schema>>>();
      expectTypeOf(update.current.port).toEqualTypeOf<number>();
    }
  });

  it('checks the routing against the schema input', () => {
    defineSettings({
      source,
      schema,
      // @ts-expect-error no such field in the schema
      fields: { dbPasswrd: { secret: true } },
    });
    defineSettings({
      source,
      schema,
      // @ts-expect-error a string leaf cannot have nested fields
      fields: { db: { fields: { host: { fields: {} } } } },
    });
    defineSettings({
      source,
      schema,
      fields: { port: 'APP_PORT', db: { provider: 'vault', fields: { host: 'DB_HOST' } } },
    });
  });
});

describe('settings inferred from a valibot schema', () => {
  const schema = v.object({
    port: v.pipe(v.string(), v.transform(Number), v.integer()),
    token: v.custom<Secret<string>>(isSecretString),
    region: v.optional(v.string(), 'eu-west'),
    limits: v.object({ rps: v.number(), burst: v.number() }),
  });

  it('gives the schema output', async () => {
    const settings = defineSettings({
      source,
      schema,
      fields: { token: { secret: true }, limits: { format: 'json' } },
    });
    const config = await settings.load();
    expectTypeOf(config.port).toEqualTypeOf<number>();
    expectTypeOf(config.token).toEqualTypeOf<Secret<string>>();
    expectTypeOf(config.region).toEqualTypeOf<string>();
    expectTypeOf(config.limits).toEqualTypeOf<{ readonly rps: number; readonly burst: number }>();
    settings.onChange('limits.rps', (_old, rps) => {
      expectTypeOf(rps).toEqualTypeOf<number>();
    });
  });
});

describe('start-up and options', () => {
  const schema = z.object({ port: z.coerce.number() });

  it('loadSettingsOrExit resolves the loaded settings of the schema', async () => {
    const settings = await loadSettingsOrExit(
      { source, schema, emptyStringAsUndefined: true, clock: new ManualClock(), timeout: 1000 },
      {
        exitCode: 78,
        reporter: async (report) => {
          expectTypeOf(report).toEqualTypeOf<SettingsReport>();
          expectTypeOf(report.problems[0]?.code).toEqualTypeOf<string | undefined>();
        },
      },
    );
    expectTypeOf(settings).toEqualTypeOf<Settings<typeof schema>>();
    expectTypeOf(settings.current.port).toEqualTypeOf<number>();
  });

  it('takes a Clock, not anything with a now()', () => {
    // @ts-expect-error a clock sets timers too
    defineSettings({ source, schema, clock: { now: () => 0 } });
    // @ts-expect-error a boolean
    defineSettings({ source, schema, emptyStringAsUndefined: 'yes' });
  });
});
