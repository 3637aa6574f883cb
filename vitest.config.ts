import { defineConfig } from 'vitest/config';
import type { Reporter, TestModule } from 'vitest/node';

/** Ends the run with one plain line, `N passed, N failed`, that any CI log reader understands. */
const summaryLine: Reporter = {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors) {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const { state } = test.result();
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
    }
    failed += unhandledErrors.length;
    console.log(`\n${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
  },
};

// Tests import packages by their public names; the `@secret-provider/source` export condition
// (the one tsc's `customConditions` uses too) resolves those to sources, so that one copy of each
// class exists in a test run and no build is needed to test. `integration-tests/exports.test.ts`
// checks the built entry points separately, as users import them. No `module` condition: Node
// does not know it, and packages that list it before `node` (the AWS SDK) point it at bundler-only
// ESM (extensionless imports) that Node cannot load.
const conditions = ['@secret-provider/source', 'node', 'development|production'];

export default defineConfig({
  resolve: { conditions },
  // Tests run in Node, which vitest starts with these conditions: without `module`, which picks
  // bundler builds that Node cannot load (the OpenTelemetry API's imports files without extensions).
  ssr: { resolve: { conditions: conditions.filter((condition) => condition !== 'module') } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'integration-tests/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    typecheck: {
      enabled: true,
      include: ['packages/*/test/**/*.test-d.ts'],
      tsconfig: './tsconfig.json',
    },
    pool: 'forks',
    reporters: ['default', summaryLine],
  },
});
