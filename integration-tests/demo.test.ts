// The README's demo must run and print only redacted values.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const demo = fileURLToPath(new URL('../examples/demo.mjs', import.meta.url));

/** Every value the demo embeds or writes: quoted strings marked as secret values in its source. */
function valuesIn(source: string): string[] {
  return [...source.matchAll(/'([^'\n]{12,})'\s*,?\s*\/\/ value\b/g)].map((m) => m[1] as string);
}

describe('demo', () => {
  it('runs end to end and prints no secret value', () => {
    const source = readFileSync(demo, 'utf8');
    const values = valuesIn(source);
    expect(values.length).toBeGreaterThanOrEqual(3);
    const output = execFileSync(process.execPath, [demo], { encoding: 'utf8', timeout: 30_000 });
    expect(output).toContain('[REDACTED]');
    expect(output).toContain('rotated');
    // The redactor attached to the chain with the default secretKeys: what it masks, what it leaves.
    const verdicts = Object.fromEntries(
      [...output.matchAll(/^(masks|leaves) +([A-Z_]+) +(.+?) +(\S+)$/gm)].map((m) => [
        m[2],
        [m[1], m[3], m[4]],
      ]),
    );
    expect(verdicts).toEqual({
      API_KEY: ['masks', 'named like a secret', '[REDACTED]'],
      DATABASE_URL: ['masks', 'not plain configuration', '[REDACTED]'],
      SMTP_PASSWORD: ['masks', 'named like a secret', '[REDACTED]'],
      PORT: ['leaves', 'never a secret', '8080'],
      SERVICE_URL: ['leaves', 'plain configuration', 'http://localhost:8080'],
    });
    for (const value of values) expect(output).not.toContain(value);
    // Parts of values too: passwords inside connection strings, key bodies.
    for (const part of ['password-1', 'password-v1', 'password-v2', 'sk_live', 'sk_test', 'smtp-dev']) {
      expect(output).not.toContain(part);
    }
  });
});
