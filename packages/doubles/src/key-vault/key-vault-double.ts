/**
 * A local Azure Key Vault (secrets data plane) that answers as the service does, for tests that
 * drive the real `SecretClient` over HTTPS. What it follows (Azure/azure-rest-api-specs,
 * keyvault data-plane `secrets.json` and its examples; the SDK's challenge policy):
 *
 * - HTTPS only, on 127.0.0.1, with a self-signed certificate generated when the double starts.
 * - Challenge authentication: a request without `Authorization` gets 401 with
 *   `WWW-Authenticate: Bearer authorization="…/{tenant}", resource="https://vault.azure.net"`; a
 *   rejected bearer token gets the same challenge. Tokens are issued by the double and carry
 *   permissions (`get`, `list`, `set`, `delete`, `recover`, `purge`), so 403s name what is missing.
 * - Secrets: versions with 32-hex ids built from the request's scheme and Host, timestamps in unix
 *   seconds, `exp`/`nbf` informational, disabled secrets answering 403 `SecretDisabled`, names
 *   case-insensitive (`^[0-9a-zA-Z-]{1,127}$`), certificate-backed (`managed`) secrets.
 * - Lists page with `nextLink` (at most 25 items a page); `GET /secrets` items have no version.
 * - Soft delete, `deletedsecrets`, recover, purge, and the 409 states (`ObjectIsBeingDeleted`,
 *   `ObjectIsDeletedButRecoverable`).
 * - Injected faults: any status (429 with or without `Retry-After`, 503, …), connection resets,
 *   latency, any body as it is (an HTML page, truncated JSON, hostile error codes), or the
 *   double's own answer rewritten (no `value`, a foreign `nextLink`, broken ids, wrong types);
 *   an optional per-window request limit as Key Vault's throttling.
 * - A request log, so tests count what crossed the wire (value reads, lists, challenges).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { generate } from 'selfsigned';

/** Permissions of a token, named as Key Vault access policies name secret permissions. */
export type KeyVaultPermission = 'get' | 'list' | 'set' | 'delete' | 'recover' | 'purge';

export const ALL_PERMISSIONS: readonly KeyVaultPermission[] = [
  'get',
  'list',
  'set',
  'delete',
  'recover',
  'purge',
];

/** The operation a request asked for, as the double understood it. */
export type KeyVaultOperation =
  | 'getSecret'
  | 'setSecret'
  | 'updateSecret'
  | 'deleteSecret'
  | 'listSecrets'
  | 'listVersions'
  | 'listDeleted'
  | 'getDeleted'
  | 'recoverDeleted'
  | 'purgeDeleted'
  | 'unsupported';

/** What a request looked like; fault matchers see it before the double answers. */
export interface RequestInfo {
  readonly method: string;
  readonly path: string;
  readonly operation: KeyVaultOperation;
  /** The secret name as sent (case kept). */
  readonly name: string | undefined;
  readonly version: string | undefined;
  /** Whether an `Authorization` header came with it (the SDK's first request has none). */
  readonly authorized: boolean;
}

/** One request as the double saw it. Holds no token and no value. */
export interface RequestLogEntry extends RequestInfo {
  readonly seq: number;
  readonly status: number;
  readonly apiVersion: string | undefined;
  /** Bytes of request body received. */
  readonly bodyBytes: number;
  /** `challenge` for the 401 of a token-less request, `fault` when an injected fault answered. */
  readonly outcome: 'ok' | 'error' | 'challenge' | 'fault' | 'reset';
  readonly at: number;
  /** The `x-ms-request-id` of the answer (as Key Vault's diagnostic logs hold it); absent when the double did not answer as Key Vault (a reset, a foreign body). */
  readonly requestId: string | undefined;
}

/** A fault to inject. Each applies to the requests `match` accepts, `times` times (default: all). */
export type Fault =
  | {
      readonly type: 'status';
      readonly status: number;
      /** Error code in the body (default by status: Throttled, ServiceUnavailable, …). */
      readonly code?: string;
      /** `Retry-After` header value (seconds or an HTTP date). Omitted: no header. */
      readonly retryAfter?: number | string;
      /** `retry-after-ms` header value. */
      readonly retryAfterMs?: number;
      readonly times?: number;
      readonly match?: (request: RequestInfo) => boolean;
    }
  | { readonly type: 'reset'; readonly times?: number; readonly match?: (request: RequestInfo) => boolean }
  | {
      readonly type: 'latency';
      readonly ms: number;
      readonly times?: number;
      readonly match?: (request: RequestInfo) => boolean;
    }
  | {
      /**
       * Answers this text as it is, as a proxy or a broken server would: an HTML page with 200,
       * truncated JSON, an error body whose codes and message the server chose, any headers.
       */
      readonly type: 'body';
      /** @default 200 */
      readonly status?: number;
      readonly body: string;
      /** @default 'application/json; charset=utf-8' */
      readonly contentType?: string;
      readonly headers?: Readonly<Record<string, string>>;
      readonly times?: number;
      readonly match?: (request: RequestInfo) => boolean;
    }
  | {
      /**
       * The double's own successful answer, rewritten before it is sent: drop `value`, point
       * `nextLink` at another host, break ids, change the types of properties. A string result is
       * sent as the body text as it is (truncated JSON); anything else as JSON.
       */
      readonly type: 'rewrite';
      readonly rewrite: (body: Record<string, unknown>, request: RequestInfo) => unknown;
      readonly times?: number;
      readonly match?: (request: RequestInfo) => boolean;
    };

/** A handle on an injected fault. */
export interface FaultHandle {
  /** How many requests it has hit. */
  readonly hits: number;
  remove(): void;
}

export interface KeyVaultDoubleOptions {
  /** Tenant named in the challenge. @default a random uuid */
  readonly tenantId?: string;
  /** Resource named in the challenge. @default 'https://vault.azure.net' */
  readonly resource?: string;
  /** Largest page a list answers (Key Vault's own limit is 25). @default 25 */
  readonly maxPageSize?: number;
  /** Soft delete on (every vault created since 2020 has it). @default true */
  readonly softDelete?: boolean;
  /** Retention of deleted secrets, in days. @default 90 */
  readonly recoverableDays?: number;
  /** How long a deletion stays "being deleted" (409 `ObjectIsBeingDeleted`). @default 0 */
  readonly deleteDelayMs?: number;
  /** How long a purge keeps the name blocked. @default 0 */
  readonly purgeDelayMs?: number;
  /** Access-policy (`AccessDenied`) or RBAC (`ForbiddenByRbac`) wording of 403s. @default 'access-policy' */
  readonly authorization?: 'access-policy' | 'rbac';
  /** Throttling as Key Vault does it: at most `limit` requests per `windowMs`, then 429. */
  readonly rateLimit?: {
    readonly limit: number;
    readonly windowMs: number;
    readonly retryAfterSeconds?: number;
  };
  /** Clock in epoch milliseconds. @default Date.now */
  readonly now?: () => number;
  /** Name of the vault in messages. @default 'double' */
  readonly vaultName?: string;
}

/** Options of an out-of-band write (see {@link KeyVaultDouble.setSecret}). */
export interface DoubleSetOptions {
  readonly contentType?: string;
  readonly tags?: Record<string, string>;
  readonly enabled?: boolean;
  readonly expiresOn?: Date;
  readonly notBefore?: Date;
  /** Marks a certificate-backed secret. */
  readonly managed?: boolean;
}

/** What the double holds about one version, without its value. */
export interface DoubleVersionInfo {
  readonly name: string;
  readonly version: string;
  readonly enabled: boolean;
  readonly created: number;
  readonly updated: number;
}

interface Version {
  readonly id: string;
  readonly value: string;
  contentType: string | undefined;
  tags: Record<string, string> | undefined;
  enabled: boolean;
  nbf: number | undefined;
  exp: number | undefined;
  readonly created: number;
  updated: number;
  readonly managed: boolean;
  /** Creation order, which decides "latest" even within one second. */
  readonly seq: number;
}

interface Deletion {
  readonly deletedDate: number;
  readonly scheduledPurgeDate: number;
  /** Until then the name is "being deleted". */
  readonly pendingUntil: number;
}

interface SecretRecord {
  /** The name as first created; Key Vault keeps that spelling. */
  readonly name: string;
  readonly versions: Version[];
  deleted: Deletion | undefined;
}

interface Token {
  readonly permissions: ReadonlySet<KeyVaultPermission>;
  readonly expiresAt: number | undefined;
}

interface ActiveFault {
  readonly fault: Fault;
  remaining: number;
  hits: number;
}

const NAME_PATTERN = /^[0-9a-zA-Z-]{1,127}$/;
const MAX_VALUE_BYTES = 25 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly innerCode?: string,
  ) {
    super(message);
  }
}

/**
 * The double. `await KeyVaultDouble.start()`, then point a `SecretClient` at {@link url} with
 * `tlsOptions: { ca: double.ca }`, `disableChallengeResourceVerification: true` (the challenge
 * names `vault.azure.net`, not 127.0.0.1) and a `FakeCredential` over this double.
 */
export class KeyVaultDouble {
  readonly #options: Required<Omit<KeyVaultDoubleOptions, 'rateLimit'>> & {
    readonly rateLimit: KeyVaultDoubleOptions['rateLimit'] | undefined;
  };
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #secrets = new Map<string, SecretRecord>();
  readonly #tokens = new Map<string, Token>();
  readonly #faults = new Set<ActiveFault>();
  readonly #log: RequestLogEntry[] = [];
  /** Purged names stay blocked until then. */
  readonly #purging = new Map<string, number>();
  #seq = 0;
  #versionSeq = 0;
  #latencyMs = 0;
  #window = { start: 0, count: 0 };
  #url = '';
  readonly ca: string;

  private constructor(options: KeyVaultDoubleOptions, pems: { key: string; cert: string }) {
    this.#options = {
      tenantId: options.tenantId ?? randomUUID(),
      resource: options.resource ?? 'https://vault.azure.net',
      maxPageSize: Math.min(25, options.maxPageSize ?? 25),
      softDelete: options.softDelete ?? true,
      recoverableDays: options.recoverableDays ?? 90,
      deleteDelayMs: options.deleteDelayMs ?? 0,
      purgeDelayMs: options.purgeDelayMs ?? 0,
      authorization: options.authorization ?? 'access-policy',
      rateLimit: options.rateLimit,
      now: options.now ?? Date.now,
      vaultName: options.vaultName ?? 'double',
    };
    this.ca = pems.cert;
    this.#server = createServer(
      { key: pems.key, cert: pems.cert },
      (req, res) => void this.#handle(req, res),
    );
    this.#server.on('secureConnection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  /** Generates a certificate for 127.0.0.1 and starts listening on a free port. */
  static async start(options: KeyVaultDoubleOptions = {}): Promise<KeyVaultDouble> {
    const pems = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
      keyType: 'ec',
      algorithm: 'sha256',
      extensions: [
        { name: 'basicConstraints', cA: true },
        { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] },
      ],
    });
    const double = new KeyVaultDouble(options, { key: pems.private, cert: pems.cert });
    await new Promise<void>((resolve, reject) => {
      double.#server.once('error', reject);
      double.#server.listen(0, '127.0.0.1', () => resolve());
    });
    double.#url = `https://127.0.0.1:${(double.#server.address() as AddressInfo).port}`;
    return double;
  }

  /** The vault URL, e.g. `https://127.0.0.1:41234`. */
  get url(): string {
    return this.#url;
  }

  get tenantId(): string {
    return this.#options.tenantId;
  }

  /** The scope a client asks its credential for after the challenge. */
  get scope(): string {
    return `${this.#options.resource}/.default`;
  }

  /** Stops listening and drops every connection. */
  async stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  // ---- tokens ----------------------------------------------------------------------------------

  /** Issues a bearer token the double accepts, with these permissions, until `expiresAt`. */
  issueToken(permissions: readonly KeyVaultPermission[] = ALL_PERMISSIONS, expiresAt?: number): string {
    const token = `kvd.${randomBytes(24).toString('base64url')}`;
    this.#tokens.set(token, { permissions: new Set(permissions), expiresAt });
    return token;
  }

  /** Makes the double reject `token` (401) from now on. */
  revokeToken(token: string): void {
    this.#tokens.delete(token);
  }

  // ---- out-of-band state -------------------------------------------------------------------------

  /** Creates a new version, as another writer would; returns its id. Not logged. */
  setSecret(name: string, value: string, options: DoubleSetOptions = {}): string {
    if (!NAME_PATTERN.test(name)) throw new Error(`invalid Key Vault name: ${name}`);
    const record = this.#record(name, true);
    if (record?.deleted) throw new Error(`secret ${name} is deleted`);
    return this.#addVersion(name, value, {
      contentType: options.contentType,
      tags: options.tags,
      enabled: options.enabled ?? true,
      nbf: toSeconds(options.notBefore),
      exp: toSeconds(options.expiresOn),
      managed: options.managed ?? false,
    }).id;
  }

  /** Changes properties of a version (default: the latest), as a PATCH would. */
  updateSecret(
    name: string,
    patch: {
      enabled?: boolean;
      expiresOn?: Date | null;
      notBefore?: Date | null;
      tags?: Record<string, string>;
    },
    version?: string,
  ): void {
    const target = this.#findVersion(name, version);
    if (patch.enabled !== undefined) target.enabled = patch.enabled;
    if (patch.expiresOn !== undefined)
      target.exp = patch.expiresOn === null ? undefined : toSeconds(patch.expiresOn);
    if (patch.notBefore !== undefined)
      target.nbf = patch.notBefore === null ? undefined : toSeconds(patch.notBefore);
    if (patch.tags !== undefined) target.tags = patch.tags;
    target.updated = this.#nowSeconds();
  }

  /** Soft-deletes (or removes, without soft delete) a secret, as another client would. */
  deleteSecret(name: string): void {
    const record = this.#live(name);
    if (record === undefined) throw new Error(`no secret ${name}`);
    this.#delete(record);
  }

  /** Purges a deleted secret. */
  purgeSecret(name: string): void {
    const record = this.#record(name, true);
    if (record?.deleted === undefined) throw new Error(`no deleted secret ${name}`);
    this.#purge(record);
  }

  /** The latest version's properties (no value), or `undefined`. */
  latest(name: string): DoubleVersionInfo | undefined {
    const record = this.#live(name);
    const latest = record === undefined ? undefined : latestOf(record);
    return latest === undefined || record === undefined
      ? undefined
      : {
          name: record.name,
          version: latest.id,
          enabled: latest.enabled,
          created: latest.created,
          updated: latest.updated,
        };
  }

  /** The stored value of the latest (or a given) version, for assertions. */
  valueOf(name: string, version?: string): string | undefined {
    try {
      return this.#findVersion(name, version).value;
    } catch {
      return undefined;
    }
  }

  /** Names of live (not deleted) secrets, as stored. */
  names(): string[] {
    return [...this.#secrets.values()].filter((r) => r.deleted === undefined).map((r) => r.name);
  }

  /** Whether a name is in the deleted state. */
  isDeleted(name: string): boolean {
    return this.#record(name, true)?.deleted !== undefined;
  }

  // ---- faults and log ------------------------------------------------------------------------------

  /** Adds a fault; it applies until removed or used up. */
  inject(fault: Fault): FaultHandle {
    const active: ActiveFault = { fault, remaining: fault.times ?? Number.POSITIVE_INFINITY, hits: 0 };
    this.#faults.add(active);
    return {
      get hits() {
        return active.hits;
      },
      remove: () => {
        this.#faults.delete(active);
      },
    };
  }

  clearFaults(): void {
    this.#faults.clear();
  }

  /** Delay added to every answer. */
  set latencyMs(ms: number) {
    this.#latencyMs = ms;
  }

  /** Every request so far. */
  get log(): readonly RequestLogEntry[] {
    return this.#log;
  }

  clearLog(): void {
    this.#log.length = 0;
  }

  /** How many logged requests match. */
  count(
    filter: Partial<Pick<RequestLogEntry, 'operation' | 'status' | 'outcome' | 'method'>> & {
      name?: string;
    } = {},
  ): number {
    return this.#log.filter(
      (entry) =>
        (filter.operation === undefined || entry.operation === filter.operation) &&
        (filter.status === undefined || entry.status === filter.status) &&
        (filter.outcome === undefined || entry.outcome === filter.outcome) &&
        (filter.method === undefined || entry.method === filter.method) &&
        (filter.name === undefined || entry.name?.toLowerCase() === filter.name.toLowerCase()),
    ).length;
  }

  // ---- the server ----------------------------------------------------------------------------------

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const host = req.headers.host ?? '127.0.0.1';
    const url = new URL(req.url ?? '/', `https://${host}`);
    const info = classify(req.method ?? 'GET', url.pathname, req.headers.authorization !== undefined);
    const base = `https://${host}`;
    // Key Vault names every answer; its diagnostic logs carry the same id.
    const requestId = randomUUID();
    res.setHeader('x-ms-request-id', requestId);
    const record = (status: number, outcome: RequestLogEntry['outcome']) => {
      const answered = outcome !== 'reset' && res.hasHeader('x-ms-request-id');
      this.#log.push({
        ...info,
        seq: ++this.#seq,
        status,
        apiVersion: url.searchParams.get('api-version') ?? undefined,
        bodyBytes: body.length,
        outcome,
        at: this.#options.now(),
        requestId: answered ? requestId : undefined,
      });
    };

    let latency = this.#latencyMs;
    let answered: { status: number; fault: Fault } | undefined;
    let rewrite: Extract<Fault, { type: 'rewrite' }> | undefined;
    for (const active of [...this.#faults]) {
      if (active.remaining <= 0 || (active.fault.match !== undefined && !active.fault.match(info))) continue;
      if (active.fault.type === 'latency') {
        latency += active.fault.ms;
      } else if (active.fault.type === 'rewrite') {
        // Only a request the double answers itself has a body to rewrite.
        if (answered !== undefined || rewrite !== undefined || !info.authorized) continue;
        rewrite = active.fault;
      } else if (answered === undefined) {
        answered = { status: active.fault.type === 'status' ? active.fault.status : 0, fault: active.fault };
      } else {
        continue;
      }
      active.remaining--;
      active.hits++;
      if (active.remaining <= 0) this.#faults.delete(active);
    }
    if (latency > 0) await new Promise((resolve) => setTimeout(resolve, latency));

    if (answered !== undefined) {
      const fault = answered.fault;
      if (fault.type === 'reset') {
        record(0, 'reset');
        req.socket.destroy();
        return;
      }
      if (fault.type === 'status') {
        const headers: Record<string, string> = {};
        if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter);
        if (fault.retryAfterMs !== undefined) headers['retry-after-ms'] = String(fault.retryAfterMs);
        record(fault.status, 'fault');
        sendError(
          res,
          new HttpError(fault.status, fault.code ?? defaultCode(fault.status), defaultMessage(fault.status)),
          headers,
        );
        return;
      }
      if (fault.type === 'body') {
        const status = fault.status ?? 200;
        // A foreign answer (a proxy's page) carries no Key Vault request id unless the fault gives one.
        res.removeHeader('x-ms-request-id');
        record(status, 'fault');
        res.writeHead(status, {
          'content-type': fault.contentType ?? 'application/json; charset=utf-8',
          'content-length': Buffer.byteLength(fault.body),
          ...fault.headers,
        });
        res.end(fault.body);
        return;
      }
    }

    try {
      const apiVersion = url.searchParams.get('api-version');
      if (apiVersion === null) {
        throw new HttpError(400, 'BadParameter', 'The api-version query parameter is missing or empty.');
      }
      const auth = req.headers.authorization;
      if (auth === undefined) {
        record(401, 'challenge');
        sendError(
          res,
          new HttpError(401, 'Unauthorized', 'AKV10000: Request is missing a Bearer or PoP token.'),
          {
            'www-authenticate': this.#challenge(),
          },
        );
        return;
      }
      const token = /^Bearer (.+)$/.exec(auth)?.[1];
      const grant = token === undefined ? undefined : this.#tokens.get(token);
      if (grant === undefined || (grant.expiresAt !== undefined && grant.expiresAt <= this.#options.now())) {
        throw new HttpError(401, 'Unauthorized', 'AKV10032: Invalid issuer or token expired.');
      }
      this.#throttle();
      const answer = this.#route(info, url, body, base, grant);
      if (rewrite !== undefined && typeof answer.body === 'object' && answer.body !== null) {
        const rewritten = rewrite.rewrite(structuredClone(answer.body) as Record<string, unknown>, info);
        record(answer.status, 'fault');
        sendText(res, answer.status, typeof rewritten === 'string' ? rewritten : JSON.stringify(rewritten));
        return;
      }
      record(answer.status, 'ok');
      send(res, answer.status, answer.body);
    } catch (error) {
      const failure =
        error instanceof HttpError ? error : new HttpError(500, 'InternalServerError', 'The double failed.');
      const headers: Record<string, string> = {};
      if (failure.status === 401) headers['www-authenticate'] = this.#challenge();
      if (failure.status === 429 && this.#options.rateLimit?.retryAfterSeconds !== undefined) {
        headers['retry-after'] = String(this.#options.rateLimit.retryAfterSeconds);
      }
      record(failure.status, 'error');
      sendError(res, failure, headers);
    }
  }

  #challenge(): string {
    return `Bearer authorization="https://login.microsoftonline.com/${this.#options.tenantId}", resource="${this.#options.resource}"`;
  }

  #throttle(): void {
    const limit = this.#options.rateLimit;
    if (limit === undefined) return;
    const now = this.#options.now();
    if (now - this.#window.start >= limit.windowMs) this.#window = { start: now, count: 0 };
    this.#window.count++;
    if (this.#window.count > limit.limit) {
      throw new HttpError(429, 'Throttled', defaultMessage(429));
    }
  }

  #require(grant: Token, permission: KeyVaultPermission): void {
    if (grant.permissions.has(permission)) return;
    if (this.#options.authorization === 'rbac') {
      const actions: Record<KeyVaultPermission, string> = {
        get: 'Microsoft.KeyVault/vaults/secrets/getSecret/action',
        list: 'Microsoft.KeyVault/vaults/secrets/readMetadata/action',
        set: 'Microsoft.KeyVault/vaults/secrets/setSecret/action',
        delete: 'Microsoft.KeyVault/vaults/secrets/delete',
        recover: 'Microsoft.KeyVault/vaults/secrets/recover/action',
        purge: 'Microsoft.KeyVault/vaults/deletedSecrets/delete',
      };
      throw new HttpError(
        403,
        'Forbidden',
        `Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid=00000000-0000-0000-0000-000000000000\r\nAction: '${actions[permission]}'\r\nVault: ${this.#options.vaultName};location=westeurope\r\n`,
        'ForbiddenByRbac',
      );
    }
    throw new HttpError(
      403,
      'Forbidden',
      `The user, group or application 'appid=00000000-0000-0000-0000-000000000000' does not have secrets ${permission} permission on key vault '${this.#options.vaultName};location=westeurope'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287`,
      'AccessDenied',
    );
  }

  #route(
    info: RequestInfo,
    url: URL,
    body: Buffer,
    base: string,
    grant: Token,
  ): { status: number; body?: unknown } {
    const name = info.name;
    switch (info.operation) {
      case 'getSecret': {
        this.#require(grant, 'get');
        const version = this.#findVersionHttp(name as string, info.version);
        if (!version.enabled) {
          throw new HttpError(
            403,
            'Forbidden',
            'Operation get is not allowed on a disabled secret.',
            'SecretDisabled',
          );
        }
        return { status: 200, body: this.#bundle(base, name as string, version, true) };
      }
      case 'setSecret': {
        this.#require(grant, 'set');
        checkName(name as string);
        const params = parseJson(body) as {
          value?: unknown;
          contentType?: string;
          tags?: Record<string, string>;
          attributes?: { enabled?: boolean; nbf?: number; exp?: number };
        };
        if (typeof params.value !== 'string') {
          throw new HttpError(400, 'BadParameter', 'Property value is required and must be a string.');
        }
        if (Buffer.byteLength(params.value) > MAX_VALUE_BYTES) {
          throw new HttpError(400, 'BadParameter', 'Secret value is too large. The maximum size is 25 KB.');
        }
        const existing = this.#record(name as string, true);
        const purgeBlock = this.#purging.get((name as string).toLowerCase());
        if (purgeBlock !== undefined && purgeBlock > this.#options.now()) {
          throw new HttpError(
            409,
            'Conflict',
            `Secret ${name} is currently being deleted.`,
            'ObjectIsBeingDeleted',
          );
        }
        if (existing?.deleted !== undefined) {
          if (existing.deleted.pendingUntil > this.#options.now()) {
            throw new HttpError(
              409,
              'Conflict',
              `Secret ${name} is currently being deleted.`,
              'ObjectIsBeingDeleted',
            );
          }
          throw new HttpError(
            409,
            'Conflict',
            `Secret ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.`,
            'ObjectIsDeletedButRecoverable',
          );
        }
        const version = this.#addVersion(name as string, params.value, {
          contentType: params.contentType,
          tags: params.tags,
          enabled: params.attributes?.enabled ?? true,
          nbf: params.attributes?.nbf,
          exp: params.attributes?.exp,
          managed: false,
        });
        return {
          status: 200,
          body: this.#bundle(base, this.#record(name as string)?.name ?? (name as string), version, true),
        };
      }
      case 'updateSecret': {
        this.#require(grant, 'set');
        const version = this.#findVersionHttp(name as string, info.version);
        const params = parseJson(body) as {
          contentType?: string;
          tags?: Record<string, string>;
          attributes?: { enabled?: boolean; nbf?: number | null; exp?: number | null };
        };
        if (params.contentType !== undefined) version.contentType = params.contentType;
        if (params.tags !== undefined) version.tags = params.tags;
        if (params.attributes?.enabled !== undefined) version.enabled = params.attributes.enabled;
        if (params.attributes?.nbf !== undefined) version.nbf = params.attributes.nbf ?? undefined;
        if (params.attributes?.exp !== undefined) version.exp = params.attributes.exp ?? undefined;
        version.updated = this.#nowSeconds();
        return { status: 200, body: this.#bundle(base, name as string, version, false) };
      }
      case 'deleteSecret': {
        this.#require(grant, 'delete');
        const record = this.#live(name as string);
        const latest = record === undefined ? undefined : latestOf(record);
        if (record === undefined || latest === undefined) throw notFound(name as string);
        this.#delete(record);
        return { status: 200, body: this.#deletedBundle(base, record, latest) };
      }
      case 'listSecrets': {
        this.#require(grant, 'list');
        const items = [...this.#secrets.values()]
          .filter((r) => r.deleted === undefined && r.versions.length > 0)
          .sort((a, b) => a.name.toLowerCase().localeCompare(b.name.toLowerCase()))
          .map((r) => this.#item(`${base}/secrets/${r.name}`, latestOf(r) as Version));
        return { status: 200, body: this.#page(items, url, base, '/secrets') };
      }
      case 'listVersions': {
        this.#require(grant, 'list');
        const record = this.#live(name as string);
        // Key Vault answers an unknown name with an empty list, not 404.
        const items = (record?.versions ?? []).map((v) =>
          this.#item(`${base}/secrets/${record?.name}/${v.id}`, v),
        );
        return { status: 200, body: this.#page(items, url, base, `/secrets/${name}/versions`) };
      }
      case 'listDeleted': {
        this.#require(grant, 'list');
        const items = [...this.#secrets.values()]
          .filter((r) => r.deleted !== undefined && r.deleted.pendingUntil <= this.#options.now())
          .map((r) => {
            const latest = latestOf(r) as Version;
            const deleted = r.deleted as Deletion;
            return {
              ...this.#item(`${base}/secrets/${r.name}`, latest),
              recoveryId: `${base}/deletedsecrets/${r.name}`,
              deletedDate: deleted.deletedDate,
              scheduledPurgeDate: deleted.scheduledPurgeDate,
            };
          });
        return { status: 200, body: this.#page(items, url, base, '/deletedsecrets') };
      }
      case 'getDeleted': {
        this.#require(grant, 'get');
        const record = this.#deletedVisible(name as string);
        return { status: 200, body: this.#deletedBundle(base, record, latestOf(record) as Version) };
      }
      case 'recoverDeleted': {
        this.#require(grant, 'recover');
        const record = this.#deletedVisible(name as string);
        record.deleted = undefined;
        return { status: 200, body: this.#bundle(base, record.name, latestOf(record) as Version, false) };
      }
      case 'purgeDeleted': {
        this.#require(grant, 'purge');
        const record = this.#deletedVisible(name as string);
        this.#purge(record);
        return { status: 204 };
      }
      default:
        throw new HttpError(400, 'BadParameter', `The double does not serve ${info.method} ${info.path}.`);
    }
  }

  #page(
    items: unknown[],
    url: URL,
    base: string,
    path: string,
  ): { value: unknown[]; nextLink: string | null } {
    const requested = url.searchParams.get('maxresults');
    const max = requested === null ? this.#options.maxPageSize : Number(requested);
    if (!Number.isInteger(max) || max < 1 || max > 25) {
      throw new HttpError(400, 'BadParameter', 'Invalid maxresults: it must be between 1 and 25.');
    }
    const size = Math.min(max, this.#options.maxPageSize);
    const token = url.searchParams.get('$skiptoken');
    const offset = token === null ? 0 : Number(Buffer.from(token, 'base64url').toString('utf8'));
    if (!Number.isInteger(offset) || offset < 0)
      throw new HttpError(400, 'BadParameter', 'Invalid $skiptoken.');
    const value = items.slice(offset, offset + size);
    const next = offset + size < items.length ? offset + size : undefined;
    const apiVersion = url.searchParams.get('api-version') ?? '';
    const nextLink =
      next === undefined
        ? null
        : `${base}${path}?api-version=${encodeURIComponent(apiVersion)}&$skiptoken=${Buffer.from(String(next)).toString('base64url')}&maxresults=${size}`;
    return { value, nextLink };
  }

  #attributes(version: Version): Record<string, unknown> {
    const attributes: Record<string, unknown> = {
      enabled: version.enabled,
      created: version.created,
      updated: version.updated,
      recoveryLevel: this.#options.softDelete ? 'Recoverable+Purgeable' : 'Purgeable',
    };
    if (this.#options.softDelete) attributes.recoverableDays = this.#options.recoverableDays;
    if (version.nbf !== undefined) attributes.nbf = version.nbf;
    if (version.exp !== undefined) attributes.exp = version.exp;
    return attributes;
  }

  #item(id: string, version: Version): Record<string, unknown> {
    const item: Record<string, unknown> = { id, attributes: this.#attributes(version) };
    if (version.contentType !== undefined) item.contentType = version.contentType;
    if (version.tags !== undefined) item.tags = version.tags;
    if (version.managed) item.managed = true;
    return item;
  }

  #bundle(base: string, name: string, version: Version, withValue: boolean): Record<string, unknown> {
    const stored = this.#record(name)?.name ?? name;
    const bundle: Record<string, unknown> = this.#item(`${base}/secrets/${stored}/${version.id}`, version);
    if (withValue) bundle.value = version.value;
    if (version.managed) bundle.kid = `${base}/keys/${stored}/${version.id}`;
    return bundle;
  }

  #deletedBundle(base: string, record: SecretRecord, version: Version): Record<string, unknown> {
    const bundle = this.#bundle(base, record.name, version, false);
    if (record.deleted === undefined) return bundle;
    return {
      ...bundle,
      recoveryId: `${base}/deletedsecrets/${record.name}`,
      deletedDate: record.deleted.deletedDate,
      scheduledPurgeDate: record.deleted.scheduledPurgeDate,
    };
  }

  #nowSeconds(): number {
    return Math.floor(this.#options.now() / 1000);
  }

  #record(name: string, includeDeleted = true): SecretRecord | undefined {
    const record = this.#secrets.get(name.toLowerCase());
    if (record === undefined) return undefined;
    return includeDeleted || record.deleted === undefined ? record : undefined;
  }

  #live(name: string): SecretRecord | undefined {
    return this.#record(name, false);
  }

  #deletedVisible(name: string): SecretRecord {
    const record = this.#record(name, true);
    if (record?.deleted === undefined || record.deleted.pendingUntil > this.#options.now()) {
      throw new HttpError(404, 'SecretNotFound', `Deleted Secret not found: ${name}`);
    }
    return record;
  }

  #findVersion(name: string, version: string | undefined): Version {
    const record = this.#live(name);
    const found =
      record === undefined
        ? undefined
        : version === undefined || version === ''
          ? latestOf(record)
          : record.versions.find((v) => v.id === version.toLowerCase());
    if (found === undefined) throw notFound(version ? `${name}/${version}` : name);
    return found;
  }

  #findVersionHttp(name: string, version: string | undefined): Version {
    checkName(name);
    return this.#findVersion(name, version);
  }

  #addVersion(
    name: string,
    value: string,
    props: Pick<Version, 'contentType' | 'tags' | 'enabled' | 'nbf' | 'exp' | 'managed'>,
  ): Version {
    let record = this.#record(name, true);
    if (record === undefined) {
      record = { name, versions: [], deleted: undefined };
      this.#secrets.set(name.toLowerCase(), record);
    }
    const now = this.#nowSeconds();
    const version: Version = {
      id: randomBytes(16).toString('hex'),
      value,
      ...props,
      created: now,
      updated: now,
      seq: ++this.#versionSeq,
    };
    record.versions.push(version);
    return version;
  }

  #delete(record: SecretRecord): void {
    const now = this.#options.now();
    if (!this.#options.softDelete) {
      this.#secrets.delete(record.name.toLowerCase());
      return;
    }
    record.deleted = {
      deletedDate: Math.floor(now / 1000),
      scheduledPurgeDate: Math.floor(now / 1000) + this.#options.recoverableDays * 86_400,
      pendingUntil: now + this.#options.deleteDelayMs,
    };
  }

  #purge(record: SecretRecord): void {
    this.#secrets.delete(record.name.toLowerCase());
    if (this.#options.purgeDelayMs > 0) {
      this.#purging.set(record.name.toLowerCase(), this.#options.now() + this.#options.purgeDelayMs);
    }
  }
}

function latestOf(record: SecretRecord): Version | undefined {
  let latest: Version | undefined;
  for (const version of record.versions)
    if (latest === undefined || version.seq > latest.seq) latest = version;
  return latest;
}

function classify(method: string, pathname: string, authorized: boolean): RequestInfo {
  const parts = pathname
    .split('/')
    .slice(1)
    .map((part) => decodeURIComponent(part));
  const [collection, name, third, fourth] = parts;
  const trailing = pathname.endsWith('/');
  let operation: KeyVaultOperation = 'unsupported';
  let version: string | undefined;
  if (collection === 'secrets') {
    if (name === undefined || name === '') {
      if (method === 'GET') operation = 'listSecrets';
    } else if (third === 'versions' && fourth === undefined && method === 'GET') {
      operation = 'listVersions';
    } else if (third === undefined || (third === '' && trailing && fourth === undefined)) {
      if (method === 'GET') operation = 'getSecret';
      else if (method === 'PUT') operation = 'setSecret';
      else if (method === 'DELETE') operation = 'deleteSecret';
      else if (method === 'PATCH') operation = 'updateSecret';
    } else if (fourth === undefined) {
      version = third;
      if (method === 'GET') operation = 'getSecret';
      else if (method === 'PATCH') operation = 'updateSecret';
    }
  } else if (collection === 'deletedsecrets') {
    if (name === undefined || name === '') {
      if (method === 'GET') operation = 'listDeleted';
    } else if (third === undefined) {
      if (method === 'GET') operation = 'getDeleted';
      else if (method === 'DELETE') operation = 'purgeDeleted';
    } else if (third === 'recover' && method === 'POST') {
      operation = 'recoverDeleted';
    }
  }
  const secretName = name === undefined || name === '' ? undefined : name;
  return { method, path: pathname, operation, name: secretName, version, authorized };
}

function checkName(name: string): void {
  if (!NAME_PATTERN.test(name)) {
    throw new HttpError(400, 'BadParameter', `The request URI contains an invalid name: ${name}`);
  }
}

function notFound(what: string): HttpError {
  return new HttpError(
    404,
    'SecretNotFound',
    `A secret with (name/id) ${what} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
  );
}

function parseJson(body: Buffer): unknown {
  if (body.length === 0) throw new HttpError(400, 'BadParameter', 'The request body is missing.');
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'BadParameter', 'The request body is not valid JSON.');
  }
}

function toSeconds(date: Date | undefined): number | undefined {
  return date === undefined ? undefined : Math.floor(date.getTime() / 1000);
}

function defaultCode(status: number): string {
  if (status === 429) return 'Throttled';
  if (status === 503) return 'ServiceUnavailable';
  if (status === 500) return 'InternalServerError';
  if (status === 403) return 'Forbidden';
  if (status === 401) return 'Unauthorized';
  return 'Error';
}

function defaultMessage(status: number): string {
  if (status === 429) {
    return 'Requests were throttled because they exceeded the service limits. Please retry after some time.';
  }
  if (status === 503) return 'The service is temporarily unavailable. Please retry later.';
  return `Injected failure ${status}.`;
}

function send(
  res: ServerResponse,
  status: number,
  body?: unknown,
  headers: Record<string, string> = {},
): void {
  if (body === undefined) {
    res.writeHead(status, {
      'x-ms-keyvault-service-version': '1.9.0.0',
      ...headers,
    });
    res.end();
    return;
  }
  sendText(res, status, JSON.stringify(body), headers);
}

function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'x-ms-keyvault-service-version': '1.9.0.0',
    ...headers,
  });
  res.end(text);
}

function sendError(res: ServerResponse, error: HttpError, headers: Record<string, string> = {}): void {
  const inner = error.innerCode === undefined ? {} : { innererror: { code: error.innerCode } };
  send(res, error.status, { error: { code: error.code, message: error.message, ...inner } }, headers);
}
