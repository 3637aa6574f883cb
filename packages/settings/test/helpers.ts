import { inspect } from 'node:util';
import { ProviderUnavailableError } from '@secret-provider/core';
import { type HookContext, type StoredSecret, sleep } from '@secret-provider/core/adapter';
import { MemoryProvider, type MemoryProviderOptions } from '@secret-provider/memory';
import type { StandardSchemaV1 } from '@standard-schema/spec';

/** Polls `condition` until it holds or `timeoutMs` passes. */
export async function waitFor(condition: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A memory provider whose reads can be slowed down or made to fail. */
export class ControlledProvider extends MemoryProvider {
  delayMs = 0;
  failing = new Set<string>();
  reads = 0;

  constructor(options: MemoryProviderOptions = {}) {
    super(options);
  }

  protected override async readSecret(key: string, context?: HookContext): Promise<StoredSecret | undefined> {
    this.reads++;
    if (this.delayMs > 0) await sleep(this.delayMs, context?.signal);
    if (this.failing.has(key))
      throw new ProviderUnavailableError({ provider: this.name, key, operation: 'get' });
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

/** Every way a value could be shown: message, stack, causes, JSON, util.inspect. */
export function renderings(...things: unknown[]): string {
  const out: string[] = [];
  const seen = new Set<unknown>();
  const visit = (thing: unknown, depth: number) => {
    if (thing === null || thing === undefined || seen.has(thing) || depth > 6) return;
    seen.add(thing);
    out.push(inspect(thing, { depth: 10, showHidden: true }));
    try {
      out.push(JSON.stringify(thing) ?? '');
    } catch {
      // cycles: inspect covers them
    }
    out.push(String(thing));
    if (thing instanceof Error) {
      out.push(thing.message, thing.stack ?? '');
      visit(thing.cause, depth + 1);
      const problems = (thing as { problems?: unknown[] }).problems;
      for (const problem of problems ?? []) visit(problem, depth + 1);
    }
    if (typeof thing === 'object') {
      for (const value of Object.values(thing as Record<string, unknown>)) visit(value, depth + 1);
    }
  };
  for (const thing of things) visit(thing, 0);
  return out.join('\n');
}

/** Asserts that none of `values` appears in any rendering of `things`. */
export function expectNoLeak(values: readonly string[], ...things: unknown[]): void {
  const text = renderings(...things);
  for (const value of values) {
    if (text.includes(value))
      throw new Error(`leaked a value (length ${value.length}) into an error, event or output`);
  }
}
