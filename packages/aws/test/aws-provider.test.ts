import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { AwsSecretsManagerProvider, type AwsSecretsManagerProviderOptions } from '@secret-provider/aws';
import { getMany, isSecretError, type RotatedEvent, type SecretError } from '@secret-provider/core';
import { SecretsManagerDouble, type SecretsManagerDoubleOptions } from '@secret-provider/doubles/aws';
import { expectNoLeak, record, rejection, summary, until } from '@secret-provider/testing';
import { afterEach, describe, expect, it } from 'vitest';

const REGION = 'eu-west-1';
const credentials = { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret-access-key-do-not-leak' };
const SECRET = 'aws-secret-value-42';

const doubles: SecretsManagerDouble[] = [];
const providers: AwsSecretsManagerProvider[] = [];
afterEach(async () => {
  await Promise.all(providers.splice(0).map((p) => p.close()));
  await Promise.all(doubles.splice(0).map((d) => d.close()));
});

async function setup(
  options: Partial<AwsSecretsManagerProviderOptions> = {},
  doubleOptions: SecretsManagerDoubleOptions = {},
) {
  const double = await SecretsManagerDouble.start({ region: REGION, ...doubleOptions });
  doubles.push(double);
  const provider = new AwsSecretsManagerProvider({
    region: REGION,
    endpoint: double.url,
    credentials,
    pollInterval: 20,
    pollJitter: 0,
    ...options,
  });
  providers.push(provider);
  return { double, provider };
}

const codeOf = async (promise: Promise<unknown>) => (await rejection(promise)) as SecretError;

describe('AwsSecretsManagerProvider: reads', () => {
  it('reads SecretString as text and SecretBinary as bytes, with the version id as the version', async () => {
    const { double, provider } = await setup();
    const id = double.put('app/db', SECRET);
    const secret = await provider.get('app/db');
    expect(secret.reveal()).toBe(SECRET);
    expect(secret.metadata?.version).toBe(id);
    const bytes = new Uint8Array([0, 1, 2, 250, 255]);
    double.put('app/key', bytes);
    const read = await provider.getBytes('app/key');
    expect([...read.reveal()]).toEqual([...bytes]);
    expect(String(read)).not.toContain('250');
    expect([...(await provider.getBytes('app/db')).reveal()]).toEqual([...Buffer.from(SECRET)]);
  });

  it('reads one field of a JSON secret with name#field, as Vault addresses fields', async () => {
    const { double, provider } = await setup();
    double.put(
      'app/db',
      JSON.stringify({ username: 'app', password: SECRET, port: 5432, tls: { on: true } }),
    );
    double.put('app/plain', 'not json');
    expect((await provider.get('app/db#password')).reveal()).toBe(SECRET);
    expect((await provider.get('app/db#port')).reveal()).toBe('5432');
    expect((await provider.get('app/db#tls')).reveal()).toBe('{"on":true}');
    for (const key of ['app/db#missing', 'app/db#__proto__', 'app/plain#field', 'app/none#field']) {
      expect((await codeOf(provider.get(key))).code, key).toBe('NOT_FOUND');
    }
    expect((await codeOf(provider.get('app/db#'))).code).toBe('INVALID_KEY');
    // A parse failure of a non-JSON secret quotes nothing of it.
    expectNoLeak([await rejection(provider.get('app/plain#field'))], ['not json']);
    expect((await codeOf(provider.set('app/db#password', 'x'))).code).toBe('UNSUPPORTED');
    expect((await codeOf(provider.delete('app/db#password'))).code).toBe('UNSUPPORTED');
  });

  it('reads versions by staging label (AWSCURRENT, AWSPREVIOUS, AWSPENDING) or version id', async () => {
    const { double, provider } = await setup({ cache: false });
    const first = double.put('app/key', 'one');
    const second = double.put('app/key', 'two');
    const pending = double.put('app/key', 'three', ['AWSPENDING']);
    expect(double.stagesOf('app/key')).toEqual({
      [first]: ['AWSPREVIOUS'],
      [second]: ['AWSCURRENT'],
      [pending]: ['AWSPENDING'],
    });
    expect((await provider.get('app/key')).reveal()).toBe('two');
    expect((await provider.get('app/key', { version: 'AWSCURRENT' })).reveal()).toBe('two');
    expect((await provider.get('app/key', { version: 'AWSPREVIOUS' })).reveal()).toBe('one');
    const pendingRead = await provider.get('app/key', { version: 'AWSPENDING' });
    expect([pendingRead.reveal(), pendingRead.metadata?.version]).toEqual(['three', pending]);
    expect((await provider.get('app/key', { version: first })).reveal()).toBe('one');
    expect((await codeOf(provider.get('app/key', { version: 'f'.repeat(36) }))).code).toBe('NOT_FOUND');
    expect((await provider.metadata('app/key')).version).toBe(second);
  });

  it('refuses names Secrets Manager cannot hold, and accepts secret ARNs', async () => {
    const { double, provider } = await setup();
    for (const key of ['has space', '', 'semi;colon', 'x'.repeat(513)]) {
      expect((await codeOf(provider.get(key))).code, key).toBe('INVALID_KEY');
    }
    double.put('app/arn', SECRET);
    const arn = (
      await (
        await provider.client()
      ).send(
        new (
          await import('@aws-sdk/client-secrets-manager')
        ).DescribeSecretCommand({ SecretId: 'app/arn' }),
      )
    ).ARN as string;
    expect((await provider.get(arn)).reveal()).toBe(SECRET);
    expect(double.requests.filter((r) => r.status !== 200)).toEqual([]);
  });
});

describe('AwsSecretsManagerProvider: writes and deletes', () => {
  it('creates a missing secret, then puts new AWSCURRENT versions (the old one AWSPREVIOUS)', async () => {
    const { double, provider } = await setup();
    await provider.set('app/new', 'one');
    expect(double.requests.map((r) => `${r.operation}:${r.errorType ?? r.status}`)).toEqual([
      'PutSecretValue:ResourceNotFoundException',
      'CreateSecret:200',
    ]);
    await provider.set('app/new', 'two');
    expect(double.read('app/new')).toBe('two');
    expect(double.read('app/new', 'AWSPREVIOUS')).toBe('one');
    expect((await provider.get('app/new')).reveal()).toBe('two');
  });

  it('sends one ClientRequestToken for every attempt of a write: a write whose answer was lost is made once', async () => {
    const { double, provider } = await setup();
    double.put('app/key', 'one');
    double.fail({ kind: 'reset-after' });
    await provider.set('app/key', 'two');
    expect(double.read('app/key')).toBe('two');
    expect(double.versionCount('app/key')).toBe(2);
    expect(double.count('PutSecretValue')).toBe(2);
    // The same for a create whose answer was lost: the retry finds the secret and its version.
    double.fail({ kind: 'reset-after' }, 1);
    await provider.set('app/created', 'v');
    expect(double.versionCount('app/created')).toBe(1);
  });

  it('does not retry writes with an injected client (its own retry policy applies), nor reads ever', async () => {
    const double = await SecretsManagerDouble.start({ region: REGION });
    doubles.push(double);
    const client = new SecretsManagerClient({
      region: REGION,
      endpoint: double.url,
      credentials,
      maxAttempts: 1,
    });
    const provider = new AwsSecretsManagerProvider({ client, cache: false });
    providers.push(provider);
    double.put('app/key', SECRET);
    double.fail({ kind: 'status', status: 500, type: 'InternalServiceError' });
    expect((await codeOf(provider.set('app/key', 'next'))).code).toBe('UNAVAILABLE');
    double.fail({ kind: 'status', status: 500, type: 'InternalServiceError' });
    expect((await codeOf(provider.get('app/key'))).code).toBe('UNAVAILABLE');
    expect(double.count('PutSecretValue') + double.count('GetSecretValue')).toBe(2);
    await provider.close();
    // The injected client is the caller's: still usable after close.
    expect(await client.config.region()).toBe(REGION);
    client.destroy();
  });

  it('deletes with the recovery window (30 days by default, or as configured), then answers NOT_FOUND', async () => {
    const { double, provider } = await setup();
    double.put('app/key', SECRET);
    await provider.delete('app/key');
    expect(double.recoveryWindowOf('app/key')).toBe(30);
    expect((await codeOf(provider.get('app/key'))).code).toBe('NOT_FOUND');
    expect((await codeOf(provider.metadata('app/key'))).code).toBe('NOT_FOUND');
    expect(await provider.keys()).toEqual([]);
    expect((await codeOf(provider.delete('app/key'))).code).toBe('NOT_FOUND');
    // A write to a secret scheduled for deletion is a conflict, not a silent re-creation.
    const refused = await codeOf(provider.set('app/key', 'again'));
    expect([refused.code, refused.retryable]).toEqual(['CONFLICT', false]);

    const { double: other, provider: seven } = await setup({ recoveryWindowInDays: 7 });
    other.put('app/key', SECRET);
    await seven.delete('app/key');
    expect(other.recoveryWindowOf('app/key')).toBe(7);
  });

  it('deletes at once with forceDeleteWithoutRecovery, and refuses contradictory options', async () => {
    const { double, provider } = await setup({ forceDeleteWithoutRecovery: true });
    double.put('app/key', SECRET);
    await provider.delete('app/key');
    expect(double.deletedDate('app/key')).toBeUndefined();
    await provider.set('app/key', 'recreated');
    expect(double.read('app/key')).toBe('recreated');
    for (const options of [
      { recoveryWindowInDays: 3 },
      { recoveryWindowInDays: 7, forceDeleteWithoutRecovery: true },
      { writeRetries: -1 },
      { client: new SecretsManagerClient({ region: REGION }), region: REGION },
    ]) {
      let thrown: unknown;
      try {
        new AwsSecretsManagerProvider(options);
      } catch (error) {
        thrown = error;
      }
      expect(isSecretError(thrown, 'INVALID_CONFIG'), JSON.stringify(Object.keys(options))).toBe(true);
    }
  });
});

describe('AwsSecretsManagerProvider: listing and batches', () => {
  it('lists names through every ListSecrets page, with a name prefix filter and configured filters', async () => {
    const { double, provider } = await setup();
    for (let i = 0; i < 230; i++) double.put(`app/k${String(i).padStart(3, '0')}`, `v${i}`);
    double.put('other/x', 'x');
    const names = await provider.keys();
    expect(names.length).toBe(231);
    expect(double.count('ListSecrets')).toBe(3);
    expect(await provider.keys({ prefix: 'other/' })).toEqual(['other/x']);
    expect(double.count('ListSecrets')).toBe(4);
    expect(await provider.keys({ prefix: 'no such!' })).toEqual([]);
    const scoped = new AwsSecretsManagerProvider({
      region: REGION,
      endpoint: double.url,
      credentials,
      listFilters: [{ Key: 'name', Values: ['other/'] }],
    });
    providers.push(scoped);
    expect(await scoped.keys()).toEqual(['other/x']);
    expect(double.count('GetSecretValue')).toBe(0);
  });

  it('getMany reads through BatchGetSecretValue, 20 ids a call; missing keys are absent; the cache serves repeats', async () => {
    const { double, provider } = await setup();
    const keys: string[] = [];
    for (let i = 0; i < 45; i++) {
      double.put(`app/k${i}`, JSON.stringify({ value: `v${i}` }));
      keys.push(`app/k${i}`);
    }
    const read = await getMany(provider, [...keys, 'app/k3#value', 'app/missing', 'app/k4#missing']);
    expect(read.size).toBe(46);
    expect(read.get('app/k3#value')?.reveal()).toBe('v3');
    expect(read.has('app/missing')).toBe(false);
    expect(read.has('app/k4#missing')).toBe(false);
    expect(double.count('BatchGetSecretValue')).toBe(3);
    expect(double.count('GetSecretValue')).toBe(0);
    await provider.getMany(keys.slice(0, 10));
    expect(double.count('BatchGetSecretValue')).toBe(3);
  });

  it('getMany maps a per-secret failure (KMS, denied) to a typed rejection that quotes nothing', async () => {
    const { double, provider } = await setup({ cache: false });
    double.put('app/a', SECRET);
    double.put('app/b', SECRET);
    double.setSecretFault('app/b', 'DecryptionFailure');
    const failed = await codeOf(provider.getMany(['app/a', 'app/b']));
    expect([failed.code, failed.key]).toEqual(['ACCESS_DENIED', 'app/b']);
    double.setSecretFault('app/b', 'AccessDeniedException');
    const denied = await codeOf(provider.getMany(['app/a', 'app/b']));
    expect(denied.code).toBe('ACCESS_DENIED');
    expectNoLeak([failed, denied], [SECRET, credentials.secretAccessKey]);
  });
});

describe('AwsSecretsManagerProvider: rotation without reading values', () => {
  for (const mode of ['ListSecrets', 'DescribeSecret'] as const) {
    it(`reports an out-of-band PutSecretValue as rotated with old and new version ids (${mode}), reading no value`, async () => {
      const { double, provider } = await setup(
        mode === 'DescribeSecret' ? { watchKeys: ['app/db#password'] } : {},
      );
      const first = double.put('app/db', JSON.stringify({ password: 'one' }));
      expect((await provider.get('app/db#password')).reveal()).toBe('one');
      const reads = double.count('GetSecretValue');
      const { events, handle } = await record(provider);
      const second = double.put('app/db', JSON.stringify({ password: 'two' }));
      await until(() => events.some((e) => e.type === 'rotated'), 5_000, 'rotated');
      const rotated = events.find((e) => e.type === 'rotated')?.event as RotatedEvent;
      expect(rotated.changes).toEqual([
        { key: 'app/db', oldVersion: first, newVersion: second },
        { key: 'app/db#password', oldVersion: first, newVersion: second },
      ]);
      expect(double.count('GetSecretValue')).toBe(reads);
      expect(double.count(mode)).toBeGreaterThan(1);
      // The field key's cached value went with the event.
      expect((await provider.get('app/db#password')).reveal()).toBe('two');
      await handle.stop();
      expect(summary(events)).toEqual(['rotated:app/db,app/db#password']);
    });
  }

  it('a watch whose baseline is throttled (a fleet restart) reports it and goes on polling, then reports rotations', async () => {
    const { double, provider } = await setup({ watchKeys: ['app/one', 'app/two'] });
    double.put('app/one', 'one');
    const two = double.put('app/two', 'two');
    double.fail({ kind: 'status', status: 400, type: 'ThrottlingException', message: 'Rate exceeded' });
    const { events, handle } = await record(provider);
    expect(events.map((e) => e.type)).toEqual(['error']);
    expect(events[0]?.event).toMatchObject({ error: { code: 'RATE_LIMITED' } });
    const polls = double.count('DescribeSecret');
    await until(() => double.count('DescribeSecret') >= polls + 4, 5_000, 'polls after a failed baseline');
    const rotated = double.put('app/two', 'two-rotated');
    await until(() => events.some((e) => e.type === 'rotated'), 5_000, 'rotated');
    expect(events.find((e) => e.type === 'rotated')?.event).toMatchObject({
      changes: [{ key: 'app/two', oldVersion: two, newVersion: rotated }],
    });
    await handle.stop();
  });

  it('reports a staging of AWSPENDING as nothing: only AWSCURRENT moving is a rotation', async () => {
    const { double, provider } = await setup();
    double.put('app/key', 'one');
    const { events, handle } = await record(provider);
    double.put('app/key', 'pending', ['AWSPENDING']);
    const polls = double.count('ListSecrets');
    await until(() => double.count('ListSecrets') > polls + 3, 5_000, 'polls');
    expect(summary(events)).toEqual([]);
    await handle.stop();
  });
});

describe('AwsSecretsManagerProvider: errors', () => {
  it('maps each failure to the taxonomy, once (no SDK retries), quoting nothing of the server or the request', async () => {
    const { double, provider } = await setup({ cache: false, writeRetries: 0 });
    double.put('app/key', SECRET);
    const quoted = `${SECRET} app/key ${credentials.accessKeyId}`;
    const cases: Array<[string, () => void, string, Partial<SecretError>?]> = [
      [
        'throttled (400 ThrottlingException)',
        () =>
          double.fail({
            kind: 'status',
            status: 400,
            type: 'ThrottlingException',
            message: `Rate exceeded ${quoted}`,
          }),
        'RATE_LIMITED',
        { retryable: true },
      ],
      [
        'throttled (bare 429 with Retry-After)',
        () => double.fail({ kind: 'status', status: 429, headers: { 'Retry-After': '3' } }),
        'RATE_LIMITED',
        { retryAfterMs: 3_000 },
      ],
      [
        'denied',
        () => double.fail({ kind: 'status', status: 400, type: 'AccessDeniedException', message: quoted }),
        'ACCESS_DENIED',
        { retryable: false },
      ],
      ['KMS', () => double.setSecretFault('app/key', 'DecryptionFailure'), 'ACCESS_DENIED'],
      [
        'internal error',
        () => double.fail({ kind: 'status', status: 500, type: 'InternalServiceError', message: quoted }),
        'UNAVAILABLE',
      ],
      ['bare 503', () => double.fail({ kind: 'status', status: 503 }), 'UNAVAILABLE'],
      ['connection reset', () => double.fail({ kind: 'reset' }), 'UNAVAILABLE'],
      ['a proxy page', () => double.fail({ kind: 'garbage' }), 'UNAVAILABLE'],
      [
        'an unknown error type',
        () => double.fail({ kind: 'status', status: 400, type: 'SomethingNewException', message: quoted }),
        'UNAVAILABLE',
      ],
      [
        'signature refused',
        () =>
          double.fail({ kind: 'status', status: 400, type: 'InvalidSignatureException', message: quoted }),
        'ACCESS_DENIED',
      ],
    ];
    const errors: unknown[] = [];
    for (const [what, arm, code, extra] of cases) {
      double.setSecretFault('app/key', undefined);
      const before = double.requests.length;
      arm();
      const error = await codeOf(provider.get('app/key'));
      errors.push(error);
      expect(error.code, what).toBe(code);
      if (extra !== undefined) expect(error, what).toMatchObject(extra);
      expect(double.requests.length - before, `${what}: attempts`).toBe(1);
      double.clearFaults();
    }
    double.setSecretFault('app/key', undefined);
    // Writes meet the same faults (KMS aside: a write encrypts, it does not decrypt).
    for (const [what, arm, code] of cases.filter(([what]) => what !== 'KMS')) {
      arm();
      const error = await codeOf(provider.set('app/key', `${SECRET}-next`));
      expect(error.code, `set: ${what}`).toBe(code);
      errors.push(error);
      double.clearFaults();
      double.setSecretFault('app/key', undefined);
    }
    expectNoLeak(errors, [SECRET, `${SECRET}-next`, credentials.secretAccessKey, 'AWS4-HMAC-SHA256'], {
      encodings: true,
    });
  });

  it('maps a wrong credential scope, an unknown access key, a timeout and a closed port', async () => {
    const { double } = await setup({}, { accessKeyIds: ['AKIDTEST'] });
    const wrongRegion = new AwsSecretsManagerProvider({
      region: 'us-west-2',
      endpoint: double.url,
      credentials,
    });
    const stranger = new AwsSecretsManagerProvider({
      region: REGION,
      endpoint: double.url,
      credentials: { accessKeyId: 'AKIDOTHER', secretAccessKey: 'x' },
    });
    const slow = new AwsSecretsManagerProvider({
      region: REGION,
      endpoint: double.url,
      credentials,
      requestTimeoutMs: 200,
    });
    const closedPort = await SecretsManagerDouble.start({ region: REGION });
    const port = closedPort.url;
    await closedPort.close();
    const unreachable = new AwsSecretsManagerProvider({ region: REGION, endpoint: port, credentials });
    providers.push(wrongRegion, stranger, slow, unreachable);
    double.put('app/key', SECRET);
    expect((await codeOf(wrongRegion.get('app/key'))).code).toBe('ACCESS_DENIED');
    expect((await codeOf(stranger.get('app/key'))).code).toBe('ACCESS_DENIED');
    double.fail({ kind: 'hang' });
    expect((await codeOf(slow.get('app/key'))).code).toBe('TIMEOUT');
    expect((await codeOf(unreachable.get('app/key'))).code).toBe('UNAVAILABLE');
  });

  it('retries a failed write after core back-off, with the same token, and recovers reads by itself', async () => {
    const { double, provider } = await setup({ cache: false });
    double.put('app/key', 'one');
    double.fail({ kind: 'status', status: 400, type: 'ThrottlingException' });
    double.fail({ kind: 'reset' });
    await provider.set('app/key', 'two');
    expect(double.count('PutSecretValue')).toBe(3);
    expect(double.versionCount('app/key')).toBe(2);
    double.fail({ kind: 'reset' });
    expect((await codeOf(provider.get('app/key'))).code).toBe('UNAVAILABLE');
    expect((await provider.get('app/key')).reveal()).toBe('two');
  });
});
