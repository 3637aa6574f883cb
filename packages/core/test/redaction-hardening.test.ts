import { Console } from 'node:console';
import { Writable } from 'node:stream';
import { format, inspect } from 'node:util';
import { runInNewContext } from 'node:vm';
import { createRedactor, REDACTED, type Redactor } from '@secret-provider/core';
import { BaseProvider, type StoredSecret } from '@secret-provider/core/adapter';
import { redactDeep } from '@secret-provider/core/redaction';
import { until } from '@secret-provider/testing';
import { describe, expect, it } from 'vitest';

const TOKEN = 'tok_9f8e7d6c5b4a';

/** Every way a logger or a developer prints a value; each must work and show no `value`. */
function printAll(printed: unknown, value: string, options: { cyclic?: boolean } = {}): string {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString('utf8'));
      callback();
    },
  });
  new Console({ stdout: sink, stderr: sink }).log(printed);
  new Console({ stdout: sink, stderr: sink }).error('%o', printed);
  const shown = [
    inspect(printed, { depth: 10 }),
    inspect(printed, { depth: 10, showHidden: true }),
    format('%s %j', printed, printed),
    // JSON has no cycles: a cyclic copy throws exactly as its original does.
    options.cyclic ? '' : JSON.stringify(printed),
    typeof printed === 'object' && printed !== null ? String(printed) : '',
    ...lines,
  ];
  if (typeof printed === 'object' && printed !== null) {
    // What error serializers (pino's among them) do: every enumerable property, own or inherited.
    for (const key in printed) shown.push(String((printed as Record<string, unknown>)[key]));
    if (printed instanceof Error) shown.push(printed.name, printed.message, String(printed.stack));
  }
  const text = shown.join('\n');
  expect(text).not.toContain(value);
  return text;
}

/** A provider whose writes wait until released, to look at the redactor while one is in flight. */
class SlowWriteProvider extends BaseProvider {
  readonly data = new Map<string, string>();
  readonly #pending: Array<() => void> = [];
  failWrites = false;

  constructor() {
    super({ name: 'slow' });
  }

  releaseWrites(): void {
    for (const release of this.#pending.splice(0)) release();
  }

  get writesInFlight(): number {
    return this.#pending.length;
  }

  protected override async readSecret(key: string): Promise<StoredSecret | undefined> {
    const value = this.data.get(key);
    return value === undefined ? undefined : { value };
  }

  protected override async writeSecret(key: string, value: string): Promise<void> {
    await new Promise<void>((resolve) => this.#pending.push(resolve));
    // A client library that quotes the request it could not send.
    if (this.failWrites) throw new Error(`write of ${key}=${value} refused by the backend`);
    this.data.set(key, value);
  }

  protected override mapError(error: unknown): never {
    throw error;
  }
}

describe('redactor: values in flight with rotationGraceMs: 0', () => {
  it('masks the value of a set() while it is in flight, and after it completes', async () => {
    const redactor = createRedactor({ rotationGraceMs: 0 });
    const backend = new SlowWriteProvider();
    const provider = redactor.wrap(backend);
    const writing = provider.set('DB_PASSWORD', 'new-password-in-flight');
    await until(() => backend.writesInFlight === 1);
    expect(redactor.redact('connecting with new-password-in-flight')).toBe(`connecting with ${REDACTED}`);
    backend.releaseWrites();
    await writing;
    expect(redactor.redact('new-password-in-flight')).toBe(REDACTED);
    await provider.close();
  });

  it('masks both values while a rotation is in flight, then retires the old one at once', async () => {
    const redactor = createRedactor({ rotationGraceMs: 0 });
    const backend = new SlowWriteProvider();
    backend.data.set('DB_PASSWORD', 'old-password-value');
    const provider = redactor.wrap(backend);
    await provider.get('DB_PASSWORD');
    const writing = provider.set('DB_PASSWORD', 'new-password-value');
    await until(() => backend.writesInFlight === 1);
    expect(redactor.redact('old-password-value new-password-value')).toBe(`${REDACTED} ${REDACTED}`);
    backend.releaseWrites();
    await writing;
    expect(redactor.redact('old-password-value new-password-value')).toBe(`old-password-value ${REDACTED}`);
    await provider.close();
  });

  it('keeps a value masked while two writes of it are in flight and one ends', async () => {
    const redactor = createRedactor({ rotationGraceMs: 0 });
    const backend = new SlowWriteProvider();
    const provider = redactor.wrap(backend);
    backend.failWrites = true;
    const first = provider.set('A_TOKEN', 'shared-value-123').catch((error: unknown) => error);
    const second = provider.set('B_TOKEN', 'shared-value-123').catch((error: unknown) => error);
    await until(() => backend.writesInFlight === 2);
    expect(redactor.redact('shared-value-123')).toBe(REDACTED);
    await provider.close();
    backend.releaseWrites();
    await Promise.all([first, second]);
  });

  it('a failed set() rejects with an error that does not show the value, whatever the grace period', async () => {
    for (const rotationGraceMs of [0, 60_000]) {
      const redactor = createRedactor({ rotationGraceMs });
      const backend = new SlowWriteProvider();
      backend.failWrites = true;
      const provider = redactor.wrap(backend);
      const writing = provider.set('DB_PASSWORD', 'refused-password-value').catch((error: unknown) => error);
      await until(() => backend.writesInFlight === 1);
      backend.releaseWrites();
      const error = await writing;
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toBe(`write of DB_PASSWORD=${REDACTED} refused by the backend`);
      printAll(error, 'refused-password-value');
      await provider.close();
    }
  });
});

describe('redactor: exotic errors come back printable', () => {
  const redactor = (): Redactor => createRedactor({ values: [TOKEN] });

  it('a DOMException that held a value', () => {
    const original = new DOMException(`request failed with ${TOKEN}`, 'AbortError');
    const copy = redactor().redact(original);
    expect(copy).not.toBe(original);
    expect(copy).toBeInstanceOf(DOMException);
    expect(copy.name).toBe('AbortError');
    expect(copy.message).toBe(`request failed with ${REDACTED}`);
    expect(copy.code).toBe(20);
    const text = printAll(copy, TOKEN);
    expect(text).toContain(`request failed with ${REDACTED}`);
    // The original is untouched.
    expect(original.message).toBe(`request failed with ${TOKEN}`);
  });

  it('a DOMException inside a record, an AggregateError and a cause chain', () => {
    const dom = new DOMException(`timed out on ${TOKEN}`, 'TimeoutError');
    const aggregate = new AggregateError([dom, new Error('fine')], 'several failures', {
      cause: new DOMException(`cause ${TOKEN}`, 'DataCloneError'),
    });
    const copy = redactor().redact({ msg: 'failed', err: aggregate, list: [dom] });
    expect(copy.err).toBeInstanceOf(AggregateError);
    expect((copy.err.errors[0] as DOMException).message).toBe(`timed out on ${REDACTED}`);
    expect(copy.list[0]).toBe(copy.err.errors[0]);
    expect((copy.err.cause as DOMException).name).toBe('DataCloneError');
    printAll(copy, TOKEN);
  });

  it('an error class whose getters, toJSON, toString and inspect read private fields', () => {
    class ClientError extends Error {
      readonly #detail: string;
      constructor(detail: string) {
        super('client failed');
        this.name = 'ClientError';
        this.#detail = detail;
      }
      get detail(): string {
        return this.#detail;
      }
      toJSON(): Record<string, unknown> {
        return { name: this.name, detail: this.#detail };
      }
      override toString(): string {
        return `ClientError: ${this.#detail}`;
      }
      [inspect.custom](): string {
        return `ClientError<${this.#detail}>`;
      }
    }
    const original = new ClientError(`token ${TOKEN} rejected`);
    const copy = redactor().redact(original);
    expect(copy).toBeInstanceOf(ClientError);
    expect(copy.detail).toBe(`token ${REDACTED} rejected`);
    expect(JSON.parse(JSON.stringify(copy))).toEqual({
      name: 'ClientError',
      detail: `token ${REDACTED} rejected`,
    });
    expect(String(copy)).toBe(`ClientError: token ${REDACTED} rejected`);
    printAll(copy, TOKEN);
  });

  it('an error whose own getters throw, or whose prototype getters throw on the original too', () => {
    const original = new Error(`failed: ${TOKEN}`);
    Object.defineProperty(original, 'response', {
      get() {
        throw new Error(`no response for ${TOKEN}`);
      },
      enumerable: true,
    });
    const copy = redactor().redact(original) as Error & { response?: unknown };
    expect(copy.response).toBe('[Unreadable]');
    printAll(copy, TOKEN);

    class Broken extends Error {
      get reason(): string {
        throw new Error(`cannot say ${TOKEN}`);
      }
    }
    const broken = redactor().redact(new Broken(`broken ${TOKEN}`));
    expect(broken).toBeInstanceOf(Broken);
    expect(() => (broken as Broken).reason).not.toThrow();
    printAll(broken, TOKEN);
  });

  it('an error with symbol keys and a frozen error', () => {
    const tag = Symbol('request');
    const withSymbol = Object.assign(new Error('symbol-keyed'), { [tag]: { header: `Bearer ${TOKEN}` } });
    const copy = redactor().redact(withSymbol);
    expect(copy[tag].header).toBe(`Bearer ${REDACTED}`);
    printAll(copy, TOKEN);

    const frozen = Object.freeze(Object.assign(new Error(`frozen ${TOKEN}`), { code: 'E_FROZEN' }));
    const frozenCopy = redactor().redact(frozen);
    expect(frozenCopy.message).toBe(`frozen ${REDACTED}`);
    expect(frozenCopy.code).toBe('E_FROZEN');
    printAll(frozenCopy, TOKEN);
    expect(frozen.message).toBe(`frozen ${TOKEN}`);
  });

  it('a cycle through a DOMException', () => {
    const dom = new DOMException(`cyclic ${TOKEN}`, 'SyntaxError') as DOMException & { self?: unknown };
    Object.defineProperty(dom, 'self', { value: dom, enumerable: true });
    const copy = redactor().redact(dom) as DOMException & { self?: unknown };
    expect(copy.self).toBe(copy);
    expect(() => JSON.stringify(dom)).toThrow(/circular/);
    printAll(copy, TOKEN, { cyclic: true });
  });

  it('hostile objects (a revoked proxy, throwing traps) become [Unreadable] instead of throwing', () => {
    const { proxy, revoke } = Proxy.revocable({ token: TOKEN }, {});
    revoke();
    const trap = new Proxy(
      { token: TOKEN },
      {
        getPrototypeOf() {
          throw new Error('no prototype');
        },
        ownKeys() {
          throw new Error('no keys');
        },
      },
    );
    const copy = redactor().redact({ msg: TOKEN, proxy, trap, ok: 1 });
    expect(copy).toEqual({ msg: REDACTED, proxy: '[Unreadable]', trap: '[Unreadable]', ok: 1 });
  });
});

describe('redactDeep: the one walk, with other rules', () => {
  const mask = (text: string) => text.replaceAll(TOKEN, REDACTED);

  it('an error from another realm comes back redacted and printable', () => {
    const foreign = runInNewContext('new TypeError(message)', { message: `vm failed ${TOKEN}` }) as Error;
    expect(foreign instanceof Error).toBe(false);
    const copy = redactDeep(foreign, { redactString: mask }) as Error;
    expect(copy.message).toBe(`vm failed ${REDACTED}`);
    expect(Object.hasOwn(copy, '__proto__')).toBe(false);
    printAll(copy, TOKEN);
  });

  it('sensitive names, instances, binary data and rules inside errors', () => {
    class Socket {
      readonly remote = '10.0.0.1';
    }
    const error = Object.assign(new Error(`failed ${TOKEN}`), {
      headers: { authorization: 'Basic dTpw', accept: 'json' },
      socket: new Socket(),
      body: Buffer.from('password=abc'),
    });
    const record = { msg: `outer ${TOKEN}`, socket: new Socket(), err: error, deep: { a: { b: { c: {} } } } };
    const rules = {
      redactString: (text: string) => text,
      minLength: Number.POSITIVE_INFINITY,
      maxDepth: 2,
      beyondDepth: 'keep' as const,
      instance: (value: object) => value,
      errors: {
        redactString: mask,
        sensitiveKey: (key: string) => key === 'authorization',
        instance: (value: object) => `[${value.constructor.name}]`,
        binary: (value: ArrayBuffer | ArrayBufferView) => `[${value.byteLength} bytes]`,
      },
    };
    const out = redactDeep(record, rules) as typeof record;
    // Outside the error: nothing changes, deeper objects are kept as they are.
    expect(out.msg).toBe(record.msg);
    expect(out.socket).toBe(record.socket);
    expect(out.deep).toBe(record.deep);
    const err = out.err as unknown as Record<string, unknown>;
    expect(err.message).toBe(`failed ${REDACTED}`);
    expect(err.headers).toEqual({ authorization: REDACTED, accept: 'json' });
    expect(err.socket).toBe('[Socket]');
    expect(err.body).toBe('[12 bytes]');
    expect(error.headers.authorization).toBe('Basic dTpw');
  });

  it('rules that name each other, and a throwing redactString, end without throwing', () => {
    const a: { redactString: (text: string) => string; errors?: unknown } = { redactString: mask };
    const b = { redactString: mask, errors: a };
    a.errors = b;
    const inner = new Error(`inner ${TOKEN}`);
    const outer = new Error(`outer ${TOKEN}`, { cause: inner });
    (inner as Error & { cause?: unknown }).cause = outer;
    const out = redactDeep({ outer }, a as Parameters<typeof redactDeep>[1]) as { outer: Error };
    expect(out.outer.message).toBe(`outer ${REDACTED}`);
    expect(inspect(out, { depth: 6 })).not.toContain(TOKEN);
    const throwing = {
      redactString: () => {
        throw new Error('broken');
      },
    };
    expect(redactDeep(`alone ${TOKEN}`, throwing)).toBe('[Unreadable]');
    expect(redactDeep({ msg: `inside ${TOKEN}` }, throwing)).toBe('[Unreadable]');
  });
});
