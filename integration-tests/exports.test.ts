// Imports every published entry point the way a user's program does: by package name, from
// the built files, in a plain Node process (no test runner aliases).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = fileURLToPath(new URL('.', import.meta.url));
const packagesDir = fileURLToPath(new URL('../packages/', import.meta.url));
const entryPoints = readdirSync(packagesDir).flatMap((dir) => {
  const manifest = JSON.parse(readFileSync(`${packagesDir}${dir}/package.json`, 'utf8')) as {
    name: string;
    exports: Record<string, unknown>;
  };
  return Object.keys(manifest.exports)
    .filter((subpath) => !subpath.endsWith('.json'))
    .map((subpath) => manifest.name + subpath.slice(1));
});

describe('published entry points', () => {
  for (const specifier of entryPoints) {
    it(`imports ${specifier} from its build`, () => {
      const names = execFileSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const m = await import(${JSON.stringify(specifier)}); console.log(Object.keys(m).join(','))`,
        ],
        { cwd: here, encoding: 'utf8' },
      ).trim();
      expect(names.length).toBeGreaterThan(0);
    });
  }

  it('core exports the public names of the design', () => {
    const names = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "console.log(Object.keys(await import('@secret-provider/core')).join(','))",
      ],
      { cwd: here, encoding: 'utf8' },
    )
      .trim()
      .split(',');
    for (const name of [
      'Secret',
      'SecretError',
      'SecretNotFoundError',
      'BaseProvider',
      'CachedProvider',
      'isSecretError',
    ]) {
      expect(names).toContain(name);
    }
  });
});
