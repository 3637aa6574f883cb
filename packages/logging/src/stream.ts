import { Transform, type TransformCallback } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { ChunkRedactor, Redactor } from '@secret-provider/core';

/** Options of {@link createRedactingStream}. */
export interface RedactingStreamOptions {
  /**
   * The text is JSON lines: values holding `"`, `\` or control characters are matched only
   * JSON-escaped, so masking keeps every line valid JSON. @default false
   */
  readonly json?: boolean | undefined;
  /**
   * Text held back because it may be the start of a value split across writes is written
   * after this many ms without a further write (masking what is known by then). By default it
   * waits for the next write or the end; output ending with a newline is never held back
   * unless a value spans lines.
   */
  readonly flushAfterMs?: number | undefined;
}

/**
 * A `Transform` that masks every value `redactor` knows in the text written to it, for any
 * writable: stdout, a file, a socket, a logger's destination. A value split across two writes
 * is still masked: the stream keeps back the unfinished last line (or, when a value spans
 * lines, the last `longest value - 1` characters) until the next write. Multi-byte characters
 * split across `Buffer` writes are decoded correctly.
 *
 * @example
 * ```ts
 * const out = createRedactingStream(redactor);
 * out.pipe(process.stdout);
 * const logger = pino(out);
 * ```
 */
export function createRedactingStream(redactor: Redactor, options: RedactingStreamOptions = {}): Transform {
  return new RedactingStream(redactor, options);
}

/**
 * {@link createRedactingStream} piped into `destination`: write to the returned stream instead
 * of `destination`. Ending it ends `destination`, except stdout and stderr.
 */
export function redactedDestination(
  redactor: Redactor,
  destination: NodeJS.WritableStream,
  options: RedactingStreamOptions = {},
): Transform {
  const stream = createRedactingStream(redactor, options);
  stream.pipe(destination);
  return stream;
}

class RedactingStream extends Transform {
  readonly #chunks: ChunkRedactor;
  readonly #decoder = new StringDecoder('utf8');
  readonly #flushAfterMs: number | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(redactor: Redactor, options: RedactingStreamOptions) {
    super({ decodeStrings: false });
    this.#chunks = redactor.chunked({ json: options.json });
    this.#flushAfterMs = options.flushAfterMs;
  }

  override _transform(
    chunk: unknown,
    encoding: BufferEncoding | 'buffer',
    callback: TransformCallback,
  ): void {
    let text: string;
    if (typeof chunk === 'string') {
      // A string after bytes ends any character those bytes left unfinished.
      text =
        encoding === 'utf8' || encoding === 'utf-8'
          ? chunk
          : Buffer.from(chunk, encoding as BufferEncoding).toString('utf8');
      text = this.#decoder.end() + text;
    } else {
      // Writable has already rejected anything but strings and byte views.
      const bytes = chunk as Uint8Array;
      text = this.#decoder.write(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    }
    this.#clearTimer();
    const out = this.#chunks.push(text);
    if (out.length > 0) this.push(out);
    this.#armTimer();
    callback();
  }

  override _flush(callback: TransformCallback): void {
    this.#clearTimer();
    const out = this.#chunks.push(this.#decoder.end()) + this.#chunks.flush();
    if (out.length > 0) this.push(out);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#clearTimer();
    callback(error);
  }

  #armTimer(): void {
    if (this.#flushAfterMs === undefined || this.#chunks.pending === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const out = this.#chunks.flush();
      if (out.length > 0) this.push(out);
    }, this.#flushAfterMs);
    this.#timer.unref();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
