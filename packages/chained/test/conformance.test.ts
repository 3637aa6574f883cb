import { ChainedProvider } from '@secret-provider/chained';
import { describeProviderConformance } from '@secret-provider/conformance';
import { EnvProvider } from '@secret-provider/env';
import { MemoryProvider, MemoryStore } from '@secret-provider/memory';
import { afterEach, beforeEach, describe, it } from 'vitest';

const backendOf = (store: MemoryStore) => ({
  set: async (key: string, value: string) => void store.set(key, value),
  delete: async (key: string) => void store.delete(key),
});

describeProviderConformance({
  name: 'chain of memory providers (writes to the first)',
  test: { describe, it, beforeEach, afterEach },
  create: () => {
    const top = new MemoryStore();
    const chain = new ChainedProvider([
      new MemoryProvider({ name: 'top', store: top }),
      new MemoryProvider({ name: 'middle', initial: { 'unrelated-a': 'a' } }),
      new MemoryProvider({ name: 'bottom', initial: { 'unrelated-b': 'b' } }),
    ]);
    return { provider: chain, backend: backendOf(top) };
  },
});

describeProviderConformance({
  name: 'chain of memory providers (read-only first, writes to the second, indexed)',
  test: { describe, it, beforeEach, afterEach },
  create: () => {
    const lower = new MemoryStore();
    const chain = new ChainedProvider(
      [
        new MemoryProvider({ name: 'defaults', readOnly: true, initial: { 'unrelated-a': 'a' } }),
        new MemoryProvider({ name: 'store', store: lower }),
      ],
      { index: true },
    );
    return { provider: chain, backend: backendOf(lower) };
  },
});

describeProviderConformance({
  name: 'failover chain of memory replicas',
  test: { describe, it, beforeEach, afterEach },
  create: () => {
    const primary = new MemoryStore();
    const chain = new ChainedProvider(
      [new MemoryProvider({ name: 'primary', store: primary }), new MemoryProvider({ name: 'secondary' })],
      { mode: 'failover' },
    );
    return { provider: chain, backend: backendOf(primary) };
  },
});

describeProviderConformance({
  name: 'chain of a read-only env provider over a memory provider',
  test: { describe, it, beforeEach, afterEach },
  create: () => {
    const store = new MemoryStore();
    const chain = new ChainedProvider([
      new EnvProvider({ env: { APP_UNRELATED: 'x' }, prefix: 'APP_' }),
      new MemoryProvider({ name: 'store', store }),
    ]);
    return { provider: chain, backend: backendOf(store) };
  },
});
