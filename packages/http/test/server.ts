// A document server for the tests: one URL on 127.0.0.1 whose answers the test scripts (body,
// validators, Cache-Control, failures), and a log of every request it received.
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

/** What the server does with the next requests, instead of serving the document. */
export type Fault =
  | {
      readonly kind: 'status';
      readonly status: number;
      readonly headers?: Record<string, string>;
      readonly body?: string;
    }
  /** Resets the connection before answering. */
  | { readonly kind: 'reset' }
  /** Sends the headers and part of the body, then resets the connection. */
  | { readonly kind: 'reset-mid-body' }
  /** Sends the headers and part of the body, then stalls for `ms`. */
  | { readonly kind: 'stall-body'; readonly ms: number };

export interface ServedRequest {
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  readonly status: number;
}

/** The document and how it is served. */
export interface DocumentServerOptions {
  body?: string;
  contentType?: string;
  /** Send an ETag (a hash of the body), answering If-None-Match with 304. */
  etag?: boolean;
  /** Send Last-Modified (changed with each body), answering If-Modified-Since with 304. */
  lastModified?: boolean;
  /** The Cache-Control header to send, if any. */
  cacheControl?: string;
  /** Only requests with this Authorization header are served; others get 401. */
  authorization?: string;
  /** More headers for every answer (`Age`). */
  headers?: Record<string, string>;
  tls?: { key: string; cert: string };
}

export class DocumentServer {
  readonly requests: ServedRequest[] = [];
  options: DocumentServerOptions;
  #server: Server;
  #faults: Fault[] = [];
  #version = 0;
  #modified = new Date(Date.UTC(2026, 0, 1));
  #sockets = new Set<Socket>();

  private constructor(options: DocumentServerOptions) {
    this.options = { contentType: 'application/json', ...options };
    const handler = (req: import('node:http').IncomingMessage, res: ServerResponse) => this.#handle(req, res);
    this.#server = options.tls === undefined ? createServer(handler) : createTlsServer(options.tls, handler);
    this.#server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  static async start(options: DocumentServerOptions = {}): Promise<DocumentServer> {
    const server = new DocumentServer(options);
    await new Promise<void>((resolve) => server.#server.listen(0, '127.0.0.1', resolve));
    return server;
  }

  url(path = '/config.json'): string {
    const { port } = this.#server.address() as AddressInfo;
    return `${this.options.tls ? 'https' : 'http'}://127.0.0.1:${port}${path}`;
  }

  /** Replaces the document (a new ETag and Last-Modified). */
  setBody(body: string): void {
    this.options.body = body;
    this.#version++;
    this.#modified = new Date(this.#modified.getTime() + 1000);
  }

  /** The next `times` requests meet `fault`. */
  fail(fault: Fault, times = 1): void {
    for (let i = 0; i < times; i++) this.#faults.push(fault);
  }

  clearFaults(): void {
    this.#faults = [];
  }

  count(status?: number): number {
    return status === undefined
      ? this.requests.length
      : this.requests.filter((r) => r.status === status).length;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #handle(req: import('node:http').IncomingMessage, res: ServerResponse): void {
    const log = (status: number) =>
      this.requests.push({ method: req.method ?? '', headers: req.headers, status });
    const fault = this.#faults.shift();
    if (fault !== undefined) {
      if (fault.kind === 'status') {
        log(fault.status);
        res.writeHead(fault.status, fault.headers);
        res.end(fault.body);
        return;
      }
      if (fault.kind === 'reset') {
        log(0);
        req.socket.resetAndDestroy();
        return;
      }
      log(200);
      const body = this.options.body ?? '';
      res.writeHead(200, {
        'content-type': this.options.contentType ?? '',
        'content-length': body.length + 100,
      });
      res.write(body.slice(0, Math.ceil(body.length / 2)));
      if (fault.kind === 'reset-mid-body') setTimeout(() => res.socket?.resetAndDestroy(), 10);
      else setTimeout(() => res.socket?.destroy(), fault.ms);
      return;
    }
    const { options } = this;
    if (options.authorization !== undefined && req.headers.authorization !== options.authorization) {
      log(401);
      res.writeHead(401, { 'www-authenticate': 'Bearer' });
      res.end('{"error":"unauthorized"}');
      return;
    }
    const headers: Record<string, string> = { ...options.headers };
    if (options.contentType) headers['content-type'] = options.contentType;
    if (options.cacheControl) headers['cache-control'] = options.cacheControl;
    const etag = `"v${this.#version}"`;
    if (options.etag) headers.etag = etag;
    if (options.lastModified) headers['last-modified'] = this.#modified.toUTCString();
    const notModified =
      (options.etag && req.headers['if-none-match'] === etag) ||
      (!req.headers['if-none-match'] &&
        options.lastModified &&
        req.headers['if-modified-since'] !== undefined &&
        Date.parse(req.headers['if-modified-since']) >= this.#modified.getTime());
    if (notModified) {
      log(304);
      res.writeHead(304, headers);
      res.end();
      return;
    }
    log(200);
    res.writeHead(200, headers);
    res.end(options.body ?? '');
  }
}
