import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { FakeCredential, KeyVaultDouble } from '@secret-provider/doubles/key-vault';
import { until } from '@secret-provider/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { clientOptionsFor } from './fixtures.js';
import { connections, example } from './readme-example.js';

const readme = readFileSync(new URL('../../packages/azure/README.md', import.meta.url), 'utf8');

let double: KeyVaultDouble | undefined;

afterEach(async () => {
  await double?.stop();
});

describe('packages/azure/README.md', () => {
  it('shows the quick start that this test runs, word for word', () => {
    const source = readFileSync(new URL('./readme-example.ts', import.meta.url), 'utf8');
    const body = source.slice(source.indexOf('  await secrets.set'), source.lastIndexOf('  return {'));
    const unindented = body
      .split('\n')
      .map((line) => line.replace(/^ {2}/, ''))
      .join('\n')
      .trim();
    expect(readme).toContain(unindented);
  });

  it('runs the quick start', async () => {
    double = await KeyVaultDouble.start();
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      const { secrets, watching } = await example(
        double.url,
        new FakeCredential(double),
        clientOptionsFor(double),
      );
      expect(double.valueOf('DATABASE-URL')).toBe('postgres://app:s3cret@db/prod');
      expect(connections).toEqual(['postgres://app:s3cret@db/prod']);
      double.setSecret('DATABASE-URL', 'postgres://app:rotated@db/prod');
      await until(() => log.mock.calls.length >= 2);
      await watching.stop();
      await secrets.close();
      const printed = log.mock.calls
        .map((call) => call.map((arg) => inspect(arg, { depth: 5 })).join(' '))
        .join('\n');
      expect(printed).toContain('[REDACTED]');
      expect(printed).toContain('text/uri');
      expect(printed).toContain('oldVersion');
      expect(printed).not.toContain('s3cret');
      expect(printed).not.toContain('rotated@');
    } finally {
      log.mockRestore();
    }
  });
});
