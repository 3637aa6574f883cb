import { AzureKeyVaultProvider } from '@secret-provider/azure';
import { createEmitter, isSecretError } from '@secret-provider/core';
import { FakeCredential, KeyVaultDouble } from '@secret-provider/doubles/key-vault';
import { renderings, until } from '@secret-provider/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { clientOptionsFor } from './fixtures.js';

// A run under injected faults: every error and event it produces is printed every way a logger
// could print it, and searched for the bearer tokens and the values. The SDK's RestError carries
// both (its request has the Authorization header and, on a write, the body), so this fails the
// moment one escapes unsanitized.

const values = Array.from({ length: 8 }, (_, i) => `leak-canary-${i}-${Math.random().toString(36).slice(2)}`);
const doubles: KeyVaultDouble[] = [];

afterAll(async () => {
  for (const double of doubles) await double.stop();
});

/**
 * Every string reachable from `thing` through own properties, enumerable or not, and Map/Set
 * entries: what a logger that serializes errors field by field could print. A RestError keeps
 * the request (headers with the token, body with the value) in non-enumerable fields that
 * String/JSON/inspect do not show; this walk finds them.
 */
function reachableStrings(thing: unknown, seen = new Set<unknown>(), depth = 0): string[] {
  if (typeof thing === 'string') return [thing];
  if (typeof thing !== 'object' || thing === null || seen.has(thing) || depth > 10) return [];
  seen.add(thing);
  const out: string[] = [];
  if (thing instanceof Map || thing instanceof Set) {
    for (const entry of thing) out.push(...reachableStrings(entry, seen, depth + 1));
  }
  for (const name of Object.getOwnPropertyNames(thing)) {
    let value: unknown;
    try {
      value = (thing as Record<string, unknown>)[name];
    } catch {
      continue;
    }
    out.push(...reachableStrings(value, seen, depth + 1));
  }
  return out;
}

/** What a logger could print: the shared renderings plus every reachable string. */
function forms(thing: unknown): string[] {
  return [...renderings(thing), ...reachableStrings(thing)];
}

describe('leak scan of a fault-injection run', () => {
  it('finds neither a bearer token nor a value in any error or event', async () => {
    const double = await KeyVaultDouble.start();
    doubles.push(double);
    const credential = new FakeCredential(double);
    const readOnlyCredential = new FakeCredential(double, { permissions: ['get', 'list'] });
    const common = { vaultUrl: double.url, clientOptions: clientOptionsFor(double), onWarning: () => {} };
    const provider = new AzureKeyVaultProvider({ ...common, credential, pollInterval: 30, cache: false });
    const readOnly = new AzureKeyVaultProvider({ ...common, credential: readOnlyCredential, cache: false });
    const errors: unknown[] = [];
    const events: unknown[] = [];
    const capture = async (work: Promise<unknown>) => {
      try {
        await work;
      } catch (error) {
        errors.push(error);
      }
    };
    const emitter = createEmitter();
    emitter.on('*', (_type, event) => events.push(event));
    const handle = provider.watch(emitter);
    await handle.ready;

    // Writes that fail after the value was sent: 503 (retried by the SDK, then given up), resets.
    double.inject({ type: 'status', status: 503, match: (r) => r.operation === 'setSecret' && r.authorized });
    await capture(provider.set('CANARY_0', values[0] as string));
    double.clearFaults();
    double.inject({ type: 'reset', match: (r) => r.operation === 'setSecret' && r.authorized });
    await capture(provider.set('CANARY_1', values[1] as string));
    double.clearFaults();
    // 429 with and without Retry-After, on writes and reads.
    double.inject({ type: 'status', status: 429, match: (r) => r.operation === 'setSecret' && r.authorized });
    await capture(provider.set('CANARY_2', values[2] as string));
    double.clearFaults();
    double.setSecret('CANARY-3', values[3] as string);
    double.inject({
      type: 'status',
      status: 429,
      retryAfterMs: 5,
      match: (r) => r.operation === 'getSecret',
    });
    await capture(provider.get('CANARY_3'));
    double.clearFaults();
    // Denied writes (403 naming the permission) and rejected tokens (401).
    await capture(readOnly.set('CANARY_4', values[4] as string));
    readOnlyCredential.revokeAll();
    const issue = readOnlyCredential.getToken.bind(readOnlyCredential);
    readOnlyCredential.getToken = async (scopes, options) => {
      const token = await issue(scopes, options);
      readOnlyCredential.revokeAll();
      return token;
    };
    await capture(readOnly.get('CANARY_3'));
    // Disabled, expired, deleted-but-recoverable, collisions.
    double.setSecret('CANARY-5', values[5] as string, { enabled: false });
    await capture(provider.get('CANARY_5'));
    double.setSecret('CANARY-6', values[6] as string, { expiresOn: new Date(Date.now() - 1_000) });
    await capture(provider.get('CANARY_6'));
    await provider.set('CANARY_7', values[7] as string);
    await provider.delete('CANARY_7');
    await capture(provider.set('CANARY_7', values[7] as string));
    await capture(provider.set('canary_3', values[3] as string));
    // The watch sees rotations, additions and removals, and a failing list.
    double.setSecret('CANARY-3', `${values[3]}-rotated`);
    double.setSecret('NEW-CANARY', values[0] as string);
    await until(() => events.some((e) => (e as { keys?: string[] }).keys?.includes('CANARY_3')));
    const outage = double.inject({
      type: 'status',
      status: 503,
      match: (r) => r.operation === 'listSecrets',
    });
    await until(() => events.some((e) => isSecretError((e as { error?: unknown }).error)));
    outage.remove();
    await handle.stop();
    await provider.close();
    await readOnly.close();

    const codes = errors.map((e) => (isSecretError(e) ? e.code : 'not a SecretError'));
    expect(codes).toEqual([
      'UNAVAILABLE',
      'UNAVAILABLE',
      'RATE_LIMITED',
      'RATE_LIMITED',
      'ACCESS_DENIED',
      'ACCESS_DENIED',
      'ACCESS_DENIED',
      'ACCESS_DENIED',
      'CONFLICT',
      'CONFLICT',
    ]);
    expect(events.length).toBeGreaterThanOrEqual(3);
    const tokens = [...credential.issued, ...readOnlyCredential.issued];
    expect(tokens.length).toBeGreaterThan(0);
    const secrets = [...values, ...tokens, 'Bearer kvd.'];
    for (const thing of [...errors, ...events]) {
      for (const text of forms(thing)) for (const secret of secrets) expect(text).not.toContain(secret);
    }
  });
});
