// A reload that is due keeps the process alive until it has run, as a pending setTimeout would:
// a script that changes a value and awaits the update must see it, not exit half-way.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '@secret-provider/testing';
import { expect, it } from 'vitest';
import { bundleFixture, runScript } from './helpers.js';

it('a script awaiting an update with nothing else alive sees the update and exits 0', async () => {
  const work = tempDir('settings-lifetime-');
  try {
    const script = join(work.dir, 'rotate.mjs');
    await bundleFixture(fileURLToPath(new URL('./fixtures/rotate.ts', import.meta.url)), script);
    const { status, stdout, stderr } = runScript(script);
    // 13 is Node's "unsettled top-level await": the process ran out of work before the reload.
    expect({ status, stderr }).toEqual({ status: 0, stderr: '' });
    expect(stdout.trim()).toBe('port 8080 -> 9090');
  } finally {
    work.remove();
  }
}, 60_000);
