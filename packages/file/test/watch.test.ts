import { mkdirSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ErrorEvent } from '@secret-provider/core';
import { expectNoLeak, pause, type Recorded, record, summary, waitFor } from '@secret-provider/testing';
import { describe, expect, it } from 'vitest';
import { atomicWriterUpdate, providersInTempDir, secretValue, waitForValue } from './helpers.js';

// Real files and real inotify. Assertions wait for outcomes; the settle waits only make room for
// duplicate events to show up, so a slow machine can make these tests slower, not flaky.
const QUIET_MS = 200;

let dir: string;
const open = providersInTempDir('file-provider-', (made) => {
  dir = made;
});

/** Waits for `expected` (in any order) and a quiet period, then checks nothing else came. */
async function expectEvents(events: Recorded[], expected: string[]): Promise<void> {
  await waitFor(
    () => expected.every((e) => summary(events).includes(e)),
    5_000,
    `events ${expected.join(' ')}`,
  );
  await pause(QUIET_MS);
  expect(summary(events).sort()).toEqual([...expected].sort());
}

describe('watching a directory of files', () => {
  it('in-place write: the new value is readable and one rotated event comes', async () => {
    writeFileSync(join(dir, 'a'), 'old');
    writeFileSync(join(dir, 'b'), 'other');
    const provider = open({ path: dir });
    const { events } = await record(provider);
    writeFileSync(join(dir, 'a'), 'new');
    await waitForValue(provider, 'a', 'new');
    await expectEvents(events, ['rotated:a']);
    expect((await provider.get('b')).reveal()).toBe('other');
  });

  it("editor's write-temp-then-rename: one rotated event, the temporary name never reported", async () => {
    writeFileSync(join(dir, 'token'), 'v1');
    const provider = open({ path: dir });
    const { events } = await record(provider);
    writeFileSync(join(dir, 'token.tmp'), 'v2');
    renameSync(join(dir, 'token.tmp'), join(dir, 'token'));
    await waitForValue(provider, 'token', 'v2');
    await expectEvents(events, ['rotated:token']);
    expect(await provider.keys()).toEqual(['token']);
  });

  it('delete and re-create: one rotated event for a new value, none for the same value', async () => {
    writeFileSync(join(dir, 'k'), 'v1');
    const provider = open({ path: dir });
    const { events } = await record(provider);
    unlinkSync(join(dir, 'k'));
    writeFileSync(join(dir, 'k'), 'v2');
    await waitForValue(provider, 'k', 'v2');
    await expectEvents(events, ['rotated:k']);
    events.length = 0;
    unlinkSync(join(dir, 'k'));
    await pause(2);
    writeFileSync(join(dir, 'k'), 'v2');
    await expectEvents(events, []);
    expect((await provider.get('k')).reveal()).toBe('v2');
  });

  it('a key deleted and re-created within the debounce never reads as missing', async () => {
    writeFileSync(join(dir, 'k'), 'v0');
    writeFileSync(join(dir, 'doc.json'), JSON.stringify({ k: 'v0' }));
    const provider = open({ path: dir, debounceMs: 100 });
    const json = open({ path: join(dir, 'doc.json'), debounceMs: 100 });
    await record(provider);
    await record(json);
    const misses: string[] = [];
    let reading = true;
    const reader = (async () => {
      while (reading) {
        for (const p of [provider, json]) {
          try {
            await p.get('k');
          } catch {
            misses.push(p.format);
          }
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    for (let i = 1; i <= 5; i++) {
      unlinkSync(join(dir, 'k'));
      unlinkSync(join(dir, 'doc.json'));
      await pause(10);
      writeFileSync(join(dir, 'k'), `v${i}`);
      writeFileSync(join(dir, 'doc.json'), JSON.stringify({ k: `v${i}` }));
      await waitForValue(provider, 'k', `v${i}`);
      await waitForValue(json, 'k', `v${i}`);
    }
    reading = false;
    await reader;
    expect(misses).toEqual([]);
  });

  it('adds and removes keys: added and removed once each', async () => {
    const provider = open({ path: dir });
    const { events } = await record(provider);
    writeFileSync(join(dir, 'x'), 'x');
    await expectEvents(events, ['added:x']);
    unlinkSync(join(dir, 'x'));
    await expectEvents(events, ['added:x', 'removed:x']);
    await expect(provider.get('x')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('a directory that does not exist yet at start, then is deleted and re-created', async () => {
    const target = join(dir, 'not', 'yet');
    const provider = open({ path: target, format: 'directory' });
    const { events } = await record(provider);
    mkdirSync(join(dir, 'not'));
    await pause(20);
    mkdirSync(target);
    writeFileSync(join(target, 'late'), 'arrived');
    await waitForValue(provider, 'late', 'arrived');
    await expectEvents(events, ['added:late']);
    rmSync(target, { recursive: true });
    await expectEvents(events, ['added:late', 'removed:late']);
    mkdirSync(target);
    writeFileSync(join(target, 'late'), 'again');
    await waitForValue(provider, 'late', 'again');
    await expectEvents(events, ['added:late', 'removed:late', 'added:late']);
  });

  it('Kubernetes AtomicWriter switch: one read per switch, each change reported once', async () => {
    atomicWriterUpdate(dir, { user: 'admin', password: 'pw1', removed: 'r' });
    const provider = open({ path: dir });
    const { events } = await record(provider);
    const before = provider.stats();
    atomicWriterUpdate(dir, { user: 'admin', password: 'pw2', added: 'n' });
    await waitForValue(provider, 'password', 'pw2');
    await expectEvents(events, ['rotated:password', 'removed:removed', 'added:added']);
    const after = provider.stats();
    expect(after.reloads - before.reloads).toBe(1);
    expect(after.fsEvents - before.fsEvents).toBeGreaterThan(after.reloads - before.reloads);
    expect(await provider.keys()).toEqual(['added', 'password', 'user']);
    // A second switch, and one that changes nothing visible.
    atomicWriterUpdate(dir, { user: 'root', password: 'pw2', added: 'n' });
    await expectEvents(events, ['rotated:password', 'removed:removed', 'added:added', 'rotated:user']);
    atomicWriterUpdate(dir, { user: 'root', password: 'pw2', added: 'n' });
    await pause(QUIET_MS);
    expect(summary(events)).toHaveLength(4);
  });

  it('a Kubernetes volume created after the watch started', async () => {
    const target = join(dir, 'volume');
    const provider = open({ path: target, format: 'directory' });
    const { events } = await record(provider);
    mkdirSync(target);
    atomicWriterUpdate(target, { key: 'v1' });
    await waitForValue(provider, 'key', 'v1');
    await expectEvents(events, ['added:key']);
  });

  it('reports its own writes once, and serves them at once', async () => {
    const provider = open({ path: dir });
    const { events } = await record(provider);
    await provider.set('mine', 'v1');
    expect((await provider.get('mine')).reveal()).toBe('v1');
    await expectEvents(events, ['added:mine']);
    await provider.set('mine', 'v2');
    await provider.delete('mine');
    await provider.set('other', 'o');
    await expectEvents(events, ['added:mine', 'added:other', 'removed:mine']);
  });

  it('pairs of writes 10 ms apart end with the second value', async () => {
    writeFileSync(join(dir, 'pair'), 'start');
    const provider = open({ path: dir });
    const { events } = await record(provider);
    for (let run = 0; run < 5; run++) {
      writeFileSync(join(dir, 'pair'), `first-${run}`);
      await pause(10);
      writeFileSync(join(dir, 'pair'), `second-${run}`);
      await waitForValue(provider, 'pair', `second-${run}`);
      await pause(60);
      expect((await provider.get('pair')).reveal()).toBe(`second-${run}`);
    }
    expect(summary(events).every((e) => e === 'rotated:pair')).toBe(true);
  });

  it('polling mode sees writes too (for file systems without notifications)', async () => {
    writeFileSync(join(dir, 'p'), 'v1');
    const provider = open({ path: dir, usePolling: true, pollInterval: 30 });
    const { events } = await record(provider);
    await pause(50);
    writeFileSync(join(dir, 'p'), 'v2');
    await waitForValue(provider, 'p', 'v2');
    await expectEvents(events, ['rotated:p']);
  });
});

describe('watching a JSON or .env file', () => {
  it('in-place write, rename-over and delete+recreate each give one event per changed key', async () => {
    const path = join(dir, 'app.json');
    writeFileSync(path, JSON.stringify({ db: { password: 'p1', user: 'u' }, api: 'a1' }));
    const provider = open({ path });
    const { events } = await record(provider);
    writeFileSync(path, JSON.stringify({ db: { password: 'p2', user: 'u' }, api: 'a1' }));
    await waitForValue(provider, 'db.password', 'p2');
    await expectEvents(events, ['rotated:db.password']);
    writeFileSync(`${path}.swp`, JSON.stringify({ db: { password: 'p2', user: 'u' }, api: 'a2' }));
    renameSync(`${path}.swp`, path);
    await waitForValue(provider, 'api', 'a2');
    await expectEvents(events, ['rotated:db.password', 'rotated:api']);
    unlinkSync(path);
    writeFileSync(path, JSON.stringify({ db: { password: 'p2', user: 'u' }, api: 'a2', extra: 'e' }));
    await expectEvents(events, ['rotated:db.password', 'rotated:api', 'added:extra']);
    unlinkSync(path);
    await expectEvents(events, [
      'rotated:db.password',
      'rotated:api',
      'added:extra',
      'removed:api',
      'removed:db.password',
      'removed:db.user',
      'removed:extra',
    ]);
  });

  it('a file that does not parse keeps the last good values and reports an error without its content', async () => {
    const path = join(dir, 'secrets.json');
    const good = secretValue('good');
    const bad = secretValue('bad');
    writeFileSync(path, JSON.stringify({ key: good }));
    const provider = open({ path });
    const { events } = await record(provider);
    writeFileSync(path, `${bad} {"key": "${bad}"`);
    const error = await waitFor(() => events.find((e) => e.type === 'error'), 5_000, 'an error event');
    expect((await provider.get('key')).reveal()).toBe(good);
    const { error: reported } = error.event as ErrorEvent;
    expect(reported.code).toBe('INVALID_VALUE');
    expect(reported.message).toContain(path);
    expectNoLeak([error.event, reported, reported.cause], [good, bad]);
    writeFileSync(path, JSON.stringify({ key: 'fixed' }));
    await waitForValue(provider, 'key', 'fixed');
    await expectEvents(events, ['rotated:key']);
    expect(events.filter((e) => e.type === 'error')).toHaveLength(1);
  });

  it('.env edits: one event per changed key; lines read as dotenv reads them, without errors', async () => {
    const path = join(dir, '.env');
    writeFileSync(path, 'A=1\nB=2\n');
    const provider = open({ path });
    const { events } = await record(provider);
    writeFileSync(path, 'A=1\nB=3\nC=4\n');
    await expectEvents(events, ['rotated:B', 'added:C']);
    // An unterminated quote is part of an unquoted value for dotenv; a stray line is skipped.
    const secret = secretValue('env');
    writeFileSync(path, `A=1\nB="${secret}\nnot a definition\nC=4\n`);
    await waitForValue(provider, 'B', `"${secret}`);
    await expectEvents(events, ['rotated:B', 'added:C', 'rotated:B']);
    expect(events.filter((e) => e.type === 'error')).toEqual([]);
    expectNoLeak(
      events.map((e) => e.event),
      [secret],
    );
  });

  it('a file in a Kubernetes volume is re-read on the ..data switch', async () => {
    atomicWriterUpdate(dir, { 'app.env': 'TOKEN=t1\n' });
    const provider = open({ path: join(dir, 'app.env') });
    const { events } = await record(provider);
    atomicWriterUpdate(dir, { 'app.env': 'TOKEN=t2\n' });
    await waitForValue(provider, 'TOKEN', 't2');
    await expectEvents(events, ['rotated:TOKEN']);
  });

  it('a file whose directory appears later', async () => {
    const path = join(dir, 'later', 'conf.json');
    const provider = open({ path });
    const { events } = await record(provider);
    mkdirSync(join(dir, 'later'));
    writeFileSync(path, JSON.stringify({ k: 'v' }));
    await waitForValue(provider, 'k', 'v');
    await expectEvents(events, ['added:k']);
  });

  it('follows a link swap of the file itself', async () => {
    writeFileSync(join(dir, 'v1.json'), JSON.stringify({ k: '1' }));
    writeFileSync(join(dir, 'v2.json'), JSON.stringify({ k: '2' }));
    symlinkSync('v1.json', join(dir, 'current.json'));
    const provider = open({ path: join(dir, 'current.json') });
    const { events } = await record(provider);
    symlinkSync('v2.json', join(dir, 'next.json'));
    renameSync(join(dir, 'next.json'), join(dir, 'current.json'));
    await waitForValue(provider, 'k', '2');
    await expectEvents(events, ['rotated:k']);
  });

  it('stops: no more events, and reads go back to the disk', async () => {
    const path = join(dir, 'stop.json');
    writeFileSync(path, JSON.stringify({ k: '1' }));
    const provider = open({ path });
    const { events, handle } = await record(provider);
    await handle.stop();
    writeFileSync(path, JSON.stringify({ k: '2' }));
    expect((await provider.get('k')).reveal()).toBe('2');
    await pause(QUIET_MS);
    expect(summary(events)).toEqual([]);
  });
});
