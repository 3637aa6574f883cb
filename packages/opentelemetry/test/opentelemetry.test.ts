import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { CachedProvider, isSecretError } from '@secret-provider/core';
import { VaultDouble } from '@secret-provider/doubles/vault';
import { instrumentSecretProvider } from '@secret-provider/opentelemetry';
import { expectNoLeak, rejection } from '@secret-provider/testing';
import { VaultProvider } from '@secret-provider/vault';
import { afterEach, describe, expect, it } from 'vitest';

const PASSWORD = 'otel-pass-Wm4rT8qZ';
const FAULT_TEXT = 'backend-echo-Hn2pX7vc';

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

async function instrumented(options: { traces?: boolean } = {}) {
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const metricsExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({
    exporter: metricsExporter,
    exportIntervalMillis: 3_600_000,
  });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const stop = instrumentSecretProvider({ tracerProvider, meterProvider, ...options });
  cleanup.push(async () => {
    stop();
    await meterProvider.shutdown();
    await tracerProvider.shutdown();
  });
  const collect = async (): Promise<ResourceMetrics> => {
    await reader.forceFlush();
    const all = metricsExporter.getMetrics();
    return all[all.length - 1] as ResourceMetrics;
  };
  return { spans: () => spans.getFinishedSpans(), collect };
}

function metric(resource: ResourceMetrics, name: string) {
  return resource.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
}

function points(
  resource: ResourceMetrics,
  name: string,
): { attributes: Record<string, unknown>; value: unknown }[] {
  return (metric(resource, name)?.dataPoints ?? []).map((p) => ({
    attributes: p.attributes,
    value: p.value,
  }));
}

async function vaultOnDouble() {
  const double = await VaultDouble.start();
  const token = double.createToken({ ttl: 600 }).id;
  const provider = new VaultProvider({
    endpoint: double.url,
    auth: { method: 'token', token },
    env: {},
    cache: true,
    retry: { retries: 0, baseDelayMs: 5, maxDelayMs: 20 },
  });
  cleanup.push(async () => {
    await provider.close();
    await double.close();
  });
  return { double, provider, token };
}

describe('OpenTelemetry from the channels', () => {
  it('makes a span per operation with its requests as children, carrying Vault request ids', async () => {
    const otel = await instrumented();
    const { double, provider } = await vaultOnDouble();
    double.kvPut('secret', 'app/db', { password: PASSWORD });
    expect((await provider.get('secret/app/db#password')).reveal()).toBe(PASSWORD);
    expect((await provider.get('secret/app/db#password')).reveal()).toBe(PASSWORD);
    const spans = otel.spans();
    const gets = spans.filter((s) => s.name === 'secret_provider.get');
    expect(gets.map((s) => s.attributes['secret_provider.served_from'])).toEqual(['backend', 'cache']);
    const read = spans.find(
      (s) =>
        s.name === 'secret_provider.request get' &&
        s.attributes['secret_provider.key'] === 'secret/app/db#password',
    ) as ReadableSpan;
    expect(read.parentSpanContext?.spanId).toBe(gets[0]?.spanContext().spanId);
    expect(read.attributes['secret_provider.request_id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(read.attributes['http.response.status_code']).toBe(200);
    const auth = spans.find((s) => s.name === 'secret_provider.request auth');
    expect(auth?.attributes['secret_provider.outcome']).toBe('ok');
  });

  it('records metrics, and no span or metric holds a value over a fault run', async () => {
    const otel = await instrumented();
    const { double, provider, token } = await vaultOnDouble();
    double.kvPut('secret', 'app/db', { password: PASSWORD });
    double.addDatabaseRole('app', { ttl: 300, maxTtl: 1800, renewable: true });
    await provider.get('secret/app/db#password');
    await provider.get('secret/app/db#password');
    const dynamic = await provider.get('database/creds/app#password');
    // Faults whose bodies quote values, as a proxy or a misbehaving backend might.
    double.fail({
      kind: 'status',
      status: 500,
      body: { errors: [`${FAULT_TEXT} ${PASSWORD}`] },
      match: 'secret/data/app/other',
    });
    expect(isSecretError(await rejection(provider.get('secret/app/other#x')), 'UNAVAILABLE')).toBe(true);
    double.fail({
      kind: 'status',
      status: 403,
      body: { errors: ['1 error occurred:\n\t* permission denied\n\n'] },
      match: 'secret/data/app/denied',
    });
    expect(isSecretError(await rejection(provider.get('secret/app/denied#x')), 'ACCESS_DENIED')).toBe(true);
    double.fail({ kind: 'reset', match: 'secret/data/app/reset' });
    expect(isSecretError(await rejection(provider.get('secret/app/reset#x')))).toBe(true);
    expect(isSecretError(await rejection(provider.get('secret/app/missing#x')), 'NOT_FOUND')).toBe(true);
    await provider.set('secret/app/new#password', PASSWORD);
    provider.invalidate('secret/app/db#password');

    const resource = await otel.collect();
    expect(points(resource, 'secret_provider.cache.requests')).toEqual(
      expect.arrayContaining([
        {
          attributes: { 'secret_provider.provider': provider.name, 'secret_provider.cache.result': 'hit' },
          value: 1,
        },
      ]),
    );
    expect(points(resource, 'secret_provider.cache.evictions')).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          attributes: expect.objectContaining({ 'secret_provider.cache.reason': 'invalidated' }),
        }),
      ]),
    );
    expect(points(resource, 'secret_provider.cache.entries').length).toBe(1);
    const durations = points(resource, 'secret_provider.operation.duration').map((p) => p.attributes);
    expect(durations).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ 'secret_provider.operation': 'get', 'error.type': 'UNAVAILABLE' }),
        expect.objectContaining({ 'secret_provider.operation': 'get', 'error.type': 'ACCESS_DENIED' }),
        expect.objectContaining({ 'secret_provider.operation': 'set', 'secret_provider.outcome': 'ok' }),
      ]),
    );
    expect(points(resource, 'secret_provider.auth.attempts')).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ attributes: expect.objectContaining({ 'secret_provider.outcome': 'ok' }) }),
      ]),
    );
    const lease = points(resource, 'secret_provider.lease.time_to_expiry');
    expect(lease).toHaveLength(1);
    expect(lease[0]?.value).toBeGreaterThan(200);
    expect(lease[0]?.value).toBeLessThanOrEqual(300);
    const tokenLeft = points(resource, 'secret_provider.token.time_to_expiry');
    expect(tokenLeft[0]?.value).toBeGreaterThan(500);

    const spans = otel.spans();
    expect(spans.some((s) => s.status.code === 2 && s.attributes['error.type'] === 'UNAVAILABLE')).toBe(true);
    const values = [PASSWORD, FAULT_TEXT, token, dynamic.reveal()];
    const spanViews = spans.map((s) => ({
      name: s.name,
      attributes: s.attributes,
      status: s.status,
      events: s.events,
      links: s.links,
    }));
    expectNoLeak([spanViews, resource], values, { encodings: true });
  });

  it('counts a lease revocation apart from its renewals', async () => {
    const otel = await instrumented();
    const { double, provider } = await vaultOnDouble();
    double.addDatabaseRole('app', { ttl: 300, maxTtl: 1800, renewable: true });
    await provider.get('database/creds/app#password');
    await provider.close(); // revokes the live lease (`leases.onClose` defaults to 'revoke')
    expect(double.requests.some((r) => r.path === 'sys/leases/revoke')).toBe(true);
    const resource = await otel.collect();
    expect(points(resource, 'secret_provider.lease.renewals')).toEqual([]);
    const revoke = otel.spans().find((s) => s.name === 'secret_provider.request revoke');
    expect(revoke?.attributes['secret_provider.outcome']).toBe('ok');
  });

  it('with metrics only, counts hits of both kinds of cache by provider and times only the reads that missed', async () => {
    const otel = await instrumented({ traces: false });
    const { double, provider } = await vaultOnDouble();
    double.kvPut('secret', 'app/db', { password: PASSWORD });
    const wrapped = new CachedProvider(provider, { name: 'front', ownsProvider: false });
    cleanup.push(() => wrapped.close());
    for (let i = 0; i < 3; i++) await provider.get('secret/app/db#password');
    for (let i = 0; i < 2; i++) await wrapped.get('secret/app/db#password');
    const resource = await otel.collect();
    const reads = (name: string) =>
      Object.fromEntries(
        points(resource, 'secret_provider.cache.requests')
          .filter((p) => p.attributes['secret_provider.provider'] === name)
          .map((p) => [p.attributes['secret_provider.cache.result'], p.value]),
      );
    expect(reads(provider.name)).toEqual({ miss: 1, hit: 3 });
    expect(reads('front')).toEqual({ miss: 1, hit: 1 });
    const durations = points(resource, 'secret_provider.operation.duration');
    expect(durations.map((p) => p.attributes)).toEqual([
      {
        'secret_provider.provider': provider.name,
        'secret_provider.operation': 'get',
        'secret_provider.outcome': 'ok',
        'secret_provider.served_from': 'backend',
      },
    ]);
    expect(otel.spans()).toHaveLength(0);
  });

  it('stops when told', async () => {
    const otel = await instrumented();
    const { double, provider } = await vaultOnDouble();
    double.kvPut('secret', 'app/db', { password: PASSWORD });
    const stop = cleanup[0];
    await stop?.();
    cleanup.shift();
    await provider.get('secret/app/db#password');
    expect(otel.spans()).toHaveLength(0);
  });
});
