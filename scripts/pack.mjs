#!/usr/bin/env node
// Release tarballs: packs every public package with pnpm into dist-packages/ (or `--out DIR`).
// pnpm replaces the `workspace:` ranges of the manifests by the versions they point to; `npm pack`
// leaves them as they are, and npm then cannot install the tarball. Each tarball's package.json
// is read back and checked: no local protocol (`workspace:`, `link:`, `file:`, ...) left, no
// dependency on a private package, and every dependency on a sibling allows the sibling's version.
// Needs the build (`pnpm run pack` builds first). Prints one line per tarball; `--json` prints
// `[{ name, version, file }]` instead.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const outIndex = args.indexOf('--out');
const out = resolve(outIndex >= 0 ? (args[outIndex + 1] ?? '') : join(root, 'dist-packages'));
const json = args.includes('--json');
const SOURCE_CONDITION = '@secret-provider/source';
const LOCAL_PROTOCOL = /^(workspace|link|file|portal|catalog):/;

const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));
const packages = readdirSync(join(root, 'packages'))
  .map((name) => join(root, 'packages', name))
  .filter((dir) => existsSync(join(dir, 'package.json')))
  .map((dir) => ({ dir, manifest: readJson(join(dir, 'package.json')) }));
const published = packages.filter(({ manifest }) => !manifest.private);
const privateNames = new Set(packages.filter(({ manifest }) => manifest.private).map((p) => p.manifest.name));
const versions = new Map(published.map(({ manifest }) => [manifest.name, manifest.version]));

const fail = (message) => {
  console.error(`pack: ${message}`);
  process.exit(1);
};

// The tarballs ship the build: refuse to pack without it rather than ship sources only.
for (const { dir, manifest } of published) {
  const targets = [];
  const collect = (value, condition) => {
    if (typeof value === 'string') {
      if (condition !== SOURCE_CONDITION) targets.push(value);
    } else if (value && typeof value === 'object') {
      for (const [key, inner] of Object.entries(value)) collect(inner, key);
    }
  };
  collect(manifest.exports);
  const missing = targets.filter((target) => !existsSync(join(dir, target)));
  if (missing.length > 0) {
    fail(`${manifest.name} is not built (${missing.join(', ')} missing): run \`pnpm run build\` first`);
  }
}

mkdirSync(out, { recursive: true });
for (const file of readdirSync(out)) if (/^secret-provider-.*\.tgz$/.test(file)) rmSync(join(out, file));

const pnpm = join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'pnpm.cmd' : 'pnpm');
const filters = published.flatMap(({ manifest }) => ['--filter', manifest.name]);
const packed = JSON.parse(
  execFileSync(pnpm, ['--recursive', ...filters, 'pack', '--pack-destination', out, '--json'], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    shell: process.platform === 'win32',
  }),
);
const tarballs = (Array.isArray(packed) ? packed : [packed]).map((entry) => ({
  name: entry.name,
  version: entry.version,
  file: resolve(out, entry.filename),
}));

const problems = [];
for (const { name } of published.map(({ manifest }) => manifest)) {
  if (!tarballs.some((tarball) => tarball.name === name)) problems.push(`${name}: no tarball was written`);
}
for (const tarball of tarballs) {
  const manifest = JSON.parse(readFromTarball(tarball.file, 'package/package.json'));
  for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) {
    for (const [dep, range] of Object.entries(manifest[field] ?? {})) {
      const where = `${tarball.name} ${field}.${dep}`;
      if (LOCAL_PROTOCOL.test(range)) problems.push(`${where} is "${range}", which npm cannot install`);
      if (privateNames.has(dep)) problems.push(`${where}: ${dep} is private, never published`);
      const version = versions.get(dep);
      if (version && ![version, `^${version}`, `~${version}`].includes(range)) {
        problems.push(`${where} is "${range}", which does not name the released ${version}`);
      }
    }
  }
}
if (problems.length > 0) fail(`the tarballs are not installable:\n  ${problems.join('\n  ')}`);

if (json) {
  console.log(JSON.stringify(tarballs, null, 2));
} else {
  for (const { file } of tarballs) {
    console.log(`${relative(process.cwd(), file)}  ${(statSync(file).size / 1024).toFixed(1)} kB`);
  }
}

/** One file of a gzipped tar archive, as text. */
function readFromTarball(file, wanted) {
  const tar = gunzipSync(readFileSync(file));
  for (let offset = 0; offset + 512 <= tar.length; ) {
    const header = tar.subarray(offset, offset + 512);
    const field = (start, length) => header.toString('utf8', start, start + length).replace(/\0.*$/s, '');
    const name = field(0, 100);
    if (name === '') break;
    const prefix = field(345, 155);
    const size = Number.parseInt(field(124, 12).trim(), 8);
    const body = offset + 512;
    if ((prefix ? `${prefix}/${name}` : name) === wanted) return tar.toString('utf8', body, body + size);
    offset = body + Math.ceil(size / 512) * 512;
  }
  throw new Error(`${wanted} is not in ${file}`);
}
