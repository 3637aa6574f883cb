import { once } from 'node:events';
import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRedactor, REDACTED } from '@secret-provider/core';
import { createRedactingStream, redactPino } from '@secret-provider/logging';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectNoLeak, tempDir } from './helpers.js';

const DB_PASSWORD = 'Xk9#mQ2$vL7!pR4z';
const API_KEY = 'ak_prod_7d2f9a0c3b1e4d5f';
const LATER = 'learned-after-child-9x8y';
const UNKNOWN_TOKEN = 'eyJhbGciOiJIUzI1NiJ9.unknown.token';

let temp: ReturnType<typeof tempDir>;
beforeEach(() => {
  temp = tempDir();
});
afterEach(() => temp.remove());

function readLines(file: string): Array<Record<string, unknown>> {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('redactPino', () => {
  it('masks values in messages, fields, bindings and errors of real pino output', async () => {
    const redactor = createRedactor({ values: [DB_PASSWORD, API_KEY] });
    const file = join(temp.dir, 'pino.log');
    const destination = pino.destination({ dest: file, sync: true });
    const logger = pino({ level: 'info', ...redactPino(redactor) }, destination);
    const connection = `postgres://app:${encodeURIComponent(DB_PASSWORD)}@db:5432/app`;
    const child = logger.child({ apiKey: API_KEY, conn: connection });
    child.info('connecting to %s', connection);
    child.info({ headers: { 'x-api-key': API_KEY }, nested: { deep: [API_KEY] } }, 'request sent');
    const cause = new Error(`auth failed for ${DB_PASSWORD}`);
    child.error(new Error(`query failed: password ${DB_PASSWORD}`, { cause }));
    child.error({ err: new AggregateError([cause], `all failed ${API_KEY}`) }, 'aggregate');
    // A value learned after the child logger was created is masked in its bindings too.
    const later = logger.child({ session: LATER });
    redactor.add(LATER);
    later.warn({ value: Buffer.from(LATER).toString('base64') }, `session ${LATER}`);
    // A client error with a token the redactor never saw is scrubbed by field name.
    const clientError = Object.assign(new Error('request failed with status 401'), {
      config: { headers: { Authorization: `Bearer ${UNKNOWN_TOKEN}` }, url: 'https://api.example/v1' },
    });
    logger.error({ err: clientError, attempt: 2 }, 'client failed');
    destination.flushSync();

    const output = readFileSync(file, 'utf8');
    expectNoLeak(output, [DB_PASSWORD, API_KEY, LATER, UNKNOWN_TOKEN]);
    const lines = readLines(file);
    expect(lines).toHaveLength(6);
    expect(lines[0]).toMatchObject({
      apiKey: REDACTED,
      msg: `connecting to postgres://app:${REDACTED}@db:5432/app`,
    });
    expect(lines[1]).toMatchObject({ headers: { 'x-api-key': REDACTED }, nested: { deep: [REDACTED] } });
    expect(lines[2]?.msg).toBe(`query failed: password ${REDACTED}`);
    expect(JSON.stringify(lines[2]?.err)).toContain(`auth failed for ${REDACTED}`);
    expect(lines[3]?.err).toMatchObject({ message: `all failed ${REDACTED}` });
    expect(lines[4]).toMatchObject({ session: REDACTED, msg: `session ${REDACTED}`, value: REDACTED });
    expect(lines[5]).toMatchObject({ attempt: 2, err: { config: { headers: { Authorization: REDACTED } } } });
  });

  it('chains a streamWrite and a log formatter of the caller', () => {
    const redactor = createRedactor({ values: [API_KEY] });
    const lines: string[] = [];
    const logger = pino(
      {
        ...redactPino(redactor, {
          streamWrite: (line) => line.replace('"hello"', '"hello world"'),
          log: (record) => ({ ...record, added: API_KEY }),
        }),
      },
      { write: (line: string) => lines.push(line) },
    );
    logger.info({ key: API_KEY }, 'hello');
    expect(lines).toHaveLength(1);
    const record = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
    expect(record).toMatchObject({ key: REDACTED, added: REDACTED, msg: 'hello world' });
  });

  it('works as a redacting destination stream too', async () => {
    const redactor = createRedactor({ values: [API_KEY] });
    const file = join(temp.dir, 'stream.log');
    const stream = createRedactingStream(redactor, { json: true });
    const sink = createWriteStream(file);
    stream.pipe(sink);
    const logger = pino(stream);
    logger.info({ key: API_KEY }, `message with ${API_KEY}`);
    stream.end();
    await once(sink, 'close');
    const output = readFileSync(file, 'utf8');
    expectNoLeak(output, [API_KEY]);
    expect(JSON.parse(output.trim())).toMatchObject({ key: REDACTED, msg: `message with ${REDACTED}` });
  });

  it('scrubs an error that shares an object with its record, and leaves the record itself alone', async () => {
    const redactor = createRedactor();
    const file = join(temp.dir, 'shared.log');
    const destination = pino.destination({ dest: file, sync: true });
    const logger = pino({ level: 'info', ...redactPino(redactor) }, destination);
    const config = { headers: { Authorization: `Bearer ${UNKNOWN_TOKEN}` } };
    const err = Object.assign(new DOMException('upload aborted', 'AbortError'), { config });
    // The record's own `config` is the caller's business (pino's own `redact` paths cover it):
    // only what is reachable through the error is scrubbed.
    logger.error({ err, attempt: { config: { region: 'eu' } } }, 'upload failed');
    destination.flushSync();
    const [line] = readLines(file);
    expect(line).toMatchObject({
      msg: 'upload failed',
      attempt: { config: { region: 'eu' } },
      err: { message: 'upload aborted', config: { headers: { Authorization: REDACTED } } },
    });
    expect(readFileSync(file, 'utf8')).not.toContain(UNKNOWN_TOKEN);
    expect(config.headers.Authorization).toBe(`Bearer ${UNKNOWN_TOKEN}`);
  });
});
