import { isSecretError, type RotatedEvent, type WarningEvent } from '@secret-provider/core';
import { rejection } from '@secret-provider/testing';
import { ManualClock, type VaultProviderOptions } from '@secret-provider/vault';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Setup, setup, trackUnhandledRejections } from './helpers.js';

trackUnhandledRejections({ beforeAll, afterAll });

let current: Setup | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

async function onClock(options: VaultProviderOptions = {}, watch = true) {
  const clock = new ManualClock();
  const s = await setup({
    clock,
    watch,
    provider: () => ({ random: () => 0.5, pollInterval: 3_600_000, ...options }),
  });
  current = s;
  s.double.kvPut('secret', 'app/a', { value: 'a1' });
  s.double.kvPut('secret', 'slow/x/y', { value: 'y1' });
  s.double.kvPut('secret', 'other', { value: 'o1' });
  return { s, clock };
}

const reads = (s: Setup, path: string) => s.double.count((r) => r.path === `secret/data/${path}`);

describe('static secrets re-read on per-pattern intervals', () => {
  it('re-reads each held secret on its pattern’s interval, and answers gets from memory', async () => {
    const { s, clock } = await onClock({
      staticRefresh: { intervals: { 'secret/app/*': 60, 'secret/slow/**': 600 }, loopIntervalMs: 5_000 },
    });
    for (const key of ['secret/app/a', 'secret/slow/x/y', 'secret/other']) await s.provider.get(key);
    s.double.clearLog();
    for (let t = 0; t < 3600; t += 10) {
      expect((await s.provider.get('secret/app/a')).reveal()).toBe('a1');
      await clock.advance(10_000);
    }
    // About one re-read per interval (the first one spread at random inside the first interval).
    expect(reads(s, 'app/a')).toBeGreaterThanOrEqual(57);
    expect(reads(s, 'app/a')).toBeLessThanOrEqual(62);
    expect(reads(s, 'slow/x/y')).toBeGreaterThanOrEqual(5);
    expect(reads(s, 'slow/x/y')).toBeLessThanOrEqual(7);
    expect(reads(s, 'other')).toBe(0);
    expect(s.provider.stats().tracked).toBe(2);
  });

  it('lets STATIC_SECRETS_REFRESH_INTERVALS override a pattern’s interval', async () => {
    const { s, clock } = await onClock({
      env: { STATIC_SECRETS_REFRESH_INTERVALS: '{"secret/app/*": 300}' },
      staticRefresh: { intervals: { 'secret/app/*': 60 } },
    });
    await s.provider.get('secret/app/a');
    s.double.clearLog();
    await clock.advance(3_600_000);
    expect(reads(s, 'app/a')).toBeGreaterThanOrEqual(11);
    expect(reads(s, 'app/a')).toBeLessThanOrEqual(13);
  });

  it('reports invalid JSON in the variable as a warning event, and keeps the configured intervals', async () => {
    const { s, clock } = await onClock({
      env: { STATIC_SECRETS_REFRESH_INTERVALS: '{"secret/app/*": 30,' },
      staticRefresh: { intervals: { 'secret/app/*': 60 } },
    });
    const warning = s.events.find((e) => e.type === 'warning')?.event as WarningEvent | undefined;
    expect(warning?.code).toBe('INVALID_REFRESH_INTERVALS');
    expect(warning?.message).not.toContain('secret/app');
    expect(s.provider.configWarnings).toHaveLength(1);
    await s.provider.get('secret/app/a');
    s.double.clearLog();
    await clock.advance(600_000);
    expect(reads(s, 'app/a')).toBeGreaterThanOrEqual(9);
  });

  it('emits rotated when a re-read finds a new version, and removed when the secret is gone', async () => {
    const { s, clock } = await onClock({ staticRefresh: { intervals: { 'secret/app/*': 60 } } });
    await s.provider.get('secret/app/a#value');
    s.double.kvPut('secret', 'app/a', { value: 'a2' });
    await clock.advance(120_000);
    const rotated = s.events.find((e) => e.type === 'rotated')?.event as RotatedEvent | undefined;
    expect(rotated?.keys).toEqual(['secret/app/a', 'secret/app/a#value']);
    expect(rotated?.changes[0]).toMatchObject({ oldVersion: '1', newVersion: '2' });
    expect((await s.provider.get('secret/app/a#value')).reveal()).toBe('a2');
    s.double.call('DELETE', 'secret/metadata/app/a');
    await clock.advance(120_000);
    expect(s.events.filter((e) => e.type === 'removed').map((e) => (e.event as { key: string }).key)).toEqual(
      ['secret/app/a', 'secret/app/a#value'],
    );
    expect(isSecretError(await rejection(s.provider.get('secret/app/a')), 'NOT_FOUND')).toBe(true);
  });

  it('keeps serving the last value while re-reads fail, reports them, backs off, and recovers', async () => {
    const { s, clock } = await onClock({
      staticRefresh: { intervals: { 'secret/app/*': 60 }, loopIntervalMs: 1_000 },
    });
    await s.provider.get('secret/app/a');
    s.double.seal();
    s.double.clearLog();
    for (let t = 0; t < 600; t += 10) {
      expect((await s.provider.get('secret/app/a')).reveal()).toBe('a1');
      await clock.advance(10_000);
    }
    const attempts = reads(s, 'app/a');
    // Back-off doubling to at most one interval: far fewer attempts than loop ticks (600).
    expect(attempts).toBeGreaterThanOrEqual(5);
    expect(attempts).toBeLessThanOrEqual(20);
    expect(s.events.filter((e) => e.type === 'error')).toHaveLength(attempts);
    s.double.unseal();
    s.double.kvPut('secret', 'app/a', { value: 'a2' });
    await clock.advance(120_000);
    expect((await s.provider.get('secret/app/a')).reveal()).toBe('a2');
  });

  it('refreshes everything held on demand, and rejects with TIMEOUT when that takes too long', async () => {
    const { s, clock } = await onClock({
      staticRefresh: { intervals: { 'secret/**': 3600 } },
      requestTimeoutMs: 1_000,
    });
    await s.provider.get('secret/app/a');
    await s.provider.get('secret/other');
    s.double.kvPut('secret', 'other', { value: 'o2' });
    const report = await s.provider.refresh();
    expect(report.refreshed).toBe(2);
    expect(report.changed).toEqual(['secret/other']);
    expect(report.failed).toEqual([]);
    expect((await s.provider.get('secret/other')).reveal()).toBe('o2');

    s.double.fail({ kind: 'hang', match: 'secret/data/app/a' });
    const pending = rejection(s.provider.refresh({ timeout: 5_000 }));
    await clock.advance(5_000);
    const error = await pending;
    expect(isSecretError(error, 'TIMEOUT')).toBe(true);
    expect((error as { operation?: string }).operation).toBe('refresh');
  });
});
