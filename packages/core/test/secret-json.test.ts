import { inspect } from 'node:util';
import { isSecretError, REDACTED, Secret } from '@secret-provider/core';
import { createRedactor } from '@secret-provider/core/redaction';
import { MemoryProvider } from '@secret-provider/memory';
import { expectNoLeak } from '@secret-provider/testing';
import { describe, expect, it } from 'vitest';

interface DbCredentials {
  readonly user: string;
  readonly password: string;
  readonly port: number;
}

/** A validator as a schema library's `parse` would be: throws on a wrong shape, naming the value. */
function parseDb(value: unknown): DbCredentials {
  const v = value as Partial<DbCredentials>;
  if (typeof v?.user !== 'string' || typeof v.password !== 'string' || typeof v.port !== 'number') {
    throw new TypeError(`not credentials: ${JSON.stringify(value)}`);
  }
  return { user: v.user, password: v.password, port: v.port };
}

const DOCUMENT = JSON.stringify({ user: 'app', password: 'pg-json-pass-7f3k', port: 5432 });

describe('Secret.json', () => {
  it('parses into a typed value that stays a redacted secret, with the metadata kept', () => {
    const source = new Secret(DOCUMENT, { key: 'DB', version: '3' });
    const db = source.json(parseDb);
    expect(db.reveal()).toEqual({ user: 'app', password: 'pg-json-pass-7f3k', port: 5432 });
    expect(db.metadata).toEqual({ key: 'DB', version: '3' });
    expect(String(db)).toBe(REDACTED);
    expect(JSON.stringify({ db })).toBe(`{"db":"${REDACTED}"}`);
    expect(inspect(db, { showHidden: true, depth: 5 })).not.toContain('pg-json-pass-7f3k');
    expectNoLeak([db, { db }], ['pg-json-pass-7f3k', DOCUMENT], { encodings: true });
  });

  it('reads bytes as UTF-8 and maps to any type', () => {
    const bytes = new Secret(new TextEncoder().encode(DOCUMENT));
    const port = bytes.json(parseDb).map((credentials) => credentials.port);
    expect(port.reveal()).toBe(5432);
    expect(new Secret('{"a":[1,2]}').json().reveal()).toEqual({ a: [1, 2] });
  });

  it('a document that does not parse or validate is INVALID_VALUE and quotes nothing', () => {
    const broken = new Secret('{"password":"pg-json-pass-7f3k",');
    const errors: unknown[] = [];
    for (const attempt of [
      () => broken.json(),
      () => new Secret('{"password":"pg-json-pass-7f3k"}').json(parseDb),
      () => new Secret(new Uint8Array([0xff, 0xfe])).json(),
      () => new Secret('{"a":1}').map(() => undefined),
    ]) {
      try {
        attempt();
        errors.push(new Error('no error'));
      } catch (error) {
        errors.push(error);
      }
    }
    for (const error of errors) expect(isSecretError(error, 'INVALID_VALUE')).toBe(true);
    expectNoLeak(errors, ['pg-json-pass-7f3k'], { encodings: true });
  });

  it('a typed secret cannot be compared in constant time; string secrets still can', () => {
    expect(() => new Secret(DOCUMENT).json().equals(DOCUMENT)).toThrow(/constant time/);
    expect(new Secret(DOCUMENT).equals(DOCUMENT)).toBe(true);
  });

  it('the constructor still refuses a value that is not a string or bytes', () => {
    expect(() => new Secret(42 as unknown as string)).toThrow(/string or a Uint8Array/);
  });
});

describe('the redactor and JSON secrets', () => {
  it('masks each string field of a JSON secret it read, so a field logged alone is masked', async () => {
    const redactor = createRedactor();
    const provider = redactor.wrap(
      new MemoryProvider({ name: 'vault', initial: { DB_CREDENTIALS: DOCUMENT } }),
    );
    const db = (await provider.get('DB_CREDENTIALS')).json(parseDb);
    const line = `connecting as ${db.reveal().user} with ${db.reveal().password} on ${db.reveal().port}`;
    const logged = redactor.redact(line);
    expect(logged).not.toContain('pg-json-pass-7f3k');
    // A port is not masked wherever it appears.
    expect(logged).toContain('5432');
    await provider.set(
      'DB_CREDENTIALS',
      JSON.stringify({ user: 'app', password: 'rotated-pass-2q9w', port: 5432 }),
    );
    await provider.get('DB_CREDENTIALS');
    expect(redactor.redact('rotated-pass-2q9w')).toBe(REDACTED);
    await provider.close();
  });

  it('refuses a typed secret given to add() as not a value, typed, without showing it', () => {
    const redactor = createRedactor();
    const typed = new Secret(DOCUMENT).json(parseDb) as unknown as Secret<string>;
    let caught: unknown;
    try {
      redactor.add(typed);
    } catch (error) {
      caught = error;
    }
    expect(isSecretError(caught, 'INVALID_VALUE')).toBe(true);
    expectNoLeak([caught], ['pg-json-pass-7f3k']);
  });
});
