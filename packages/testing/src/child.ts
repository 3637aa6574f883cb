// A test's fixture run as a user's process: the fixture is bundled from the sources with esbuild
// into a folder inside the workspace (ignored by git), with the client libraries left external so
// that they load from node_modules as in a user's process; then run with Node and an environment.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';

const execute = promisify(execFile);

/** The debug switches of the libraries under the providers; a run starts with none of them set. */
export const DEBUG_SWITCHES = [
  'DEBUG',
  'DEBUG_DEPTH',
  'NODE_DEBUG',
  'AZURE_LOG_LEVEL',
  'GRPC_TRACE',
  'GRPC_VERBOSITY',
] as const;

export interface BundledChild {
  readonly dir: string;
  readonly outfile: string;
  /** Runs the bundle (cwd: its folder) with `env` over this process's, debug switches cleared. */
  run(
    env: Record<string, string>,
    options?: { timeoutMs?: number },
  ): Promise<{ stdout: string; stderr: string }>;
  remove(): Promise<void>;
}

/**
 * Bundles `entry` into a fresh folder `<under>/<prefix>XXXXXX`. `under` must lie inside the
 * workspace, so that the external packages resolve from its node_modules.
 */
export async function bundleChild(
  entry: string,
  options: { under: string; prefix: string; external: string[] },
): Promise<BundledChild> {
  const dir = await mkdtemp(join(options.under, options.prefix));
  const outfile = join(dir, 'child.mjs');
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    await build({
      entryPoints: [entry],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      conditions: ['@secret-provider/source'],
      external: options.external,
      outfile,
      logLevel: 'silent',
    });
  } catch (error) {
    await remove();
    throw error;
  }
  return {
    dir,
    outfile,
    remove,
    async run(env, runOptions = {}) {
      const base: Record<string, string | undefined> = { ...process.env };
      for (const name of DEBUG_SWITCHES) delete base[name];
      const { stdout, stderr } = await execute(process.execPath, [outfile], {
        cwd: dir,
        env: { ...base, ...env },
        timeout: runOptions.timeoutMs ?? 30_000,
        maxBuffer: 256 * 1024 * 1024,
        encoding: 'utf8',
      });
      return { stdout, stderr };
    },
  };
}
