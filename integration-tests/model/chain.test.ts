// Model-based run of `ChainedProvider` over memory providers that fail and stall on demand:
// default options and the key index, watched and not.
import { afterAll, describe, expect, it } from 'vitest';
import { checkModel, settings, Tally } from './harness.js';
import { CHAIN_VARIANTS, MemoryHarness, memoryStep } from './memory-world.js';

const tally = new Tally();
const RUNS = 300;
const MIN_OPERATIONS = 15_000;

describe('model: chains of memory providers', () => {
  afterAll(() => console.log(tally.report('chain model')));

  for (const variant of CHAIN_VARIANTS) {
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
