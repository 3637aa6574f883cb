import { Writable } from 'node:stream';
import { createRedactor, REDACTED } from '@secret-provider/core';
import { redactWinston } from '@secret-provider/logging';
import { describe, expect, it } from 'vitest';
import winston from 'winston';
import { expectNoLeak, waitFor } from './helpers.js';

const PASSWORD = 'w1nst0n-p@ss"word';
const TOKEN = 'ghp_16C7e42F292c6912E7710c838347Ae178B4a';
const UNKNOWN_TOKEN = 'unknown-bearer-token-123456';

function capture(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      callback();
    },
  });
  return { stream, lines };
}

describe('redactWinston', () => {
  it('masks values in real winston JSON output: messages, metadata, splat and errors', async () => {
    const redactor = createRedactor({ values: [PASSWORD, TOKEN] });
    const sink = capture();
    const logger = winston.createLogger({
      format: winston.format.combine(
        winston.format.errors({ stack: true }),
        winston.format.splat(),
        winston.format.json(),
        redactWinston(redactor),
      ),
      transports: [new winston.transports.Stream({ stream: sink.stream })],
    });
    const meta = { auth: { token: TOKEN }, list: [PASSWORD] };
    logger.info('login with %s', PASSWORD, meta);
    logger.error(new Error(`token ${TOKEN} rejected`, { cause: new Error(`inner ${PASSWORD}`) }));
    logger.warn('client failed', {
      error: Object.assign(new Error('401'), {
        config: { headers: { authorization: `Bearer ${UNKNOWN_TOKEN}` } },
      }),
    });
    await waitFor(() => sink.lines.length === 3);
    const output = sink.lines.join('\n');
    expectNoLeak(output, [PASSWORD, TOKEN, UNKNOWN_TOKEN]);
    const records = sink.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(records[0]).toMatchObject({
      message: `login with ${REDACTED}`,
      auth: { token: REDACTED },
      list: [REDACTED],
    });
    expect(records[1]).toMatchObject({ message: `token ${REDACTED} rejected` });
    expect(String(records[1]?.stack)).toContain(`token ${REDACTED} rejected`);
    // The caller's objects are untouched.
    expect(meta.auth.token).toBe(TOKEN);
  });

  it('masks the finished line of a printf format', async () => {
    const redactor = createRedactor({ values: [TOKEN] });
    const sink = capture();
    const logger = winston.createLogger({
      format: winston.format.combine(
        winston.format.printf((info) => `${info.level}: ${String(info.message)} user=${String(info.user)}`),
        redactWinston(redactor),
      ),
      transports: [new winston.transports.Stream({ stream: sink.stream })],
    });
    logger.info(`key ${TOKEN}`, { user: Buffer.from(TOKEN).toString('base64') });
    await waitFor(() => sink.lines.length === 1);
    expect(sink.lines[0]).toBe(`info: key ${REDACTED} user=${REDACTED}`);
  });
});
