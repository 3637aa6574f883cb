// Model-based run of `FileProvider` on a real temporary directory: JSON file and directory
// format, watched and not, with the files changed, corrupted, removed and re-created behind its
// back.
import { afterAll, describe, expect, it } from 'vitest';
import { FILE_VARIANTS, FileHarness, fileStep } from './file-world.js';
import { checkModel, settings, Tally } from './harness.js';

const tally = new Tally();
const RUNS = 40;
const MIN_OPERATIONS = 4_000;

describe('model: the file provider on a real directory', () => {
  afterAll(() => console.log(tally.report('file model')));

  for (const variant of FILE_VARIANTS) {
    it(
      variant.name,
      async () => {
        await checkModel({
          name: variant.name,
          step: fileStep(variant),
          create: () => FileHarness.create(variant, tally),
          runs: RUNS,
          maxSteps: 60,
          tally,
          // A watch that does not converge costs the settle time per replay: shrink for 20 s at most.
          shrinkBudgetMs: 20_000,
        });
      },
      240_000 * settings.factor,
    );
  }

  it('ran the operations it promises', () => {
    expect(tally.operations, 'operations run (fewer when a model above failed early)').toBeGreaterThanOrEqual(
      MIN_OPERATIONS * Math.min(1, settings.factor),
    );
  });
});
