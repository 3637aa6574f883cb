import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { loadConfig, type SecretProviderConfig } from '@secret-provider/config';
import { FileProvider } from '@secret-provider/file';
import { expectNoLeak, tempDir } from '@secret-provider/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const VALUE = 'telemetry-value-Jr5nW8qa';

let temp: { dir: string; remove: () => void };
let cleanup: (() => Promise<void>)[] = [];
beforeEach(() => {
  temp = tempDir('secret-provider-config-telemetry-');
  mkdirSync(join(temp.dir, 'volume'));
  writeFileSync(join(temp.dir, 'volume', 'db-password'), VALUE, { mode: 0o600 });
});
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
  temp.remove();
});

function exporters() {
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({
    exporter: metricExporter,
    exportIntervalMillis: 3_600_000,
  });
  const meterProvider = new MeterProvider({ readers: [reader] });
  cleanup.push(async () => {
    await meterProvider.shutdown();
    await tracerProvider.shutdown();
  });
  const metricNames = async () => {
    await reader.forceFlush();
    const all = metricExporter.getMetrics();
    return (all[all.length - 1]?.scopeMetrics ?? [])
      .flatMap((scope) => scope.metrics)
      .filter((m) => m.dataPoints.length > 0)
      .map((m) => m.descriptor.name);
  };
  return { tracerProvider, meterProvider, spans, metricNames };
}

const config = (telemetry: SecretProviderConfig['telemetry']): SecretProviderConfig => ({
  providers: [{ name: 'files', type: 'file', path: join(temp.dir, 'volume'), format: 'directory' }],
  ...(telemetry === undefined ? {} : { telemetry }),
});

describe('telemetry section', () => {
  it('enabled: a get through the loaded config makes spans and metrics; after close, none', async () => {
    const { tracerProvider, meterProvider, spans, metricNames } = exporters();
    const loaded = await loadConfig(config({ enabled: true }), { env: {}, tracerProvider, meterProvider });
    expect((await loaded.provider.get('db-password')).reveal()).toBe(VALUE);
    const names = spans.getFinishedSpans().map((s) => s.name);
    expect(names).toContain('secret_provider.get');
    const providers = spans.getFinishedSpans().map((s) => s.attributes['secret_provider.provider']);
    expect(providers).toContain('files');
    expect(await metricNames()).toContain('secret_provider.operation.duration');
    expectNoLeak(
      [spans.getFinishedSpans().map((s) => ({ name: s.name, attributes: s.attributes }))],
      [VALUE],
    );

    await loaded.close();
    spans.reset();
    // Instrumentation is process-wide while on; after close a provider of the process records nothing.
    const other = new FileProvider({ name: 'other', path: join(temp.dir, 'volume'), format: 'directory' });
    cleanup.push(() => other.close());
    await other.get('db-password');
    expect(spans.getFinishedSpans()).toEqual([]);
  });

  it('two configurations with the same settings share one instrumentation, on until both close', async () => {
    const { tracerProvider, meterProvider, spans } = exporters();
    const first = await loadConfig(config({ enabled: true }), { env: {}, tracerProvider, meterProvider });
    const second = await loadConfig(config({ enabled: true }), { env: {}, tracerProvider, meterProvider });
    const gets = () => spans.getFinishedSpans().filter((s) => s.name === 'secret_provider.get');
    await first.provider.get('db-password');
    // One span per get of each provider the chain asked, not one per loaded configuration.
    const once = gets().length;
    expect(once).toBeGreaterThan(0);
    spans.reset();
    await first.close();
    await second.provider.get('db-password');
    expect(gets()).toHaveLength(once);
    spans.reset();
    await second.close();
    await second.close(); // closing twice does not stop it for anyone else
    const other = new FileProvider({ name: 'other', path: join(temp.dir, 'volume'), format: 'directory' });
    cleanup.push(() => other.close());
    await other.get('db-password');
    expect(spans.getFinishedSpans()).toEqual([]);
  });

  it('traces: false and metrics: false turn each half off', async () => {
    const { tracerProvider, meterProvider, spans, metricNames } = exporters();
    await using loaded = await loadConfig(config({ enabled: true, traces: false }), {
      env: {},
      tracerProvider,
      meterProvider,
    });
    await loaded.provider.get('db-password');
    expect(spans.getFinishedSpans()).toEqual([]);
    expect(await metricNames()).toContain('secret_provider.operation.duration');
  });

  it('disabled or absent: no span and no metric', async () => {
    for (const telemetry of [{ enabled: false }, undefined]) {
      const { tracerProvider, meterProvider, spans, metricNames } = exporters();
      await using loaded = await loadConfig(config(telemetry), { env: {}, tracerProvider, meterProvider });
      await loaded.provider.get('db-password');
      expect(spans.getFinishedSpans()).toEqual([]);
      expect(await metricNames()).toEqual([]);
    }
  });
});
