import { type RequestContext, subscribeTelemetry } from '@secret-provider/core';
import { expectNoLeak } from '@secret-provider/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { type SingleVault, singleVault } from './fixtures.js';

const VALUE = 'kv-telemetry-Qz81mP';

let vault: SingleVault | undefined;
let stop: (() => void) | undefined;
afterEach(async () => {
  stop?.();
  await vault?.stop();
  vault = undefined;
});

describe('Key Vault requests on the request channel', () => {
  it('carry x-ms-request-id, the status and a path template, never the value', async () => {
    const requests: RequestContext[] = [];
    stop = subscribeTelemetry({ request: (context) => requests.push({ ...context }) });
    vault = await singleVault({ cache: false });
    vault.double.setSecret('DB-PASSWORD', VALUE);
    expect((await vault.provider.get('DB_PASSWORD')).reveal()).toBe(VALUE);
    await vault.provider.set('DB_PASSWORD', `${VALUE}-2`);
    const reads = requests.filter((r) => r.operation === 'read' && r.status === 200);
    expect(reads).toHaveLength(1);
    expect(reads[0]).toMatchObject({
      provider: vault.provider.name,
      method: 'GET',
      target: '/secrets/{name}',
      outcome: 'ok',
    });
    expect(reads[0]?.correlationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(reads[0]?.clientRequestId).toMatch(/^[0-9a-f-]{36}$/);
    // The SDK's first request of a client is the unauthenticated challenge: a 401, published too.
    expect(requests.some((r) => r.status === 401)).toBe(true);
    expect(requests.some((r) => r.operation === 'write' && r.status === 200)).toBe(true);
    expectNoLeak([requests], [VALUE], { encodings: true });
  });
});
