#!/usr/bin/env node
// Bundles each package's entry points (the `@secret-provider/source` targets of its `exports`)
// from TypeScript into `dist/`, with every dependency left external and code shared between
// entries split into chunks: importing one entry loads one file plus the chunks it needs, and
// nothing of the entries it does not use (`import { Secret }` does not load the redactor).
// Declarations are tsc's (`tsc -b`, declarations only); no unbundled JavaScript is shipped.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const packagesDir = join(root, 'packages');
const SOURCE_CONDITION = '@secret-provider/source';

for (const name of readdirSync(packagesDir)) {
  const dir = join(packagesDir, name);
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  } catch {
    continue;
  }
  const entryPoints = Object.values(manifest.exports ?? {})
    .map((target) => (typeof target === 'object' ? target[SOURCE_CONDITION] : undefined))
    .filter((source) => typeof source === 'string')
    .map((source) => join(dir, source));
  if (entryPoints.length === 0) continue;
  const external = [
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {}),
    ...Object.keys(manifest.optionalDependencies ?? {}),
  ];
  // tsc writes declarations only: any JavaScript in dist is an earlier bundle's, possibly stale.
  for (const file of readdirSync(join(dir, 'dist'), { recursive: true })) {
    if (/\.js(\.map)?$/.test(file)) rmSync(join(dir, 'dist', file));
  }
  await build({
    entryPoints,
    outdir: join(dir, 'dist'),
    outbase: join(dir, 'src'),
    entryNames: '[dir]/[name]',
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: [...external, ...external.map((dep) => `${dep}/*`), 'node:*'],
    sourcemap: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
}
