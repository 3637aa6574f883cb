// One fault run over the Vault and Key Vault doubles, seen by every operations output at once:
// the audit (NDJSON file and diagnostics-channel sinks), OpenTelemetry (in-memory span and
// metric exporters) and the built CLI (`check`, `can-i`, `explain`, `keys`, human and `--json`).
// Everything they produced is collected and scanned for every secret value and token of the
// run, plain and encoded. The collections are checked to cover the faults first, so the scan
// cannot pass on empty or uneventful output.
import { execFile } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { type AuditRecord, channelSink, createAuditor, fileSink } from '@secret-provider/audit';
import { AzureKeyVaultProvider } from '@secret-provider/azure';
import type { SecretProvider } from '@secret-provider/core';
import { FakeCredential, KeyVaultDouble } from '@secret-provider/doubles/key-vault';
import { VaultDouble } from '@secret-provider/doubles/vault';
import { instrumentSecretProvider } from '@secret-provider/opentelemetry';
import { expectNoLeak, rejection, tempDir, until } from '@secret-provider/testing';
import { VaultProvider } from '@secret-provider/vault';
import { afterAll, describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../packages/cli/bin/secret-provider.js', import.meta.url));
const CHANNEL = 'test:operations-leak-scan';

const DB_PASSWORD = 'ops-db-pass-Rk4mQ8vZ2x';
const DB_PASSWORD_2 = 'ops-db-pass-2-Tn7wL3pY';
const KV_VALUE = 'ops-kv-value-Jc5sH9dF1q';
const FILE_SECRET = 'ops-file-secret-Bx2gV6nM';
const FAULT_TEXT = 'ops-backend-echo-Wq8zK4rT';
const WRONG_TOKEN = 'hvs.ops-wrong-token-Pf3yN7cX';

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function runBin(args: readonly string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 30_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        if (code === -1) reject(error);
        else resolve({ code, stdout, stderr });
      },
    );
  });
}

function writeSecretFile(dir: string, name: string, text: string, mode = 0o600): string {
  const file = join(dir, name);
  writeFileSync(file, text, { mode });
  chmodSync(file, mode);
  return file;
}

const temp = tempDir('secret-provider-ops-');
const closers: (() => unknown)[] = [];
afterAll(async () => {
  for (const close of closers.reverse()) await close();
  temp.remove();
});

describe('operations leak scan over a fault run', () => {
  it('audit records, spans, metric attributes and CLI output hold no secret value or token', async () => {
    expect(existsSync(fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url)))).toBe(true);
    const secrets: string[] = [DB_PASSWORD, DB_PASSWORD_2, KV_VALUE, FILE_SECRET, FAULT_TEXT, WRONG_TOKEN];

    // ---- the doubles ---------------------------------------------------------------------------
    const vault = await VaultDouble.start();
    closers.push(() => vault.close());
    vault.kvPut('secret', 'app/db', { password: DB_PASSWORD });
    vault.kvPut('secret', 'forbidden/x', { password: DB_PASSWORD });
    vault.addDatabaseRole('app', { ttl: 3, maxTtl: 3, renewable: false });
    const appToken = vault.createToken({ ttl: 3600, renewable: true, policies: ['default', 'app'] }).id;
    const narrowToken = vault.createToken({
      ttl: 3600,
      policies: ['default'],
      deny: ['secret/data/forbidden/'],
    }).id;
    const keyVault = await KeyVaultDouble.start();
    closers.push(() => keyVault.stop());
    keyVault.setSecret('app-key', KV_VALUE);
    const kvToken = keyVault.issueToken();
    const kvGetless = keyVault.issueToken(['list']);
    secrets.push(vault.rootToken, appToken, narrowToken, kvToken, kvGetless);

    // ---- what observes the run -----------------------------------------------------------------
    const published: unknown[] = [];
    const listener = (message: unknown) => published.push(message);
    subscribe(CHANNEL, listener);
    closers.push(() => unsubscribe(CHANNEL, listener));
    const auditFile = join(temp.dir, 'audit.ndjson');
    const auditor = createAuditor({ sinks: [await fileSink(auditFile), channelSink(CHANNEL)] });
    const spanExporter = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(spanExporter)],
    });
    const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({
      exporter: metricExporter,
      exportIntervalMillis: 3_600_000,
    });
    const meterProvider = new MeterProvider({ readers: [reader] });
    const stopOtel = instrumentSecretProvider({ tracerProvider, meterProvider });
    closers.push(async () => {
      stopOtel();
      await meterProvider.shutdown();
      await tracerProvider.shutdown();
    });

    // ---- providers in process, every one audited --------------------------------------------------
    const providers: SecretProvider[] = [];
    const vaultWith = (name: string, token: string, extra: object = {}) => {
      const provider = new VaultProvider({
        name,
        endpoint: vault.url,
        auth: { method: 'token', token },
        env: {},
        cache: true,
        requestTimeoutMs: 300,
        retry: { retries: 0, baseDelayMs: 5, maxDelayMs: 20 },
        ...extra,
      });
      providers.push(provider);
      auditor.attach(provider);
      return provider;
    };
    const app = vaultWith('vault:app', appToken, { random: () => 0.5, leases: { revokeGraceMs: 0 } });
    const narrow = vaultWith('vault:narrow', narrowToken);
    const wrong = vaultWith('vault:wrong', WRONG_TOKEN);
    const credential = new FakeCredential(keyVault);
    const kv = new AzureKeyVaultProvider({
      name: 'kv',
      vaultUrl: keyVault.url,
      credential,
      cache: false,
      clientOptions: {
        tlsOptions: { ca: keyVault.ca },
        disableChallengeResourceVerification: true,
        retryOptions: { retryDelayInMs: 10, maxRetryDelayInMs: 50, maxRetries: 0 },
      },
    });
    providers.push(kv);
    auditor.attach(kv);
    closers.push(async () => {
      for (const provider of providers) await provider.close();
    });

    // ---- the fault run in process --------------------------------------------------------------
    expect((await app.get('secret/app/db#password')).reveal()).toBe(DB_PASSWORD);
    await app.get('secret/app/db#password'); // a cache hit
    await rejection(app.get('secret/app/missing#x')); // missing key
    vault.fail({
      kind: 'status',
      status: 500,
      body: { errors: [`${FAULT_TEXT} ${DB_PASSWORD}`] },
      match: 'secret/data/app/boom',
    });
    await rejection(app.get('secret/app/boom#x')); // 5xx echoing a value
    vault.fail({ kind: 'hang', match: 'secret/data/app/slow' });
    await rejection(app.get('secret/app/slow#x')); // timeout
    await rejection(narrow.get('secret/forbidden/x#password')); // denied
    await rejection(wrong.get('secret/app/db#password')); // wrong token
    vault.seal();
    await rejection(app.get('secret/app/sealed#x', { forceFetch: true })); // sealed
    vault.unseal();
    await app.set('secret/app/db#password', DB_PASSWORD_2); // a write
    // A dynamic credential that cannot be renewed: replaced before it expires (rotation).
    const user = await app.get('database/creds/app#username');
    const password = await app.get('database/creds/app#password');
    secrets.push(user.reveal(), password.reveal());
    const rotated = () =>
      published.some(
        (m) => (m as AuditRecord).kind === 'change' && (m as AuditRecord).operation === 'rotation',
      );
    await until(rotated, 8_000, 'lease rotation');
    const after = await app.get('database/creds/app#password');
    secrets.push(after.reveal());
    expect((await kv.get('app_key')).reveal()).toBe(KV_VALUE);
    keyVault.inject({ type: 'status', status: 403, match: (r) => r.name?.toLowerCase() === 'kv-denied' });
    await rejection(kv.get('kv_denied'));
    keyVault.inject({
      type: 'body',
      status: 500,
      body: JSON.stringify({ error: { code: 'InternalError', message: `${FAULT_TEXT} ${KV_VALUE}` } }),
      match: (r) => r.name?.toLowerCase() === 'kv-boom',
    });
    await rejection(kv.get('kv_boom'));
    keyVault.inject({ type: 'status', status: 503, match: (r) => r.name?.toLowerCase() === 'kv-down' });
    await rejection(kv.get('kv_down'));
    await rejection(kv.get('kv_missing'));
    secrets.push(...credential.issued);

    // ---- the CLI against the same doubles --------------------------------------------------------
    mkdirSync(join(temp.dir, 'volume'));
    writeSecretFile(join(temp.dir, 'volume'), 'api-key', FILE_SECRET);
    const cliSetup = (name: string, token: string) => {
      const dir = join(temp.dir, name);
      mkdirSync(dir);
      const tokenFile = writeSecretFile(dir, 'vault-token', `${token}\n`);
      writeSecretFile(dir, 'ca.pem', keyVault.ca, 0o644);
      writeSecretFile(
        dir,
        'secret-provider.config.json',
        JSON.stringify({
          providers: [
            { name: 'files', type: 'file', path: join(temp.dir, 'volume'), format: 'directory' },
            {
              name: 'vault',
              type: 'vault',
              endpoint: vault.url,
              auth: { method: 'token', token: { file: tokenFile } },
              requestTimeoutMs: 2000,
            },
            {
              name: 'kv',
              type: 'azure',
              vaultUrl: keyVault.url,
              credential: { type: 'access-token', token: { env: 'KV_TOKEN' } },
              caFile: 'ca.pem',
              disableChallengeResourceVerification: true,
            },
          ],
        }),
      );
      return dir;
    };
    const runs: Run[] = [];
    const cli = async (args: string[], cwd: string, kvTokenForRun = kvToken) => {
      // The human and the --json form side by side: 18 processes, each a Node start-up.
      const forms = [args, [...args, '--json']];
      runs.push(...(await Promise.all(forms.map((form) => runBin(form, cwd, { KV_TOKEN: kvTokenForRun })))));
    };
    const healthy = cliSetup('cli-app', appToken);
    await cli(['check'], healthy);
    await cli(['keys'], healthy);
    await cli(['explain', 'api-key'], healthy);
    await cli(['explain', 'secret/app/db#password'], healthy);
    await cli(['can-i', 'get', 'secret/app/db', 'app_key'], healthy);
    await cli(['can-i', 'get', 'secret/forbidden/x'], cliSetup('cli-narrow', narrowToken));
    await cli(['can-i', 'get', 'app_key'], healthy, kvGetless);
    await cli(['check'], cliSetup('cli-wrong', WRONG_TOKEN));
    vault.seal();
    try {
      await cli(['check'], healthy);
    } finally {
      vault.unseal();
    }

    // ---- collect ---------------------------------------------------------------------------------
    for (const provider of providers) await provider.close();
    await auditor.close();
    await reader.forceFlush();
    const fileRecords = readFileSync(auditFile, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as AuditRecord);
    const spans = spanExporter.getFinishedSpans().map((span) => ({
      name: span.name,
      attributes: span.attributes,
      events: span.events.map((e) => ({ name: e.name, attributes: e.attributes })),
      status: span.status,
    }));
    const metricAttributes = metricExporter
      .getMetrics()
      .flatMap((resource) => resource.scopeMetrics)
      .flatMap((scope) => scope.metrics)
      .flatMap((m) => m.dataPoints.map((p) => ({ metric: m.descriptor.name, attributes: p.attributes })));
    const cliOutput = runs.flatMap((run) => [run.stdout, run.stderr]);

    // ---- the collections cover the run ---------------------------------------------------------------
    expect(fileRecords.length).toBeGreaterThan(20);
    expect(published).toEqual(fileRecords);
    const codes = new Set(fileRecords.map((r) => r.errorCode));
    for (const code of ['NOT_FOUND', 'UNAVAILABLE', 'TIMEOUT', 'ACCESS_DENIED'])
      expect(codes).toContain(code);
    expect(fileRecords.filter((r) => r.outcome === 'denied').map((r) => r.provider)).toEqual(
      expect.arrayContaining(['vault:narrow', 'vault:wrong', 'kv']),
    );
    expect(fileRecords.some((r) => r.kind === 'cache-hits' && r.count === 1)).toBe(true);
    expect(fileRecords.some((r) => r.kind === 'change' && r.operation === 'rotation')).toBe(true);
    expect(fileRecords.some((r) => r.operation === 'set' && r.outcome === 'ok')).toBe(true);
    expect(fileRecords.some((r) => r.provider === 'kv' && (r.requestIds?.length ?? 0) > 0)).toBe(true);
    expect(fileRecords.some((r) => r.provider === 'vault:app' && (r.requestIds?.length ?? 0) > 0)).toBe(true);
    expect(spans.length).toBeGreaterThan(20);
    expect(spans.filter((s) => s.status.code === 2).length).toBeGreaterThan(5);
    expect(spans.some((s) => s.attributes['secret_provider.provider'] === 'kv')).toBe(true);
    expect(metricAttributes.length).toBeGreaterThan(10);
    expect(metricAttributes.some((m) => m.attributes['error.type'] !== undefined)).toBe(true);
    expect(runs).toHaveLength(18);
    expect(new Set(runs.map((r) => r.code))).toEqual(new Set([0, 2, 3]));
    expect(cliOutput.join('\n')).toMatch(/sealed/);
    expect(cliOutput.join('\n')).toMatch(/invalid, expired or revoked/);
    expect(cliOutput.join('\n')).toMatch(/denied \(secrets\/get\)/);
    expect(cliOutput.join('\n')).toContain('api-key');

    // ---- the scan ------------------------------------------------------------------------------------
    expect(new Set(secrets).size).toBe(secrets.length);
    expectNoLeak([fileRecords, readFileSync(auditFile, 'utf8'), published], secrets, { encodings: true });
    expectNoLeak([spans], secrets, { encodings: true });
    expectNoLeak([metricAttributes], secrets, { encodings: true });
    expectNoLeak(cliOutput, secrets, { encodings: true });
  }, 90_000);
});
