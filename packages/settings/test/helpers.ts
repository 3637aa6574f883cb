// Settings-specific test helpers; the shared ones come from @secret-provider/testing.
import { ProviderUnavailableError } from '@secret-provider/core';
import { type HookContext, type StoredSecret, sleep } from '@secret-provider/core/adapter';
import { MemoryProvider, type MemoryProviderOptions } from '@secret-provider/memory';
import type { StandardSchemaV1 } from '@standard-schema/spec';

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
