import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describeProviderConformance } from '@secret-provider/conformance';
import { MemoryProvider, MemoryStore } from '@secret-provider/memory';
import { OfflineFallbackProvider } from '@secret-provider/offline';
import { tempDir } from '@secret-provider/testing';
import { afterEach, beforeEach, describe, it } from 'vitest';

// While the backend answers, the wrapper is the backend as far as the contract can tell: it
// passes every group, with its file written behind the reads.
describeProviderConformance({
  name: 'OfflineFallbackProvider(memory)',
  test: { describe, it, beforeEach, afterEach },
  create: () => {
    const store = new MemoryStore();
    const dir = tempDir('offline-conformance-');
    const provider = new OfflineFallbackProvider(new MemoryProvider({ store }), {
      path: join(dir.dir, 'fallback'),
      key: randomBytes(32),
      maxAge: 3_600_000,
      writeDelay: 5,
    });
    return {
      provider,
      backend: {
        set: async (key: string, value: string) => void store.set(key, value),
        delete: async (key: string) => void store.delete(key),
      },
      cleanup: () => dir.remove(),
    };
  },
});
