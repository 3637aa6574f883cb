import { AwsSecretsManagerProvider } from '@secret-provider/aws';
import { createEmitter, type RotatedEvent } from '@secret-provider/core';
import { ManualClock } from '@secret-provider/core/adapter';
import { SecretsManagerDouble } from '@secret-provider/doubles/aws';
import { afterEach, describe, expect, it } from 'vitest';

// A fleet sharing one SDK client, each instance watching its own secrets with DescribeSecret,
// in simulated time: every instance keeps polling after its baseline and hears of a rotation of
// one of its secrets within one interval. (A fleet run in real time on one process can fall so
// far behind that the baselines take the whole run; see benchmarks/aws-fleet.bench.mjs.)

const REGION = 'eu-west-1';
const SECRETS = 20;
const POLL = 30_000;

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function fleet(instances: number) {
  const double = await SecretsManagerDouble.start({ region: REGION });
  closers.push(() => double.close());
  for (let i = 0; i < instances; i++) for (let k = 0; k < SECRETS; k++) double.put(`svc${i}/s${k}`, `v${k}`);
  const owner = new AwsSecretsManagerProvider({
    region: REGION,
    endpoint: double.url,
    credentials: { accessKeyId: 'AKIDFLEET', secretAccessKey: 'fleet-test' },
  });
  closers.push(() => owner.close());
  const client = await owner.client();
  const clock = new ManualClock();
  const rotated: Array<Set<string>> = [];
  const providers = await Promise.all(
    Array.from({ length: instances }, async (_, i) => {
      const keys = Array.from({ length: SECRETS }, (_, k) => `svc${i}/s${k}`);
      // Default jitter (0.1): first polls spread over the first interval, as in a real fleet.
      const provider = new AwsSecretsManagerProvider({ client, clock, pollInterval: POLL, watchKeys: keys });
      closers.push(() => provider.close());
      const seen = new Set<string>();
      rotated[i] = seen;
      const emitter = createEmitter();
      emitter.on('rotated', (event: RotatedEvent) => {
        for (const key of event.keys) seen.add(key);
      });
      await Promise.all(keys.map((key) => provider.get(key)));
      await provider.watch(emitter).ready;
      return provider;
    }),
  );
  return { double, clock, providers, rotated };
}

describe('AwsSecretsManagerProvider: a fleet watching by DescribeSecret', () => {
  // 20 here; `node benchmarks/aws-fleet.bench.mjs` runs 100 and 500 in simulated time.
  for (const instances of [20]) {
    it(`${instances} x ${SECRETS}: every instance polls after its baseline and reports its rotations`, async () => {
      const { double, clock, rotated } = await fleet(instances);
      const baseline = instances * SECRETS;
      expect(double.count('DescribeSecret')).toBe(baseline);
      expect(double.count('GetSecretValue')).toBe(baseline);

      // Three intervals: first polls anywhere in [0, 30 s), then every 27 to 30 s.
      await clock.advanceInSteps(3 * POLL, 1_000);
      const polls = (double.count('DescribeSecret') - baseline) / baseline;
      expect(polls).toBeGreaterThanOrEqual(3);
      expect(polls).toBeLessThanOrEqual(4);

      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < instances; i++) double.put(`svc${i}/s${(i + round) % SECRETS}`, `r${round}`);
        await clock.advanceInSteps(POLL, 1_000);
        for (let i = 0; i < instances; i++) {
          expect([...(rotated[i] ?? [])].sort()).toEqual(
            [...new Set([`svc${i}/s${i % SECRETS}`, `svc${i}/s${(i + round) % SECRETS}`])].sort(),
          );
        }
      }
      // Versions only: the watch read no value.
      expect(double.count('GetSecretValue')).toBe(baseline);
    }, 120_000);
  }
});
