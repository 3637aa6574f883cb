// Settings-specific test helpers; the shared ones come from @secret-provider/testing.
import { spawnSync } from 'node:child_process';
import { ProviderUnavailableError } from '@secret-provider/core';
import { type HookContext, type StoredSecret, sleep } from '@secret-provider/core/adapter';
import { MemoryProvider, type MemoryProviderOptions } from '@secret-provider/memory';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { build } from 'esbuild';

/** A memory provider whose reads can be slowed down or made to fail. */
export class ControlledProvider extends MemoryProvider {
  delayMs = 0;
  failing = new Set<string>();
  reads = 0;
  /** Called at the start of every read (to time reads on a simulated clock). */
  onRead: ((key: string) => void) | undefined;
  /** The error a failing key's read throws. */
  failure: (key: string) => Error = (key) =>
    new ProviderUnavailableError({ provider: this.name, key, operation: 'get' });

  constructor(options: MemoryProviderOptions = {}) {
    super(options);
  }

  protected override async readSecret(key: string, context?: HookContext): Promise<StoredSecret | undefined> {
    this.reads++;
    this.onRead?.(key);
    if (this.delayMs > 0) await sleep(this.delayMs, context?.signal);
    if (this.failing.has(key)) throw this.failure(key);
    return super.readSecret(key);
  }
}

/** Wraps a schema so that its validations can be counted; keeps the wrapped schema's shape. */
export function spySchema<S extends StandardSchemaV1>(schema: S): { schema: S; calls: () => number } {
  let calls = 0;
  const standard = schema['~standard'];
  const spy = Object.create(schema) as S;
  Object.defineProperty(spy, '~standard', {
    value: {
      ...standard,
      validate: (value: unknown, options?: StandardSchemaV1.Options) => {
        calls++;
        return standard.validate(value, options);
      },
    },
  });
  return { schema: spy, calls: () => calls };
}

/**
 * Bundles a fixture script (workspace sources included, as an application build would) to
 * `outfile`, an ES module Node runs as it is. dotenv is CommonJS, hence the `require` banner.
 */
export async function bundleFixture(entry: string, outfile: string): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    conditions: ['@secret-provider/source'],
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
    logLevel: 'silent',
  });
}

/** Runs a bundled script in a fresh Node process with only `env` (and PATH) in its environment. */
export function runScript(
  script: string,
  env: Record<string, string> = {},
): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [script], {
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}
