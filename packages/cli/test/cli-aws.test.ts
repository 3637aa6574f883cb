import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { SecretsManagerDouble } from '@secret-provider/doubles/aws';
import { expectNoLeak, tempDir } from '@secret-provider/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { built, documentOf, outputs, runBin, writeConfig, writeSecretFile } from './run-bin.js';

// The built bin in a child process against the Secrets Manager double. Credentials come from the
// SDK's own variables (its default chain) or from files the configuration references.

const REGION = 'eu-west-1';
const ACCESS_KEY_ID = 'AKIDCLITEST';
const SECRET_ACCESS_KEY = 'cli-secret-access-key-Vb8nQ3xZ';
const DB_PASSWORD = 'aws-db-pass-Rk5tY2mW';
const API_KEY = 'aws-api-key-Lp9cE4hS';
/** Text a server error message carries, which no output may repeat. */
const SERVER_TEXT = 'server-echo-Gd7wN1qf';

let aws: SecretsManagerDouble;
let temp: { dir: string; remove: () => void };
let closedPort: number;
const secrets = [SECRET_ACCESS_KEY, DB_PASSWORD, API_KEY, SERVER_TEXT];

beforeAll(async () => {
  expect(built(), 'build the packages first (pnpm build)').toBe(true);
  temp = tempDir('secret-provider-cli-aws-');
  aws = await SecretsManagerDouble.start({ region: REGION, accessKeyIds: [ACCESS_KEY_ID] });
  aws.put('app/db', JSON.stringify({ password: DB_PASSWORD }));
  aws.put('app/api-key', API_KEY);
  aws.put('app/locked', API_KEY);
  aws.setSecretFault('app/locked', 'AccessDeniedException');
  aws.put('app/kms', API_KEY);
  aws.setSecretFault('app/kms', 'DecryptionFailure');
  // A port nothing listens on: bound, then released.
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closedPort = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

afterAll(async () => {
  await aws?.close();
  temp?.remove();
});

/** The SDK's own variables: region, endpoint and credentials as a deployment would set them. */
const sdkEnv = () => ({
  AWS_REGION: REGION,
  AWS_ENDPOINT_URL_SECRETS_MANAGER: aws.url,
  AWS_ACCESS_KEY_ID: ACCESS_KEY_ID,
  AWS_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
});

function setup(name: string, entry: Record<string, unknown> = {}) {
  const dir = join(temp.dir, name);
  mkdirSync(dir);
  writeConfig(dir, { providers: [{ name: 'aws', type: 'aws', requestTimeoutMs: 2_000, ...entry }] });
  return dir;
}

const authLine = (run: Awaited<ReturnType<typeof runBin>>) =>
  documentOf(run).results.find((r) => r.provider === 'aws' && r.check === 'auth');

describe('check against the Secrets Manager double', () => {
  it('healthy: exit 0 after one ListSecrets (MaxResults 1), no value read', async () => {
    const cwd = setup('healthy');
    const before = { list: aws.count('ListSecrets'), get: aws.count('GetSecretValue') };
    const run = await runBin(['check', '--json'], { cwd, env: sdkEnv() });
    expect(run.code).toBe(0);
    expect(authLine(run)).toMatchObject({ outcome: 'ok', data: { action: 'secretsmanager:ListSecrets' } });
    expect(aws.count('ListSecrets')).toBe(before.list + 1);
    expect(aws.count('GetSecretValue')).toBe(before.get);
  });

  it('with watchKeys: one DescribeSecret of the first, the permission the watch needs', async () => {
    const dir = join(temp.dir, 'watch');
    mkdirSync(dir);
    // Credentials as file references this time, and the endpoint in the file.
    const keyId = writeSecretFile(dir, 'key-id', `${ACCESS_KEY_ID}\n`);
    const secret = writeSecretFile(dir, 'secret-key', `${SECRET_ACCESS_KEY}\n`);
    writeConfig(dir, {
      providers: [
        {
          name: 'aws',
          type: 'aws',
          region: REGION,
          endpoint: aws.url,
          credentials: { accessKeyId: { file: keyId }, secretAccessKey: { file: secret } },
          watchKeys: ['app/db#password', 'app/api-key'],
        },
      ],
    });
    const before = { describe: aws.count('DescribeSecret'), list: aws.count('ListSecrets') };
    const run = await runBin(['check', '--json'], { cwd: dir });
    expect(run.code).toBe(0);
    expect(authLine(run)).toMatchObject({
      outcome: 'ok',
      data: { action: 'secretsmanager:DescribeSecret' },
    });
    expect(authLine(run)?.detail).toContain('"app/db"');
    expect(aws.count('DescribeSecret')).toBe(before.describe + 1);
    expect(aws.count('ListSecrets')).toBe(before.list);
  });

  it('denied (AccessDeniedException): exit 3, the IAM action in the hint, the server text dropped', async () => {
    const cwd = setup('denied');
    aws.fail({
      kind: 'status',
      status: 400,
      type: 'AccessDeniedException',
      message: `User is not authorized to perform: secretsmanager:ListSecrets ${SERVER_TEXT}`,
    });
    const run = await runBin(['check', '--json'], { cwd, env: sdkEnv() });
    aws.clearFaults();
    expect(run.code).toBe(3);
    const line = authLine(run) as { outcome: string; data?: Record<string, unknown>; hint?: string };
    expect(line).toMatchObject({ outcome: 'denied', data: { code: 'ACCESS_DENIED' } });
    expect(line.hint).toContain('secretsmanager:ListSecrets');
    const human = await runBin(['check'], { cwd, env: { ...sdkEnv(), AWS_ACCESS_KEY_ID: 'AKIDUNKNOWN' } });
    expect(human.code).toBe(3);
    expect(human.stdout).toContain('UnrecognizedClientException');
  });

  it('unreachable, 5xx and a hang past --timeout: exit 2', async () => {
    const cwd = setup('unreachable', { endpoint: `http://127.0.0.1:${closedPort}` });
    const refused = await runBin(['check', '--json'], { cwd, env: sdkEnv() });
    expect(refused.code).toBe(2);
    expect(authLine(refused)).toMatchObject({ outcome: 'remote', data: { code: 'UNAVAILABLE' } });

    const failing = setup('5xx');
    aws.fail({ kind: 'status', status: 500, type: 'InternalServiceError', message: SERVER_TEXT });
    const fiveHundred = await runBin(['check', '--json'], { cwd: failing, env: sdkEnv() });
    aws.clearFaults();
    expect(fiveHundred.code).toBe(2);
    expect(authLine(fiveHundred)).toMatchObject({ outcome: 'remote' });

    aws.fail({ kind: 'hang' });
    const hung = await runBin(['check', '--json', '--timeout', '500'], { cwd: failing, env: sdkEnv() });
    aws.clearFaults();
    expect(hung.code).toBe(2);
    expect(authLine(hung)).toMatchObject({ outcome: 'remote', data: { code: 'TIMEOUT' } });
  });

  it('no credentials at all: a local error (exit 1), nothing sent', async () => {
    const cwd = setup('no-credentials', { region: REGION, endpoint: aws.url });
    const before = aws.requests.length;
    const run = await runBin(['check', '--json'], {
      cwd,
      env: { HOME: temp.dir, AWS_EC2_METADATA_DISABLED: 'true' },
    });
    expect(run.code).toBe(1);
    expect(authLine(run)).toMatchObject({ outcome: 'local' });
    expect(aws.requests.length).toBe(before);
  });
});

describe('can-i against the Secrets Manager double', () => {
  it('get: allowed, denied with the IAM action, denied by KMS; set and delete unknown', async () => {
    const cwd = setup('can-i');
    const run = await runBin(['can-i', 'get', 'app/db#password', 'app/locked', 'app/kms', '--json'], {
      cwd,
      env: sdkEnv(),
    });
    expect(run.code).toBe(3);
    const lines = documentOf(run).results.map((r) => [r.check, r.outcome, r.detail]);
    expect(lines).toEqual([
      ['get app/db#password', 'ok', 'allowed (secretsmanager:GetSecretValue)'],
      ['get app/locked', 'denied', 'denied (secretsmanager:GetSecretValue)'],
      ['get app/kms', 'denied', 'denied (kms:Decrypt)'],
    ]);
    const writes = await runBin(['can-i', 'set', 'app/db', '--json'], { cwd, env: sdkEnv() });
    expect(writes.code).toBe(0);
    const line = documentOf(writes).results[0] as { outcome: string; hint?: string };
    expect(line.outcome).toBe('unknown');
    expect(line.hint).toContain('secretsmanager:PutSecretValue');
    const list = await runBin(['can-i', 'list', 'app/', '--json'], { cwd, env: sdkEnv() });
    expect(list.code).toBe(0);
    expect(documentOf(list).results[0]).toMatchObject({ outcome: 'ok' });
  });
});

describe('keys and explain through the chain', () => {
  it('keys lists the secret names; explain names the provider that serves a field key', async () => {
    const cwd = setup('keys');
    const keys = await runBin(['keys', '--json'], { cwd, env: sdkEnv() });
    expect(keys.code).toBe(0);
    expect((documentOf(keys).keys as Record<string, string[]>).aws).toEqual(
      expect.arrayContaining(['app/db', 'app/api-key']),
    );
    const explain = await runBin(['explain', 'app/db#password'], { cwd, env: sdkEnv() });
    expect(explain.code).toBe(0);
    expect(explain.stdout).toContain('aws');
  });
});

describe('leak scan', () => {
  it('no output of any run above holds a secret value, the secret access key or server text', () => {
    expect(outputs.length).toBeGreaterThan(20);
    expectNoLeak(outputs, secrets, { encodings: true });
  });
});
