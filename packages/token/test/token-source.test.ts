import { tracingChannel } from 'node:diagnostics_channel';
import { AccessDeniedError, createEmitter, isSecretError, type SecretEvents } from '@secret-provider/core';
import { ManualClock } from '@secret-provider/core/adapter';
import { expectNoLeak, rejection } from '@secret-provider/testing';
import { fixedToken, type TokenIssuer, type TokenRequest, TokenSource } from '@secret-provider/token';
import { afterEach, describe, expect, it } from 'vitest';

/** An issuer that makes numbered tokens valid for the lifetime asked, counting its calls. */
function countingIssuer(
  options: { delayMs?: number; grant?: (request: TokenRequest) => number | undefined } = {},
) {
  const issued: TokenRequest[] = [];
  let fail: Error | undefined;
  const issuer: TokenIssuer & { issued: TokenRequest[]; failNext(error: Error): void; values: string[] } = {
    kind: 'test',
    refreshable: true,
    issued,
    values: [],
    failNext(error) {
      fail = error;
    },
    async issue(request) {
      issued.push(request);
      if (options.delayMs) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
      if (fail !== undefined) {
        const error = fail;
        fail = undefined;
        throw error;
      }
      const value = `tok-${issued.length}-5c1f9a2e77`;
      this.values.push(value);
      const lifetime = options.grant ? options.grant(request) : request.lifetimeMs;
      return { value, expiresAt: lifetime === undefined ? undefined : request.now + lifetime };
    },
  };
  return issuer;
}

function recorder(source: TokenSource) {
  const events: Array<{ type: keyof SecretEvents; event: SecretEvents[keyof SecretEvents] }> = [];
  const emitter = createEmitter();
  emitter.on('*', (type, event) => events.push({ type, event: event as SecretEvents[keyof SecretEvents] }));
  const handle = source.watch(emitter);
  return {
    events,
    handle,
    of: (type: keyof SecretEvents) => events.filter((e) => e.type === type).map((e) => e.event),
  };
}

const sources: TokenSource[] = [];
const make = (options: ConstructorParameters<typeof TokenSource>[0]) => {
  const source = new TokenSource(options);
  sources.push(source);
  return source;
};
afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.close()));
});

describe('TokenSource lifecycle', () => {
  it('refreshes in the background before the margin, and never hands out a token at or under it', async () => {
    const clock = new ManualClock();
    const issuer = countingIssuer();
    const source = make({ issuer, clock, lifetime: 120_000, refreshMargin: 30_000, refreshJitter: 0.5 });
    const { of } = recorder(source);
    const first = await source.current();
    expect(first.generation).toBe(1);
    // Each refresh lands between 45 s and 30 s before the end (margin plus up to half of it).
    for (let step = 0; step < 60 * 6; step++) {
      await clock.advance(10_000);
      const now = clock.now();
      const current = await source.current();
      expect((current.expiresAt?.getTime() ?? 0) - now).toBeGreaterThan(30_000);
    }
    // One hour of 120 s tokens renewed 30-45 s early: one every 75-90 s.
    const refreshes = issuer.issued.length - 1;
    expect(refreshes).toBeGreaterThanOrEqual(40);
    expect(refreshes).toBeLessThanOrEqual(49);
    const rotated = of('rotated');
    expect(rotated).toHaveLength(refreshes);
    expect(rotated[0]).toMatchObject({
      provider: 'token',
      keys: ['token'],
      changes: [{ key: 'token', oldVersion: '1', newVersion: '2' }],
    });
    expectNoLeak(of('rotated').concat(of('warning'), of('error')), issuer.values);
  });

  it('refreshes on use when the remaining lifetime is at the margin, if no background refresh came first', async () => {
    const clock = new ManualClock();
    // A refresh failing in the background leaves the expiring token in place.
    const issuer = countingIssuer();
    const source = make({
      issuer,
      clock,
      lifetime: 60_000,
      refreshMargin: 20_000,
      refreshJitter: 0,
      backoff: { base: 60_000 },
    });
    const { of } = recorder(source);
    await source.token();
    issuer.failNext(new Error('issuer down'));
    await clock.advance(40_000); // background refresh due now, fails
    expect(of('error')).toHaveLength(1);
    expect(issuer.issued).toHaveLength(2);
    await clock.advance(1); // under the margin, but a try just failed: the valid token, no new try
    expect((await source.current()).generation).toBe(1);
    expect(issuer.issued).toHaveLength(2);
    await clock.advance(10_000); // the hold (at most half the 20 s left) is over: refreshed on use
    const current = await source.current();
    expect(current.generation).toBe(2);
    expect(issuer.issued).toHaveLength(3);
  });

  it('serves the still-valid token when a refresh fails, and rejects once it has expired', async () => {
    const clock = new ManualClock();
    const issuer = countingIssuer();
    const source = make({
      issuer,
      clock,
      lifetime: 60_000,
      refreshMargin: 20_000,
      refreshJitter: 0,
      backoff: { base: 600_000, max: 600_000 },
    });
    const { of } = recorder(source);
    await source.token();
    issuer.failNext(new Error('down'));
    await clock.advance(45_000); // background refresh fails
    const served = await source.current(); // the valid token is served, no new try yet
    expect(served.generation).toBe(1);
    expect(issuer.issued).toHaveLength(2);
    expect(of('error')).toHaveLength(1);
    await clock.advance(20_000); // past the end
    issuer.failNext(new Error('still down'));
    const error = await rejection(source.token());
    expect(isSecretError(error, 'UNKNOWN')).toBe(true);
    expect((error as Error).message).not.toContain('still down');
  });

  it('after a failed refresh of a valid token, spaces the next tries by the back-off instead of one per call', async () => {
    const clock = new ManualClock();
    const issuer = countingIssuer();
    const source = make({
      issuer,
      clock,
      lifetime: 600_000,
      refreshMargin: 300_000,
      refreshJitter: 0,
      backoff: { base: 10_000, max: 40_000, random: () => 1 },
    });
    const { of } = recorder(source);
    await source.token();
    let down = true;
    const issue = issuer.issue.bind(issuer);
    issuer.issue = async (request) => {
      if (down) {
        issuer.issued.push(request);
        throw new Error('unreachable');
      }
      return issue(request);
    };
    await clock.advance(300_000); // due: the background refresh fails
    const triesAfterFirst = issuer.issued.length;
    // 100 reads a second apart, all inside the 5 minutes the token has left.
    for (let i = 0; i < 100; i++) {
      const served = await source.current();
      expect(served.generation).toBe(1);
      expect(served.expiresAt?.getTime()).toBeGreaterThan(clock.now());
      await clock.advance(1_000);
    }
    const tries = issuer.issued.length - triesAfterFirst;
    // Waits of 10, 20, 40, 40 s (each at most half the time left): a handful of tries, not 100.
    expect(tries).toBeGreaterThanOrEqual(2);
    expect(tries).toBeLessThanOrEqual(6);
    expect(of('error').length).toBeLessThanOrEqual(issuer.issued.length - 1);
    down = false;
    await clock.advance(45_000); // the next try succeeds
    const renewed = await source.current();
    expect(renewed.generation).toBe(2);
    expect(renewed.expiresAt?.getTime()).toBeGreaterThan(clock.now());
  });

  it('makes one token for 100 concurrent callers, and one refresh for 100 callers of an expiring token', async () => {
    const clock = new ManualClock();
    const issuer = countingIssuer({ delayMs: 20 });
    const source = make({ issuer, clock, lifetime: 300_000, refreshJitter: 0 });
    const first = await Promise.all(Array.from({ length: 100 }, () => source.current()));
    expect(issuer.issued).toHaveLength(1);
    expect(new Set(first.map((c) => c.generation))).toEqual(new Set([1]));
    const rejected = await Promise.all(Array.from({ length: 100 }, () => source.rejected(1)));
    expect(issuer.issued).toHaveLength(2);
    expect(new Set(rejected.map((c) => c.generation))).toEqual(new Set([2]));
    expect(source.stats()).toEqual({ issued: 2, failures: 0, rejections: 1, renewals: 0 });
  });

  it('clamps a requested lifetime into its bounds, with one warning', async () => {
    const clock = new ManualClock();
    const long = countingIssuer();
    const source = make({ issuer: long, clock, lifetime: 24 * 3_600_000 });
    const { of } = recorder(source);
    await source.token();
    await source.refresh();
    expect(long.issued.map((r) => r.lifetimeMs)).toEqual([3_600_000, 3_600_000]);
    const clamped = of('warning').filter((w) => 'code' in w && w.code === 'TOKEN_LIFETIME_CLAMPED');
    expect(clamped).toHaveLength(1);
    expect(clamped[0]).toMatchObject({ message: expect.stringContaining('asking for 3600000 ms') });

    const short = countingIssuer();
    const second = make({ issuer: short, clock, lifetime: 1_000, minLifetime: 30_000 });
    await second.token();
    expect(short.issued[0]?.lifetimeMs).toBe(30_000);
  });

  it('trusts no issued token beyond maxLifetime, and warns about one it cannot date', async () => {
    const clock = new ManualClock();
    const issuer = countingIssuer({ grant: (r) => (r.reason === 'first' ? 86_400_000 : undefined) });
    const source = make({ issuer, clock, lifetime: 600_000, maxLifetime: 900_000 });
    const { of } = recorder(source);
    const first = await source.current();
    expect(first.expiresAt?.getTime()).toBe(clock.now() + 900_000);
    const second = await source.refresh();
    expect(second.expiresAt?.getTime()).toBe(clock.now() + 600_000);
    expect(of('warning').map((w) => (w as { code: string }).code)).toEqual([
      'TOKEN_LIFETIME_CLAMPED',
      'TOKEN_EXPIRY_UNKNOWN',
    ]);
  });

  it('caps the margin at half a short token, so it is still used', async () => {
    const clock = new ManualClock();
    const issuer = countingIssuer();
    const source = make({ issuer, clock, lifetime: 30_000, refreshMargin: 30_000, refreshJitter: 0 });
    await source.token();
    await clock.advance(10_000);
    await source.token();
    expect(issuer.issued).toHaveLength(1);
    await clock.advance(5_000); // 15 s left: half the lifetime
    await source.token();
    expect(issuer.issued).toHaveLength(2);
  });

  it('is a read-only provider with one key', async () => {
    const clock = new ManualClock();
    const issuer = countingIssuer();
    const source = make({ issuer, clock, key: 'api-token', name: 'api' });
    expect(await source.keys()).toEqual(['api-token']);
    expect(await source.has('api-token')).toBe(true);
    expect(isSecretError(await rejection(source.get('other')), 'NOT_FOUND')).toBe(true);
    expect(isSecretError(await rejection(source.set('api-token', 'x')), 'READ_ONLY')).toBe(true);
    expect(isSecretError(await rejection(source.delete('api-token')), 'UNSUPPORTED')).toBe(true);
    const secret = await source.get('api-token');
    expect(secret.reveal()).toBe(issuer.values[0]);
    const metadata = await source.metadata('api-token');
    expect(metadata).toMatchObject({ key: 'api-token', version: '1' });
    expect(metadata.expiresAt?.getTime()).toBe(clock.now() + 300_000);
    expectNoLeak([source, metadata, String(source), JSON.stringify(source)], issuer.values);
    await source.close();
    expect(isSecretError(await rejection(source.token()), 'CLOSED')).toBe(true);
  });

  it('stops refreshing at close', async () => {
    const clock = new ManualClock();
    const issuer = countingIssuer();
    const source = make({ issuer, clock, lifetime: 60_000 });
    await source.token();
    await source.close();
    await clock.advance(3_600_000);
    expect(issuer.issued).toHaveLength(1);
    expect(clock.pending).toBe(0);
  });

  it('refuses bad options with INVALID_CONFIG', () => {
    const issuer = countingIssuer();
    for (const options of [
      { issuer, lifetime: -1 },
      { issuer, minLifetime: 10_000, maxLifetime: 5_000 },
      { issuer, refreshJitter: 2 },
      { issuer: undefined as unknown as TokenIssuer },
    ]) {
      expect(() => new TokenSource(options)).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    }
  });
});

describe('fixed tokens', () => {
  it('work, never refresh, warn that they cannot be refreshed, and refuse a rejection as ACCESS_DENIED', async () => {
    const clock = new ManualClock();
    const value = 'pat-user-given-4b7e1d0c93';
    const source = make({ issuer: fixedToken(value), clock });
    const { of } = recorder(source);
    expect((await source.token()).reveal()).toBe(value);
    await clock.advance(7 * 24 * 3_600_000);
    const current = await source.current();
    expect(current.generation).toBe(1);
    expect(current.expiresAt).toBeUndefined();
    const warnings = of('warning');
    expect(warnings.map((w) => (w as { code: string }).code)).toEqual(['TOKEN_NOT_REFRESHABLE']);
    const error = await rejection(source.rejected(1));
    expect(isSecretError(error, 'ACCESS_DENIED')).toBe(true);
    expect(source.refreshable).toBe(false);
    expectNoLeak([...warnings, error, source], [value]);
  });
});

describe('TokenSource renewal in place', () => {
  /** Tokens that renew up to a ceiling `maxMs` after issue, granting less once it is near. */
  function renewingIssuer(maxMs: number, options: { refuse?: () => boolean } = {}) {
    const base = countingIssuer();
    const renewals: number[] = [];
    const issuer: TokenIssuer = {
      kind: 'renewing',
      refreshable: true,
      async issue(request) {
        const issued = await base.issue(request);
        return { ...issued, maxExpiresAt: request.now + maxMs };
      },
      async renew(request) {
        renewals.push(request.now);
        if (options.refuse?.()) return undefined;
        const issuedAt = base.issued[base.issued.length - 1]?.now ?? 0;
        return { expiresAt: Math.min(request.now + request.lifetimeMs, issuedAt + maxMs) };
      },
    };
    return { issuer, base, renewals };
  }

  it('extends the same token until its ceiling, then issues a new one', async () => {
    const clock = new ManualClock();
    const { issuer, base, renewals } = renewingIssuer(600_000);
    const source = make({ issuer, clock, lifetime: 120_000, refreshMargin: 30_000, refreshJitter: 0 });
    const { of } = recorder(source);
    const first = await source.current();
    for (let step = 0; step < 60; step++) {
      await clock.advance(10_000);
      const current = await source.current();
      expect((current.expiresAt?.getTime() ?? 0) - clock.now()).toBeGreaterThan(0);
    }
    // 10 minutes of 2-minute tokens with a 10-minute ceiling: renewed in place, then re-issued.
    expect(renewals.length).toBeGreaterThanOrEqual(3);
    expect(base.issued.length).toBe(2);
    expect(source.stats().renewals).toBe(renewals.length);
    const rotated = of('rotated');
    expect(rotated).toHaveLength(1);
    const second = await source.current();
    expect(second.generation).toBe(first.generation + 1);
    expect(second.token.reveal()).toBe(base.values[1]);
  });

  it('a refused renewal falls back to a fresh issue; a non-renewable token is never renewed', async () => {
    const clock = new ManualClock();
    const { issuer, base, renewals } = renewingIssuer(3_600_000, { refuse: () => true });
    const source = make({ issuer, clock, lifetime: 120_000, refreshMargin: 30_000, refreshJitter: 0 });
    await source.current();
    await clock.advance(95_000);
    const current = await source.current();
    expect(renewals).toHaveLength(1);
    expect(base.issued.length).toBe(2);
    expect(current.generation).toBe(2);

    const plain = countingIssuer();
    let renewCalls = 0;
    const nonRenewable: TokenIssuer = {
      kind: 'plain',
      refreshable: true,
      async issue(request) {
        return { ...(await plain.issue(request)), renewable: false };
      },
      async renew() {
        renewCalls++;
        return undefined;
      },
    };
    const other = make({ issuer: nonRenewable, clock, lifetime: 120_000, refreshJitter: 0 });
    await other.current();
    await clock.advance(95_000);
    expect((await other.current()).generation).toBe(2);
    expect(renewCalls).toBe(0);
  });

  it('a rejected token is re-issued, never renewed, and renewal failures other than refusals are errors', async () => {
    const clock = new ManualClock();
    let fail = false;
    const { issuer, base, renewals } = renewingIssuer(3_600_000);
    const flaky: TokenIssuer = {
      ...issuer,
      async renew(request) {
        if (fail) throw new Error('connect ECONNREFUSED');
        return issuer.renew?.(request);
      },
    };
    const source = make({ issuer: flaky, clock, lifetime: 120_000, refreshMargin: 30_000, refreshJitter: 0 });
    const { of } = recorder(source);
    const first = await source.current();
    await source.rejected(first.generation);
    expect(renewals).toHaveLength(0);
    expect(base.issued.length).toBe(2);
    fail = true;
    await clock.advance(95_000);
    // The renewal failed: the still-valid token is served and the failure reported.
    const current = await source.current();
    expect(current.generation).toBe(2);
    expect(source.stats().failures).toBeGreaterThanOrEqual(1);
    expect(of('error').length).toBeGreaterThanOrEqual(1);
    expectNoLeak(of('error'), base.values);
  });
});

describe('TokenSource options for backends that decide lifetimes (Vault)', () => {
  it('renewFraction: each token is refreshed once that fraction of its own lifetime has passed', async () => {
    const clock = new ManualClock();
    const lifetimes = [100_000, 1_000_000, 40_000];
    const issuer = countingIssuer({ grant: () => lifetimes.shift() ?? 60_000 });
    const source = make({ issuer, clock, renewFraction: 0.8, refreshJitter: 0, minLifetime: 1_000 });
    await source.current();
    await clock.advance(79_000);
    expect(issuer.issued).toHaveLength(1);
    await clock.advance(1_000);
    // 0.8 of 100 s: the second token, granted 1000 s, is due 800 s later, not at a fixed margin.
    expect(issuer.issued.map((r) => r.now - (issuer.issued[0]?.now ?? 0))).toEqual([0, 80_000]);
    await clock.advance(799_000);
    expect(issuer.issued).toHaveLength(2);
    await clock.advance(1_000);
    expect(issuer.issued).toHaveLength(3);
    // The margin is not capped at a fixed 30 s: a 40 s token goes after 32 s.
    await clock.advance(32_000);
    expect(issuer.issued).toHaveLength(4);
    expect(() => make({ issuer, renewFraction: 0 })).toThrow(/renewFraction/);
    expect(() => make({ issuer, renewFraction: 1.5 })).toThrow(/renewFraction/);
  });

  it('issueBackoff: after a refused issue, callers get the same error without a new request until the back-off passes', async () => {
    const clock = new ManualClock();
    const issuer = countingIssuer({ delayMs: 5 });
    const source = make({
      issuer,
      clock,
      issueBackoff: { base: 1_000, max: 60_000 },
      random: () => 0.5,
    });
    issuer.failNext(new AccessDeniedError({ provider: 'test' }, 'access denied: bad client credentials'));
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => source.token()));
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect(issuer.issued).toHaveLength(1);
    const held = await rejection(source.token());
    expect(isSecretError(held, 'ACCESS_DENIED')).toBe(true);
    expect(issuer.issued).toHaveLength(1);
    expect(source.stats().failures).toBe(1);
    await clock.advance(1_000);
    expect((await source.token()).reveal()).toBe(issuer.values[0]);
    expect(issuer.issued).toHaveLength(2);

    // Without the option a failure is not held: the next caller tries again.
    const plain = countingIssuer();
    const other = make({ issuer: plain, clock });
    plain.failNext(new Error('connect ECONNREFUSED'));
    await rejection(other.token());
    await other.token();
    expect(plain.issued).toHaveLength(2);
  });

  it('a token that can be neither renewed nor replaced is kept to its end with one TOKEN_EXPIRING warning', async () => {
    const clock = new ManualClock();
    let issues = 0;
    const renewals: number[] = [];
    const issuedAt = clock.now();
    const issuer: TokenIssuer = {
      kind: 'given token',
      refreshable: false,
      async issue(request) {
        issues++;
        return { value: 'given-7f3a9c1d', expiresAt: request.now + 60_000, renewable: true };
      },
      // Renewable in place up to 150 s after issue, then refused.
      async renew(request) {
        renewals.push(request.now);
        const end = Math.min(request.now + 60_000, issuedAt + 150_000);
        return end - request.now < 30_000 ? undefined : { expiresAt: end, renewable: true };
      },
    };
    const source = make({ issuer, clock, renewFraction: 0.75, refreshJitter: 0, minLifetime: 1_000 });
    const { of } = recorder(source);
    const first = await source.current();
    expect(first.renewable).toBe(true);
    await clock.advance(150_000);
    const kept = source.peek();
    expect(renewals.length).toBeGreaterThanOrEqual(2);
    expect(issues).toBe(1);
    expect(kept?.generation).toBe(first.generation);
    expect(kept?.renewable).toBe(false);
    const expiring = of('warning').filter((w) => (w as { code: string }).code === 'TOKEN_EXPIRING');
    expect(expiring).toHaveLength(1);
    expect((expiring[0] as { detectedAt: Date }).detectedAt.getTime()).toBeLessThan(
      kept?.expiresAt?.getTime() ?? 0,
    );
    // Past its end it is still what the source answers (the server says it is refused), and
    // nothing more runs in the background.
    const before = renewals.length;
    await clock.advance(3_600_000);
    expect((await source.token()).reveal()).toBe('given-7f3a9c1d');
    expect(renewals).toHaveLength(before);
    expect(issues).toBe(1);
    expect(of('warning').filter((w) => (w as { code: string }).code === 'TOKEN_EXPIRING')).toHaveLength(1);
    expectNoLeak(of('warning'), ['given-7f3a9c1d']);
  });

  it('an issuer that says renewable is believed, and one that says a token does not expire is not refreshed', async () => {
    const clock = new ManualClock();
    const renewals: number[] = [];
    const issuer: TokenIssuer = {
      kind: 'short grants',
      refreshable: true,
      async issue(request) {
        return { value: `t-${request.now}`, expiresAt: request.now + 60_000 };
      },
      // Grants far less than the 300 s asked for, and says it can go on.
      async renew(request) {
        renewals.push(request.now);
        return { expiresAt: request.now + 60_000, renewable: true };
      },
    };
    const source = make({ issuer, clock, refreshMargin: 15_000, refreshJitter: 0 });
    await source.current();
    await clock.advance(600_000);
    expect(renewals.length).toBeGreaterThanOrEqual(10);
    expect(source.stats().issued).toBe(1);

    let issued = 0;
    const forever: TokenIssuer = {
      kind: 'forever',
      refreshable: true,
      async issue() {
        issued++;
        return { value: 'forever-token-1', expiresAt: undefined, expires: false };
      },
    };
    const other = make({ issuer: forever, clock });
    const { of } = recorder(other);
    expect((await other.current()).expiresAt).toBeUndefined();
    await clock.advance(86_400_000);
    await other.current();
    expect(issued).toBe(1);
    expect(of('warning')).toEqual([]);
  });

  it('peek() reads the held token without refreshing; acquire() is current() without a traced get', async () => {
    const clock = new ManualClock();
    const issuer = countingIssuer();
    const source = make({ issuer, clock, lifetime: 120_000 });
    expect(source.peek()).toBeUndefined();
    const seen: string[] = [];
    const channel = tracingChannel('secret-provider:get');
    const start = (message: unknown) => seen.push((message as { provider?: string }).provider ?? '?');
    channel.subscribe({ start, end() {}, asyncStart() {}, asyncEnd() {}, error() {} });
    try {
      const acquired = await source.acquire();
      expect(seen).toEqual([]);
      expect(source.peek()?.generation).toBe(acquired.generation);
      await source.current();
      expect(seen).toEqual([source.name]);
    } finally {
      channel.unsubscribe({ start, end() {}, asyncStart() {}, asyncEnd() {}, error() {} });
    }
    await clock.advance(200_000);
    expect(source.peek()?.generation).toBeGreaterThan(1);
    await source.close();
    expect(source.peek()).toBeUndefined();
    expect(isSecretError(await rejection(source.acquire()), 'CLOSED')).toBe(true);
  });
});

it('renewFraction: with a small fraction and full jitter, a token is still used for half its wait', async () => {
  const clock = new ManualClock();
  const issuer = countingIssuer({ grant: () => 100_000 });
  const source = make({ issuer, clock, renewFraction: 0.1, refreshJitter: 1, random: () => 0.999 });
  await source.current();
  // The wait is 10 s (0.1 of 100 s); jitter of the 90 s margin would put the refresh before the issue.
  await clock.advance(4_900);
  expect(issuer.issued).toHaveLength(1);
  await clock.advance(200);
  expect(issuer.issued).toHaveLength(2);
});
