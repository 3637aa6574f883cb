import { ChainedProvider, DEFAULT_FAILOVER_CODES } from '@secret-provider/chained';
import {
  AccessDeniedError,
  isSecretError,
  ProviderUnavailableError,
  RateLimitedError,
  type SecretEvents,
  SecretTimeoutError,
} from '@secret-provider/core';
import {
  expectNoLeak,
  keysOf,
  pause,
  type Recorded,
  record,
  rejection,
  until,
} from '@secret-provider/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { FlakyProvider } from './helpers.js';

// A primary and a secondary replica (two vaults): the primary serves while healthy; a failure
// that says it is not serving moves the chain to the secondary, which serves until a background
// probe finds the primary answering again.

const codeOf = (error: unknown) =>
  isSecretError(error) ? error.code : `not a SecretError: ${String(error)}`;
const unavailable = () => new ProviderUnavailableError({ provider: 'primary' });

let chain: ChainedProvider | undefined;
afterEach(async () => {
  await chain?.close();
  chain = undefined;
});

const replicas = async (
  options: {
    probeInterval?: number;
    failover?: readonly ('UNAVAILABLE' | 'TIMEOUT' | 'RATE_LIMITED')[];
  } = {},
) => {
  const primary = new FlakyProvider({ name: 'primary', initial: { DB: 'primary-secret' } });
  const secondary = new FlakyProvider({
    name: 'secondary',
    initial: { DB: 'secondary-secret', ONLY_SECONDARY: 'x' },
  });
  chain = new ChainedProvider([primary, secondary], {
    mode: 'failover',
    probeInterval: options.probeInterval ?? 20,
    probeJitter: 0,
    ...(options.failover ? { failover: options.failover } : {}),
  });
  const recorded = await record(chain);
  return { primary, secondary, chain, ...recorded };
};

const warningsOf = (events: Recorded[]) =>
  events.filter((e) => e.type === 'warning').map((e) => (e.event as SecretEvents['warning']).code);

describe('ChainedProvider failover mode', () => {
  it('fails over on unavailability, timeouts and rate limits by default', () => {
    expect(DEFAULT_FAILOVER_CODES).toEqual(['UNAVAILABLE', 'TIMEOUT', 'RATE_LIMITED']);
  });

  it('serves from the primary while it is healthy', async () => {
    const { chain, secondary } = await replicas();
    expect((await chain.get('DB')).reveal()).toBe('primary-secret');
    expect(chain.activeProvider.name).toBe('primary');
    expect(secondary.reads).toBe(0);
  });

  it('treats not-found as an answer: it does not fall through to the secondary', async () => {
    const { chain } = await replicas();
    const error = await rejection(chain.get('ONLY_SECONDARY'));
    expect(codeOf(error)).toBe('NOT_FOUND');
    expect(error).toMatchObject({ provider: 'chain', key: 'ONLY_SECONDARY' });
  });

  it('does not fail over on errors that are not about availability', async () => {
    const { chain, primary, secondary } = await replicas();
    primary.failure = () => new AccessDeniedError({ provider: 'primary' });
    expect(codeOf(await rejection(chain.get('DB')))).toBe('ACCESS_DENIED');
    expect(secondary.reads).toBe(0);
    expect(chain.activeProvider.name).toBe('primary');
  });

  it('switches to the secondary, stays there, and switches back once a probe succeeds', async () => {
    const { chain, primary, secondary, events } = await replicas({ probeInterval: 40 });
    primary.failure = unavailable;
    expect((await chain.get('DB')).reveal()).toBe('secondary-secret');
    expect(chain.activeProvider.name).toBe('secondary');
    expect(warningsOf(events)).toEqual(['FAILOVER']);
    const failover = events.find((e) => e.type === 'warning')?.event as SecretEvents['warning'];
    expect(failover).toMatchObject({ provider: 'chain', source: 'primary' });
    expect(failover.message).toMatch(/"primary" failed \(UNAVAILABLE\).*now serves from "secondary"/);
    // Sticky: further reads do not try the primary first.
    const primaryReads = primary.reads;
    for (let i = 0; i < 5; i++) expect((await chain.get('DB')).reveal()).toBe('secondary-secret');
    expect(primary.reads).toBe(primaryReads);
    expect(warningsOf(events)).toEqual(['FAILOVER']);
    // The probe keeps failing while the primary is down...
    await pause(120);
    expect(chain.activeProvider.name).toBe('secondary');
    expect(primary.metadataReads).toBeGreaterThan(0);
    // ...and brings it back once it answers.
    primary.failure = undefined;
    await until(() => chain.activeProvider.name === 'primary', 5_000, 'failback');
    expect(warningsOf(events)).toEqual(['FAILOVER', 'FAILBACK']);
    expect((await chain.get('DB')).reveal()).toBe('primary-secret');
    expect(secondary.reads).toBe(6);
    expectNoLeak(
      events.map((e) => e.event),
      ['primary-secret', 'secondary-secret'],
    );
  });

  it('fails over on timeouts and rate limits, waiting out Retry-After before probing', async () => {
    const { chain, primary, events } = await replicas({ probeInterval: 10 });
    primary.failure = () => new SecretTimeoutError({ provider: 'primary' });
    expect((await chain.get('DB')).reveal()).toBe('secondary-secret');
    primary.failure = undefined;
    await until(() => chain.activeProvider.name === 'primary', 5_000, 'failback after timeout');
    primary.failure = () => new RateLimitedError({ provider: 'primary', retryAfterMs: 300 });
    const switchedAt = Date.now();
    expect((await chain.get('DB')).reveal()).toBe('secondary-secret');
    primary.failure = undefined;
    await until(() => chain.activeProvider.name === 'primary', 5_000, 'failback after rate limit');
    expect(Date.now() - switchedAt).toBeGreaterThanOrEqual(290);
    expect(warningsOf(events)).toEqual(['FAILOVER', 'FAILBACK', 'FAILOVER', 'FAILBACK']);
  });

  it('fails over only on the codes it is given', async () => {
    const { chain, primary } = await replicas({ failover: ['UNAVAILABLE'] });
    primary.failure = () => new SecretTimeoutError({ provider: 'primary' });
    expect(codeOf(await rejection(chain.get('DB')))).toBe('TIMEOUT');
    expect(chain.activeProvider.name).toBe('primary');
  });

  it('rejects with the primary failure when every replica is down, and recovers by itself', async () => {
    const { chain, primary, secondary, events } = await replicas({ probeInterval: 20 });
    primary.failure = unavailable;
    secondary.failure = () => new ProviderUnavailableError({ provider: 'secondary' });
    const error = await rejection(chain.get('DB'));
    expect(codeOf(error)).toBe('UNAVAILABLE');
    expect(error).toMatchObject({ provider: 'primary' });
    expect(warningsOf(events)).toEqual(['FAILOVER', 'FAILOVER']);
    expect((events.at(-1)?.event as SecretEvents['warning'] | undefined)?.message).toMatch(
      /no healthy provider is left/,
    );
    secondary.failure = undefined;
    await until(() => chain.activeProvider.name === 'secondary', 5_000, 'secondary back');
    expect((await chain.get('DB')).reveal()).toBe('secondary-secret');
  });

  it('reports switches as process warnings when nobody watches', async () => {
    const seen: Array<{ code: string | undefined; message: string }> = [];
    const onWarning = (warning: Error & { code?: string }) =>
      seen.push({ code: warning.code, message: warning.message });
    process.on('warning', onWarning);
    try {
      const primary = new FlakyProvider({ name: 'primary', initial: { DB: 'p' } });
      chain = new ChainedProvider([primary, new FlakyProvider({ name: 'secondary', initial: { DB: 's' } })], {
        mode: 'failover',
        probeInterval: 10,
      });
      primary.failure = unavailable;
      expect((await chain.get('DB')).reveal()).toBe('s');
      primary.failure = undefined;
      await until(() => seen.some((w) => w.code === 'SECRET_PROVIDER_FAILBACK'), 5_000, 'failback warning');
      expect(seen.map((w) => w.code)).toContain('SECRET_PROVIDER_FAILOVER');
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('explains which replica serves and which stand by, with their health', async () => {
    const { chain, primary } = await replicas({ probeInterval: 60_000 });
    primary.failure = unavailable;
    await chain.get('DB');
    primary.failure = undefined;
    const explanation = await chain.explain('DB');
    expect(explanation).toMatchObject({ mode: 'failover', servedBy: 'secondary' });
    expect(explanation.entries.map((e) => [e.provider, e.status, e.healthy])).toEqual([
      ['primary', 'standby', false],
      ['secondary', 'serving', true],
    ]);
    expectNoLeak([explanation], ['primary-secret', 'secondary-secret']);
  });

  it('reports changes of the serving replica only', async () => {
    const { chain, primary, secondary, events } = await replicas({ probeInterval: 60_000 });
    await secondary.set('NEW', 'n');
    await primary.set('NEW', 'n');
    await until(() => keysOf(events, 'added').length === 1, 2_000, 'addition');
    await pause(30);
    expect(
      events.filter((e) => e.type === 'added').map((e) => (e.event as { source?: string }).source),
    ).toEqual(['primary']);
    primary.failure = unavailable;
    await chain.get('DB');
    await secondary.set('LATER', 'l');
    await until(() => keysOf(events, 'added').includes('LATER'), 2_000, 'addition from the secondary');
  });

  it('writes to the serving replica', async () => {
    const { chain, primary, secondary } = await replicas({ probeInterval: 60_000 });
    await chain.set('W', 'one');
    expect(primary.store.has('W')).toBe(true);
    primary.failure = unavailable;
    await chain.get('DB');
    await chain.set('W2', 'two');
    expect(secondary.store.has('W2')).toBe(true);
    await chain.set('W3', 'three', { provider: 'primary' });
    expect(primary.store.has('W3')).toBe(true);
  });

  it('stops probing on close', async () => {
    const primary = new FlakyProvider({ name: 'primary', initial: { DB: 'p' } });
    const secondary = new FlakyProvider({ name: 'secondary', initial: { DB: 's' } });
    // Not owned, so the primary stays open and would count any probe that still ran.
    const borrowing = new ChainedProvider([primary, secondary], {
      mode: 'failover',
      probeInterval: 10,
      ownsProviders: false,
    });
    await record(borrowing);
    primary.failure = unavailable;
    await borrowing.get('DB');
    await until(() => primary.metadataReads > 1, 2_000, 'probes');
    await borrowing.close();
    const probes = primary.metadataReads;
    await pause(80);
    expect(primary.metadataReads).toBe(probes);
    await primary.close();
    await secondary.close();
  });
});
