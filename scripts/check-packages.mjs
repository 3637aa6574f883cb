#!/usr/bin/env node
// Checks what the packages publish and what they declare, after the build:
// - publint (package.json and files) and "are the types wrong" (types as ESM consumers see them),
//   for every public package;
// - the tarball ships what the exports reach: every export target is in it, every JavaScript file
//   in it is an export target or a chunk one of them imports, and no build state (.tsbuildinfo);
// - dependencies agree with the sources, for every package: each declared dependency is imported
//   by `src/` (no unused ones; peers excepted), and each package `src/` imports is declared.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join, normalize } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const bin = (name) => join(root, 'node_modules', '.bin', name);
const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));
const all = readdirSync(join(root, 'packages')).filter((name) => {
  try {
    readJson(join(root, 'packages', name, 'package.json'));
    return true;
  } catch {
    return false;
  }
});
const manifests = Object.fromEntries(
  all.map((name) => [name, readJson(join(root, 'packages', name, 'package.json'))]),
);
const published = all.filter((name) => !manifests[name].private);

let passed = 0;
const failures = [];
const fail = (what) => failures.push(what);

// Each check is a child process (publint, attw, npm pack) that mostly waits on its own start-up:
// run as many at once as there are cores, and report in a fixed order.
const run = (command, args, options) =>
  new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 64 * 1024 * 1024, ...options }, (error, stdout, stderr) => {
      if (error) reject(Object.assign(error, { stdout, stderr }));
      else resolve(stdout);
    });
  });
const checks = published.flatMap((name) => {
  const dir = join(root, 'packages', name);
  return [
    ...[
      ['publint', ['--strict', dir]],
      ['attw', ['--pack', dir, '--profile', 'esm-only', '--format', 'table-flipped']],
    ].map(([tool, args]) => async () => {
      try {
        await run(bin(tool), args, { cwd: root });
        return undefined;
      } catch (error) {
        return `${tool} found problems in @secret-provider/${name}:\n${error.stdout}${error.stderr}`;
      }
    }),
    async () => {
      const problems = await tarballProblems(dir, manifests[name]);
      return problems.length === 0
        ? undefined
        : `the tarball of @secret-provider/${name}:\n  ${problems.join('\n  ')}`;
    },
  ];
});
const outcomes = new Array(checks.length);
let next = 0;
const worker = async () => {
  while (next < checks.length) {
    const index = next++;
    outcomes[index] = await checks[index]();
  }
};
await Promise.all(Array.from({ length: Math.max(2, availableParallelism()) }, worker));
for (const outcome of outcomes) {
  if (outcome === undefined) passed++;
  else fail(outcome);
}

for (const name of all) {
  const problems = dependencyProblems(join(root, 'packages', name), manifests[name]);
  if (problems.length === 0) passed++;
  else fail(`the dependencies of @secret-provider/${name}:\n  ${problems.join('\n  ')}`);
}

for (const failure of failures) console.error(failure);
console.log(`package checks: ${passed} passed, ${failures.length} failed (${all.join(', ')})`);
process.exit(failures.length === 0 ? 0 : 1);

/** The files `npm pack` would put in the tarball, checked against what the exports reach. */
async function tarballProblems(dir, manifest) {
  const [pack] = JSON.parse(
    await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: dir, encoding: 'utf8' }),
  );
  const files = new Set(pack.files.map((f) => normalize(f.path)));
  const problems = [];
  for (const file of files) if (file.endsWith('.tsbuildinfo')) problems.push(`ships build state: ${file}`);
  const targets = [];
  const collect = (value) => {
    if (typeof value === 'string') targets.push(normalize(value));
    else if (value && typeof value === 'object') for (const inner of Object.values(value)) collect(inner);
  };
  collect(manifest.exports);
  collect(manifest.bin); // a command is an entry point too
  for (const target of targets) if (!files.has(target)) problems.push(`export target missing: ${target}`);
  // JavaScript reachable from the export targets through relative imports (the shared chunks).
  const reachable = new Set();
  const visit = (file) => {
    if (reachable.has(file) || !file.endsWith('.js')) return;
    reachable.add(file);
    const text = readFileSync(join(dir, file), 'utf8');
    for (const match of text.matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)) {
      visit(normalize(join(dirname(file), match[1])));
    }
  };
  for (const target of targets) if (files.has(target)) visit(target);
  for (const file of files) {
    if (file.endsWith('.js') && !reachable.has(file))
      problems.push(`ships JavaScript no export reaches: ${file}`);
  }
  return problems;
}

/** Bare specifiers imported by the package's sources, comments left out. */
function importedPackages(dir) {
  const found = new Set();
  const walk = (folder) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.(ts|mts|js|mjs)$/.test(entry.name)) {
        const text = readFileSync(path, 'utf8')
          .replace(/\/\*[\s\S]*?\*\//g, '')
          .replace(/(^|\s)\/\/.*$/gm, '$1');
        const name = `(@?[a-z0-9][\\w.-]*(?:/[\\w.@-]+)*)`;
        const patterns = [
          new RegExp(`\\bfrom\\s+['"]${name}['"]`, 'g'),
          new RegExp(`\\bimport\\s*\\(\\s*['"]${name}['"]\\s*\\)`, 'g'),
          new RegExp(`\\brequire\\s*\\(\\s*['"]${name}['"]\\s*\\)`, 'g'),
          new RegExp(`\\bcreateRequire\\([^)]*\\)\\s*\\(\\s*['"]${name}['"]\\s*\\)`, 'g'),
          new RegExp(`^\\s*import\\s+['"]${name}['"]`, 'gm'),
        ];
        for (const pattern of patterns) for (const match of text.matchAll(pattern)) found.add(match[1]);
      }
    }
  };
  walk(join(dir, 'src'));
  const names = new Set();
  for (const specifier of found) {
    if (specifier.startsWith('node:') || builtinModules.includes(specifier.split('/')[0])) continue;
    const parts = specifier.split('/');
    names.add(specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]);
  }
  return names;
}

function dependencyProblems(dir, manifest) {
  const imported = importedPackages(dir);
  imported.delete(manifest.name);
  const declared = new Set([
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {}),
    ...Object.keys(manifest.optionalDependencies ?? {}),
  ]);
  const problems = [];
  // Peer dependencies state which versions of the user's library a package works with (logging
  // writes to pino and winston without importing them): they need not be imported.
  const peers = new Set(Object.keys(manifest.peerDependencies ?? {}));
  for (const dep of declared) {
    if (!imported.has(dep) && !peers.has(dep)) problems.push(`declared but never imported by src/: ${dep}`);
  }
  for (const dep of imported)
    if (!declared.has(dep)) problems.push(`imported by src/ but not declared: ${dep}`);
  return problems;
}
