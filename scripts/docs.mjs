#!/usr/bin/env node
// Writes the API reference of every public package entry (`exports`, core's `./adapter` and
// `./redaction` included) from the doc comments into docs/api/, with TypeDoc, and fails on a
// broken link: a `{@link X}` that resolves to nothing, or to something the reference does not
// contain (a type that is not exported). Other TypeDoc warnings are printed, not fatal.
// Needs the declarations of the workspace packages (`tsc -b tsconfig.build.json`), which is what
// `pnpm run docs` runs first.
//
// Usage: node scripts/docs.mjs [--out DIR]
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Application, ReflectionKind, TSConfigReader, TypeDocReader } from 'typedoc';

const root = new URL('..', import.meta.url).pathname;
const outIndex = process.argv.indexOf('--out');
const out = outIndex > 0 ? resolve(process.argv[outIndex + 1] ?? '') : join(root, 'docs', 'api');

/**
 * Broken links present in the sources when this check was introduced, as
 * `[where the comment is, what it links to]`. They are reported on every run and do not fail it;
 * a new one does. Fix the comment (link to an exported name, or export the target), then remove
 * the entry: an entry that no longer occurs is reported as such.
 */
const KNOWN_BROKEN_LINKS = [];

const packageDirs = readdirSync(join(root, 'packages'))
  .map((name) => join(root, 'packages', name))
  .filter((dir) => {
    try {
      return !JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).private;
    } catch {
      return false;
    }
  });

const started = performance.now();
// Options that shape the conversion apply per package; the rest to the merged site.
const conversion = {
  // Entries come from each package.json's `exports`, mapped back to the sources by its tsconfig.
  validation: { invalidLink: true, rewrittenLink: true, notExported: false, notDocumented: false },
  excludePrivate: true,
  excludeInternal: true,
};
const app = await Application.bootstrapWithPlugins(
  {
    entryPointStrategy: 'packages',
    entryPoints: packageDirs,
    packageOptions: conversion,
    ...conversion,
    name: 'secret-provider',
    readme: join(root, 'README.md'),
    out,
    lang: 'en',
    logLevel: 'Warn',
    githubPages: false,
    hideGenerator: true,
  },
  [new TypeDocReader(), new TSConfigReader()],
);

/** TypeDoc's warnings about links, each turned into `[where, target]`. */
const LINK_WARNINGS = [
  [
    /^Failed to resolve link to "(.+?)" in (?:comment for|readme for|document) (.+?)(?:\. You may have wanted .*)?$/,
    2,
    1,
  ],
  [/^The comment for (\S+) links to "(.+?)" which was resolved but is not included/, 1, 2],
  [/^"(.+?)" links to "(.+?)" with text ".*" which exists but does not have a link/, 1, 2],
  [/^The relative path (.+) is not a file and will not be copied/, 0, 1],
];
const brokenLinks = [];
const warn = app.logger.warn.bind(app.logger);
app.logger.warn = (text, ...rest) => {
  for (const [pattern, where, target] of LINK_WARNINGS) {
    const match = pattern.exec(text);
    // Broken links are reported once, below, as known or new; other warnings as TypeDoc words them.
    if (match) {
      brokenLinks.push([where === 0 ? 'a readme' : match[where], match[target]]);
      return;
    }
  }
  warn(text, ...rest);
};

const project = await app.convert();
if (!project || app.logger.hasErrors()) {
  console.error('docs: TypeDoc could not convert the packages (see above)');
  process.exit(1);
}
app.validate(project);
// A package with several entries gets one module per entry, named by its `exports` key ("" for
// "."): name them as they are imported instead (`@secret-provider/core/adapter`).
for (const pkg of project.children ?? []) {
  const entries = (pkg.children ?? []).filter((child) => child.kind === ReflectionKind.Module);
  for (const entry of entries) entry.name = entry.name === '' ? pkg.name : `${pkg.name}/${entry.name}`;
}
await app.generateDocs(project, out);
if (app.logger.hasErrors()) {
  console.error('docs: TypeDoc could not write the reference (see above)');
  process.exit(1);
}

const key = ([where, target]) => `${where} -> ${target}`;
const known = new Set(KNOWN_BROKEN_LINKS.map(key));
const found = new Set(brokenLinks.map(key));
const fresh = [...found].filter((link) => !known.has(link));
const gone = [...known].filter((link) => !found.has(link));
for (const link of [...found].filter((link) => known.has(link)))
  console.warn(`docs: known broken link: ${link}`);
for (const link of gone) console.warn(`docs: no longer broken, remove from KNOWN_BROKEN_LINKS: ${link}`);
for (const link of fresh) console.error(`docs: broken link: ${link}`);
const seconds = ((performance.now() - started) / 1000).toFixed(1);
console.log(
  `docs: ${packageDirs.length} packages -> ${out} in ${seconds} s; ${fresh.length} new broken link(s), ${found.size - fresh.length} known`,
);
process.exit(fresh.length === 0 ? 0 : 1);
