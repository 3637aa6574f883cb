// An access audit built on core's diagnostics channels: records are made from the channels'
// contexts (names, codes and numbers only), so no record can carry a value, an option, a
// credential or a raw error text.
import { AsyncLocalStorage } from 'node:async_hooks';
import { channel } from 'node:diagnostics_channel';
import { open } from 'node:fs/promises';
import {
  type CacheEvent,
  type ChangeEvent,
  InvalidConfigError,
  type OperationContext,
  type RequestContext,
  SecretError,
  type SecretOperation,
  type SecretProvider,
  subscribeTelemetry,
} from '@secret-provider/core';
import { type Clock, systemClock, type Timer, WrappingProvider } from '@secret-provider/core/adapter';

/** One value-free audit record. */
export interface AuditRecord {
  /** ISO time the record was made. */
  readonly time: string;
  /** `operation` (get, set...), `request` (auth, renew... made outside an operation), `change`, `cache-hits`. */
  readonly kind: 'operation' | 'request' | 'change' | 'cache-hits';
  readonly operation: string;
  readonly provider: string;
  readonly key?: string | undefined;
  readonly keys?: readonly string[] | undefined;
  /** `denied` for ACCESS_DENIED, else `ok` or `error`. */
  readonly outcome?: 'ok' | 'error' | 'denied' | undefined;
  readonly errorCode?: string | undefined;
  readonly servedFrom?: string | undefined;
  readonly version?: string | undefined;
  readonly durationMs?: number | undefined;
  readonly status?: number | undefined;
  /** `request`: the API path the request went to, when the adapter names it (Vault: `/sys/leases/renew`, `/sys/leases/revoke`). */
  readonly target?: string | undefined;
  /** Server request ids of the backend requests (Vault `request_id`, Key Vault `x-ms-request-id`). */
  readonly requestIds?: readonly string[] | undefined;
  readonly clientRequestIds?: readonly string[] | undefined;
  readonly leaseDurationS?: number | undefined;
  readonly tokenTtlS?: number | undefined;
  /** `cache-hits`: hits of the key in the window. */
  readonly count?: number | undefined;
  readonly windowMs?: number | undefined;
  /** `change` `warning`: the provider's warning code (`TOKEN_EXPIRING`, `LEASE_REVOKE_DENIED`...), never its message. */
  readonly warningCode?: string | undefined;
  /** `fail-closed`: the audit refused the operation before it reached the backend (see {@link AuditUnavailableError}). */
  readonly refused?: true | undefined;
  /** A sampled cache hit: the share of hits recorded, so one record stands for `1 / sampleRate` hits. */
  readonly sampleRate?: number | undefined;
}

/**
 * How cache hits are recorded: `aggregate` makes one `cache-hits` record per key per window
 * (`count`), `sample` records each hit with probability `rate` (the record carries the rate).
 */
export type CacheHitAudit =
  | { readonly mode: 'aggregate' /** @default 60000 */; readonly windowMs?: number | undefined }
  | { readonly mode: 'sample' /** In (0, 1]. */; readonly rate: number };

/** Where records go. A rejected or throwing write marks the sink failed (see `fail-closed`). */
export interface AuditSink {
  write(record: AuditRecord): void | Promise<void>;
  close?(): void | Promise<void>;
}

export interface AuditorOptions {
  readonly sinks: readonly AuditSink[];
  /** Records waiting for the sinks at most; more are dropped and counted. @default 10000 */
  readonly maxQueue?: number | undefined;
  /** How cache hits are recorded. @default { mode: 'aggregate', windowMs: 60000 } */
  readonly cacheHits?: CacheHitAudit | undefined;
  /** `fail-closed`: providers from {@link Auditor.wrap} reject when the audit cannot take a record. @default 'fail-open' */
  readonly mode?: 'fail-open' | 'fail-closed' | undefined;
  readonly clock?: Clock | undefined;
  /** Random source in [0, 1) for `sample` (simulations). @default Math.random */
  readonly random?: (() => number) | undefined;
}

export interface AuditStats {
  readonly written: number;
  readonly dropped: number;
  readonly queued: number;
  readonly sinkFailures: number;
  /** The last record could not be written to every sink (cleared by the next one that can). */
  readonly failing: boolean;
}

/** The audit could not take a record in `fail-closed` mode; the operation was not run. */
export class AuditUnavailableError extends SecretError {
  constructor(details: { provider?: string; operation?: SecretOperation; key?: string } = {}) {
    super('UNAVAILABLE', 'audit unavailable: the operation was refused before reaching the backend', {
      ...details,
      retryable: true,
    });
    this.name = 'AuditUnavailableError';
  }
}

export interface Auditor {
  /** Audits the operations of `provider` (and of the providers inside it, for a chain); fail-open. */
  attach(provider: SecretProvider): () => void;
  /** `provider` wrapped so that, in `fail-closed` mode, each operation is admitted before it runs. */
  wrap(provider: SecretProvider): SecretProvider;
  stats(): AuditStats;
  /** Flushes cache-hit windows and the queue, closes the sinks. */
  close(): Promise<void>;
}

function namesOf(provider: SecretProvider): string[] {
  const inner = (provider as { providers?: unknown }).providers;
  const names = [provider.name];
  if (Array.isArray(inner)) for (const p of inner as SecretProvider[]) names.push(...namesOf(p));
  const wrapped = (provider as { provider?: unknown }).provider;
  if (wrapped !== undefined && typeof (wrapped as SecretProvider).name === 'string')
    names.push(...namesOf(wrapped as SecretProvider));
  return names;
}

function outcomeOf(outcome: string | undefined, errorCode: string | undefined): AuditRecord['outcome'] {
  if (outcome === 'error') return errorCode === 'ACCESS_DENIED' ? 'denied' : 'error';
  return outcome === 'ok' ? 'ok' : undefined;
}

function compact(record: Record<string, unknown>): AuditRecord {
  for (const name of Object.keys(record)) if (record[name] === undefined) delete record[name];
  return record as unknown as AuditRecord;
}

export function createAuditor(options: AuditorOptions): Auditor {
  const clock = options.clock ?? systemClock;
  const maxQueue = options.maxQueue ?? 10_000;
  const cacheHits = options.cacheHits ?? { mode: 'aggregate' };
  const windowMs = cacheHits.mode === 'aggregate' ? (cacheHits.windowMs ?? 60_000) : 0;
  const sampleRate = cacheHits.mode === 'sample' ? cacheHits.rate : 1;
  if (cacheHits.mode === 'aggregate' && !(Number.isFinite(windowMs) && windowMs > 0))
    throw new InvalidConfigError({}, 'invalid configuration: cacheHits.windowMs must be a number of ms > 0');
  if (cacheHits.mode === 'sample' && !(typeof sampleRate === 'number' && sampleRate > 0 && sampleRate <= 1))
    throw new InvalidConfigError({}, 'invalid configuration: cacheHits.rate must be a number in (0, 1]');
  const random = options.random ?? Math.random;
  const failClosed = options.mode === 'fail-closed';
  const attached = new Map<string, number>();
  const queue: Queued[] = [];
  // fail-closed: the records a wrapped operation made, so that it answers only once they are written.
  const tickets = new AsyncLocalStorage<Ticket>();
  const hits = new Map<string, { provider: string; key: string; count: number }>();
  const requests = new WeakMap<OperationContext, RequestContext[]>();
  const store = new AsyncLocalStorage<OperationContext>();
  let written = 0;
  let dropped = 0;
  let sinkFailures = 0;
  let failing = false;
  let pumping: Promise<void> | undefined;
  let timer: Timer | undefined;
  let closed = false;

  const now = () => new Date(clock.now()).toISOString();
  const watched = (provider: string) => attached.has(provider);

  const enqueue = (record: AuditRecord) => {
    const ticket = failClosed ? tickets.getStore() : undefined;
    if (queue.length >= maxQueue) {
      dropped++;
      if (ticket !== undefined) ticket.written.push(Promise.resolve(false));
      return;
    }
    if (ticket === undefined) queue.push({ record });
    else ticket.written.push(new Promise<boolean>((done) => queue.push({ record, done })));
    pumping ??= new Promise<void>((resolve) => setImmediate(resolve)).then(pump);
  };

  async function pump(): Promise<void> {
    while (queue.length > 0) {
      const { record, done } = queue.shift() as Queued;
      let failed = false;
      for (const sink of options.sinks) {
        try {
          await sink.write(record);
        } catch {
          sinkFailures++;
          failed = true;
        }
      }
      // Health follows the latest record: a sink that takes one again ends the refusals.
      failing = failed;
      written++;
      done?.(!failed);
    }
    pumping = undefined;
  }

  const flushHits = () => {
    timer = undefined;
    for (const { provider, key, count } of hits.values())
      enqueue(
        compact({
          time: now(),
          kind: 'cache-hits',
          operation: 'get',
          provider,
          key,
          servedFrom: 'cache',
          outcome: 'ok',
          count,
          windowMs,
        }),
      );
    hits.clear();
  };

  // Cache hits come from the cache channel, which reports the reads of every cache alike (a
  // provider's own and a CachedProvider in front of one); the operation channels leave them out
  // (`cacheHits: false` below), so that none is counted twice.
  const onCache = (e: CacheEvent) => {
    if ((e.result !== 'hit' && e.result !== 'negative') || !watched(e.provider)) return;
    if (cacheHits.mode === 'sample') {
      if (random() < sampleRate)
        enqueue(
          compact({
            time: now(),
            kind: 'operation',
            operation: 'get',
            provider: e.provider,
            key: e.key,
            outcome: e.result === 'hit' ? 'ok' : 'error',
            errorCode: e.result === 'hit' ? undefined : 'NOT_FOUND',
            servedFrom: 'cache',
            sampleRate,
          }),
        );
      return;
    }
    const id = `${e.provider}\u0000${e.key}`;
    const entry = hits.get(id);
    if (entry === undefined) hits.set(id, { provider: e.provider, key: e.key, count: 1 });
    else entry.count++;
    timer ??= clock.setTimer(flushHits, windowMs);
  };

  const onOperation = (c: OperationContext) => {
    if (!watched(c.provider)) return;
    if (c.servedFrom === 'cache' && c.operation === 'get') return; // counted by onCache
    const made = requests.get(c) ?? [];
    const ids = made.flatMap((r) => (r.correlationId === undefined ? [] : [r.correlationId]));
    const clientIds = made.flatMap((r) => (r.clientRequestId === undefined ? [] : [r.clientRequestId]));
    const last = made[made.length - 1];
    enqueue(
      compact({
        time: now(),
        kind: 'operation',
        operation: c.operation,
        provider: c.provider,
        key: c.key,
        outcome: outcomeOf(c.outcome, c.errorCode),
        errorCode: c.errorCode,
        servedFrom: c.servedFrom,
        version: c.version,
        durationMs: c.durationMs,
        status: last?.status,
        requestIds: ids.length > 0 ? ids : undefined,
        clientRequestIds: clientIds.length > 0 ? clientIds : undefined,
        leaseDurationS: last?.leaseDurationS,
      }),
    );
  };

  const onRequest = (r: RequestContext) => {
    const operation = store.getStore();
    // A request belongs to the operation it serves: the same provider, not token or lease work
    // (which an operation may trigger but which has a record of its own). Adapters name their
    // requests their own way (Key Vault: `read` for a `get`), so the name is not compared.
    if (
      operation !== undefined &&
      operation.provider === r.provider &&
      r.operation !== 'auth' &&
      r.operation !== 'renew' &&
      r.operation !== 'revoke' &&
      r.operation !== 'refresh'
    ) {
      const list = requests.get(operation);
      if (list === undefined) requests.set(operation, [r]);
      else list.push(r);
      return;
    }
    // Token and lease work (auth, renew, revoke, refresh): a record of its own.
    if (!watched(r.provider)) return;
    enqueue(
      compact({
        time: now(),
        kind: 'request',
        operation: r.operation,
        provider: r.provider,
        key: r.key,
        outcome: outcomeOf(r.outcome, r.errorCode),
        errorCode: r.errorCode,
        durationMs: r.durationMs,
        status: r.status,
        target: r.target,
        requestIds: r.correlationId === undefined ? undefined : [r.correlationId],
        clientRequestIds: r.clientRequestId === undefined ? undefined : [r.clientRequestId],
        leaseDurationS: r.leaseDurationS,
        tokenTtlS: r.tokenTtlS,
      }),
    );
  };

  const onChange = (e: ChangeEvent) => {
    if (!watched(e.provider)) return;
    enqueue(
      compact({
        time: now(),
        kind: 'change',
        operation: e.type === 'rotated' ? 'rotation' : e.type,
        provider: e.provider,
        keys: [...e.keys],
        outcome: e.type === 'error' ? 'error' : 'ok',
        errorCode: e.errorCode,
        warningCode: e.warningCode,
      }),
    );
  };

  const unsubscribe = subscribeTelemetry({
    store,
    cacheHits: false,
    cache: onCache,
    operation: onOperation,
    request: onRequest,
    change: onChange,
  });

  const attach = (provider: SecretProvider) => {
    const names = namesOf(provider);
    for (const name of names) attached.set(name, (attached.get(name) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      for (const name of names) {
        const left = (attached.get(name) ?? 1) - 1;
        if (left === 0) attached.delete(name);
        else attached.set(name, left);
      }
    };
  };

  const admit = (provider: string, operation: SecretOperation, key?: string) => {
    if (!failClosed) return;
    if (!closed && queue.length < maxQueue && !failing) return;
    // The refusal is a record too: writing it is what finds out that a failed sink works again.
    if (!closed)
      enqueue(
        compact({
          time: now(),
          kind: 'operation',
          operation,
          provider,
          key,
          outcome: 'error',
          errorCode: 'UNAVAILABLE',
          refused: true,
        }),
      );
    throw new AuditUnavailableError({ provider, operation, ...(key === undefined ? {} : { key }) });
  };

  return {
    attach,
    wrap(provider) {
      return new AuditedProvider(provider, admit, attach(provider), failClosed ? tickets : undefined);
    },
    stats: () => ({ written, dropped, queued: queue.length, sinkFailures, failing }),
    async close() {
      if (closed) return;
      closed = true;
      timer?.cancel();
      flushHits();
      unsubscribe();
      while (pumping !== undefined) await pumping;
      for (const { done } of queue.splice(0)) done?.(false);
      for (const sink of options.sinks) await sink.close?.();
    },
  };
}

type Admit = (provider: string, operation: SecretOperation, key?: string) => void;

/** A record waiting for the sinks; `done` tells a fail-closed operation whether every sink took it. */
interface Queued {
  readonly record: AuditRecord;
  readonly done?: ((written: boolean) => void) | undefined;
}

/** The records one fail-closed operation made, each resolving to whether it was written. */
interface Ticket {
  readonly written: Promise<boolean>[];
}

/**
 * A provider whose operations are admitted by the audit first; in `fail-closed` mode each also
 * answers only once the records it made are written to every sink, and rejects with
 * {@link AuditUnavailableError} (a value read is disposed, not returned) when one was not.
 */
class AuditedProvider extends WrappingProvider {
  readonly #admit: Admit;
  readonly #detach: () => void;
  readonly #tickets: AsyncLocalStorage<Ticket> | undefined;

  constructor(inner: SecretProvider, admit: Admit, detach: () => void, tickets?: AsyncLocalStorage<Ticket>) {
    super(inner);
    this.#admit = admit;
    this.#detach = detach;
    this.#tickets = tickets;
  }

  /** Runs `operation` once admitted; in fail-closed mode, settles after its records are written. */
  async #audited<T>(
    operation: SecretOperation,
    key: string | undefined,
    run: () => T | Promise<T>,
    dispose?: (result: T) => void,
  ): Promise<T> {
    this.#admit(this.name, operation, key);
    const tickets = this.#tickets;
    if (tickets === undefined) return run();
    const ticket: Ticket = { written: [] };
    let outcome: { ok: true; value: T } | { ok: false; error: unknown };
    try {
      outcome = { ok: true, value: await tickets.run(ticket, run) };
    } catch (error) {
      outcome = { ok: false, error };
    }
    const written = await Promise.all(ticket.written);
    if (written.includes(false)) {
      if (outcome.ok) dispose?.(outcome.value);
      throw new AuditUnavailableError({
        provider: this.name,
        operation,
        ...(key === undefined ? {} : { key }),
      });
    }
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  override get(...args: Parameters<WrappingProvider['get']>) {
    return this.#audited(
      'get',
      args[0],
      () => super.get(...args),
      (secret) => secret.dispose(),
    );
  }
  override getMany(...args: Parameters<WrappingProvider['getMany']>) {
    return this.#audited(
      'get',
      undefined,
      () => super.getMany(...args),
      (found) => {
        for (const secret of found.values()) secret.dispose();
      },
    );
  }
  override has(...args: Parameters<WrappingProvider['has']>) {
    return this.#audited('has', args[0], () => super.has(...args));
  }
  override metadata(...args: Parameters<WrappingProvider['metadata']>) {
    return this.#audited('metadata', args[0], () => super.metadata(...args));
  }
  override set(...args: Parameters<WrappingProvider['set']>) {
    return this.#audited('set', args[0], () => super.set(...args));
  }
  override delete(...args: Parameters<WrappingProvider['delete']>) {
    return this.#audited('delete', args[0], () => super.delete(...args));
  }
  override keys(...args: Parameters<WrappingProvider['keys']>) {
    return this.#audited('keys', undefined, () => super.keys(...args));
  }
  protected override onClose(): void {
    this.#detach();
  }
}

/**
 * An NDJSON file sink: the file is opened for appending with mode 0600; an existing file that
 * others may read or write is refused with `InvalidConfigError`.
 */
export async function fileSink(path: string): Promise<AuditSink> {
  const handle = await open(path, 'a', 0o600);
  const { mode } = await handle.stat();
  if ((mode & 0o077) !== 0) {
    await handle.close();
    throw new InvalidConfigError(
      {},
      `audit file must not be readable by others (mode ${(mode & 0o777).toString(8)})`,
    );
  }
  return {
    async write(record) {
      await handle.appendFile(`${JSON.stringify(record)}\n`);
    },
    async close() {
      await handle.close();
    },
  };
}

/** A logger sink (pino, winston, or anything with `info(object, message)`). */
export function loggerSink(logger: { info(object: object, message?: string): unknown }): AuditSink {
  return { write: (record) => void logger.info(record, 'secret access') };
}

/** Publishes each record on the diagnostics channel `name`. */
export function channelSink(name: string): AuditSink {
  const target = channel(name);
  return { write: (record) => target.publish(record) };
}
