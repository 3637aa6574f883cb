#!/usr/bin/env node
// Bundles each package's compiled entry (dist/index.js, written by tsc) into one file, with every
// dependency left external. One file loads in a fraction of the time of a dozen small modules,
// which is what importing core costs at a service's start. Declarations stay as tsc wrote them.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const packagesDir = join(root, 'packages');
for (const name of readdirSync(packagesDir)) {
  const dir = join(packagesDir, name);
  const entry = join(dir, 'dist', 'index.js');
  if (!existsSync(entry)) continue;
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const external = [
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {}),
    ...Object.keys(manifest.optionalDependencies ?? {}),
  ];
  await build({
    entryPoints: [entry],
    outfile: join(dir, 'dist', 'index.bundle.js'),
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: [...external, ...external.map((dep) => `${dep}/*`), 'node:*'],
    sourcemap: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
}
