// Model-based run of the cache front end: `CachedProvider` and the `cache` option of a provider,
// over memory backends that fail and stall on demand, on a fake clock.
import { afterAll, describe, expect, it } from 'vitest';
import { checkModel, settings, Tally } from './harness.js';
import { CACHE_VARIANTS, MemoryHarness, memoryStep } from './memory-world.js';

const tally = new Tally();
const RUNS = 300;
const MIN_OPERATIONS = 20_000;

describe('model: caches over memory backends', () => {
  afterAll(() => console.log(tally.report('cache model')));

  for (const variant of CACHE_VARIANTS) {
    it(
      variant.name,
      async () => {
        await checkModel({
          name: variant.name,
          step: memoryStep(variant),
          create: () => MemoryHarness.create(variant, tally, settings.seed),
          runs: RUNS,
          maxSteps: 60,
          tally,
        });
      },
      180_000 * settings.factor,
    );
  }

  it('ran the operations it promises', () => {
    expect(tally.operations, 'operations run (fewer when a model above failed early)').toBeGreaterThanOrEqual(
      MIN_OPERATIONS * Math.min(1, settings.factor),
    );
  });
});
