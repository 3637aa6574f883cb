// What the product publishes through `node:diagnostics_channel`, and the one place it is
// published from. Contexts hold names, codes and numbers only: never a value, an option, a
// credential or a raw error. `TracingChannel.tracePromise` is not used, because it copies the
// traced function's result (a `Secret`) into the context for every subscriber; start, end,
// asyncStart, asyncEnd and error are published here with contexts built here.
// Nothing is built unless a channel has subscribers.

import type { AsyncLocalStorage } from 'node:async_hooks';
import {
  type Channel,
  channel,
  type TracingChannel,
  type TracingChannelSubscribers,
  tracingChannel,
} from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { isSecretError, type SecretErrorCode } from './errors.js';
import type { Secret } from './secret.js';
import type { SecretEvents, SecretMetadata } from './types.js';

/** The operations traced, each on its own tracing channel `secret-provider:<operation>`. */
export type TracedOperation = 'get' | 'getMany' | 'metadata' | 'has' | 'set' | 'delete' | 'keys';

/** Where a read was answered from. */
export type ServedFrom = 'backend' | 'cache' | 'stale' | 'coalesced' | 'negative';

/** How an operation or a request ended. */
export type Outcome = 'ok' | 'error';

/** The code of a failure: a `SecretError` code, or `ABORTED` for a caller's own abort reason. */
export type FailureCode = SecretErrorCode | 'ABORTED';

/**
 * The context of one operation, as subscribers of `secret-provider:<operation>` receive it. It
 * is filled in as the operation goes (`servedFrom`, then the outcome) and is complete at `end`
 * for an operation that answered synchronously (`outcome` set), else at `asyncEnd`.
 */
export interface OperationContext {
  readonly operation: TracedOperation;
  /** The provider's name. */
  readonly provider: string;
  /** The key asked for (a name, never a value); absent for `keys` and for keys that are not strings. */
  readonly key?: string | undefined;
  /** For `getMany`: how many keys were asked for. */
  keyCount?: number | undefined;
  servedFrom?: ServedFrom | undefined;
  /** The version read (from the secret's metadata), when the provider reports one. */
  version?: string | undefined;
  /** `has`: the answer. */
  found?: boolean | undefined;
  /** `keys`: how many names were listed. */
  count?: number | undefined;
  outcome?: Outcome | undefined;
  errorCode?: FailureCode | undefined;
  retryable?: boolean | undefined;
  /** Time taken, in ms; absent for a `get` answered by a fresh cache entry. */
  durationMs?: number | undefined;
}

/**
 * The context of one backend request (an HTTP exchange), published on the tracing channel
 * `secret-provider:request` by adapters through {@link traceRequest}.
 */
export interface RequestContext {
  readonly provider: string;
  /** The operation that needs the request (`get`, `auth`, `renew`, ...). */
  readonly operation: string;
  /** The key concerned, when there is one (a name). */
  readonly key?: string | undefined;
  /** HTTP method, when the adapter knows it. */
  readonly method?: string | undefined;
  /** The path template (`/secrets/{name}`), never a path with values in it. */
  readonly target?: string | undefined;
  /** 0 for the first try, then 1, 2... for retries. */
  readonly attempt?: number | undefined;
  status?: number | undefined;
  /** The server's id of this request (Vault `request_id`, Key Vault `x-ms-request-id`). */
  correlationId?: string | undefined;
  /** The client's id of this request (the correlation header it sent), when there is one. */
  clientRequestId?: string | undefined;
  /** Seconds of the lease the answer granted (dynamic secrets), when it granted one. */
  leaseDurationS?: number | undefined;
  /** Seconds the token has left after this answer (login, renewal, lookup), when it says. */
  tokenTtlS?: number | undefined;
  outcome?: Outcome | undefined;
  errorCode?: FailureCode | undefined;
  retryable?: boolean | undefined;
  durationMs?: number | undefined;
}

/** What the adapter fills in as the answer comes; copied into the request's context. */
export interface RequestRecord {
  status?: number | undefined;
  correlationId?: string | undefined;
  clientRequestId?: string | undefined;
  leaseDurationS?: number | undefined;
  tokenTtlS?: number | undefined;
}

/** What a cache reports on `secret-provider:cache`, per read and per entry pushed out. */
export interface CacheEvent {
  readonly provider: string;
  readonly key: string;
  readonly result: 'hit' | 'miss' | 'stale' | 'coalesced' | 'negative' | 'eviction';
  /** For evictions: `size` (the LRU bound) or `invalidated` (a write, an event, `invalidate`). */
  readonly reason?: 'size' | 'invalidated' | undefined;
  /** Entries held after this event. */
  readonly size: number;
}

/**
 * A change, a watch failure or a warning a provider reported, on `secret-provider:change`.
 * A warning (a token about to expire that cannot be renewed, a lease revocation denied...)
 * carries its code only, never its message.
 */
export interface ChangeEvent {
  readonly provider: string;
  readonly type: 'rotated' | 'added' | 'removed' | 'error' | 'warning';
  /** The keys concerned (names). */
  readonly keys: readonly string[];
  readonly errorCode?: FailureCode | undefined;
  /** For warnings: the code (`TOKEN_EXPIRING`), or `OTHER` when it is not an upper-case identifier. */
  readonly warningCode?: string | undefined;
}

const WARNING_CODE = /^[A-Z][A-Z0-9_]{0,63}$/;

/** Channel names, for subscribers that do not use {@link subscribeTelemetry}. */
export const TELEMETRY_CHANNELS = {
  /** Tracing channel prefix: `secret-provider:get`, `secret-provider:set`, ... */
  operationPrefix: 'secret-provider:',
  request: 'secret-provider:request',
  cache: 'secret-provider:cache',
  change: 'secret-provider:change',
} as const;

const OPERATIONS: readonly TracedOperation[] = ['get', 'getMany', 'metadata', 'has', 'set', 'delete', 'keys'];

type Tracing<C extends object> = TracingChannel<C, C>;

/** The tracing channel of each operation. */
export const operationChannels: { readonly [O in TracedOperation]: Tracing<OperationContext> } =
  Object.fromEntries(
    OPERATIONS.map((operation) => [
      operation,
      tracingChannel<OperationContext, OperationContext>(`${TELEMETRY_CHANNELS.operationPrefix}${operation}`),
    ]),
  ) as { [O in TracedOperation]: Tracing<OperationContext> };

export const requestChannel: Tracing<RequestContext> = tracingChannel<RequestContext, RequestContext>(
  TELEMETRY_CHANNELS.request,
);
export const cacheChannel: Channel<CacheEvent, CacheEvent> = channel(TELEMETRY_CHANNELS.cache) as Channel<
  CacheEvent,
  CacheEvent
>;
export const changeChannel: Channel<ChangeEvent, ChangeEvent> = channel(TELEMETRY_CHANNELS.change) as Channel<
  ChangeEvent,
  ChangeEvent
>;

const getStart = operationChannels.get.start;
const getEnd = operationChannels.get.end;

/**
 * Whether a `get` answered by a fresh cache entry is published: such a hit publishes `start`
 * and `end` only (see {@link publishHit}), so two flags decide, read once per call.
 */
export function hitsTraced(): boolean {
  return getEnd.hasSubscribers || getStart.hasSubscribers;
}

/** Whether anything listens to any of the five channels of `tracing`. */
export function traced(tracing: Tracing<object>): boolean {
  return (
    tracing.start.hasSubscribers ||
    tracing.end.hasSubscribers ||
    tracing.asyncStart.hasSubscribers ||
    tracing.asyncEnd.hasSubscribers ||
    tracing.error.hasSubscribers
  );
}

/** The code a failure is reported by: its `SecretError` code, or `ABORTED`/`UNKNOWN`. */
export function failureCode(error: unknown): FailureCode {
  if (isSecretError(error)) return error.code;
  if (error instanceof DOMException && (error.name === 'AbortError' || error.name === 'TimeoutError'))
    return 'ABORTED';
  return 'UNKNOWN';
}

function failed(context: OperationContext | RequestContext, error: unknown, started: number): void {
  context.outcome = 'error';
  context.errorCode = failureCode(error);
  if (isSecretError(error)) context.retryable = error.retryable;
  context.durationMs = performance.now() - started;
}

/**
 * Runs `run` as `context`'s operation on `tracing`: start (with the stores subscribers bound,
 * so that requests made by the operation see it), end, and for a promise asyncStart/asyncEnd
 * (after error, on a failure). `settle` copies what may be told of the result into the context.
 * Call only when {@link traced}; the result passes through untouched.
 */
export function traceOperation<C extends OperationContext | RequestContext, T>(
  tracing: Tracing<C>,
  context: C,
  run: () => T,
  settle?: (context: C, result: Awaited<T>) => void,
): T {
  const started = performance.now();
  return tracing.start.runStores(context, () => {
    let result: T;
    try {
      result = run();
    } catch (error) {
      failed(context, error, started);
      tracing.error.publish(context);
      tracing.end.publish(context);
      throw error;
    }
    if (!(result instanceof Promise)) {
      context.outcome = 'ok';
      settle?.(context, result as Awaited<T>);
      context.durationMs = performance.now() - started;
      tracing.end.publish(context);
      return result;
    }
    tracing.end.publish(context);
    return result.then(
      (value: Awaited<T>) => {
        context.outcome = 'ok';
        context.durationMs = performance.now() - started;
        settle?.(context, value);
        tracing.asyncStart.publish(context);
        tracing.asyncEnd.publish(context);
        return value;
      },
      (error: unknown) => {
        failed(context, error, started);
        tracing.error.publish(context);
        tracing.asyncStart.publish(context);
        tracing.asyncEnd.publish(context);
        throw error;
      },
    ) as T;
  });
}

/**
 * Publishes a `get` answered by a fresh cache entry (`context` completed by the cache): start
 * and end, nothing asynchronous, and no `durationMs` (a hit is a map lookup; timing it would
 * cost more than the lookup). No stores are entered: a hit makes no request. This is the only
 * `get` that ends at `end` with its outcome set (every other `get` ends at `asyncEnd`), which
 * lets a subscriber that does not report hits leave `end` unsubscribed (`cacheHits: false`).
 */
export function publishHit(context: OperationContext, hit: Promise<Secret<string>>): Promise<Secret<string>> {
  const tracing = operationChannels.get;
  tracing.start.publish(context);
  tracing.end.publish(context);
  return hit;
}

/** Context of an operation on `provider`, with the key when it is a string. */
export function operationContext(
  operation: TracedOperation,
  provider: string,
  key?: unknown,
): OperationContext {
  return typeof key === 'string' ? { operation, provider, key } : { operation, provider };
}

/** The version of a read secret, for the context (never the value). */
export function settleSecret(context: OperationContext, secret: Secret<string>): void {
  context.version = secret.metadata?.version;
}

/** The version of metadata read, for the context. */
export function settleMetadata(context: OperationContext, metadata: SecretMetadata): void {
  context.version = metadata.version;
}

/**
 * Wraps one backend request so that it is published on `secret-provider:request`. `send`
 * fills the record it is handed from the answer (status, the server's request id, lease and
 * token lifetimes); nothing else of the answer is published. Costs one object without
 * subscribers.
 *
 * @example
 * ```ts
 * const res = await traceRequest(
 *   { provider: this.name, operation: 'get', key, method: 'GET', target: '/items/{key}' },
 *   async (record) => {
 *     const res = await fetch(url);
 *     record.status = res.status;
 *     record.correlationId = res.headers.get('x-request-id') ?? undefined;
 *     return res;
 *   },
 * );
 * ```
 */
export function traceRequest<T>(
  request: Omit<RequestContext, 'outcome' | 'errorCode' | 'retryable' | 'durationMs' | keyof RequestRecord>,
  send: (record: RequestRecord) => Promise<T>,
): Promise<T> {
  const record: RequestRecord = {};
  if (!traced(requestChannel)) return send(record);
  const context: RequestContext = { ...request };
  const copy = () => {
    if (record.status !== undefined) context.status = record.status;
    if (record.correlationId !== undefined) context.correlationId = record.correlationId;
    if (record.clientRequestId !== undefined) context.clientRequestId = record.clientRequestId;
    if (record.leaseDurationS !== undefined) context.leaseDurationS = record.leaseDurationS;
    if (record.tokenTtlS !== undefined) context.tokenTtlS = record.tokenTtlS;
  };
  return traceOperation(requestChannel, context, () =>
    send(record).then(
      (value) => {
        copy();
        return value;
      },
      (error: unknown) => {
        copy();
        throw error;
      },
    ),
  );
}

/** Publishes a cache event; call only when `cacheChannel.hasSubscribers`. */
export function publishCache(
  provider: string,
  key: string,
  result: CacheEvent['result'],
  size: number,
  reason?: CacheEvent['reason'],
): void {
  cacheChannel.publish(
    reason === undefined ? { provider, key, result, size } : { provider, key, result, reason, size },
  );
}

/** Publishes a provider's event on `secret-provider:change` (names only); only with subscribers. */
export function publishChange(type: keyof SecretEvents, event: SecretEvents[keyof SecretEvents]): void {
  if (type === 'rotated') {
    const { provider, keys } = event as SecretEvents['rotated'];
    changeChannel.publish({ provider, type, keys: [...keys] });
  } else if (type === 'added' || type === 'removed') {
    const { provider, key } = event as SecretEvents['added'];
    changeChannel.publish({ provider, type, keys: [key] });
  } else if (type === 'error') {
    const { provider, key, error } = event as SecretEvents['error'];
    changeChannel.publish({
      provider,
      type,
      keys: key === undefined ? [] : [key],
      errorCode: failureCode(error),
    });
  } else if (type === 'warning') {
    const { provider, key, code } = event as SecretEvents['warning'];
    changeChannel.publish({
      provider,
      type,
      keys: key === undefined ? [] : [key],
      warningCode: typeof code === 'string' && WARNING_CODE.test(code) ? code : 'OTHER',
    });
  }
}

/** What {@link subscribeTelemetry} calls; every handler optional. */
export interface TelemetryHandlers {
  /** An operation started (the context is not complete yet). */
  readonly operationStart?: ((context: OperationContext) => void) | undefined;
  /** An operation finished (`outcome` set, and `durationMs` unless a cache hit answered it). */
  readonly operation?: ((context: OperationContext) => void) | undefined;
  readonly requestStart?: ((context: RequestContext) => void) | undefined;
  /** A backend request finished. */
  readonly request?: ((context: RequestContext) => void) | undefined;
  readonly cache?: ((event: CacheEvent) => void) | undefined;
  readonly change?: ((event: ChangeEvent) => void) | undefined;
  /**
   * Holds the context of the operation running while it runs: a request handler reads
   * `store.getStore()` to learn which operation made the request.
   */
  readonly store?: AsyncLocalStorage<OperationContext> | undefined;
  /**
   * Report to `operation` (and `operationStart`) the `get`s a fresh cache entry answered.
   * `false` leaves the `get` channel's `end` unsubscribed (and `start` too, without
   * `operationStart` or `store`), so that such a hit publishes nothing on it: for a subscriber
   * that counts hits from `cache` (which reports every read of `BaseProvider` and
   * `CachedProvider` caches alike). Every other `get` is still reported.
   * @default true
   */
  readonly cacheHits?: boolean | undefined;
}

/**
 * Subscribes to every channel above at once; each operation and request is reported once when
 * it finishes, whether it answered synchronously or not. Returns the function that unsubscribes.
 */
export function subscribeTelemetry(handlers: TelemetryHandlers): () => void {
  const undo: (() => void)[] = [];
  const trace = <C extends { outcome?: Outcome | undefined }>(
    tracing: Tracing<C>,
    onStart: ((context: C) => void) | undefined,
    onDone: ((context: C) => void) | undefined,
    withHits = true,
  ) => {
    // A synchronous answer is complete at `end`; an asynchronous one (no outcome at `end` yet) at
    // `asyncEnd`. Channels nobody needs stay without subscribers, so publishing on them is free.
    // Without hits, `end` (where only a cache hit ends with an outcome) stays unsubscribed, and a
    // start handler skips hits (complete at `start` already).
    const start =
      onStart === undefined || withHits
        ? onStart
        : (context: C) => {
            if (context.outcome === undefined) onStart(context);
          };
    const subscribers = {
      ...(start === undefined ? {} : { start }),
      ...(onDone === undefined
        ? {}
        : {
            ...(withHits
              ? {
                  end: (context: C) => {
                    if (context.outcome !== undefined) onDone(context);
                  },
                }
              : {}),
            asyncEnd: onDone,
          }),
    };
    // Node subscribes only the handlers given; its types ask for all five.
    const given = subscribers as TracingChannelSubscribers<C>;
    tracing.subscribe(given);
    undo.push(() => tracing.unsubscribe(given));
  };
  for (const operation of OPERATIONS) {
    trace(
      operationChannels[operation],
      handlers.operationStart,
      handlers.operation,
      operation !== 'get' || handlers.cacheHits !== false,
    );
    const { store } = handlers;
    if (store !== undefined) {
      const start = operationChannels[operation].start;
      start.bindStore(store);
      undo.push(() => start.unbindStore(store));
    }
  }
  trace(requestChannel, handlers.requestStart, handlers.request);
  const plain = <E>(target: Channel<E, E>, handler: ((event: E) => void) | undefined) => {
    if (handler === undefined) return;
    // The handler itself (a cache event comes with every read): it ignores the channel's name.
    const listener = handler as (message: unknown) => void;
    target.subscribe(listener);
    undo.push(() => target.unsubscribe(listener));
  };
  plain(cacheChannel, handlers.cache);
  plain(changeChannel, handlers.change);
  return () => {
    for (const step of undo.splice(0)) step();
  };
}
