import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { createRedactor, REDACTED } from '@secret-provider/core';
import { redactedDestination, redactPino, redactWinston, scrubError } from '@secret-provider/logging';
import { MemoryProvider } from '@secret-provider/memory';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import winston from 'winston';
import { waitFor } from './helpers.js';

// Each example of the README runs here, line for line (the first test checks that), followed by
// assertions on what it did.

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const examples = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1] ?? '');
// Formatting aside: whitespace, and the trailing commas a formatter adds when it wraps lines.
const normalize = (code: string) =>
  code
    .split('\n')
    .filter((line) => !line.trim().startsWith('import '))
    .join('')
    .replace(/\s+/g, '')
    .replace(/,([)\]}])/g, '$1');

function capture(): { destination: Writable; text: () => string } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'));
      callback();
    },
  });
  return { destination, text: () => chunks.join('') };
}

describe('README examples', () => {
  it('are all in this file, with their imports', () => {
    const source = readFileSync(new URL(import.meta.url), 'utf8');
    expect(examples.length).toBe(6);
    for (const example of examples) {
      expect(normalize(source)).toContain(normalize(example));
      for (const line of example.split('\n').filter((l) => l.startsWith('import '))) {
        const names = /\{ (.+) \}|import (\w+) from/.exec(line);
        for (const name of (names?.[1] ?? names?.[2] ?? '').split(', '))
          expect(source).toMatch(new RegExp(`\\b${name}\\b[^\\n]*from`));
      }
    }
  });

  it('the redactor', () => {
    const redactor = createRedactor({ values: ['s3cr3t-api-t0ken'] });
    redactor.redact('Authorization: Bearer s3cr3t-api-t0ken'); // 'Authorization: Bearer [REDACTED]'
    expect(redactor.redact('Authorization: Bearer s3cr3t-api-t0ken')).toBe(
      `Authorization: Bearer ${REDACTED}`,
    );
  });

  it('learning from providers', async () => {
    const redactor = createRedactor({ rotationGraceMs: 10 * 60_000 });
    // Reads every key now, then follows added, rotated and removed keys.
    const following = redactor.attach(
      new MemoryProvider({ initial: { DB_PASSWORD: 'correct-horse-battery' } }),
    );
    await following.ready;
    // Or learn values as the application reads them:
    const secrets = redactor.wrap(new MemoryProvider({ initial: { API_KEY: 'ak_live_0123456789' } }));
    await secrets.get('API_KEY');
    expect(redactor.redact('correct-horse-battery ak_live_0123456789')).toBe(`${REDACTED} ${REDACTED}`);
    await following.stop();
    await secrets.close();
  });

  it('pino', () => {
    const redactor = createRedactor({ values: ['correct-horse-battery'] });
    const { destination, text } = capture();
    const logger = pino({ level: 'info', ...redactPino(redactor) }, destination);
    logger.info({ url: 'postgres://app:correct-horse-battery@db/app' }, 'connecting');
    return waitFor(() => text().includes('\n')).then(() => {
      expect(JSON.parse(text())).toMatchObject({
        url: `postgres://app:${REDACTED}@db/app`,
        msg: 'connecting',
      });
    });
  });

  it('winston', async () => {
    const redactor = createRedactor({ values: ['correct-horse-battery'] });
    const { destination, text } = capture();
    const logger = winston.createLogger({
      format: winston.format.combine(
        winston.format.errors({ stack: true }),
        winston.format.json(),
        redactWinston(redactor),
      ),
      transports: [new winston.transports.Stream({ stream: destination })],
    });
    logger.error(new Error('login failed for correct-horse-battery'));
    await waitFor(() => text().includes('\n'));
    expect(JSON.parse(text())).toMatchObject({ message: `login failed for ${REDACTED}` });
    expect(text()).not.toContain('correct-horse-battery');
  });

  it('any stream', async () => {
    const redactor = createRedactor({ values: ['s3cr3t-api-t0ken'] });
    const { destination, text } = capture();
    const out = redactedDestination(redactor, destination);
    out.write('token=s3cr3t-api-');
    out.write('t0ken\n'); // written as 'token=[REDACTED]\n'
    await waitFor(() => text().includes('\n'));
    expect(text()).toBe(`token=${REDACTED}\n`);
  });

  it('errors from third-party clients', () => {
    const redactor = createRedactor();
    const failure = Object.assign(new Error('request failed'), {
      config: { headers: { Authorization: 'Bearer eyJhbGciOi.unknown.token' } },
    });
    const safe = scrubError(failure, { redactor });
    // safe.config.headers.Authorization === '[REDACTED]'; `failure` itself is unchanged
    expect(safe.config.headers.Authorization).toBe(REDACTED);
    expect(failure.config.headers.Authorization).toBe('Bearer eyJhbGciOi.unknown.token');
  });
});
