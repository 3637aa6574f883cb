// Loading reads each provider's keys in one batch (getMany) where it can.
import { ProviderUnavailableError } from '@secret-provider/core';
import type { StoredSecret } from '@secret-provider/core/adapter';
import { MemoryProvider } from '@secret-provider/memory';
import { defineSettings, type SettingsError } from '@secret-provider/settings';
import { rejection } from '@secret-provider/testing';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';

/** A memory provider that counts its batch and single reads, and can fail one key. */
class CountingMemory extends MemoryProvider {
  batches: string[][] = [];
  singles: string[] = [];
  broken: string | undefined;

  protected override async readSecret(key: string): Promise<StoredSecret | undefined> {
    this.singles.push(key);
    if (key === this.broken) throw new ProviderUnavailableError({ provider: this.name, key });
    return super.readSecret(key);
  }

  protected override async readMany(keys: readonly string[]): Promise<Map<string, StoredSecret>> {
    this.batches.push([...keys]);
    if (this.broken !== undefined && keys.includes(this.broken))
      throw new ProviderUnavailableError({ provider: this.name });
    return super.readMany(keys);
  }
}

const schema = z.object({
  host: z.string(),
  port: z.string(),
  user: z.string(),
  password: z.string(),
  region: z.string().optional(),
});

describe('loading in batches', () => {
  it('reads the keys of each provider in one getMany', async () => {
    const source = new CountingMemory({ initial: { HOST: 'h', PORT: '1', USER: 'u' } });
    const vault = new CountingMemory({ name: 'vault', initial: { PASSWORD: 'p' } });
    const settings = defineSettings({
      source,
      providers: { vault },
      schema,
      fields: { password: { provider: 'vault' } },
      live: false,
    });
    await settings.load();
    expect(settings.current).toMatchObject({ host: 'h', port: '1', user: 'u', password: 'p' });
    expect(source.batches).toEqual([['HOST', 'PORT', 'USER', 'REGION']]);
    expect(source.singles).toEqual([]);
    // One key is one get.
    expect(vault.batches).toEqual([]);
    expect(vault.singles).toEqual(['PASSWORD']);
    await settings.close();
  });

  it('names the failing field alone when a batch fails', async () => {
    const source = new CountingMemory({ initial: { HOST: 'h', PORT: '1', USER: 'u', PASSWORD: 'p' } });
    source.broken = 'USER';
    const settings = defineSettings({ source, schema, live: false });
    const error = (await rejection(settings.load())) as SettingsError;
    expect(error.problems.map((p) => [p.field, p.code])).toEqual([['user', 'UNAVAILABLE']]);
    expect(source.batches.length).toBe(1);
    expect(source.singles.sort()).toEqual(['HOST', 'PASSWORD', 'PORT', 'REGION', 'USER']);
    await settings.close();
  });
});
