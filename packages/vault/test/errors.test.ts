import { createRequire } from 'node:module';
import { inspect } from 'node:util';
import { isSecretError, type SecretErrorCode } from '@secret-provider/core';
import { expectNoLeak } from '@secret-provider/testing';
import {
  describeFailure,
  isInvalidToken,
  isLeaseGone,
  isRetryable,
  mapFailure,
  parseRetryAfter,
} from '@secret-provider/vault';
import { describe, expect, it } from 'vitest';

// The mapping of node-vault's failures into the taxonomy, case by case. HTTP failures are made
// by node-vault itself (its response handler), network failures are real AxiosErrors carrying a
// token and a body, as node-vault's are.

const require = createRequire(import.meta.url);
const nodeVault = require('node-vault') as (options: object) => {
  handleVaultResponse(response: {
    statusCode: number;
    body: unknown;
    request: { path: string };
  }): Promise<unknown>;
};
const { AxiosError } = createRequire(require.resolve('node-vault'))('axios') as {
  AxiosError: new (
    message: string,
    code: string,
    config: object,
    request?: object,
    response?: object,
  ) => Error;
};

const TOKEN = 'hvs.unit-token-must-not-leak';
const BODY_VALUE = 'unit-body-value-must-not-leak';
const client = nodeVault({ endpoint: 'http://127.0.0.1:1', token: TOKEN });

async function vaultError(statusCode: number, body: unknown): Promise<unknown> {
  try {
    await client.handleVaultResponse({ statusCode, body, request: { path: '/v1/secret/data/x' } });
  } catch (error) {
    return error;
  }
  throw new Error('no rejection');
}

function axiosError(code: string, message = `connect ${code} 127.0.0.1:8200`): Error {
  return new AxiosError(message, code, {
    headers: { 'X-Vault-Token': TOKEN, 'X-OperationId': 'op' },
    data: JSON.stringify({ data: { value: BODY_VALUE } }),
    url: 'http://127.0.0.1:8200/v1/secret/data/x',
  });
}

const context = { provider: 'vault', operation: 'get' as const, key: 'secret/x' };

function mapped(error: unknown, retryAfterMs?: number) {
  return mapFailure(error, describeFailure(error, retryAfterMs), context);
}

const expectClean = (error: unknown) => expectNoLeak([error], [TOKEN, BODY_VALUE]);

describe('HTTP failures', () => {
  const cases: Array<[string, number, unknown, SecretErrorCode, boolean, RegExp?]> = [
    ['missing secret', 404, { errors: [] }, 'NOT_FOUND', false],
    [
      'deleted KV v2 version (404 with body)',
      404,
      { data: { data: null, metadata: { version: 3 } } },
      'NOT_FOUND',
      false,
    ],
    [
      'policy denial',
      403,
      { errors: ['1 error occurred:\n\t* permission denied\n\n'] },
      'ACCESS_DENIED',
      false,
      /access denied.*permission denied/,
    ],
    [
      'invalid token',
      403,
      { errors: ['2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n'] },
      'ACCESS_DENIED',
      false,
      /token is invalid/,
    ],
    ['no token', 403, { errors: ['permission denied'] }, 'ACCESS_DENIED', false],
    ['proxy 401', 401, {}, 'ACCESS_DENIED', false],
    [
      'CAS mismatch',
      400,
      { errors: ['check-and-set parameter did not match the current version'] },
      'CONFLICT',
      false,
      /check-and-set/,
    ],
    ['CAS required', 400, { errors: ['check-and-set parameter required for this call'] }, 'CONFLICT', false],
    [
      'bad AppRole login',
      400,
      { errors: ['invalid role or secret ID'] },
      'ACCESS_DENIED',
      false,
      /login refused/,
    ],
    ['other 400', 400, { errors: [`invalid input ${BODY_VALUE}`] }, 'UNKNOWN', false],
    ['405', 405, { errors: ['unsupported operation'] }, 'UNSUPPORTED', false],
    ['415', 415, { errors: ['unsupported media type'] }, 'UNKNOWN', false],
    ['412 consistency', 412, { errors: [] }, 'UNAVAILABLE', true],
    [
      '429 quota',
      429,
      { errors: ['request path "secret/data/x": rate limit quota exceeded'] },
      'RATE_LIMITED',
      true,
      /rate limit quota exceeded/,
    ],
    ['500', 500, { errors: [`internal error: ${BODY_VALUE}`] }, 'UNAVAILABLE', true],
    ['501 not initialised', 501, { errors: [] }, 'UNAVAILABLE', false],
    ['502', 502, {}, 'UNAVAILABLE', true],
    ['503 sealed', 503, { errors: ['Vault is sealed'] }, 'UNAVAILABLE', true, /Vault is sealed/],
    [
      '503 standby',
      503,
      { errors: ['local node not active but active cluster node not found'] },
      'UNAVAILABLE',
      true,
    ],
    ['504', 504, {}, 'UNAVAILABLE', true],
    ['418 unexpected', 418, {}, 'UNKNOWN', false],
  ];
  for (const [name, status, body, code, retryable, message] of cases) {
    it(`${name}: ${status} -> ${code}`, async () => {
      const error = mapped(await vaultError(status, body));
      expect(isSecretError(error, code)).toBe(true);
      expect(error.status).toBe(status);
      expect(error.retryable).toBe(retryable);
      expect(error.provider).toBe('vault');
      expect(error.key).toBe('secret/x');
      if (message) expect(error.message).toMatch(message);
      // Vault's text is quoted only when known to be free of data.
      expect(error.message).not.toContain(BODY_VALUE);
      expectClean(error);
    });
  }

  it('carries Retry-After on 429', async () => {
    const error = mapped(await vaultError(429, { errors: [] }), 7_000);
    expect(error.retryAfterMs).toBe(7_000);
  });

  it('reads Retry-After from a response that carries headers (custom transports)', () => {
    const failure = describeFailure({
      response: { statusCode: 429, body: {}, headers: { 'Retry-After': '3' } },
    });
    expect(failure.retryAfterMs).toBe(3_000);
  });

  it('tells an invalid token from a policy denial, and recognizes Vault’s lease errors', async () => {
    expect(
      isInvalidToken(
        describeFailure(
          await vaultError(403, {
            errors: ['2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n'],
          }),
        ),
      ),
    ).toBe(true);
    expect(
      isInvalidToken(
        describeFailure(await vaultError(403, { errors: ['1 error occurred:\n\t* permission denied\n\n'] })),
      ),
    ).toBe(false);
    for (const message of [
      'lease not found',
      'lease expired',
      'lease is not renewable',
      'past the max TTL, cannot renew',
    ]) {
      expect(isLeaseGone(describeFailure(await vaultError(400, { errors: [message] })))).toBe(true);
    }
    expect(isLeaseGone(describeFailure(await vaultError(400, { errors: ['something else'] })))).toBe(false);
    // Vault never sends 401, but proxies in front of it do: treated as a rejected token.
    expect(isInvalidToken(describeFailure(await vaultError(401, {})))).toBe(true);
  });
});

describe('network failures (raw AxiosErrors with the token and body in their config)', () => {
  const cases: Array<[string, SecretErrorCode, boolean, boolean]> = [
    // code, mapped code, retryable flag, retried for a non-idempotent write
    ['ECONNREFUSED', 'UNAVAILABLE', true, true],
    ['ECONNRESET', 'UNAVAILABLE', true, false],
    ['EPIPE', 'UNAVAILABLE', true, false],
    ['ENOTFOUND', 'UNAVAILABLE', true, true],
    ['EAI_AGAIN', 'UNAVAILABLE', true, true],
    ['EHOSTUNREACH', 'UNAVAILABLE', true, false],
    ['ECONNABORTED', 'TIMEOUT', true, false],
    ['ETIMEDOUT', 'TIMEOUT', true, false],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'UNAVAILABLE', false, false],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNAVAILABLE', false, false],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'UNAVAILABLE', false, false],
    ['CERT_HAS_EXPIRED', 'UNAVAILABLE', false, false],
    ['ERR_FR_TOO_MANY_REDIRECTS', 'UNKNOWN', false, false],
  ];
  for (const [code, expected, retryable, retriedForWrite] of cases) {
    it(`${code} -> ${expected}`, () => {
      const raw = axiosError(code);
      // The raw error does carry the secrets: this is what must not escape.
      expect(inspect(raw, { depth: 5 })).toContain(TOKEN);
      const error = mapped(raw);
      expect(isSecretError(error, expected)).toBe(true);
      expect(error.retryable).toBe(retryable);
      expect(error.message).toContain(code);
      expect((error.cause as { code?: string }).code).toBe(code);
      expect(isRetryable(describeFailure(raw), true)).toBe(retryable);
      expect(isRetryable(describeFailure(raw), false)).toBe(retriedForWrite);
      expectClean(error);
    });
  }

  it('maps node-vault’s argument validation (tv4) and unknown errors without their messages', () => {
    const validation = mapped({
      message: `Invalid type: string (expected integer) ${BODY_VALUE}`,
      dataPath: '/increment',
      schemaPath: '/properties/increment/type',
    });
    expect(isSecretError(validation, 'INVALID_VALUE')).toBe(true);
    expectClean(validation);
    const unknown = mapped(new Error(`something with ${BODY_VALUE} and ${TOKEN}`));
    expect(isSecretError(unknown, 'UNKNOWN')).toBe(true);
    expectClean(unknown);
    expect(mapped(unknown)).toBe(unknown);
  });
});

describe('Retry-After', () => {
  it('parses delay-seconds and HTTP dates', () => {
    expect(parseRetryAfter('7')).toBe(7_000);
    expect(parseRetryAfter('0.5')).toBe(500);
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
    const now = Date.UTC(2026, 0, 1);
    expect(parseRetryAfter(new Date(now + 30_000).toUTCString(), now)).toBe(30_000);
  });
});
