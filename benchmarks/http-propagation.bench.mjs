// HTTP document propagation and request cost.
//
// 1. Propagation: the time from a change of the document at the server to HttpProvider's
//    `rotated` event (pollInterval 1 s), against a bare `fetch` poll loop with the same interval
//    that compares bodies, both watching the same server in the same run; median and p99 over
//    the changes.
// 2. Requests per hour per instance for an unchanged document, counted at the server over one
//    simulated hour (ManualClock drives the provider's poller; every request is real HTTP):
//    with validators (ETag -> 304), without (every poll a full 200), with validators and
//    `Cache-Control: max-age=300`, and the bare loop's figure for the same hour.
//
// Run: npx tsc -b tsconfig.build.json && node scripts/bundle.mjs && node benchmarks/http-propagation.bench.mjs
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { createEmitter } from '@secret-provider/core';
import { ManualClock } from '@secret-provider/core/adapter';
import { HttpProvider } from '@secret-provider/http';
import { median, percentile, report, sleep } from './lib/harness.mjs';

const CHANGES = Number(process.env.CHANGES ?? 25);
const INTERVAL = 1_000;
const now = () => Number(process.hrtime.bigint()) / 1e6;

/** A document server counting what it sends. */
async function documentServer({ etag = true, cacheControl } = {}) {
  const state = { body: '', requests: 0, full: 0, notModified: 0, bytes: 0 };
  const tag = () => `"${createHash('sha256').update(state.body).digest('base64url').slice(0, 16)}"`;
  const server = createServer((req, res) => {
    state.requests++;
    const headers = { 'content-type': 'application/json' };
    if (etag) headers.etag = tag();
    if (cacheControl) headers['cache-control'] = cacheControl;
    if (etag && req.headers['if-none-match'] === headers.etag) {
      state.notModified++;
      res.writeHead(304, headers);
      res.end();
      return;
    }
    state.full++;
    state.bytes += Buffer.byteLength(state.body);
    res.writeHead(200, headers);
    res.end(state.body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    state,
    url: `http://127.0.0.1:${server.address().port}/config.json`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

const documentWith = (version) => {
  const document = { app: { version: String(version) } };
  for (let i = 0; i < 100; i++) document[`key_${i}`] = `value-${i}-${'x'.repeat(24)}`;
  return JSON.stringify(document);
};

/** The baseline: fetch every INTERVAL, compare the body with the last one. */
function bareLoop(url, onChange) {
  let stopped = false;
  let last;
  (async () => {
    while (!stopped) {
      try {
        const body = await (await fetch(url)).text();
        if (last !== undefined && body !== last) onChange(now());
        last = body;
      } catch {}
      await sleep(INTERVAL);
    }
  })();
  return () => {
    stopped = true;
  };
}

async function propagation() {
  const server = await documentServer();
  server.state.body = documentWith(0);
  const provider = new HttpProvider({ url: server.url, pollInterval: INTERVAL, minInterval: INTERVAL });
  const events = createEmitter();
  let providerSeen;
  events.on('rotated', (event) => {
    if (event.keys.includes('app.version')) providerSeen?.(now());
  });
  const handle = provider.watch(events);
  await handle.ready;
  let bareSeen;
  const stopBare = bareLoop(server.url, (at) => bareSeen?.(at));
  await sleep(1_500);
  const providerMs = [];
  const bareMs = [];
  for (let i = 1; i <= CHANGES; i++) {
    // Changes land at random phases of both loops.
    await sleep(1_000 + Math.random() * 700);
    const seenByProvider = new Promise((resolve) => {
      providerSeen = resolve;
    });
    const seenByBare = new Promise((resolve) => {
      bareSeen = resolve;
    });
    const changedAt = now();
    server.state.body = documentWith(i);
    const [p, b] = await Promise.all([seenByProvider, seenByBare]);
    providerMs.push(p - changedAt);
    bareMs.push(b - changedAt);
  }
  stopBare();
  await handle.stop();
  await provider.close();
  await server.close();
  return { providerMs, bareMs };
}

/** One simulated hour of an unchanged document, counted at the server. */
async function hour(serverOptions) {
  const server = await documentServer(serverOptions);
  server.state.body = documentWith(0);
  const clock = new ManualClock(Date.now());
  const provider = new HttpProvider({
    url: server.url,
    clock,
    pollInterval: INTERVAL,
    minInterval: INTERVAL,
  });
  const handle = provider.watch(createEmitter());
  await handle.ready;
  const before = { ...server.state };
  await clock.advance(3_600_000);
  const stats = provider.stats();
  await handle.stop();
  await provider.close();
  await server.close();
  return {
    requests: server.state.requests - before.requests,
    'full 200s': server.state.full - before.full,
    '304s': server.state.notModified - before.notModified,
    'body KiB': Math.round((server.state.bytes - before.bytes) / 1024),
    parses: stats.parses,
  };
}

const { providerMs, bareMs } = await propagation();
const row = (name, values) => ({
  loop: name,
  changes: values.length,
  'median ms': Math.round(median(values)),
  'p99 ms': Math.round(percentile(values, 99)),
  'max ms': Math.round(Math.max(...values)),
});
report(`HTTP propagation, change at the server -> rotated (interval ${INTERVAL} ms, one run)`, [
  row('HttpProvider watch', providerMs),
  row('bare fetch loop', bareMs),
]);
console.log(`median ratio HttpProvider / bare loop: ${(median(providerMs) / median(bareMs)).toFixed(2)}x`);

const bytes = Buffer.byteLength(documentWith(0));
const hours = [
  { mode: 'HttpProvider, ETag (304s)', ...(await hour({ etag: true })) },
  { mode: 'HttpProvider, no validators', ...(await hour({ etag: false })) },
  { mode: 'HttpProvider, ETag + max-age=300', ...(await hour({ etag: true, cacheControl: 'max-age=300' })) },
  {
    mode: 'bare fetch loop (computed: 1 full GET per interval)',
    requests: 3_600_000 / INTERVAL,
    'full 200s': 3_600_000 / INTERVAL,
    '304s': 0,
    'body KiB': Math.round(((3_600_000 / INTERVAL) * bytes) / 1024),
    parses: 'n/a',
  },
];
report(
  `Requests per hour per instance, unchanged ${bytes}-byte document, pollInterval ${INTERVAL} ms`,
  hours,
);
