// A token endpoint (OAuth2 client credentials, RFC 6749 §4.4) and a resource server on
// 127.0.0.1, both on the test's simulated clock. The resource server verifies each bearer JWT's
// signature with the public keys it trusts (node:crypto verify) and its expiry, and counts what
// it refused and why; the test scripts answers (401, 429) in front of it.
import { createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { ManualClock } from '@secret-provider/core/adapter';

export interface KeyPair {
  readonly privatePem: string;
  readonly publicKey: KeyObject;
}

export function keyPair(algorithm: 'RS256' | 'ES256'): KeyPair {
  const { privateKey, publicKey } =
    algorithm === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, publicKey };
}

/** A scripted answer for the next request to a path. */
export interface Scripted {
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly body?: string;
}

abstract class LocalServer {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly scripted: Scripted[] = [];
  url = '';

  constructor() {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const next = this.scripted.shift();
        if (next !== undefined) {
          res.writeHead(next.status, next.headers ?? {});
          res.end(next.body ?? '');
          this.onScripted(req, next);
          return;
        }
        this.handle(req, Buffer.concat(chunks).toString('utf8'), res);
      });
    });
    this.#server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  protected abstract handle(req: IncomingMessage, body: string, res: ServerResponse): void;
  protected onScripted(_req: IncomingMessage, _answer: Scripted): void {}

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

/** Verifies bearer JWTs (RS256 and ES256) against trusted public keys, on simulated time. */
export class ResourceServer extends LocalServer {
  readonly #clock: ManualClock;
  trusted: KeyObject[] = [];
  served = 0;
  /** Requests that carried a token already past its `exp`. */
  expired = 0;
  badSignature = 0;
  /** Bearer tokens seen, in order (so a test can check which token each request carried). */
  readonly tokens: string[] = [];
  /** Simulated time of each request. */
  readonly at: number[] = [];
  /** Tokens refused with 401 although valid (revoked); `refuseAll` refuses every token. */
  readonly revoked = new Set<string>();
  refuseAll = false;
  refused = 0;

  constructor(clock: ManualClock, trusted: KeyObject[]) {
    super();
    this.#clock = clock;
    this.trusted = trusted;
  }

  protected override onScripted(req: IncomingMessage): void {
    this.at.push(this.#clock.now());
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (bearer !== undefined) this.tokens.push(bearer);
  }

  protected handle(req: IncomingMessage, _body: string, res: ServerResponse): void {
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    this.at.push(this.#clock.now());
    if (bearer === undefined) {
      json(res, 401, { error: 'no bearer' });
      return;
    }
    this.tokens.push(bearer);
    if (this.refuseAll || this.revoked.has(bearer)) {
      this.refused++;
      json(res, 401, { error: 'revoked' });
      return;
    }
    const claims = this.verify(bearer);
    if (claims === 'bad-signature') {
      this.badSignature++;
      json(res, 401, { error: 'bad signature' });
      return;
    }
    if (claims === 'expired') {
      this.expired++;
      json(res, 401, { error: 'expired' });
      return;
    }
    this.served++;
    json(res, 200, { ok: true, sub: claims.sub ?? null });
  }

  verify(token: string): 'bad-signature' | 'expired' | Record<string, unknown> {
    const [header, payload, signature] = token.split('.');
    if (header === undefined || payload === undefined || signature === undefined) return 'bad-signature';
    const { alg } = JSON.parse(Buffer.from(header, 'base64url').toString()) as { alg: string };
    const data = Buffer.from(`${header}.${payload}`);
    const sig = Buffer.from(signature, 'base64url');
    const ok = this.trusted.some((key) =>
      alg === 'ES256'
        ? key.asymmetricKeyType === 'ec' && verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig)
        : alg === 'RS256' && key.asymmetricKeyType === 'rsa' && verify('sha256', data, key, sig),
    );
    if (!ok) return 'bad-signature';
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    if (typeof claims.exp !== 'number' || claims.exp * 1000 <= this.#clock.now()) return 'expired';
    return claims;
  }
}

/**
 * An OAuth2 token endpoint: `POST /token` with `grant_type=client_credentials`, the client
 * authenticated by HTTP Basic or form fields; answers an ES256 JWT valid for `expiresIn` s.
 */
export class TokenEndpoint extends LocalServer {
  readonly #clock: ManualClock;
  readonly #signing = keyPair('ES256');
  clientId = 'svc-a';
  clientSecret = 'client-secret-8f2e1c9b';
  expiresIn: number | undefined = 300;
  requests = 0;
  /** Form bodies and content types received (for RFC 6749 §4.4 checks). */
  readonly received: Array<{ contentType: string | undefined; form: URLSearchParams; basic: boolean }> = [];

  constructor(clock: ManualClock) {
    super();
    this.#clock = clock;
  }

  get publicKey(): KeyObject {
    return createPublicKey(this.#signing.privatePem);
  }

  protected override onScripted(): void {
    this.requests++;
  }

  protected handle(req: IncomingMessage, body: string, res: ServerResponse): void {
    this.requests++;
    const form = new URLSearchParams(body);
    let id = form.get('client_id');
    let secret = form.get('client_secret');
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (basic !== undefined) {
      const [user, pass] = Buffer.from(basic, 'base64').toString().split(':');
      id = decodeURIComponent((user ?? '').replace(/\+/g, ' '));
      secret = decodeURIComponent((pass ?? '').replace(/\+/g, ' '));
    }
    this.received.push({ contentType: req.headers['content-type'], form, basic: basic !== undefined });
    if (req.method !== 'POST' || req.url !== '/token') {
      json(res, 404, {});
      return;
    }
    if (form.get('grant_type') !== 'client_credentials') {
      json(res, 400, { error: 'unsupported_grant_type' });
      return;
    }
    if (id !== this.clientId || secret !== this.clientSecret) {
      json(res, 401, { error: 'invalid_client', error_description: `bad secret ${secret}` });
      return;
    }
    const now = Math.floor(this.#clock.now() / 1000);
    const header = Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'JWT' })).toString('base64url');
    const payload = Buffer.from(
      JSON.stringify({ sub: id, iat: now, exp: now + (this.expiresIn ?? 300), scope: form.get('scope') }),
    ).toString('base64url');
    const signature = sign('sha256', Buffer.from(`${header}.${payload}`), {
      key: this.#signing.privatePem,
      dsaEncoding: 'ieee-p1363',
    }).toString('base64url');
    json(res, 200, {
      access_token: `${header}.${payload}.${signature}`,
      token_type: 'Bearer',
      ...(this.expiresIn === undefined ? {} : { expires_in: this.expiresIn }),
    });
  }
}
