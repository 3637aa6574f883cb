import { execFile } from 'node:child_process';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built bin: these tests check what ships (`pnpm build` first). */
export const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
/** The file the package's `bin` names, which package managers link as `secret-provider`. */
export const PACKAGE_BIN = fileURLToPath(new URL('../bin/secret-provider.js', import.meta.url));

export const built = (): boolean => existsSync(BIN);

export interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Every output of every run in a test file, for the leak scan at its end. */
export const outputs: string[] = [];

/** Runs the bin in a child process with exactly `env` (plus PATH), bounded in time. */
export function runBin(
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: options.cwd, env: { PATH: process.env.PATH ?? '', ...options.env }, timeout: 30_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        if (code === -1) {
          reject(error);
          return;
        }
        outputs.push(stdout, stderr);
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Runs the bin inside a pseudo-terminal (util-linux `script`), so stdout is a TTY. */
export function runInTty(
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<Run> {
  const command = [process.execPath, BIN, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  return new Promise((resolve, reject) => {
    execFile(
      'script',
      ['-qec', command, '/dev/null'],
      {
        cwd: options.cwd,
        env: { PATH: process.env.PATH ?? '', TERM: 'xterm', ...options.env },
        timeout: 30_000,
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        if (code === -1) {
          reject(error);
          return;
        }
        outputs.push(stdout, stderr);
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Writes a file with a mode (0600 unless told), as secret files are. */
export function writeSecretFile(dir: string, name: string, text: string, mode = 0o600): string {
  const file = join(dir, name);
  writeFileSync(file, text, { mode });
  chmodSync(file, mode);
  return file;
}

/** Writes a JSON configuration (mode 0600) and returns its path. */
export function writeConfig(dir: string, config: unknown, name = 'secret-provider.config.json'): string {
  return writeSecretFile(dir, name, `${JSON.stringify(config, null, 2)}\n`);
}

/** The parsed `--json` document of a run (exactly one on stdout). */
export function documentOf(run: Run): {
  command: string;
  ok: boolean;
  exitCode: number;
  results: Array<{
    provider: string;
    check: string;
    outcome: string;
    detail: string;
    data?: Record<string, unknown>;
  }>;
  [key: string]: unknown;
} {
  return JSON.parse(run.stdout);
}
