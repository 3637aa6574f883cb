import { inspect } from 'node:util';
import {
  createEmitter,
  InvalidKeyError,
  type SecretEvents,
  type SecretMetadata,
  type SecretProvider,
  type WatchHandle,
} from '@secret-provider/core';
import type { StoredSecret } from '@secret-provider/core/adapter';
import { MemoryProvider, type MemoryProviderOptions } from '@secret-provider/memory';
import { expect } from 'vitest';

/** Waits until `check` holds, polling; fails after `ms`. */
export async function until(check: () => boolean, ms = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export type Recorded = { type: keyof SecretEvents; event: SecretEvents[keyof SecretEvents] };

/** Watches `provider` and records every event. */
export async function record(provider: SecretProvider): Promise<{ events: Recorded[]; handle: WatchHandle }> {
  const events: Recorded[] = [];
  const emitter = createEmitter();
  emitter.on('*', (type, event) => events.push({ type, event: event as SecretEvents[keyof SecretEvents] }));
  const handle = provider.watch(emitter);
  await handle.ready;
  return { events, handle };
}

/** The events of one type, with their keys flattened (a `rotated` event names several). */
export function keysOf(events: Recorded[], type: keyof SecretEvents): string[] {
  return events
    .filter((e) => e.type === type)
    .flatMap((e) =>
      'keys' in e.event ? [...e.event.keys] : 'key' in e.event && e.event.key ? [e.event.key] : [],
    );
}

/** Fails if any of `values` shows in the JSON, inspect output, message or stack of `things`. */
export function expectNoLeak(things: unknown[], values: string[]): void {
  for (const thing of things) {
    const views = [
      JSON.stringify(thing) ?? '',
      inspect(thing, { depth: 10, showHidden: true }),
      thing instanceof Error
        ? `${thing.message}\n${thing.stack}\n${inspect(thing.cause, { depth: 10 })}`
        : '',
    ];
    for (const value of values) {
      for (const view of views)
        expect(view.includes(value), `value leaked into ${view.slice(0, 200)}`).toBe(false);
    }
  }
}

/** The rejection of `promise` (fails if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/**
 * A memory provider that fails on demand: while `failure` is set, reads, metadata and listing
 * throw what it makes. Counts the reads that reached it.
 */
export class FlakyProvider extends MemoryProvider {
  failure: (() => unknown) | undefined;
  reads = 0;
  metadataReads = 0;

  constructor(options: MemoryProviderOptions = {}) {
    super(options);
  }

  protected override async readSecret(key: string): Promise<StoredSecret | undefined> {
    this.reads++;
    if (this.failure) throw this.failure();
    return super.readSecret(key);
  }

  protected override async readMetadata(key: string): Promise<Omit<SecretMetadata, 'key'> | undefined> {
    this.metadataReads++;
    if (this.failure) throw this.failure();
    return super.readMetadata(key);
  }

  protected override async listKeys(): Promise<string[]> {
    if (this.failure) throw this.failure();
    return super.listKeys();
  }
}

/** A memory provider whose keys may not contain `_` (like Key Vault names). */
export class DashOnlyProvider extends MemoryProvider {
  protected override validateKey(key: unknown): string {
    const checked = super.validateKey(key);
    if (checked.includes('_')) {
      throw new InvalidKeyError(
        { provider: this.name, key: checked },
        'invalid key: only letters, digits and dashes',
      );
    }
    return checked;
  }
}
