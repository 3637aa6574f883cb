// Helpers the tests of every package, the integration tests and the benchmarks share. They are
// runner-agnostic (they throw plain errors), and no failure message ever quotes a secret value.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import {
  createEmitter,
  type SecretEvents,
  type SecretProvider,
  type WatchHandle,
} from '@secret-provider/core';

/** Resolves after `ms` of real time. */
export const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `check` holds, polling every 5 ms; fails after `ms`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  ms = 5_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${ms} ms`);
    await pause(5);
  }
}

/** Polls `probe` until it returns something other than `undefined`/`false`, and returns that. */
export async function waitFor<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  ms = 5_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = await probe();
    if (found !== undefined && found !== false) return found;
    if (Date.now() > deadline) throw new Error(`${what} not met within ${ms} ms`);
    await pause(5);
  }
}

/** One event a watch reported. */
export interface Recorded {
  readonly type: keyof SecretEvents;
  readonly event: SecretEvents[keyof SecretEvents];
}

/** Watches `provider` and records every event; `handle` stops the watch. */
export async function record(provider: SecretProvider): Promise<{ events: Recorded[]; handle: WatchHandle }> {
  const events: Recorded[] = [];
  const emitter = createEmitter();
  emitter.on('*', (type, event) => events.push({ type, event: event as SecretEvents[keyof SecretEvents] }));
  const handle = provider.watch(emitter);
  await handle.ready;
  return { events, handle };
}

/** The keys named by events of one type (a `rotated` event names several). */
export function keysOf(events: readonly Recorded[], type: keyof SecretEvents): string[] {
  return events
    .filter((e) => e.type === type)
    .flatMap((e) =>
      'keys' in e.event ? [...e.event.keys] : 'key' in e.event && e.event.key ? [e.event.key] : [],
    );
}

/** A compact, value-free view of events for assertions: `added:a`, `rotated:a,b`, `removed:c`. */
export function summary(
  events: readonly Recorded[],
  types: ReadonlyArray<keyof SecretEvents> = ['added', 'rotated', 'removed'],
): string[] {
  return events
    .filter((e) => types.includes(e.type))
    .map((e) => {
      const event = e.event as { key?: string; keys?: readonly string[] };
      return `${e.type}:${event.key ?? [...(event.keys ?? [])].sort().join(',')}`;
    });
}

/** The rejection of `promise`; fails if it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection, but the promise resolved');
}

/** How a value may be spelled where it leaks: as is, and optionally in its common encodings. */
function formsOf(value: string, encodings: boolean): Array<[string, string]> {
  const forms: Array<[string, string]> = [['plain', value]];
  if (encodings) {
    forms.push(
      ['json', JSON.stringify(value).slice(1, -1)],
      ['base64', Buffer.from(value).toString('base64').replace(/=+$/, '')],
      ['base64url', Buffer.from(value).toString('base64url')],
      ['url', encodeURIComponent(value)],
    );
  }
  return forms;
}

/** Every rendering a logger or a debugger could produce of `thing`, cause chains included. */
export function renderings(thing: unknown): string[] {
  const views = [
    typeof thing === 'string' ? thing : '',
    safely(() => String(thing)),
    safely(() => JSON.stringify(thing) ?? ''),
    safely(() => inspect(thing, { depth: Number.POSITIVE_INFINITY, showHidden: true, getters: false })),
  ];
  const seen = new Set<unknown>();
  for (let error = thing; error instanceof Error && !seen.has(error); error = (error as Error).cause) {
    seen.add(error);
    views.push(error.message, error.stack ?? '');
    for (const key of Reflect.ownKeys(error)) {
      views.push(
        safely(() => inspect((error as unknown as Record<PropertyKey, unknown>)[key], { depth: 10 })),
      );
    }
  }
  return views;
}

function safely(render: () => string): string {
  try {
    return render();
  } catch {
    return '';
  }
}

/**
 * Fails when any of `values` shows in any rendering of `things` (JSON, inspect with hidden
 * properties, `String()`, messages, stacks and causes). With `encodings`, also in base64,
 * base64url, URL and JSON-escaped forms. The failure names the form and the value's length,
 * never the value.
 */
export function expectNoLeak(
  things: readonly unknown[],
  values: readonly string[],
  options: { encodings?: boolean } = {},
): void {
  for (const thing of things) {
    const views = renderings(thing);
    for (const value of values) {
      if (value.length === 0) continue;
      for (const [form, spelled] of formsOf(value, options.encodings ?? false)) {
        const view = views.find((v) => v.includes(spelled));
        if (view !== undefined) {
          throw new Error(
            `a value (length ${value.length}, ${form} form) leaked into a ${thing instanceof Error ? thing.name : typeof thing}`,
          );
        }
      }
    }
  }
}

/** A fresh temporary directory and the function that removes it. */
export function tempDir(prefix = 'secret-provider-'): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Path of a `node --import` preload that appends every module URL the process resolves to the file
 * named by the `LOAD_LOG` environment variable: a child process can show what an import pulled in.
 */
export const loadRecorder: string = fileURLToPath(new URL('../record-loads.mjs', import.meta.url));
