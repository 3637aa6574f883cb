import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SecretEvents } from '@secret-provider/core';
import { type EnvObject, EnvProvider } from '@secret-provider/env';
import { expectNoLeak, keysOf, pause, type Recorded, record, tempDir, until } from '@secret-provider/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

describe('EnvProvider.watch: the environment', () => {
  it('polls the environment and reports added, rotated and removed once each, without values', async () => {
    const env: EnvObject = {
      APP_KEEP: 'keep-value',
      APP_GONE: 'gone-value',
      APP_ROT: 'rot-value-1',
      OTHER: 'x',
    };
    const provider = new EnvProvider({ env, prefix: 'APP_', pollInterval: 20 });
    const { events, handle } = await record(provider);
    env.APP_NEW = 'new-value';
    env.APP_ROT = 'rot-value-2';
    delete env.APP_GONE;
    env.OTHER = 'not selected, not reported';
    await until(() => events.length >= 3, 5_000, 'three events');
    await pause(100);
    expect(keysOf(events, 'added')).toEqual(['NEW']);
    expect(keysOf(events, 'removed')).toEqual(['GONE']);
    expect(keysOf(events, 'rotated')).toEqual(['ROT']);
    expect(events).toHaveLength(3);
    const rotated = events.find((e) => e.type === 'rotated')?.event as SecretEvents['rotated'];
    expect(rotated.changes[0]?.newVersion).toBe((await provider.metadata('ROT')).version);
    expectNoLeak(
      events.map((e) => e.event),
      ['keep-value', 'gone-value', 'rot-value-1', 'rot-value-2', 'new-value'],
    );
    await handle.stop();
    env.APP_AFTER = 'after';
    await pause(80);
    expect(events).toHaveLength(3);
    await provider.close();
  });

  it('reports its own writes at once, not at the next poll', async () => {
    const provider = new EnvProvider({ env: {}, prefix: 'APP_', writable: true, pollInterval: 60_000 });
    const { events } = await record(provider);
    await provider.set('A', 'one');
    expect(keysOf(events, 'added')).toEqual(['A']);
    await provider.set('A', 'two');
    expect(keysOf(events, 'rotated')).toEqual(['A']);
    await provider.delete('A');
    expect(keysOf(events, 'removed')).toEqual(['A']);
    await provider.close();
  });

  it('stops its poll when the last watcher stops and on close', async () => {
    const env: EnvObject = {};
    const provider = new EnvProvider({ env, all: true, pollInterval: 10 });
    const first = await record(provider);
    const second = await record(provider);
    await first.handle.stop();
    env.A = '1';
    await until(() => second.events.length === 1, 5_000, 'event to the remaining watcher');
    expect(first.events).toHaveLength(0);
    await provider.close();
    env.B = '2';
    await pause(60);
    expect(second.events).toHaveLength(1);
  });
});

const lastVersionOfA = (events: Recorded[]) => {
  const last = events.filter((e) => keysOf([e], e.type).includes('A')).at(-1);
  if (last === undefined || last.type === 'removed') return undefined;
  if (last.type === 'rotated')
    return (last.event as SecretEvents['rotated']).changes.find((c) => c.key === 'A')?.newVersion;
  return (last.event as SecretEvents['added']).version;
};

describe('EnvProvider.watch: .env files', () => {
  let dir: string;
  let remove: () => void;
  let provider: EnvProvider | undefined;
  beforeEach(async () => {
    ({ dir, remove } = tempDir('env-provider-'));
  });
  afterEach(async () => {
    await provider?.close();
    provider = undefined;
    await remove();
  });

  /** A provider over `dir/.env` whose poll is too slow to matter: only fs.watch can report in time. */
  const watchedFile = async (
    initial: string | undefined,
    options: { env?: EnvObject; debounce?: number } = {},
  ) => {
    const path = join(dir, '.env');
    if (initial !== undefined) await writeFile(path, initial);
    provider = new EnvProvider({
      env: options.env ?? {},
      prefix: 'APP_',
      files: path,
      pollInterval: 60_000,
      debounce: options.debounce ?? 50,
    });
    const recorded = await record(provider);
    return { path, provider, ...recorded };
  };

  it('reports an in-place write as one rotation', async () => {
    const { path, provider, events } = await watchedFile('APP_A=one\nAPP_B=same\n');
    await writeFile(path, 'APP_A=two\nAPP_B=same\n');
    await until(() => events.length >= 1, 5_000, 'rotation');
    await pause(150);
    expect(events.map((e) => e.type)).toEqual(['rotated']);
    expect(keysOf(events, 'rotated')).toEqual(['A']);
    expect((await provider.get('A')).reveal()).toBe('two');
  });

  it('follows a write to a temporary file renamed over the .env file', async () => {
    const { path, provider, events } = await watchedFile('APP_A=one\n');
    await writeFile(join(dir, '.env.tmp'), 'APP_A=two\nAPP_C=three\n');
    await rename(join(dir, '.env.tmp'), path);
    await until(() => events.length >= 2, 5_000, 'rotation and addition');
    await pause(150);
    expect(keysOf(events, 'rotated')).toEqual(['A']);
    expect(keysOf(events, 'added')).toEqual(['C']);
    expect(events).toHaveLength(2);
    expect((await provider.get('C')).reveal()).toBe('three');
  });

  it('reports removal when the file is deleted and addition when it comes back', async () => {
    const { path, events } = await watchedFile('APP_A=one\n');
    await rm(path);
    await until(() => keysOf(events, 'removed').length === 1, 5_000, 'removal');
    await writeFile(path, 'APP_A=again\n');
    await until(() => keysOf(events, 'added').length === 1, 5_000, 'addition');
    expect(events.map((e) => e.type)).toEqual(['removed', 'added']);
  });

  it('picks up a file that did not exist when watching started', async () => {
    const { path, provider, events } = await watchedFile(undefined);
    await writeFile(path, 'APP_LATE=late\n');
    await until(() => events.length >= 1, 5_000, 'addition');
    expect(keysOf(events, 'added')).toEqual(['LATE']);
    expect((await provider.get('LATE')).reveal()).toBe('late');
  });

  it('arms the watcher once a missing directory appears (found by the poll)', async () => {
    const nested = join(dir, 'later', '.env');
    provider = new EnvProvider({ env: {}, prefix: 'APP_', files: nested, pollInterval: 30, debounce: 10 });
    const { events } = await record(provider);
    await mkdir(join(dir, 'later'));
    await writeFile(nested, 'APP_X=1\n');
    await until(() => keysOf(events, 'added').includes('X'), 5_000, 'addition in the new directory');
    await pause(100);
    // Now fs.watch on the new directory reports changes too.
    await writeFile(nested, 'APP_X=2\n');
    await until(() => keysOf(events, 'rotated').includes('X'), 5_000, 'rotation in the new directory');
    expect((await provider.get('X')).reveal()).toBe('2');
  });

  it('ends with the second of two writes 10 ms apart readable, and reported', async () => {
    const { path, provider, events } = await watchedFile('APP_A=v0\n', { debounce: 5 });
    for (let run = 1; run <= 20; run++) {
      await writeFile(path, `APP_A=first-${run}\n`);
      await pause(10);
      await writeFile(path, `APP_A=second-${run}\n`);
      const expected = `second-${run}`;
      const target = (await new EnvProvider({ env: {}, prefix: 'APP_', files: path }).metadata('A')).version;
      // The last event about A carries the version of the second value (an in-place write read
      // half-way may add a removal and an addition on the way; no write may be lost).
      await until(() => lastVersionOfA(events) === target, 5_000, `last event at ${expected}`);
      expect((await provider.get('A')).reveal()).toBe(expected);
    }
  });

  it('coalesces a burst of writes into one re-read', async () => {
    const { path, provider, events } = await watchedFile('APP_A=v0\n', { debounce: 150 });
    for (let i = 1; i <= 5; i++) {
      await writeFile(path, `APP_A=v${i}\n`);
      await pause(5);
    }
    await until(() => events.length >= 1, 5_000, 'rotation');
    await pause(300);
    expect(events.map((e) => e.type)).toEqual(['rotated']);
    expect((await provider.get('A')).reveal()).toBe('v5');
  });

  it('reports nothing for a file change that the environment shadows', async () => {
    const { path, provider, events } = await watchedFile('APP_A=file-1\nAPP_B=file-b\n', {
      env: { APP_A: 'env-a' },
    });
    await writeFile(path, 'APP_A=file-2\nAPP_B=file-b2\n');
    await until(() => events.length >= 1, 5_000, 'rotation of B');
    await pause(150);
    expect(keysOf(events, 'rotated')).toEqual(['B']);
    expect((await provider.get('A')).reveal()).toBe('env-a');
  });

  it('keeps the last good values and reports an error when the file cannot be read', async () => {
    const { path, provider, events } = await watchedFile('APP_A=good-secret-value\n');
    // Swap the file for a link to a directory in one rename, so it is never missing.
    await mkdir(join(dir, 'a-directory'));
    await symlink(join(dir, 'a-directory'), join(dir, 'link.tmp'));
    await rename(join(dir, 'link.tmp'), path);
    await until(() => events.some((e) => e.type === 'error'), 5_000, 'error event');
    expect((await provider.get('A')).reveal()).toBe('good-secret-value');
    const error = events.find((e) => e.type === 'error')?.event as SecretEvents['error'];
    expect(error.provider).toBe('env');
    expect(error.error.message).toContain(path);
    expect(events.filter((e) => e.type === 'removed')).toHaveLength(0);
    expectNoLeak(
      events.map((e) => e.event),
      ['good-secret-value'],
    );
    await writeFile(join(dir, 'good.tmp'), 'APP_A=recovered\n');
    await rename(join(dir, 'good.tmp'), path);
    await until(() => keysOf(events, 'rotated').includes('A'), 5_000, 'rotation after recovery');
    expect((await provider.get('A')).reveal()).toBe('recovered');
  });
});
