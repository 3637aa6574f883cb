import { inspect } from 'node:util';
import {
  AccessDeniedError,
  isSecretError,
  ProviderUnavailableError,
  RateLimitedError,
  SanitizedCause,
  SecretError,
  SecretNotFoundError,
} from '@secret-provider/core';
import { sanitizeCause } from '@secret-provider/core/adapter';
import { describe, expect, it } from 'vitest';

describe('error taxonomy', () => {
  it('carries a stable code, provider, key, operation and retryable', () => {
    const error = new SecretNotFoundError({ provider: 'vault', key: 'db/creds', operation: 'get' });
    expect(error).toMatchObject({
      code: 'NOT_FOUND',
      provider: 'vault',
      key: 'db/creds',
      operation: 'get',
      retryable: false,
    });
    expect(error.name).toBe('SecretNotFoundError');
    expect(error.message).toBe('secret not found: "db/creds" (provider "vault")');
    expect(new ProviderUnavailableError().retryable).toBe(true);
    expect(new RateLimitedError({ retryAfterMs: 2000 })).toMatchObject({
      retryable: true,
      retryAfterMs: 2000,
    });
  });

  it('instanceof works by code, and across duplicate copies of the package', () => {
    const error = new AccessDeniedError({ provider: 'azure' });
    expect(error instanceof SecretError).toBe(true);
    expect(error instanceof AccessDeniedError).toBe(true);
    expect(error instanceof SecretNotFoundError).toBe(false);
    // A plain object that carries the brand stands for an error from another copy of core.
    const foreign = Object.assign(Object.create(Error.prototype), { code: 'NOT_FOUND' });
    Object.defineProperty(foreign, Symbol.for('secret-provider.error'), { value: true });
    expect(isSecretError(foreign)).toBe(true);
    expect(isSecretError(foreign, 'NOT_FOUND')).toBe(true);
    expect(foreign instanceof SecretNotFoundError).toBe(true);
    expect(foreign instanceof AccessDeniedError).toBe(false);
    expect(isSecretError(new Error('x'))).toBe(false);
  });

  it('sanitizes foreign causes: no message, token or body survives', () => {
    const axiosLike = Object.assign(new Error('Request failed: body {"password":"s3cr3t-value"}'), {
      name: 'AxiosError',
      code: 'ECONNRESET',
      config: { headers: { 'X-Vault-Token': 'hvs.TOKEN-VALUE' }, data: '{"password":"s3cr3t-value"}' },
      response: { status: 503 },
    });
    const error = new ProviderUnavailableError({ provider: 'vault', key: 'k', cause: axiosLike });
    const forms = [
      inspect(error, { depth: Infinity, showHidden: true }),
      JSON.stringify(error),
      String(error.stack),
      String((error.cause as Error).stack),
    ].join('\n');
    expect(forms).not.toContain('s3cr3t-value');
    expect(forms).not.toContain('hvs.TOKEN-VALUE');
    expect(error.cause).toBeInstanceOf(SanitizedCause);
    expect(error.cause).toMatchObject({ originalName: 'AxiosError', code: 'ECONNRESET' });
  });

  it('rebuilds Node system error messages from their fields, keeping an IP peer', () => {
    const system = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8200'), {
      code: 'ECONNREFUSED',
      syscall: 'connect',
      address: '127.0.0.1',
      port: 8200,
    });
    expect(sanitizeCause(system).message).toBe('connect ECONNREFUSED 127.0.0.1:8200');
  });

  it('never keeps the path of a system error: a transform may do I/O on the value', async () => {
    const { readFile } = await import('node:fs/promises');
    const error = await readFile('/nonexistent/hunter2-secret-path').catch((e: unknown) => e);
    expect(String((error as Error).message)).toContain('hunter2');
    const cause = sanitizeCause(error);
    expect(cause.message).toBe('open ENOENT');
    expect(
      inspect(new SecretError('INVALID_VALUE', 'x', { cause: error }), { depth: Infinity }),
    ).not.toContain('hunter2');
  });

  it('drops message lines that look like stack frames, and names and codes a server could phrase', () => {
    const hostile = new Error('denied\n    at hunter2-in-a-frame (/app/x.js:1:1)');
    Object.assign(hostile, { name: 'Error: hunter2 said', code: 'code with hunter2 inside it and spaces' });
    const cause = sanitizeCause(hostile);
    const text = [cause.message, cause.stack, JSON.stringify(cause), inspect(cause)].join('\n');
    expect(text).not.toContain('hunter2');
    expect(cause).toMatchObject({ originalName: 'Error', code: undefined });
    expect(cause.stack).toMatch(/\n {4}at /);
  });

  it('survives getters that throw', () => {
    const nasty = Object.defineProperty(new Error('x'), 'code', {
      get() {
        throw new Error('hunter2 getter');
      },
    });
    expect((sanitizeCause(nasty) as SanitizedCause).code).toBeUndefined();
  });

  it('withholds a JSON.parse message, which quotes its input', () => {
    let parseError: unknown;
    try {
      JSON.parse('hunter2-super-secret');
    } catch (error) {
      parseError = error;
    }
    expect(String((parseError as Error).message)).toContain('hunter2');
    const wrapped = new SecretError('INVALID_VALUE', 'cannot parse', { cause: parseError });
    expect(inspect(wrapped, { depth: Infinity })).not.toContain('hunter2');
  });
});

describe('subclasses defined by adapters', () => {
  it('use ordinary instanceof, not "any SecretError"', () => {
    class AdapterError extends SecretError {}
    const mine = new AdapterError('CONFLICT', 'mine');
    expect(mine instanceof AdapterError).toBe(true);
    expect(mine instanceof SecretError).toBe(true);
    expect(new SecretNotFoundError() instanceof AdapterError).toBe(false);
  });
});
