import { MemoryProvider } from '@secret-provider/memory';
import { defineSettings, deriveKey } from '@secret-provider/settings';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';

describe('key convention', () => {
  it('derives SCREAMING_SNAKE keys from camelCase names and nested paths', () => {
    expect(deriveKey(['dbPassword'])).toBe('DB_PASSWORD');
    expect(deriveKey(['db', 'password'])).toBe('DB_PASSWORD');
    expect(deriveKey(['apiURL'])).toBe('API_URL');
    expect(deriveKey(['APIKey'])).toBe('API_KEY');
    expect(deriveKey(['oauth2Token'])).toBe('OAUTH2_TOKEN');
    expect(deriveKey(['db_host', 'read-replica'])).toBe('DB_HOST_READ_REPLICA');
    expect(deriveKey(['port'])).toBe('PORT');
  });

  it('offers kebab, dot and custom styles', () => {
    expect(deriveKey(['db', 'readReplica'], 'kebab')).toBe('db-read-replica');
    expect(deriveKey(['db', 'readReplica'], 'dot')).toBe('db.readReplica');
    expect(deriveKey(['db', 'password'], (path, provider) => `${provider}/${path.join('/')}`, 'vault')).toBe(
      'vault/db/password',
    );
  });

  it('applies the style, the prefix and per-provider naming to the routing', () => {
    const source = new MemoryProvider();
    const vault = new MemoryProvider({ name: 'vault' });
    const settings = defineSettings({
      source,
      providers: { vault },
      schema: z.object({
        dbPassword: z.string(),
        db: z.object({ readReplica: z.string() }),
        port: z.string(),
      }),
      keyStyle: (path, provider) => (provider === 'vault' ? path.join('-') : deriveKey(path)),
      keyPrefix: 'APP_',
      fields: { dbPassword: { provider: 'vault' }, port: 'HTTP_PORT' },
    });
    expect(settings.routes).toEqual([
      { field: 'dbPassword', key: 'APP_dbPassword', provider: 'vault', secret: false, skip: false },
      { field: 'db.readReplica', key: 'APP_DB_READ_REPLICA', provider: 'memory', secret: false, skip: false },
      { field: 'port', key: 'HTTP_PORT', provider: 'memory', secret: false, skip: false },
    ]);
  });

  it('routes a whole nested object to one provider, and reports schema constants, not values', async () => {
    const source = new MemoryProvider({ initial: { LEVEL: 'hunter2-level' } });
    const vault = new MemoryProvider({ name: 'vault', initial: { DB_USER: 'u', DB_PASSWORD: 'p' } });
    const settings = defineSettings({
      source,
      providers: { vault },
      schema: z.object({
        level: z.enum(['debug', 'info']),
        db: z.object({ user: z.string(), password: z.string() }),
      }),
      fields: { db: { provider: 'vault', fields: {} } },
      live: false,
    });
    expect(settings.routes.map((route) => route.provider)).toEqual(['memory', 'vault', 'vault']);
    const error = (await settings.load().catch((e: unknown) => e)) as Error;
    expect(error.message).toContain(
      'level (key "LEVEL", provider "memory"): invalid_value: one of "debug" | "info"',
    );
    expect(error.message).not.toContain('hunter2');
  });
});
