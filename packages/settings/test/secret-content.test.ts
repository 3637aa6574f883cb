// The keys of a JSON secret are part of the secret, as are the number of its entries and where
// they sit: none of it may reach messages, problems, events or snapshot views. Field names the
// schema declares may.
import { inspect } from 'node:util';
import { MemoryProvider, MemoryStore } from '@secret-provider/memory';
import { defineSettings, type SettingsError, type SettingsErrorEvent } from '@secret-provider/settings';
import { expectNoLeak, rejection, until } from '@secret-provider/testing';
import * as v from 'valibot';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';

// Names a secret document holds: a tenant, a customer, a host. Each is the secret.
const TENANT = 'tenant-acme-hunter2';
const CUSTOMER = 'customer-globex-s3cr3t';

const disposers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const dispose of disposers.splice(0)) await dispose();
});

function source(initial: Record<string, string>) {
  const store = new MemoryStore(initial);
  const provider = new MemoryProvider({ store });
  disposers.push(() => provider.close());
  return { store, provider };
}

async function loadError(settings: { load(): Promise<unknown>; close(): Promise<void> }) {
  disposers.push(() => settings.close());
  return (await rejection(settings.load())) as SettingsError;
}

describe('keys of a JSON secret stay out of errors', () => {
  it('does not name unrecognised keys of a document (zod strictObject)', async () => {
    const { provider } = source({ CREDS: JSON.stringify({ user: 'app', [TENANT]: 'x', [CUSTOMER]: 'y' }) });
    const error = await loadError(
      defineSettings({
        source: provider,
        schema: z.object({ creds: z.strictObject({ user: z.string() }) }),
        fields: { creds: { format: 'json' } },
        live: false,
      }),
    );
    expect(error.problems.map((p) => [p.field, p.key, p.code])).toEqual([
      ['creds', 'CREDS', 'unrecognized_keys'],
    ]);
    expectNoLeak([error, error.problems], [TENANT, CUSTOMER, 'acme', 'globex']);
    // Not even how many there were.
    expect(error.message).not.toMatch(/\b2\b/);
  });

  it('does not name record keys, in the field path or the reason (zod record)', async () => {
    const { provider } = source({ LIMITS: JSON.stringify({ [TENANT]: 5, [CUSTOMER]: 'lots' }) });
    const error = await loadError(
      defineSettings({
        source: provider,
        schema: z.object({ limits: z.record(z.string(), z.number()) }),
        fields: { limits: { format: 'json' } },
        live: false,
      }),
    );
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toMatchObject({ key: 'LIMITS', code: 'invalid_type' });
    expect(error.problems[0]?.field).toMatch(/^limits(\.|$)/);
    expectNoLeak([error, error.problems], [TENANT, CUSTOMER]);
  });

  it('reports several bad entries of one document once: how many failed is content too', async () => {
    const { provider } = source({ LIMITS: JSON.stringify({ a: 'x', b: 'y', c: 'z', d: 1 }) });
    const error = await loadError(
      defineSettings({
        source: provider,
        schema: z.object({ limits: z.record(z.string(), z.number()) }),
        fields: { limits: { format: 'json' } },
        live: false,
      }),
    );
    expect(error.problems).toHaveLength(1);
    expect(error.message).toContain('1 problem:');
  });

  it('does not name record keys that fail their own schema (zod invalid_key)', async () => {
    const { provider } = source({ LIMITS: JSON.stringify({ [TENANT]: 5 }) });
    const error = await loadError(
      defineSettings({
        source: provider,
        schema: z.object({ limits: z.record(z.string().max(4), z.number()) }),
        fields: { limits: { format: 'json' } },
        live: false,
      }),
    );
    expect(error.problems[0]?.key).toBe('LIMITS');
    expectNoLeak([error, error.problems], [TENANT]);
  });

  it('does not give positions inside a document (array indices)', async () => {
    const { provider } = source({ HOSTS: JSON.stringify(['a.internal', 'b.internal', 'c', 'd.internal']) });
    const error = await loadError(
      defineSettings({
        source: provider,
        schema: z.object({ hosts: z.array(z.string().min(3)) }),
        fields: { hosts: { format: 'json' } },
        live: false,
      }),
    );
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toMatchObject({ key: 'HOSTS', code: 'too_small' });
    // The position of the bad entry (2) is where the content put it.
    expect(error.problems[0]?.field).not.toMatch(/\d/);
    expect(error.message).not.toMatch(/hosts\.\d/);
  });

  it('keeps declared names inside a document: they come from the schema, not the secret', async () => {
    const { provider } = source({ DB: JSON.stringify({ host: 'h', port: 'x', [TENANT]: 1 }) });
    const error = await loadError(
      defineSettings({
        source: provider,
        schema: z.object({ db: z.object({ host: z.string(), port: z.number() }) }),
        fields: { db: { key: 'DB' } },
        live: false,
      }),
    );
    expect(error.problems.map((p) => [p.field, p.code])).toEqual([['db.port', 'invalid_type']]);
    expectNoLeak([error], [TENANT]);
  });

  it('does not name unknown entries or record keys with valibot', async () => {
    const { provider } = source({
      CREDS: JSON.stringify({ user: 'app', [TENANT]: 'x' }),
      LIMITS: JSON.stringify({ [CUSTOMER]: 'lots' }),
    });
    const error = await loadError(
      defineSettings({
        source: provider,
        schema: v.object({
          creds: v.strictObject({ user: v.string() }),
          limits: v.record(v.string(), v.number()),
        }),
        fields: { creds: { format: 'json' }, limits: { format: 'json' } },
        live: false,
      }),
    );
    expect(error.problems.map((p) => p.key).sort()).toEqual(['CREDS', 'LIMITS']);
    expectNoLeak([error, error.problems], [TENANT, CUSTOMER]);
  });

  it('does not name document keys in the error events of a live update', async () => {
    const { store, provider } = source({ LIMITS: JSON.stringify({ a: 1 }) });
    const settings = defineSettings({
      source: provider,
      schema: z.object({ limits: z.record(z.string(), z.number()) }),
      fields: { limits: { format: 'json' } },
      debounceMs: 5,
      minIntervalMs: 0,
    });
    disposers.push(() => settings.close());
    const errors: SettingsErrorEvent[] = [];
    settings.on('error', (event) => errors.push(event));
    await settings.load();
    store.set('LIMITS', JSON.stringify({ [TENANT]: 'lots' }));
    await until(() => errors.length === 1, 2000, 'the error event');
    expect(errors[0]?.fields).toEqual(['limits']);
    expectNoLeak([errors, errors[0]?.error], [TENANT]);
  });
});

describe('keys of a JSON secret stay out of snapshot views', () => {
  it('shows declared field names only, and no count of entries', async () => {
    const { store, provider } = source({
      LIMITS: JSON.stringify({ [TENANT]: 5, [CUSTOMER]: 7 }),
      HOSTS: JSON.stringify(['a.internal', 'b.internal', 'c.internal']),
      DB: JSON.stringify({ host: 'db.internal', extra: { [TENANT]: true } }),
    });
    const settings = defineSettings({
      source: provider,
      schema: z.object({
        limits: z.record(z.string(), z.number()),
        hosts: z.array(z.string()),
        db: z.looseObject({ host: z.string() }),
      }),
      fields: { limits: { format: 'json' }, hosts: { format: 'json' }, db: { key: 'DB' } },
      debounceMs: 5,
      minIntervalMs: 0,
    });
    disposers.push(() => settings.close());
    const config = await settings.load();
    // The values are there to read...
    expect(config.limits[TENANT]).toBe(5);
    expect(config.hosts).toHaveLength(3);
    // ...but every view of the snapshot shows only what the schema declares.
    const views = [
      inspect(config, { depth: 20 }),
      inspect(config.limits),
      inspect(config.db, { depth: 20 }),
      JSON.stringify(config),
      JSON.stringify(config.limits),
      JSON.stringify({ nested: config.db }),
    ];
    for (const view of views) {
      for (const name of [TENANT, CUSTOMER, 'extra', 'a.internal']) expect(view).not.toContain(name);
    }
    expect(inspect(config)).toContain('db: { host: [REDACTED] }');
    // Three hosts and two tenants: the count of entries is content too.
    expect(inspect(config)).toContain('limits: [REDACTED]');
    expect(inspect(config)).toContain('hosts: [REDACTED]');
    const updates: unknown[] = [];
    settings.on('update', (update) => updates.push(update));
    store.set('LIMITS', JSON.stringify({ [CUSTOMER]: 9 }));
    await until(() => updates.length === 1, 2000, 'the update');
    expectNoLeak(updates, [TENANT, CUSTOMER]);
  });
});
