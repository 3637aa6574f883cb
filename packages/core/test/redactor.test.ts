import { inspect } from 'node:util';
import {
  createEmitter,
  createRedactor,
  DEFAULT_MIN_SECRET_LENGTH,
  InvalidValueError,
  REDACTED,
  type RedactorWarning,
  Secret,
  SecretNotFoundError,
} from '@secret-provider/core';
import { BaseProvider, type EmitFunction, type StoredSecret } from '@secret-provider/core/adapter';
import { describe, expect, it } from 'vitest';

const VALUE = 'p@ss w/rd:"q"+ü~tail';
const TOKEN = 'tok_9f8e7d6c5b4a';

/** Every way `text` could still show `value`: the value and each encoding the redactor masks. */
function encodingsOf(value: string): Record<string, string> {
  const url = new URL('postgres://user@db.example/app');
  url.password = value;
  return {
    raw: value,
    base64: Buffer.from(value).toString('base64'),
    base64Unpadded: Buffer.from(value).toString('base64').replace(/=+$/, ''),
    base64url: Buffer.from(value).toString('base64url'),
    uriComponent: encodeURIComponent(value),
    form: new URLSearchParams({ v: value }).toString().slice(2),
    urlPassword: url.password,
    json: JSON.stringify(value).slice(1, -1),
    // A JSON document held as a string in another JSON document.
    jsonTwice: JSON.stringify(JSON.stringify(value).slice(1, -1)).slice(1, -1),
  };
}

function expectNoLeak(text: string, values: readonly string[]): void {
  for (const value of values) {
    for (const [name, form] of Object.entries(encodingsOf(value))) {
      if (text.includes(form)) throw new Error(`output shows the value (${name})`);
    }
  }
}

function warningsOf(): { warnings: RedactorWarning[]; onWarning: (warning: RedactorWarning) => void } {
  const warnings: RedactorWarning[] = [];
  return { warnings, onWarning: (warning) => warnings.push(warning) };
}

describe('createRedactor: strings', () => {
  it('masks explicit values and Secrets, and returns the same string when nothing matches', () => {
    const redactor = createRedactor({ values: [TOKEN, new Secret('hunter2hunter2')] });
    expect(redactor.redact(`token=${TOKEN}; password=hunter2hunter2.`)).toBe(
      `token=${REDACTED}; password=${REDACTED}.`,
    );
    const clean = `nothing secret here ${'x'.repeat(100)}`;
    expect(redactor.redact(clean)).toBe(clean);
    expect(redactor.has(TOKEN)).toBe(true);
    expect(redactor.has('something-else')).toBe(false);
  });

  it('uses the configured mask', () => {
    const redactor = createRedactor({ values: [TOKEN], mask: '***' });
    expect(redactor.redact(`a ${TOKEN} b`)).toBe('a *** b');
  });

  it.each(Object.keys(encodingsOf(VALUE)))('masks the %s form of a value', (name) => {
    const redactor = createRedactor({ values: [VALUE] });
    const form = encodingsOf(VALUE)[name] ?? '';
    const out = redactor.redact(`before ${form} after`);
    expect(out).toBe(`before ${REDACTED} after`);
  });

  it('masks a value inside larger base64 payloads at every alignment', () => {
    const redactor = createRedactor({ values: [TOKEN] });
    for (const user of ['u', 'us', 'use', 'user']) {
      const header = `Authorization: Basic ${Buffer.from(`${user}:${TOKEN}`).toString('base64')}`;
      const out = redactor.redact(header);
      expect(out).toContain(REDACTED);
      // What is left of the payload decodes to no more than the user name and a few bits.
      const rest = out.replace('Authorization: Basic ', '').replace(REDACTED, '');
      expect(rest.length).toBeLessThanOrEqual(Math.ceil(((user.length + 1) * 4) / 3) + 4);
      const long = Buffer.from(`${TOKEN}${'-padding'.repeat(3)}`).toString('base64url');
      expect(redactor.redact(long)).toContain(REDACTED);
    }
  });

  it('masks the encodings of a value given in JSON log lines and URLs', () => {
    const redactor = createRedactor({ values: [VALUE] });
    const url = new URL('https://api.example/x');
    url.password = VALUE;
    url.searchParams.set('key', VALUE);
    const line = JSON.stringify({
      msg: 'connect',
      url: url.href,
      nested: JSON.stringify({ password: VALUE }),
    });
    const out = redactor.redactJson(line);
    expectNoLeak(out, [VALUE]);
    expect(() => JSON.parse(out)).not.toThrow();
  });

  it('masks the hex and base64 of a binary secret', () => {
    const bytes = Uint8Array.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02, 0xff, 0x10, 0x20]);
    const redactor = createRedactor({ values: [new Secret(bytes)] });
    const hex = Buffer.from(bytes).toString('hex');
    const b64 = Buffer.from(bytes).toString('base64');
    expect(redactor.redact(`key=${hex} KEY=${hex.toUpperCase()} b64=${b64}`)).toBe(
      `key=${REDACTED} KEY=${REDACTED} b64=${REDACTED}`,
    );
  });

  it('masks only the values themselves with encodings: []', () => {
    const redactor = createRedactor({ values: [TOKEN], encodings: [] });
    const b64 = Buffer.from(TOKEN).toString('base64');
    expect(redactor.redact(`${TOKEN} ${b64}`)).toBe(`${REDACTED} ${b64}`);
  });

  it('masks overlapping and nested values as one stretch (the longest match wins)', () => {
    const redactor = createRedactor({ values: ['abcdefgh', 'abcdefghijkl', 'ijklmnopqr'], encodings: [] });
    expect(redactor.redact('x abcdefghijkl y')).toBe(`x ${REDACTED} y`);
    expect(redactor.redact('x abcdefgh y')).toBe(`x ${REDACTED} y`);
    // 'abcdefghijkl' and 'ijklmnopqr' overlap: no character of either is left.
    expect(redactor.redact('x abcdefghijklmnopqr y')).toBe(`x ${REDACTED} y`);
    expect(redactor.redact('abcdefghabcdefgh')).toBe(`${REDACTED}${REDACTED}`);
  });

  it('masks each line of a multi-line value', () => {
    const pem =
      '-----BEGIN KEY-----\nMIIBVwIBADANBgkqhkiG9w0BAQEFAASC\nAT8wggE7AgEAAkEAq7BFUpkGp3+XQ==\n-----END KEY-----';
    const redactor = createRedactor({ values: [pem] });
    const out = redactor.redact(
      'line 1: MIIBVwIBADANBgkqhkiG9w0BAQEFAASC\nline 2: AT8wggE7AgEAAkEAq7BFUpkGp3+XQ==',
    );
    expect(out).toBe(`line 1: ${REDACTED}\nline 2: ${REDACTED}`);
    expect(redactor.redact(`dump ${pem}`)).toBe(`dump ${REDACTED}`);
    expect(redactor.redactJson(JSON.stringify({ pem }))).toBe(`{"pem":"${REDACTED}"}`);
  });

  it('finds exactly what a naive search finds, with thousands of random and overlapping values', () => {
    let seed = 7;
    const random = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const alphabet = 'abcAB01-_"\\é';
    const word = (length: number) =>
      Array.from({ length }, () => alphabet.charAt(Math.floor(random() * alphabet.length))).join('');
    const values = new Set<string>();
    while (values.size < 3_000) values.add(word(8 + Math.floor(random() * 12)));
    const list = [...values];
    const redactor = createRedactor({ values: list, encodings: [] });
    for (let round = 0; round < 60; round++) {
      let text = '';
      while (text.length < 600) {
        const pick = list[Math.floor(random() * list.length)] ?? '';
        // Pieces of values, whole values and their overlaps.
        text +=
          random() < 0.3 ? pick : random() < 0.5 ? pick.slice(0, 5 + Math.floor(random() * 5)) : word(6);
      }
      expect(redactor.redact(text)).toBe(naiveRedact(text, list));
    }
  });

  it('masks values outside Latin-1 (CJK, emoji) without masking their look-alikes', () => {
    const redactor = createRedactor({ values: ['密码是秘密的东西啊', 'emoji😀secret😀value'] });
    // The same low bytes as the first value, different characters.
    const lookAlike = String.fromCharCode(
      ...[...'密码是秘密的东西啊'].map((c) => (c.charCodeAt(0) & 0xff) + 0x100),
    );
    const text = `x 密码是秘密的东西啊 y emoji😀secret😀value z ${lookAlike} 密码是秘密的东西`;
    expect(redactor.redact(text)).toBe(`x ${REDACTED} y ${REDACTED} z ${lookAlike} 密码是秘密的东西`);
    expect(redactor.redact(encodeURIComponent('密码是秘密的东西啊'))).toBe(REDACTED);
  });

  it('rejects what is not a value', () => {
    const redactor = createRedactor();
    expect(() => redactor.add(42 as unknown as string)).toThrow(InvalidValueError);
    expect(redactor.add('')).toBe(false);
  });
});

describe('createRedactor: short values', () => {
  it('ignores values under the minimum with one warning that shows no value', () => {
    const { warnings, onWarning } = warningsOf();
    const redactor = createRedactor({ onWarning });
    expect(redactor.add('short')).toBe(false);
    expect(redactor.add('short')).toBe(false);
    expect(redactor.add('other1', { key: 'PIN' })).toBe(false);
    expect(redactor.redact('a short text')).toBe('a short text');
    expect(warnings).toHaveLength(2);
    expect(warnings.map((w) => w.code)).toEqual(['SHORT_SECRET', 'SHORT_SECRET']);
    expect(warnings[1]?.key).toBe('PIN');
    for (const warning of warnings) {
      expect(warning.message).toContain(String(DEFAULT_MIN_SECRET_LENGTH));
      expect(JSON.stringify(warning)).not.toMatch(/short"|other1/);
    }
    expect(redactor.stats().ignoredShort).toBe(3);
  });

  it('emits a process warning by default', async () => {
    const seen = new Promise<Error>((resolve) => {
      const listener = (warning: Error & { code?: string }) => {
        if (warning.code !== 'SECRET_PROVIDER_SHORT_SECRET') return;
        process.off('warning', listener);
        resolve(warning);
      };
      process.on('warning', listener);
    });
    createRedactor().add('tiny');
    const warning = await seen;
    expect((warning as Error & { code?: string }).code).toBe('SECRET_PROVIDER_SHORT_SECRET');
    expect(warning.message).not.toContain('tiny');
  });

  it('masks shorter values when the minimum is lowered', () => {
    const redactor = createRedactor({ values: ['1234'], minLength: 4, encodings: [] });
    expect(redactor.redact('pin 1234')).toBe(`pin ${REDACTED}`);
  });
});

describe('createRedactor: objects', () => {
  it('redacts a log record deeply without mutating it, and keeps unchanged parts as they are', () => {
    const redactor = createRedactor({ values: [TOKEN, '987654321012'] });
    const unchanged = { a: 1, b: ['x', 'y'] };
    const record = {
      level: 30,
      msg: `calling with ${TOKEN}`,
      req: { headers: { authorization: `Bearer ${TOKEN}` }, list: ['ok', TOKEN] },
      account: 987654321012,
      tags: new Set([TOKEN, 'fine']),
      map: new Map([['k', TOKEN]]),
      [TOKEN]: 'secret as a key',
      unchanged,
      url: new URL(`https://user:${TOKEN}@example.com/`),
      when: new Date(0),
    };
    const before = inspect(record, { depth: 10 });
    const out = redactor.redact(record);
    expect(inspect(record, { depth: 10 })).toBe(before);
    expect(out.unchanged).toBe(unchanged);
    expect(out.when).toBe(record.when);
    expect(out.account).toBe(REDACTED);
    expect(out.level).toBe(30);
    expect([...out.tags]).toEqual([REDACTED, 'fine']);
    expect(out.map.get('k')).toBe(REDACTED);
    expect(out.url).toBe(`https://user:${REDACTED}@example.com/`);
    const printed = `${inspect(out, { depth: 10 })}${JSON.stringify(out)}`;
    expect(printed).not.toContain(TOKEN);
    expect(printed).not.toContain('987654321012');
    const clean = { a: { b: [1, 'two', { c: 'three' }] } };
    expect(redactor.redact(clean)).toBe(clean);
  });

  it('redacts errors: message, stack, cause chain, AggregateError and own fields, keeping the class', () => {
    class ClientError extends Error {
      override name = 'ClientError';
      config = { headers: { Authorization: `Bearer ${TOKEN}` } };
    }
    const inner = new Error(`inner ${TOKEN}`);
    const outer = new ClientError(`request failed: ${TOKEN}`, { cause: inner });
    const aggregate = new AggregateError([outer, new Error('harmless')], `all failed ${TOKEN}`);
    const messageBefore = outer.message;
    const out = redactor().redact(aggregate);
    expect(out).not.toBe(aggregate);
    expect(out).toBeInstanceOf(AggregateError);
    expect(out.message).toBe(`all failed ${REDACTED}`);
    expect(out.stack).toContain(`all failed ${REDACTED}`);
    const first = out.errors[0] as ClientError;
    expect(first).toBeInstanceOf(ClientError);
    expect(first.name).toBe('ClientError');
    expect(first.message).toBe(`request failed: ${REDACTED}`);
    expect((first.cause as Error).message).toBe(`inner ${REDACTED}`);
    expect(first.config.headers.Authorization).toBe(`Bearer ${REDACTED}`);
    expect(out.errors[1]).toBe(aggregate.errors[1]);
    expect(outer.message).toBe(messageBefore);
    expect(inspect(out, { depth: 10 })).not.toContain(TOKEN);

    function redactor() {
      return createRedactor({ values: [TOKEN] });
    }
  });

  it('does not throw on cycles and mirrors them in the copy', () => {
    const redactor = createRedactor({ values: [TOKEN] });
    const record: Record<string, unknown> = { msg: TOKEN };
    record.self = record;
    record.list = [record, TOKEN];
    const error = new Error(`boom ${TOKEN}`);
    (error as Error & { cause?: unknown }).cause = error;
    record.error = error;
    const out = redactor.redact(record);
    expect(out).not.toBe(record);
    expect(out.self).toBe(out);
    expect((out.list as unknown[])[0]).toBe(out);
    const outError = out.error as Error;
    expect(outError.cause).toBe(outError);
    expect(outError.message).toBe(`boom ${REDACTED}`);
    expect(inspect(out, { depth: 5 })).not.toContain(TOKEN);
    expect(record.msg).toBe(TOKEN);
    // A cycle without any value comes back as is.
    const clean: Record<string, unknown> = { a: 1 };
    clean.self = clean;
    expect(redactor.redact(clean)).toBe(clean);
  });

  it('never leaves a path from the copy back to an unredacted original', () => {
    const redactor = createRedactor({ values: [TOKEN] });
    // The secret comes first, then a child whose only link is back to the parent.
    const parent: Record<string, unknown> = { secret: TOKEN };
    const child: Record<string, unknown> = { back: parent, note: 'clean' };
    parent.child = child;
    // A shared object copied in one place and met again in another.
    const shared = { token: TOKEN };
    const record = { first: shared, second: { again: shared }, parent };
    const out = redactor.redact(record);
    const reachable = new Set<unknown>();
    const walk = (node: unknown): void => {
      if (typeof node !== 'object' || node === null || reachable.has(node)) return;
      reachable.add(node);
      for (const item of Object.values(node)) walk(item);
    };
    walk(out);
    for (const original of [record, parent, child, shared, record.second])
      expect(reachable.has(original)).toBe(false);
    expect(inspect(out, { depth: 10 })).not.toContain(TOKEN);
    expect(out.second.again).toBe(out.first);
  });

  it('replaces objects nested deeper than maxDepth', () => {
    const redactor = createRedactor({ values: [TOKEN], maxDepth: 3 });
    const deep = { a: { b: { c: { d: TOKEN } } } };
    expect(redactor.redact(deep)).toEqual({ a: { b: { c: '[Truncated]' } } });
  });

  it('survives throwing getters and checks what toJSON would print', () => {
    const redactor = createRedactor({ values: [TOKEN] });
    const tricky = {
      get bad(): string {
        throw new Error('no');
      },
      ok: TOKEN,
    };
    expect(redactor.redact(tricky)).toEqual({ bad: '[Unreadable]', ok: REDACTED });
    class Config {
      #token = TOKEN;
      toJSON() {
        return { token: this.#token };
      }
    }
    expect(redactor.redact({ config: new Config() })).toEqual({ config: { token: REDACTED } });
  });
});

describe('createRedactor: rotation and grace period', () => {
  it('keeps a rotated value masked during the grace period and drops it after', () => {
    let now = 1_000;
    const redactor = createRedactor({ now: () => now, rotationGraceMs: 60_000 });
    redactor.add('old-password-1', { key: 'DB_PASSWORD' });
    redactor.add('new-password-2', { key: 'DB_PASSWORD' });
    const text = 'old-password-1 new-password-2';
    expect(redactor.redact(text)).toBe(`${REDACTED} ${REDACTED}`);
    now += 59_999;
    expect(redactor.redact(text)).toBe(`${REDACTED} ${REDACTED}`);
    expect(redactor.stats().retiring).toBe(1);
    now += 1;
    expect(redactor.redact(text)).toBe(`old-password-1 ${REDACTED}`);
    expect(redactor.stats()).toMatchObject({ values: 1, retiring: 0 });
  });

  it('drops at once with rotationGraceMs: 0, and retires the value of a forgotten key', () => {
    let now = 0;
    const redactor = createRedactor({ now: () => now, rotationGraceMs: 0 });
    redactor.add('first-value-1', { key: 'K' });
    redactor.add('second-value-2', { key: 'K' });
    expect(redactor.redact('first-value-1')).toBe('first-value-1');
    const graceful = createRedactor({ now: () => now, rotationGraceMs: 10 });
    graceful.add('first-value-1', { key: 'K' });
    graceful.forget('K');
    expect(graceful.redact('first-value-1')).toBe(REDACTED);
    now = 10;
    expect(graceful.redact('first-value-1')).toBe('first-value-1');
  });

  it('keeps a value still held by another key or added explicitly', () => {
    let now = 0;
    const redactor = createRedactor({ now: () => now, rotationGraceMs: 5 });
    redactor.add('shared-value-1', { key: 'A' });
    redactor.add('shared-value-1', { key: 'B' });
    redactor.add('other-value-22', { key: 'A' });
    now = 100;
    expect(redactor.redact('shared-value-1')).toBe(REDACTED);
    redactor.add('shared-value-1');
    redactor.forget('B');
    now = 200;
    expect(redactor.redact('shared-value-1')).toBe(REDACTED);
    expect(redactor.remove('shared-value-1')).toBe(false);
    expect(redactor.redact('shared-value-1')).toBe('shared-value-1');
  });

  it('masks a value again when its key rotates back to it', () => {
    let now = 0;
    const redactor = createRedactor({ now: () => now, rotationGraceMs: 5 });
    redactor.add('value-one-111', { key: 'K' });
    redactor.add('value-two-222', { key: 'K' });
    redactor.add('value-one-111', { key: 'K' });
    now = 100;
    expect(redactor.redact('value-one-111 value-two-222')).toBe(`${REDACTED} value-two-222`);
  });
});

/** A small read/write provider with push events, built the way adapters are. */
class MapProvider extends BaseProvider {
  readonly data = new Map<string, string>();
  readonly #listeners = new Set<EmitFunction>();
  failing = new Set<string>();

  constructor(initial: Record<string, string> = {}) {
    super({ name: 'map', capabilities: { versions: true } });
    for (const [key, value] of Object.entries(initial)) this.data.set(key, value);
  }

  change(key: string, value: string | undefined): void {
    const existed = this.data.has(key);
    if (value === undefined) this.data.delete(key);
    else this.data.set(key, value);
    const detectedAt = new Date();
    for (const emit of this.#listeners) {
      if (value === undefined) emit('removed', { provider: this.name, key, detectedAt });
      else if (existed) emit('rotated', { provider: this.name, keys: [key], changes: [{ key }], detectedAt });
      else emit('added', { provider: this.name, key, detectedAt });
    }
  }

  protected override async readSecret(
    key: string,
    context: { version?: string | undefined },
  ): Promise<StoredSecret | undefined> {
    if (this.failing.has(key)) throw new Error(`backend failed for ${key}`);
    if (context.version !== undefined) return { value: `${this.data.get(key)}-v${context.version}` };
    const value = this.data.get(key);
    return value === undefined ? undefined : { value };
  }

  protected override async writeSecret(key: string, value: string): Promise<void> {
    this.data.set(key, value);
  }

  protected override async deleteSecret(key: string): Promise<boolean> {
    return this.data.delete(key);
  }

  protected override async listKeys(): Promise<string[]> {
    return [...this.data.keys()];
  }

  protected override async startWatch(emit: EmitFunction): Promise<() => void> {
    this.#listeners.add(emit);
    return () => this.#listeners.delete(emit);
  }
}

async function waitFor(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('createRedactor: learning from providers', () => {
  it('wrap: learns values as they are read and written, retires deleted ones', async () => {
    let now = 0;
    const redactor = createRedactor({ now: () => now, rotationGraceMs: 1_000 });
    const backend = new MapProvider({ API_KEY: 'api-key-value-1' });
    const provider = redactor.wrap(backend);
    expect(provider.name).toBe('map');
    expect(redactor.redact('api-key-value-1')).toBe('api-key-value-1');
    const secret = await provider.get('API_KEY');
    expect(secret.reveal()).toBe('api-key-value-1');
    expect(redactor.redact('api-key-value-1')).toBe(REDACTED);
    await provider.set('NEW', 'written-value-22');
    expect(redactor.redact('written-value-22')).toBe(REDACTED);
    await provider.delete('NEW');
    now = 999;
    expect(redactor.redact('written-value-22')).toBe(REDACTED);
    now = 1_000;
    expect(redactor.redact('written-value-22')).toBe('written-value-22');
    // An older version is masked for the grace period without replacing the current value.
    await provider.get('API_KEY', { version: '3' });
    expect(redactor.redact('api-key-value-1-v3 api-key-value-1')).toBe(`${REDACTED} ${REDACTED}`);
    await expect(provider.get('MISSING')).rejects.toBeInstanceOf(SecretNotFoundError);
    expect(inspect(provider)).toBe('RedactingProvider { name: "map" }');
    await provider.close();
    await expect(provider.get('API_KEY')).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('wrap: a new value read after a rotation retires the old one', async () => {
    let now = 0;
    const redactor = createRedactor({ now: () => now, rotationGraceMs: 100 });
    const backend = new MapProvider({ DB: 'database-pass-1' });
    const provider = redactor.wrap(backend);
    await provider.get('DB');
    backend.data.set('DB', 'database-pass-2');
    await provider.get('DB');
    expect(redactor.redact('database-pass-1 database-pass-2')).toBe(`${REDACTED} ${REDACTED}`);
    now = 100;
    expect(redactor.redact('database-pass-1 database-pass-2')).toBe(`database-pass-1 ${REDACTED}`);
  });

  it('wrap: while watched, re-reads rotated keys it knew and passes every event on', async () => {
    const redactor = createRedactor({ rotationGraceMs: 60_000 });
    const backend = new MapProvider({ DB: 'database-pass-1', OTHER: 'other-value-123' });
    const provider = redactor.wrap(backend);
    await provider.get('DB');
    const emitter = createEmitter();
    const events: string[] = [];
    emitter.on('*', (type) => events.push(String(type)));
    const handle = provider.watch(emitter);
    await handle.ready;
    backend.change('DB', 'database-pass-2');
    await waitFor(() => redactor.has('database-pass-2'));
    expect(redactor.has('database-pass-1')).toBe(true);
    // A key never read is not fetched just because it rotated.
    backend.change('OTHER', 'other-value-456');
    backend.change('DB', undefined);
    await waitFor(() => events.length === 3);
    expect(events).toEqual(['rotated', 'rotated', 'removed']);
    expect(redactor.has('other-value-456')).toBe(false);
    await handle.stop();
  });

  it('learnFrom reads every key and reports failures without values', async () => {
    const { warnings, onWarning } = warningsOf();
    const redactor = createRedactor({ onWarning });
    const backend = new MapProvider({
      A: 'value-of-a-123',
      B: 'value-of-b-456',
      C: 'value-of-c-789',
      D_TOKEN: 'short',
    });
    backend.failing.add('C');
    const result = await redactor.learnFrom(backend);
    expect(result).toEqual({ keys: 4, learned: 3, failed: 1 });
    expect(redactor.redact('value-of-a-123 value-of-b-456 value-of-c-789')).toBe(
      `${REDACTED} ${REDACTED} value-of-c-789`,
    );
    expect(warnings.map((w) => w.code).sort()).toEqual(['LEARN_FAILED', 'SHORT_SECRET']);
    expect(warnings.find((w) => w.code === 'SHORT_SECRET')).toMatchObject({
      key: 'D_TOKEN',
      provider: 'map',
    });
    expect(JSON.stringify(warnings)).not.toMatch(/value-of|short"/);
  });

  it('attach primes and follows added, rotated and removed keys', async () => {
    let now = 0;
    const redactor = createRedactor({ now: () => now, rotationGraceMs: 50 });
    const backend = new MapProvider({ A: 'value-of-a-123' });
    const handle = redactor.attach(backend);
    expect(await handle.ready).toEqual({ keys: 1, learned: 1, failed: 0 });
    expect(redactor.has('value-of-a-123')).toBe(true);
    backend.change('B', 'added-value-999');
    await waitFor(() => redactor.has('added-value-999'));
    backend.change('A', 'rotated-value-a');
    await waitFor(() => redactor.has('rotated-value-a'));
    backend.change('B', undefined);
    now = 50;
    expect(redactor.redact('value-of-a-123 added-value-999 rotated-value-a')).toBe(
      `value-of-a-123 added-value-999 ${REDACTED}`,
    );
    await handle.stop();
    expect(handle.stopped).toBe(true);
    backend.change('C', 'after-stop-value');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(redactor.has('after-stop-value')).toBe(false);
  });

  it('attach never rejects: a provider that cannot list is reported', async () => {
    const { warnings, onWarning } = warningsOf();
    const redactor = createRedactor({ onWarning });
    const backend = new MapProvider();
    Object.defineProperty(backend, 'keys', { value: () => Promise.reject(new Error('listing failed')) });
    const handle = redactor.attach(backend);
    expect(await handle.ready).toEqual({ keys: 0, learned: 0, failed: 0 });
    expect(warnings.map((w) => w.code)).toEqual(['LEARN_FAILED']);
    await handle.stop();
  });
});

describe('createRedactor: text in pieces', () => {
  it('masks a value split across two pieces', () => {
    const redactor = createRedactor({ values: [TOKEN] });
    const chunks = redactor.chunked();
    const half = Math.floor(TOKEN.length / 2);
    let out = chunks.push(`log: ${TOKEN.slice(0, half)}`);
    out += chunks.push(`${TOKEN.slice(half)} done\nnext line`);
    out += chunks.flush();
    expect(out).toBe(`log: ${REDACTED} done\nnext line`);
  });

  it('passes complete lines through at once and holds back only the unfinished line', () => {
    const redactor = createRedactor({ values: [TOKEN] });
    const chunks = redactor.chunked();
    expect(chunks.push(`first ${TOKEN}\n`)).toBe(`first ${REDACTED}\n`);
    expect(chunks.pending).toBe(0);
    expect(chunks.push('partial')).toBe('');
    expect(chunks.pending).toBe(7);
    expect(chunks.flush()).toBe('partial');
  });

  it('holds back no more than the longest value when a value spans lines', () => {
    const multi = 'line-one-abc\nline-two-def';
    const redactor = createRedactor({ values: [multi], encodings: [] });
    const chunks = redactor.chunked();
    let out = chunks.push('x\n'.repeat(20) + multi.slice(0, 15));
    expect(out.length).toBeGreaterThan(0);
    expect(chunks.pending).toBeLessThanOrEqual(multi.length - 1);
    out += chunks.push(`${multi.slice(15)}\nend\n`);
    out += chunks.flush();
    expect(out).toBe(`${'x\n'.repeat(20)}${REDACTED}\nend\n`);
  });

  it('finds values split at every position', () => {
    const redactor = createRedactor({ values: [VALUE, TOKEN] });
    const text = `a ${VALUE} b ${JSON.stringify(TOKEN)} c ${Buffer.from(TOKEN).toString('base64')} d`;
    const expected = redactor.redact(text);
    for (let cut = 0; cut <= text.length; cut++) {
      const chunks = redactor.chunked();
      const out = chunks.push(text.slice(0, cut)) + chunks.push(text.slice(cut)) + chunks.flush();
      expect(out).toBe(expected);
    }
  });
});

describe('createRedactor: no values in its own output', () => {
  it('shows counts, never values, through inspect, JSON and stats', () => {
    const redactor = createRedactor({ values: [TOKEN, VALUE] });
    const shown = `${inspect(redactor)} ${JSON.stringify(redactor)} ${JSON.stringify(redactor.stats())} ${String(redactor)}`;
    expect(shown).not.toContain(TOKEN);
    expect(shown).not.toContain('p@ss');
    expect(inspect(redactor)).toMatch(/^Redactor \{ values: 2, patterns: \d+ \}$/);
  });
});

/** The reference: every occurrence of every value found by indexOf, overlapping ones merged. */
function naiveRedact(text: string, values: readonly string[]): string {
  const covered = new Uint8Array(text.length);
  const starts = new Uint8Array(text.length);
  for (const value of values) {
    for (let at = text.indexOf(value); at !== -1; at = text.indexOf(value, at + 1)) {
      starts[at] = 1;
      covered.fill(1, at, at + value.length);
    }
  }
  let out = '';
  for (let i = 0; i < text.length; i++) {
    if (!covered[i]) {
      out += text[i];
      continue;
    }
    // A new masked stretch starts where the previous one ended, unless occurrences overlap.
    if (i === 0 || !covered[i - 1] || (starts[i] && !overlapsPrevious(i))) out += REDACTED;
  }
  return out;

  function overlapsPrevious(i: number): boolean {
    // Whether some occurrence that started before i reaches past i - 1.
    for (const value of values) {
      for (let s = Math.max(0, i - value.length + 1); s < i; s++) {
        if (text.startsWith(value, s) && s + value.length > i) return true;
      }
    }
    return false;
  }
}
