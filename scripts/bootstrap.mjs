#!/usr/bin/env node
// Installs the workspace from the lockfile with the pnpm version pinned in package.json's
// `packageManager`, fetched through npm. It needs neither corepack (which may be missing or fail
// its signature check) nor a global pnpm, and it behaves the same where corepack does work.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));
const pinned = /^pnpm@(\d+\.\d+\.\d+)$/.exec(readJson(join(root, 'package.json')).packageManager ?? '')?.[1];
if (!pinned) {
  console.error('package.json "packageManager" must pin pnpm as pnpm@x.y.z');
  process.exit(1);
}

const localManifest = join(root, 'node_modules', 'pnpm', 'package.json');
const localVersion = existsSync(localManifest) ? readJson(localManifest).version : undefined;
const win = process.platform === 'win32';
const [command, args] =
  localVersion === pinned
    ? [join(root, 'node_modules', '.bin', win ? 'pnpm.cmd' : 'pnpm'), []]
    : [win ? 'npx.cmd' : 'npx', ['--yes', '--loglevel=error', `pnpm@${pinned}`]];

// One line instead of pnpm's progress and summary; its warnings and errors still show.
console.log(`Installing the workspace from the lockfile (pnpm ${pinned})...`);
execFileSync(command, [...args, 'install', '--frozen-lockfile', '--loglevel=warn'], {
  cwd: root,
  stdio: 'inherit',
  shell: win,
  env: { ...process.env, COREPACK_ENABLE_STRICT: '0' },
});
