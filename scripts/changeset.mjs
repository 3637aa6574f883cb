#!/usr/bin/env node
// `pnpm changeset [command] [args]`: the changesets CLI, after which the changeset files it wrote
// are formatted as the lint expects (Biome formats their front matter), so adding a changeset
// never fails `pnpm verify`.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const bin = (name) => join(root, 'node_modules', '.bin', process.platform === 'win32' ? `${name}.cmd` : name);
const options = { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' };

const changeset = spawnSync(bin('changeset'), process.argv.slice(2), options);
if (changeset.status !== 0) process.exit(changeset.status ?? 1);
const format = spawnSync(bin('biome'), ['format', '--write', '.changeset'], { ...options, stdio: 'pipe' });
if (format.status !== 0) process.stderr.write(`${format.stdout}${format.stderr}`);
process.exit(format.status ?? 1);
