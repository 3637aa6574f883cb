import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { createEmitter, isSecretError, Secret } from '@secret-provider/core';
import { VaultDouble } from '@secret-provider/doubles/vault';
import { expectNoLeak, rejection } from '@secret-provider/testing';
import { ManualClock, VaultProvider } from '@secret-provider/vault';
import nodeVault from 'node-vault';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settle, trackUnhandledRejections } from './helpers.js';

trackUnhandledRejections({ beforeAll, afterAll });

// A fault-injection run with every kind of failure the provider maps, collecting every error it
// throws and every event it emits, then searching all of them, in every printable form, for
// tokens, login credentials and secret values.

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-leak-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('leak scan', () => {
  it('node-vault’s own network errors do carry the token and the request body (why mapping matters)', async () => {
    const double = await VaultDouble.start();
    await double.stopListening();
    const client = nodeVault({ endpoint: double.url, token: 'hvs.raw-token-visible' });
    const raw = await rejection(client.write('secret/data/x', { data: { value: 'raw-body-value' } }));
    await double.close();
    const printed = inspect(raw, { depth: 10 });
    expect(printed).toContain('hvs.raw-token-visible');
    expect(JSON.stringify(raw)).toContain('raw-body-value');
  });

  it('finds neither tokens, login credentials nor values in any error or event of a fault-injection run', async () => {
    const clock = new ManualClock();
    const double = await VaultDouble.start({ now: () => clock.now() });
    const { roleId, secretId } = double.addAppRole('app', { ttl: 600, explicitMaxTtl: 1200 });
    const secretIdFile = join(dir, 'secret-id');
    await writeFile(secretIdFile, secretId);
    double.addDatabaseRole('app', { ttl: 120, maxTtl: 600, renewable: true });
    const values = Array.from(
      { length: 12 },
      (_, i) => `leak-check-value-${i}-${Math.random().toString(36).slice(2)}`,
    );
    for (const [i, value] of values.entries())
      double.kvPut('secret', `app/k${i}`, { value, other: `${value}-field` });

    const provider = new VaultProvider({
      endpoint: double.url,
      auth: { method: 'approle', roleId: new Secret(roleId), secretIdFile },
      clock,
      env: { STATIC_SECRETS_REFRESH_INTERVALS: `{"secret/app/k1": ${JSON.stringify(values[0])}` },
      requestTimeoutMs: 200,
      retry: { retries: 1, baseDelayMs: 10 },
      staticRefresh: { intervals: { 'secret/app/*': 60 }, loopIntervalMs: 5_000 },
      pollInterval: 5_000,
      leases: { revokeGraceMs: 1_000 },
    });
    const errors: unknown[] = [];
    const events: unknown[] = [];
    const emitter = createEmitter();
    emitter.on('*', (_type, event) => events.push(event));
    const handle = provider.watch(emitter);
    await handle.ready;
    const attempt = async (work: () => Promise<unknown>) => {
      try {
        await settle(work(), clock);
      } catch (error) {
        errors.push(error);
      }
    };
    const dynamic: string[] = [];
    const useDynamic = async () => {
      const user = await provider.get('database/creds/app#username');
      const password = await provider.get('database/creds/app#password');
      dynamic.push(user.reveal(), password.reveal());
    };

    for (let i = 0; i < values.length; i++) await attempt(() => provider.get(`secret/app/k${i}#value`));
    await attempt(useDynamic);
    const faults: Array<() => void | Promise<void>> = [
      () => double.fail({ kind: 'reset', count: 3 }),
      () => double.fail({ kind: 'hang', count: 2 }),
      () =>
        double.fail({
          kind: 'status',
          status: 500,
          body: { errors: [`internal error near ${values[2]}`] },
          count: 3,
        }),
      () =>
        double.fail({ kind: 'status', status: 400, body: { errors: [`bad input: ${values[3]}`] }, count: 2 }),
      () => double.rateLimit({ count: 4 }),
      () => double.rateLimit({ count: 2, retryAfter: 1 }),
      () => double.seal(),
      () => double.unseal(),
      () => double.setStandby('redirect'),
      () => double.setStandby(false),
      () => double.stopListening(),
      () => double.resumeListening(),
    ];
    for (const [round, fault] of faults.entries()) {
      await fault();
      const value = values[round % values.length] as string;
      await attempt(() => provider.set(`secret/app/k${round % values.length}#value`, `${value}-new`));
      values.push(`${value}-new`);
      await attempt(() => provider.set(`secret/other/w${round}`, `write-${value}`, { ifVersion: '99' }));
      values.push(`write-${value}`);
      await attempt(() => provider.get(`secret/app/k${(round + 1) % 12}`));
      await attempt(useDynamic);
      await attempt(() => provider.keys({ prefix: 'secret/app/', recursive: true }));
      await attempt(() => provider.refresh({ timeout: 1_000 }));
      await clock.advance(30_000);
    }
    // Expired and revoked tokens: re-login, and a policy denial.
    const tokens = [...double.state.tokens.values()].filter((t) => t.path === 'auth/approle/login');
    double.revokeToken(tokens.at(-1)?.id ?? '');
    await attempt(useDynamic);
    await attempt(() => provider.get('secret/app/k5'));
    await attempt(() => provider.get('sys/policy/x'));
    await attempt(() => provider.get('secret/missing'));
    await clock.advance(600_000);
    await provider.close();
    await handle.stop();
    await double.close();

    const needles = [
      ...[...double.state.tokens.values()].map((t) => t.id),
      ...[...double.state.tokens.values()].map((t) => t.accessor),
      roleId,
      secretId,
      ...values,
      ...dynamic,
    ];
    expect(errors.length).toBeGreaterThan(10);
    expect(events.length).toBeGreaterThan(10);
    expect(errors.every((e) => isSecretError(e))).toBe(true);
    expectNoLeak(errors, needles);
    expectNoLeak(events, needles);
    expectNoLeak([provider, provider.options, provider.stats(), provider.configWarnings], needles);
    // The run did exercise what it claims to: several codes, leases, re-logins.
    const codes = new Set(errors.map((e) => (e as { code: string }).code));
    expect(codes.size).toBeGreaterThanOrEqual(4);
    expect(dynamic.length).toBeGreaterThan(4);
  });
});
