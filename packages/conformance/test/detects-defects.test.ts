// The suite is only worth something if it fails defective adapters. Each case here wraps a
// correct provider with one defect, runs the registered tests outside the runner, and checks
// that the test meant to catch the defect fails while the others still pass.

import { type ConformanceTestApi, describeProviderConformance } from '@secret-provider/conformance';
import {
  type GetOptions,
  type ProviderCapabilities,
  Secret,
  SecretError,
  type SecretEventEmitter,
  type SecretProvider,
  type SetOptions,
} from '@secret-provider/core';
import { MemoryProvider, MemoryStore } from '@secret-provider/memory';
import { describe, expect, it } from 'vitest';

/** Delegates everything to a memory provider; cases override one method to break it. */
class Delegating implements SecretProvider {
  constructor(readonly inner: MemoryProvider) {}
  get name() {
    return this.inner.name;
  }
  get capabilities(): ProviderCapabilities {
    return this.inner.capabilities;
  }
  get(key: string, options?: GetOptions) {
    return this.inner.get(key, options);
  }
  metadata(key: string) {
    return this.inner.metadata(key);
  }
  set(key: string, value: string | Secret<string | Uint8Array>, options?: SetOptions) {
    return this.inner.set(key, value, options);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  [Symbol.asyncDispose]() {
    return this.close();
  }
  keys() {
    return this.inner.keys();
  }
  watch(emitter: SecretEventEmitter) {
    return this.inner.watch(emitter);
  }
  close() {
    return this.inner.close();
  }
}

async function runSuite(make: (inner: MemoryProvider, store: MemoryStore) => SecretProvider) {
  const tests: Array<{ title: string; body: () => Promise<void> | void }> = [];
  const prefix: string[] = [];
  const api: ConformanceTestApi = {
    describe: (name, body) => {
      prefix.push(name);
      body();
      prefix.pop();
    },
    it: (title, body) => void tests.push({ title: [...prefix, title].join(' > '), body }),
  };
  describeProviderConformance({
    name: 'defective',
    test: api,
    eventTimeoutMs: 300,
    create: () => {
      const store = new MemoryStore();
      return {
        provider: make(new MemoryProvider({ store }), store),
        backend: { set: async (k, v) => void store.set(k, v), delete: async (k) => void store.delete(k) },
      };
    },
  });
  const failed: string[] = [];
  for (const test of tests) {
    try {
      await test.body();
    } catch {
      failed.push(test.title.split(' > ').at(-1) as string);
    }
  }
  return { failed, total: tests.length };
}

describe('the conformance suite', () => {
  it('passes a correct provider', async () => {
    const { failed, total } = await runSuite((inner) => inner);
    expect(total).toBeGreaterThan(10);
    expect(failed).toEqual([]);
  });

  it('fails a provider that resolves a missing key instead of rejecting', async () => {
    const { failed } = await runSuite(
      (inner) =>
        new (class extends Delegating {
          override get(key: string) {
            return inner.get(key).catch(() => new Secret(''));
          }
        })(inner),
    );
    expect(failed).toContain('rejects a missing key with NOT_FOUND, naming key and provider');
  });

  it('fails a provider whose error quotes a value', async () => {
    const { failed } = await runSuite(
      (inner) =>
        new (class extends Delegating {
          override async set(key: string, value: string | Secret<string | Uint8Array>) {
            if (key === '')
              throw new SecretError(
                'INVALID_KEY',
                `empty key for ${String(Secret.isSecret(value) ? value.reveal() : value)}`,
              );
            return inner.set(key, value);
          }
        })(inner),
    );
    expect(failed).toContain(
      'rejects bad keys (empty, NUL, very long, not a string) with INVALID_KEY and writes nothing',
    );
  });

  it('fails a provider that loses concurrent writes', async () => {
    const { failed } = await runSuite(
      (inner, store) =>
        new (class extends Delegating {
          #pending = new Map<string, string>();
          override async set(key: string, value: string | Secret<string | Uint8Array>) {
            // Read-modify-write of a shared batch without a lock: later writers drop earlier ones.
            const batch = new Map(this.#pending);
            batch.set(key, String(Secret.isSecret(value) ? value.reveal() : value));
            await new Promise((resolve) => setTimeout(resolve, 1));
            this.#pending = batch;
            for (const k of store.keys()) if (!batch.has(k)) store.delete(k);
            for (const [k, v] of batch) store.set(k, v);
          }
        })(inner),
    );
    expect(failed).toContain('keeps every one of 100 concurrent writes of distinct keys');
  });

  it('fails a provider that keeps reporting events after stop', async () => {
    const { failed } = await runSuite(
      (inner) =>
        new (class extends Delegating {
          override watch(emitter: SecretEventEmitter) {
            const handle = inner.watch(emitter);
            return {
              ...handle,
              ready: handle.ready,
              stopped: true,
              stop: async () => {},
              [Symbol.asyncDispose]: async () => {},
            };
          }
        })(inner),
    );
    expect(failed).toContain('stops reporting after stop(), abort or asyncDispose; stop is idempotent');
  });

  it('fails a provider that works after close', async () => {
    const { failed } = await runSuite(
      (inner) =>
        new (class extends Delegating {
          override async close() {}
        })(inner),
    );
    expect(failed).toContain('closes idempotently and rejects every later call with CLOSED');
  });
});
