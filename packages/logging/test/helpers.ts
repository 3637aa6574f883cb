import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';

/** Every form in which `value` could leak into output. */
export function formsOf(value: string): Record<string, string> {
  return {
    raw: value,
    json: JSON.stringify(value).slice(1, -1),
    base64: Buffer.from(value).toString('base64').replace(/=+$/, ''),
    base64url: Buffer.from(value).toString('base64url'),
    url: encodeURIComponent(value),
  };
}

/** Fails when `output` shows any of `values` in any form. */
export function expectNoLeak(output: string, values: readonly string[]): void {
  for (const value of values) {
    for (const [name, form] of Object.entries(formsOf(value))) {
      expect(output.includes(form), `output shows a value (${name} form)`).toBe(false);
    }
  }
}

/** A fresh temporary directory and a function that removes it. */
export function tempDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'redaction-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
