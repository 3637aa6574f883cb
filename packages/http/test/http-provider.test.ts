import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isSecretError, type SecretError } from '@secret-provider/core';
import { BaseProvider, ManualClock } from '@secret-provider/core/adapter';
import { HttpProvider } from '@secret-provider/http';
import { MemoryProvider, MemoryStore } from '@secret-provider/memory';
import { expectNoLeak, record, rejection, summary, tempDir, until } from '@secret-provider/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { DocumentServer, type DocumentServerOptions } from './server.js';

const servers: DocumentServer[] = [];
const providers: HttpProvider[] = [];

async function serve(options: DocumentServerOptions = {}): Promise<DocumentServer> {
  const server = await DocumentServer.start(options);
  servers.push(server);
  return server;
}

function open(options: ConstructorParameters<typeof HttpProvider>[0]): HttpProvider {
  const provider = new HttpProvider({ pollJitter: 0, ...options });
  providers.push(provider);
  return provider;
}

afterEach(async () => {
  await Promise.all(providers.splice(0).map((p) => p.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const SECRET = 'hunter2-do-not-leak';
const json = (document: unknown) => JSON.stringify(document);

describe('HttpProvider: reading documents', () => {
  it('reads nested JSON keys as the file provider names them', async () => {
    const server = await serve({ body: json({ db: { password: SECRET, port: 5432 }, flag: true }) });
    const provider = open({ url: server.url() });
    expect((await provider.get('db.password')).reveal()).toBe(SECRET);
    expect((await provider.get('db.port')).reveal()).toBe('5432');
    expect((await provider.get('flag')).reveal()).toBe('true');
    expect((await provider.keys()).sort()).toEqual(['db.password', 'db.port', 'flag']);
    expect(await provider.has('db.password')).toBe(true);
    expect(await provider.has('db')).toBe(false);
    expect((await provider.metadata('db.password')).version).toMatch(/^[\w-]{22}$/);
    const missing = await rejection(provider.get('db.user'));
    expect(isSecretError(missing, 'NOT_FOUND')).toBe(true);
    expect(provider.capabilities).toMatchObject({ write: false, delete: false, list: true, watch: true });
    expect(isSecretError(await rejection(provider.set('x', 'y')), 'READ_ONLY')).toBe(true);
  });

  it('reads a .env document, and one raw value', async () => {
    const text = `A=1\nexport TOKEN="${SECRET}"\n# a comment\nB='two words'\n`;
    const server = await serve({ body: text, contentType: 'text/plain' });
    const env = open({ url: server.url('/app.env') });
    expect((await env.get('TOKEN')).reveal()).toBe(SECRET);
    expect((await env.get('B')).reveal()).toBe('two words');
    expect((await env.keys()).sort()).toEqual(['A', 'B', 'TOKEN']);
    const raw = open({ url: server.url('/token'), format: 'value', valueKey: 'token' });
    expect((await raw.get('token')).reveal()).toBe(text);
    expect(() => new HttpProvider({ url: server.url('/token'), format: 'value' })).toThrow(/valueKey/);
  });

  it('takes the format from Content-Type when the path does not tell, and refuses to guess otherwise', async () => {
    const server = await serve({ body: json({ a: SECRET }), contentType: 'application/vnd.config+json' });
    expect((await open({ url: server.url('/api/config') }).get('a')).reveal()).toBe(SECRET);
    server.options.contentType = 'text/plain';
    const error = await rejection(open({ url: server.url('/api/other') }).get('a'));
    expect(isSecretError(error, 'UNAVAILABLE')).toBe(true);
    expect(String(error)).toMatch(/set `format`/);
  });

  it('reports a body that does not parse as UNAVAILABLE, with a position and never the text', async () => {
    const server = await serve({ body: `{"a": "${SECRET}",,}` });
    const provider = open({ url: server.url() });
    const error = (await rejection(provider.get('a'))) as SecretError;
    expect(isSecretError(error, 'UNAVAILABLE')).toBe(true);
    expect(error.message).toMatch(/line 1, column \d+/);
    expectNoLeak([error], [SECRET]);
    server.setBody(json([SECRET]));
    expect(isSecretError(await rejection(open({ url: server.url() }).get('a')), 'UNAVAILABLE')).toBe(true);
  });

  it('maps statuses: 404 of the document is an outage, 401/403 ACCESS_DENIED, 5xx UNAVAILABLE', async () => {
    const server = await serve({ body: json({ a: '1' }) });
    const cases: Array<[number, string]> = [
      [404, 'UNAVAILABLE'],
      [410, 'UNAVAILABLE'],
      [401, 'ACCESS_DENIED'],
      [403, 'ACCESS_DENIED'],
      [500, 'UNAVAILABLE'],
      [502, 'UNAVAILABLE'],
      [400, 'UNAVAILABLE'],
    ];
    for (const [status, code] of cases) {
      server.fail({ kind: 'status', status, body: `upstream says ${SECRET}` });
      const error = (await rejection(open({ url: server.url() }).get('a'))) as SecretError;
      expect(error.code, `HTTP ${status}`).toBe(code);
      expect(error.status).toBe(status);
      expectNoLeak([error], [SECRET, server.url()]);
    }
  });

  it('follows redirects within the origin, and refuses one to another origin, whose server gets nothing', async () => {
    const server = await serve({ body: json({ a: SECRET }) });
    const other = await serve({ body: json({ a: 'elsewhere' }) });
    server.fail({ kind: 'status', status: 302, headers: { location: '/moved.json' } });
    const provider = open({ url: server.url(), headers: { 'x-api-key': 'key-1' } });
    expect((await provider.get('a')).reveal()).toBe(SECRET);
    expect(server.requests.map((r) => r.headers['x-api-key'])).toEqual(['key-1', 'key-1']);
    server.fail({ kind: 'status', status: 307, headers: { location: other.url() } });
    const error = (await rejection(
      open({ url: server.url(), headers: { 'x-api-key': 'key-1' } }).get('a'),
    )) as SecretError;
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.message).toMatch(/redirected to another origin/);
    expect(other.count()).toBe(0);
    expectNoLeak([error], [other.url(), 'key-1']);
  });

  it('refuses a body larger than maxBytes', async () => {
    const server = await serve({ body: json({ a: 'x'.repeat(5_000) }) });
    const error = await rejection(open({ url: server.url(), maxBytes: 1_000 }).get('a'));
    expect(isSecretError(error, 'UNAVAILABLE')).toBe(true);
    expect(String(error)).toMatch(/larger than 1000 bytes/);
  });
});

describe('HttpProvider: YAML and TOML documents', () => {
  const yaml = `# app settings\ndb:\n  password: "${SECRET}"\n  port: 5432\nflag: true\n`;
  const toml = `flag = true\n\n[db]\npassword = "${SECRET}"\nport = 5432\n`;

  it('reads YAML and TOML keys as the file provider names them, the format told by the path', async () => {
    const server = await serve({ body: yaml, contentType: 'application/octet-stream' });
    for (const path of ['/app.yaml', '/app.yml']) {
      const provider = open({ url: server.url(path) });
      expect((await provider.get('db.password')).reveal()).toBe(SECRET);
      expect((await provider.keys()).sort()).toEqual(['db.password', 'db.port', 'flag']);
    }
    expect(server.requests.at(-1)?.headers.accept).toMatch(/^application\/yaml/);
    server.setBody(toml);
    const provider = open({ url: server.url('/app.toml') });
    expect((await provider.get('db.password')).reveal()).toBe(SECRET);
    expect((await provider.get('db.port')).reveal()).toBe('5432');
    expect((await provider.keys()).sort()).toEqual(['db.password', 'db.port', 'flag']);
    expect(server.requests.at(-1)?.headers.accept).toMatch(/^application\/toml/);
    const flat = open({ url: server.url('/flat.toml'), jsonKeys: 'flat' });
    expect((await flat.keys()).sort()).toEqual(['db', 'flag']);
  });

  it('takes the format from Content-Type before the path, and the option before both', async () => {
    const server = await serve({ body: yaml });
    for (const type of [
      'application/yaml',
      'text/yaml; charset=utf-8',
      'application/x-yaml',
      'text/x-yaml',
    ]) {
      server.options.contentType = type;
      expect((await open({ url: server.url('/api/config') }).get('db.password')).reveal(), type).toBe(SECRET);
    }
    // The server says YAML: a path in `.json` does not override it.
    server.options.contentType = 'application/yaml';
    expect((await open({ url: server.url('/config.json') }).get('db.password')).reveal()).toBe(SECRET);
    server.setBody(toml);
    server.options.contentType = 'application/toml';
    expect((await open({ url: server.url('/api/config') }).get('db.password')).reveal()).toBe(SECRET);
    // The option wins over a Content-Type that says something else.
    server.options.contentType = 'application/json';
    expect((await open({ url: server.url('/api/config'), format: 'toml' }).get('db.password')).reveal()).toBe(
      SECRET,
    );
    // JSON is YAML; a JSON Content-Type over a YAML-only body does not parse.
    server.setBody(yaml);
    const error = await rejection(open({ url: server.url('/config.yaml') }).get('db.password'));
    expect(isSecretError(error, 'UNAVAILABLE')).toBe(true);
    expect(String(error)).toMatch(/invalid JSON document/);
    expectNoLeak([error], [SECRET]);
    expect(() => new HttpProvider({ url: server.url(), format: 'xml' as 'json' })).toThrow(
      /format must be one of/,
    );
  });

  it('reports a YAML or TOML body that does not parse as UNAVAILABLE, with a line and column and never the text', async () => {
    const cases: Array<[string, string, RegExp]> = [
      [
        '/bad.yaml',
        `db:\n  password: "${SECRET}\n  port: [1, 2\n`,
        /invalid YAML document: invalid YAML at line \d+, column \d+/,
      ],
      [
        '/dup.yaml',
        `a: ${SECRET}\na: ${SECRET}\n`,
        /invalid YAML document: invalid YAML at line 2, column 1/,
      ],
      [
        '/bad.toml',
        `[db]\npassword = "${SECRET}\nport = 5432\n`,
        /invalid TOML document: invalid TOML at line 2, column \d+/,
      ],
      ['/list.yaml', `- ${SECRET}\n`, /top level must be a YAML mapping/],
    ];
    const server = await serve({ contentType: 'text/plain' });
    for (const [path, body, message] of cases) {
      server.setBody(body);
      const error = (await rejection(open({ url: server.url(path) }).get('db.password'))) as SecretError;
      expect(isSecretError(error, 'UNAVAILABLE'), path).toBe(true);
      expect(error.message, path).toMatch(message);
      expectNoLeak([error], [SECRET]);
    }
  });

  it('watches a YAML document: a rotated value and an added key are reported by name only', async () => {
    const server = await serve({ body: yaml, contentType: 'application/yaml', etag: true });
    const provider = open({ url: server.url('/config'), pollInterval: 20, minInterval: 20 });
    const { events, handle } = await record(provider);
    server.setBody(`${yaml.replace(SECRET, `${SECRET}-2`)}extra: 1\n`);
    await until(() => summary(events).length >= 2, 5_000, 'events of the change');
    expect(summary(events).sort()).toEqual(['added:extra', 'rotated:db.password']);
    expect((await provider.get('db.password')).reveal()).toBe(`${SECRET}-2`);
    expectNoLeak(
      events.map((e) => e.event),
      [SECRET],
    );
    await handle.stop();
  });
});

describe('HttpProvider: a watch started while the server fails', () => {
  it('reports the outage once, starts by itself once the server answers, and reports later changes only', async () => {
    const server = await serve({ body: json({ a: SECRET }), etag: true });
    server.fail({ kind: 'status', status: 503 }, 3);
    const provider = open({ url: server.url(), pollInterval: 40, minInterval: 10 });
    const { events, handle } = await record(provider);
    expect(summary(events, ['error'])).toHaveLength(1);
    await until(() => server.count(200) >= 1, 5_000, 'the document, once the server answers');
    expect(server.count(503)).toBe(3);
    // The document read by the start that succeeded is the starting point: `a` is no change.
    await until(() => server.count(304) >= 2, 5_000, 'the polls after the start');
    expect(summary(events, ['added', 'rotated', 'removed', 'error'])).toHaveLength(1);
    server.setBody(json({ a: SECRET, b: '2' }));
    await until(() => summary(events).length >= 1, 5_000, 'the addition');
    expect(summary(events)).toEqual(['added:b']);
    await handle.stop();
  });
});

describe('HttpProvider: polling with validators', () => {
  it('revalidates with If-None-Match; a 304 costs no parse and emits nothing', async () => {
    const server = await serve({ body: json({ a: SECRET }), etag: true });
    const provider = open({ url: server.url(), pollInterval: 40, minInterval: 10 });
    const { events, handle } = await record(provider);
    await until(() => server.count(304) >= 3, 5_000, 'three 304 answers');
    expect(server.requests[1]?.headers['if-none-match']).toBe('"v0"');
    expect(provider.stats().parses).toBe(1);
    expect(summary(events, ['added', 'rotated', 'removed', 'error'])).toEqual([]);
    server.setBody(json({ a: 'rotated-value', b: '2' }));
    await until(() => summary(events).length >= 2, 5_000, 'events of the change');
    expect(summary(events).sort()).toEqual(['added:b', 'rotated:a']);
    expect((await provider.get('a')).reveal()).toBe('rotated-value');
    expect(provider.stats().parses).toBe(2);
    expectNoLeak(
      events.map((e) => e.event),
      [SECRET, 'rotated-value'],
    );
    await handle.stop();
  });

  it('revalidates with If-Modified-Since when the server sends only Last-Modified', async () => {
    const server = await serve({ body: json({ a: '1' }), lastModified: true });
    const provider = open({ url: server.url(), pollInterval: 30, minInterval: 10 });
    const { handle } = await record(provider);
    await until(() => server.count(304) >= 2, 5_000, 'two 304 answers');
    const conditional = server.requests.find((r) => r.status === 304);
    expect(conditional?.headers['if-modified-since']).toBe('Thu, 01 Jan 2026 00:00:00 GMT');
    expect(conditional?.headers['if-none-match']).toBeUndefined();
    expect(provider.stats().parses).toBe(1);
    await handle.stop();
  });

  it('detects a change of a body served without validators, and does not parse an unchanged one', async () => {
    const server = await serve({ body: json({ a: '1', b: '2' }) });
    const provider = open({ url: server.url(), pollInterval: 30, minInterval: 10 });
    const { events, handle } = await record(provider);
    await until(() => server.count() >= 4, 5_000, 'four polls');
    expect(provider.stats().parses).toBe(1);
    expect(server.requests.every((r) => r.headers['if-none-match'] === undefined)).toBe(true);
    server.setBody(json({ a: '1' }));
    await until(() => summary(events).length > 0, 5_000, 'the removal');
    expect(summary(events)).toEqual(['removed:b']);
    await handle.stop();
  });

  it('follows Cache-Control max-age (less Age) for reads and polls, clamped to minInterval and maxInterval', async () => {
    const clock = new ManualClock(Date.now());
    const server = await serve({ body: json({ a: '1' }), etag: true, cacheControl: 'public, max-age=20' });
    const provider = open({
      url: server.url(),
      clock,
      pollInterval: 60_000,
      minInterval: 5_000,
      maxInterval: 120_000,
    });
    await provider.get('a');
    await clock.advance(19_000);
    await provider.get('a');
    expect(server.count()).toBe(1); // fresh: reads answer from the document
    await clock.advance(2_000);
    await provider.get('a');
    expect(server.count()).toBe(2);
    expect(server.count(304)).toBe(1);

    // A watch polls at max-age, not at pollInterval.
    const { handle } = await record(provider);
    await clock.advance(21_000);
    await until(() => server.count() === 3, 2_000, 'the poll at max-age');
    await clock.advance(21_000);
    await until(() => server.count() === 4, 2_000, 'the next poll at max-age');

    // no-cache is clamped up to minInterval; a long max-age down to maxInterval.
    server.options.cacheControl = 'no-cache';
    await clock.advance(21_000);
    await until(() => server.count() === 5, 2_000, 'the poll that learns no-cache');
    await clock.advance(5_100);
    await until(() => server.count() === 6, 2_000, 'a poll after minInterval');
    server.options.cacheControl = 'max-age=100000';
    await clock.advance(5_100);
    await until(() => server.count() === 7, 2_000, 'the poll that learns the long max-age');
    await clock.advance(110_000);
    expect(server.count()).toBe(7);
    await clock.advance(11_000);
    await until(() => server.count() === 8, 2_000, 'a poll at maxInterval');
    await handle.stop();
  });

  it('uses Age to shorten max-age', async () => {
    const clock = new ManualClock(Date.now());
    const server = await serve({
      body: json({ a: '1' }),
      cacheControl: 'max-age=30',
      headers: { age: '25' },
    });
    const provider = open({ url: server.url(), clock, pollInterval: 60_000, minInterval: 1_000 });
    await provider.get('a');
    await clock.advance(4_000);
    await provider.get('a');
    expect(server.count()).toBe(1);
    await clock.advance(2_000);
    await provider.get('a');
    expect(server.count()).toBe(2);
  });

  it('falls back to pollInterval without max-age', async () => {
    const clock = new ManualClock(Date.now());
    const server = await serve({ body: json({ a: '1' }), etag: true });
    const provider = open({ url: server.url(), clock, pollInterval: 10_000, minInterval: 1_000 });
    const { handle } = await record(provider);
    expect(server.count()).toBe(1);
    await clock.advance(9_000);
    expect(server.count()).toBe(1);
    await clock.advance(1_100);
    await until(() => server.count() === 2, 2_000, 'the poll at pollInterval');
    await clock.advance(10_100);
    await until(() => server.count() === 3, 2_000, 'the next poll');
    expect(server.count(304)).toBe(2);
    await handle.stop();
  });
});

describe('HttpProvider: jittered polls', () => {
  it('polls within a jittered interval of the last validation, never skipping one', async () => {
    const clock = new ManualClock(Date.now());
    const server = await serve({ body: json({ a: '1' }), etag: true });
    const provider = new HttpProvider({ url: server.url(), clock, pollInterval: 10_000, minInterval: 1_000 });
    providers.push(provider);
    const { handle } = await record(provider);
    const times: number[] = [];
    let seen = server.count();
    for (let step = 0; step < 200; step++) {
      await clock.advance(500);
      if (server.count() > seen) {
        seen = server.count();
        times.push(clock.now());
      }
    }
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    expect(gaps.length).toBeGreaterThanOrEqual(9);
    for (const gap of gaps) {
      expect(gap).toBeGreaterThanOrEqual(9_000 - 500); // jitter 0.1 shortens by at most 10 %
      expect(gap).toBeLessThanOrEqual(10_000 + 500);
    }
    await handle.stop();
  });
});

describe('HttpProvider: failures', () => {
  it('waits Retry-After (seconds) after a 429, reads answer from the held document meanwhile', async () => {
    const clock = new ManualClock(Date.now());
    const server = await serve({ body: json({ a: SECRET }), etag: true });
    const provider = open({ url: server.url(), clock, pollInterval: 1_000, minInterval: 1_000 });
    const { events, handle } = await record(provider);
    server.fail({ kind: 'status', status: 429, headers: { 'retry-after': '20' } });
    await clock.advance(1_100);
    await until(() => server.count(429) === 1, 2_000, 'the 429');
    const errors = events
      .filter((e) => e.type === 'error')
      .map((e) => (e.event as { error: SecretError }).error);
    expect(errors.map((e) => e.code)).toEqual(['RATE_LIMITED']);
    expect(errors[0]?.retryAfterMs).toBe(20_000);
    expect(
      events.some((e) => e.type === 'warning' && (e.event as { code: string }).code === 'STALE_DOCUMENT'),
    ).toBe(true);
    expect((await provider.get('a')).reveal()).toBe(SECRET); // stale-if-error, no request
    await clock.advance(18_000);
    expect(server.count()).toBe(2);
    await clock.advance(13_000); // Retry-After, spread by at most half of itself
    await until(() => server.count() >= 3, 2_000, 'the poll after Retry-After');
    expect(server.requests[2]?.status).toBe(304);
    await handle.stop();
  });

  it('waits Retry-After given as an HTTP date after a 503', async () => {
    const clock = new ManualClock(Date.now());
    const server = await serve({ body: json({ a: '1' }) });
    const provider = open({ url: server.url(), clock, pollInterval: 1_000, minInterval: 1_000 });
    const { events, handle } = await record(provider);
    const at = new Date(Date.now() + 30_000).toUTCString();
    server.fail({ kind: 'status', status: 503, headers: { 'retry-after': at } });
    await clock.advance(1_100);
    await until(() => server.count(503) === 1, 2_000, 'the 503');
    const error = events.find((e) => e.type === 'error')?.event as { error: SecretError };
    expect(error.error.code).toBe('UNAVAILABLE');
    expect(error.error.retryAfterMs).toBeGreaterThan(27_000);
    expect(error.error.retryAfterMs).toBeLessThanOrEqual(30_000);
    await clock.advance(27_000);
    expect(server.count()).toBe(2);
    await clock.advance(19_000);
    await until(() => server.count() >= 3, 2_000, 'the poll after the date');
    await handle.stop();
  });

  it('backs off with jitter on 500s, keeps serving the last good document, and recovers by itself', async () => {
    const clock = new ManualClock(Date.now());
    const server = await serve({ body: json({ a: SECRET }), etag: true });
    const provider = open({
      url: server.url(),
      clock,
      pollInterval: 1_000,
      minInterval: 1_000,
      staleIfError: 30_000,
    });
    const { events, handle } = await record(provider);
    server.fail({ kind: 'status', status: 500, body: SECRET }, 1_000);
    const times: number[] = [];
    let seen = server.count();
    for (let step = 0; step < 60; step++) {
      await clock.advance(1_000);
      if (server.count() > seen) {
        seen = server.count();
        times.push(clock.now());
      }
    }
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    // Exponential: later gaps are longer than the first ones.
    expect(gaps.length).toBeGreaterThanOrEqual(3);
    expect(gaps.at(-1) as number).toBeGreaterThan((gaps[0] as number) * 2);
    // Within staleIfError the held document answers; past it, the failure.
    const error = (await rejection(provider.get('a'))) as SecretError;
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.status).toBe(500);
    server.clearFaults();
    server.setBody(json({ a: 'after-recovery' }));
    for (let step = 0; step < 60 && summary(events).length === 0; step++) await clock.advance(1_000);
    await until(() => summary(events).length === 1, 2_000, 'the rotation after recovery');
    expect(summary(events)).toEqual(['rotated:a']);
    expect((await provider.get('a')).reveal()).toBe('after-recovery');
    expectNoLeak(
      events.map((e) => e.event),
      [SECRET, 'after-recovery'],
    );
    await handle.stop();
  });

  it('keeps answering from the held document during an outage, within staleIfError', async () => {
    const clock = new ManualClock(Date.now());
    const server = await serve({ body: json({ a: SECRET }) });
    const provider = open({
      url: server.url(),
      clock,
      pollInterval: 1_000,
      minInterval: 1_000,
      staleIfError: 10_000,
    });
    await provider.get('a');
    await server.close();
    servers.splice(servers.indexOf(server), 1);
    await clock.advance(5_000);
    expect((await provider.get('a')).reveal()).toBe(SECRET);
    await clock.advance(7_000);
    const error = (await rejection(provider.get('a'))) as SecretError;
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.message).toMatch(/ECONNREFUSED/);
    expectNoLeak([error], [SECRET]);
  });

  it('reports a connection reset mid-body as UNAVAILABLE, without the partial body', async () => {
    const server = await serve({ body: json({ a: SECRET, b: SECRET }) });
    server.fail({ kind: 'reset-mid-body' });
    const error = (await rejection(open({ url: server.url() }).get('a'))) as SecretError;
    expect(error.code).toBe('UNAVAILABLE');
    expectNoLeak([error], [SECRET, '{"a"']);
  });

  it('times out a body slower than `timeout` with TIMEOUT', async () => {
    const server = await serve({ body: json({ a: SECRET }) });
    server.fail({ kind: 'stall-body', ms: 3_000 });
    const started = Date.now();
    const error = (await rejection(open({ url: server.url(), timeout: 300 }).get('a'))) as SecretError;
    expect(error.code).toBe('TIMEOUT');
    expect(error.operation).toBe('get');
    expect(Date.now() - started).toBeLessThan(2_000);
    expectNoLeak([error], [SECRET]);
  });

  it('rejects with the reason of an aborted signal, and stops a request in flight on close', async () => {
    const server = await serve({ body: json({ a: '1' }) });
    server.fail({ kind: 'stall-body', ms: 2_000 });
    const provider = open({ url: server.url(), timeout: 5_000 });
    const reason = new Error('caller gave up');
    const pending = provider.get('a', { signal: AbortSignal.timeout(100) });
    const error = await rejection(pending);
    expect((error as DOMException).name).toBe('TimeoutError');
    const controller = new AbortController();
    const second = provider.get('a', { signal: controller.signal });
    controller.abort(reason);
    expect(await rejection(second)).toBe(reason);
    const started = Date.now();
    await provider.close();
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

/** A token provider that cannot watch: only a refusal makes the HTTP provider read it again. */
class TokenBox extends BaseProvider {
  token = 'token-1';
  reads = 0;
  constructor() {
    super({ name: 'token-box' });
  }
  protected override async readSecret() {
    this.reads++;
    return { value: this.token };
  }
}

describe('HttpProvider: auth', () => {
  it('sends a bearer from another provider and reads it again when that provider reports it rotated', async () => {
    const store = new MemoryStore({ 'config/token': 'token-1' });
    const tokens = new MemoryProvider({ store });
    const server = await serve({ body: json({ a: SECRET }), authorization: 'Bearer token-1', etag: true });
    const provider = open({
      url: server.url(),
      bearer: { provider: tokens, key: 'config/token' },
      pollInterval: 30,
      minInterval: 10,
    });
    expect((await provider.get('a')).reveal()).toBe(SECRET);
    const { events, handle } = await record(provider);
    server.options.authorization = 'Bearer token-2';
    store.set('config/token', 'token-2');
    await until(
      () => server.requests.some((r) => r.headers.authorization === 'Bearer token-2'),
      5_000,
      'token-2',
    );
    await until(() => server.count(304) > 0 && server.requests.at(-1)?.status !== 401, 5_000, 'served again');
    expectNoLeak(
      events.map((e) => e.event),
      ['token-1', 'token-2', SECRET],
    );
    await handle.stop();
    await tokens.close();
  });

  it('reads the bearer again once after a 401, and reports ACCESS_DENIED without the token', async () => {
    const tokens = new TokenBox();
    const server = await serve({
      body: json({ a: '1' }),
      authorization: 'Bearer token-1',
      cacheControl: 'no-cache',
    });
    const provider = open({ url: server.url(), bearer: { provider: tokens, key: 'token' }, minInterval: 1 });
    await provider.get('a');
    expect(tokens.reads).toBe(1);
    tokens.token = 'token-2';
    server.options.authorization = 'Bearer token-2';
    await new Promise((resolve) => setTimeout(resolve, 20));
    await provider.get('a');
    expect(server.requests.map((r) => r.status)).toEqual([200, 401, 200]);
    expect(tokens.reads).toBe(2);
    server.options.authorization = 'Bearer token-3';
    await new Promise((resolve) => setTimeout(resolve, 20));
    // One re-read, then the refusal stands: an auth failure is not served from the held document.
    const error = (await rejection(provider.get('a'))) as SecretError;
    expect(error.code).toBe('ACCESS_DENIED');
    expect(error.status).toBe(401);
    expect(tokens.reads).toBe(3);
    expect(server.requests.map((r) => r.status)).toEqual([200, 401, 200, 401, 401]);
    expectNoLeak([error], ['token-1', 'token-2']);
    await tokens.close();
  });

  it('reports a credential that cannot be read as ACCESS_DENIED, never as a missing key', async () => {
    const tokens = new MemoryProvider({ store: new MemoryStore() });
    const server = await serve({ body: json({ a: '1' }) });
    const error = (await rejection(
      open({ url: server.url(), bearer: { provider: tokens, key: 'absent' } }).get('a'),
    )) as SecretError;
    expect(error.code).toBe('ACCESS_DENIED');
    expect(error.message).toMatch(/credential "absent" of provider "memory"/);
    expect(server.count()).toBe(0);
    await tokens.close();
  });
});

describe('HttpProvider: TLS', () => {
  it('verifies the server certificate, and trusts a CA given through a dispatcher', async (context) => {
    const { dir, remove } = tempDir('http-tls-');
    try {
      try {
        execFileSync(
          'openssl',
          [
            'req',
            '-x509',
            '-newkey',
            'rsa:2048',
            '-nodes',
            '-days',
            '1',
            '-subj',
            '/CN=127.0.0.1',
            '-addext',
            'subjectAltName=IP:127.0.0.1',
            '-keyout',
            join(dir, 'key.pem'),
            '-out',
            join(dir, 'cert.pem'),
          ],
          { stdio: 'ignore' },
        );
      } catch {
        context.skip('openssl is not installed: no certificate to test TLS with'); // reason: no openssl
        return;
      }
      const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
      const server = await serve({
        body: json({ a: SECRET }),
        tls: { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert },
      });
      const untrusted = (await rejection(open({ url: server.url() }).get('a'))) as SecretError;
      expect(untrusted.code).toBe('UNAVAILABLE');
      expect(untrusted.message).toMatch(/TLS failure \(DEPTH_ZERO_SELF_SIGNED_CERT\)/);
      // Node's fetch is undici; its Agent class is the global dispatcher's (no dependency needed here).
      const Agent = (globalThis as unknown as Record<symbol, { constructor: new (o: unknown) => unknown }>)[
        Symbol.for('undici.globalDispatcher.1')
      ]?.constructor as new (
        options: unknown,
      ) => { close(): Promise<void> };
      const dispatcher = new Agent({ connect: { ca: cert } });
      expect((await open({ url: server.url(), dispatcher }).get('a')).reveal()).toBe(SECRET);
      await dispatcher.close();
    } finally {
      remove();
    }
  });
});
