import type { Server as HttpServer } from 'node:http';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import { Duplex } from 'node:stream';

/** Header the front adds to a rewritten request so the handler knows the method the client sent. */
export const ORIGINAL_METHOD_HEADER = 'x-double-original-method';

const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');

/**
 * A stream between a client socket and Node's HTTP parser that rewrites `LIST /p HTTP/1.1`
 * request lines into `GET /p?list=true HTTP/1.1`. Node's parser rejects unknown methods before
 * any handler runs (HPE_INVALID_METHOD), while Vault accepts `LIST`; rewriting in front of the
 * parser lets clients send `LIST` as they do to a real Vault. Every request of a keep-alive
 * connection is rewritten, so the stream follows HTTP/1.1 message framing (Content-Length and
 * chunked bodies) to find each request line.
 */
export class ListRewritingSocket extends Duplex {
  readonly socket: Socket;
  #pending: Buffer = Buffer.alloc(0);
  #state: 'head' | 'body' | 'chunk-size' | 'chunk-data' | 'trailers' = 'head';
  #remaining = 0;

  constructor(socket: Socket) {
    super({ allowHalfOpen: true });
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      const out = this.#feed(chunk);
      if (out.length > 0 && !this.push(out)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('error', (error) => this.destroy(error));
    socket.on('close', () => this.destroy());
    socket.on('timeout', () => this.emit('timeout'));
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }

  get encrypted(): boolean {
    return (this.socket as Socket & { encrypted?: boolean }).encrypted === true;
  }

  address(): AddressInfo | object {
    return this.socket.address();
  }

  setTimeout(ms: number, callback?: () => void): this {
    this.socket.setTimeout(ms);
    if (callback) this.once('timeout', callback);
    return this;
  }

  setNoDelay(noDelay?: boolean): this {
    this.socket.setNoDelay(noDelay);
    return this;
  }

  setKeepAlive(enable?: boolean, delay?: number): this {
    this.socket.setKeepAlive(enable, delay);
    return this;
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.socket.destroyed) callback();
    else this.socket.write(chunk, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end(callback);
  }

  override _destroy(error: Error | null, callback: (error: Error | null) => void): void {
    this.socket.destroy();
    callback(error);
  }

  /** Consumes client bytes; returns what the HTTP parser should see. */
  #feed(chunk: Buffer): Buffer {
    let input = this.#pending.length > 0 ? Buffer.concat([this.#pending, chunk]) : chunk;
    this.#pending = Buffer.alloc(0);
    const out: Buffer[] = [];
    while (input.length > 0) {
      if (this.#state === 'head') {
        const end = input.indexOf(HEAD_END);
        if (end < 0) {
          this.#pending = input;
          break;
        }
        const head = input.subarray(0, end + HEAD_END.length);
        input = input.subarray(end + HEAD_END.length);
        out.push(this.#rewriteHead(head));
      } else if (this.#state === 'body') {
        const take = Math.min(this.#remaining, input.length);
        out.push(input.subarray(0, take));
        input = input.subarray(take);
        this.#remaining -= take;
        if (this.#remaining === 0) this.#state = 'head';
      } else if (this.#state === 'chunk-size') {
        const end = input.indexOf(CRLF);
        if (end < 0) {
          this.#pending = input;
          break;
        }
        const size = Number.parseInt(input.subarray(0, end).toString('latin1').split(';')[0] ?? '', 16);
        out.push(input.subarray(0, end + 2));
        input = input.subarray(end + 2);
        if (!Number.isFinite(size) || size === 0) this.#state = 'trailers';
        else {
          this.#state = 'chunk-data';
          this.#remaining = size + 2; // the data and its CRLF
        }
      } else if (this.#state === 'chunk-data') {
        const take = Math.min(this.#remaining, input.length);
        out.push(input.subarray(0, take));
        input = input.subarray(take);
        this.#remaining -= take;
        if (this.#remaining === 0) this.#state = 'chunk-size';
      } else {
        // Trailers end with an empty line; without trailers the next bytes are that CRLF.
        const end = input.indexOf(CRLF);
        if (end < 0) {
          this.#pending = input;
          break;
        }
        out.push(input.subarray(0, end + 2));
        input = input.subarray(end + 2);
        if (end === 0) this.#state = 'head';
      }
    }
    return out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out);
  }

  #rewriteHead(head: Buffer): Buffer {
    const text = head.toString('latin1');
    const lineEnd = text.indexOf('\r\n');
    const requestLine = text.slice(0, lineEnd);
    const rest = text.slice(lineEnd);
    const headers = rest.toLowerCase();
    const length = /\r\ncontent-length:\s*(\d+)/.exec(headers);
    if (/\r\ntransfer-encoding:[^\r]*chunked/.test(headers)) this.#state = 'chunk-size';
    else if (length !== null && Number(length[1]) > 0) {
      this.#state = 'body';
      this.#remaining = Number(length[1]);
    }
    const match = /^LIST (\S+) (HTTP\/1\.[01])$/.exec(requestLine);
    if (match === null) return head;
    const target = match[1] as string;
    const rewritten = `GET ${target}${target.includes('?') ? '&' : '?'}list=true ${match[2]}\r\n${ORIGINAL_METHOD_HEADER}: LIST${rest}`;
    return Buffer.from(rewritten, 'latin1');
  }
}

/** Hands every connection of `front` (a net or TLS server) to `http` through the LIST rewriter. */
export function attachListRewriting(front: NetServer, http: HttpServer, sockets: Set<Socket>): void {
  front.on('connection', (socket: Socket) => {
    if (front instanceof Object && 'addContext' in front) return; // TLS servers: see secureConnection
    track(socket);
  });
  front.on('secureConnection', (socket: Socket) => track(socket));
  function track(socket: Socket): void {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    http.emit('connection', new ListRewritingSocket(socket));
  }
}
