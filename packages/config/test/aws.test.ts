import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AwsSecretsManagerProvider } from '@secret-provider/aws';
import { ConfigError, loadConfig, secretFields, validateConfig } from '@secret-provider/config';
import { SecretsManagerDouble } from '@secret-provider/doubles/aws';
import { expectNoLeak, rejection, tempDir } from '@secret-provider/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const REGION = 'eu-west-1';
const ACCESS_KEY_ID = 'AKIDCONFIGTEST';
const SECRET_ACCESS_KEY = 'config-secret-access-key-Qx7pL2vR';
const VALUE = 'aws-config-value-Tz9mK4wB';

let temp: { dir: string; remove: () => void };
let doubles: SecretsManagerDouble[] = [];
beforeEach(() => {
  temp = tempDir('secret-provider-config-aws-');
});
afterEach(async () => {
  await Promise.all(doubles.map((d) => d.close()));
  doubles = [];
  temp.remove();
});

async function double() {
  const started = await SecretsManagerDouble.start({ region: REGION, accessKeyIds: [ACCESS_KEY_ID] });
  doubles.push(started);
  return started;
}

describe('aws: validation', () => {
  it('the credentials are secret-bearing fields: a literal is refused without being quoted', async () => {
    expect(secretFields().get('aws')).toEqual([
      'credentials.accessKeyId',
      'credentials.secretAccessKey',
      'credentials.sessionToken',
    ]);
    const report = await validateConfig(
      {
        providers: [
          {
            name: 'aws',
            type: 'aws',
            region: REGION,
            credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY },
          },
        ],
      },
      { env: {} },
    );
    expect(report.errors.map((e) => [e.path, e.code])).toEqual([
      ['providers[0].credentials.accessKeyId', 'LITERAL_SECRET'],
      ['providers[0].credentials.secretAccessKey', 'LITERAL_SECRET'],
    ]);
    expectNoLeak([report], [ACCESS_KEY_ID, SECRET_ACCESS_KEY]);
  });

  it('refuses unknown fields, a bad region, filter or recovery window, and unset references', async () => {
    const report = await validateConfig(
      {
        providers: [
          {
            name: 'aws',
            type: 'aws',
            region: 'Europe',
            versionStage: 'AWSPREVIOUS',
            listFilters: [{ key: 'path', values: ['x'] }],
            recoveryWindowInDays: 3,
            credentials: { accessKeyId: { env: 'MY_KEY_ID' }, secretAccessKey: { file: 'missing' } },
          },
        ],
      },
      { env: {}, baseDir: temp.dir },
    );
    expect(report.errors.map((e) => [e.path, e.code])).toEqual([
      ['providers[0].region', 'SCHEMA'],
      ['providers[0].versionStage', 'UNKNOWN_FIELD'],
      ['providers[0].listFilters[0].key', 'SCHEMA'],
      ['providers[0].recoveryWindowInDays', 'SCHEMA'],
      ['providers[0].credentials.accessKeyId', 'UNRESOLVED_REFERENCE'],
      ['providers[0].credentials.secretAccessKey', 'UNRESOLVED_REFERENCE'],
    ]);
  });

  it('warns when AWS_REGION, AWS_DEFAULT_REGION, an endpoint variable or AWS_ACCESS_KEY_ID is shadowed', async () => {
    const entry = {
      name: 'aws',
      type: 'aws',
      region: REGION,
      endpoint: 'https://vpce.example',
      credentials: { accessKeyId: { env: 'MY_KEY_ID' }, secretAccessKey: { env: 'MY_SECRET' } },
    };
    const env = {
      AWS_REGION: 'us-east-1',
      AWS_DEFAULT_REGION: 'us-east-2',
      AWS_ENDPOINT_URL_SECRETS_MANAGER: 'http://127.0.0.1:1',
      AWS_ENDPOINT_URL: 'http://127.0.0.1:2',
      AWS_ACCESS_KEY_ID: 'AKIDENV',
      MY_KEY_ID: ACCESS_KEY_ID,
      MY_SECRET: SECRET_ACCESS_KEY,
    };
    const report = await validateConfig({ providers: [entry] }, { env });
    expect(report.errors).toEqual([]);
    expect(report.warnings.map((w) => [w.path, w.code, /AWS_[A-Z_]+/.exec(w.message)?.[0]])).toEqual([
      ['providers[0].region', 'SHADOWED_ENV', 'AWS_REGION'],
      ['providers[0].region', 'SHADOWED_ENV', 'AWS_DEFAULT_REGION'],
      ['providers[0].endpoint', 'SHADOWED_ENV', 'AWS_ENDPOINT_URL_SECRETS_MANAGER'],
      ['providers[0].endpoint', 'SHADOWED_ENV', 'AWS_ENDPOINT_URL'],
      ['providers[0].credentials.accessKeyId', 'SHADOWED_ENV', 'AWS_ACCESS_KEY_ID'],
    ]);
    // Unset fields use the variables: nothing is shadowed.
    const bare = await validateConfig({ providers: [{ name: 'aws', type: 'aws' }] }, { env });
    expect(bare.warnings).toEqual([]);
    expectNoLeak([report, bare], [SECRET_ACCESS_KEY]);
  });
});

describe('aws: loadConfig', () => {
  it('builds an AWS provider from the file and reads a secret from the double', async () => {
    const aws = await double();
    aws.put('app/db', JSON.stringify({ password: VALUE }));
    writeFileSync(join(temp.dir, 'secret-access-key'), `${SECRET_ACCESS_KEY}\n`, { mode: 0o600 });
    const file = join(temp.dir, 'secret-provider.config.json');
    writeFileSync(
      file,
      JSON.stringify({
        providers: [
          { name: 'env', type: 'env', prefix: 'APP_' },
          {
            name: 'aws',
            type: 'aws',
            endpoint: aws.url,
            credentials: {
              accessKeyId: { env: 'MY_KEY_ID' },
              secretAccessKey: { file: 'secret-access-key' },
            },
            requestTimeoutMs: 5_000,
            cache: false,
          },
        ],
      }),
      { mode: 0o600 },
    );
    // The region comes from AWS_DEFAULT_REGION (the AWS CLI's, which the SDK itself ignores).
    await using loaded = await loadConfig(file, {
      env: { MY_KEY_ID: ACCESS_KEY_ID, AWS_DEFAULT_REGION: REGION },
    });
    expect(loaded.providers.get('aws')).toBeInstanceOf(AwsSecretsManagerProvider);
    expect((await loaded.provider.get('app/db#password')).reveal()).toBe(VALUE);
    expect((await loaded.chain.explain('app/db#password')).servedBy).toBe('aws');
    expect(await loaded.provider.keys()).toContain('app/db');
    // cache: false reaches the adapter: a second read asks the service again.
    const before = aws.count('GetSecretValue');
    await loaded.provider.get('app/db#password');
    expect(aws.count('GetSecretValue')).toBe(before + 1);
  });

  it('takes the endpoint from AWS_ENDPOINT_URL_SECRETS_MANAGER before AWS_ENDPOINT_URL, as the SDK does', async () => {
    const aws = await double();
    aws.put('k', VALUE);
    await using loaded = await loadConfig(
      {
        providers: [
          {
            name: 'aws',
            type: 'aws',
            region: REGION,
            credentials: { accessKeyId: { env: 'MY_KEY_ID' }, secretAccessKey: { env: 'MY_SECRET' } },
          },
        ],
      },
      {
        env: {
          MY_KEY_ID: ACCESS_KEY_ID,
          MY_SECRET: SECRET_ACCESS_KEY,
          AWS_ENDPOINT_URL_SECRETS_MANAGER: aws.url,
          AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
        },
      },
    );
    expect((await loaded.provider.get('k')).reveal()).toBe(VALUE);
  });

  it('a credential the service refuses is ACCESS_DENIED, naming neither the key id nor the secret', async () => {
    const aws = await double();
    aws.put('k', VALUE);
    await using loaded = await loadConfig(
      {
        providers: [
          {
            name: 'aws',
            type: 'aws',
            region: REGION,
            endpoint: aws.url,
            credentials: { accessKeyId: { env: 'MY_KEY_ID' }, secretAccessKey: { env: 'MY_SECRET' } },
          },
        ],
      },
      { env: { MY_KEY_ID: 'AKIDUNKNOWN', MY_SECRET: SECRET_ACCESS_KEY } },
    );
    const error = await rejection(loaded.provider.get('k'));
    expect(error).toMatchObject({ code: 'ACCESS_DENIED' });
    expectNoLeak([error], [SECRET_ACCESS_KEY, VALUE]);
  });

  it('a credential reference that fails at load time is a ConfigError at its path', async () => {
    const error = await rejection(
      loadConfig(
        {
          providers: [
            {
              name: 'aws',
              type: 'aws',
              region: REGION,
              credentials: { accessKeyId: { env: 'MY_KEY_ID' }, secretAccessKey: { env: 'MY_SECRET' } },
            },
          ],
        },
        { env: { MY_KEY_ID: ACCESS_KEY_ID } },
      ),
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ path: 'providers[0].credentials.secretAccessKey' });
  });
});
