import { AsyncLocalStorage } from 'node:async_hooks';
import { tracingChannel } from 'node:diagnostics_channel';
import {
  type CacheEvent,
  type ChangeEvent,
  isSecretError,
  type OperationContext,
  ProviderUnavailableError,
  type RequestContext,
  subscribeTelemetry,
  TELEMETRY_CHANNELS,
} from '@secret-provider/core';
import { BaseProvider, type StoredSecret, traceRequest } from '@secret-provider/core/adapter';
import { expectNoLeak, rejection } from '@secret-provider/testing';
import { afterEach, describe, expect, it } from 'vitest';

const VALUE = 'telemetry-value-Xq93zK';

/** A backend whose reads go through `traceRequest`, as an adapter's would. */
class Backend extends BaseProvider {
  readonly data = new Map<string, string>([['db/password', VALUE]]);
  failNext = false;

  constructor(cache = true) {
    super({ name: 'traced', cache });
  }

  protected override readSecret(key: string): Promise<StoredSecret | undefined> {
    return traceRequest(
      { provider: this.name, operation: 'get', key, method: 'GET', target: '/kv/{key}' },
      async (record) => {
        record.correlationId = `req-${key.length}`;
        if (this.failNext) {
          this.failNext = false;
          record.status = 503;
          throw new ProviderUnavailableError(
            { provider: this.name, key, operation: 'get' },
            `down; ${VALUE}`,
          );
        }
        const value = this.data.get(key);
        record.status = value === undefined ? 404 : 200;
        return value === undefined ? undefined : { value, metadata: { version: '7' } };
      },
    );
  }

  protected override async writeSecret(key: string, value: string): Promise<void> {
    this.data.set(key, value);
  }

  protected override async deleteSecret(key: string): Promise<boolean> {
    return this.data.delete(key);
  }

  protected override async listKeys(): Promise<string[]> {
    return [...this.data.keys()];
  }

  protected override hasSecret(key: string): boolean {
    return this.data.has(key);
  }

  announce(key: string): void {
    this.emit('rotated', { provider: this.name, keys: [key], detectedAt: new Date() } as never);
  }

  warn(code: string, message: string): void {
    this.emit('warning', { provider: this.name, code, message, detectedAt: new Date() } as never);
  }
}

function recordAll(store?: AsyncLocalStorage<OperationContext>) {
  const operations: OperationContext[] = [];
  const requests: (RequestContext & { parent?: string | undefined })[] = [];
  const cache: CacheEvent[] = [];
  const changes: ChangeEvent[] = [];
  const stop = subscribeTelemetry({
    operation: (c) => operations.push({ ...c }),
    request: (c) => requests.push({ ...c, parent: store?.getStore()?.operation }),
    cache: (e) => cache.push(e),
    change: (e) => changes.push(e),
    store,
  });
  return { operations, requests, cache, changes, stop };
}

let stops: (() => void)[] = [];
afterEach(() => {
  for (const stop of stops) stop();
  stops = [];
});

describe('telemetry channels', () => {
  it('publish nothing and change nothing without subscribers', async () => {
    const backend = new Backend();
    expect((await backend.get('db/password')).reveal()).toBe(VALUE);
    expect((await backend.get('db/password')).reveal()).toBe(VALUE);
    expect(backend.cacheStats()).toMatchObject({ hits: 1, misses: 1 });
  });

  it('report each operation once with where it was served from, and the requests it made', async () => {
    const store = new AsyncLocalStorage<OperationContext>();
    const seen = recordAll(store);
    stops.push(seen.stop);
    const backend = new Backend();
    await backend.get('db/password');
    await backend.get('db/password');
    const [miss, hit] = seen.operations;
    expect(miss).toMatchObject({
      operation: 'get',
      provider: 'traced',
      key: 'db/password',
      servedFrom: 'backend',
      version: '7',
      outcome: 'ok',
    });
    expect(hit).toMatchObject({ servedFrom: 'cache', outcome: 'ok', version: '7' });
    expect(miss?.durationMs).toBeGreaterThanOrEqual(0);
    expect(seen.requests).toEqual([
      expect.objectContaining({
        operation: 'get',
        key: 'db/password',
        status: 200,
        correlationId: 'req-11',
        outcome: 'ok',
        parent: 'get',
      }),
    ]);
    expect(seen.cache.map((e) => e.result)).toEqual(['miss', 'hit']);
    expect(seen.cache[1]).toMatchObject({ provider: 'traced', key: 'db/password', size: 1 });
  });

  it('report failures by code, synchronous answers at end, and changes by name', async () => {
    const seen = recordAll();
    stops.push(seen.stop);
    const backend = new Backend(false);
    backend.failNext = true;
    const failure = await rejection(backend.get('db/password'));
    expect(isSecretError(failure, 'UNAVAILABLE')).toBe(true);
    expect(isSecretError(await rejection(backend.get('missing')), 'NOT_FOUND')).toBe(true);
    expect(backend.has('db/password')).toBe(true);
    await backend.set('other', VALUE);
    await backend.delete('other');
    expect(await backend.keys()).toEqual(['db/password']);
    expect(isSecretError(await rejection(backend.get('')), 'INVALID_KEY')).toBe(true);
    backend.announce('db/password');
    expect(seen.operations.map((c) => [c.operation, c.outcome, c.errorCode])).toEqual([
      ['get', 'error', 'UNAVAILABLE'],
      ['get', 'error', 'NOT_FOUND'],
      ['has', 'ok', undefined],
      ['set', 'ok', undefined],
      ['delete', 'ok', undefined],
      ['keys', 'ok', undefined],
      ['get', 'error', 'INVALID_KEY'],
    ]);
    expect(seen.operations[0]).toMatchObject({ retryable: true, servedFrom: 'backend' });
    expect(seen.operations[2]).toMatchObject({ found: true });
    expect(seen.operations[5]).toMatchObject({ count: 1 });
    expect(seen.requests.map((r) => [r.status, r.outcome, r.errorCode])).toEqual([
      [503, 'error', 'UNAVAILABLE'],
      [404, 'ok', undefined],
    ]);
    expect(seen.changes).toEqual([{ provider: 'traced', type: 'rotated', keys: ['db/password'] }]);
    expectNoLeak([seen.operations, seen.requests, seen.cache, seen.changes], [VALUE], { encodings: true });
  });

  it('report warnings by code only, and a code that is not an identifier as OTHER', () => {
    const seen = recordAll();
    const provider = new Backend();
    provider.warn('TOKEN_EXPIRING', `the token ends soon ${VALUE}`);
    provider.warn(`bad code ${VALUE}`, 'text');
    expect(seen.changes).toEqual([
      { provider: 'traced', type: 'warning', keys: [], warningCode: 'TOKEN_EXPIRING' },
      { provider: 'traced', type: 'warning', keys: [], warningCode: 'OTHER' },
    ]);
    expectNoLeak([seen.changes], [VALUE], { encodings: true });
    seen.stop();
  });

  it('leave cache hits to the cache channel with cacheHits: false, and the get channel without end subscribers', async () => {
    const started: OperationContext[] = [];
    const done: OperationContext[] = [];
    const cache: CacheEvent[] = [];
    const get = tracingChannel(`${TELEMETRY_CHANNELS.operationPrefix}get`);
    const stopMetrics = subscribeTelemetry({
      cacheHits: false,
      operation: (c) => done.push({ ...c }),
      cache: (e) => cache.push(e),
    });
    stops.push(stopMetrics);
    // Nothing listens where a hit would be published: it builds no context.
    expect(get.start.hasSubscribers || get.end.hasSubscribers).toBe(false);
    const backend = new Backend();
    await backend.get('db/password');
    await backend.get('db/password');
    await backend.set('db/password', 'other');
    await backend.get('db/password');
    expect(done.map((c) => [c.operation, c.servedFrom])).toEqual([
      ['get', 'backend'],
      ['set', undefined],
      ['get', 'backend'],
    ]);
    expect(cache.map((e) => e.result)).toEqual(['miss', 'hit', 'eviction', 'miss']);
    // With a start handler, hits still do not reach it (nor the end handler).
    const stopSpans = subscribeTelemetry({
      cacheHits: false,
      operationStart: (c) => started.push({ ...c }),
      operation: (c) => done.push({ ...c }),
    });
    stops.push(stopSpans);
    done.length = 0;
    await backend.get('db/password');
    await backend.get('db/password', { forceFetch: true });
    expect(started.map((c) => [c.operation, c.servedFrom])).toEqual([['get', undefined]]);
    expect(done.map((c) => c.servedFrom)).toEqual(['backend', 'backend']);
    expect(get.end.hasSubscribers).toBe(false);
  });

  it('name a version read by its key in cache events, before and after the version is held', async () => {
    class Versioned extends BaseProvider {
      constructor() {
        super({ name: 'versioned', cache: true, capabilities: { versions: true } });
      }
      protected override async readSecret(
        _key: string,
        context: { version?: string | undefined },
      ): Promise<StoredSecret> {
        return { value: VALUE, metadata: { version: context.version ?? 'latest' } };
      }
    }
    const seen = recordAll();
    stops.push(seen.stop);
    const backend = new Versioned();
    await backend.get('db/password', { version: '3' });
    await backend.get('db/password', { version: '3' });
    await backend.get('db/password');
    await backend.get('db/password');
    backend.invalidate('db/password');
    expect(seen.cache.map((e) => [e.result, e.key])).toEqual([
      ['miss', 'db/password'],
      ['hit', 'db/password'],
      ['miss', 'db/password'],
      ['hit', 'db/password'],
      ['eviction', 'db/password'],
      ['eviction', 'db/password'],
    ]);
    expect(seen.operations.map((c) => [c.servedFrom, c.version])).toEqual([
      ['backend', '3'],
      ['cache', '3'],
      ['backend', 'latest'],
      ['cache', 'latest'],
    ]);
  });

  it('report coalesced reads, evictions by reason and stop when unsubscribed', async () => {
    const seen = recordAll();
    const backend = new Backend();
    await Promise.all([backend.get('db/password'), backend.get('db/password')]);
    backend.invalidate('db/password');
    seen.stop();
    await backend.get('db/password');
    expect(seen.operations.map((c) => c.servedFrom)).toEqual(['backend', 'coalesced']);
    expect(seen.cache.map((e) => [e.result, e.reason])).toEqual([
      ['miss', undefined],
      ['coalesced', undefined],
      ['eviction', 'invalidated'],
    ]);
  });
});
