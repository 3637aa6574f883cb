import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { attachListRewriting, ListRewritingSocket, ORIGINAL_METHOD_HEADER } from './http-front.js';
import {
  type ApiRequest,
  type ApiResponse,
  type DynamicRole,
  type KvMountConfig,
  type TokenEntry,
  type TokenSpec,
  VaultState,
} from './vault-state.js';

/** Which listener answered: the node clients are pointed at, or the "active node" it redirects to. */
export type ListenerName = 'primary' | 'active';

/** One request as the double saw it. Holds no token and no body. */
export interface RequestLogEntry {
  /** Clock time (ms) when the request arrived. */
  readonly at: number;
  /** The operation: `LIST` for both the LIST verb and `GET ?list=true`. */
  readonly method: string;
  /** The HTTP method on the wire (`LIST` or `GET` for a list). */
  readonly wireMethod: string;
  /** Path after `/v1/`. */
  readonly path: string;
  readonly listener: ListenerName;
  readonly operationId: string | undefined;
  /** Every request header whose name ends in `id` or `-operationid` etc., lower-cased, for checks. */
  readonly headers: Readonly<Record<string, string>>;
  readonly namespace: string | undefined;
  /** The accessor of the token presented (never the token), when it is known. */
  readonly tokenAccessor: string | undefined;
  status: number;
  fault: string | undefined;
  /** The `request_id` of the answer, as Vault's audit log records it (absent for faults and bodiless answers). */
  requestId?: string | undefined;
}

/** A fault injected into matching requests. */
export interface FaultSpec {
  /** `status`: answer with `status`/`body`; `reset`: drop the TCP connection; `hang`: never answer. */
  readonly kind: 'status' | 'reset' | 'hang';
  readonly status?: number;
  readonly body?: unknown;
  /**
   * Send this text as the body instead of `body`'s JSON: a proxy's HTML page, truncated JSON.
   * Content-Type is `text/html` unless `headers` say otherwise.
   */
  readonly raw?: string;
  readonly headers?: Record<string, string>;
  /** How many matching requests it hits. @default 1 */
  readonly count?: number;
  /** Path prefix (after `/v1/`) or predicate selecting requests. @default every request */
  readonly match?: string | ((request: { method: string; path: string }) => boolean);
}

export interface RateLimitSpec {
  /** How many matching requests get 429. @default Infinity (until cleared) */
  readonly count?: number;
  /** Seconds for a `Retry-After` header; without it the 429 is bare, like a default Vault quota. */
  readonly retryAfter?: number;
  readonly match?: string | ((request: { method: string; path: string }) => boolean);
}

export interface VaultDoubleOptions {
  /** The clock in epoch ms; a test clock makes hour-long lifecycles run in seconds. @default Date.now */
  readonly now?: () => number;
  /** KV mounts. @default { secret: { version: 2 } } */
  readonly kv?: Record<string, KvMountConfig>;
  /** Mounts of the database-like dynamic engine. @default ['database'] */
  readonly dynamicMounts?: readonly string[];
  readonly rootToken?: string;
  /** Serve HTTPS with this key and certificate (and require client certificates when `requestCert`). */
  readonly tls?: { key: string; cert: string; ca?: string; requestCert?: boolean };
}

interface Listener {
  readonly name: ListenerName;
  readonly front: NetServer;
  port: number;
  readonly sockets: Set<Socket>;
}

function matches(
  match: FaultSpec['match'] | RateLimitSpec['match'],
  request: { method: string; path: string },
): boolean {
  if (match === undefined) return true;
  return typeof match === 'string' ? request.path.startsWith(match) : match(request);
}

/**
 * A local HTTP(S) server speaking Vault's API as Vault does (see `vault-state.ts` for the API
 * logic), with the controls tests need: sealing, standby (503 or a 307 redirect to a second
 * "active node" listener), 429 quotas with or without Retry-After, injected faults and
 * latency, refusing connections, a test clock, and a request log for counting.
 * Clients may send the `LIST` verb or `GET ?list=true`; both work, as with Vault.
 */
export class VaultDouble {
  readonly state: VaultState;
  readonly requests: RequestLogEntry[] = [];
  /** Real-time delay (ms) before every answer. */
  latencyMs = 0;
  /** Credential uses that failed (expired or revoked lease), recorded by {@link useCredential}. */
  readonly credentialFailures: Array<{ username: string; state: string; at: number }> = [];
  readonly #scheme: 'http' | 'https';
  readonly #tls: VaultDoubleOptions['tls'];
  readonly #listeners: Listener[] = [];
  readonly #faults: Array<FaultSpec & { left: number }> = [];
  readonly #hung = new Set<ServerResponse>();
  #rateLimit: (RateLimitSpec & { left: number }) | undefined;
  #standby: false | 'redirect' | 'unavailable' = false;
  #closed = false;

  private constructor(options: VaultDoubleOptions) {
    this.state = new VaultState({
      now: options.now ?? Date.now,
      ...(options.kv ? { kv: options.kv } : {}),
      ...(options.dynamicMounts ? { dynamicMounts: options.dynamicMounts } : {}),
      ...(options.rootToken ? { rootToken: options.rootToken } : {}),
    });
    this.#scheme = options.tls ? 'https' : 'http';
    this.#tls = options.tls;
  }

  /** Starts the double on 127.0.0.1 with two listeners (primary and active node), random ports. */
  static async start(options: VaultDoubleOptions = {}): Promise<VaultDouble> {
    const double = new VaultDouble(options);
    await double.#listen('primary', 0);
    await double.#listen('active', 0);
    return double;
  }

  /** The address clients use (`http://127.0.0.1:port`). */
  get url(): string {
    return `${this.#scheme}://127.0.0.1:${this.#listener('primary').port}`;
  }

  /** The "active node" a standby redirects to. */
  get activeUrl(): string {
    return `${this.#scheme}://127.0.0.1:${this.#listener('active').port}`;
  }

  get rootToken(): string {
    return this.state.rootToken;
  }

  get now(): number {
    return this.state.now();
  }

  // ---- controls --------------------------------------------------------------------------------

  seal(): void {
    this.state.sealed = true;
  }

  unseal(): void {
    this.state.sealed = false;
  }

  /**
   * Makes the primary listener a standby: `redirect` answers 307 to the active listener (as a
   * standby without request forwarding does), `unavailable` answers 503; `false` restores.
   */
  setStandby(mode: false | 'redirect' | 'unavailable'): void {
    this.#standby = mode;
    this.state.standby = mode === 'unavailable';
  }

  /** Answers matching requests with Vault's quota 429. */
  rateLimit(spec: RateLimitSpec = {}): void {
    this.#rateLimit = { ...spec, left: spec.count ?? Number.POSITIVE_INFINITY };
  }

  clearRateLimit(): void {
    this.#rateLimit = undefined;
  }

  /** Injects a fault into the next matching requests. */
  fail(spec: FaultSpec): void {
    this.#faults.push({ ...spec, left: spec.count ?? 1 });
  }

  clearFaults(): void {
    this.#faults.length = 0;
  }

  /** Closes the primary listener: clients get ECONNREFUSED until {@link resumeListening}. */
  async stopListening(): Promise<void> {
    const listener = this.#listener('primary');
    for (const socket of listener.sockets) socket.destroy();
    await new Promise<void>((resolve) => listener.front.close(() => resolve()));
  }

  /** Listens again on the primary's port. */
  async resumeListening(): Promise<void> {
    const listener = this.#listener('primary');
    await new Promise<void>((resolve, reject) => {
      listener.front.once('error', reject);
      listener.front.listen(listener.port, '127.0.0.1', () => {
        listener.front.off('error', reject);
        resolve();
      });
    });
  }

  /** Requests logged so far that pass `filter`. */
  count(filter: (entry: RequestLogEntry) => boolean = () => true): number {
    return this.requests.filter(filter).length;
  }

  clearLog(): void {
    this.requests.length = 0;
  }

  // ---- setup helpers ---------------------------------------------------------------------------

  createToken(spec: TokenSpec = {}): TokenEntry {
    return this.state.createToken(spec);
  }

  revokeToken(id: string): void {
    this.state.revokeToken(id);
  }

  /** Adds an AppRole role; returns its role id and one secret id. */
  addAppRole(name: string, token: TokenSpec = {}, mount = 'approle'): { roleId: string; secretId: string } {
    const roleId = `role-${randomBytes(8).toString('hex')}`;
    const secretId = `sid-${randomBytes(12).toString('hex')}`;
    this.state.approles.set(`${mount}/${name}`, {
      mount,
      name,
      roleId,
      secretIds: new Set([secretId]),
      token,
    });
    return { roleId, secretId };
  }

  /** Adds a Kubernetes auth role at `mount`, accepting the given service-account JWTs. */
  addKubernetesRole(
    name: string,
    jwts: readonly string[],
    token: TokenSpec = {},
    mount = 'kubernetes',
  ): void {
    this.state.kubernetesRoles.set(`${mount}/${name}`, { mount, name, jwts: new Set(jwts), token });
  }

  /** Adds a role of the dynamic engine: `GET <mount>/creds/<role>` issues a credential with a lease. */
  addDatabaseRole(role: string, spec: DynamicRole, mount = 'database'): void {
    this.state.addDynamicRole(mount, role, spec);
  }

  /** Writes a secret out of band (as another client would), through the API with the root token. */
  kvPut(
    mount: string,
    path: string,
    data: Record<string, unknown>,
    options: { cas?: number } = {},
  ): ApiResponse {
    const version = this.state.kvMounts.get(mount)?.version;
    return this.call(
      'POST',
      version === 1 ? `${mount}/${path}` : `${mount}/data/${path}`,
      version === 1
        ? data
        : { data, ...(options.cas === undefined ? {} : { options: { cas: options.cas } }) },
    );
  }

  /** Answers one API call in process, with the root token unless another is given. */
  call(method: string, path: string, body?: unknown, token = this.state.rootToken): ApiResponse {
    return this.state.handle({
      method,
      path,
      query: new URLSearchParams(),
      headers: { 'x-vault-token': token, 'content-type': 'application/json' },
      body,
    });
  }

  /** Uses a dynamic credential as a database would: records a failure unless its lease is live. */
  useCredential(username: string, password: string): boolean {
    const state = this.state.credentialState(username, password);
    if (state !== 'valid') this.credentialFailures.push({ username, state, at: this.state.now() });
    return state === 'valid';
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const res of this.#hung) res.destroy();
    this.#hung.clear();
    await Promise.all(
      this.#listeners.map(
        (listener) =>
          new Promise<void>((resolve) => {
            for (const socket of listener.sockets) socket.destroy();
            if (!listener.front.listening) resolve();
            else listener.front.close(() => resolve());
          }),
      ),
    );
  }

  // ---- transport -------------------------------------------------------------------------------

  #listener(name: ListenerName): Listener {
    return this.#listeners.find((l) => l.name === name) as Listener;
  }

  async #listen(name: ListenerName, port: number): Promise<void> {
    const http = createHttpServer((req, res) => void this.#serve(name, req, res));
    http.keepAliveTimeout = 5_000;
    const tls = this.#tls;
    const front = tls
      ? createTlsServer({
          key: tls.key,
          cert: tls.cert,
          ...(tls.ca ? { ca: tls.ca } : {}),
          requestCert: tls.requestCert ?? false,
          rejectUnauthorized: tls.requestCert ?? false,
        })
      : createNetServer();
    const listener: Listener = { name, front, port, sockets: new Set() };
    attachListRewriting(front, http, listener.sockets);
    await new Promise<void>((resolve) => front.listen(port, '127.0.0.1', () => resolve()));
    listener.port = (front.address() as { port: number }).port;
    this.#listeners.push(listener);
  }

  async #serve(name: ListenerName, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://double');
    const original = req.headers[ORIGINAL_METHOD_HEADER];
    const wireMethod = typeof original === 'string' ? original : (req.method ?? 'GET');
    const listParam = url.searchParams.get('list');
    const method = wireMethod === 'GET' && (listParam === 'true' || listParam === '1') ? 'LIST' : wireMethod;
    const path = url.pathname.startsWith('/v1/') ? decodeURIComponent(url.pathname.slice(4)) : url.pathname;
    const headerValue = (h: string) => {
      const v = req.headers[h];
      return Array.isArray(v) ? v[0] : v;
    };
    const token = headerValue('x-vault-token');
    const ids: Record<string, string> = {};
    for (const [header, value] of Object.entries(req.headers)) {
      if (
        typeof value === 'string' &&
        /(^|-)(operationid|request-id|correlation-id)$|id$/i.test(header) &&
        header !== 'x-vault-token'
      ) {
        ids[header] = value;
      }
    }
    const entry: RequestLogEntry = {
      at: this.state.now(),
      method,
      wireMethod,
      path,
      listener: name,
      operationId: headerValue('x-operationid'),
      headers: ids,
      namespace: headerValue('x-vault-namespace'),
      tokenAccessor: token === undefined ? undefined : this.state.tokens.get(token)?.accessor,
      status: 0,
      fault: undefined,
    };
    this.requests.push(entry);
    const request = { method, path };

    const fault = this.#faults.find((f) => f.left > 0 && matches(f.match, request));
    if (fault !== undefined) {
      fault.left--;
      entry.fault = fault.kind;
      if (fault.kind === 'reset') {
        const socket = req.socket as unknown as ListRewritingSocket | Socket;
        const raw = socket instanceof ListRewritingSocket ? socket.socket : socket;
        raw.resetAndDestroy();
        return;
      }
      if (fault.kind === 'hang') {
        this.#hung.add(res);
        res.on('close', () => this.#hung.delete(res));
        return;
      }
      entry.status = fault.status ?? 500;
      if (fault.raw !== undefined) {
        res.writeHead(entry.status, {
          'Content-Type': 'text/html',
          ...fault.headers,
          'Content-Length': String(Buffer.byteLength(fault.raw)),
        });
        res.end(fault.raw);
        return;
      }
      return this.#send(res, {
        status: entry.status,
        body: fault.body ?? { errors: ['injected fault'] },
        ...(fault.headers ? { headers: fault.headers } : {}),
      });
    }
    if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));

    const limit = this.#rateLimit;
    if (limit !== undefined && limit.left > 0 && path !== 'sys/health' && matches(limit.match, request)) {
      limit.left--;
      entry.status = 429;
      entry.fault = 'rate-limit';
      return this.#send(res, {
        status: 429,
        body: { errors: [`request path "${path}": rate limit quota exceeded`] },
        ...(limit.retryAfter === undefined ? {} : { headers: { 'Retry-After': String(limit.retryAfter) } }),
      });
    }
    if (name === 'primary' && this.#standby === 'redirect' && path !== 'sys/health') {
      entry.status = 307;
      return this.#send(res, { status: 307, headers: { Location: `${this.activeUrl}${req.url ?? '/'}` } });
    }

    let body: unknown;
    const text = Buffer.concat(chunks).toString('utf8');
    if (text.trim() !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        entry.status = 400;
        return this.#send(res, { status: 400, body: { errors: ['failed to parse JSON input'] } });
      }
    }
    const apiRequest: ApiRequest = { method, path, query: url.searchParams, headers: req.headers, body };
    const response = this.state.handle(apiRequest);
    entry.status = response.status;
    const answered = (response.body as { request_id?: unknown } | undefined)?.request_id;
    if (typeof answered === 'string') entry.requestId = answered;
    this.#send(res, response);
  }

  #send(res: ServerResponse, response: ApiResponse): void {
    if (res.destroyed) return;
    const headers: Record<string, string> = { 'Cache-Control': 'no-store', ...response.headers };
    if (response.body === undefined || response.status === 204) {
      res.writeHead(response.status, headers);
      res.end();
      return;
    }
    const payload = JSON.stringify(response.body);
    res.writeHead(response.status, {
      ...headers,
      'Content-Type': 'application/json',
      'Content-Length': String(Buffer.byteLength(payload)),
    });
    res.end(payload);
  }
}
