import {
  ChainedProvider,
  CompositeProvider,
  FailoverProvider,
  LayeredProvider,
} from '@secret-provider/chained';
import {
  isSecretError,
  ProviderUnavailableError,
  RateLimitedError,
  type SecretChange,
} from '@secret-provider/core';
import { ManualClock } from '@secret-provider/core/adapter';
import { MemoryProvider } from '@secret-provider/memory';
import { expectNoLeak, rejection } from '@secret-provider/testing';
import { describe, expect, it } from 'vitest';
import { FlakyProvider } from './helpers.js';

// What both kinds of chain share (the composite base), and ChainedProvider as the door to both.

const codeOf = (error: unknown) =>
  isSecretError(error) ? error.code : `not a SecretError: ${String(error)}`;

describe('ChainedProvider picks the kind by mode', () => {
  it('is a LayeredProvider by default and a FailoverProvider in failover mode; instanceof holds for both', async () => {
    const layered = new ChainedProvider([new MemoryProvider()]);
    const replicas = new ChainedProvider([new MemoryProvider()], { mode: 'failover' });
    expect(layered).toBeInstanceOf(LayeredProvider);
    expect(replicas).toBeInstanceOf(FailoverProvider);
    for (const chain of [layered, replicas]) {
      expect(chain instanceof ChainedProvider).toBe(true);
      expect(chain).toBeInstanceOf(CompositeProvider);
    }
    expect([layered.mode, replicas.mode]).toEqual(['ordered', 'failover']);
    expect(new MemoryProvider() instanceof ChainedProvider).toBe(false);
    expect(new LayeredProvider([new MemoryProvider()]) instanceof ChainedProvider).toBe(true);
    await Promise.all([layered.close(), replicas.close()]);
  });

  it('rejects an unknown mode with INVALID_CONFIG naming the chain', () => {
    let error: unknown;
    try {
      new ChainedProvider([new MemoryProvider()], { name: 'app', mode: 'sideways' as 'ordered' });
    } catch (caught) {
      error = caught;
    }
    expect(codeOf(error)).toBe('INVALID_CONFIG');
    expect(error).toMatchObject({ provider: 'app' });
  });

  it('the kinds can be built directly, with the same behaviour', async () => {
    const layered = new LayeredProvider([
      new MemoryProvider({ name: 'top', initial: { A: 'top-a' } }),
      new MemoryProvider({ name: 'bottom', initial: { A: 'bottom-a', B: 'bottom-b' } }),
    ]);
    expect((await layered.get('A')).reveal()).toBe('top-a');
    expect((await layered.get('B')).reveal()).toBe('bottom-b');
    const replicas = new FailoverProvider([
      new MemoryProvider({ name: 'primary', initial: { A: 'primary-a' } }),
      new MemoryProvider({ name: 'secondary', initial: { B: 'secondary-b' } }),
    ]);
    expect((await replicas.get('A')).reveal()).toBe('primary-a');
    expect(codeOf(await rejection(replicas.get('B')))).toBe('NOT_FOUND');
    await Promise.all([layered.close(), replicas.close()]);
  });
});

describe('ownership', () => {
  it('closes its providers unless ownsProvider: false (or the deprecated ownsProviders: false)', async () => {
    for (const options of [{ ownsProvider: false }, { ownsProviders: false }]) {
      for (const mode of ['ordered', 'failover'] as const) {
        const child = new MemoryProvider({ initial: { A: 'a' } });
        const chain = new ChainedProvider([child], { ...options, mode });
        await chain.close();
        expect((await child.get('A')).reveal()).toBe('a');
        expect(codeOf(await rejection(chain.get('A')))).toBe('CLOSED');
        await child.close();
      }
    }
    const owned = new MemoryProvider();
    await new ChainedProvider([owned]).close();
    expect(codeOf(await rejection(owned.get('A')))).toBe('CLOSED');
    // The new name wins when both are given.
    const kept = new MemoryProvider({ initial: { A: 'a' } });
    await new ChainedProvider([kept], { ownsProvider: false, ownsProviders: true }).close();
    expect((await kept.get('A')).reveal()).toBe('a');
  });
});

describe('has(): the one presence check', () => {
  it('answers synchronously when every provider asked answers presence itself (memory)', async () => {
    const chain = new LayeredProvider([
      new MemoryProvider({ name: 'top', initial: { A: 'a' } }),
      new MemoryProvider({ name: 'bottom', initial: { B: 'b' } }),
    ]);
    expect(chain.has('A')).toBe(true);
    expect(chain.has('B')).toBe(true);
    expect(chain.has('C')).toBe(false);
    expect(chain.capabilities.has).toBe(true);
    await chain.close();
  });

  it('derives presence from a provider that cannot answer it, and types its failures', async () => {
    // FlakyProvider overrides readSecret only, so its presence is derived from reading.
    const broken = new FlakyProvider({ name: 'broken' });
    const lower = new MemoryProvider({ name: 'lower', initial: { A: 'a' } });
    const strict = new LayeredProvider([broken, lower], { ownsProvider: false });
    expect(await strict.has('A')).toBe(true);
    expect(broken.reads).toBe(1);
    broken.failure = () => new ProviderUnavailableError({ provider: 'broken' });
    const error = await rejection(Promise.resolve(strict.has('A')));
    expect(codeOf(error)).toBe('UNAVAILABLE');
    expect(error).toMatchObject({ provider: 'broken' });
    const lenient = new LayeredProvider([broken, lower], { failover: true, ownsProvider: false });
    const seen: string[] = [];
    const onWarning = (warning: Error & { code?: string }) => seen.push(warning.code ?? '');
    process.on('warning', onWarning);
    try {
      expect(await lenient.has('A')).toBe(true);
      expect(codeOf(await rejection(Promise.resolve(lenient.has('Z'))))).toBe('UNAVAILABLE');
      await new Promise((resolve) => setImmediate(resolve));
      expect(seen).toContain('SECRET_PROVIDER_FAILOVER');
    } finally {
      process.off('warning', onWarning);
    }
    expect(codeOf(await rejection(Promise.resolve(strict.has(''))))).toBe('INVALID_KEY');
    await Promise.all([strict.close(), lenient.close(), broken.close(), lower.close()]);
  });
});

describe('changes(): the update stream', () => {
  it('yields the effective changes of a layered chain, and ends when the chain closes', async () => {
    const top = new MemoryProvider({ name: 'top' });
    const bottom = new MemoryProvider({ name: 'bottom', initial: { K: 'bottom-secret' } });
    const chain = new ChainedProvider([top, bottom]);
    const stream = chain.changes();
    const seen: SecretChange[] = [];
    const reading = (async () => {
      for await (const change of stream) seen.push(change);
    })();
    await stream.ready;
    await top.set('K', 'top-secret');
    await top.delete('K');
    await new Promise((resolve) => setTimeout(resolve, 50));
    await chain.close();
    await reading;
    expect(seen.map((c) => [c.type, c.source])).toEqual([
      ['rotated', 'top'],
      ['rotated', 'top'],
    ]);
    expectNoLeak(seen, ['top-secret', 'bottom-secret']);
  });
});

describe('failover in simulated time (the clock option)', () => {
  it('probes on the given clock: fails over, waits out Retry-After, fails back', async () => {
    const clock = new ManualClock(0);
    const primary = new FlakyProvider({ name: 'primary', initial: { DB: 'p' } });
    const secondary = new FlakyProvider({ name: 'secondary', initial: { DB: 's' } });
    const chain = new FailoverProvider([primary, secondary], {
      probeInterval: 1_000,
      probeJitter: 0,
      clock,
    });
    const warnings: string[] = [];
    const onWarning = (warning: Error & { code?: string }) => warnings.push(warning.code ?? '');
    process.on('warning', onWarning);
    try {
      primary.failure = () => new RateLimitedError({ provider: 'primary', retryAfterMs: 10_000 });
      expect((await chain.get('DB')).reveal()).toBe('s');
      expect(chain.activeProvider).toBe(secondary);
      primary.failure = undefined;
      const probesBefore = primary.metadataReads;
      await clock.advance(9_999);
      expect(primary.metadataReads).toBe(probesBefore);
      expect(chain.activeProvider).toBe(secondary);
      // Retry-After is spread by up to half of itself (core retryDelay) only for throttled probes;
      // the first wait is the one the failure asked for.
      await clock.advance(1);
      expect(primary.metadataReads).toBe(probesBefore + 1);
      expect(chain.activeProvider).toBe(primary);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).toEqual(
        expect.arrayContaining(['SECRET_PROVIDER_FAILOVER', 'SECRET_PROVIDER_FAILBACK']),
      );
    } finally {
      process.off('warning', onWarning);
      await chain.close();
    }
  });

  it('rejects bad probe settings with INVALID_CONFIG', () => {
    for (const options of [{ probeInterval: 0 }, { probeTimeout: -1 }, { probeJitter: 2 }]) {
      let error: unknown;
      try {
        new FailoverProvider([new MemoryProvider()], options);
      } catch (caught) {
        error = caught;
      }
      expect(codeOf(error)).toBe('INVALID_CONFIG');
    }
  });
});
