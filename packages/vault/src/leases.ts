import { isSecretError, type SecretError, type SecretEvents } from '@secret-provider/core';
import type { Clock, Timer } from '@secret-provider/core/adapter';
import { encodePath } from './addressing.js';
import { isEmptyBody, isLeaseGone, isRecord } from './errors.js';
import type { NodeVaultClient } from './options.js';
import type { AuthSession, VaultTransport } from './transport.js';

/** A dynamic credential and its lease, cached together. */
export interface Lease {
  readonly path: string;
  readonly data: Readonly<Record<string, unknown>>;
  readonly leaseId: string;
  /** The session whose token created the lease: Vault revokes the lease when that token goes. */
  readonly session: AuthSession | undefined;
  /** When the lease was issued or last renewed (epoch ms, taken before the request). */
  renewedAt: number;
  /** `renewedAt` plus the granted duration. */
  expiresAt: number;
  durationMs: number;
  /** The duration first granted; the increment asked for on renewal. */
  readonly requestedMs: number;
  readonly renewable: boolean;
  /** Renewal was capped by the max TTL (or refused): the lease cannot be extended further. */
  capped: boolean;
  /** Replaced by a newer lease; kept only until its grace period ends. */
  retired: boolean;
  revoked: boolean;
  timer: Timer | undefined;
  failures: number;
}

/** What a read of a non-KV path returned: data, and the lease when the path issues one. */
export interface DynamicRead {
  readonly data: Readonly<Record<string, unknown>>;
  readonly lease: Lease | undefined;
}

export interface LeaseManagerConfig {
  readonly provider: string;
  readonly transport: VaultTransport;
  readonly client: NodeVaultClient;
  readonly clock: Clock;
  readonly random: () => number;
  readonly renewFraction: number;
  readonly jitter: number;
  readonly revokeGraceMs: number;
  readonly expiryMarginMs: number;
  readonly emit: <K extends keyof SecretEvents>(type: K, event: SecretEvents[K]) => void;
  /** Keys read through `path` (fields), so events name them too. */
  readonly keysOf: (path: string) => string[];
}

interface ReadBody {
  lease_id?: unknown;
  lease_duration?: unknown;
  renewable?: unknown;
  data?: unknown;
  warnings?: unknown;
}

const GONE = Symbol('lease gone');

/**
 * Dynamic secrets: reads a path once, caches the value with its lease, renews the lease once
 * `renewFraction` of it has passed (with jitter), and when Vault refuses to renew (max TTL,
 * non-renewable, lease gone) or the token that created the lease is about to go, fetches a fresh
 * credential before the old one expires, emits `rotated` with both lease ids, and revokes the
 * old lease after a grace period.
 */
export class LeaseManager {
  readonly #config: LeaseManagerConfig;
  readonly #leases = new Map<string, Lease>();
  readonly #acquiring = new Map<string, Promise<DynamicRead>>();
  /** Replaced leases waiting for their grace period to end. */
  readonly #retired = new Set<Lease>();
  readonly #warned = new Set<string>();
  #closed = false;
  /** Counters for stats and tests. */
  readonly counters = { issued: 0, renewed: 0, rotated: 0, revoked: 0, revokeFailures: 0 };

  constructor(config: LeaseManagerConfig) {
    this.#config = config;
  }

  /** Leases held now (current ones, not those in their grace period). */
  get size(): number {
    return this.#leases.size;
  }

  /** The current lease of `path`, if any (usable or not). */
  peek(path: string): Lease | undefined {
    return this.#leases.get(path);
  }

  /** The end of a lease: its expiry, or earlier when the token that created it ends first. */
  hardEnd(lease: Lease): number {
    const session = lease.session;
    if (session?.final && session.expiresAt !== 0) return Math.min(lease.expiresAt, session.expiresAt);
    return lease.expiresAt;
  }

  /** Whether a lease may still be handed out. */
  usable(lease: Lease): boolean {
    if (lease.retired || lease.revoked || lease.session?.invalid) return false;
    return this.#config.clock.now() < this.hardEnd(lease) - this.#config.expiryMarginMs;
  }

  /** The value of `path`: the cached credential while its lease is usable, else a fresh read. */
  async read(path: string, key: string, signal?: AbortSignal): Promise<DynamicRead> {
    const lease = this.#leases.get(path);
    if (lease !== undefined && this.usable(lease)) return { data: lease.data, lease };
    return this.#acquire(path, key, signal);
  }

  /** The token behind `session` is gone: its leases are too. Replace them now. */
  sessionInvalid(session: AuthSession): void {
    for (const lease of this.#leases.values()) {
      if (lease.session === session) this.#rotateSoon(lease, 0);
    }
  }

  /** `session` will not be renewed again: leases it created must be replaced before it ends. */
  sessionRetired(session: AuthSession): void {
    for (const lease of this.#leases.values()) {
      if (lease.session === session) this.#schedule(lease);
    }
  }

  /** Stops every timer; revokes live leases when `revoke`. Never throws. */
  async close(mode: 'revoke' | 'release'): Promise<void> {
    this.#closed = true;
    const all = [...this.#leases.values(), ...this.#retired];
    for (const lease of all) lease.timer?.cancel();
    if (mode === 'revoke') {
      await Promise.all(
        all.filter((l) => !l.revoked && !l.session?.invalid).map((lease) => this.#revoke(lease)),
      );
    }
    this.#leases.clear();
    this.#retired.clear();
  }

  // ---- acquisition -----------------------------------------------------------------------------

  #acquire(path: string, key: string, signal?: AbortSignal): Promise<DynamicRead> {
    const pending = this.#acquiring.get(path);
    if (pending !== undefined) return pending;
    const promise = this.#fetch(path, key, signal).finally(() => {
      if (this.#acquiring.get(path) === promise) this.#acquiring.delete(path);
    });
    this.#acquiring.set(path, promise);
    return promise;
  }

  async #fetch(
    path: string,
    key: string,
    signal: AbortSignal | undefined,
    retries?: number,
  ): Promise<DynamicRead> {
    const { transport, client, clock } = this.#config;
    const startedAt = clock.now();
    let usedSession: AuthSession | undefined;
    const body = await transport.call<ReadBody>({
      operation: 'get',
      key,
      signal,
      ...(retries === undefined ? {} : { retries }),
      send: (options, session) => {
        usedSession = session;
        return client.read(encodePath(path), options) as Promise<ReadBody>;
      },
      accept: (answer) => isRecord(answer) && isRecord(answer.data),
    });
    const data = body.data as Record<string, unknown>;
    const leaseId = typeof body?.lease_id === 'string' ? body.lease_id : '';
    const duration = typeof body?.lease_duration === 'number' ? body.lease_duration * 1000 : 0;
    if (leaseId === '' || duration <= 0) return { data, lease: undefined };
    if (this.#closed) {
      // Closed while the request was out: do not keep (or leak) the new lease.
      await this.#revoke({ leaseId, path, revoked: false } as Lease);
      return { data, lease: undefined };
    }
    const lease: Lease = {
      path,
      data,
      leaseId,
      session: usedSession,
      renewedAt: startedAt,
      expiresAt: startedAt + duration,
      durationMs: duration,
      requestedMs: duration,
      renewable: body.renewable === true,
      capped: false,
      retired: false,
      revoked: false,
      timer: undefined,
      failures: 0,
    };
    this.counters.issued++;
    const previous = this.#leases.get(path);
    this.#leases.set(path, lease);
    this.#schedule(lease);
    if (previous !== undefined && previous !== lease) this.#retire(previous, lease);
    return { data, lease };
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  #schedule(lease: Lease): void {
    lease.timer?.cancel();
    lease.timer = undefined;
    if (this.#closed || lease.retired || lease.revoked) return;
    const { clock, random, renewFraction, jitter } = this.#config;
    const now = clock.now();
    const end = this.hardEnd(lease);
    const bySession = end < lease.expiresAt;
    const left = end - now;
    if (lease.renewable && !lease.capped && !bySession) {
      lease.timer = clock.setTimer(
        () => this.#renew(lease),
        Math.max(0, left * renewFraction * (1 - jitter * random())),
      );
      return;
    }
    // A replacement gets at least the overlap a full lease period would have given (the last
    // `1 - renewFraction` of it), even when a capped renewal left only a little time.
    const lead = Math.max(left * (1 - renewFraction), lease.requestedMs * (1 - renewFraction));
    lease.timer = clock.setTimer(
      () => this.#rotate(lease),
      Math.max(0, (left - lead) * (1 - jitter * random())),
    );
  }

  #rotateSoon(lease: Lease, delay: number): void {
    lease.timer?.cancel();
    lease.timer = this.#config.clock.setTimer(() => this.#rotate(lease), delay);
  }

  async #renew(lease: Lease): Promise<void> {
    if (this.#closed || lease.retired || lease.revoked) return;
    const { transport, client, clock } = this.#config;
    const startedAt = clock.now();
    let result: ReadBody | typeof GONE;
    try {
      result = await transport.call<ReadBody | typeof GONE>({
        operation: 'renew',
        key: lease.path,
        target: '/sys/leases/renew',
        retries: 0,
        send: (options) =>
          client.renew({
            lease_id: lease.leaseId,
            increment: Math.max(1, Math.round(lease.requestedMs / 1000)),
            requestOptions: options,
          }) as Promise<ReadBody>,
        accept: (answer) => isRecord(answer) && typeof answer.lease_duration === 'number',
        onFailure: (failure) => (isLeaseGone(failure) ? GONE : undefined),
      });
    } catch (error) {
      if (this.#closed || lease.retired) return;
      lease.failures++;
      this.#reportError(error, lease.path);
      const left = this.hardEnd(lease) - clock.now();
      const wait = transport.retryDelay(Math.min(lease.failures, 6) + 1, error);
      // Near the end, stop trying to renew and get a new credential while the old one still works.
      const threshold = Math.max(
        (lease.durationMs * (1 - this.#config.renewFraction)) / 2,
        this.#config.expiryMarginMs * 2,
      );
      if (left - wait <= threshold) {
        this.#rotateSoon(lease, 0);
      } else {
        lease.timer = clock.setTimer(() => this.#renew(lease), wait);
      }
      return;
    }
    if (this.#closed || lease.retired) return;
    if (result === GONE) {
      lease.capped = true;
      await this.#rotate(lease);
      return;
    }
    const granted = typeof result.lease_duration === 'number' ? result.lease_duration * 1000 : 0;
    lease.renewedAt = startedAt;
    lease.expiresAt = startedAt + granted;
    lease.durationMs = granted;
    lease.failures = 0;
    this.counters.renewed++;
    // Less than asked for means the max TTL capped it (Vault adds a warning saying so).
    if (granted < lease.requestedMs - 1000 || result.renewable === false) lease.capped = true;
    this.#schedule(lease);
  }

  async #rotate(lease: Lease): Promise<void> {
    if (this.#closed || lease.retired || lease.revoked) return;
    if (this.#leases.get(lease.path) !== lease) return;
    try {
      const pending = this.#acquiring.get(lease.path);
      if (pending !== undefined) await pending;
      else {
        const promise = this.#fetch(lease.path, lease.path, undefined, 0).finally(() => {
          if (this.#acquiring.get(lease.path) === promise) this.#acquiring.delete(lease.path);
        });
        this.#acquiring.set(lease.path, promise);
        await promise;
      }
    } catch (error) {
      if (this.#closed || lease.retired) return;
      lease.failures++;
      this.#reportError(error, lease.path);
      const clock = this.#config.clock;
      const left = this.hardEnd(lease) - clock.now();
      const wait = this.#config.transport.retryDelay(Math.min(lease.failures, 6) + 1, error);
      // Keep trying while the old lease lasts; after that `read` fetches inline.
      if (left > 0) this.#rotateSoon(lease, Math.min(wait, Math.max(left / 2, 100)));
    }
  }

  #retire(old: Lease, replacement: Lease): void {
    old.retired = true;
    old.timer?.cancel();
    old.timer = undefined;
    this.counters.rotated++;
    const { clock, provider, emit, keysOf } = this.#config;
    const keys = keysOf(old.path);
    emit('rotated', {
      provider,
      keys,
      changes: keys.map((key) => ({
        key,
        oldVersion: old.leaseId,
        newVersion: replacement.leaseId,
        oldLeaseId: old.leaseId,
        newLeaseId: replacement.leaseId,
      })),
      detectedAt: new Date(clock.now()),
    });
    if (old.session?.invalid) return;
    // Connections opened with the old credential get a grace period, then the lease goes; one
    // that ends within the grace period is left to expire.
    const revokeIn = Math.min(
      this.#config.revokeGraceMs,
      this.hardEnd(old) - clock.now() - this.#config.expiryMarginMs,
    );
    if (revokeIn < 0) return;
    this.#retired.add(old);
    old.timer = clock.setTimer(async () => {
      this.#retired.delete(old);
      if (!this.#closed) await this.#revoke(old);
    }, revokeIn);
  }

  async #revoke(lease: Lease): Promise<void> {
    if (lease.revoked) return;
    const { transport, client } = this.#config;
    try {
      await transport.call({
        operation: 'revoke',
        key: lease.path,
        target: '/sys/leases/revoke',
        retries: 0,
        send: (options) => client.revoke({ lease_id: lease.leaseId, requestOptions: options }),
        accept: (answer) => isEmptyBody(answer) || isRecord(answer),
        onFailure: (failure) => (isLeaseGone(failure) ? true : undefined),
      });
      lease.revoked = true;
      this.counters.revoked++;
    } catch (error) {
      this.counters.revokeFailures++;
      if (isSecretError(error, 'ACCESS_DENIED') && !this.#warned.has('revoke')) {
        // Vault's default policy does not allow sys/leases/revoke; say so once, the lease will expire.
        this.#warned.add('revoke');
        this.#config.emit('warning', {
          provider: this.#config.provider,
          code: 'LEASE_REVOKE_DENIED',
          message:
            'Vault denied revoking a replaced lease (policy lacks sys/leases/revoke); it will expire on its own',
          key: lease.path,
          detectedAt: new Date(this.#config.clock.now()),
        });
      } else if (!this.#closed) this.#reportError(error, lease.path);
    }
  }

  #reportError(error: unknown, key: string): void {
    const mapped: SecretError = isSecretError(error)
      ? error
      : this.#config.transport.map(error, 'renew', key);
    this.#config.emit('error', {
      provider: this.#config.provider,
      error: mapped,
      key,
      detectedAt: new Date(this.#config.clock.now()),
    });
  }
}
