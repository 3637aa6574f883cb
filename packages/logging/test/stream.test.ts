import { once } from 'node:events';
import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createRedactor, REDACTED } from '@secret-provider/core';
import { createRedactingStream, redactedDestination } from '@secret-provider/logging';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectNoLeak, tempDir } from './helpers.js';

const TOKEN = 'sk_live_4eC39HqLyjWDarjtT1zdp7dc';
const UNICODE = 'pässwörd-ünïcødé-42';

let temp: ReturnType<typeof tempDir>;
beforeEach(() => {
  temp = tempDir();
});
afterEach(() => temp.remove());

function capture(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      callback();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

describe('createRedactingStream', () => {
  it('masks a value split across two writes into a file', async () => {
    const redactor = createRedactor({ values: [TOKEN] });
    const file = join(temp.dir, 'app.log');
    const out = redactedDestination(redactor, createWriteStream(file));
    out.write(`{"msg":"charging with key ${TOKEN.slice(0, 11)}`);
    out.write(`${TOKEN.slice(11)}","level":30}\n`);
    out.write(`plain line\n`);
    out.end();
    await once(out, 'finish');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const written = readFileSync(file, 'utf8');
    expect(written).toBe(`{"msg":"charging with key ${REDACTED}","level":30}\nplain line\n`);
    expectNoLeak(written, [TOKEN]);
  });

  it('masks a value split at every position and across multi-byte characters in Buffers', async () => {
    const redactor = createRedactor({ values: [UNICODE, TOKEN] });
    const text = `user ${UNICODE} key ${TOKEN}\n`;
    const bytes = Buffer.from(text);
    for (let cut = 1; cut < bytes.length; cut++) {
      const stream = createRedactingStream(redactor);
      const sink = capture();
      stream.pipe(sink.stream);
      stream.write(bytes.subarray(0, cut));
      stream.write(bytes.subarray(cut));
      stream.end();
      await once(sink.stream, 'finish');
      expect(sink.text()).toBe(`user ${REDACTED} key ${REDACTED}\n`);
    }
  });

  it('writes complete lines at once and a held-back partial line after flushAfterMs', async () => {
    const redactor = createRedactor({ values: [TOKEN] });
    const stream = createRedactingStream(redactor, { flushAfterMs: 30 });
    const sink = capture();
    stream.pipe(sink.stream);
    stream.write(`first ${TOKEN}\n`);
    await new Promise((resolve) => setImmediate(resolve));
    expect(sink.text()).toBe(`first ${REDACTED}\n`);
    stream.write('progress 50%');
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(sink.text()).toBe(`first ${REDACTED}\n`);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(sink.text()).toBe(`first ${REDACTED}\nprogress 50%`);
    stream.end();
    await once(sink.stream, 'finish');
  });

  it('keeps JSON lines valid with json: true', async () => {
    const quoted = 'pa"ss\\word-1234';
    const redactor = createRedactor({ values: [quoted] });
    const stream = createRedactingStream(redactor, { json: true });
    const sink = capture();
    stream.pipe(sink.stream);
    const line = JSON.stringify({ password: quoted, note: `${quoted.slice(0, 6)}"` });
    stream.write(`${line.slice(0, 20)}`);
    stream.write(`${line.slice(20)}\n`);
    stream.end();
    await once(sink.stream, 'finish');
    const parsed = JSON.parse(sink.text()) as Record<string, string>;
    expect(parsed.password).toBe(REDACTED);
    expectNoLeak(sink.text(), [quoted]);
  });
});
