// What an application's bundler keeps of core for `import { Secret }`: the class and the errors
// it throws, not the redactor, the cache or the event machinery. Runs on the built package.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const here = fileURLToPath(new URL('.', import.meta.url));

async function bundle(source: string): Promise<string> {
  const dir = mkdtempSync(join(here, '.tmp-bundle-'));
  try {
    writeFileSync(join(dir, 'entry.mjs'), source);
    const result = await build({
      entryPoints: [join(dir, 'entry.mjs')],
      bundle: true,
      minify: true,
      format: 'esm',
      platform: 'node',
      write: false,
      logLevel: 'error',
    });
    return Buffer.from(result.outputFiles[0]?.contents ?? []).toString('utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('bundled imports of core', () => {
  it('keep neither the redactor nor lru-cache for import { Secret }', async () => {
    const onlySecret = await bundle(
      "import { Secret } from '@secret-provider/core'; console.log(new Secret('x'));",
    );
    const everything = await bundle("import * as core from '@secret-provider/core'; console.log(core);");
    // Strings that exist only in the redactor and in lru-cache: in the whole entry, not in Secret's.
    for (const marker of ['SHORT_SECRET', 'lru-cache']) {
      expect(everything.includes(marker), marker).toBe(true);
      expect(onlySecret.includes(marker), marker).toBe(false);
    }
    expect(onlySecret.length).toBeLessThan(everything.length / 3);
  });
});
