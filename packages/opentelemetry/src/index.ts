// Spans and metrics from core's diagnostics channels. Everything recorded comes from the
// channels' contexts, which hold names, codes and numbers only, so no span or metric attribute
// can carry a secret value.
import { AsyncLocalStorage } from 'node:async_hooks';
import {
  type Attributes,
  type Context,
  type Meter,
  type MeterProvider,
  metrics,
  type ObservableResult,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  context as telemetryContext,
  trace,
} from '@opentelemetry/api';
import {
  type CacheEvent,
  type ChangeEvent,
  type OperationContext,
  type RequestContext,
  subscribeTelemetry,
} from '@secret-provider/core';

/** The instrumentation scope name of every tracer and meter made here. */
export const INSTRUMENTATION_NAME = '@secret-provider/opentelemetry';

/** Options of {@link instrumentSecretProvider}. */
export interface SecretProviderInstrumentationOptions {
  /** Where spans go. @default the global tracer provider */
  readonly tracerProvider?: TracerProvider | undefined;
  /** Where metrics go. @default the global meter provider */
  readonly meterProvider?: MeterProvider | undefined;
  /** Make spans of operations and backend requests. @default true */
  readonly traces?: boolean | undefined;
  /** Record metrics. @default true */
  readonly metrics?: boolean | undefined;
  /**
   * Put the key (a secret's name, never its value) on spans. Metrics never carry keys, except
   * the lease expiry gauge, which is per lease. @default true
   */
  readonly keyAttribute?: boolean | undefined;
  /** Epoch milliseconds, for the expiry gauges (tests). @default Date.now */
  readonly now?: (() => number) | undefined;
}

/** Attribute names used on spans and metrics. */
export const ATTRIBUTES = {
  provider: 'secret_provider.provider',
  operation: 'secret_provider.operation',
  key: 'secret_provider.key',
  servedFrom: 'secret_provider.served_from',
  version: 'secret_provider.version',
  outcome: 'secret_provider.outcome',
  result: 'secret_provider.cache.result',
  reason: 'secret_provider.cache.reason',
  change: 'secret_provider.change',
  requestId: 'secret_provider.request_id',
  clientRequestId: 'secret_provider.client_request_id',
  attempt: 'secret_provider.attempt',
  errorType: 'error.type',
  method: 'http.request.method',
  urlTemplate: 'url.template',
  status: 'http.response.status_code',
} as const;

/**
 * Turns core's diagnostics channels into OpenTelemetry spans and metrics, for every provider
 * of the process (built on `BaseProvider`, or wrapped in a `CachedProvider`). Returns the
 * function that stops it.
 *
 * Metrics (`secret_provider.*`): `operation.duration` (histogram, s; every operation except a
 * `get` answered synchronously by a fresh cache entry, which `cache.requests{result=hit}`
 * counts: the hot path stays a map lookup), `cache.requests` by result, `cache.evictions` by
 * reason, `cache.entries`, `changes` by type (rotated/added/removed, and watch `error`s),
 * `request.duration` (histogram, s), `lease.renewals` and `auth.attempts` by outcome,
 * `lease.time_to_expiry` and `token.time_to_expiry` (gauges, s).
 *
 * @example
 * ```ts
 * const stop = instrumentSecretProvider();
 * // ... on shutdown
 * stop();
 * ```
 */
export function instrumentSecretProvider(options: SecretProviderInstrumentationOptions = {}): () => void {
  const tracer =
    options.traces === false
      ? undefined
      : (options.tracerProvider ?? trace.getTracerProvider()).getTracer(INSTRUMENTATION_NAME);
  const meter =
    options.metrics === false
      ? undefined
      : (options.meterProvider ?? metrics.getMeterProvider()).getMeter(INSTRUMENTATION_NAME);
  const recorder = meter === undefined ? undefined : new MetricRecorder(meter, options.now ?? Date.now);
  const spans = tracer === undefined ? undefined : new SpanRecorder(tracer, options.keyAttribute !== false);
  const stop = subscribeTelemetry({
    store: spans?.store,
    // Metrics count hits from the cache channel; only spans need a hit as an operation.
    cacheHits: spans !== undefined,
    operationStart: spans === undefined ? undefined : (c) => spans.start(c),
    operation: (c) => {
      spans?.end(c);
      recorder?.operation(c);
    },
    requestStart: spans === undefined ? undefined : (c) => spans.startRequest(c),
    request: (c) => {
      spans?.endRequest(c);
      recorder?.request(c);
    },
    cache: recorder === undefined ? undefined : (e) => recorder.cache(e),
    change: recorder === undefined ? undefined : (e) => recorder.change(e),
  });
  return () => {
    stop();
    recorder?.stop();
  };
}

class SpanRecorder {
  readonly store = new AsyncLocalStorage<OperationContext>();
  readonly #tracer: Tracer;
  readonly #keys: boolean;
  readonly #spans = new WeakMap<object, Span>();

  constructor(tracer: Tracer, keys: boolean) {
    this.#tracer = tracer;
    this.#keys = keys;
  }

  start(context: OperationContext): void {
    const attributes: Attributes = {
      [ATTRIBUTES.provider]: context.provider,
      [ATTRIBUTES.operation]: context.operation,
    };
    if (this.#keys && context.key !== undefined) attributes[ATTRIBUTES.key] = context.key;
    this.#spans.set(
      context,
      this.#tracer.startSpan(
        `secret_provider.${context.operation}`,
        { kind: SpanKind.INTERNAL, attributes },
        telemetryContext.active(),
      ),
    );
  }

  end(context: OperationContext): void {
    const span = this.#spans.get(context);
    if (span === undefined) return;
    this.#spans.delete(context);
    if (context.servedFrom !== undefined) span.setAttribute(ATTRIBUTES.servedFrom, context.servedFrom);
    if (context.version !== undefined) span.setAttribute(ATTRIBUTES.version, context.version);
    finish(span, context);
  }

  startRequest(request: RequestContext): void {
    const parent = this.store.getStore();
    const parentSpan = parent === undefined ? undefined : this.#spans.get(parent);
    const active: Context = telemetryContext.active();
    const attributes: Attributes = {
      [ATTRIBUTES.provider]: request.provider,
      [ATTRIBUTES.operation]: request.operation,
    };
    if (this.#keys && request.key !== undefined) attributes[ATTRIBUTES.key] = request.key;
    if (request.method !== undefined) attributes[ATTRIBUTES.method] = request.method;
    if (request.target !== undefined) attributes[ATTRIBUTES.urlTemplate] = request.target;
    if (request.attempt !== undefined) attributes[ATTRIBUTES.attempt] = request.attempt;
    this.#spans.set(
      request,
      this.#tracer.startSpan(
        `secret_provider.request ${request.operation}`,
        { kind: SpanKind.CLIENT, attributes },
        parentSpan === undefined ? active : trace.setSpan(active, parentSpan),
      ),
    );
  }

  endRequest(request: RequestContext): void {
    const span = this.#spans.get(request);
    if (span === undefined) return;
    this.#spans.delete(request);
    if (request.status !== undefined) span.setAttribute(ATTRIBUTES.status, request.status);
    if (request.correlationId !== undefined) span.setAttribute(ATTRIBUTES.requestId, request.correlationId);
    if (request.clientRequestId !== undefined)
      span.setAttribute(ATTRIBUTES.clientRequestId, request.clientRequestId);
    finish(span, request);
  }
}

function finish(span: Span, context: OperationContext | RequestContext): void {
  span.setAttribute(ATTRIBUTES.outcome, context.outcome ?? 'ok');
  if (context.outcome === 'error') {
    // The code only: an error's message is not the product's to pass on.
    span.setAttribute(ATTRIBUTES.errorType, context.errorCode ?? 'UNKNOWN');
    span.setStatus({ code: SpanStatusCode.ERROR, message: context.errorCode ?? 'UNKNOWN' });
  }
  span.end();
}

/** Per provider, plain counters the observable instruments read at collection. */
class CacheCounts {
  hit = 0;
  miss = 0;
  stale = 0;
  coalesced = 0;
  negative = 0;
  evictedSize = 0;
  evictedInvalidated = 0;
  size = 0;
  /** Attributes of each reading, made once per provider. */
  readonly attributes: {
    readonly provider: Attributes;
    readonly results: readonly [CacheRead, Attributes][];
    readonly size: Attributes;
    readonly invalidated: Attributes;
  };

  constructor(provider: string) {
    const results = (['hit', 'miss', 'stale', 'coalesced', 'negative'] as const).map(
      (result): [CacheRead, Attributes] => [
        result,
        { [ATTRIBUTES.provider]: provider, [ATTRIBUTES.result]: result },
      ],
    );
    this.attributes = {
      provider: { [ATTRIBUTES.provider]: provider },
      results,
      size: { [ATTRIBUTES.provider]: provider, [ATTRIBUTES.reason]: 'size' },
      invalidated: { [ATTRIBUTES.provider]: provider, [ATTRIBUTES.reason]: 'invalidated' },
    };
  }
}

type CacheRead = Exclude<CacheEvent['result'], 'eviction'>;

class MetricRecorder {
  readonly #now: () => number;
  readonly #operationDuration;
  readonly #requestDuration;
  readonly #changes;
  readonly #renewals;
  readonly #auth;
  // Cache reads are the hot path: counted in plain numbers, reported at collection.
  readonly #cache = new Map<string, CacheCounts>();
  /** The counts of the provider of the last cache event: reads come in runs of one provider. */
  #last: CacheCounts | undefined;
  #lastProvider: string | undefined;
  /** provider -> key -> epoch ms the lease ends. */
  readonly #leases = new Map<string, Map<string, number>>();
  /** provider -> epoch ms the token ends. */
  readonly #tokens = new Map<string, number>();
  readonly #stop: () => void;

  constructor(meter: Meter, now: () => number) {
    this.#now = now;
    this.#operationDuration = meter.createHistogram('secret_provider.operation.duration', {
      unit: 's',
      description:
        'Duration of provider operations (a get answered by a fresh cache entry is counted by cache.requests instead)',
    });
    this.#requestDuration = meter.createHistogram('secret_provider.request.duration', {
      unit: 's',
      description: 'Duration of backend requests',
    });
    this.#changes = meter.createCounter('secret_provider.changes', {
      description: 'Keys reported rotated, added or removed, and watch errors',
    });
    this.#renewals = meter.createCounter('secret_provider.lease.renewals', {
      description: 'Lease renewal requests, by outcome',
    });
    this.#auth = meter.createCounter('secret_provider.auth.attempts', {
      description: 'Authentication requests (login, token lookup and renewal), by outcome',
    });
    const requests = meter.createObservableCounter('secret_provider.cache.requests', {
      description: 'Cache reads, by result',
    });
    const evictions = meter.createObservableCounter('secret_provider.cache.evictions', {
      description: 'Entries removed from a cache, by reason',
    });
    const entries = meter.createObservableGauge('secret_provider.cache.entries', {
      description: 'Entries held by a cache',
    });
    const leaseExpiry = meter.createObservableGauge('secret_provider.lease.time_to_expiry', {
      unit: 's',
      description: 'Time left on each lease granted',
    });
    const tokenExpiry = meter.createObservableGauge('secret_provider.token.time_to_expiry', {
      unit: 's',
      description: 'Time left on the token in use',
    });
    const observeRequests = (result: ObservableResult) => {
      for (const counts of this.#cache.values())
        for (const [name, attributes] of counts.attributes.results)
          if (counts[name] > 0) result.observe(counts[name], attributes);
    };
    const observeEvictions = (result: ObservableResult) => {
      for (const counts of this.#cache.values()) {
        if (counts.evictedSize > 0) result.observe(counts.evictedSize, counts.attributes.size);
        if (counts.evictedInvalidated > 0)
          result.observe(counts.evictedInvalidated, counts.attributes.invalidated);
      }
    };
    const observeEntries = (result: ObservableResult) => {
      for (const counts of this.#cache.values()) result.observe(counts.size, counts.attributes.provider);
    };
    const observeLeases = (result: ObservableResult) => {
      const now = this.#now();
      for (const [provider, leases] of this.#leases)
        for (const [key, until] of leases)
          result.observe(Math.max(0, (until - now) / 1000), {
            [ATTRIBUTES.provider]: provider,
            [ATTRIBUTES.key]: key,
          });
    };
    const observeTokens = (result: ObservableResult) => {
      const now = this.#now();
      for (const [provider, until] of this.#tokens)
        result.observe(Math.max(0, (until - now) / 1000), { [ATTRIBUTES.provider]: provider });
    };
    requests.addCallback(observeRequests);
    evictions.addCallback(observeEvictions);
    entries.addCallback(observeEntries);
    leaseExpiry.addCallback(observeLeases);
    tokenExpiry.addCallback(observeTokens);
    this.#stop = () => {
      requests.removeCallback(observeRequests);
      evictions.removeCallback(observeEvictions);
      entries.removeCallback(observeEntries);
      leaseExpiry.removeCallback(observeLeases);
      tokenExpiry.removeCallback(observeTokens);
    };
  }

  stop(): void {
    this.#stop();
  }

  operation(context: OperationContext): void {
    if (context.operation === 'get' && context.servedFrom === 'cache') return;
    // A fresh object per reading: the SDK hashes the attributes of every reading anyway.
    const attributes: Attributes = {
      [ATTRIBUTES.provider]: context.provider,
      [ATTRIBUTES.operation]: context.operation,
      [ATTRIBUTES.outcome]: context.outcome ?? 'ok',
    };
    if (context.servedFrom !== undefined) attributes[ATTRIBUTES.servedFrom] = context.servedFrom;
    if (context.errorCode !== undefined) attributes[ATTRIBUTES.errorType] = context.errorCode;
    this.#operationDuration.record((context.durationMs ?? 0) / 1000, attributes);
  }

  request(request: RequestContext): void {
    const attributes: Attributes = {
      [ATTRIBUTES.provider]: request.provider,
      [ATTRIBUTES.operation]: request.operation,
      [ATTRIBUTES.outcome]: request.outcome ?? 'ok',
    };
    if (request.errorCode !== undefined) attributes[ATTRIBUTES.errorType] = request.errorCode;
    if (request.status !== undefined) attributes[ATTRIBUTES.status] = request.status;
    this.#requestDuration.record((request.durationMs ?? 0) / 1000, attributes);
    const outcome: Attributes = {
      [ATTRIBUTES.provider]: request.provider,
      [ATTRIBUTES.outcome]: request.outcome ?? 'ok',
    };
    if (request.errorCode !== undefined) outcome[ATTRIBUTES.errorType] = request.errorCode;
    if (request.operation === 'renew') this.#renewals.add(1, outcome);
    if (request.operation === 'auth') this.#auth.add(1, outcome);
    const now = this.#now();
    if (request.leaseDurationS !== undefined && request.leaseDurationS > 0 && request.key !== undefined) {
      let leases = this.#leases.get(request.provider);
      if (leases === undefined) {
        leases = new Map();
        this.#leases.set(request.provider, leases);
      }
      leases.set(request.key, now + request.leaseDurationS * 1000);
    }
    if (request.tokenTtlS !== undefined) this.#tokens.set(request.provider, now + request.tokenTtlS * 1000);
  }

  /** Called for every cache read: no allocation, no lookup while one provider reads in a run. */
  cache(event: CacheEvent): void {
    let counts = this.#last;
    if (counts === undefined || event.provider !== this.#lastProvider) {
      counts = this.#cache.get(event.provider);
      if (counts === undefined) {
        counts = new CacheCounts(event.provider);
        this.#cache.set(event.provider, counts);
      }
      this.#last = counts;
      this.#lastProvider = event.provider;
    }
    counts.size = event.size;
    switch (event.result) {
      case 'hit':
        counts.hit++;
        break;
      case 'miss':
        counts.miss++;
        break;
      case 'stale':
        counts.stale++;
        break;
      case 'coalesced':
        counts.coalesced++;
        break;
      case 'negative':
        counts.negative++;
        break;
      case 'eviction':
        if (event.reason === 'size') counts.evictedSize++;
        else counts.evictedInvalidated++;
        break;
    }
  }

  change(event: ChangeEvent): void {
    if (event.type === 'warning') return; // a warning is no change (the audit records them)
    this.#changes.add(event.type === 'error' ? 1 : event.keys.length, {
      [ATTRIBUTES.provider]: event.provider,
      [ATTRIBUTES.change]: event.type,
    });
  }
}
