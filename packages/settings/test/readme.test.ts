import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import type { Secret } from '@secret-provider/core';
import { describe, expect, it, vi } from 'vitest';
import { example } from './readme-example.js';

describe('README', () => {
  it('shows the example that this test runs, word for word', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const source = readFileSync(new URL('./readme-example.ts', import.meta.url), 'utf8');
    const body = source.slice(source.indexOf('  const defaults'), source.lastIndexOf('  return config;'));
    const unindented = body
      .split('\n')
      .map((line) => line.replace(/^ {2}/, ''))
      .join('\n')
      .trim();
    expect(readme).toContain(unindented);
  });

  it('runs the example', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const reconnected: string[] = [];
    try {
      const config = await example(async (password: Secret<string>) => {
        reconnected.push(password.reveal());
      });
      expect(config.port).toBe(Number(process.env.APP_PORT ?? 8080));
      expect(reconnected).toEqual(['rotated-password-456']);
      const printed = log.mock.calls
        .map((call) => call.map((arg) => (typeof arg === 'string' ? arg : inspect(arg))).join(' '))
        .join('\n');
      expect(printed).toContain('[REDACTED]');
      expect(printed).not.toContain('dev-password-123');
      expect(printed).not.toContain('rotated-password-456');
    } finally {
      log.mockRestore();
    }
  });
});
