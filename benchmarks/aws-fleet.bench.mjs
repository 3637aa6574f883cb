// Fleet load on one Secrets Manager account: 500 instances x 20 secrets, each instance a real
// AwsSecretsManagerProvider (its cache, its watch loop, its jitter) over the Secrets Manager double,
// through the real SDK client, with time scaled down SCALE times (a 30 s poll runs every 300 ms).
// Requests are counted per operation in windows of one scaled second and reported per real
// second, against the documented quotas (AWS Secrets Manager quotas page: DescribeSecret and
// GetSecretValue combined 10,000/s; ListSecrets 100/s; BatchGetSecretValue 100/s).
//
//   node benchmarks/aws-fleet.bench.mjs
//
// The model, stated so the figures can be judged:
// - Every instance reads its 20 secrets when it starts, then watches them; instances start spread
//   at random over a deployment window of 60 s (a fleet-wide restart).
// - Two ways to read and watch, measured in the same run: `getMany` (BatchGetSecretValue, 20 ids a
//   call) with a watch by ListSecrets (one page: the instance's 20 secrets share a name prefix),
//   and the baseline of one `get` each (GetSecretValue) with a watch by DescribeSecret per key.
// - Poll every 30 s shortened at random by up to 10 % (provider defaults); one secret of each
//   instance's set rotates out of band every 10 minutes (rotations trigger re-reads on use only,
//   not modelled here: the run measures boot and watch load).
// - One shared SDK client per mode (request counts do not depend on how many clients send them).
import { AwsSecretsManagerProvider } from '@secret-provider/aws';
import { createEmitter } from '@secret-provider/core';
import { SecretsManagerDouble } from '@secret-provider/doubles/aws';
import { ratio, report, sleep } from './lib/harness.mjs';

const INSTANCES = Number(process.env.INSTANCES ?? 500);
const SECRETS = 20;
const SCALE = Number(process.env.SCALE ?? 20);
const POLL_MS = 30_000 / SCALE;
const DEPLOY_MS = 60_000 / SCALE;
const RUN_MS = (Number(process.env.RUN_REAL_S ?? 300) * 1000) / SCALE;
const SECOND = 1000 / SCALE;
const QUOTAS = { GetSecretValue: 10_000, DescribeSecret: 10_000, ListSecrets: 100, BatchGetSecretValue: 100 };

async function run(mode) {
  const double = await SecretsManagerDouble.start({ region: 'eu-west-1' });
  for (let i = 0; i < INSTANCES; i++) for (let k = 0; k < SECRETS; k++) double.put(`svc${i}/s${k}`, `v${k}`);
  // The SDK resolves from the adapter's folder only: its client comes through `client()`.
  const owner = new AwsSecretsManagerProvider({
    region: 'eu-west-1',
    endpoint: double.url,
    credentials: { accessKeyId: 'AKIDFLEET', secretAccessKey: 'fleet' },
  });
  const client = await owner.client();
  const start = performance.now();
  double.requests.length = 0;
  const providers = [];
  let clientFailures = 0;
  const handles = [];
  await Promise.all(
    Array.from({ length: INSTANCES }, async (_, i) => {
      await sleep(Math.random() * DEPLOY_MS);
      const keys = Array.from({ length: SECRETS }, (_, k) => `svc${i}/s${k}`);
      const provider = new AwsSecretsManagerProvider({
        client,
        pollInterval: POLL_MS,
        ...(mode === 'batch'
          ? { listFilters: [{ Key: 'name', Values: [`svc${i}/`] }] }
          : { watchKeys: keys }),
      });
      providers.push(provider);
      // A read the one benchmark process could not carry (its own sockets) is counted, not fatal.
      try {
        if (mode === 'batch') await provider.getMany(keys);
        else await Promise.all(keys.map((key) => provider.get(key)));
      } catch {
        clientFailures++;
      }
      handles.push(provider.watch(createEmitter()));
    }),
  );
  const rotations = setInterval(
    () => {
      const i = Math.floor(Math.random() * INSTANCES);
      double.put(`svc${i}/s${Math.floor(Math.random() * SECRETS)}`, `r${Date.now()}`);
    },
    600_000 / SCALE / INSTANCES,
  );
  await sleep(Math.max(0, RUN_MS - (performance.now() - start)));
  clearInterval(rotations);
  await Promise.all(providers.map((p) => p.close()));
  await owner.close();
  const windows = new Map();
  const base = double.requests[0]?.receivedAt ?? 0;
  for (const r of double.requests) {
    const w = Math.floor((r.receivedAt - base) / SECOND);
    const counts = windows.get(r.operation) ?? new Map();
    counts.set(w, (counts.get(w) ?? 0) + 1);
    windows.set(r.operation, counts);
  }
  const failures = double.requests.filter((r) => r.status !== 200).length;
  await double.close();
  const steadyFrom = Math.ceil((DEPLOY_MS + POLL_MS) / SECOND);
  return [...windows].map(([operation, counts]) => {
    const values = [...counts.entries()];
    const total = values.reduce((sum, [, n]) => sum + n, 0);
    const lastWindow = Math.floor(RUN_MS / SECOND);
    const steadyTotal = values
      .filter(([w]) => w >= steadyFrom && w < lastWindow)
      .reduce((sum, [, n]) => sum + n, 0);
    const steadyMean = steadyTotal / Math.max(1, lastWindow - steadyFrom);
    const peak = Math.max(...values.map(([, n]) => n));
    return {
      mode,
      operation,
      total,
      'peak /s': peak,
      'steady mean /s': Math.round(steadyMean),
      quota: QUOTAS[operation],
      failures,
      'client failures': clientFailures,
    };
  });
}

const rows = [...(await run('batch')), ...(await run('per-key'))];
report(
  `fleet of ${INSTANCES} x ${SECRETS} secrets, ${(RUN_MS * SCALE) / 1000} s simulated at 1/${SCALE} time`,
  rows,
);
for (const row of rows) {
  console.log(
    `${row.mode} ${row.operation}: peak/quota ${ratio(row['peak /s'] / row.quota, 0.5)}, steady/quota ${(row['steady mean /s'] / row.quota).toFixed(3)}x`,
  );
}
