import { inspect } from 'node:util';
import { createRedactor, REDACTED } from '@secret-provider/core';
import { scrubError, scrubText } from '@secret-provider/logging';
import { describe, expect, it } from 'vitest';

const KNOWN = 'known-secret-value-77';
const BEARER = 'eyJhbGciOiJSUzI1NiJ9.payload.sig';

class FakeSocket {
  readonly remoteAddress = '10.0.0.1';
  readonly buffered = `GET /?token=${BEARER}`;
}
class FakeRequest {
  readonly socket = new FakeSocket();
  readonly headers = { authorization: `Bearer ${BEARER}` };
}
class HttpClientError extends Error {
  override name = 'HttpClientError';
  config = {
    url: `https://user:${KNOWN}@api.example/v1/items?sig=abcdef123&page=2`,
    headers: {
      Authorization: `Bearer ${BEARER}`,
      Accept: 'application/json',
      'X-Api-Key': 'raw-api-key-value',
    },
    data: Buffer.from(`password=${KNOWN}`),
  };
  request = new FakeRequest();
  response = { status: 401, data: { error: 'invalid_token', detail: `token ${KNOWN} expired` } };
}

describe('scrubError', () => {
  it('masks known values, sensitive fields and credential shapes, and drops attached sockets', () => {
    const redactor = createRedactor({ values: [KNOWN] });
    const error = new HttpClientError(
      `GET https://api.example/v1/items?access_token=${BEARER} failed: Bearer ${BEARER}`,
    );
    const before = inspect(error, { depth: 10 });
    const scrubbed = scrubError(error, { redactor });
    expect(inspect(error, { depth: 10 })).toBe(before);
    expect(scrubbed).toBeInstanceOf(HttpClientError);
    expect(scrubbed.name).toBe('HttpClientError');
    expect(scrubbed.message).toBe(
      `GET https://api.example/v1/items?access_token=${REDACTED} failed: Bearer ${REDACTED}`,
    );
    expect(scrubbed.config.headers).toEqual({
      Authorization: REDACTED,
      Accept: 'application/json',
      'X-Api-Key': REDACTED,
    });
    expect(scrubbed.config.url).toBe(`https://user:${REDACTED}@api.example/v1/items?sig=${REDACTED}&page=2`);
    expect(scrubbed.config.data).toBe(`[Buffer ${error.config.data.length} bytes]`);
    expect(scrubbed.request).toBe('[FakeRequest]');
    expect(scrubbed.response).toEqual({
      status: 401,
      data: { error: 'invalid_token', detail: `token ${REDACTED} expired` },
    });
    const shown = `${inspect(scrubbed, { depth: 10 })} ${JSON.stringify(scrubbed)} ${scrubbed.stack}`;
    for (const value of [KNOWN, BEARER, 'raw-api-key-value', 'abcdef123']) expect(shown).not.toContain(value);
  });

  it('scrubs cause chains, AggregateErrors and cycles', () => {
    const inner = new Error(`inner with Authorization: Basic ${Buffer.from('u:p4ss').toString('base64')}`);
    const outer = new Error('outer', { cause: inner });
    (inner as Error & { parent?: unknown }).parent = outer;
    const aggregate = new AggregateError([outer, 'text with password=hunter22'], 'many');
    const scrubbed = scrubError(aggregate);
    expect(scrubbed).toBeInstanceOf(AggregateError);
    const first = scrubbed.errors[0] as Error;
    const cause = first.cause as Error & { parent?: unknown };
    expect(cause.message).toBe(`inner with Authorization: Basic ${REDACTED}`);
    expect(cause.parent).toBe(first);
    expect(scrubbed.errors[1]).toBe('text with password=hunter22');
    expect(scrubText('{"password":"hunter22","user":"ann"}')).toBe(`{"password":"${REDACTED}","user":"ann"}`);
  });

  it('passes non-errors through the same scrubbing', () => {
    expect(scrubError({ token: 'abc', list: ['Bearer abcdefghijkl'] })).toEqual({
      token: REDACTED,
      list: [`Bearer ${REDACTED}`],
    });
    expect(scrubError('plain')).toBe('plain');
    expect(scrubText('see https://a:b@host/x', { patterns: true, mask: '***' })).toBe(
      'see https://a:***@host/x',
    );
  });
});

describe('scrubError: exotic errors (the redactor walk, with the scrubber rules)', () => {
  it('scrubs a DOMException and an error class with private fields into copies that print', () => {
    const redactor = createRedactor({ values: [KNOWN] });
    const dom = new DOMException(`fetch aborted, Authorization: Bearer ${BEARER}`, 'AbortError');
    class VendorError extends Error {
      readonly #request: string;
      constructor(request: string) {
        super('vendor call failed');
        this.#request = request;
      }
      get request(): string {
        return this.#request;
      }
      toJSON(): Record<string, unknown> {
        return { message: this.message, request: this.#request };
      }
    }
    const vendor = new VendorError(`POST /pay?api_key=${KNOWN}`);
    const scrubbed = scrubError({ dom, vendor }, { redactor });
    expect(scrubbed.dom).toBeInstanceOf(DOMException);
    expect(scrubbed.dom.message).toBe(`fetch aborted, Authorization: Bearer ${REDACTED}`);
    expect(scrubbed.dom.name).toBe('AbortError');
    expect(scrubbed.vendor).toBeInstanceOf(VendorError);
    expect(scrubbed.vendor.request).toBe(`POST /pay?api_key=${REDACTED}`);
    const shown = `${inspect(scrubbed, { depth: 10, showHidden: true })} ${JSON.stringify(scrubbed)} ${String(scrubbed.dom)}`;
    for (const value of [KNOWN, BEARER]) expect(shown).not.toContain(value);
    expect(dom.message).toContain(BEARER);
  });

  it('truncates deeper than maxDepth counted from the error, and leaves errors without secrets as they are', () => {
    const deep = Object.assign(new Error('deep'), { a: { b: { c: { token: 'abc' } } } });
    expect(scrubError(deep, { maxDepth: 2 })).toMatchObject({ a: { b: '[Truncated]' } });
    const clean = Object.assign(new Error('nothing to hide'), { status: 404 });
    expect(scrubError(clean)).toBe(clean);
  });
});
