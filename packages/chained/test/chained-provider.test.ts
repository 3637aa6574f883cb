import { ChainedProvider, PROVIDER_NAME } from '@secret-provider/chained';
import {
  AccessDeniedError,
  createEmitter,
  isSecretError,
  ProviderUnavailableError,
  RateLimitedError,
  type SecretProvider,
} from '@secret-provider/core';
import { BaseProvider, type StoredSecret } from '@secret-provider/core/adapter';
import { type EnvObject, EnvProvider } from '@secret-provider/env';
import { MemoryProvider } from '@secret-provider/memory';
import { expectNoLeak, keysOf, pause, record, rejection, until } from '@secret-provider/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { DashOnlyProvider, FlakyProvider } from './helpers.js';

const codeOf = (error: unknown) =>
  isSecretError(error) ? error.code : `not a SecretError: ${String(error)}`;
const reveal = async (provider: SecretProvider, key: string) => (await provider.get(key)).reveal();

/** A provider that only reads: no listing, no writing, no watching. */
class ReadOnlyLookup extends BaseProvider {
  constructor(
    name: string,
    readonly data: Record<string, string>,
  ) {
    super({ name });
  }
  protected override async readSecret(key: string): Promise<StoredSecret | undefined> {
    const value = this.data[key];
    return value === undefined ? undefined : { value };
  }
}

/** A third-party provider that breaks the rules: it rejects with raw errors that quote values. */
const rawFailing = (leak: string): SecretProvider => ({
  name: 'raw',
  capabilities: {
    write: false,
    delete: false,
    list: false,
    watch: false,
    metadata: true,
    versions: false,
    has: false,
    checkAndSet: false,
    expiry: false,
    tags: false,
    contentType: false,
  },
  [Symbol.asyncDispose]: async () => {},
  get: async () => {
    throw Object.assign(new Error(`backend said: value=${leak}`), { config: { data: leak } });
  },
  metadata: async () => {
    throw new Error(`backend said: value=${leak}`);
  },
  set: async () => {},
  delete: async () => {},
  keys: async () => [],
  watch: () => ({
    ready: Promise.resolve(),
    stopped: false,
    stop: async () => {},
    [Symbol.asyncDispose]: async () => {},
  }),
  close: async () => {},
});

const warnings: Array<{ code: string | undefined; message: string }> = [];
const onWarning = (warning: Error & { code?: string }) =>
  warnings.push({ code: warning.code, message: warning.message });
afterEach(() => {
  process.off('warning', onWarning);
  warnings.length = 0;
});

describe('ChainedProvider: ordered get', () => {
  it('serves a key from the first provider that has it; not-found falls through', async () => {
    const chain = new ChainedProvider([
      new MemoryProvider({ name: 'overrides', initial: { A: 'from-overrides' } }),
      new MemoryProvider({ name: 'defaults', initial: { A: 'from-defaults', B: 'default-b' } }),
    ]);
    expect(chain.name).toBe(PROVIDER_NAME);
    expect(await reveal(chain, 'A')).toBe('from-overrides');
    expect(await reveal(chain, 'B')).toBe('default-b');
    expect((await chain.metadata('B')).key).toBe('B');
    const error = await rejection(chain.get('C'));
    expect(codeOf(error)).toBe('NOT_FOUND');
    expect(error).toMatchObject({ provider: 'chain', key: 'C' });
    expect(await chain.has('A')).toBe(true);
    expect(await chain.has('C')).toBe(false);
  });

  it('propagates any other failure and asks no further provider', async () => {
    const broken = new FlakyProvider({ name: 'broken' });
    broken.failure = () => new AccessDeniedError({ provider: 'broken' });
    const lower = new FlakyProvider({ name: 'lower', initial: { A: 'a' } });
    const chain = new ChainedProvider([broken, lower]);
    const error = await rejection(chain.get('A'));
    expect(codeOf(error)).toBe('ACCESS_DENIED');
    expect(error).toMatchObject({ provider: 'broken' });
    expect(lower.reads).toBe(0);
  });

  it('with failover: true moves past a failure and reports it to the watchers', async () => {
    const broken = new FlakyProvider({ name: 'broken' });
    broken.failure = () => new ProviderUnavailableError({ provider: 'broken' });
    const chain = new ChainedProvider(
      [broken, new MemoryProvider({ name: 'lower', initial: { A: 'lower-secret' } })],
      {
        failover: true,
      },
    );
    const { events } = await record(chain);
    expect(await reveal(chain, 'A')).toBe('lower-secret');
    const reported = events.filter((e) => e.type === 'error');
    expect(reported).toHaveLength(1);
    expect(reported[0]?.event).toMatchObject({ provider: 'chain', source: 'broken', key: 'A' });
    expect(codeOf((reported[0]?.event as { error?: unknown } | undefined)?.error)).toBe('UNAVAILABLE');
    expectNoLeak(
      events.map((e) => e.event),
      ['lower-secret'],
    );
  });

  it('reports a failure it moved past as a process warning when nobody watches', async () => {
    process.on('warning', onWarning);
    const broken = new FlakyProvider({ name: 'broken' });
    broken.failure = () => new ProviderUnavailableError({ provider: 'broken' });
    const chain = new ChainedProvider([broken, new MemoryProvider({ initial: { A: 'a' } })], {
      failover: true,
    });
    expect(await reveal(chain, 'A')).toBe('a');
    await until(() => warnings.length > 0, 2_000, 'process warning');
    expect(warnings[0]).toMatchObject({ code: 'SECRET_PROVIDER_FAILOVER' });
    expect(warnings[0]?.message).toMatch(/"broken".*UNAVAILABLE.*"A"/);
  });

  it('fails over only on the listed codes', async () => {
    const broken = new FlakyProvider({ name: 'broken' });
    const chain = new ChainedProvider([broken, new MemoryProvider({ initial: { A: 'a' } })], {
      failover: ['UNAVAILABLE'],
    });
    await record(chain);
    broken.failure = () => new ProviderUnavailableError({ provider: 'broken' });
    expect(await reveal(chain, 'A')).toBe('a');
    broken.failure = () => new RateLimitedError({ provider: 'broken' });
    expect(codeOf(await rejection(chain.get('A')))).toBe('RATE_LIMITED');
  });

  it('rejects with the failure, not NOT_FOUND, when a failed provider might have had the key', async () => {
    const broken = new FlakyProvider({ name: 'broken' });
    broken.failure = () => new ProviderUnavailableError({ provider: 'broken' });
    const chain = new ChainedProvider([broken, new MemoryProvider()], { failover: true });
    await record(chain);
    expect(codeOf(await rejection(chain.get('A')))).toBe('UNAVAILABLE');
  });

  it('treats a key a provider cannot hold as missing there', async () => {
    const chain = new ChainedProvider([
      new DashOnlyProvider({ name: 'dashes', initial: { 'db-url': 'dash' } }),
      new MemoryProvider({ name: 'any', initial: { DB_URL: 'underscore' } }),
    ]);
    expect(await reveal(chain, 'DB_URL')).toBe('underscore');
    expect(await reveal(chain, 'db-url')).toBe('dash');
    expect(codeOf(await rejection(chain.get('NO_SUCH')))).toBe('NOT_FOUND');
    const onlyDashes = new ChainedProvider([new DashOnlyProvider({ name: 'dashes' })]);
    expect(codeOf(await rejection(onlyDashes.get('A_B')))).toBe('INVALID_KEY');
  });

  it('sanitizes raw errors of third-party providers', async () => {
    const leak = 'leaked-secret-value-42';
    const chain = new ChainedProvider([rawFailing(leak), new MemoryProvider()]);
    const error = await rejection(chain.get('A'));
    expect(codeOf(error)).toBe('UNKNOWN');
    expect(error).toMatchObject({ provider: 'raw' });
    expectNoLeak([error], [leak]);
  });

  it('never fails over on a cancelled call', async () => {
    const lower = new FlakyProvider({ initial: { A: 'a' } });
    const chain = new ChainedProvider([new MemoryProvider(), lower], { failover: true });
    const controller = new AbortController();
    controller.abort(new Error('cancelled by caller'));
    const error = await rejection(chain.get('A', { signal: controller.signal }));
    expect((error as Error).message).toBe('cancelled by caller');
  });

  it('validates keys itself, before asking anyone', async () => {
    const lower = new FlakyProvider();
    const chain = new ChainedProvider([lower]);
    for (const bad of ['', 'a\u0000b', 'x'.repeat(2000)])
      expect(codeOf(await rejection(chain.get(bad)))).toBe('INVALID_KEY');
    expect(lower.reads).toBe(0);
  });

  it('rejects bad configurations with INVALID_CONFIG', () => {
    const memory = new MemoryProvider();
    for (const attempt of [
      () => new ChainedProvider([]),
      () => new ChainedProvider([memory, memory]),
      () => new ChainedProvider([{} as SecretProvider]),
      () => new ChainedProvider([memory], { mode: 'random' as 'ordered' }),
      () => new ChainedProvider([memory], { mode: 'failover', probeInterval: 0 }),
    ]) {
      let error: unknown;
      try {
        attempt();
      } catch (caught) {
        error = caught;
      }
      expect(codeOf(error)).toBe('INVALID_CONFIG');
    }
  });
});

describe('ChainedProvider: skipping providers that lack a key', () => {
  it('asks an env provider with has() instead of reading it, and sees runtime changes at once', async () => {
    const env: EnvObject = {};
    const lower = new FlakyProvider({ name: 'memory', initial: { DB_URL: 'memory-url' } });
    const chain = new ChainedProvider([new EnvProvider({ env, prefix: 'APP_' }), lower]);
    expect(await reveal(chain, 'DB_URL')).toBe('memory-url');
    env.APP_DB_URL = 'env-url';
    expect(await reveal(chain, 'DB_URL')).toBe('env-url');
    delete env.APP_DB_URL;
    expect(await reveal(chain, 'DB_URL')).toBe('memory-url');
  });

  it('with index: true does not ask providers that lack the key, and stays exact as they change', async () => {
    const first = new FlakyProvider({ name: 'first', initial: { OTHER: 'x' } });
    const second = new FlakyProvider({ name: 'second', initial: { K: 'second-k' } });
    const chain = new ChainedProvider([first, second], { index: true });
    expect(await reveal(chain, 'K')).toBe('second-k');
    // The index is built in the background after the first read: wait until reads skip `first`.
    const deadline = Date.now() + 5_000;
    for (;;) {
      const reads = first.reads;
      await chain.get('K');
      if (first.reads === reads) break;
      if (Date.now() > deadline) throw new Error('the index was never used');
      await pause(5);
    }
    const before = first.reads;
    for (let i = 0; i < 10; i++) expect(await reveal(chain, 'K')).toBe('second-k');
    expect(first.reads).toBe(before);
    // Memory providers report changes as they happen, so the index follows at once.
    await first.set('K', 'first-k');
    expect(await reveal(chain, 'K')).toBe('first-k');
    await first.delete('K');
    expect(await reveal(chain, 'K')).toBe('second-k');
    await second.delete('K');
    expect(codeOf(await rejection(chain.get('K')))).toBe('NOT_FOUND');
    await chain.close();
  });

  it('without an index asks each provider in turn', async () => {
    const first = new FlakyProvider({ name: 'first' });
    const chain = new ChainedProvider([first, new MemoryProvider({ initial: { K: 'k' } })]);
    for (let i = 0; i < 3; i++) await chain.get('K');
    expect(first.reads).toBe(3);
  });
});

describe('ChainedProvider: keys, set, delete, capabilities', () => {
  it('lists the union in order without duplicates, skipping providers that cannot list', async () => {
    const chain = new ChainedProvider([
      new MemoryProvider({ initial: { B: '1', A: '1' } }),
      new ReadOnlyLookup('lookup', { HIDDEN: 'x' }),
      new EnvProvider({ env: { SECRET: 'x' } }),
      new MemoryProvider({ name: 'second', initial: { C: '2', A: '2' } }),
    ]);
    expect(await chain.keys()).toEqual(['B', 'A', 'C']);
    expect(await chain.keys({ prefix: 'C' })).toEqual(['C']);
    expect(await reveal(chain, 'HIDDEN')).toBe('x');
  });

  it('refuses to list when no provider can', async () => {
    const chain = new ChainedProvider([new ReadOnlyLookup('lookup', {})]);
    expect(chain.capabilities.list).toBe(false);
    expect(codeOf(await rejection(chain.keys()))).toBe('UNSUPPORTED');
  });

  it('writes to the first writable provider, or to the one named', async () => {
    const defaults = new MemoryProvider({ name: 'defaults', readOnly: true, initial: { A: 'default' } });
    const store = new MemoryProvider({ name: 'store' });
    const extra = new MemoryProvider({ name: 'extra' });
    const chain = new ChainedProvider([defaults, store, extra]);
    await chain.set('B', 'b');
    expect(store.store.has('B')).toBe(true);
    await chain.set('C', 'c', { provider: 'extra' });
    expect(extra.store.has('C')).toBe(true);
    expect(store.store.has('C')).toBe(false);
    expect(codeOf(await rejection(chain.set('D', 'd', { provider: 'nope' })))).toBe('INVALID_CONFIG');
    expect(codeOf(await rejection(chain.set('D', 'd', { provider: 'defaults' })))).toBe('READ_ONLY');
    await chain.delete('B');
    expect(store.store.has('B')).toBe(false);
    await chain.delete('C', { provider: 'extra' });
    expect(extra.store.has('C')).toBe(false);
    expect(codeOf(await rejection(chain.delete('C')))).toBe('NOT_FOUND');
  });

  it('refuses writes when no provider can write, and ambiguous provider names', async () => {
    const readOnly = new ChainedProvider([
      new MemoryProvider({ readOnly: true }),
      new EnvProvider({ env: {}, all: true }),
    ]);
    expect(readOnly.capabilities).toMatchObject({ write: false, delete: false });
    expect(codeOf(await rejection(readOnly.set('A', 'a')))).toBe('READ_ONLY');
    expect(codeOf(await rejection(readOnly.delete('A')))).toBe('UNSUPPORTED');
    const twins = new ChainedProvider([new MemoryProvider(), new MemoryProvider()]);
    expect(codeOf(await rejection(twins.set('A', 'a', { provider: 'memory' })))).toBe('INVALID_CONFIG');
  });

  it('warns watchers when a write is shadowed by a provider before the target', async () => {
    const env: EnvObject = { APP_A: 'env-a' };
    const chain = new ChainedProvider([
      new EnvProvider({ env, prefix: 'APP_' }),
      new MemoryProvider({ name: 'store' }),
    ]);
    const { events } = await record(chain);
    await chain.set('A', 'shadowed-secret');
    await chain.set('B', 'visible');
    await until(() => events.some((e) => e.type === 'warning'), 2_000, 'shadowed-write warning');
    await pause(50);
    const warning = events.filter((e) => e.type === 'warning');
    expect(warning).toHaveLength(1);
    expect(warning[0]?.event).toMatchObject({ code: 'SHADOWED_WRITE', key: 'A', source: 'store' });
    expectNoLeak(
      events.map((e) => e.event),
      ['shadowed-secret', 'env-a'],
    );
    await chain.close();
  });

  it('derives capabilities from its providers', () => {
    const chain = new ChainedProvider([new EnvProvider({ env: {} }), new MemoryProvider()]);
    expect(chain.capabilities).toEqual({
      write: true,
      delete: true,
      list: true,
      watch: true,
      metadata: true,
      versions: false,
      has: true,
      checkAndSet: true,
      expiry: true,
      tags: true,
      contentType: true,
    });
    const failover = new ChainedProvider(
      [new MemoryProvider(), new MemoryProvider({ name: 'ro', readOnly: true })],
      {
        mode: 'failover',
      },
    );
    expect(failover.capabilities).toMatchObject({ write: false, delete: false, list: true });
  });
});

describe('ChainedProvider.explain', () => {
  it('names the serving provider and the shadowed ones, with versions and never values', async () => {
    const env: EnvObject = { APP_A: 'env-secret-a' };
    const broken = new FlakyProvider({ name: 'broken' });
    broken.failure = () => new ProviderUnavailableError({ provider: 'broken' });
    const memory = new MemoryProvider({ name: 'memory', initial: { A: 'memory-secret-a' } });
    const chain = new ChainedProvider([
      new EnvProvider({ env, prefix: 'APP_' }),
      broken,
      memory,
      new MemoryProvider({ name: 'empty' }),
    ]);
    const explanation = await chain.explain('A');
    expect(explanation).toMatchObject({ key: 'A', chain: 'chain', mode: 'ordered', servedBy: 'env' });
    expect(explanation.entries.map((e) => [e.provider, e.status])).toEqual([
      ['env', 'serving'],
      ['broken', 'failed'],
      ['memory', 'shadowed'],
      ['empty', 'missing'],
    ]);
    expect(explanation.entries[0]?.tags).toEqual({ source: 'environment', variable: 'APP_A' });
    expect(explanation.entries[1]?.error?.code).toBe('UNAVAILABLE');
    expect(explanation.entries[2]?.version).toBe((await memory.metadata('A')).version);
    expectNoLeak([explanation], ['env-secret-a', 'memory-secret-a']);
    const nowhere = await chain.explain('Z');
    expect(nowhere.servedBy).toBeUndefined();
  });
});

describe('ChainedProvider: close', () => {
  it('closes the providers it owns, and only those when told not to own them', async () => {
    const a = new MemoryProvider({ initial: { A: 'a' } });
    const chain = new ChainedProvider([a]);
    await chain.close();
    await chain.close();
    expect(codeOf(await rejection(a.get('A')))).toBe('CLOSED');
    expect(codeOf(await rejection(chain.get('A')))).toBe('CLOSED');
    const handle = chain.watch(createEmitter());
    expect(handle.stopped).toBe(true);
    expect(codeOf(await rejection(handle.ready))).toBe('CLOSED');

    const b = new MemoryProvider({ initial: { B: 'b' } });
    const borrowing = new ChainedProvider([b], { ownsProviders: false });
    await borrowing.close();
    expect(await reveal(b, 'B')).toBe('b');
  });

  it('shows names only when inspected or serialized', async () => {
    const chain = new ChainedProvider([new MemoryProvider({ initial: { A: 'inspect-secret' } })], {
      name: 'app',
    });
    const { inspect } = await import('node:util');
    expect(inspect(chain)).toBe('ChainedProvider { name: "app", mode: ordered, providers: ["memory"] }');
    expect(JSON.parse(JSON.stringify(chain))).toEqual({
      provider: 'app',
      mode: 'ordered',
      providers: ['memory'],
      closed: false,
    });
    expectNoLeak([chain], ['inspect-secret']);
  });
});

describe('ChainedProvider.watch: fan-in', () => {
  it('tags every event with the chain and the source provider', async () => {
    const env: EnvObject = {};
    const memory = new MemoryProvider({ name: 'memory' });
    const chain = new ChainedProvider([new EnvProvider({ env, prefix: 'APP_', pollInterval: 20 }), memory]);
    const { events, handle } = await record(chain);
    env.APP_E = 'e';
    await memory.set('M', 'm');
    await until(() => events.length >= 2, 5_000, 'two events');
    expect(
      events.map((e) => [e.type, (e.event as { source?: string }).source, e.event.provider]).sort(),
    ).toEqual([
      ['added', 'env', 'chain'],
      ['added', 'memory', 'chain'],
    ]);
    await handle.stop();
    await memory.set('N', 'n');
    await pause(50);
    expect(keysOf(events, 'added').sort()).toEqual(['E', 'M']);
    await chain.close();
  });
});
