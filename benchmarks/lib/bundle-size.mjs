// Bundles a one-line program that imports names from a built package, the way an application's
// bundler would (esbuild, minified, tree-shaken), and reports the size and which modules stayed.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const workspace = fileURLToPath(new URL('../../', import.meta.url));

/** @param {string} source the program, e.g. `import { Secret } from '@secret-provider/core'; ...` */
export async function bundledSize(source) {
  // Inside the workspace, so that package names resolve as they do for a user's project.
  const dir = mkdtempSync(join(workspace, 'benchmarks', '.bundle-'));
  try {
    const entry = join(dir, 'entry.mjs');
    writeFileSync(entry, source);
    const result = await build({
      entryPoints: [entry],
      bundle: true,
      minify: true,
      format: 'esm',
      platform: 'node',
      write: false,
      logLevel: 'error',
    });
    const code = result.outputFiles[0].contents;
    return { bytes: code.length, gzip: gzipSync(code).length, text: Buffer.from(code).toString('utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
