#!/usr/bin/env node
// Prints the path of a Node.js 24 binary, for the checks that run on Node 24 as well as on the
// Node the workspace runs on. In order: $SECRET_PROVIDER_NODE24 (a binary you already have), the
// running Node if it is 24, or npm's `node@24` package (it ships the real binary), installed once
// into node_modules/.cache/node24 with npm's cache preferred, so later runs need no network.
// Exits 2 with the reason on stderr when no Node 24 can be had (say, the registry is out of reach):
// callers report that loudly and tell it apart from a test failure.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const cache = join(root, 'node_modules', '.cache', 'node24');
const installed = join(
  cache,
  'node_modules',
  'node',
  'bin',
  process.platform === 'win32' ? 'node.exe' : 'node',
);

/** The binary's major version, or undefined if it does not run. */
function majorOf(binary) {
  try {
    const version = execFileSync(binary, ['--version'], { encoding: 'utf8', timeout: 10_000 }).trim();
    return Number(/^v(\d+)\./.exec(version)?.[1]);
  } catch {
    return undefined;
  }
}

function found(binary) {
  console.log(binary);
  process.exit(0);
}

const given = process.env.SECRET_PROVIDER_NODE24;
if (given) {
  if (majorOf(given) === 24) found(given);
  console.error(`node24: SECRET_PROVIDER_NODE24=${given} is not a working Node.js 24 binary`);
  process.exit(2);
}
if (Number(process.versions.node.split('.')[0]) === 24) found(process.execPath);
if (existsSync(installed) && majorOf(installed) === 24) found(installed);

try {
  execFileSync(
    process.platform === 'win32' ? 'npm.cmd' : 'npm',
    [
      'install',
      '--prefix',
      cache,
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      '--loglevel=error',
      'node@24',
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
      timeout: 180_000,
      shell: process.platform === 'win32',
    },
  );
} catch (error) {
  const said = `${error.stderr ?? ''}${error.stdout ?? ''}`.trim().split('\n').slice(-5).join('\n  ');
  console.error(`node24: could not install npm's node@24 package into ${cache}:\n  ${said || error.message}`);
  process.exit(2);
}
if (existsSync(installed) && majorOf(installed) === 24) found(installed);
console.error(`node24: npm installed node@24 but ${installed} is not a working Node.js 24 binary`);
process.exit(2);
