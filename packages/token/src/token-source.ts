import {
  AccessDeniedError,
  InvalidConfigError,
  isSecretError,
  ProviderClosedError,
  ProviderUnavailableError,
  Secret,
  type SecretError,
} from '@secret-provider/core';
import {
  type BackoffOptions,
  BaseProvider,
  type Clock,
  type EmitFunction,
  HoldOff,
  type HookContext,
  type Poller,
  raceSignal,
  type StoredSecret,
} from '@secret-provider/core/adapter';
import { createTokenFetch, type TokenFetch, type TokenFetchOptions } from './fetch.js';
import type { TokenIssuer, TokenRequest } from './issuer.js';

/** The name a {@link TokenSource} reports when none is given. */
export const PROVIDER_NAME = 'token';

/** Options of a {@link TokenSource}. Durations in milliseconds. */
export interface TokenSourceOptions {
  /** Makes the tokens: `jwtIssuer(...)`, `clientCredentials(...)` or `fixedToken(...)`. */
  readonly issuer: TokenIssuer;
  /** The name in errors and events. @default 'token' */
  readonly name?: string | undefined;
  /** The one key the source answers as a provider. @default 'token' */
  readonly key?: string | undefined;
  /** The lifetime to ask for; clamped into `minLifetime`..`maxLifetime` with a warning. @default 300_000 */
  readonly lifetime?: number | undefined;
  /** @default 30_000 */
  readonly minLifetime?: number | undefined;
  /** Also the longest lifetime a token is trusted for, whatever its issuer says. @default 3_600_000 */
  readonly maxLifetime?: number | undefined;
  /**
   * A token whose remaining lifetime is at or under this is refreshed before use. Capped at half
   * of a token's own lifetime, so that a short token is still used for half its life.
   * @default 30_000
   */
  readonly refreshMargin?: number | undefined;
  /**
   * Refresh once this fraction of each token's lifetime (from its issue or last renewal to its
   * end) has passed, instead of at a fixed margin: a token's margin is then
   * `(1 - renewFraction) × its lifetime`, not capped. For backends that grant lifetimes of very
   * different lengths (Vault tokens: seconds to days). @default none (`refreshMargin` applies)
   */
  readonly renewFraction?: number | undefined;
  /**
   * The background refresh comes before the margin by up to this fraction of it, at random, so
   * instances started together do not refresh together. @default 0.5
   */
  readonly refreshJitter?: number | undefined;
  /** Back-off of the background refresh after failures. @default { base: 1_000, max: refreshMargin / 2 } */
  readonly backoff?: BackoffOptions | undefined;
  /**
   * After a failed issue, issuing again (in the background or for a caller) fails at once with
   * the same error until this back-off has passed, growing with consecutive failures: callers
   * with bad credentials do not each send a login. Renewals are not held. @default none
   */
  readonly issueBackoff?: BackoffOptions | undefined;
  /** @default systemClock */
  readonly clock?: Clock | undefined;
  /** Random source in [0, 1) (simulations). @default Math.random */
  readonly random?: (() => number) | undefined;
}

/** The token in use, as {@link TokenSource.current} reports it (never its value in output). */
export interface CurrentToken {
  readonly token: Secret<string>;
  /** Counts the tokens this source has held; the version its events report. */
  readonly generation: number;
  readonly issuedAt: Date;
  /** `undefined` for a token that cannot expire as far as the source knows (a fixed token). */
  readonly expiresAt: Date | undefined;
  /** Whether the source will try to extend it in place before replacing it. */
  readonly renewable: boolean;
}

interface Held {
  readonly token: Secret<string>;
  readonly generation: number;
  readonly issuedAt: number;
  readonly expiresAt: number | undefined;
  /** Remaining lifetime at or under which the token is refreshed before use. */
  readonly margin: number;
  /** When the background refresh replaces (or renews) it. */
  readonly refreshAt: number;
  /** Whether the issuer may extend it in place. */
  readonly renewable: boolean;
  readonly maxExpiresAt: number | undefined;
  /** A token that cannot be replaced was told to be expiring (once per token). */
  readonly expiring?: boolean | undefined;
}

/** Statistics of a {@link TokenSource} (counts only). */
export interface TokenSourceStats {
  /** Tokens made (the first one included). */
  readonly issued: number;
  /** Attempts to make one that failed. */
  readonly failures: number;
  /** Refreshes asked for because a server refused a token. */
  readonly rejections: number;
  /** Tokens extended in place instead of issued anew. */
  readonly renewals: number;
}

const DEFAULT_LIFETIME = 300_000;
const DEFAULT_MIN_LIFETIME = 30_000;
const DEFAULT_MAX_LIFETIME = 3_600_000;
const DEFAULT_MARGIN = 30_000;

/**
 * Holds one short-lived credential and keeps it valid: makes it on first use, refreshes it in
 * the background before its remaining lifetime reaches `refreshMargin` (with jitter), and before
 * use when it is at or under the margin. Concurrent callers share one refresh. A server's refusal
 * ({@link TokenSource.rejected}) makes a new one, once per token. Each replacement is announced
 * as a `rotated` event of the source's one key; events, warnings and errors carry the key and
 * the generation, never the token.
 *
 * A `TokenSource` is a read-only `SecretProvider` with one key (`token` unless named), so it
 * plugs in wherever a provider does: a chain, or another adapter's credential reference
 * (`bearer: { provider: source, key: 'token' }`), which then re-reads it on every rotation.
 *
 * @example
 * ```ts
 * const source = new TokenSource({
 *   issuer: clientCredentials({ tokenUrl, clientId: 'svc', clientSecret: { provider: vault, key: 'svc/secret' } }),
 * });
 * const api = source.createFetch();
 * const response = await api('https://api.internal/things'); // Authorization: Bearer ...
 * ```
 */
export class TokenSource extends BaseProvider {
  readonly #issuer: TokenIssuer;
  readonly #key: string;
  readonly #lifetime: number;
  readonly #minLifetime: number;
  readonly #maxLifetime: number;
  readonly #margin: number;
  readonly #fraction: number | undefined;
  readonly #jitter: number;
  readonly #backoff: BackoffOptions;
  /** With `issueBackoff`: after a failed issue, until when the same error is thrown without a try. */
  readonly #issueHold: HoldOff<'issue'> | undefined;
  #issueRefusal: SecretError | undefined;
  /** After a failed refresh ahead of the end: until when callers get the held token without a new try. */
  readonly #aheadHold: HoldOff<'ahead'>;
  readonly #random: () => number;
  readonly #controller = new AbortController();
  #held: Held | undefined;
  #refreshing: Promise<Held> | undefined;
  #poller: Poller | undefined;
  #generation = 0;
  #issued = 0;
  #failures = 0;
  #rejections = 0;
  #renewals = 0;
  #warnedFixed = false;
  #warnedClamp = false;

  constructor(options: TokenSourceOptions) {
    const name = options.name ?? PROVIDER_NAME;
    super({ name, clock: options.clock, capabilities: { write: false, delete: false } });
    if (options.issuer === undefined || typeof options.issuer?.issue !== 'function') {
      throw new InvalidConfigError(
        { provider: name },
        `invalid configuration: no token issuer (provider "${name}")`,
      );
    }
    this.#issuer = options.issuer;
    this.#key = options.key ?? PROVIDER_NAME;
    this.#minLifetime = duration(options.minLifetime, DEFAULT_MIN_LIFETIME, 'minLifetime', name);
    this.#maxLifetime = duration(options.maxLifetime, DEFAULT_MAX_LIFETIME, 'maxLifetime', name);
    if (this.#minLifetime > this.#maxLifetime) {
      throw new InvalidConfigError(
        { provider: name },
        `invalid configuration: minLifetime is greater than maxLifetime (provider "${name}")`,
      );
    }
    this.#lifetime = duration(options.lifetime, DEFAULT_LIFETIME, 'lifetime', name);
    this.#margin = duration(options.refreshMargin, DEFAULT_MARGIN, 'refreshMargin', name, true);
    const fraction = options.renewFraction;
    if (fraction !== undefined && (typeof fraction !== 'number' || !(fraction > 0 && fraction <= 1))) {
      throw new InvalidConfigError(
        { provider: name },
        `invalid configuration: renewFraction must be a number in (0, 1] (provider "${name}")`,
      );
    }
    this.#fraction = fraction;
    const jitter = options.refreshJitter ?? 0.5;
    if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) {
      throw new InvalidConfigError(
        { provider: name },
        `invalid configuration: refreshJitter must be a number from 0 to 1 (provider "${name}")`,
      );
    }
    this.#jitter = jitter;
    this.#random = options.random ?? Math.random;
    this.#backoff = {
      base: 1_000,
      max: Math.max(1_000, this.#margin / 2),
      random: this.#random,
      ...options.backoff,
    };
    this.#issueHold =
      options.issueBackoff === undefined
        ? undefined
        : new HoldOff({ random: this.#random, ...options.issueBackoff });
    this.#aheadHold = new HoldOff(this.#backoff);
    this.#issuer.onChange?.(() => this.#inputsChanged());
  }

  /** The key this source answers. */
  get key(): string {
    return this.#key;
  }

  /** Whether a refused token can be replaced (false for a fixed token). */
  get refreshable(): boolean {
    return this.#issuer.refreshable;
  }

  /** The token, refreshed first when its remaining lifetime is at or under the margin. */
  async token(options: { signal?: AbortSignal | undefined } = {}): Promise<Secret<string>> {
    return (await this.current(options)).token;
  }

  /** The token with its generation and expiry, refreshed first as {@link token} does. */
  async current(options: { signal?: AbortSignal | undefined } = {}): Promise<CurrentToken> {
    await this.get(this.#key, options);
    // `get` went through the base class (closed, aborted): the held token is what it served.
    const held = this.#held;
    if (held === undefined) {
      throw new ProviderClosedError(
        { provider: this.name, key: this.#key, operation: 'get' },
        `provider "${this.name}" was closed`,
      );
    }
    return describe(held);
  }

  /**
   * The token held now, without refreshing or any request; `undefined` before the first token
   * and after close. Its `expiresAt` moves with renewals.
   */
  peek(): CurrentToken | undefined {
    return this.#held === undefined ? undefined : describe(this.#held);
  }

  /**
   * The token as {@link current} returns it, for an owner that sends it itself (an adapter's
   * own authentication): not published as a `get` of the source's key, so that telemetry shows
   * the owner's operations, not its credential's.
   */
  async acquire(options: { signal?: AbortSignal | undefined } = {}): Promise<CurrentToken> {
    if (this.closed) {
      throw new ProviderClosedError(
        { provider: this.name, key: this.#key, operation: 'get' },
        `provider "${this.name}" was closed`,
      );
    }
    options.signal?.throwIfAborted();
    return describe(await raceSignal(this.#fresh(), options.signal));
  }

  /**
   * A server refused the token of `generation`: a new one is made (once, however many requests
   * saw the refusal) and returned. A source that cannot refresh rejects with `ACCESS_DENIED`.
   */
  async rejected(
    generation: number,
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<CurrentToken> {
    const held = this.#held;
    if (held !== undefined && held.generation !== generation) return describe(held);
    if (!this.#issuer.refreshable) {
      throw new AccessDeniedError(
        { provider: this.name, key: this.#key, operation: 'auth' },
        `access denied: the token was refused and a fixed token cannot be refreshed (provider "${this.name}")`,
      );
    }
    if (this.#refreshing === undefined) this.#rejections++;
    return describe(await raceSignal(this.#refresh('rejected'), options.signal));
  }

  /** Makes a new token now, whatever the current one's lifetime (shared with a refresh in flight). */
  async refresh(options: { signal?: AbortSignal | undefined } = {}): Promise<CurrentToken> {
    return describe(
      await raceSignal(this.#refresh(this.#held === undefined ? 'first' : 'expiring'), options.signal),
    );
  }

  /**
   * A `fetch` that carries the token as a bearer, refreshes and retries once on `401`, and waits
   * and retries once on `429` (see {@link TokenFetchOptions}).
   */
  createFetch(options: TokenFetchOptions = {}): TokenFetch {
    return createTokenFetch(
      {
        name: this.name,
        key: this.#key,
        clock: this.clock,
        random: this.#random,
        current: (signal) => this.current({ signal }),
        rejected: (generation, signal) => this.rejected(generation, { signal }),
        refreshable: () => this.#issuer.refreshable,
        warn: (code, message) => this.#warn(code, message),
      },
      options,
    );
  }

  stats(): TokenSourceStats {
    return {
      issued: this.#issued,
      failures: this.#failures,
      rejections: this.#rejections,
      renewals: this.#renewals,
    };
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), key: this.#key, issuer: this.#issuer.kind };
  }

  override toString(): string {
    return `TokenSource { name: ${JSON.stringify(this.name)}, issuer: ${JSON.stringify(this.#issuer.kind)}${this.closed ? ', closed' : ''} }`;
  }

  // ---- provider hooks --------------------------------------------------------------------------

  protected override async readSecret(key: string, context: HookContext): Promise<StoredSecret | undefined> {
    if (key !== this.#key) return undefined;
    const held = await raceSignal(this.#fresh(), context.signal);
    return { value: held.token.reveal(), metadata: metadataOf(held) };
  }

  protected override hasSecret(key: string): boolean {
    return key === this.#key;
  }

  protected override async listKeys(
    context: HookContext & { prefix?: string | undefined },
  ): Promise<string[]> {
    return context.prefix === undefined || this.#key.startsWith(context.prefix) ? [this.#key] : [];
  }

  protected override async readMetadata(key: string): Promise<ReturnType<typeof metadataOf> | undefined> {
    if (key !== this.#key) return undefined;
    return metadataOf(await this.#fresh());
  }

  // Events come from refreshes (`#issue`), which run whether or not anyone watches.
  protected override async startWatch(_emit: EmitFunction): Promise<() => void> {
    return () => {};
  }

  protected override async onClose(): Promise<void> {
    this.#controller.abort();
    await this.#poller?.stop();
    await this.#refreshing?.catch(() => {});
    await this.#issuer.close?.();
    this.#held?.token.dispose();
    this.#held = undefined;
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  /** A token with more than the margin left, refreshing (shared) when needed. */
  async #fresh(): Promise<Held> {
    const held = this.#held;
    const now = this.clock.now();
    if (held !== undefined && !isDue(held, now)) return held;
    // A refresh ahead of the end failed a moment ago: callers are not made to wait for (and the
    // issuer is not sent) another try per call; the next comes after core's back-off.
    const until = this.#aheadHold.until('ahead');
    if (held?.expiresAt !== undefined && until !== undefined && now < until && now < held.expiresAt)
      return held;
    try {
      return await this.#refresh(held === undefined ? 'first' : 'expiring');
    } catch (error) {
      // A refresh ahead of the end failed: the token still valid is served, the failure reported.
      if (
        held !== undefined &&
        held === this.#held &&
        held.expiresAt !== undefined &&
        held.expiresAt > this.clock.now()
      ) {
        this.#reportError(error);
        return held;
      }
      throw error;
    }
  }

  #refresh(reason: TokenRequest['reason']): Promise<Held> {
    if (this.#refreshing !== undefined) return this.#refreshing;
    const refreshing = this.#issue(reason)
      .then(
        (held) => {
          this.#aheadHold.succeed('ahead', this.clock.now());
          return held;
        },
        (error: unknown) => {
          if (reason === 'expiring') this.#holdAhead(error);
          throw error;
        },
      )
      .finally(() => {
        if (this.#refreshing === refreshing) this.#refreshing = undefined;
      });
    this.#refreshing = refreshing;
    return refreshing;
  }

  async #issue(reason: TokenRequest['reason']): Promise<Held> {
    const { clock } = this;
    const startedAt = clock.now();
    const lifetimeMs = this.#clampRequested();
    const current = this.#held;
    let refused = false;
    if (reason === 'expiring' && current !== undefined && this.#renewWorthwhile(current, startedAt)) {
      const renewed = await this.#renew(current, startedAt, lifetimeMs);
      if (renewed !== undefined && renewed !== 'rejected') return renewed;
      refused = renewed === 'rejected';
    }
    if (
      reason === 'expiring' &&
      current !== undefined &&
      current.expiresAt !== undefined &&
      !this.#issuer.refreshable
    ) {
      return this.#keepExpiring(current, refused);
    }
    const refusedUntil = this.#issueHold?.until('issue');
    if (this.#issueRefusal !== undefined && refusedUntil !== undefined && clock.now() < refusedUntil)
      throw this.#issueRefusal;
    let issued: Awaited<ReturnType<TokenIssuer['issue']>>;
    try {
      issued = await this.#issuer.issue({
        lifetimeMs,
        now: startedAt,
        clock,
        signal: this.#controller.signal,
        provider: this.name,
        reason,
      });
    } catch (error) {
      throw this.#issueFailed(this.mapError(error, { operation: 'refresh', key: this.#key }));
    }
    const value = Secret.isSecret(issued?.value) ? (issued.value as Secret<string>).reveal() : issued?.value;
    if (typeof value !== 'string' || value === '') {
      throw this.#issueFailed(
        new ProviderUnavailableError(
          { provider: this.name, key: this.#key, operation: 'refresh' },
          `the ${this.#issuer.kind} issuer returned no token (provider "${this.name}")`,
        ),
      );
    }
    const expiresAt = issued.expires === false ? undefined : this.#trustedExpiry(issued.expiresAt, startedAt);
    if (expiresAt !== undefined && expiresAt <= clock.now()) {
      throw this.#issueFailed(
        new ProviderUnavailableError(
          { provider: this.name, key: this.#key, operation: 'refresh' },
          `the ${this.#issuer.kind} issuer returned a token that has already expired (provider "${this.name}")`,
        ),
      );
    }
    this.#issueHold?.succeed('issue', clock.now());
    this.#issueRefusal = undefined;
    if (this.closed)
      throw this.mapError(this.#controller.signal.reason, { operation: 'refresh', key: this.#key });
    const previous = this.#held;
    const renewable = this.#issuer.renew !== undefined && issued.renewable !== false;
    const held = this.#hold(value, startedAt, expiresAt, renewable, issued.maxExpiresAt);
    this.#held = held;
    this.#issued++;
    if (!this.#issuer.refreshable && !this.#warnedFixed) {
      this.#warnedFixed = true;
      this.#warn(
        'TOKEN_NOT_REFRESHABLE',
        `a fixed ${this.#issuer.kind} is in use: it cannot be refreshed, and a server's refusal of it is final`,
      );
    }
    if (previous !== undefined) {
      // Dropped later, not now: a caller may still be sending the previous token.
      this.emit('rotated', {
        provider: this.name,
        keys: [this.#key],
        changes: [
          { key: this.#key, oldVersion: String(previous.generation), newVersion: String(held.generation) },
        ],
        detectedAt: new Date(clock.now()),
      });
    }
    this.#armBackgroundRefresh(held);
    return held;
  }

  #hold(
    value: string,
    issuedAt: number,
    expiresAt: number | undefined,
    renewable: boolean,
    maxExpiresAt: number | undefined,
  ): Held {
    const generation = ++this.#generation;
    const base = { token: new Secret(value), generation, issuedAt, renewable, maxExpiresAt };
    if (expiresAt === undefined)
      return { ...base, expiresAt, margin: 0, refreshAt: Number.POSITIVE_INFINITY, renewable: false };
    return { ...base, expiresAt, ...this.#schedule(issuedAt, expiresAt) };
  }

  /**
   * Counts a failed issue and, with `issueBackoff`, refuses issuing again for a while (the same
   * error is thrown until then).
   */
  #issueFailed(error: SecretError): SecretError {
    this.#failures++;
    if (this.#issueHold !== undefined) {
      this.#issueHold.fail('issue', error, this.clock.now(), 0);
      this.#issueRefusal = error;
    }
    return error;
  }

  /**
   * A token that cannot be replaced and will not be renewed is kept to its end (a server says
   * when it is refused), with one `TOKEN_EXPIRING` warning, unless its renewal was refused as
   * invalid: then its owner already knows.
   */
  #keepExpiring(held: Held, refused: boolean): Held {
    if (this.#held !== held) return this.#held ?? held;
    if (held.expiring) return held;
    const kept: Held = {
      ...held,
      margin: 0,
      refreshAt: Number.POSITIVE_INFINITY,
      renewable: false,
      expiring: true,
    };
    this.#held = kept;
    if (!refused && held.expiresAt !== undefined) {
      this.#warn(
        'TOKEN_EXPIRING',
        `the ${this.#issuer.kind} cannot be renewed or replaced and expires at ${new Date(held.expiresAt).toISOString()}`,
      );
    }
    return kept;
  }

  /**
   * The margin of a token valid from `since` to `expiresAt`, and when to refresh it: a fixed
   * margin capped at half its lifetime, or with `renewFraction` the rest of its lifetime.
   */
  #schedule(since: number, expiresAt: number): { margin: number; refreshAt: number } {
    const lifetime = expiresAt - since;
    const margin =
      this.#fraction === undefined ? Math.min(this.#margin, lifetime / 2) : (1 - this.#fraction) * lifetime;
    const refreshAt = expiresAt - margin - margin * this.#jitter * this.#random();
    if (this.#fraction === undefined) return { margin, refreshAt };
    // A margin wider than the wait (a small renewFraction) must not jitter the refresh to now.
    return { margin, refreshAt: Math.max(refreshAt, since + (lifetime - margin) / 2) };
  }

  /** Renewing is worth it while the token is alive and its ceiling leaves at least `minLifetime`. */
  #renewWorthwhile(held: Held, now: number): boolean {
    if (!held.renewable || this.#issuer.renew === undefined || held.expiresAt === undefined) return false;
    if (held.expiresAt <= now) return false;
    return held.maxExpiresAt === undefined || held.maxExpiresAt - now >= this.#minLifetime;
  }

  /**
   * Extends the held token in place: same value and generation, so no `rotated`. `undefined`
   * when the issuer refused, `'rejected'` when the token was gone: the caller issues a new one.
   */
  async #renew(held: Held, startedAt: number, lifetimeMs: number): Promise<Held | 'rejected' | undefined> {
    const renew = this.#issuer.renew;
    if (renew === undefined || held.expiresAt === undefined) return undefined;
    let renewed: Awaited<ReturnType<NonNullable<TokenIssuer['renew']>>>;
    try {
      renewed = await renew.call(this.#issuer, {
        token: held.token,
        expiresAt: held.expiresAt,
        lifetimeMs,
        now: startedAt,
        clock: this.clock,
        signal: this.#controller.signal,
        provider: this.name,
      });
    } catch (error) {
      if (isSecretError(error, 'ACCESS_DENIED')) return 'rejected';
      this.#failures++;
      throw this.mapError(error, { operation: 'refresh', key: this.#key });
    }
    if (renewed === undefined || typeof renewed?.expiresAt !== 'number') return undefined;
    const expiresAt = this.#trustedExpiry(renewed.expiresAt, startedAt);
    if (expiresAt === undefined || expiresAt <= this.clock.now()) return undefined;
    if (this.closed)
      throw this.mapError(this.#controller.signal.reason, { operation: 'refresh', key: this.#key });
    // Unless the issuer says, a grant short of the ask means the token hit its ceiling: the next
    // refresh issues anew.
    const capped = expiresAt - startedAt < lifetimeMs - 1_000;
    const next: Held = {
      ...held,
      expiresAt,
      ...this.#schedule(startedAt, expiresAt),
      renewable: renewed.renewable ?? !capped,
      maxExpiresAt: renewed.maxExpiresAt ?? held.maxExpiresAt,
    };
    if (this.#held !== held) return this.#held;
    this.#held = next;
    this.#renewals++;
    this.#armBackgroundRefresh(next);
    return next;
  }

  /**
   * Spaces the tries after a failed refresh of a token still valid, on core's hold-off with the
   * background refresh's back-off (a server's `Retry-After` honoured), and at most half the time
   * the token has left, so that a try comes before its end (a throttled one may come later).
   */
  #holdAhead(error: unknown): void {
    const held = this.#held;
    const now = this.clock.now();
    if (held?.expiresAt === undefined || held.expiresAt <= now) return;
    this.#aheadHold.fail('ahead', error, now, (held.expiresAt - now) / 2);
  }

  /** The requested lifetime within the bounds, warned about once when it had to be moved. */
  #clampRequested(): number {
    const clamped = Math.min(this.#maxLifetime, Math.max(this.#minLifetime, this.#lifetime));
    if (clamped !== this.#lifetime && !this.#warnedClamp) {
      this.#warnedClamp = true;
      this.#warn(
        'TOKEN_LIFETIME_CLAMPED',
        `the requested token lifetime of ${this.#lifetime} ms is outside ${this.#minLifetime}..${this.#maxLifetime} ms; asking for ${clamped} ms`,
      );
    }
    return clamped;
  }

  /** The expiry the source relies on: never past `maxLifetime`, and assumed when the issuer cannot tell. */
  #trustedExpiry(expiresAt: number | undefined, startedAt: number): number | undefined {
    if (!this.#issuer.refreshable) return expiresAt;
    if (expiresAt === undefined || !Number.isFinite(expiresAt)) {
      const assumed = startedAt + this.#clampRequested();
      this.#warn(
        'TOKEN_EXPIRY_UNKNOWN',
        `the ${this.#issuer.kind} issuer did not say when the token expires; assuming ${assumed - startedAt} ms`,
      );
      return assumed;
    }
    const lifetime = expiresAt - startedAt;
    if (lifetime > this.#maxLifetime) {
      this.#warn(
        'TOKEN_LIFETIME_CLAMPED',
        `the token was issued for ${Math.round(lifetime)} ms, more than maxLifetime; it is refreshed as if it lived ${this.#maxLifetime} ms`,
      );
      return startedAt + this.#maxLifetime;
    }
    if (lifetime < this.#minLifetime && lifetime > 0) {
      this.#warn(
        'TOKEN_LIFETIME_SHORT',
        `the token was issued for ${Math.round(lifetime)} ms, less than minLifetime (${this.#minLifetime} ms)`,
      );
    }
    return expiresAt;
  }

  /** Background refreshes on core's poller: the next run is the held token's refresh time. */
  #armBackgroundRefresh(held: Held): void {
    if (held.expiresAt === undefined || this.#poller !== undefined || this.closed) return;
    this.#poller = this.createPoller(
      async () => {
        const current = this.#held;
        if (current === undefined || !Number.isFinite(current.refreshAt)) {
          // Nothing to refresh (a token that does not expire, or one kept to its end): the loop
          // idles until a token that needs it is held.
          const idle = this.#poller;
          this.#poller = undefined;
          void idle?.stop();
          return {};
        }
        const now = this.clock.now();
        if (now < current.refreshAt) return { nextDelay: current.refreshAt - now };
        const next = await this.#refresh('expiring');
        return { nextDelay: Math.max(0, next.refreshAt - this.clock.now()) };
      },
      // The interval is only the floor of a wait after a failure; successes say when to run next.
      // The floor between runs stays under the shortest lifetime expected, so that the run which
      // only learns the first refresh time does not push that refresh past a short token's end.
      {
        interval: 1_000,
        minInterval: Math.min(1_000, this.#minLifetime / 10),
        jitter: 0,
        first: 'interval',
        backoff: this.#backoff,
        random: this.#random,
      },
      (error) => this.#reportError(error),
    );
    this.#poller.start();
    // The first run is due at the token's refresh time, not after the floor.
    this.#poller.trigger();
  }

  /** The issuer's inputs changed (a signing key rotated): make a new token after any in flight. */
  #inputsChanged(): void {
    if (this.closed || this.#held === undefined) return;
    const inFlight = this.#refreshing ?? Promise.resolve();
    void inFlight
      .catch(() => {})
      .then(() => (this.closed ? undefined : this.#refresh('changed')))
      .catch((error: unknown) => this.#reportError(error));
  }

  #warn(code: string, message: string): void {
    this.emit('warning', {
      provider: this.name,
      code,
      message,
      key: this.#key,
      detectedAt: new Date(this.clock.now()),
    });
  }

  #reportError(error: unknown): void {
    if (this.closed) return;
    const mapped: SecretError = isSecretError(error)
      ? error
      : this.mapError(error, { operation: 'refresh', key: this.#key });
    this.emit('error', {
      provider: this.name,
      error: mapped,
      key: this.#key,
      detectedAt: new Date(this.clock.now()),
    });
  }
}

function isDue(held: Held, now: number): boolean {
  return held.expiresAt !== undefined && held.expiresAt - now <= held.margin;
}

function describe(held: Held): CurrentToken {
  return {
    token: held.token,
    generation: held.generation,
    issuedAt: new Date(held.issuedAt),
    expiresAt: held.expiresAt === undefined ? undefined : new Date(held.expiresAt),
    renewable: held.renewable,
  };
}

function metadataOf(held: Held): { version: string; updatedAt: Date; expiresAt: Date | undefined } {
  return {
    version: String(held.generation),
    updatedAt: new Date(held.issuedAt),
    expiresAt: held.expiresAt === undefined ? undefined : new Date(held.expiresAt),
  };
}

function duration(
  value: number | undefined,
  fallback: number,
  option: string,
  provider: string,
  zero = false,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!zero && value === 0)) {
    throw new InvalidConfigError(
      { provider },
      `invalid configuration: ${option} must be a finite number of milliseconds${zero ? ' >= 0' : ' > 0'} (provider "${provider}")`,
    );
  }
  return value;
}
