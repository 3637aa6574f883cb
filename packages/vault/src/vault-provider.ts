import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import { createRequire } from 'node:module';
import { inspect } from 'node:util';
import {
  type CacheOptions,
  InvalidConfigError,
  isSecretError,
  type KeysOptions,
  type LeaseInfo,
  ProviderClosedError,
  ReadOnlyError,
  Secret,
  SecretConflictError,
  type SecretError,
  type SecretMetadata,
  type SecretOperation,
  SecretTimeoutError,
  type SetOptions,
  UnsupportedOperationError,
} from '@secret-provider/core';
import {
  BaseProvider,
  type Clock,
  type EmitFunction,
  type HookContext,
  pickField,
  raceSignal,
  type StoredSecret,
  systemClock,
  type Timer,
  throwIfAborted,
} from '@secret-provider/core/adapter';
import type { TokenSourceStats } from '@secret-provider/token';
import { listStarts, parseKey, type VaultAddress } from './addressing.js';
import { AuthManager } from './auth.js';
import {
  deleteKv,
  type Call as KvCall,
  type KvRead,
  listKeys,
  readKv,
  readKvMetadata,
  writeKv,
} from './kv.js';
import { type Lease, LeaseManager } from './leases.js';
import {
  type Credential,
  type NodeVaultClient,
  numberOption,
  parseBool,
  redactOptions,
  type VaultAuthOptions,
  type VaultProviderOptions,
  type VaultTlsOptions,
} from './options.js';
import {
  type ConfigWarning,
  type RefreshReport,
  resolveIntervals,
  StaticRefresher,
} from './static-refresh.js';
import { createHttpAgent, createHttpsAgent, VaultTransport } from './transport.js';

/** Name of this adapter in errors and events unless another is given. */
export const PROVIDER_NAME = 'vault';

/** Environment variable holding per-pattern refresh intervals as JSON, unless another is named. */
export const DEFAULT_REFRESH_INTERVALS_ENV = 'STATIC_SECRETS_REFRESH_INTERVALS';

/** Options of {@link VaultProvider.keys}. */
export interface VaultKeysOptions extends KeysOptions {
  /** Walk folders recursively (names only); else folders are returned with a trailing `/`. @default the `listRecursive` option */
  readonly recursive?: boolean | undefined;
}

/** Options of {@link VaultProvider.refresh}. */
export interface VaultRefreshOptions {
  /** Reject with a `TIMEOUT` error when the refresh takes longer (ms). */
  readonly timeout?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** Counters of a provider's work; numbers only. */
export interface VaultProviderStats {
  /** HTTP requests sent (each attempt). */
  readonly requests: number;
  readonly retries: number;
  readonly rateLimited: number;
  readonly reauthentications: number;
  /** Logins (and token lookups) attempted. */
  readonly logins: number;
  /** Token renewals in place (`renew-self`); the same as `token.renewals`. */
  readonly tokenRenewals: number;
  /** The counters of the token lifecycle (a `TokenSource`): tokens issued, failures, rejections, renewals. */
  readonly token: TokenSourceStats;
  readonly leases: {
    readonly active: number;
    readonly issued: number;
    readonly renewed: number;
    readonly rotated: number;
    readonly revoked: number;
    readonly revokeFailures: number;
  };
  /** Static secrets held and re-read in the background. */
  readonly tracked: number;
}

type NodeVaultFactory = (options: Record<string, unknown>) => NodeVaultClient;

let nodeVaultFactory: NodeVaultFactory | undefined;

/** Loads node-vault (and axios) on first use, so importing this package stays cheap. */
function loadNodeVault(): NodeVaultFactory {
  nodeVaultFactory ??= createRequire(import.meta.url)('node-vault') as NodeVaultFactory;
  return nodeVaultFactory;
}

function readPem(file: string | undefined, what: string, provider: string): Buffer | undefined {
  if (file === undefined || file === '') return undefined;
  try {
    return readFileSync(file);
  } catch (error) {
    throw new InvalidConfigError(
      { provider, cause: error },
      `invalid configuration: cannot read ${what} (provider "${provider}")`,
    );
  }
}

const reveal = (value: Credential | Buffer): string | Buffer =>
  Secret.isSecret(value) ? value.reveal() : value;

/**
 * HashiCorp Vault through node-vault: KV v2 (default) and KV v1, dynamic secrets with leases,
 * and the token lifecycle.
 *
 * **Keys** are Vault paths that start with the mount: `secret/app/db#password` is the `password`
 * field of KV secret `app/db` on mount `secret`; `secret/app/db` is the whole secret (its `value`
 * field when that is its only field, which is what `set` writes, else the JSON of its fields).
 * A key whose first segment is not a configured KV mount is read as is: `database/creds/app#username`
 * reads a dynamic credential, and every field of one path comes from the same lease.
 *
 * **Dynamic secrets** are cached with their lease, renewed once `leases.renewFraction` of the
 * lease has passed (with jitter), and replaced before they expire when Vault will not renew them
 * (max TTL reached, not renewable, lease gone) or the token that created them is ending; each
 * replacement emits `rotated` with the old and new lease ids, and the old lease is revoked after
 * `leases.revokeGraceMs`. `close` revokes live leases (or leaves them, `leases.onClose: 'release'`).
 *
 * **Static secrets** whose key matches `staticRefresh.intervals` are held and re-read in the
 * background on their interval (overridable by `STATIC_SECRETS_REFRESH_INTERVALS`); `refresh()`
 * re-reads them now.
 *
 * **Auth**: token (looked up at start, renewed while renewable), AppRole or Kubernetes (logged in
 * again before the token ends). A request rejected for an expired or revoked token is retried
 * once after re-authenticating, with a `warning` event.
 *
 * @example
 * ```ts
 * const vault = new VaultProvider({
 *   endpoint: 'https://vault.internal:8200',
 *   auth: { method: 'approle', roleId, secretIdFile: '/run/secrets/vault-secret-id' },
 *   staticRefresh: { intervals: { 'secret/app/**': 300 } },
 * });
 * const password = await vault.get('secret/app/db#password');
 * const creds = await vault.get('database/creds/app#username');
 * ```
 */
export class VaultProvider extends BaseProvider {
  readonly #options: VaultProviderOptions;
  readonly #endpoint: string;
  readonly #client: NodeVaultClient;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #mounts: ReadonlyMap<string, 1 | 2>;
  readonly #transport: VaultTransport;
  readonly #auth: AuthManager;
  readonly #leases: LeaseManager;
  readonly #refresher: StaticRefresher;
  readonly #agents: { http?: HttpAgent | undefined; https?: HttpsAgent | undefined };
  readonly #configWarnings: ConfigWarning[] = [];
  readonly #versions = new Map<string, string>();
  readonly #fieldKeys = new Map<string, Set<string>>();
  readonly #listRecursive: boolean;
  readonly #kvDelete: 'latest' | 'all';
  readonly #leaseOnClose: 'revoke' | 'release';
  readonly #watchPrefixes: readonly string[];
  readonly #watchConcurrency: number;

  constructor(options: VaultProviderOptions = {}) {
    const name = options.name ?? PROVIDER_NAME;
    // One poll setting: `pollInterval`/`pollJitter`; `watch.intervalMs`/`watch.jitter` are their
    // deprecated aliases, mapped here once.
    const pollInterval = numberOption(
      options.pollInterval ?? options.watch?.intervalMs,
      30_000,
      'pollInterval',
      name,
      { min: 0, minExclusive: true },
    );
    const pollJitter = numberOption(options.pollJitter ?? options.watch?.jitter, 0.1, 'pollJitter', name, {
      min: 0,
      max: 1,
    });
    // KV v2 keeps versions and checks versions on write; KV v1 does neither. Expiry, tags and
    // content types are not written (custom_metadata and delete_version_after are not used).
    const v2 = Object.values(options.mounts ?? { secret: { version: 2 } }).some(
      (m) => (m.version ?? 2) === 2,
    );
    const declared = options.capabilities ?? {};
    super({
      ...options,
      name,
      pollInterval,
      pollJitter,
      cache: cacheOption(options.cache),
      capabilities: {
        ...declared,
        versions: v2 && declared.versions !== false,
        checkAndSet: v2 && declared.checkAndSet !== false,
        expiry: false,
        tags: false,
        contentType: false,
      },
    });
    this.#options = options;
    const env = options.env ?? process.env;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;

    const mounts = new Map<string, 1 | 2>();
    for (const [mount, config] of Object.entries(options.mounts ?? { secret: { version: 2 } })) {
      if (mount === '' || mount.includes('/') || mount.includes('#')) {
        throw new InvalidConfigError(
          { provider: name },
          `invalid configuration: mount "${mount}" must be one path segment (provider "${name}")`,
        );
      }
      const version = config.version ?? 2;
      if (version !== 1 && version !== 2) {
        throw new InvalidConfigError(
          { provider: name },
          `invalid configuration: KV version of mount "${mount}" must be 1 or 2 (provider "${name}")`,
        );
      }
      mounts.set(mount, version);
    }
    this.#mounts = mounts;

    const endpoint = (
      options.client?.endpoint ??
      options.endpoint ??
      env.VAULT_ADDR ??
      'https://127.0.0.1:8200'
    ).replace(/\/+$/, '');
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw new InvalidConfigError(
        { provider: name },
        `invalid configuration: endpoint is not a URL (provider "${name}")`,
      );
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new InvalidConfigError(
        { provider: name },
        `invalid configuration: endpoint must be http(s) (provider "${name}")`,
      );
    }
    // Credentials in the address would show wherever the endpoint does (errors, `options`,
    // inspect, JSON, debug output of HTTP libraries); a query or fragment would break every URL.
    // Neither is quoted: the address may hold a password.
    if (url.username !== '' || url.password !== '') {
      throw new InvalidConfigError(
        { provider: name },
        `invalid configuration: the endpoint must not contain credentials (user:password@); authenticate with the auth option (provider "${name}")`,
      );
    }
    if (url.search !== '' || url.hash !== '' || endpoint.includes('?') || endpoint.includes('#')) {
      throw new InvalidConfigError(
        { provider: name },
        `invalid configuration: the endpoint must be scheme://host[:port][/path], without a query or fragment (provider "${name}")`,
      );
    }
    this.#endpoint = endpoint;
    const namespace = options.namespace ?? (env.VAULT_NAMESPACE || undefined);

    const correlationHeader = options.correlationHeader ?? 'X-OperationId';
    const retryAfter = new Map<string, number>();
    // A client the provider creates sends its requests through the provider's agents, which add
    // the token; an injected client may not (a custom transport), so it gets the token in headers.
    const tokens = options.client === undefined ? new Map<string, string>() : undefined;
    const tls = this.#resolveTls(options.tls, env, name);
    this.#agents = {};
    if (options.client === undefined || url.protocol === 'http:' || options.tls !== undefined) {
      if (url.protocol === 'http:')
        this.#agents.http = createHttpAgent(correlationHeader, retryAfter, tokens);
      else this.#agents.https = createHttpsAgent(correlationHeader, retryAfter, tokens, tls);
    }

    let client: NodeVaultClient;
    if (options.client !== undefined) {
      client = options.client;
    } else {
      // Everything node-vault would read from the environment is given explicitly: it treats any
      // non-empty VAULT_SKIP_VERIFY (even "false") as "skip verification", and DEBUG=node-vault
      // would log request bodies.
      client = loadNodeVault()({
        endpoint,
        apiVersion: 'v1',
        debug: () => {},
        rpDefaults: { strictSSL: true },
        noCustomHTTPVerbs: false,
      });
      client.token = '';
      client.namespace = namespace;
      (client as unknown as { pathPrefix: string }).pathPrefix = '';
    }
    this.#client = client;
    forwardResponseHeaders(client);

    const retry = options.retry ?? {};
    this.#transport = new VaultTransport({
      provider: name,
      client,
      clock: this.#clock,
      random: this.#random,
      correlationHeader,
      correlationId: options.correlationId ?? randomUUID,
      timeoutMs: numberOption(options.requestTimeoutMs, 30_000, 'requestTimeoutMs', name, {
        min: 0,
        minExclusive: true,
      }),
      retries: Math.floor(numberOption(retry.retries, 3, 'retry.retries', name)),
      baseDelayMs: numberOption(retry.baseDelayMs, 250, 'retry.baseDelayMs', name),
      maxDelayMs: numberOption(retry.maxDelayMs, 5_000, 'retry.maxDelayMs', name),
      maxRetryAfterMs: numberOption(retry.maxRetryAfterMs, 30_000, 'retry.maxRetryAfterMs', name),
      agents: this.#agents,
      retryAfter,
      tokens,
    });

    const leaseOptions = options.leases ?? {};
    const renewFraction = numberOption(leaseOptions.renewFraction, 0.75, 'leases.renewFraction', name, {
      min: 0,
      max: 1,
      minExclusive: true,
    });
    const leaseJitter = numberOption(leaseOptions.jitter, 0.1, 'leases.jitter', name, { min: 0, max: 1 });
    this.#leaseOnClose = leaseOptions.onClose ?? 'revoke';

    const auth: VaultAuthOptions = options.auth ?? { method: 'token' };
    if (!['token', 'approle', 'kubernetes'].includes(auth.method)) {
      throw new InvalidConfigError(
        { provider: name },
        `invalid configuration: unknown auth method (provider "${name}")`,
      );
    }
    const warn = (code: string, message: string) =>
      this.emit('warning', { provider: name, code, message, detectedAt: new Date(this.#clock.now()) });
    const reportError = (error: SecretError, key?: string) =>
      this.emit('error', { provider: name, error, key, detectedAt: new Date(this.#clock.now()) });

    this.#leases = new LeaseManager({
      provider: name,
      transport: this.#transport,
      client,
      clock: this.#clock,
      random: this.#random,
      renewFraction,
      jitter: leaseJitter,
      revokeGraceMs: numberOption(leaseOptions.revokeGraceMs, 30_000, 'leases.revokeGraceMs', name),
      expiryMarginMs: numberOption(leaseOptions.expiryMarginMs, 5_000, 'leases.expiryMarginMs', name),
      emit: this.emit,
      keysOf: (path) => this.#keysOf(path),
    });
    this.#auth = new AuthManager({
      provider: name,
      auth,
      envToken: options.client?.token || env.VAULT_TOKEN || undefined,
      transport: this.#transport,
      client,
      ownsClient: options.client === undefined,
      clock: this.#clock,
      random: this.#random,
      renewFraction: numberOption(options.tokenRenewFraction, renewFraction, 'tokenRenewFraction', name, {
        min: 0,
        max: 1,
        minExclusive: true,
      }),
      jitter: leaseJitter,
      warn,
      error: (error) => reportError(error),
      onRetired: (session) => this.#leases.sessionRetired(session),
      onInvalid: (session) => this.#leases.sessionInvalid(session),
    });
    this.#transport.sessions = this.#auth;

    const refresh = options.staticRefresh ?? {};
    const envName = refresh.envVar ?? DEFAULT_REFRESH_INTERVALS_ENV;
    const intervals = resolveIntervals(refresh.intervals, envName, env[envName]);
    this.#configWarnings.push(...intervals.warnings);
    this.#refresher = new StaticRefresher({
      clock: this.#clock,
      random: this.#random,
      rules: intervals.rules,
      defaultMs: numberOption(refresh.defaultInterval, 0, 'staticRefresh.defaultInterval', name) * 1000,
      jitter: numberOption(refresh.jitter, 0.1, 'staticRefresh.jitter', name, { min: 0, max: 1 }),
      spreadFirst: refresh.spreadFirst ?? true,
      loopIntervalMs: numberOption(refresh.loopIntervalMs, 10_000, 'staticRefresh.loopIntervalMs', name, {
        min: 0,
        minExclusive: true,
      }),
      maxTracked: numberOption(refresh.maxTracked, 1_000, 'staticRefresh.maxTracked', name, { min: 1 }),
      read: async (address) =>
        (await readKv({ transport: this.#transport, client, retries: 0 }, address, undefined, 'refresh'))
          .read,
      seen: (address, read) => this.#noteVersion(address.base, read?.version, { keepHeld: true }),
      failed: (error, key) => reportError(error, key),
      mapError: (error, key) => (isSecretError(error) ? error : this.#transport.map(error, 'refresh', key)),
      heldBackFor: () => this.#transport.heldBackFor(),
    });

    const watch = options.watch ?? {};
    this.#watchPrefixes = watch.prefixes ?? [...mounts.keys()].map((mount) => `${mount}/`);
    this.#watchConcurrency = Math.max(
      1,
      Math.floor(numberOption(watch.concurrency, 4, 'watch.concurrency', name, { min: 1 })),
    );
    this.#listRecursive = options.listRecursive ?? false;
    this.#kvDelete = options.kvDelete ?? 'latest';
    if (tls.rejectUnauthorized === false) {
      this.#configWarnings.push({
        code: 'TLS_VERIFY_DISABLED',
        message: 'TLS certificate verification of Vault is turned off',
      });
    }
  }

  // ---- public extras ---------------------------------------------------------------------------

  /**
   * The node-vault client, as an escape hatch. A client the provider created holds no token (the
   * provider sends its token with each request); a client given in `client` keeps its own.
   */
  get client(): NodeVaultClient {
    return this.#client;
  }

  /** Vault's address. */
  get endpoint(): string {
    return this.#endpoint;
  }

  /** The options this provider was built with, credentials redacted. */
  get options(): Record<string, unknown> {
    return redactOptions(this.#options);
  }

  /** Problems found in the configuration (also emitted as `warning` events to the first watcher). */
  get configWarnings(): readonly ConfigWarning[] {
    return this.#configWarnings;
  }

  /** Authenticates now (token lookup or login) instead of at the first request. */
  async connect(options: { signal?: AbortSignal } = {}): Promise<void> {
    this.#assertUsable('auth');
    await raceSignal(this.#auth.session(options.signal), options.signal);
  }

  /**
   * Re-reads every static secret held for background refresh now, emitting `rotated` for those
   * that changed. Failures are reported in the result (their last values are kept).
   * @throws {SecretTimeoutError} when `timeout` passes first.
   */
  async refresh(options: VaultRefreshOptions = {}): Promise<RefreshReport> {
    this.#assertUsable('refresh');
    throwIfAborted(options.signal);
    const work = raceSignal(this.#refresher.refreshAll(), options.signal);
    if (options.timeout === undefined) return work;
    let timer: Timer | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = this.#clock.setTimer(() => {
        reject(
          new SecretTimeoutError(
            { provider: this.name, operation: 'refresh' },
            `refresh timed out after ${options.timeout} ms (provider "${this.name}")`,
          ),
        );
      }, options.timeout as number);
    });
    try {
      return await Promise.race([work, timeout]);
    } finally {
      timer?.cancel();
      work.catch(() => {});
    }
  }

  /** Counters of requests, retries, logins and leases. */
  stats(): VaultProviderStats {
    const leases = this.#leases.counters;
    const transport = this.#transport.counters;
    return {
      requests: transport.requests,
      retries: transport.retries,
      rateLimited: transport.rateLimited,
      reauthentications: transport.reauthentications,
      logins: this.#auth.logins,
      tokenRenewals: this.#auth.renewals,
      token: this.#auth.stats(),
      leases: { active: this.#leases.size, ...leases },
      tracked: this.#refresher.size,
    };
  }

  /**
   * Lists secret names. Non-recursive by default: a folder comes back as its name with a
   * trailing `/` (as `vault kv list` shows it); `recursive: true` walks folders and returns
   * secrets only. (The base class lists; this declares the `recursive` option.)
   */
  override keys(options?: VaultKeysOptions): Promise<string[]> {
    return super.keys(options);
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), endpoint: this.#endpoint, auth: this.#auth.method };
  }

  [inspect.custom](): string {
    return `VaultProvider { name: ${JSON.stringify(this.name)}, endpoint: ${JSON.stringify(this.#endpoint)}, auth: ${JSON.stringify(this.#auth.method)}${this.closed ? ', closed' : ''} }`;
  }

  // ---- lifecycle hooks -------------------------------------------------------------------------

  /** Before watches stop: what revoking leases reports (a denied revocation) reaches watchers. */
  protected override async onClosing(): Promise<void> {
    this.#refresher.close();
    // Leases go before the token stops being renewed: revoking needs a live token.
    await this.#leases.close(this.#leaseOnClose);
  }

  protected override async onClose(): Promise<void> {
    await this.#auth.close();
    this.#agents.http?.destroy();
    this.#agents.https?.destroy();
  }

  // ---- hooks -----------------------------------------------------------------------------------

  protected override validateKey(key: unknown): string {
    const valid = super.validateKey(key);
    parseKey(valid, this.#mounts, this.name);
    return valid;
  }

  protected override mapError(
    error: unknown,
    context: { operation: SecretOperation; key?: string | undefined },
  ): SecretError {
    if (isSecretError(error)) return error;
    return this.#transport.map(error, context.operation, context.key);
  }

  protected override async readSecret(
    key: string,
    context: HookContext & { version?: string | undefined },
  ): Promise<StoredSecret | undefined> {
    this.#assertUsable('get', key);
    const address = parseKey(key, this.#mounts, this.name);
    this.#rememberKey(address);
    if (address.kind === 'logical') {
      if (context.version !== undefined) {
        throw new UnsupportedOperationError(
          { provider: this.name, key, operation: 'get' },
          `"${key}" is not on a KV v2 mount: it has no versions (provider "${this.name}")`,
        );
      }
      const { data, lease } = await this.#leases.read(address.base, key, context.signal);
      const value = extract(data, address.field);
      if (value === undefined) return undefined;
      return { value, metadata: lease === undefined ? undefined : this.#leaseMetadata(lease) };
    }
    if (context.version !== undefined) {
      if (address.version === 1) {
        throw new UnsupportedOperationError(
          { provider: this.name, key, operation: 'get' },
          `KV v1 mount "${address.mount}" keeps no versions (provider "${this.name}")`,
        );
      }
      if (!/^\d+$/.test(context.version)) return undefined;
      const { read } = await readKv(this.#kvCall(context.signal), address, context.version);
      return read === undefined ? undefined : kvStored(read, address.field);
    }
    let read = this.#refresher.get(address.base);
    if (read === undefined) {
      read = (await readKv(this.#kvCall(context.signal), address)).read;
      this.#noteVersion(address.base, read?.version, { silentAdd: true });
      if (read === undefined) return undefined;
      this.#refresher.track(address, read);
    }
    return kvStored(read, address.field);
  }

  protected override async readMetadata(
    key: string,
    context: HookContext,
  ): Promise<Omit<SecretMetadata, 'key'> | undefined> {
    this.#assertUsable('metadata', key);
    const address = parseKey(key, this.#mounts, this.name);
    if (address.kind === 'logical') {
      const current = this.#leases.peek(address.base);
      if (current !== undefined && this.#leases.usable(current)) return this.#leaseMetadata(current);
      const { data, lease } = await this.#leases.read(address.base, key, context.signal);
      if (extract(data, address.field) === undefined) return undefined;
      return lease === undefined ? {} : this.#leaseMetadata(lease);
    }
    if (address.version === 1) {
      const { read } = await readKv(this.#kvCall(context.signal), address, undefined, 'metadata');
      this.#noteVersion(address.base, read?.version, { silentAdd: true });
      if (read === undefined || (address.field !== undefined && read.data[address.field] === undefined))
        return undefined;
      return { version: read.version };
    }
    const meta = await readKvMetadata(this.#kvCall(context.signal), address);
    const version = meta?.currentReadable ? String(meta.currentVersion) : undefined;
    this.#noteVersion(address.base, version, { silentAdd: true });
    if (meta === undefined || version === undefined) return undefined;
    return { version, createdAt: meta.createdAt, updatedAt: meta.updatedAt, tags: meta.tags };
  }

  protected override async writeSecret(
    key: string,
    value: string,
    context: HookContext & SetOptions,
  ): Promise<void> {
    this.#assertUsable('set', key);
    const address = parseKey(key, this.#mounts, this.name);
    if (address.kind !== 'kv') {
      throw new ReadOnlyError(
        { provider: this.name, key, operation: 'set' },
        `"${key}" is not on a KV mount; only KV secrets can be written (provider "${this.name}")`,
      );
    }
    if (context.ifVersion !== undefined && address.version === 1) {
      throw new UnsupportedOperationError(
        { provider: this.name, key, operation: 'set' },
        `check-and-set needs KV v2; mount "${address.mount}" is KV v1 (provider "${this.name}")`,
      );
    }
    const call = this.#kvCall(context.signal);
    const requested = context.ifVersion === undefined ? undefined : casOf(context.ifVersion, key, this.name);
    try {
      if (address.field === undefined) {
        await writeKv(call, address, { value }, requested);
        return;
      }
      // One field of a multi-field secret: read, merge, write with check-and-set so that a
      // concurrent writer's fields are not lost; retried a few times when it loses the race.
      for (let attempt = 0; ; attempt++) {
        const { read, currentVersion } = await readKv(call, address, undefined, 'set');
        const merged = { ...(read?.data ?? {}), [address.field]: value };
        try {
          await writeKv(
            call,
            address,
            merged,
            address.version === 2 ? (requested ?? currentVersion) : undefined,
          );
          return;
        } catch (error) {
          if (!isSecretError(error, 'CONFLICT') || requested !== undefined || attempt >= 4) throw error;
        }
      }
    } finally {
      this.#refresher.invalidate(address.base);
    }
  }

  protected override async deleteSecret(key: string, context: HookContext): Promise<boolean> {
    this.#assertUsable('delete', key);
    const address = parseKey(key, this.#mounts, this.name);
    if (address.kind !== 'kv') {
      throw new UnsupportedOperationError(
        { provider: this.name, key, operation: 'delete' },
        `"${key}" is not on a KV mount; only KV secrets can be deleted (provider "${this.name}")`,
      );
    }
    if (address.field !== undefined) {
      throw new UnsupportedOperationError(
        { provider: this.name, key, operation: 'delete' },
        `delete removes a whole secret; "${key}" names one field (provider "${this.name}")`,
      );
    }
    const call = this.#kvCall(context.signal);
    this.#refresher.invalidate(address.base);
    if (address.version === 1) {
      if ((await readKv(call, address, undefined, 'delete')).read === undefined) return false;
    } else {
      const meta = await readKvMetadata(call, address, 'delete');
      if (meta === undefined || (!meta.currentReadable && this.#kvDelete === 'latest')) return false;
      if (!meta.currentReadable && this.#kvDelete === 'all' && meta.currentVersion === 0) return false;
    }
    await deleteKv(call, address, this.#kvDelete);
    return true;
  }

  protected override async listKeys(context: HookContext & VaultKeysOptions): Promise<string[]> {
    return this.#list(context.prefix, context.recursive ?? this.#listRecursive, context.signal);
  }

  protected override async startWatch(emit: EmitFunction): Promise<() => Promise<void>> {
    let seen: Set<string> | undefined;
    const poll = async (signal?: AbortSignal) => {
      const snapshot = await this.#snapshot(signal);
      if (signal?.aborted) return;
      const baseline = seen === undefined;
      for (const [base, version] of snapshot) this.#noteVersion(base, version, { silentAdd: baseline });
      for (const base of seen ?? []) if (!snapshot.has(base)) this.#noteVersion(base, undefined, {});
      seen = new Set(snapshot.keys());
    };
    // The baseline is read before the watch is ready. While Vault fails it rejects: the base
    // class reports that and starts the watch again on its back-off.
    await poll();
    // Once per start, not once per attempt of a start that kept failing.
    for (const warning of this.#configWarnings) {
      emit('warning', {
        provider: this.name,
        code: warning.code,
        message: warning.message,
        detectedAt: new Date(this.#clock.now()),
      });
    }
    const poller = this.createPoller((signal) => poll(signal), {
      first: 'interval',
      random: this.#random,
    }).start();
    return () => poller.stop();
  }

  // ---- internals -------------------------------------------------------------------------------

  #assertUsable(operation: SecretOperation, key?: string): void {
    if (this.closed) throw new ProviderClosedError({ provider: this.name, key, operation });
  }

  #kvCall(signal: AbortSignal | undefined) {
    return { transport: this.#transport, client: this.#client, signal };
  }

  #resolveTls(
    tls: VaultTlsOptions | undefined,
    env: Readonly<Record<string, string | undefined>>,
    name: string,
  ) {
    const skip = parseBool(env.VAULT_SKIP_VERIFY);
    const ca = tls?.ca ?? readPem(env.VAULT_CACERT, 'the VAULT_CACERT file', name);
    const cert = tls?.cert ?? readPem(env.VAULT_CLIENT_CERT, 'the VAULT_CLIENT_CERT file', name);
    const key =
      tls?.key === undefined
        ? readPem(env.VAULT_CLIENT_KEY, 'the VAULT_CLIENT_KEY file', name)
        : reveal(tls.key);
    const servername = tls?.servername ?? (env.VAULT_TLS_SERVER_NAME || undefined);
    return {
      ...(ca === undefined ? {} : { ca: ca as string | Buffer | Array<string | Buffer> }),
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key }),
      ...(servername === undefined ? {} : { servername }),
      // Verification stays on unless turned off explicitly (option, or a true VAULT_SKIP_VERIFY).
      rejectUnauthorized: tls?.rejectUnauthorized ?? skip !== true,
    };
  }

  #rememberKey(address: VaultAddress): void {
    if (address.field === undefined) return;
    let keys = this.#fieldKeys.get(address.base);
    if (keys === undefined) {
      if (this.#fieldKeys.size >= 10_000) {
        const oldest = this.#fieldKeys.keys().next().value;
        if (oldest !== undefined) this.#fieldKeys.delete(oldest);
      }
      keys = new Set();
      this.#fieldKeys.set(address.base, keys);
    }
    if (keys.size < 100) keys.add(address.key);
  }

  /** A secret and every field key read through it, so events reach whoever cached any of them. */
  #keysOf(base: string): string[] {
    return [base, ...(this.#fieldKeys.get(base) ?? [])];
  }

  /**
   * Records the version some read or poll observed, and reports the change once, whoever saw it
   * first: `added` (unless silent, for baselines and first reads), `rotated`, or `removed`.
   */
  #noteVersion(
    base: string,
    version: string | undefined,
    how: { silentAdd?: boolean; keepHeld?: boolean },
  ): void {
    const known = this.#versions.get(base);
    if (known === version) return;
    const detectedAt = new Date(this.#clock.now());
    if (version === undefined) {
      this.#versions.delete(base);
      this.#refresher.invalidate(base);
      for (const key of this.#keysOf(base))
        this.emit('removed', { provider: this.name, key, version: known, detectedAt });
      return;
    }
    this.#versions.set(base, version);
    if (known === undefined) {
      if (!how.silentAdd)
        for (const key of this.#keysOf(base))
          this.emit('added', { provider: this.name, key, version, detectedAt });
      return;
    }
    if (!how.keepHeld) this.#refresher.invalidate(base);
    const keys = this.#keysOf(base);
    this.emit('rotated', {
      provider: this.name,
      keys,
      changes: keys.map((key) => ({ key, oldVersion: known, newVersion: version })),
      detectedAt,
    });
  }

  #leaseMetadata(lease: Lease): Omit<SecretMetadata, 'key'> {
    const info: LeaseInfo = {
      id: lease.leaseId,
      durationMs: lease.expiresAt - lease.renewedAt,
      renewable: lease.renewable && !lease.capped,
      issuedAt: new Date(lease.renewedAt),
    };
    return { version: lease.leaseId, lease: info, expiresAt: new Date(this.#leases.hardEnd(lease)) };
  }

  async #list(
    prefix: string | undefined,
    recursive: boolean,
    signal: AbortSignal | undefined,
  ): Promise<string[]> {
    const call = this.#kvCall(signal);
    const names: string[] = [];
    for (const start of listStarts(prefix, this.#mounts)) {
      const found = await listKeys(call, start, recursive, { maxKeys: 100_000, concurrency: 4 });
      names.push(...(start.version === 2 ? await this.#readable(call, start.mount, found) : found));
    }
    return names;
  }

  /**
   * The KV v2 keys of `names` whose latest version can be read. Vault keeps listing a key whose
   * latest version was deleted (a soft delete keeps its metadata), while `get` says it does not
   * exist: one metadata read per key keeps `keys()` and `get` in agreement. Folders pass as listed.
   */
  async #readable(call: KvCall, mount: string, names: string[]): Promise<string[]> {
    const keep = new Array<boolean>(names.length).fill(true);
    const concurrency = 4;
    for (let i = 0; i < names.length; i += concurrency) {
      await Promise.all(
        names.slice(i, i + concurrency).map(async (name, offset) => {
          if (name.endsWith('/')) return;
          const path = name.slice(mount.length + 1);
          const meta = await readKvMetadata(
            call,
            { kind: 'kv', key: name, base: name, mount, version: 2, path, field: undefined },
            'keys',
          );
          keep[i + offset] = meta?.currentReadable === true;
        }),
      );
    }
    return names.filter((_, index) => keep[index]);
  }

  /** Key -> version of every KV secret watched: those under the watch prefixes, and those read. */
  async #snapshot(signal?: AbortSignal): Promise<Map<string, string>> {
    const call = { transport: this.#transport, client: this.#client, retries: 1, signal };
    const bases = new Set<string>();
    for (const prefix of this.#watchPrefixes) {
      for (const start of listStarts(prefix, this.#mounts)) {
        for (const name of await listKeys(
          call,
          start,
          true,
          { maxKeys: 100_000, concurrency: this.#watchConcurrency },
          'watch',
        )) {
          if (name.startsWith(prefix)) bases.add(name);
        }
      }
    }
    for (const base of this.#versions.keys()) bases.add(base);
    for (const base of this.#refresher.bases()) bases.add(base);
    const snapshot = new Map<string, string>();
    const list = [...bases];
    for (let i = 0; i < list.length; i += this.#watchConcurrency) {
      await Promise.all(
        list.slice(i, i + this.#watchConcurrency).map(async (base) => {
          const address = parseKey(base, this.#mounts, this.name);
          if (address.kind !== 'kv') return;
          if (address.version === 1) {
            const { read } = await readKv(call, address, undefined, 'watch');
            if (read !== undefined) snapshot.set(base, read.version);
            return;
          }
          const meta = await readKvMetadata(call, address, 'watch');
          if (meta?.currentReadable) snapshot.set(base, String(meta.currentVersion));
        }),
      );
    }
    return snapshot;
  }
}

const HEADERS_FORWARDED = Symbol.for('secret-provider.vault.headers-forwarded');

/**
 * node-vault builds its HTTP errors from the status and body only. A client whose transport
 * (node-vault's `request-promise` option) returns response headers gets them copied onto its
 * errors, so a `Retry-After` reaches the back-off. With node-vault's own axios transport the
 * provider's HTTP agents see the headers instead (see `transport.ts`).
 */
function forwardResponseHeaders(client: NodeVaultClient): void {
  const target = client as unknown as Record<PropertyKey, unknown> & {
    handleVaultResponse?: (response: { headers?: unknown } | undefined) => Promise<unknown>;
  };
  const original = target.handleVaultResponse;
  if (typeof original !== 'function' || target[HEADERS_FORWARDED] === true) return;
  target[HEADERS_FORWARDED] = true;
  target.handleVaultResponse = (response) =>
    original(response).catch((error: unknown) => {
      const failed = error as { response?: { headers?: unknown } } | null;
      if (
        response?.headers !== undefined &&
        failed?.response !== undefined &&
        failed.response.headers === undefined
      ) {
        failed.response.headers = response.headers;
      }
      throw error;
    });
}

/** The value of `field`, or of the whole secret (see {@link VaultProvider} for the addressing). */
function extract(data: Readonly<Record<string, unknown>>, field: string | undefined): string | undefined {
  if (field !== undefined) return pickField(data, field);
  const names = Object.keys(data);
  if (names.length === 1 && names[0] === 'value' && typeof data.value === 'string') return data.value;
  return JSON.stringify(data);
}

function kvStored(read: KvRead, field: string | undefined): StoredSecret | undefined {
  const value = extract(read.data, field);
  if (value === undefined) return undefined;
  return {
    value,
    metadata: {
      version: read.version,
      createdAt: read.createdAt,
      updatedAt: read.createdAt,
      tags: read.tags,
    },
  };
}

/**
 * The `cache` option as the provider applies it: on by default (a remote backend), with core's
 * defaults plus `spreadFirst`, so that a fleet started together does not refresh in step (the
 * static refresh loop spreads its first round the same way); `false` turns it off.
 */
function cacheOption(option: CacheOptions | boolean | undefined): CacheOptions | false {
  if (option === false) return false;
  return { spreadFirst: true, ...(option === true || option === undefined ? {} : option) };
}

/** The check-and-set version of `ifVersion`: `null` or `'0'` means "only if absent". */
function casOf(ifVersion: string | null, key: string, provider: string): number {
  if (ifVersion === null) return 0;
  if (!/^\d+$/.test(ifVersion)) {
    throw new SecretConflictError(
      { provider, key, operation: 'set' },
      `conflict: "${key}" has no version "${ifVersion}" (provider "${provider}")`,
    );
  }
  return Number(ifVersion);
}
