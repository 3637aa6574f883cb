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
    private?: boolean;
    exports: Record<string, unknown>;
  };
  if (manifest.private) return [];
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

  const namesOf = (specifier: string) =>
    execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `console.log(Object.keys(await import(${JSON.stringify(specifier)})).join(','))`,
      ],
      { cwd: here, encoding: 'utf8' },
    )
      .trim()
      .split(',');

  it('core exports the public names of the design, and keeps plumbing out of the application entry', () => {
    const names = namesOf('@secret-provider/core');
    for (const name of [
      'Secret',
      'SecretError',
      'SecretNotFoundError',
      'CachedProvider',
      'createEmitter',
      'createRedactor',
      'isSecretError',
      'hasKey',
    ]) {
      expect(names).toContain(name);
    }
    for (const plumbing of ['sleep', 'raceSignal', 'jittered', 'EventHub', 'BaseProvider', 'Poller']) {
      expect(names).not.toContain(plumbing);
    }
  });

  it('core/adapter exports what adapter authors build on', () => {
    const names = namesOf('@secret-provider/core/adapter');
    for (const name of [
      'BaseProvider',
      'WrappingProvider',
      'Poller',
      'ManualClock',
      'systemClock',
      'sleep',
      'backoffDelay',
      'EventHub',
      'validateKey',
    ]) {
      expect(names).toContain(name);
    }
  });
});
