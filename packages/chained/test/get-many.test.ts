import { ChainedProvider } from '@secret-provider/chained';
import { isSecretError, ProviderUnavailableError } from '@secret-provider/core';
import { BaseProvider, type StoredSecret } from '@secret-provider/core/adapter';
import { MemoryProvider } from '@secret-provider/memory';
import { rejection } from '@secret-provider/testing';
import { describe, expect, it } from 'vitest';

/** A layer that records the keys of each batch it is asked for, and can be made to fail. */
class BatchLayer extends BaseProvider {
  readonly batches: string[][] = [];
  down = false;

  constructor(
    name: string,
    readonly values: Record<string, string>,
  ) {
    super({ name });
  }

  protected override async readSecret(key: string): Promise<StoredSecret | undefined> {
    if (this.down) throw new ProviderUnavailableError({ provider: this.name, key });
    const value = this.values[key];
    return value === undefined ? undefined : { value };
  }

  protected override async readMany(keys: readonly string[]): Promise<Map<string, StoredSecret>> {
    this.batches.push([...keys]);
    if (this.down) throw new ProviderUnavailableError({ provider: this.name });
    return new Map(
      keys.flatMap((key) => (this.values[key] === undefined ? [] : [[key, { value: this.values[key] }]])),
    );
  }
}

const reveal = (found: Map<string, { reveal(): string }>) =>
  Object.fromEntries([...found].map(([key, secret]) => [key, secret.reveal()]));

describe('LayeredProvider.getMany', () => {
  it('asks each layer once, for the keys still missing, and keeps shadowing as get does', async () => {
    const env = new MemoryProvider({ name: 'env', initial: { A: 'env-a' } });
    const files = new BatchLayer('files', { A: 'files-a', B: 'files-b' });
    const vault = new BatchLayer('vault', { B: 'vault-b', C: 'vault-c' });
    const chain = new ChainedProvider([env, files, vault]);
    const found = await chain.getMany(['C', 'A', 'B', 'D', 'A']);
    expect(reveal(found)).toEqual({ C: 'vault-c', A: 'env-a', B: 'files-b' });
    expect([...found.keys()]).toEqual(['C', 'A', 'B']);
    // env answers presence itself: files is not asked for A, which env serves.
    expect(files.batches).toEqual([['C', 'B', 'D']]);
    expect(vault.batches).toEqual([['C', 'D']]);
    for (const key of ['A', 'B', 'C']) expect((await chain.get(key)).reveal()).toBe(found.get(key)?.reveal());
    await chain.close();
  });

  it('rejects a layer failure unless failover moves past it, and then only for the keys that fail', async () => {
    const first = new BatchLayer('first', { A: 'first-a' });
    const second = new BatchLayer('second', { A: 'second-a', B: 'second-b' });
    const strict = new ChainedProvider([first, second], { ownsProvider: false });
    first.down = true;
    expect(isSecretError(await rejection(strict.getMany(['A', 'B'])), 'UNAVAILABLE')).toBe(true);
    expect(second.batches).toEqual([]);

    const tolerant = new ChainedProvider([first, second], { failover: ['UNAVAILABLE'], ownsProvider: false });
    tolerant.watch((await import('@secret-provider/core')).createEmitter());
    expect(reveal(await tolerant.getMany(['A', 'B']))).toEqual({ A: 'second-a', B: 'second-b' });
    first.down = false;
    expect(reveal(await tolerant.getMany(['A', 'B']))).toEqual({ A: 'first-a', B: 'second-b' });
    await tolerant.close();
  });

  it('validates every key before asking any layer', async () => {
    const layer = new BatchLayer('only', { A: 'a' });
    const chain = new ChainedProvider([layer]);
    expect(isSecretError(await rejection(chain.getMany(['A', ''])), 'INVALID_KEY')).toBe(true);
    expect(layer.batches).toEqual([]);
    await chain.close();
    expect(isSecretError(await rejection(chain.getMany(['A'])), 'CLOSED')).toBe(true);
  });
});

describe('FailoverProvider.getMany', () => {
  it('reads the serving replica in one batch and switches when it fails', async () => {
    const primary = new BatchLayer('primary', { A: 'a', B: 'b' });
    const secondary = new BatchLayer('secondary', { A: 'a', B: 'b' });
    const chain = new ChainedProvider([primary, secondary], { mode: 'failover', probeInterval: 60_000 });
    chain.watch((await import('@secret-provider/core')).createEmitter());
    expect(reveal(await chain.getMany(['A', 'B', 'Z']))).toEqual({ A: 'a', B: 'b' });
    primary.down = true;
    expect(reveal(await chain.getMany(['A', 'B']))).toEqual({ A: 'a', B: 'b' });
    expect(primary.batches.length).toBe(2);
    expect(secondary.batches).toEqual([['A', 'B']]);
    await chain.close();
  });
});
