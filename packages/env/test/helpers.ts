import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import {
  createEmitter,
  type SecretEvents,
  type SecretProvider,
  type WatchHandle,
} from '@secret-provider/core';
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

/** A fresh temporary directory, removed by the returned function. */
export async function tempDir(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'env-provider-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
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
