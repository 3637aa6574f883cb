import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { tempDir } from '@secret-provider/testing';
import { describe, expect, it, vi } from 'vitest';
import { example } from './readme-example.js';

const between = (text: string) => {
  const start = text.indexOf('// readme:begin');
  const end = text.indexOf('// readme:end');
  return text
    .slice(text.indexOf('\n', start) + 1, text.lastIndexOf('\n', end))
    .split('\n')
    .map((line) => line.replace(/^ {2}/, ''))
    .join('\n');
};

describe('README', () => {
  it('shows the example that this test runs, word for word', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const source = readFileSync(new URL('./readme-example.ts', import.meta.url), 'utf8');
    expect(readme).toContain(between(source));
  });

  it('runs the example: reads, lists only the prefix, reports a rotation without values', async () => {
    const { dir, remove } = tempDir('env-provider-');
    const cwd = process.cwd();
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const prefix = 'APP_';
    const added = [`${prefix}FROM_ENV`];
    process.env[`${prefix}FROM_ENV`] = 'env-secret-1';
    try {
      await writeFile(
        join(dir, '.env'),
        'APP_DATABASE_URL=postgres://file-secret-2\nAPP_API_KEY=file-secret-3\n',
      );
      await writeFile(join(dir, '.env.local'), 'APP_API_KEY=local-secret-4\n');
      process.chdir(dir);
      const keys = await example(() => writeFile(join(dir, '.env.local'), 'APP_API_KEY=local-secret-5\n'));
      expect(keys).toEqual(expect.arrayContaining(['DATABASE_URL', 'API_KEY', 'FROM_ENV']));
      expect(keys).not.toContain('PATH');
      const printed = log.mock.calls.map((call) =>
        call.map((arg) => (typeof arg === 'string' ? arg : inspect(arg))).join(' '),
      );
      expect(printed).toContain('connecting with [REDACTED]');
      expect(printed).toContain("rotated: [ 'API_KEY' ]");
      for (const value of [
        'env-secret-1',
        'file-secret-2',
        'file-secret-3',
        'local-secret-4',
        'local-secret-5',
      ]) {
        expect(printed.join('\n')).not.toContain(value);
      }
    } finally {
      process.chdir(cwd);
      log.mockRestore();
      for (const name of added) delete process.env[name];
      await remove();
    }
  });
});
