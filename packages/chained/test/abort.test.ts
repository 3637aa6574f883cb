import { ChainedProvider } from '@secret-provider/chained';
import type { SecretProvider } from '@secret-provider/core';
import { MemoryProvider } from '@secret-provider/memory';
import { rejection, until } from '@secret-provider/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { type PlainProvider, plainProvider } from './helpers.js';

// `GetOptions.signal` promises that an aborted call rejects with the signal's reason, whatever
// the reason. A chain keeps that promise on every path, also where no provider is asked (every
// one skipped by its has() or by the index) and where the providers ignore the signal (nothing
// in the contract makes them look at it).

const reason = new Error('the caller gave up');
const abortedSignal = () => {
  const controller = new AbortController();
  controller.abort(reason);
  return controller.signal;
};

type Chain = InstanceType<typeof ChainedProvider>;
type Operation = readonly [string, (chain: Chain, signal: AbortSignal) => Promise<unknown>];

const reads: Operation[] = [
  ['get', (chain, signal) => chain.get('K', { signal })],
  ['metadata', (chain, signal) => chain.metadata('K', { signal })],
  ['has', (chain, signal) => Promise.resolve(chain.has('K', { signal }))],
];
const others: Operation[] = [
  ['keys', (chain, signal) => chain.keys({ signal })],
  ['explain', (chain, signal) => chain.explain('K', { signal })],
  ['set', (chain, signal) => chain.set('K', 'new-value', { signal })],
  ['delete', (chain, signal) => chain.delete('K', { signal })],
];
const named: Operation[] = [
  ['set to a named provider', (chain, signal) => chain.set('K', 'new-value', { signal, provider: 'b' })],
  ['delete from a named provider', (chain, signal) => chain.delete('K', { signal, provider: 'b' })],
];

let chains: Chain[] = [];
afterEach(async () => {
  await Promise.all(chains.map((c) => c.close()));
  chains = [];
});
const track = <T extends Chain>(chain: T): T => {
  chains.push(chain);
  return chain;
};
const calls = (providers: readonly SecretProvider[]) =>
  providers.reduce((sum, p) => sum + ((p as Partial<PlainProvider>).calls ?? 0), 0);

/** Reads a missing key until the index answers for every provider (no provider is asked). */
async function indexBuilt(chain: Chain, providers: readonly PlainProvider[]): Promise<void> {
  await until(
    async () => {
      const before = calls(providers);
      await chain.get('K').catch(() => {});
      return calls(providers) === before;
    },
    5_000,
    'the index answers',
  );
}

interface Setup {
  readonly name: string;
  readonly operations: readonly Operation[];
  readonly create: () => Promise<{ chain: Chain; providers: readonly SecretProvider[] }>;
}

const setups: Setup[] = [
  {
    name: 'layered, every provider skipped by its synchronous has() (memory)',
    operations: reads,
    create: async () => {
      const providers = ['a', 'b', 'c'].map((name) => new MemoryProvider({ name, initial: { OTHER: 'x' } }));
      return { chain: track(new ChainedProvider(providers)), providers };
    },
  },
  {
    name: 'layered, every provider skipped by an asynchronous has()',
    operations: reads,
    create: async () => {
      const providers = ['a', 'b', 'c'].map((name) => plainProvider(name, { OTHER: 'x' }, { has: 'async' }));
      return { chain: track(new ChainedProvider(providers)), providers };
    },
  },
  {
    name: 'layered, every provider skipped by the index',
    operations: reads,
    create: async () => {
      const providers = ['a', 'b', 'c'].map((name) => plainProvider(name, { OTHER: 'x' }));
      const chain = track(new ChainedProvider(providers, { index: true }));
      await indexBuilt(chain, providers);
      return { chain, providers };
    },
  },
  {
    // Every provider has the key: a chain that asked one would get an answer, not a failure.
    name: 'layered, providers that ignore the signal and have the key',
    operations: [...reads, ...others, ...named],
    create: async () => {
      const providers = ['a', 'b', 'c'].map((name) => plainProvider(name, { K: `${name}-value` }));
      return { chain: track(new ChainedProvider(providers)), providers };
    },
  },
  {
    name: 'failover, replicas that ignore the signal and have the key',
    operations: [...reads, ...others, ...named],
    create: async () => {
      const providers = [plainProvider('a', { K: 'a-value' }), plainProvider('b', { K: 'b-value' })];
      return { chain: track(new ChainedProvider(providers, { mode: 'failover' })), providers };
    },
  },
];

describe.each(setups)('an already-aborted signal: $name', ({ operations, create }) => {
  it.each(operations.map(([name, run]) => ({ name, run })))(
    '$name rejects with the reason and asks no provider',
    async ({ run }) => {
      const { chain, providers } = await create();
      const before = calls(providers);
      expect(await rejection(run(chain, abortedSignal()))).toBe(reason);
      expect(calls(providers)).toBe(before);
    },
  );
});

describe('a signal aborted during the call', () => {
  it.each(reads.map(([name, run]) => ({ name, run })))(
    'layered, asynchronous has() answering no: $name rejects with the reason',
    async ({ run }) => {
      const providers = ['a', 'b'].map((name) => plainProvider(name, {}, { has: 'async' }));
      const chain = track(new ChainedProvider(providers));
      const controller = new AbortController();
      // Aborted while the providers' has() answers are still pending (they come a tick later).
      const pending = run(chain, controller.signal);
      controller.abort(reason);
      expect(await rejection(pending)).toBe(reason);
    },
  );

  it.each([...reads, ...others.slice(0, 2)].map(([name, run]) => ({ name, run })))(
    'providers that ignore the signal: $name rejects with the reason, layered and failover',
    async ({ run }) => {
      for (const mode of ['ordered', 'failover'] as const) {
        const chain = track(
          new ChainedProvider([plainProvider('a', { K: 'a-value' }), plainProvider('b', { K: 'b-value' })], {
            mode,
          }),
        );
        const controller = new AbortController();
        const pending = run(chain, controller.signal);
        controller.abort(reason);
        expect(await rejection(pending), mode).toBe(reason);
      }
    },
  );
});
