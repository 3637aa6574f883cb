// Consul KV propagation: the time from a write at the Consul KV double to ConsulProvider's
// `rotated` event (a watch by blocking queries, minInterval 250 ms), against a bare blocking
// `fetch` loop (`?recurse&index=N&wait=`, no rate limit, no dedupe) on the same double in the
// same run; median and p99 over the changes. Also the queries each loop sent.
//
// Run: npx tsc -b tsconfig.build.json && node scripts/bundle.mjs && node benchmarks/consul-propagation.bench.mjs
import { ConsulProvider } from '@secret-provider/consul';
import { createEmitter } from '@secret-provider/core';
import { ConsulDouble } from '@secret-provider/doubles/consul';
import { median, percentile, report, sleep } from './lib/harness.mjs';

const CHANGES = Number(process.env.CHANGES ?? 30);
const WAIT = '30s';
const now = () => Number(process.hrtime.bigint()) / 1e6;

/** The baseline: blocking queries back to back, reporting each answer whose value differs. */
function bareBlockingLoop(url, key, onChange) {
  const controller = new AbortController();
  let index = 0;
  let last;
  let queries = 0;
  (async () => {
    while (!controller.signal.aborted) {
      try {
        queries++;
        const response = await fetch(`${url}/v1/kv/app/?recurse&index=${index}&wait=${WAIT}`, {
          signal: controller.signal,
        });
        index = Number(response.headers.get('x-consul-index'));
        const entries = response.status === 200 ? await response.json() : [];
        const value = entries.find((e) => e.Key === key)?.Value;
        if (last !== undefined && value !== last) onChange(now());
        last = value;
      } catch {
        if (!controller.signal.aborted) await sleep(1_000);
      }
    }
  })();
  return {
    queries: () => queries,
    stop: () => controller.abort(),
  };
}

const double = await ConsulDouble.start();
double.put('app/db/password', 'v0');
for (let i = 0; i < 20; i++) double.put(`app/other/${i}`, `o${i}`);
// The double has no ACLs; the token only tells the provider's queries from the baseline's in its log.
const provider = new ConsulProvider({ address: double.url, prefix: 'app/', wait: 30_000, token: 'bench' });
const events = createEmitter();
let providerSeen;
events.on('rotated', (event) => {
  if (event.keys.includes('db/password')) providerSeen?.(now());
});
const handle = provider.watch(events);
await handle.ready;
let bareSeen;
const bare = bareBlockingLoop(double.url, 'app/db/password', (at) => bareSeen?.(at));
await sleep(500);

const watchQueries = () => double.requests.filter((r) => r.token && r.query.has('recurse')).length;
const before = { provider: watchQueries(), bare: bare.queries() };
const providerMs = [];
const bareMs = [];
for (let i = 1; i <= CHANGES; i++) {
  await sleep(300 + Math.random() * 400);
  const seenByProvider = new Promise((resolve) => {
    providerSeen = resolve;
  });
  const seenByBare = new Promise((resolve) => {
    bareSeen = resolve;
  });
  const changedAt = now();
  double.put('app/db/password', `v${i}`);
  const [p, b] = await Promise.all([seenByProvider, seenByBare]);
  providerMs.push(p - changedAt);
  bareMs.push(b - changedAt);
}
await sleep(300);
const bareQueries = bare.queries() - before.bare;
const providerQueries = watchQueries() - before.provider;
bare.stop();
await handle.stop();
await provider.close();
await double.close();

const row = (name, values, queries) => ({
  loop: name,
  changes: values.length,
  'median ms': Number(median(values).toFixed(2)),
  'p99 ms': Number(percentile(values, 99).toFixed(2)),
  'max ms': Number(Math.max(...values).toFixed(2)),
  queries,
});
report('Consul propagation, write at the double -> rotated (blocking queries, one run)', [
  row('ConsulProvider watch', providerMs, providerQueries),
  row('bare blocking fetch loop', bareMs, bareQueries),
]);
console.log(`median ratio ConsulProvider / bare loop: ${(median(providerMs) / median(bareMs)).toFixed(2)}x`);
