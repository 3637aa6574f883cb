import { RateLimitedError } from '@secret-provider/core';
import { backoffDelay, parseRetryAfter, retryDelay } from '@secret-provider/core/adapter';
import { describe, expect, it } from 'vitest';

describe('backoffDelay', () => {
  it('doubles from the base up to the cap, with the upper half random', () => {
    const low = { base: 100, max: 1_000, random: () => 0 };
    const high = { base: 100, max: 1_000, random: () => 0.999999 };
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, low))).toEqual([50, 100, 200, 400, 500, 500]);
    expect([1, 2, 3, 4, 5].map((n) => Math.round(backoffDelay(n, high)))).toEqual([
      100, 200, 400, 800, 1_000,
    ]);
    expect(backoffDelay(10_000, high)).toBeLessThanOrEqual(1_000);
  });

  it('spreads clients that failed together', () => {
    const delays = new Set(Array.from({ length: 100 }, () => backoffDelay(3)));
    expect(delays.size).toBeGreaterThan(90);
    for (const delay of delays) {
      expect(delay).toBeGreaterThanOrEqual(2_000);
      expect(delay).toBeLessThanOrEqual(4_000);
    }
  });
});

describe('retryDelay', () => {
  it('honours a Retry-After, stretched at random by up to the spread, capped', () => {
    const error = new RateLimitedError({ retryAfterMs: 10_000 });
    expect(retryDelay(1, error, { random: () => 0 })).toBe(10_000);
    expect(retryDelay(1, error, { random: () => 0.999999 })).toBeCloseTo(15_000, -1);
    expect(retryDelay(1, error, { random: () => 1, retryAfterSpread: 0 })).toBe(10_000);
    expect(retryDelay(1, new RateLimitedError({ retryAfterMs: 10 * 3_600_000 }), { random: () => 0 })).toBe(
      3_600_000,
    );
  });

  it('falls back to back-off for failures that did not say', () => {
    expect(retryDelay(2, new Error('x'), { base: 100, random: () => 0 })).toBe(100);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.UTC(2026, 0, 1);
  it('reads delay-seconds as digits first', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(' 1.5 ', now)).toBe(1_500);
    expect(parseRetryAfter('0', now)).toBe(0);
  });

  it('reads an HTTP date second, never a number as a year', () => {
    expect(parseRetryAfter(new Date(now + 30_000).toUTCString(), now)).toBe(30_000);
    expect(parseRetryAfter(new Date(now - 30_000).toUTCString(), now)).toBe(0);
    expect(parseRetryAfter('120 seconds', now)).toBeUndefined();
  });

  it('gives undefined for absent or unreadable values', () => {
    for (const value of [undefined, null, '', '   ', 'soon', '-5'])
      expect(parseRetryAfter(value, now)).toBeUndefined();
  });
});
