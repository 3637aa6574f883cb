#!/usr/bin/env node
// Checks the published shape of every public package: publint (package.json and files) and
// "are the types wrong" (type resolution as ESM consumers see it). Run after the build.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const bin = (name) => join(root, 'node_modules', '.bin', name);
const packages = readdirSync(join(root, 'packages')).filter((name) => {
  const manifest = JSON.parse(readFileSync(join(root, 'packages', name, 'package.json'), 'utf8'));
  return !manifest.private;
});

let failures = 0;
for (const name of packages) {
  const dir = join(root, 'packages', name);
  for (const [tool, args] of [
    ['publint', ['--strict', dir]],
    ['attw', ['--pack', dir, '--profile', 'esm-only', '--format', 'table-flipped']],
  ]) {
    try {
      execFileSync(bin(tool), args, { cwd: root, stdio: 'pipe' });
    } catch (error) {
      failures++;
      console.error(`${tool} found problems in @secret-provider/${name}:\n${error.stdout}${error.stderr}`);
    }
  }
}
console.log(
  `package checks: ${packages.length * 2 - failures} passed, ${failures} failed (${packages.join(', ')})`,
);
process.exit(failures === 0 ? 0 : 1);
