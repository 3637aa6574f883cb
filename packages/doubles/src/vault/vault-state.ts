import { randomBytes, randomUUID } from 'node:crypto';

/**
 * The state and API logic of the Vault double: KV v1 and v2, tokens, AppRole and Kubernetes
 * login, a database-style dynamic engine with leases, and `sys/leases`. Answers follow Vault's
 * source (`sdk/logical/response_util.go`, `vault/expiration.go`, `vault/token_store.go`,
 * `vault-plugin-secrets-kv`): status codes, bodies and error strings as Vault sends them.
 * Transport concerns (listeners, LIST rewriting, faults) live in `vault-double.ts`.
 */

/** A request as the handler sees it: path relative to `/v1/`, method after LIST detection. */
export interface ApiRequest {
  readonly method: 'GET' | 'LIST' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: unknown;
}

export interface ApiResponse {
  readonly status: number;
  readonly headers?: Record<string, string>;
  /** JSON body; absent for 204. */
  readonly body?: unknown;
}

export interface KvMountConfig {
  readonly version: 1 | 2;
  /** KV v2: versions kept per key (Vault's default 0 means 10). */
  readonly maxVersions?: number;
  readonly casRequired?: boolean;
}

export interface TokenSpec {
  /** Seconds; 0 means no expiry (like a root token). */
  readonly ttl?: number;
  /** Explicit max TTL in seconds (0: the system max, 768h). */
  readonly explicitMaxTtl?: number;
  readonly renewable?: boolean;
  /** Periodic token: every renewal resets the TTL to this many seconds. */
  readonly period?: number;
  readonly policies?: readonly string[];
  /** Path prefixes (e.g. `sys/leases/revoke`, `secret/data/forbidden/`) this token is denied. */
  readonly deny?: readonly string[];
  readonly displayName?: string;
  readonly meta?: Record<string, string>;
  /** Where the token came from, shown in lookup `path`. */
  readonly path?: string;
  /** A fixed id instead of a random one. */
  readonly id?: string;
}

export interface TokenEntry {
  readonly id: string;
  readonly accessor: string;
  readonly policies: readonly string[];
  readonly deny: readonly string[];
  readonly displayName: string;
  readonly meta: Record<string, string>;
  readonly path: string;
  readonly createdAt: number;
  /** Creation TTL, ms. */
  readonly ttlMs: number;
  readonly periodMs: number;
  readonly explicitMaxTtlMs: number;
  readonly renewable: boolean;
  /** 0 when the token never expires. */
  expireAt: number;
  /** 0 when there is no maximum. */
  readonly maxExpireAt: number;
  revokedAt: number;
  renewals: number;
}

export interface DynamicRole {
  /** Seconds. */
  readonly ttl: number;
  /** Seconds. */
  readonly maxTtl: number;
  readonly renewable: boolean;
}

export interface LeaseEntry {
  readonly id: string;
  readonly path: string;
  readonly role: string;
  readonly username: string;
  readonly password: string;
  readonly issuedAt: number;
  readonly ttlMs: number;
  readonly maxExpireAt: number;
  readonly renewable: boolean;
  /** The token that created the lease: when it goes, the lease goes (Vault's revocation tree). */
  readonly tokenId: string;
  expireAt: number;
  lastRenewal: number;
  revokedAt: number;
  revokeReason: string;
  renewals: number;
}

export interface AppRole {
  readonly mount: string;
  readonly name: string;
  readonly roleId: string;
  readonly secretIds: Set<string>;
  readonly token: TokenSpec;
}

export interface KubernetesRole {
  readonly mount: string;
  readonly name: string;
  readonly jwts: Set<string>;
  readonly token: TokenSpec;
}

interface KvVersion {
  data: Record<string, unknown> | null;
  readonly createdAt: number;
  deletedAt: number;
  destroyed: boolean;
}

interface KvV2Secret {
  readonly versions: Map<number, KvVersion>;
  currentVersion: number;
  oldestVersion: number;
  maxVersions: number;
  casRequired: boolean;
  customMetadata: Record<string, string> | null;
  readonly createdAt: number;
  updatedAt: number;
}

/** Vault's system max TTL (768h) in ms. */
export const SYSTEM_MAX_TTL_MS = 768 * 3_600_000;
/** How long an expired lease still answers "lease expired" before it is gone ("lease not found"). */
const EXPIRED_LEASE_MEMORY_MS = 5_000;

const INVALID_TOKEN = '2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n';
const POLICY_DENIED = '1 error occurred:\n\t* permission denied\n\n';
const KV2_WRONG_PATH =
  "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation.";

/** Paths a request may use without a token (Vault's unauthenticated paths). */
function isUnauthenticated(path: string): boolean {
  return path === 'sys/health' || path === 'sys/seal-status' || /^auth\/[^/]+\/login$/.test(path);
}

/** Go's `time.Duration.String()` for whole seconds, as Vault prints TTLs in warnings. */
export function goDuration(ms: number): string {
  let seconds = Math.max(0, Math.round(ms / 1000));
  const hours = Math.floor(seconds / 3600);
  seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60);
  seconds -= minutes * 60;
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}

/** Parses a Vault duration: a number of seconds or a string like `30s`, `5m`, `1h`. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value * 1000;
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;
  let matched = '';
  for (let m = re.exec(value); m !== null; m = re.exec(value)) {
    total += Number(m[1]) * (units[m[2] as string] as number);
    matched += m[0];
  }
  return matched === value ? total : undefined;
}

function randomId(length = 24): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(length);
  let out = '';
  for (const byte of bytes) out += alphabet[byte % alphabet.length];
  return out;
}

function rfc3339(ms: number): string {
  return new Date(ms).toISOString();
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function headerOf(req: ApiRequest, name: string): string | undefined {
  const value = req.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** A Vault response envelope. */
function envelope(fields: Record<string, unknown>): Record<string, unknown> {
  return {
    request_id: randomUUID(),
    lease_id: '',
    renewable: false,
    lease_duration: 0,
    data: null,
    wrap_info: null,
    warnings: null,
    auth: null,
    ...fields,
  };
}

const ok = (fields: Record<string, unknown>): ApiResponse => ({ status: 200, body: envelope(fields) });
const noContent = (): ApiResponse => ({ status: 204 });
const errors = (status: number, ...messages: string[]): ApiResponse => ({
  status,
  body: { errors: messages },
});
const notFound = (): ApiResponse => errors(404);

/** Applies an RFC 7386 JSON merge patch. */
function mergePatch(
  target: Record<string, unknown>,
  patch: Record<string, unknown>,
): Record<string, unknown> {
  const result: Record<string, unknown> = { ...target };
  // Fields are own properties, whatever their names: `result.__proto__ = v` would set the prototype.
  const put = (key: string, value: unknown) =>
    Object.defineProperty(result, key, { value, writable: true, enumerable: true, configurable: true });
  for (const [key, value] of Object.entries(patch)) {
    const current = Object.hasOwn(result, key) ? result[key] : undefined;
    if (value === null) delete result[key];
    else if (isRecord(value) && isRecord(current)) put(key, mergePatch(current, value));
    else put(key, value);
  }
  return result;
}

/** Direct children of `folder` among `paths`: names, and sub-folders with a trailing `/`. */
function listFolder(paths: Iterable<string>, folder: string): string[] {
  const prefix = folder === '' || folder.endsWith('/') ? folder : `${folder}/`;
  const found = new Set<string>();
  for (const path of paths) {
    if (!path.startsWith(prefix)) continue;
    const rest = path.slice(prefix.length);
    if (rest === '') continue;
    const slash = rest.indexOf('/');
    found.add(slash < 0 ? rest : rest.slice(0, slash + 1));
  }
  return [...found].sort();
}

/** Everything the double knows; `handle` answers one API request against it. */
export class VaultState {
  readonly now: () => number;
  readonly kvMounts = new Map<string, KvMountConfig>();
  readonly kvV1 = new Map<string, Map<string, Record<string, unknown>>>();
  readonly kvV2 = new Map<string, Map<string, KvV2Secret>>();
  readonly tokens = new Map<string, TokenEntry>();
  readonly leases = new Map<string, LeaseEntry>();
  readonly approles = new Map<string, AppRole>();
  readonly kubernetesRoles = new Map<string, KubernetesRole>();
  readonly dynamicMounts = new Set<string>();
  readonly dynamicRoles = new Map<string, DynamicRole>();
  /** Usernames of every credential ever issued -> lease id, to check uses of credentials. */
  readonly credentials = new Map<string, string>();
  sealed = false;
  standby = false;
  /** Answer 412 to requests without `X-Vault-Request`, as a Vault Agent or Proxy with `require_request_header` does. */
  requireRequestHeader = false;
  rootToken: string;

  constructor(options: {
    now: () => number;
    kv?: Record<string, KvMountConfig>;
    dynamicMounts?: readonly string[];
    rootToken?: string;
  }) {
    this.now = options.now;
    for (const [mount, config] of Object.entries(options.kv ?? { secret: { version: 2 } }))
      this.addKvMount(mount, config);
    for (const mount of options.dynamicMounts ?? ['database']) this.dynamicMounts.add(mount);
    this.rootToken = this.createToken({
      ttl: 0,
      policies: ['root'],
      id: options.rootToken ?? `hvs.${randomId()}`,
      path: 'auth/token/root',
    }).id;
  }

  addKvMount(mount: string, config: KvMountConfig): void {
    this.kvMounts.set(mount, config);
    if (config.version === 1) this.kvV1.set(mount, new Map());
    else this.kvV2.set(mount, new Map());
  }

  // ---- tokens ----------------------------------------------------------------------------------

  createToken(spec: TokenSpec = {}): TokenEntry {
    const now = this.now();
    const ttlMs = (spec.period ?? spec.ttl ?? 3600) * 1000;
    const explicitMaxTtlMs = (spec.explicitMaxTtl ?? 0) * 1000;
    const neverExpires = ttlMs === 0;
    const maxTtl = explicitMaxTtlMs > 0 ? explicitMaxTtlMs : spec.period ? 0 : SYSTEM_MAX_TTL_MS;
    const entry: TokenEntry = {
      id: spec.id ?? `hvs.${randomId()}`,
      accessor: randomId(),
      policies: spec.policies ?? ['default'],
      deny: spec.deny ?? [],
      displayName: spec.displayName ?? 'token',
      meta: spec.meta ?? {},
      path: spec.path ?? 'auth/token/create',
      createdAt: now,
      ttlMs,
      periodMs: (spec.period ?? 0) * 1000,
      explicitMaxTtlMs,
      renewable: spec.renewable ?? !neverExpires,
      expireAt: neverExpires ? 0 : now + (maxTtl > 0 ? Math.min(ttlMs, maxTtl) : ttlMs),
      maxExpireAt: neverExpires || maxTtl === 0 ? 0 : now + maxTtl,
      revokedAt: 0,
      renewals: 0,
    };
    this.tokens.set(entry.id, entry);
    return entry;
  }

  /** Revokes a token and, as Vault does, every lease it created. */
  revokeToken(id: string, reason = 'token revoked'): void {
    const token = this.tokens.get(id);
    if (token === undefined || token.revokedAt !== 0) return;
    token.revokedAt = this.now();
    for (const lease of this.leases.values()) {
      if (lease.tokenId === id && lease.revokedAt === 0) this.#revokeLease(lease, reason);
    }
  }

  /** The live token for `id`, after expiring whatever is due. */
  liveToken(id: string | undefined): TokenEntry | undefined {
    this.sweep();
    if (id === undefined || id === '') return undefined;
    const token = this.tokens.get(id);
    return token === undefined || token.revokedAt !== 0 ? undefined : token;
  }

  // ---- leases ----------------------------------------------------------------------------------

  /** Expires tokens and leases whose time has come (Vault's expiration manager). */
  sweep(): void {
    const now = this.now();
    for (const token of this.tokens.values()) {
      if (token.revokedAt === 0 && token.expireAt !== 0 && token.expireAt <= now)
        this.revokeToken(token.id, 'token expired');
    }
    for (const lease of this.leases.values()) {
      if (lease.revokedAt === 0 && lease.expireAt <= now) {
        lease.revokedAt = lease.expireAt;
        lease.revokeReason = 'lease expired';
      }
    }
  }

  #revokeLease(lease: LeaseEntry, reason: string): void {
    lease.revokedAt = this.now();
    lease.revokeReason = reason;
  }

  /** Whether a credential may be used now: its lease is live. */
  credentialState(username: string, password: string): 'valid' | 'expired' | 'revoked' | 'unknown' {
    this.sweep();
    const leaseId = this.credentials.get(username);
    const lease = leaseId === undefined ? undefined : this.leases.get(leaseId);
    if (lease === undefined || lease.password !== password) return 'unknown';
    if (lease.revokedAt === 0) return 'valid';
    return lease.revokeReason === 'lease expired' ? 'expired' : 'revoked';
  }

  // ---- request handling ------------------------------------------------------------------------

  handle(req: ApiRequest): ApiResponse {
    const path = req.path.replace(/^\/+/, '');
    if (path === 'sys/health') return this.#health(req);
    if (path === 'sys/seal-status') {
      return {
        status: 200,
        body: {
          type: 'shamir',
          initialized: true,
          sealed: this.sealed,
          t: 1,
          n: 1,
          progress: 0,
          version: '1.17.0',
        },
      };
    }
    if (this.sealed) return errors(503, 'Vault is sealed');
    if (this.standby) return errors(503, 'local node not active but active cluster node not found');
    if (this.requireRequestHeader && headerOf(req, 'x-vault-request') !== 'true') {
      return errors(412, "missing 'X-Vault-Request' header");
    }

    let token: TokenEntry | undefined;
    if (!isUnauthenticated(path)) {
      const header = headerOf(req, 'x-vault-token');
      if (header === undefined || header === '') return errors(403, 'permission denied');
      token = this.liveToken(header);
      if (token === undefined) return errors(403, INVALID_TOKEN);
      if (token.deny.some((prefix) => path.startsWith(prefix))) return errors(403, POLICY_DENIED);
    } else this.sweep();

    const [first = '', ...restSegments] = path.split('/');
    const rest = restSegments.join('/');
    if (first === 'auth') return this.#auth(req, restSegments, token);
    if (first === 'sys') return this.#sys(req, rest, token);
    const kv = this.kvMounts.get(first);
    if (kv !== undefined) return kv.version === 1 ? this.#kv1(req, first, rest) : this.#kv2(req, first, rest);
    if (this.dynamicMounts.has(first)) return this.#dynamic(req, first, rest, token as TokenEntry);
    return errors(404, `no handler for route "${path}". route entry not found.`);
  }

  #health(req: ApiRequest): ApiResponse {
    const body = {
      initialized: true,
      sealed: this.sealed,
      standby: this.standby,
      performance_standby: false,
      replication_performance_mode: 'disabled',
      replication_dr_mode: 'disabled',
      server_time_utc: Math.floor(this.now() / 1000),
      version: '1.17.0',
      cluster_name: 'vault-double',
      cluster_id: 'b4b1c6d2-0000-4000-8000-000000000000',
    };
    const code = (name: string, fallback: number) => {
      const given = req.query.get(name);
      return given !== null && /^\d+$/.test(given) ? Number(given) : fallback;
    };
    if (this.sealed) return { status: code('sealedcode', 503), body };
    if (this.standby) {
      const standbyOk = req.query.get('standbyok');
      return {
        status: standbyOk === 'true' || standbyOk === '' ? code('activecode', 200) : code('standbycode', 429),
        body,
      };
    }
    return { status: code('activecode', 200), body };
  }

  // ---- auth ------------------------------------------------------------------------------------

  #auth(req: ApiRequest, segments: string[], token: TokenEntry | undefined): ApiResponse {
    const [mount = '', ...rest] = segments;
    const action = rest.join('/');
    if (mount === 'token') return this.#tokenApi(req, action, token as TokenEntry);
    if (action !== 'login' || (req.method !== 'POST' && req.method !== 'PUT')) {
      return errors(405, 'unsupported operation');
    }
    const body = isRecord(req.body) ? req.body : {};
    const approles = [...this.approles.values()].filter((r) => r.mount === mount);
    if (approles.length > 0 || mount === 'approle') {
      const roleId = body.role_id;
      if (typeof roleId !== 'string' || roleId === '') return errors(400, 'missing role_id');
      const role = approles.find((r) => r.roleId === roleId);
      const secretId = body.secret_id;
      if (role === undefined || typeof secretId !== 'string' || !role.secretIds.has(secretId)) {
        return errors(400, 'invalid role or secret ID');
      }
      return this.#loginResponse(
        this.createToken({ ...role.token, path: `auth/${mount}/login`, meta: { role_name: role.name } }),
      );
    }
    const roles = [...this.kubernetesRoles.values()].filter((r) => r.mount === mount);
    if (roles.length === 0)
      return errors(404, `no handler for route "auth/${segments.join('/')}". route entry not found.`);
    const roleName = body.role;
    if (typeof roleName !== 'string' || roleName === '') return errors(400, 'missing role');
    const role = roles.find((r) => r.name === roleName);
    if (role === undefined) return errors(400, `invalid role name "${roleName}"`);
    const jwt = body.jwt;
    if (typeof jwt !== 'string' || jwt === '') return errors(400, 'missing jwt');
    if (!role.jwts.has(jwt)) return errors(403, 'permission denied');
    return this.#loginResponse(
      this.createToken({
        ...role.token,
        path: `auth/${mount}/login`,
        meta: { role: role.name, service_account_name: 'app' },
      }),
    );
  }

  #loginResponse(token: TokenEntry): ApiResponse {
    return ok({
      auth: this.#authBlock(token, Math.max(0, token.expireAt === 0 ? 0 : token.expireAt - this.now())),
    });
  }

  #authBlock(token: TokenEntry, ttlMs: number): Record<string, unknown> {
    return {
      client_token: token.id,
      accessor: token.accessor,
      policies: token.policies,
      token_policies: token.policies,
      identity_policies: null,
      metadata: token.meta,
      lease_duration: Math.round(ttlMs / 1000),
      renewable: token.renewable,
      entity_id: '',
      token_type: 'service',
      orphan: true,
      mfa_requirement: null,
      num_uses: 0,
    };
  }

  #tokenApi(req: ApiRequest, action: string, token: TokenEntry): ApiResponse {
    const now = this.now();
    const body = isRecord(req.body) ? req.body : {};
    if (action === 'lookup-self' && (req.method === 'GET' || req.method === 'POST')) {
      const ttl = token.expireAt === 0 ? 0 : Math.max(0, Math.round((token.expireAt - now) / 1000));
      return ok({
        data: {
          accessor: token.accessor,
          creation_time: Math.floor(token.createdAt / 1000),
          creation_ttl: Math.round(token.ttlMs / 1000),
          display_name: token.displayName,
          entity_id: '',
          expire_time: token.expireAt === 0 ? null : rfc3339(token.expireAt),
          explicit_max_ttl: Math.round(token.explicitMaxTtlMs / 1000),
          id: token.id,
          issue_time: rfc3339(token.createdAt),
          meta: token.meta,
          num_uses: 0,
          orphan: true,
          path: token.path,
          period: token.periodMs === 0 ? undefined : Math.round(token.periodMs / 1000),
          policies: token.policies,
          renewable: token.renewable,
          ttl,
          type: 'service',
        },
      });
    }
    if (action === 'renew-self' && (req.method === 'POST' || req.method === 'PUT')) {
      if (!token.renewable || token.expireAt === 0) return errors(400, 'lease is not renewable');
      const requested = token.periodMs > 0 ? token.periodMs : (parseDuration(body.increment) ?? token.ttlMs);
      const capped = this.#capTtl(requested, token.maxExpireAt);
      if (capped.error) return errors(400, capped.error);
      token.expireAt = now + capped.ttlMs;
      token.renewals++;
      return ok({
        auth: this.#authBlock(token, capped.ttlMs),
        warnings: capped.warning ? [capped.warning] : null,
      });
    }
    if (action === 'revoke-self' && (req.method === 'POST' || req.method === 'PUT')) {
      this.revokeToken(token.id);
      return noContent();
    }
    if (action === 'create' && (req.method === 'POST' || req.method === 'PUT')) {
      const created = this.createToken({
        ttl: (parseDuration(body.ttl) ?? 3_600_000) / 1000,
        explicitMaxTtl: (parseDuration(body.explicit_max_ttl) ?? 0) / 1000,
        ...(typeof body.renewable === 'boolean' ? { renewable: body.renewable } : {}),
        ...(body.period !== undefined ? { period: (parseDuration(body.period) ?? 0) / 1000 } : {}),
        policies: Array.isArray(body.policies) ? (body.policies as string[]) : ['default'],
      });
      return this.#loginResponse(created);
    }
    return errors(405, 'unsupported operation');
  }

  /** Vault's `CalculateTTL`: the requested TTL capped by what is left of the max, with its warning. */
  #capTtl(requestedMs: number, maxExpireAt: number): { ttlMs: number; warning?: string; error?: string } {
    if (maxExpireAt === 0) return { ttlMs: requestedMs };
    const left = maxExpireAt - this.now();
    if (left <= 0) return { ttlMs: 0, error: 'past the max TTL, cannot renew' };
    if (requestedMs <= left) return { ttlMs: requestedMs };
    return {
      ttlMs: left,
      warning: `TTL of "${goDuration(requestedMs)}" exceeded the effective max_ttl of "${goDuration(left)}"; TTL value is capped accordingly`,
    };
  }

  // ---- sys -------------------------------------------------------------------------------------

  #sys(req: ApiRequest, rest: string, token: TokenEntry | undefined): ApiResponse {
    const body = isRecord(req.body) ? req.body : {};
    const write = req.method === 'PUT' || req.method === 'POST';
    if (rest === 'capabilities-self' && write && token !== undefined) return this.#capabilities(token, body);
    const leaseIdFrom = (prefix: string) => {
      const fromPath = rest.length > prefix.length ? rest.slice(prefix.length + 1) : '';
      return fromPath !== '' ? fromPath : typeof body.lease_id === 'string' ? body.lease_id : '';
    };
    if ((rest === 'leases/renew' || rest.startsWith('leases/renew/') || rest === 'renew') && write) {
      return this.#renewLease(
        leaseIdFrom(rest.startsWith('renew') ? 'renew' : 'leases/renew'),
        body.increment,
      );
    }
    if ((rest === 'leases/revoke' || rest.startsWith('leases/revoke/') || rest === 'revoke') && write) {
      const id = leaseIdFrom(rest.startsWith('revoke') ? 'revoke' : 'leases/revoke');
      if (id === '') return errors(400, 'missing lease ID');
      const lease = this.leases.get(id);
      if (lease !== undefined && lease.revokedAt === 0) this.#revokeLease(lease, 'lease revoked');
      return noContent();
    }
    if (rest === 'leases/lookup' && write) {
      const id = typeof body.lease_id === 'string' ? body.lease_id : '';
      if (id === '') return errors(400, 'missing lease ID');
      const lease = this.leases.get(id);
      if (lease === undefined || lease.revokedAt !== 0) return errors(400, 'invalid lease');
      return ok({
        data: {
          id: lease.id,
          issue_time: rfc3339(lease.issuedAt),
          expire_time: rfc3339(lease.expireAt),
          last_renewal: lease.lastRenewal === 0 ? null : rfc3339(lease.lastRenewal),
          renewable: lease.renewable,
          ttl: Math.max(0, Math.round((lease.expireAt - this.now()) / 1000)),
        },
      });
    }
    return errors(404, `no handler for route "sys/${rest}". route entry not found.`);
  }

  /**
   * `sys/capabilities-self` as Vault answers it (`vault/logical_system.go`): each path with its
   * capabilities, at the top level and under `data`, plus `capabilities` for the legacy single
   * `path`. The double's policy model: root has `root`, a denied prefix `deny`, anything else all.
   */
  #capabilities(token: TokenEntry, body: Record<string, unknown>): ApiResponse {
    const paths = Array.isArray(body.paths)
      ? body.paths.filter((p): p is string => typeof p === 'string')
      : typeof body.path === 'string'
        ? [body.path]
        : [];
    if (paths.length === 0) return errors(400, "'paths' parameter is missing");
    const of = (path: string): string[] => {
      if (token.policies.includes('root')) return ['root'];
      if (token.deny.some((prefix) => path.startsWith(prefix))) return ['deny'];
      return ['create', 'delete', 'list', 'patch', 'read', 'update'];
    };
    const data: Record<string, string[]> = {};
    for (const path of paths) data[path] = of(path);
    if (paths.length === 1) data.capabilities = of(paths[0] as string);
    return ok({ ...data, data });
  }

  #renewLease(id: string, increment: unknown): ApiResponse {
    if (id === '') return errors(400, 'missing lease ID');
    const lease = this.leases.get(id);
    const now = this.now();
    if (lease === undefined) return errors(400, 'lease not found');
    if (lease.revokedAt !== 0) {
      // Vault keeps an expired lease briefly ("lease expired") before its revocation removes it.
      if (lease.revokeReason === 'lease expired' && now - lease.expireAt < EXPIRED_LEASE_MEMORY_MS) {
        return errors(400, 'lease expired');
      }
      return errors(400, 'lease not found');
    }
    if (!lease.renewable) return errors(400, 'lease is not renewable');
    const requested = parseDuration(increment) ?? lease.ttlMs;
    const capped = this.#capTtl(requested === 0 ? lease.ttlMs : requested, lease.maxExpireAt);
    if (capped.error) return errors(400, capped.error);
    lease.expireAt = now + capped.ttlMs;
    lease.lastRenewal = now;
    lease.renewals++;
    return ok({
      lease_id: lease.id,
      renewable: true,
      lease_duration: Math.round(capped.ttlMs / 1000),
      warnings: capped.warning ? [capped.warning] : null,
    });
  }

  // ---- dynamic engine (database-like) ------------------------------------------------------------

  addDynamicRole(mount: string, role: string, spec: DynamicRole): void {
    this.dynamicMounts.add(mount);
    this.dynamicRoles.set(`${mount}/${role}`, spec);
  }

  #dynamic(req: ApiRequest, mount: string, rest: string, token: TokenEntry): ApiResponse {
    const [kind, ...roleParts] = rest.split('/');
    const roleName = roleParts.join('/');
    if (kind === 'roles' && (req.method === 'POST' || req.method === 'PUT')) {
      const body = isRecord(req.body) ? req.body : {};
      this.addDynamicRole(mount, roleName, {
        ttl: (parseDuration(body.default_ttl) ?? 3_600_000) / 1000,
        maxTtl: (parseDuration(body.max_ttl) ?? 86_400_000) / 1000,
        renewable: body.renewable !== false,
      });
      return noContent();
    }
    if (kind !== 'creds' || req.method !== 'GET') return errors(405, 'unsupported operation');
    const role = this.dynamicRoles.get(`${mount}/${roleName}`);
    if (role === undefined) return errors(400, `unknown role: ${roleName}`);
    const now = this.now();
    const ttlMs = role.ttl * 1000;
    const maxExpireAt = now + role.maxTtl * 1000;
    const lease: LeaseEntry = {
      id: `${mount}/creds/${roleName}/${randomId()}`,
      path: `${mount}/creds/${roleName}`,
      role: roleName,
      username: `v-${roleName}-${randomId(12)}`,
      password: `A1a-${randomId(20)}`,
      issuedAt: now,
      ttlMs,
      maxExpireAt,
      renewable: role.renewable,
      tokenId: token.id,
      expireAt: now + Math.min(ttlMs, role.maxTtl * 1000),
      lastRenewal: 0,
      revokedAt: 0,
      revokeReason: '',
      renewals: 0,
    };
    this.leases.set(lease.id, lease);
    this.credentials.set(lease.username, lease.id);
    return ok({
      lease_id: lease.id,
      renewable: lease.renewable,
      lease_duration: Math.round((lease.expireAt - now) / 1000),
      data: { username: lease.username, password: lease.password },
    });
  }

  // ---- KV v1 -----------------------------------------------------------------------------------

  #kv1(req: ApiRequest, mount: string, path: string): ApiResponse {
    const store = this.kvV1.get(mount) as Map<string, Record<string, unknown>>;
    if (req.method === 'LIST') {
      const keys = listFolder(store.keys(), path);
      return keys.length === 0 ? notFound() : ok({ data: { keys } });
    }
    if (path === '' || path.endsWith('/')) return errors(405, 'unsupported path');
    if (req.method === 'GET') {
      const data = store.get(path);
      return data === undefined ? notFound() : ok({ data, lease_duration: 2_764_800 });
    }
    if (req.method === 'POST' || req.method === 'PUT') {
      if (!isRecord(req.body)) return errors(400, 'failed to parse JSON input: data must be an object');
      store.set(path, { ...req.body });
      return noContent();
    }
    if (req.method === 'DELETE') {
      store.delete(path);
      return noContent();
    }
    return errors(405, 'unsupported operation');
  }

  // ---- KV v2 -----------------------------------------------------------------------------------

  /** Reads a KV v2 secret's data as the engine stores it (tests' out-of-band view). */
  kv2Secret(mount: string, path: string): KvV2Secret | undefined {
    return this.kvV2.get(mount)?.get(path);
  }

  #kv2(req: ApiRequest, mount: string, rest: string): ApiResponse {
    const store = this.kvV2.get(mount) as Map<string, KvV2Secret>;
    const config = this.kvMounts.get(mount) as KvMountConfig;
    const slash = rest.indexOf('/');
    const section = slash < 0 ? rest : rest.slice(0, slash);
    const path = slash < 0 ? '' : rest.slice(slash + 1);
    const body = isRecord(req.body) ? req.body : {};
    const now = this.now();

    if (section === 'config') {
      if (req.method === 'GET') {
        return ok({
          data: {
            cas_required: config.casRequired ?? false,
            delete_version_after: '0s',
            max_versions: config.maxVersions ?? 0,
          },
        });
      }
      this.kvMounts.set(mount, {
        ...config,
        ...(typeof body.max_versions === 'number' ? { maxVersions: body.max_versions } : {}),
        ...(typeof body.cas_required === 'boolean' ? { casRequired: body.cas_required } : {}),
      });
      return noContent();
    }
    if (section === 'metadata') {
      if (req.method === 'LIST') {
        const keys = listFolder(store.keys(), path);
        return keys.length === 0 ? notFound() : ok({ data: { keys } });
      }
      const secret = store.get(path);
      if (req.method === 'GET')
        return secret === undefined ? notFound() : ok({ data: this.#metadataBody(secret, config) });
      if (req.method === 'POST' || req.method === 'PUT') {
        const target = secret ?? this.#newSecret(now);
        if (typeof body.max_versions === 'number') target.maxVersions = body.max_versions;
        if (typeof body.cas_required === 'boolean') target.casRequired = body.cas_required;
        if (isRecord(body.custom_metadata))
          target.customMetadata = body.custom_metadata as Record<string, string>;
        target.updatedAt = now;
        store.set(path, target);
        return noContent();
      }
      if (req.method === 'DELETE') {
        store.delete(path);
        return noContent();
      }
      return errors(405, 'unsupported operation');
    }
    if (section === 'data') {
      if (req.method === 'LIST') return errors(405, 'unsupported operation');
      const secret = store.get(path);
      if (req.method === 'GET') return this.#readVersion(secret, req.query.get('version'));
      if (req.method === 'POST' || req.method === 'PUT') return this.#write(store, config, path, body, now);
      if (req.method === 'PATCH') {
        const type = headerOf(req, 'content-type') ?? '';
        if (!type.startsWith('application/merge-patch+json')) {
          return errors(415, 'PATCH requires Content-Type application/merge-patch+json');
        }
        const current = secret?.versions.get(secret.currentVersion);
        if (
          secret === undefined ||
          current === undefined ||
          current.data === null ||
          current.deletedAt !== 0
        ) {
          return notFound();
        }
        if (!isRecord(body.data)) return errors(400, 'no data provided');
        const merged = mergePatch(current.data, body.data);
        return this.#write(store, config, path, { data: merged, options: body.options }, now);
      }
      if (req.method === 'DELETE') {
        const current = secret?.versions.get(secret.currentVersion);
        if (current !== undefined && current.deletedAt === 0 && !current.destroyed) current.deletedAt = now;
        if (secret !== undefined) secret.updatedAt = now;
        return noContent();
      }
      return errors(405, 'unsupported operation');
    }
    if (section === 'delete' || section === 'undelete' || section === 'destroy') {
      if (req.method !== 'POST' && req.method !== 'PUT') return errors(405, 'unsupported operation');
      const versions = Array.isArray(body.versions) ? body.versions.map(Number) : [];
      if (versions.length === 0) return errors(400, 'no version number provided');
      const secret = store.get(path);
      if (secret === undefined) return noContent();
      for (const number of versions) {
        const version = secret.versions.get(number);
        if (version === undefined) continue;
        if (section === 'delete' && version.deletedAt === 0 && !version.destroyed) version.deletedAt = now;
        if (section === 'undelete' && !version.destroyed) version.deletedAt = 0;
        if (section === 'destroy') {
          version.destroyed = true;
          version.data = null;
        }
      }
      secret.updatedAt = now;
      return noContent();
    }
    return { status: 404, body: envelope({ warnings: [KV2_WRONG_PATH] }) };
  }

  #newSecret(now: number): KvV2Secret {
    return {
      versions: new Map(),
      currentVersion: 0,
      oldestVersion: 0,
      maxVersions: 0,
      casRequired: false,
      customMetadata: null,
      createdAt: now,
      updatedAt: now,
    };
  }

  #versionMetadata(secret: KvV2Secret, number: number, version: KvVersion): Record<string, unknown> {
    return {
      created_time: rfc3339(version.createdAt),
      custom_metadata: secret.customMetadata,
      deletion_time: version.deletedAt === 0 ? '' : rfc3339(version.deletedAt),
      destroyed: version.destroyed,
      version: number,
    };
  }

  #readVersion(secret: KvV2Secret | undefined, requested: string | null): ApiResponse {
    if (secret === undefined) return notFound();
    const number =
      requested === null || requested === '' || requested === '0' ? secret.currentVersion : Number(requested);
    const version = Number.isInteger(number) ? secret.versions.get(number) : undefined;
    if (version === undefined) return notFound();
    const metadata = this.#versionMetadata(secret, number, version);
    // Vault answers a deleted or destroyed version with 404 and a full body (data null).
    if (version.deletedAt !== 0 || version.destroyed || version.data === null) {
      return { status: 404, body: envelope({ data: { data: null, metadata } }) };
    }
    return ok({ data: { data: version.data, metadata } });
  }

  #write(
    store: Map<string, KvV2Secret>,
    config: KvMountConfig,
    path: string,
    body: Record<string, unknown>,
    now: number,
  ): ApiResponse {
    if (path === '' || path.endsWith('/')) return errors(400, 'invalid path');
    if (!isRecord(body.data)) return errors(400, 'no data provided');
    const existing = store.get(path);
    const options = isRecord(body.options) ? body.options : {};
    const casRequired = (config.casRequired ?? false) || (existing?.casRequired ?? false);
    if (options.cas === undefined && casRequired) {
      return errors(400, 'check-and-set parameter required for this call');
    }
    if (options.cas !== undefined) {
      const cas = Number(options.cas);
      if (cas !== (existing?.currentVersion ?? 0)) {
        return errors(400, 'check-and-set parameter did not match the current version');
      }
    }
    const secret = existing ?? this.#newSecret(now);
    const number = secret.currentVersion + 1;
    const version: KvVersion = { data: { ...body.data }, createdAt: now, deletedAt: 0, destroyed: false };
    secret.versions.set(number, version);
    secret.currentVersion = number;
    secret.updatedAt = now;
    const max =
      secret.maxVersions > 0
        ? secret.maxVersions
        : (config.maxVersions ?? 0) > 0
          ? (config.maxVersions as number)
          : 10;
    for (const old of [...secret.versions.keys()].sort((a, b) => a - b)) {
      if (secret.versions.size <= max) break;
      secret.versions.delete(old);
    }
    secret.oldestVersion = Math.min(...secret.versions.keys());
    store.set(path, secret);
    return ok({ data: this.#versionMetadata(secret, number, version) });
  }

  #metadataBody(secret: KvV2Secret, config: KvMountConfig): Record<string, unknown> {
    const versions: Record<string, unknown> = {};
    for (const [number, version] of secret.versions) {
      versions[String(number)] = {
        created_time: rfc3339(version.createdAt),
        deletion_time: version.deletedAt === 0 ? '' : rfc3339(version.deletedAt),
        destroyed: version.destroyed,
      };
    }
    return {
      cas_required: secret.casRequired,
      created_time: rfc3339(secret.createdAt),
      current_version: secret.currentVersion,
      custom_metadata: secret.customMetadata,
      delete_version_after: '0s',
      max_versions: secret.maxVersions || (config.maxVersions ?? 0),
      oldest_version: secret.oldestVersion,
      updated_time: rfc3339(secret.updatedAt),
      versions,
    };
  }
}
