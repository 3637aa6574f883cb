import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { ProviderUnavailableError } from '@secret-provider/core';
import { describe, expect, it, vi } from 'vitest';
import { FlakyProvider } from './helpers.js';
import { layered, replicas } from './readme-example.js';

const section = (text: string, name: string) => {
  const start = text.indexOf(`// readme:begin ${name}`);
  const end = text.indexOf(`// readme:end ${name}`);
  return text
    .slice(text.indexOf('\n', start) + 1, text.lastIndexOf('\n', end))
    .split('\n')
    .map((line) => line.replace(/^ {2}/, ''))
    .join('\n');
};

const printed = (log: { mock: { calls: unknown[][] } }) =>
  log.mock.calls.map((call) => call.map((arg) => (typeof arg === 'string' ? arg : inspect(arg))).join(' '));

describe('README', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const source = readFileSync(new URL('./readme-example.ts', import.meta.url), 'utf8');

  it('shows the examples that this test runs, word for word', () => {
    expect(readme).toContain(section(source, 'layered'));
    expect(readme).toContain(section(source, 'failover'));
  });

  it('runs the layered example: the environment overrides a default, and a change is a rotation', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    process.env.APP_DATABASE_URL = 'postgres://env-secret-1';
    try {
      const { url, servedBy } = await layered(async () => {
        delete process.env.APP_DATABASE_URL;
      });
      expect(url).toBe('postgres://env-secret-1');
      expect(servedBy).toBe('env');
      const lines = printed(log);
      expect(lines[0]).toBe("env [ 'env: serving', 'defaults: shadowed' ]");
      expect(lines).toContain('rotated DATABASE_URL in env');
      expect(lines.join('\n')).not.toContain('env-secret-1');
      expect(lines.join('\n')).not.toContain('postgres://localhost/dev');
    } finally {
      delete process.env.APP_DATABASE_URL;
      log.mockRestore();
    }
  });

  it('runs the failover example', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      const primary = new FlakyProvider({ name: 'vault-primary', initial: { 'db-password': 'p-secret' } });
      const secondary = new FlakyProvider({
        name: 'vault-secondary',
        initial: { 'db-password': 's-secret' },
      });
      const { value, active } = await replicas(primary, secondary, () => {
        primary.failure = () => new ProviderUnavailableError({ provider: 'vault-primary' });
      });
      expect(value.reveal()).toBe('s-secret');
      expect(active).toBe('vault-secondary');
      const lines = printed(log);
      expect(
        lines.some((line) => line.startsWith('FAILOVER provider "vault-primary" failed (UNAVAILABLE)')),
      ).toBe(true);
    } finally {
      log.mockRestore();
    }
  });
});
