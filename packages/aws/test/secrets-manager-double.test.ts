import {
  BatchGetSecretValueCommand,
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  ListSecretsCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { SecretsManagerDouble } from '@secret-provider/doubles/aws';
import { rejection } from '@secret-provider/testing';
import { afterEach, describe, expect, it } from 'vitest';

const REGION = 'eu-west-1';
const credentials = { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' };
const doubles: SecretsManagerDouble[] = [];
const clients: SecretsManagerClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  await Promise.all(doubles.splice(0).map((d) => d.close()));
});

async function setup() {
  const double = await SecretsManagerDouble.start({ region: REGION });
  doubles.push(double);
  const client = new SecretsManagerClient({
    region: REGION,
    endpoint: double.url,
    credentials,
    maxAttempts: 1,
  });
  clients.push(client);
  return { double, client };
}

const raw = (url: string, headers: Record<string, string>) =>
  fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': 'secretsmanager.ListSecrets',
      ...headers,
    },
    body: '{}',
  }).then(async (response) => ({
    status: response.status,
    body: (await response.json()) as { __type?: string },
  }));

describe('SecretsManagerDouble, through the real SDK client', () => {
  it('checks the SigV4 Authorization header for shape and credential scope', async () => {
    const { double } = await setup();
    expect((await raw(double.url, {})).body.__type).toBe('MissingAuthenticationTokenException');
    expect((await raw(double.url, { authorization: 'Bearer x' })).body.__type).toBe(
      'IncompleteSignatureException',
    );
    const good = `AWS4-HMAC-SHA256 Credential=AKID/20261203/${REGION}/secretsmanager/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'a'.repeat(64)}`;
    expect((await raw(double.url, { authorization: good, 'x-amz-date': '20261203T120000Z' })).status).toBe(
      200,
    );
    expect((await raw(double.url, { authorization: good, 'x-amz-date': '20261204T120000Z' })).status).toBe(
      400,
    );
    const otherRegion = good.replace(REGION, 'us-east-1');
    const refused = await raw(double.url, { authorization: otherRegion, 'x-amz-date': '20261203T120000Z' });
    expect([refused.status, refused.body.__type]).toEqual([400, 'InvalidSignatureException']);
  });

  it('keeps ClientRequestToken idempotency: same token and value is a no-op, another value is refused', async () => {
    const { double, client } = await setup();
    const token = 't'.repeat(40);
    await client.send(new CreateSecretCommand({ Name: 'a', SecretString: 'one' }));
    const first = await client.send(
      new PutSecretValueCommand({ SecretId: 'a', SecretString: 'two', ClientRequestToken: token }),
    );
    const again = await client.send(
      new PutSecretValueCommand({ SecretId: 'a', SecretString: 'two', ClientRequestToken: token }),
    );
    expect([first.VersionId, again.VersionId]).toEqual([token, token]);
    expect(double.versionCount('a')).toBe(2);
    const error = (await rejection(
      client.send(
        new PutSecretValueCommand({ SecretId: 'a', SecretString: 'three', ClientRequestToken: token }),
      ),
    )) as Error;
    expect(error.name).toBe('ResourceExistsException');
    const described = await client.send(new DescribeSecretCommand({ SecretId: 'a' }));
    expect(described.VersionIdsToStages?.[token]).toEqual(['AWSCURRENT']);
    expect(described.LastChangedDate).toBeInstanceOf(Date);
  });

  it('schedules deletions, pages ListSecrets and bounds BatchGetSecretValue at 20 ids', async () => {
    const { double, client } = await setup();
    for (let i = 0; i < 5; i++) double.put(`k${i}`, `v${i}`);
    const page = await client.send(new ListSecretsCommand({ MaxResults: 2 }));
    expect(page.SecretList?.map((s) => s.Name)).toEqual(['k0', 'k1']);
    const next = await client.send(new ListSecretsCommand({ MaxResults: 2, NextToken: page.NextToken }));
    expect(next.SecretList?.map((s) => s.Name)).toEqual(['k2', 'k3']);
    const badToken = (await rejection(client.send(new ListSecretsCommand({ NextToken: 'nope' })))) as Error;
    expect(badToken.name).toBe('InvalidNextTokenException');
    await client.send(new DeleteSecretCommand({ SecretId: 'k0', RecoveryWindowInDays: 7 }));
    expect((await client.send(new ListSecretsCommand({}))).SecretList?.length).toBe(4);
    expect(
      (await client.send(new ListSecretsCommand({ IncludePlannedDeletion: true }))).SecretList?.length,
    ).toBe(5);
    const batch = await client.send(new BatchGetSecretValueCommand({ SecretIdList: ['k0', 'k1', 'nope'] }));
    expect(batch.SecretValues?.map((v) => v.SecretString)).toEqual(['v1']);
    expect(batch.Errors?.map((e) => e.ErrorCode)).toEqual([
      'InvalidRequestException',
      'ResourceNotFoundException',
    ]);
    const tooMany = Array.from({ length: 21 }, (_, i) => `k${i}`);
    const refused = (await rejection(
      client.send(new BatchGetSecretValueCommand({ SecretIdList: tooMany })),
    )) as Error;
    expect(refused.name).toBe('InvalidParameterException');
  });
});
