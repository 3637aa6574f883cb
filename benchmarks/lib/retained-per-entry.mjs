// Retained heap per cached secret (value plus metadata) against one Map<string, string> entry,
// both holding freshly made key and value strings. Run with --expose-gc.
import { CachedProvider } from '@secret-provider/core';
import { BaseProvider } from '@secret-provider/core/adapter';
import { median } from './harness.mjs';

const N = 10_000;
const makeKey = (i) => `service/secret-${String(i).padStart(6, '0')}`;
const makeValue = (i) => `${'v'.repeat(24)}${String(i).padStart(8, '0')}`;

class Backend extends BaseProvider {
  constructor() {
    super({ name: 'bench-backend' });
  }
  async readSecret(key) {
    // A fresh value string each time, as a backend response parsed into a string would be.
    return {
      value: makeValue(Number(key.slice(-6)))
        .split('')
        .join(''),
      metadata: { version: '1' },
    };
  }
}

async function retained(build) {
  globalThis.gc();
  globalThis.gc();
  const before = process.memoryUsage().heapUsed;
  const held = await build();
  globalThis.gc();
  globalThis.gc();
  const after = process.memoryUsage().heapUsed;
  if (held === undefined) throw new Error('nothing held');
  return { bytes: (after - before) / N, held };
}

const mapSamples = [];
const cacheSamples = [];
for (let run = 0; run < 5; run++) {
  const map = await retained(async () => {
    const m = new Map();
    for (let i = 0; i < N; i++) m.set(makeKey(i).split('').join(''), makeValue(i).split('').join(''));
    return m;
  });
  mapSamples.push(map.bytes);
  const backend = new Backend();
  const cache = await retained(async () => {
    const c = new CachedProvider(backend, { ttl: 300_000, max: N });
    for (let i = 0; i < N; i++) await c.get(makeKey(i).split('').join(''));
    return c;
  });
  cacheSamples.push(cache.bytes);
}
const rows = [
  { structure: 'Map<string,string> entry', 'bytes/entry': median(mapSamples).toFixed(1) },
  { structure: 'CachedProvider entry (value + metadata)', 'bytes/entry': median(cacheSamples).toFixed(1) },
];
console.log(JSON.stringify({ rows, ratio: median(cacheSamples) / median(mapSamples) }));
