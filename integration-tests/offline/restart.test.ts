// The offline fallback across a restart, as a service lives it: a child process reads its
// secrets from the Vault double through an OfflineFallbackProvider and exits; Vault goes away;
// a second child starts from the encrypted fallback file, and switches to Vault as soon as it
// answers again (a value changed at Vault meanwhile shows). Children print fingerprints only.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { VaultDouble } from '@secret-provider/doubles/vault';
import { expectNoLeak } from '@secret-provider/testing';
import { build } from 'esbuild';
import { afterAll, beforeAll, expect, it } from 'vitest';

const here = fileURLToPath(new URL('.', import.meta.url));
const fingerprint = (value: string) => createHash('sha256').update(value).digest('hex').slice(0, 16);

interface Line {
  readonly step: string;
  readonly [field: string]: unknown;
}

let dir: string;
let child: string;

beforeAll(async () => {
  // Inside the workspace (ignored by git), so that the bundle's node-vault resolves as a user's would.
  dir = await mkdtemp(join(here, '..', '.tmp-offline-'));
  child = join(dir, 'child.mjs');
  await build({
    entryPoints: [join(here, 'fixtures', 'restart-child.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    conditions: ['@secret-provider/source'],
    external: ['node-vault'],
    outfile: child,
    logLevel: 'silent',
  });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs the child to its end (at most 30 s); `onLine` sees each line as it comes. */
function runChild(
  env: Record<string, string>,
  onLine: (line: Line) => unknown = () => {},
): Promise<{ lines: Line[]; output: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [child], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const killer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    const lines: Line[] = [];
    let output = '';
    const pending: Promise<unknown>[] = [];
    proc.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    createInterface({ input: proc.stdout }).on('line', (text) => {
      output += `${text}\n`;
      try {
        const line = JSON.parse(text) as Line;
        lines.push(line);
        pending.push(Promise.resolve(onLine(line)));
      } catch {
        // Not a step line; kept in `output` for the leak scan.
      }
    });
    proc.on('error', reject);
    proc.on('close', (code) => {
      clearTimeout(killer);
      Promise.all(pending).then(() => resolve({ lines, output, code }), reject);
    });
  });
}

it('a restarted process starts from the encrypted fallback while Vault is down, then switches to Vault', async () => {
  const double = await VaultDouble.start();
  try {
    const password = `pw-${randomBytes(16).toString('hex')}`;
    const token = `tok-${randomBytes(16).toString('hex')}`;
    const rotated = `pw2-${randomBytes(16).toString('hex')}`;
    double.kvPut('secret', 'app/db', { value: password });
    double.kvPut('secret', 'app/api', { token, note: 'n' });
    const keys = ['secret/app/db', 'secret/app/api#token'];
    const fallbackKey = randomBytes(32).toString('hex');
    const path = join(dir, 'state', 'secrets.fallback');
    const env = (mode: string) => ({
      OFFLINE_FALLBACK_KEY: fallbackKey,
      OFFLINE_CHILD_CONFIG: JSON.stringify({
        mode,
        url: double.url,
        token: double.rootToken,
        path,
        keys,
        polled: 'secret/app/db',
      }),
    });

    // Run 1, Vault up: the values are read from Vault and recorded.
    const run1 = await runChild(env('record'));
    expect(run1.code).toBe(0);
    const reads1 = run1.lines.filter((l) => l.step === 'read');
    expect(reads1.map((l) => [l.key, l.fingerprint, l.servedFrom])).toEqual([
      ['secret/app/db', fingerprint(password), undefined],
      ['secret/app/api#token', fingerprint(token), undefined],
    ]);
    expect(run1.lines.at(-1)).toMatchObject({ step: 'done', stats: { writes: 1, served: 0 } });

    // The file: owner-only, and no value nor key name in it, in any common spelling.
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const bytes = await readFile(path);
    for (const text of [password, token, 'secret/app/db', 'app/api', 'token']) {
      for (const spelled of [
        text,
        Buffer.from(text).toString('hex'),
        Buffer.from(text).toString('base64').replace(/=+$/, ''),
        Buffer.from(text).toString('base64url'),
      ]) {
        expect(bytes.includes(Buffer.from(spelled)), `a spelling of a text of length ${text.length}`).toBe(
          false,
        );
      }
    }

    // Vault goes away; run 2 starts, serves the fallback, and is told when Vault is back.
    await double.stopListening();
    const requestsWhileDown = double.requests.length;
    const run2 = await runChild(env('restart'), async (line) => {
      if (line.step !== 'waiting') return;
      // A value changed at Vault while the process ran on the fallback.
      double.kvPut('secret', 'app/db', { value: rotated });
      await double.resumeListening();
    });
    expect(run2.code, run2.output).toBe(0);
    const reads2 = run2.lines.filter((l) => l.step === 'read');
    expect(reads2.map((l) => [l.key, l.fingerprint, l.servedFrom])).toEqual([
      ['secret/app/db', fingerprint(password), 'offline-fallback'],
      ['secret/app/api#token', fingerprint(token), 'offline-fallback'],
    ]);
    const warnings = run2.lines.filter((l) => l.step === 'warning');
    expect(warnings.map((l) => [l.code, l.key])).toEqual([
      ['OFFLINE_FALLBACK_SERVED', 'secret/app/db'],
      ['OFFLINE_FALLBACK_SERVED', 'secret/app/api#token'],
      ['OFFLINE_FALLBACK_ENDED', 'secret/app/db'],
    ]);
    expect(run2.lines.find((l) => l.step === 'backend')).toMatchObject({
      key: 'secret/app/db',
      fingerprint: fingerprint(rotated),
    });
    expect(double.requests.length).toBeGreaterThan(requestsWhileDown);
    expect(run2.lines.at(-1)?.step).toBe('done');

    // The refreshed file serves the rotated value; with a maxAge the values exceed, it is refused.
    await double.stopListening();
    const run3 = await runChild(env('stale'));
    expect(run3.code).toBe(0);
    const reads3 = run3.lines.filter((l) => l.step === 'read');
    expect(reads3.map((l) => [l.error, l.code])).toEqual([
      ['FallbackTooOldError', 'UNAVAILABLE'],
      ['FallbackTooOldError', 'UNAVAILABLE'],
    ]);
    expect(String(reads3[0]?.message)).toMatch(/too old/);

    // Nothing any run printed (steps, warnings, errors, stderr) shows a value or the file key.
    expectNoLeak([run1.output, run2.output, run3.output], [password, token, rotated, fallbackKey], {
      encodings: true,
    });
  } finally {
    await double.close();
  }
});
