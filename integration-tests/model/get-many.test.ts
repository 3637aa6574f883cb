// Model-based check of getMany: for random chains (layers, the key index, failover, caches,
// providers with and without a batch read or a presence check) over random stores with keys that
// fail or that a layer cannot hold, getMany of random keys must equal `get` of each key: the same
// keys found with the same values, and a rejection exactly when some `get` rejects with anything
// but NOT_FOUND.
import { ChainedProvider } from '@secret-provider/chained';
import {
  CachedProvider,
  createEmitter,
  isSecretError,
  ProviderUnavailableError,
  type SecretProvider,
} from '@secret-provider/core';
import { BaseProvider, type StoredSecret } from '@secret-provider/core/adapter';
import { MemoryProvider } from '@secret-provider/memory';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { settings } from './harness.js';

const KEYS = ['alpha', 'beta', 'gamma', 'delta', 'x.dot'] as const;

interface LayerSpec {
  readonly values: Readonly<Record<string, string>>;
  /** Keys whose reads fail with UNAVAILABLE (a batch holding one fails as a whole). */
  readonly broken: readonly string[];
  /** The layer cannot hold keys with a dot (INVALID_KEY, as a backend with stricter names). */
  readonly noDots: boolean;
  readonly kind: 'memory' | 'batch' | 'single' | 'plain';
  readonly cached: boolean;
}

/** A backend with deterministic failures, with or without a batch read. */
class RuleProvider extends BaseProvider {
  constructor(
    readonly spec: LayerSpec,
    name: string,
  ) {
    super({ name });
  }

  protected override validateKey(key: unknown): string {
    const checked = super.validateKey(key);
    if (this.spec.noDots && checked.includes('.')) return super.validateKey('');
    return checked;
  }

  protected override async readSecret(key: string): Promise<StoredSecret | undefined> {
    if (this.spec.broken.includes(key)) throw new ProviderUnavailableError({ provider: this.name, key });
    const value = this.spec.values[key];
    return value === undefined ? undefined : { value };
  }
}

class BatchRuleProvider extends RuleProvider {
  batches = 0;
  protected override async readMany(keys: readonly string[]): Promise<Map<string, StoredSecret>> {
    this.batches++;
    const found = new Map<string, StoredSecret>();
    for (const key of keys) {
      const read = await this.readSecret(key);
      if (read !== undefined) found.set(key, read);
    }
    return found;
  }
}

function build(spec: LayerSpec, position: number): SecretProvider {
  const name = `layer-${position}`;
  let provider: SecretProvider;
  if (spec.kind === 'memory' && spec.broken.length === 0 && !spec.noDots) {
    provider = new MemoryProvider({ name, initial: spec.values });
  } else if (spec.kind === 'batch') provider = new BatchRuleProvider(spec, name);
  else provider = new RuleProvider(spec, name);
  if (spec.kind === 'plain') {
    // Neither getMany nor has: only the contract's required members.
    const inner = provider;
    provider = {
      name,
      get capabilities() {
        return { ...inner.capabilities, has: false };
      },
      get: (key, options) => inner.get(key, options),
      metadata: (key, options) => inner.metadata(key, options),
      set: (key, value, options) => inner.set(key, value, options),
      delete: (key, options) => inner.delete(key, options),
      keys: (options) => inner.keys(options),
      watch: (emitter, options) => inner.watch(emitter, options),
      close: () => inner.close(),
      [Symbol.asyncDispose]: () => inner.close(),
    };
  }
  return spec.cached ? new CachedProvider(provider) : provider;
}

const layerArb = fc.record({
  values: fc.dictionary(fc.constantFrom(...KEYS), fc.constantFrom('v1', 'v2', 'v3'), { maxKeys: 5 }),
  broken: fc.subarray([...KEYS], { maxLength: 2 }),
  noDots: fc.boolean(),
  kind: fc.constantFrom<LayerSpec['kind']>('memory', 'batch', 'single', 'plain'),
  cached: fc.boolean(),
});

type ChainSpec =
  | { readonly mode: 'ordered'; readonly failover: boolean; readonly index: boolean }
  | { readonly mode: 'failover' };

const chainArb = fc.oneof(
  fc.record({ mode: fc.constant('ordered' as const), failover: fc.boolean(), index: fc.boolean() }),
  fc.constant({ mode: 'failover' as const }),
);

type Outcome = { ok: true; value: string } | { ok: false; code: string };

async function outcomeOf(provider: SecretProvider, key: string): Promise<Outcome> {
  try {
    return { ok: true, value: (await provider.get(key)).reveal() };
  } catch (error) {
    if (!isSecretError(error)) throw error;
    return { ok: false, code: error.code };
  }
}

describe('model: getMany equals get of each key', () => {
  it('for random chains, layers and keys', async () => {
    await fc.assert(
      fc.asyncProperty(
        chainArb,
        fc.array(layerArb, { minLength: 1, maxLength: 3 }),
        fc.array(fc.constantFrom(...KEYS, 'missing'), { minLength: 0, maxLength: 7 }),
        fc.boolean(),
        async (chainSpec, layerSpecs, asked, reversed) => {
          // Replicas of a failover chain hold the same values and accept the same keys; only their
          // failures differ (which replica serves then depends on health, not on the key asked).
          const first = layerSpecs[0] as LayerSpec;
          const specs =
            chainSpec.mode === 'failover'
              ? layerSpecs.map((s) => ({ ...s, values: first.values, noDots: first.noDots }))
              : layerSpecs;
          const chain =
            chainSpec.mode === 'failover'
              ? new ChainedProvider(specs.map(build), { mode: 'failover', probeInterval: 60_000 })
              : new ChainedProvider(specs.map(build), {
                  failover: chainSpec.failover ? ['UNAVAILABLE'] : false,
                  index: chainSpec.index,
                });
          // Watched, so failures the chain moves past are events, not process warnings.
          const handle = chain.watch(createEmitter());
          try {
            await handle.ready;
            const read = async () => {
              const many = await chain.getMany(asked).then(
                (found) => ({ ok: true as const, found }),
                (error: unknown) => ({ ok: false as const, error }),
              );
              const each = new Map<string, Outcome>();
              for (const key of asked) each.set(key, await outcomeOf(chain, key));
              return { many, each };
            };
            // Either order of the two reads (caches fill from whichever runs first).
            const { many, each } = reversed
              ? await (async () => {
                  const e = new Map<string, Outcome>();
                  for (const key of asked) e.set(key, await outcomeOf(chain, key));
                  const m = (await read()).many;
                  return { many: m, each: e };
                })()
              : await read();
            const failed = [...each.values()].filter(
              (o): o is { ok: false; code: string } => !o.ok && o.code !== 'NOT_FOUND',
            );
            if (failed.length > 0) {
              expect(many.ok, `getMany resolved although get failed with ${failed[0]?.code}`).toBe(false);
              if (!many.ok) {
                expect(isSecretError(many.error)).toBe(true);
                expect(failed.map((o) => o.code)).toContain((many.error as { code: string }).code);
              }
              return;
            }
            expect(many.ok, `getMany rejected: ${many.ok ? '' : String(many.error)}`).toBe(true);
            if (!many.ok) return;
            const expected = [...new Set(asked)].flatMap((key) => {
              const o = each.get(key) as Outcome;
              return o.ok ? [[key, o.value] as const] : [];
            });
            expect([...many.found].map(([key, secret]) => [key, secret.reveal()])).toEqual(expected);
          } finally {
            await handle.stop();
            await chain.close();
          }
        },
      ),
      { seed: settings.seed, numRuns: Math.round(400 * settings.factor) },
    );
  }, 120_000);
});
