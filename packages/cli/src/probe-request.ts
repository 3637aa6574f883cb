import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';

/** A diagnostic request and what the server answered; bodies are parsed JSON or dropped. */
export interface ProbeAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The JSON body; undefined when it is not JSON. The caller picks known fields only. */
  readonly body: unknown;
  readonly latencyMs: number;
  /** The server certificate, for https. */
  readonly certificate?: { readonly validTo: Date; readonly subject: string } | undefined;
}

/** Why a probe got no answer: `tls` (certificate, handshake), `timeout`, `network`. */
export class ProbeFailure extends Error {
  readonly kind: 'tls' | 'timeout' | 'network';
  /** Node's error code (ECONNREFUSED, CERT_HAS_EXPIRED...), never the foreign message. */
  readonly errorCode: string | undefined;
  constructor(kind: 'tls' | 'timeout' | 'network', errorCode: string | undefined) {
    super(
      `${kind === 'tls' ? 'TLS failure' : kind === 'timeout' ? 'timed out' : 'unreachable'}${errorCode === undefined ? '' : ` (${errorCode})`}`,
    );
    this.name = 'ProbeFailure';
    this.kind = kind;
    this.errorCode = errorCode;
  }
}

const TLS_CODES = /^(CERT_|ERR_TLS|ERR_SSL|DEPTH_ZERO|SELF_SIGNED|UNABLE_TO_|HOSTNAME_|ERR_OSSL)/;

/** One request with a deadline; the body is parsed as JSON when possible (bounded to 1 MiB). */
export function probe(
  url: URL,
  options: {
    readonly method?: string;
    readonly headers?: Readonly<Record<string, string>>;
    readonly body?: string;
    readonly ca?: string | Buffer | undefined;
    readonly rejectUnauthorized?: boolean | undefined;
    readonly timeoutMs: number;
  },
): Promise<ProbeAnswer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    let certificate: ProbeAnswer['certificate'];
    const req = send(
      url,
      {
        method: options.method ?? 'GET',
        headers: {
          ...options.headers,
          ...(options.body === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(options.body) }),
        },
        ...(url.protocol === 'https:'
          ? {
              ...(options.ca === undefined ? {} : { ca: options.ca }),
              rejectUnauthorized: options.rejectUnauthorized ?? true,
              agent: false,
            }
          : { agent: false }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= 1 << 20) chunks.push(chunk);
        });
        res.on('end', () => {
          clearTimeout(timer);
          let body: unknown;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            body = undefined;
          }
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            latencyMs: performance.now() - started,
            certificate,
          });
        });
        res.on('error', () => reject(new ProbeFailure('network', 'ECONNRESET')));
      },
    );
    req.on('socket', (socket) => {
      socket.once('secureConnect', () => {
        const peer = (socket as TLSSocket).getPeerCertificate();
        if (peer?.valid_to !== undefined)
          certificate = { validTo: new Date(peer.valid_to), subject: String(peer.subject?.CN ?? '') };
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new ProbeFailure('timeout', undefined));
    }, options.timeoutMs);
    req.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const code = error.code;
      reject(new ProbeFailure(code !== undefined && TLS_CODES.test(code) ? 'tls' : 'network', code));
    });
    req.end(options.body);
  });
}

/** Days from now until `date`, rounded down. */
export function daysUntil(date: Date): number {
  return Math.floor((date.getTime() - Date.now()) / 86_400_000);
}
