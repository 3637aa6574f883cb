import type { Secret } from '@secret-provider/core';
import { InvalidConfigError, REDACTED } from '@secret-provider/core';
import type { BaseProviderOptions, Clock } from '@secret-provider/core/adapter';

/** A credential given as text or as a redacting {@link Secret}. */
export type Credential = string | Secret<string>;

/** Authenticate with an existing token (from a value, a file such as a Vault Agent sink, or `VAULT_TOKEN`). */
export interface TokenAuthOptions {
  readonly method: 'token';
  /** The token. @default `VAULT_TOKEN` from the environment */
  readonly token?: Credential | undefined;
  /**
   * A file holding the token, re-read when Vault rejects the current one (a Vault Agent or
   * sidecar may have replaced it).
   */
  readonly tokenFile?: string | undefined;
}

/** Log in with AppRole. */
export interface AppRoleAuthOptions {
  readonly method: 'approle';
  readonly roleId: Credential;
  /** The secret id; or use `secretIdFile`. */
  readonly secretId?: Credential | undefined;
  /** A file holding the secret id, read at each login. */
  readonly secretIdFile?: string | undefined;
  /** Mount path of the AppRole auth method. @default 'approle' */
  readonly mount?: string | undefined;
}

/** Log in with a Kubernetes service-account token. */
export interface KubernetesAuthOptions {
  readonly method: 'kubernetes';
  /** The Vault role bound to the service account. */
  readonly role: string;
  /**
   * The service-account JWT file, read at each login (projected tokens rotate).
   * @default '/var/run/secrets/kubernetes.io/serviceaccount/token'
   */
  readonly jwtFile?: string | undefined;
  /** Mount path of the Kubernetes auth method. @default 'kubernetes' */
  readonly mount?: string | undefined;
}

export type VaultAuthOptions = TokenAuthOptions | AppRoleAuthOptions | KubernetesAuthOptions;

/** TLS settings. Verification is on unless `rejectUnauthorized: false` is given explicitly. */
export interface VaultTlsOptions {
  /** CA certificate(s) (PEM) trusted for the server. @default `VAULT_CACERT` file, else the system store */
  readonly ca?: string | Buffer | ReadonlyArray<string | Buffer> | undefined;
  /** Client certificate (PEM) for mutual TLS. @default `VAULT_CLIENT_CERT` file */
  readonly cert?: string | Buffer | undefined;
  /** Client key (PEM). @default `VAULT_CLIENT_KEY` file */
  readonly key?: Credential | Buffer | undefined;
  /** Server name to verify (SNI). @default the endpoint's host */
  readonly servername?: string | undefined;
  /** Verify the server certificate. Turning this off is for local experiments only. @default true */
  readonly rejectUnauthorized?: boolean | undefined;
}

/** A KV secrets engine mount. */
export interface KvMountOptions {
  /** KV engine version. @default 2 */
  readonly version?: 1 | 2 | undefined;
}

/** How the provider retries and backs off. Durations in ms. */
export interface VaultRetryOptions {
  /** Retries after the first attempt for retryable failures (429, 5xx, connection errors). @default 3 */
  readonly retries?: number | undefined;
  /** First back-off; doubles each attempt, with jitter. @default 250 */
  readonly baseDelayMs?: number | undefined;
  /** Longest back-off between attempts. @default 5_000 */
  readonly maxDelayMs?: number | undefined;
  /**
   * Longest `Retry-After` honoured inline. A 429 asking for longer fails at once with
   * `RATE_LIMITED` and its `retryAfterMs`, so callers (and caches serving stale values) decide.
   * @default 30_000
   */
  readonly maxRetryAfterMs?: number | undefined;
}

/** Dynamic secrets (leases). */
export interface VaultLeaseOptions {
  /** Renew (or replace) a lease once this fraction of it has passed. @default 0.75 */
  readonly renewFraction?: number | undefined;
  /** Fraction of the lease removed at random from each renewal time, to spread a fleet. @default 0.1 */
  readonly jitter?: number | undefined;
  /** Keep a replaced lease this long (ms) before revoking it, for connections still using it. @default 30_000 */
  readonly revokeGraceMs?: number | undefined;
  /** What `close` does with live leases: revoke them, or leave them to expire. @default 'revoke' */
  readonly onClose?: 'revoke' | 'release' | undefined;
  /** A cached lease is not served when less than this (ms) of it remains. @default 5_000 */
  readonly expiryMarginMs?: number | undefined;
}

/** Static secrets (KV) kept current by re-reading. */
export interface VaultStaticRefreshOptions {
  /**
   * Re-read interval in seconds per key pattern (`*` matches within one path segment, `**`
   * across segments; the first matching pattern wins). A key no pattern matches is read from
   * Vault on every `get` (unless `defaultInterval` is set). Overridden per pattern by the JSON
   * in the environment variable named by `envVar`.
   * @example { 'secret/app/**': 300, 'secret/flags/*': 30 }
   */
  readonly intervals?: Readonly<Record<string, number>> | undefined;
  /** Interval (seconds) for keys no pattern matches; 0 keeps them untracked. @default 0 */
  readonly defaultInterval?: number | undefined;
  /** Environment variable holding `{"pattern": seconds}` JSON. @default 'STATIC_SECRETS_REFRESH_INTERVALS' */
  readonly envVar?: string | undefined;
  /** How often (ms) the background loop looks for secrets due for a re-read. @default 10_000 */
  readonly loopIntervalMs?: number | undefined;
  /**
   * Each re-read interval is drawn from `interval * (1 ± jitter)`, so the mean stays the
   * interval while a fleet spreads out. @default 0.1
   */
  readonly jitter?: number | undefined;
  /**
   * Schedule the first re-read of a secret at a uniformly random point of one interval
   * (`[0.1, 1.1] * interval`) so that instances started together do not re-read together.
   * @default true
   */
  readonly spreadFirst?: boolean | undefined;
  /** Most secrets kept; the least recently read goes first. @default 1_000 */
  readonly maxTracked?: number | undefined;
}

/** Polling watch of KV metadata (how often: the `pollInterval` and `pollJitter` options). */
export interface VaultWatchOptions {
  /**
   * Key prefixes whose secrets are listed and watched (recursively), e.g. `['secret/app/']`.
   * Secrets read through the provider are watched too. @default every configured KV mount
   */
  readonly prefixes?: readonly string[] | undefined;
  /** @deprecated Use the `pollInterval` option (which wins when both are given). */
  readonly intervalMs?: number | undefined;
  /** @deprecated Use the `pollJitter` option (which wins when both are given). */
  readonly jitter?: number | undefined;
  /** Metadata reads in flight at once during a poll. @default 4 */
  readonly concurrency?: number | undefined;
}

/** The subset of a node-vault client the provider uses. */
export interface NodeVaultClient {
  endpoint: string;
  token: string;
  namespace?: string | undefined;
  read(path: string, requestOptions?: object): Promise<unknown>;
  write(path: string, data: unknown, requestOptions?: object): Promise<unknown>;
  list(path: string, requestOptions?: object): Promise<unknown>;
  delete(path: string, requestOptions?: object): Promise<unknown>;
  tokenLookupSelf(options?: object): Promise<unknown>;
  tokenRenewSelf(options?: object): Promise<unknown>;
  approleLogin(options?: object): Promise<unknown>;
  kubernetesLogin(options?: object): Promise<unknown>;
  renew(options?: object): Promise<unknown>;
  revoke(options?: object): Promise<unknown>;
  health(options?: object): Promise<unknown>;
}

/**
 * Options of {@link VaultProvider}. Of the base options: `cache` is on by default (core's cache
 * defaults plus `spreadFirst: true`; `false` turns it off), `pollInterval` (default 30_000 ms) and
 * `pollJitter` (0.1) time the watch, and `capabilities` can switch `write`/`delete`/`list`/`watch`
 * off for one instance.
 */
export interface VaultProviderOptions extends Partial<BaseProviderOptions> {
  /** Vault's address. @default `VAULT_ADDR`, else 'https://127.0.0.1:8200' */
  readonly endpoint?: string | undefined;
  /** Enterprise namespace, sent as `X-Vault-Namespace`. @default `VAULT_NAMESPACE` */
  readonly namespace?: string | undefined;
  /** How to authenticate. @default token auth from `VAULT_TOKEN` */
  readonly auth?: VaultAuthOptions | undefined;
  readonly tls?: VaultTlsOptions | undefined;
  /** Per-request timeout in ms. @default 30_000 */
  readonly requestTimeoutMs?: number | undefined;
  /** KV mounts by path. Keys whose first segment is not a KV mount are read as-is (dynamic engines). @default { secret: { version: 2 } } */
  readonly mounts?: Readonly<Record<string, KvMountOptions>> | undefined;
  /** An existing node-vault client to use instead of creating one. */
  readonly client?: NodeVaultClient | undefined;
  /** Header carrying a fresh correlation id on every request. @default 'X-OperationId' */
  readonly correlationHeader?: string | undefined;
  /** Makes correlation ids. @default crypto.randomUUID */
  readonly correlationId?: (() => string) | undefined;
  /**
   * Renew the token (or log in again) once this fraction of its TTL has passed, counted from its
   * login or last renewal. On the token lifecycle this is a margin of `(1 - fraction) × TTL` per
   * token, with `leases.jitter` of the wait removed at random. @default the lease `renewFraction`, 0.75
   */
  readonly tokenRenewFraction?: number | undefined;
  readonly retry?: VaultRetryOptions | undefined;
  readonly leases?: VaultLeaseOptions | undefined;
  readonly staticRefresh?: VaultStaticRefreshOptions | undefined;
  readonly watch?: VaultWatchOptions | undefined;
  /** `keys()` walks folders recursively unless a call says otherwise. @default false */
  readonly listRecursive?: boolean | undefined;
  /** What `delete` removes on a KV v2 mount: the latest version (soft, recoverable) or the whole key. @default 'latest' */
  readonly kvDelete?: 'latest' | 'all' | undefined;
  /** Time source for every schedule (tests and simulations pass a {@link ManualClock}). @default the system clock */
  readonly clock?: Clock | undefined;
  /** Random source in [0, 1) for jitter. @default Math.random */
  readonly random?: (() => number) | undefined;
  /** Environment to read `VAULT_*` variables and the refresh intervals from. @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
}

/** Options with credentials replaced by a redacted label, safe to log. */
export function redactOptions(options: VaultProviderOptions): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined) continue;
    if (name === 'auth') out.auth = redactAuth(value as VaultAuthOptions);
    else if (name === 'tls') {
      const tls = value as VaultTlsOptions;
      out.tls = {
        ...(tls.ca === undefined ? {} : { ca: '[certificate]' }),
        ...(tls.cert === undefined ? {} : { cert: '[certificate]' }),
        ...(tls.key === undefined ? {} : { key: REDACTED }),
        ...(tls.servername === undefined ? {} : { servername: tls.servername }),
        ...(tls.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: tls.rejectUnauthorized }),
      };
    } else if (name === 'client') out.client = '[node-vault client]';
    else if (name === 'env') out.env = '[environment]';
    else if (name === 'clock' || name === 'random' || name === 'correlationId') out[name] = '[function]';
    else out[name] = value;
  }
  return out;
}

function redactAuth(auth: VaultAuthOptions): Record<string, unknown> {
  switch (auth.method) {
    case 'token':
      return {
        method: 'token',
        ...(auth.token === undefined ? {} : { token: REDACTED }),
        ...(auth.tokenFile === undefined ? {} : { tokenFile: auth.tokenFile }),
      };
    case 'approle':
      return {
        method: 'approle',
        roleId: REDACTED,
        ...(auth.secretId === undefined ? {} : { secretId: REDACTED }),
        ...(auth.secretIdFile === undefined ? {} : { secretIdFile: auth.secretIdFile }),
        ...(auth.mount === undefined ? {} : { mount: auth.mount }),
      };
    case 'kubernetes':
      return {
        method: 'kubernetes',
        role: auth.role,
        ...(auth.jwtFile === undefined ? {} : { jwtFile: auth.jwtFile }),
        ...(auth.mount === undefined ? {} : { mount: auth.mount }),
      };
    default:
      return { method: String((auth as { method?: unknown }).method) };
  }
}

/** Go's `strconv.ParseBool`, which Vault's tools use for `VAULT_SKIP_VERIFY`. */
export function parseBool(value: string | undefined): boolean | undefined {
  if (value === undefined || value === '') return undefined;
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  return undefined;
}

/** Checks a number option; `undefined` gives the default. */
export function numberOption(
  value: number | undefined,
  fallback: number,
  name: string,
  provider: string,
  range: { min?: number; max?: number; minExclusive?: boolean } = { min: 0 },
): number {
  if (value === undefined) return fallback;
  const min = range.min ?? Number.NEGATIVE_INFINITY;
  const max = range.max ?? Number.POSITIVE_INFINITY;
  const tooSmall = range.minExclusive ? value <= min : value < min;
  if (typeof value !== 'number' || Number.isNaN(value) || tooSmall || value > max) {
    throw new InvalidConfigError({ provider }, `invalid Vault option ${name}: out of range`);
  }
  return value;
}
