import { RestError } from '@azure/keyvault-secrets';
import {
  KeyVaultDeletedSecretConflictError,
  KeyVaultNameCollisionError,
  KeyVaultSecretUnusableError,
  mapKeyVaultError,
} from '@secret-provider/azure';
import { AccessDeniedError, isSecretError, SecretError, SecretNotFoundError } from '@secret-provider/core';
import { expectNoLeak } from '@secret-provider/testing';
import { describe, expect, it } from 'vitest';

// Each native failure the SDK or a credential can throw, mapped one by one. Every RestError here
// carries a bearer token and a value in its request, as the SDK's do, and none may survive.

const TOKEN = 'eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.token-that-must-not-leak';
const VALUE = 'value-that-must-not-leak-7f3a';

function restError(
  status: number | undefined,
  options: {
    code?: string | undefined;
    inner?: string | undefined;
    headers?: Record<string, string>;
    message?: string;
  } = {},
): RestError {
  const headers = new Map(
    Object.entries({ authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }),
  );
  const request = {
    url: 'https://kv.vault.azure.net/secrets/DATABASE-URL?api-version=2026-04-01',
    method: 'PUT',
    headers: {
      get: (name: string) => headers.get(name.toLowerCase()),
      toJSON: () => Object.fromEntries(headers),
    },
    body: JSON.stringify({ value: VALUE }),
  };
  const responseHeaders = new Map(Object.entries(options.headers ?? {}));
  const error = new RestError(options.message ?? `failed with ${VALUE} and ${TOKEN}`, {
    ...(status === undefined ? {} : { statusCode: status }),
    ...(options.code === undefined ? {} : { code: options.code }),
    request: request as never,
    response: {
      status: status ?? 0,
      headers: { get: (name: string) => responseHeaders.get(name.toLowerCase()) },
      request,
      bodyAsText: JSON.stringify({ error: { code: options.code, message: `echo ${VALUE}` } }),
    } as never,
  });
  if (options.inner !== undefined || options.code !== undefined) {
    error.details = {
      error: { code: options.code, message: `echo ${VALUE}`, innerError: { code: options.inner } },
    };
  }
  return error;
}

const context = {
  provider: 'azure',
  operation: 'get' as const,
  action: 'get' as const,
  key: 'DATABASE_URL',
  vault: 'prod',
  secretName: 'DATABASE-URL',
};

function expectClean(error: SecretError): void {
  expectNoLeak([error, error.cause], [TOKEN, VALUE, 'Bearer']);
  expect(error.cause).not.toBeInstanceOf(RestError);
}

describe('mapKeyVaultError', () => {
  it.each([
    [401, undefined, undefined, 'ACCESS_DENIED', /rejected the credential's token \(401\)/],
    [403, 'Forbidden', 'AccessDenied', 'ACCESS_DENIED', /secrets\/get permission.*getSecret\/action/],
    [403, 'Forbidden', 'ForbiddenByRbac', 'ACCESS_DENIED', /\[ForbiddenByRbac\]/],
    [404, 'SecretNotFound', undefined, 'NOT_FOUND', /secret not found/],
    [409, 'Conflict', undefined, 'CONFLICT', /409/],
    [429, 'Throttled', undefined, 'RATE_LIMITED', /throttled/],
    [503, 'ServiceUnavailable', undefined, 'UNAVAILABLE', /answered 503/],
    [500, 'InternalServerError', undefined, 'UNAVAILABLE', /answered 500/],
    [408, undefined, undefined, 'UNAVAILABLE', /answered 408/],
    [418, undefined, undefined, 'UNKNOWN', /answered 418/],
  ])('maps %i %s/%s to %s', (status, code, inner, expected, message) => {
    const mapped = mapKeyVaultError(restError(status, { code, inner }), context);
    expect(mapped.code).toBe(expected);
    expect(mapped.message).toMatch(message);
    expect(mapped.status).toBe(status);
    expect(mapped.key).toBe('DATABASE_URL');
    expect(mapped.provider).toBe('azure');
    expectClean(mapped);
  });

  it('names the permission of the action that was denied', () => {
    const set = mapKeyVaultError(restError(403, { code: 'Forbidden', inner: 'AccessDenied' }), {
      ...context,
      operation: 'set',
      action: 'set',
    });
    expect(set.message).toContain('secrets/set');
    expect(set.message).toContain('Microsoft.KeyVault/vaults/secrets/setSecret/action');
    const list = mapKeyVaultError(restError(403, { code: 'Forbidden' }), {
      ...context,
      operation: 'keys',
      action: 'list',
    });
    expect(list.message).toContain('secrets/list');
    expect(list).toBeInstanceOf(AccessDeniedError);
  });

  it('maps 403 SecretDisabled to an unusable secret, not to not-found', () => {
    const mapped = mapKeyVaultError(restError(403, { code: 'Forbidden', inner: 'SecretDisabled' }), context);
    expect(mapped).toBeInstanceOf(KeyVaultSecretUnusableError);
    expect((mapped as KeyVaultSecretUnusableError).reason).toBe('disabled');
    expect(mapped.code).toBe('ACCESS_DENIED');
    expect(mapped.retryable).toBe(false);
    expect(mapped).not.toBeInstanceOf(SecretNotFoundError);
    expectClean(mapped);
  });

  it('maps 409 on a deleted name to a conflict that says how to recover or purge', () => {
    const deleted = mapKeyVaultError(
      restError(409, { code: 'Conflict', inner: 'ObjectIsDeletedButRecoverable' }),
      {
        ...context,
        operation: 'set',
        action: 'set',
      },
    );
    expect(deleted).toBeInstanceOf(KeyVaultDeletedSecretConflictError);
    expect(deleted.code).toBe('CONFLICT');
    expect(deleted.retryable).toBe(false);
    expect(deleted.message).toMatch(/recoverDeleted.*purgeDeleted/);
    const deleting = mapKeyVaultError(restError(409, { code: 'Conflict', inner: 'ObjectIsBeingDeleted' }), {
      ...context,
      operation: 'set',
      action: 'set',
    });
    expect((deleting as KeyVaultDeletedSecretConflictError).beingDeleted).toBe(true);
    expect(deleting.retryable).toBe(true);
    expectClean(deleted);
  });

  it.each([
    [{ 'retry-after': '7' }, 7_000],
    [{ 'retry-after-ms': '250' }, 250],
    [{ 'x-ms-retry-after-ms': '40' }, 40],
    [{}, undefined],
  ])('reads how long a 429 asked to wait from %j', (headers, wait) => {
    const mapped = mapKeyVaultError(restError(429, { code: 'Throttled', headers }), context);
    expect(mapped.code).toBe('RATE_LIMITED');
    expect(mapped.retryAfterMs).toBe(wait);
    expect(mapped.retryable).toBe(true);
  });

  it.each(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'ENOTFOUND', 'REQUEST_SEND_ERROR'])(
    'maps a network failure (%s) to UNAVAILABLE',
    (code) => {
      const mapped = mapKeyVaultError(restError(undefined, { code }), context);
      expect(mapped.code).toBe('UNAVAILABLE');
      expect(mapped.message).toContain(code);
      expectClean(mapped);
    },
  );

  it('maps credential failures: none available is configuration, a refused one is access denied', () => {
    const unavailable = Object.assign(new Error(`no credential; tried ${TOKEN}`), {
      name: 'CredentialUnavailableError',
    });
    expect(mapKeyVaultError(unavailable, context).code).toBe('INVALID_CONFIG');
    const refused = Object.assign(new Error(`AADSTS7000215 ${TOKEN}`), { name: 'AuthenticationError' });
    const mapped = mapKeyVaultError(refused, context);
    expect(mapped.code).toBe('ACCESS_DENIED');
    expectClean(mapped);
    const aborted = Object.assign(new Error('The operation was aborted.'), { name: 'AbortError' });
    expect(mapKeyVaultError(aborted, context).code).toBe('TIMEOUT');
  });

  it('reports anything else as UNKNOWN without its message', () => {
    const mapped = mapKeyVaultError(new TypeError(`bad ${VALUE}`), context);
    expect(mapped.code).toBe('UNKNOWN');
    expectClean(mapped);
  });

  it('keeps only documented codes: a server-chosen code, inner code, message or name reads as neutral text', () => {
    const marker = 'PWNED-code-from-the-server';
    const error = restError(403, { code: `Forbidden ${marker}`, inner: marker });
    error.name = marker;
    (error.details as { error: { message: string } }).error.message = marker;
    for (const [status, action] of [
      [403, 'get'],
      [400, 'set'],
      [400, 'get'],
      [409, 'set'],
      [404, 'get'],
      [503, 'get'],
    ] as const) {
      error.statusCode = status;
      const mapped = mapKeyVaultError(error, { ...context, action, operation: action });
      expectNoLeak([mapped], [marker]);
      expect(JSON.stringify(mapped.cause)).not.toContain(marker);
      expectClean(mapped);
    }
    const known = mapKeyVaultError(restError(409, { code: 'Conflict', inner: 'ObjectIsBeingDeleted' }), {
      ...context,
      action: 'set',
      operation: 'set',
    });
    expect(String(known.cause)).toContain('RestError 409 Conflict/ObjectIsBeingDeleted');
    const unknown = mapKeyVaultError(restError(403, { code: 'Forbidden', inner: marker }), context);
    expect(unknown.message).toContain('[unrecognised code]');
    expect(unknown.cause).toMatchObject({ originalName: 'RestError', code: 'Forbidden', status: 403 });
  });

  it('keeps x-ms-request-id only when it is a GUID', () => {
    const guid = '0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0';
    const kept = mapKeyVaultError(restError(503, { headers: { 'x-ms-request-id': guid } }), context);
    expect(String(kept.cause)).toContain(`x-ms-request-id ${guid.toLowerCase()}`);
    const dropped = mapKeyVaultError(
      restError(503, {
        headers: { 'x-ms-request-id': `${guid} ${VALUE}`, 'www-authenticate': `Bearer ${TOKEN}` },
      }),
      context,
    );
    expect(String(dropped.cause)).not.toContain('x-ms-request-id');
    expectClean(dropped);
  });

  it('a 404 without Key Vault not-found code, and a 2xx that could not be parsed, are UNAVAILABLE', () => {
    expect(mapKeyVaultError(restError(404), context).code).toBe('UNAVAILABLE');
    expect(mapKeyVaultError(restError(404, { code: 'SecretNotFound' }), context).code).toBe('NOT_FOUND');
    const parse = mapKeyVaultError(restError(200, { code: 'PARSE_ERROR' }), context);
    expect(parse.code).toBe('UNAVAILABLE');
    expect(parse.retryable).toBe(true);
    expectClean(parse);
  });

  it('measures an HTTP-date Retry-After on the given clock', () => {
    const now = Date.UTC(2030, 5, 1, 12, 0, 0);
    const headers = { 'retry-after': new Date(now + 90_000).toUTCString() };
    const mapped = mapKeyVaultError(restError(429, { code: 'Throttled', headers }), {
      ...context,
      clock: { now: () => now, setTimer: () => ({ cancel: () => {} }) },
    });
    expect(mapped.retryAfterMs).toBe(90_000);
    const garbage = mapKeyVaultError(restError(429, { headers: { 'retry-after': `${VALUE}` } }), context);
    expect(garbage.retryAfterMs).toBeUndefined();
  });

  it('passes SecretErrors through', () => {
    const original = new SecretNotFoundError({ key: 'k' });
    expect(mapKeyVaultError(original, context)).toBe(original);
  });
});

describe('error classes', () => {
  it('match instanceof only for their own instances, also across package copies (brands)', () => {
    const unusable = new KeyVaultSecretUnusableError({
      key: 'k',
      reason: 'expired',
      vault: 'v',
      secretName: 'k',
      expiresAt: new Date(0),
    });
    const collision = new KeyVaultNameCollisionError({
      key: 'a',
      vault: 'v',
      secretName: 'A',
      keys: ['a', 'A'],
    });
    const notFound = new SecretNotFoundError({ key: 'k' });
    expect(unusable).toBeInstanceOf(KeyVaultSecretUnusableError);
    expect(unusable).toBeInstanceOf(SecretError);
    expect(unusable).toBeInstanceOf(AccessDeniedError);
    expect(notFound).not.toBeInstanceOf(KeyVaultSecretUnusableError);
    expect(collision).not.toBeInstanceOf(KeyVaultSecretUnusableError);
    expect(collision).toBeInstanceOf(KeyVaultNameCollisionError);
    expect(isSecretError(collision, 'CONFLICT')).toBe(true);
    expect(unusable.message).toContain('expired at 1970-01-01T00:00:00.000Z');
    expect(JSON.parse(JSON.stringify(unusable))).toMatchObject({ code: 'ACCESS_DENIED', reason: 'expired' });
  });
});
