import { describeProviderConformance } from '@secret-provider/conformance';
import { CachedProvider } from '@secret-provider/core';
import { MemoryProvider, MemoryStore } from '@secret-provider/memory';
import { afterEach, beforeEach, describe, it } from 'vitest';

const backendOf = (store: MemoryStore) => ({
  set: async (key: string, value: string) => void store.set(key, value),
  delete: async (key: string) => void store.delete(key),
});

describeProviderConformance({
  name: 'memory',
  test: { describe, it, beforeEach, afterEach },
  create: () => {
    const store = new MemoryStore();
    return { provider: new MemoryProvider({ store }), backend: backendOf(store) };
  },
});

describeProviderConformance({
  name: 'memory (read-only)',
  test: { describe, it, beforeEach, afterEach },
  create: () => {
    const store = new MemoryStore();
    return { provider: new MemoryProvider({ store, readOnly: true }), backend: backendOf(store) };
  },
});

describeProviderConformance({
  name: 'CachedProvider(memory)',
  test: { describe, it, beforeEach, afterEach },
  create: () => {
    const store = new MemoryStore();
    return {
      provider: new CachedProvider(new MemoryProvider({ store }), { ttl: 60_000, negativeTtl: 0 }),
      backend: backendOf(store),
    };
  },
});

describeProviderConformance({
  name: 'memory with built-in cache',
  test: { describe, it, beforeEach, afterEach },
  create: () => {
    const store = new MemoryStore();
    return { provider: new MemoryProvider({ store, cache: { ttl: 60_000 } }), backend: backendOf(store) };
  },
});
