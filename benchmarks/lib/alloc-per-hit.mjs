// Bytes allocated per cache hit, as a caller awaiting it sees them. Run with --expose-gc and a
// fixed, large young generation (--min-semi-space-size=128 --max-semi-space-size=128) so that no
// scavenge runs inside a measurement: the heap growth across 100,000 hits is then what those
// hits allocated. A sample during which a GC ran anyway is discarded.
import { PerformanceObserver } from 'node:perf_hooks';
import { CachedProvider } from '@secret-provider/core';
import { BaseProvider } from '@secret-provider/core/adapter';
import { LRUCache } from 'lru-cache';
import { median } from './harness.mjs';

const KEYS = 1024;
const HITS = 100_000;
const keys = Array.from({ length: KEYS }, (_, i) => `service/secret-${i}`);
const secretValueFor = (i) => `${'v'.repeat(24)}${String(i).padStart(8, '0')}`;

class Backend extends BaseProvider {
  constructor() {
    super({ name: 'bench-backend' });
  }
  async readSecret(key) {
    return { value: secretValueFor(Number(key.slice(key.lastIndexOf('-') + 1))), metadata: { version: '1' } };
  }
}

const lru = new LRUCache({ max: KEYS * 2, ttl: 300_000 });
for (let i = 0; i < KEYS; i++) lru.set(keys[i], secretValueFor(i));
const leanAsync = async (key) => lru.get(key);
const cached = new CachedProvider(new Backend(), { ttl: 300_000, max: KEYS * 2 });
for (const key of keys) await cached.get(key);

const gcStarts = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcStarts.push(entry.startTime);
}).observe({ entryTypes: ['gc'] });
const settle = () => new Promise((resolve) => setImmediate(resolve));

async function bytesPerHit(fn) {
  const samples = [];
  for (let run = 0; samples.length < 9 && run < 30; run++) {
    for (let i = 0; i < HITS; i++) await fn(keys[i & (KEYS - 1)]); // warm the JIT
    globalThis.gc();
    await settle();
    const start = performance.now();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < HITS; i++) await fn(keys[i & (KEYS - 1)]);
    const grown = process.memoryUsage().heapUsed - before;
    const end = performance.now();
    await settle();
    if (!gcStarts.some((t) => t >= start && t <= end)) samples.push(grown / HITS);
  }
  if (samples.length === 0) throw new Error('a GC ran during every sample');
  return median(samples);
}

const rows = [];
const awaitBytes = await bytesPerHit(() => undefined);
rows.push({ candidate: 'await of nothing (the caller loop alone)', 'bytes/hit': awaitBytes.toFixed(1) });
const lruBytes = await bytesPerHit((key) => lru.get(key));
const leanBytes = await bytesPerHit(leanAsync);
const peekBytes = await bytesPerHit((key) => cached.peek(key));
const getBytes = await bytesPerHit((key) => cached.get(key));
rows.push({ candidate: 'lru-cache get (sync)', 'bytes/hit': lruBytes.toFixed(1) });
rows.push({ candidate: 'async fn around lru-cache get', 'bytes/hit': leanBytes.toFixed(1) });
rows.push({ candidate: 'CachedProvider.peek', 'bytes/hit': peekBytes.toFixed(1) });
rows.push({ candidate: 'CachedProvider.get', 'bytes/hit': getBytes.toFixed(1) });
console.log(JSON.stringify({ rows, get: getBytes, beyondAwait: getBytes - awaitBytes }));
