import type { TokenCredential } from '@azure/core-auth';
import type {
  KeyVaultSecret,
  SecretClient,
  SecretClientOptions,
  SecretProperties,
} from '@azure/keyvault-secrets';
import {
  InvalidConfigError,
  InvalidKeyError,
  isSecretError,
  ProviderClosedError,
  type SecretError,
  type SecretMetadata,
  type SecretOperation,
  type SetOptions,
  UnsupportedOperationError,
  type VersionChange,
  type WarningEvent,
} from '@secret-provider/core';
import {
  BaseProvider,
  type BaseProviderOptions,
  type EmitFunction,
  type HookContext,
  jittered,
  type StoredSecret,
  sleep,
  throwIfAborted,
} from '@secret-provider/core/adapter';
import {
  type KeyVaultAction,
  KeyVaultNameCollisionError,
  KeyVaultSecretUnusableError,
  mapKeyVaultError,
} from './errors.js';
import { defaultNameMapper, KEY_VAULT_NAME_PATTERN, type KeyVaultNameMapper } from './names.js';
import { createDefaultCredential, loadSecretsModule } from './sdk.js';

/** Name of this adapter in errors and events unless another is given. */
export const PROVIDER_NAME = 'azure';

/** Name of the vault configured by the top-level `vaultUrl`/`client` options. */
export const DEFAULT_VAULT = 'default';

const INSPECT: unique symbol = Symbol.for('nodejs.util.inspect.custom') as never;

/** How to reach one vault. */
export interface KeyVaultConnectionOptions {
  /** The vault URL, `https://<vault-name>.vault.azure.net`. Not needed with `client`. */
  readonly vaultUrl?: string | undefined;
  /**
   * Any `TokenCredential` (`@azure/identity` or your own).
   * @default the provider's `credential`, else one `DefaultAzureCredential` shared by all vaults
   */
  readonly credential?: TokenCredential | undefined;
  /** An existing `SecretClient`, used as is (its URL, credential and pipeline). */
  readonly client?: SecretClient | undefined;
  /** Options for the `SecretClient` this provider creates: retries, TLS, API version, proxy. */
  readonly clientOptions?: SecretClientOptions | undefined;
}

/** Keys starting with `prefix` go to `vault`; with `stripPrefix` the prefix is not part of the Key Vault name. */
export interface KeyVaultPrefixRoute {
  readonly prefix: string;
  readonly vault: string;
  /** @default false */
  readonly stripPrefix?: boolean | undefined;
}

/**
 * Which vault holds which key, checked in this order: an exact entry in `keys`, the longest
 * matching prefix in `prefixes`, then `defaultVault`. A key that no rule routes does not exist
 * for this provider: reads answer `NOT_FOUND` (so a chain moves on), writes `INVALID_KEY`.
 */
export interface KeyVaultRoutes {
  /** Application key -> vault. */
  readonly keys?: Readonly<Record<string, string>> | undefined;
  /** Prefix -> vault, or rules with `stripPrefix`. */
  readonly prefixes?: Readonly<Record<string, string>> | readonly KeyVaultPrefixRoute[] | undefined;
  /** Vault for every other key. @default the only vault, when there is one */
  readonly defaultVault?: string | undefined;
}

export interface AzureKeyVaultProviderOptions
  extends Partial<BaseProviderOptions>,
    KeyVaultConnectionOptions {
  /**
   * Several vaults by name, each with its own URL, credential, client or options. The
   * top-level `vaultUrl`/`client` adds one more, named {@link DEFAULT_VAULT}.
   */
  readonly vaults?: Readonly<Record<string, KeyVaultConnectionOptions>> | undefined;
  /** Routing of keys to vaults (see {@link KeyVaultRoutes}). */
  readonly routes?: KeyVaultRoutes | undefined;
  /** Application key <-> Key Vault name. @default {@link defaultNameMapper} */
  readonly nameMapper?: KeyVaultNameMapper | undefined;
  /**
   * What `get` does when the secret's expiry (`exp`) has passed. Key Vault itself still serves
   * it; `'reject'` answers {@link KeyVaultSecretUnusableError} (`reason: 'expired'`).
   * @default 'reject'
   */
  readonly expired?: 'reject' | 'allow' | undefined;
  /** What `get` does before the secret's activation date (`nbf`). @default 'reject' */
  readonly notYetValid?: 'reject' | 'allow' | undefined;
  /** List disabled secrets in `keys()` and watch them. @default false */
  readonly includeDisabled?: boolean | undefined;
  /** List certificate-backed (`managed`) secrets in `keys()` and watch them. @default false */
  readonly includeManaged?: boolean | undefined;
  /**
   * `'soft'`: `delete` soft-deletes (the name stays reserved until recovered or purged).
   * `'purge'`: waits for the deletion and purges (needs `secrets/purge`), freeing the name.
   * @default 'soft'
   */
  readonly deleteMode?: 'soft' | 'purge' | undefined;
  /** Time between the checks of a deletion in progress, for `deleteMode: 'purge'`. @default 1000 */
  readonly deletePollIntervalMs?: number | undefined;
  /** Timeout of each HTTP attempt (the SDK's retries make more). @default 30_000 */
  readonly requestTimeoutMs?: number | undefined;
  /**
   * Key Vault stamps changes in whole seconds, so a list cannot tell two writes in one second
   * apart. The watch re-checks the versions of secrets changed within this window.
   * @default 60_000
   */
  readonly settleWindowMs?: number | undefined;
  /**
   * Receives warnings (name collisions, names that do not map back to keys) in addition to the
   * `warning` events watchers get. Without it they go to `process.emitWarning`.
   */
  readonly onWarning?: ((warning: WarningEvent) => void) | undefined;
  /** Clock in epoch milliseconds, for `exp`/`nbf` checks. @default Date.now */
  readonly now?: (() => number) | undefined;
}

interface Vault {
  readonly id: string;
  readonly url: string;
  readonly connection: KeyVaultConnectionOptions;
}

interface Target {
  readonly vault: Vault;
  readonly name: string;
}

interface Listed {
  readonly key: string;
  readonly name: string;
  /** `updated` of the latest version, epoch ms (Key Vault keeps whole seconds). */
  readonly updated: number | undefined;
}

interface WatchEntry extends Listed {
  version: string | undefined;
  /** Every version id of the last versions listing, to order versions stamped in one second. */
  seen: ReadonlySet<string> | undefined;
  /** Whether `updated` was recent when listed: the version is checked again next poll. */
  unsettled: boolean;
}

interface VersionInfo {
  readonly version: string;
  readonly created: number;
  readonly properties: SecretProperties;
}

/**
 * Azure Key Vault secrets, from one vault or several routed by key.
 *
 * - **Lazy**: the Azure SDK loads on the first call that needs it, not on import.
 * - **Names**: application keys map to Key Vault names and back ({@link defaultNameMapper}:
 *   `DATABASE_URL` <-> `DATABASE-URL`); collisions are reported, never merged silently.
 * - **Reads**: latest or a given version; disabled, expired and not-yet-valid secrets reject
 *   with {@link KeyVaultSecretUnusableError}; content type and tags are metadata.
 * - **Rotation without values**: `metadata` and `watch` read properties only; the watch polls
 *   the list with jitter and lists the versions of changed secrets only.
 * - **Errors**: typed, with the missing permission named; the SDK's `RestError` (which holds the
 *   bearer token and, on writes, the value) never escapes. No retries on top of the SDK's.
 * - **Cache**: on by default (`cache: true`, one hour with jitter); `cache: false` turns it off.
 *
 * @example
 * ```ts
 * const secrets = new AzureKeyVaultProvider({ vaultUrl: 'https://my-vault.vault.azure.net' });
 * const url = await secrets.get('DATABASE_URL'); // reads secret "DATABASE-URL"
 * ```
 *
 * @example Several vaults
 * ```ts
 * const secrets = new AzureKeyVaultProvider({
 *   vaults: {
 *     app: { vaultUrl: 'https://app-kv.vault.azure.net' },
 *     billing: { vaultUrl: 'https://billing-kv.vault.azure.net', credential: billingCredential },
 *   },
 *   routes: { prefixes: [{ prefix: 'billing/', vault: 'billing', stripPrefix: true }], defaultVault: 'app' },
 * });
 * ```
 */
export class AzureKeyVaultProvider extends BaseProvider {
  readonly #vaults: ReadonlyMap<string, Vault>;
  readonly #keyRoutes: ReadonlyMap<string, string>;
  readonly #prefixRoutes: readonly KeyVaultPrefixRoute[];
  readonly #defaultVault: string | undefined;
  readonly #mapper: KeyVaultNameMapper;
  readonly #credential: TokenCredential | undefined;
  readonly #clients = new Map<string, Promise<SecretClient>>();
  #defaultCredential: Promise<TokenCredential> | undefined;
  readonly #expired: 'reject' | 'allow';
  readonly #notYetValid: 'reject' | 'allow';
  readonly #includeDisabled: boolean;
  readonly #includeManaged: boolean;
  readonly #deleteMode: 'soft' | 'purge';
  readonly #deletePollMs: number;
  readonly #timeoutMs: number;
  readonly #settleMs: number;
  readonly #pollInterval: number;
  readonly #pollJitter: number;
  readonly #onWarning: ((warning: WarningEvent) => void) | undefined;
  readonly #now: () => number;
  /** `vault \0 lower-case name` -> the application key first seen for it. */
  readonly #names = new Map<string, string>();
  readonly #warned = new Set<string>();
  /** `vault \0 name` -> what {@link #keyOf} found; names are stable, mappers pure. */
  readonly #keyOfCache = new Map<string, string | undefined | null>();

  constructor(options: AzureKeyVaultProviderOptions) {
    super({
      ...options,
      name: options.name ?? PROVIDER_NAME,
      cache: options.cache ?? true,
      capabilities: { versions: true, expiry: true, tags: true, contentType: true },
    });
    const name = this.name;
    const vaults = new Map<string, Vault>();
    const add = (id: string, connection: KeyVaultConnectionOptions) => {
      if (vaults.has(id))
        throw new InvalidConfigError({ provider: name }, `vault "${id}" is configured twice`);
      vaults.set(id, { id, url: vaultUrlOf(connection, id, name), connection: { ...connection } });
    };
    if (options.vaultUrl !== undefined || options.client !== undefined) {
      add(DEFAULT_VAULT, {
        vaultUrl: options.vaultUrl,
        client: options.client,
        clientOptions: options.clientOptions,
        credential: options.credential,
      });
    }
    for (const [id, connection] of Object.entries(options.vaults ?? {})) {
      add(id, { ...connection, clientOptions: connection.clientOptions ?? options.clientOptions });
    }
    if (vaults.size === 0) {
      throw new InvalidConfigError(
        { provider: name },
        'invalid configuration: give a vaultUrl, a client, or vaults',
      );
    }
    this.#vaults = vaults;
    const known = (vault: string, where: string) => {
      if (!vaults.has(vault)) {
        throw new InvalidConfigError(
          { provider: name },
          `invalid configuration: ${where} names unknown vault "${vault}"`,
        );
      }
      return vault;
    };
    const routes = options.routes ?? {};
    this.#keyRoutes = new Map(
      Object.entries(routes.keys ?? {}).map(([key, vault]) => [key, known(vault, `route "${key}"`)]),
    );
    const prefixes: KeyVaultPrefixRoute[] = Array.isArray(routes.prefixes)
      ? [...(routes.prefixes as readonly KeyVaultPrefixRoute[])]
      : Object.entries((routes.prefixes ?? {}) as Record<string, string>).map(([prefix, vault]) => ({
          prefix,
          vault,
        }));
    for (const rule of prefixes) known(rule.vault, `prefix route "${rule.prefix}"`);
    // Longest prefix first, so the most specific rule wins.
    this.#prefixRoutes = prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
    this.#defaultVault =
      routes.defaultVault !== undefined
        ? known(routes.defaultVault, 'defaultVault')
        : vaults.size === 1
          ? [...vaults.keys()][0]
          : vaults.has(DEFAULT_VAULT)
            ? DEFAULT_VAULT
            : undefined;
    this.#mapper = options.nameMapper ?? defaultNameMapper;
    this.#credential = options.credential;
    this.#expired = options.expired ?? 'reject';
    this.#notYetValid = options.notYetValid ?? 'reject';
    this.#includeDisabled = options.includeDisabled ?? false;
    this.#includeManaged = options.includeManaged ?? false;
    this.#deleteMode = options.deleteMode ?? 'soft';
    this.#deletePollMs = options.deletePollIntervalMs ?? 1000;
    this.#timeoutMs = options.requestTimeoutMs ?? 30_000;
    this.#settleMs = options.settleWindowMs ?? 60_000;
    this.#pollInterval = options.pollInterval ?? 30_000;
    this.#pollJitter = options.pollJitter ?? 0.1;
    this.#onWarning = options.onWarning;
    this.#now = options.now ?? Date.now;
    // Explicit routes are known keys: two of them on one Key Vault name is a configuration error.
    for (const key of this.#keyRoutes.keys()) {
      try {
        this.#target(key, 'set', 'set');
      } catch (error) {
        if (isSecretError(error)) {
          throw new InvalidConfigError(
            { provider: name, key, cause: error },
            `invalid configuration: ${error.message}`,
          );
        }
        throw error;
      }
    }
  }

  /** The configured vaults, name -> URL. */
  get vaults(): Readonly<Record<string, string>> {
    return Object.fromEntries([...this.#vaults.values()].map((v) => [v.id, v.url]));
  }

  /**
   * The native `SecretClient` of a vault (loading the SDK if needed), for what this provider
   * does not cover (backups, certificates' secrets, …). Errors it throws are the SDK's own:
   * sanitize them before logging (they carry the request).
   */
  async client(
    vault: string = this.#defaultVault ?? [...this.#vaults.keys()][0] ?? DEFAULT_VAULT,
  ): Promise<SecretClient> {
    if (this.closed) throw new ProviderClosedError({ provider: this.name, operation: 'get' });
    const found = this.#vaults.get(vault);
    if (found === undefined)
      throw new InvalidConfigError({ provider: this.name }, `unknown vault "${vault}"`);
    return this.#clientFor(found);
  }

  /** Where `key` lives: the vault and its Key Vault name, or `undefined` when no route takes it. */
  locate(key: string): { vault: string; vaultUrl: string; secretName: string } | undefined {
    const target = this.#target(this.validateKey(key), 'get', 'get');
    return target === undefined
      ? undefined
      : { vault: target.vault.id, vaultUrl: target.vault.url, secretName: target.name };
  }

  /**
   * Recovers a soft-deleted secret and waits until it can be read again.
   * Needs `secrets/recover`.
   */
  async recoverDeleted(rawKey: string, options: { signal?: AbortSignal | undefined } = {}): Promise<void> {
    const key = this.#open(rawKey, 'set');
    const target = this.#required(key, 'recover', 'set');
    const client = await this.#clientFor(target.vault);
    try {
      const poller = await client.beginRecoverDeletedSecret(target.name, {
        ...this.#requestOptions(options.signal),
        intervalInMs: this.#deletePollMs,
      });
      await poller.pollUntilDone(options.signal === undefined ? {} : { abortSignal: options.signal });
    } catch (error) {
      throw this.#fail(error, options.signal, { operation: 'set', action: 'recover', key, target });
    } finally {
      this.invalidate(key);
    }
  }

  /** Purges a soft-deleted secret for good, freeing its name. Needs `secrets/purge`. */
  async purgeDeleted(rawKey: string, options: { signal?: AbortSignal | undefined } = {}): Promise<void> {
    const key = this.#open(rawKey, 'delete');
    const target = this.#required(key, 'purge', 'delete');
    const client = await this.#clientFor(target.vault);
    try {
      await client.purgeDeletedSecret(target.name, this.#requestOptions(options.signal));
    } catch (error) {
      throw this.#fail(error, options.signal, { operation: 'delete', action: 'purge', key, target });
    }
  }

  // ---- hooks ---------------------------------------------------------------------------------

  protected override async readSecret(
    key: string,
    context: HookContext & { version?: string | undefined },
  ): Promise<StoredSecret | undefined> {
    const target = this.#target(key, 'get', 'get');
    if (target === undefined) return undefined;
    const client = await this.#clientFor(target.vault);
    let secret: KeyVaultSecret;
    try {
      secret = await client.getSecret(target.name, {
        ...this.#requestOptions(context.signal),
        ...(context.version === undefined ? {} : { version: context.version }),
      });
    } catch (error) {
      throw this.#fail(error, context.signal, { operation: 'get', action: 'get', key, target });
    }
    const properties = secret.properties;
    this.#checkSpelling(key, target, properties.name);
    const now = this.#now();
    const unusable = (reason: 'disabled' | 'expired' | 'not-yet-valid') =>
      new KeyVaultSecretUnusableError({
        provider: this.name,
        key,
        operation: 'get',
        reason,
        vault: target.vault.id,
        secretName: target.name,
        version: properties.version,
        expiresAt: properties.expiresOn,
        notBefore: properties.notBefore,
      });
    if (properties.enabled === false) throw unusable('disabled');
    if (
      this.#expired === 'reject' &&
      properties.expiresOn !== undefined &&
      properties.expiresOn.getTime() <= now
    ) {
      throw unusable('expired');
    }
    if (
      this.#notYetValid === 'reject' &&
      properties.notBefore !== undefined &&
      properties.notBefore.getTime() > now
    ) {
      throw unusable('not-yet-valid');
    }
    return { value: secret.value ?? '', metadata: metadataOf(properties) };
  }

  protected override async readMetadata(
    key: string,
    context: HookContext,
  ): Promise<Omit<SecretMetadata, 'key'> | undefined> {
    const target = this.#target(key, 'list', 'metadata');
    if (target === undefined) return undefined;
    const versions = await this.#versions(target, context.signal, 'metadata', key);
    const latest = latestOf(versions, undefined);
    return latest === undefined ? undefined : metadataOf(latest.properties);
  }

  protected override async writeSecret(
    key: string,
    value: string,
    context: HookContext & SetOptions,
  ): Promise<void> {
    if (context.ifVersion !== undefined) {
      // Key Vault has no conditional write: reading the version first would race with other
      // writers and promise a guarantee this adapter cannot give.
      throw new UnsupportedOperationError(
        { provider: this.name, key, operation: 'set' },
        `set with ifVersion is not supported for "${key}": Key Vault has no conditional writes`,
      );
    }
    const target = this.#required(key, 'set', 'set');
    const client = await this.#clientFor(target.vault);
    try {
      const written = await client.setSecret(target.name, value, {
        ...this.#requestOptions(context.signal),
        ...(context.contentType === undefined ? {} : { contentType: context.contentType }),
        ...(context.tags === undefined ? {} : { tags: { ...context.tags } }),
        ...(context.expiresAt === undefined ? {} : { expiresOn: context.expiresAt }),
      });
      this.#checkSpelling(key, target, written.properties.name);
    } catch (error) {
      throw this.#fail(error, context.signal, { operation: 'set', action: 'set', key, target });
    }
  }

  protected override async deleteSecret(key: string, context: HookContext): Promise<boolean> {
    const target = this.#target(key, 'delete', 'delete');
    if (target === undefined) return false;
    const client = await this.#clientFor(target.vault);
    let action: KeyVaultAction = 'delete';
    try {
      const poller = await client.beginDeleteSecret(target.name, {
        ...this.#requestOptions(context.signal),
        intervalInMs: this.#deletePollMs,
      });
      if (this.#deleteMode === 'purge') {
        await poller.pollUntilDone(context.signal === undefined ? {} : { abortSignal: context.signal });
        action = 'purge';
        await client.purgeDeletedSecret(target.name, this.#requestOptions(context.signal));
      }
      return true;
    } catch (error) {
      const mapped = this.#fail(error, context.signal, { operation: 'delete', action, key, target });
      if (action === 'delete' && isSecretError(mapped, 'NOT_FOUND')) return false;
      throw mapped;
    }
  }

  protected override async listKeys(
    context: HookContext & { prefix?: string | undefined },
  ): Promise<string[]> {
    const lists = await Promise.all(
      [...this.#vaults.values()].map((vault) => this.#list(vault, context.signal, 'keys')),
    );
    return lists.flatMap((listed) => [...listed.values()].map((entry) => entry.key));
  }

  protected override async startWatch(emit: EmitFunction): Promise<() => Promise<void>> {
    const controller = new AbortController();
    const signal = controller.signal;
    // Per vault: application key -> what the last successful list showed. A vault whose first
    // list failed has no baseline yet; its next successful list becomes one, without events.
    const state = new Map<string, Map<string, WatchEntry>>();
    const poll = async (): Promise<SecretError[]> => {
      const errors: SecretError[] = [];
      const removed: Array<{ key: string; version: string | undefined }> = [];
      const added: Array<{ key: string; version: string | undefined }> = [];
      const rotated: VersionChange[] = [];
      await Promise.all(
        [...this.#vaults.values()].map(async (vault) => {
          let listed: Map<string, Listed>;
          try {
            listed = await this.#list(vault, signal, 'watch');
          } catch (error) {
            errors.push(this.#toSecretError(error, 'watch'));
            return;
          }
          const previous = state.get(vault.id);
          const next = new Map<string, WatchEntry>();
          for (const entry of listed.values()) {
            const before = previous?.get(entry.key);
            if (before !== undefined && before.updated === entry.updated && !before.unsettled) {
              // The steady case: nothing changed and nothing is left to check.
              next.set(entry.key, before);
              continue;
            }
            const current: WatchEntry = {
              ...entry,
              version: before?.version,
              seen: before?.seen,
              unsettled: entry.updated !== undefined && this.#now() - entry.updated < this.#settleMs,
            };
            next.set(entry.key, current);
            const changed = before === undefined || before.updated !== entry.updated || before.unsettled;
            const needsVersion = previous === undefined ? current.unsettled : changed;
            if (!needsVersion) continue;
            try {
              const versions = await this.#versions({ vault, name: entry.name }, signal, 'watch', entry.key);
              const latest = latestOf(versions, before?.version, before?.seen)?.version;
              current.seen = new Set(versions.map((v) => v.version));
              if (previous === undefined) {
                current.version = latest;
              } else if (before === undefined) {
                current.version = latest;
                added.push({ key: entry.key, version: latest });
              } else {
                const old = before.version ?? asOf(versions, before.updated)?.version;
                current.version = latest;
                if (latest !== undefined && old !== latest) {
                  rotated.push({ key: entry.key, oldVersion: old, newVersion: latest });
                }
              }
            } catch (error) {
              errors.push(this.#toSecretError(error, 'watch', entry.key));
              // Keep what was known, and look again next time.
              current.unsettled = true;
              if (previous !== undefined && before === undefined) next.delete(entry.key);
            }
          }
          if (previous !== undefined) {
            for (const [key, entry] of previous)
              if (!next.has(key)) removed.push({ key, version: entry.version });
          }
          state.set(vault.id, next);
        }),
      );
      if (signal.aborted) return errors;
      const detectedAt = new Date();
      for (const { key, version } of removed)
        emit('removed', { provider: this.name, key, version, detectedAt });
      for (const { key, version } of added) emit('added', { provider: this.name, key, version, detectedAt });
      if (rotated.length > 0) {
        emit('rotated', {
          provider: this.name,
          keys: rotated.map((c) => c.key),
          changes: rotated,
          detectedAt,
        });
      }
      for (const error of errors) emit('error', { provider: this.name, error, key: error.key, detectedAt });
      return errors;
    };

    await poll();
    const loop = async () => {
      let failures = 0;
      // With jitter on, the first wait is anywhere in the interval: instances that started
      // together then poll at spread-out phases from the start, instead of drifting apart slowly.
      let first = this.#pollJitter > 0;
      while (!signal.aborted) {
        const wait = first
          ? this.#pollInterval * (1 - Math.random())
          : jittered(this.#pollInterval * 2 ** Math.min(failures, 5), this.#pollJitter);
        first = false;
        if (!(await sleep(wait, signal))) return;
        const errors = await poll();
        failures = errors.length > 0 ? failures + 1 : 0;
      }
    };
    const running = loop();
    return async () => {
      controller.abort();
      await running;
    };
  }

  protected override mapError(
    error: unknown,
    context: { operation: SecretOperation; key?: string | undefined },
  ): SecretError {
    return this.#toSecretError(error, context.operation, context.key);
  }

  protected override async onClose(): Promise<void> {
    this.#clients.clear();
  }

  // ---- output --------------------------------------------------------------------------------

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), vaults: this.vaults };
  }

  [INSPECT](): string {
    const vaults = [...this.#vaults.values()].map((v) => `${v.id}: ${v.url}`).join(', ');
    return `AzureKeyVaultProvider { name: ${JSON.stringify(this.name)}, vaults: { ${vaults} }${this.closed ? ', closed' : ''} }`;
  }

  // ---- internals -----------------------------------------------------------------------------

  #open(key: unknown, operation: SecretOperation): string {
    if (this.closed) throw new ProviderClosedError({ provider: this.name, operation });
    return this.validateKey(key);
  }

  #route(key: string): { vault: Vault; rest: string } | undefined {
    const explicit = this.#keyRoutes.get(key);
    if (explicit !== undefined) return { vault: this.#vaults.get(explicit) as Vault, rest: key };
    for (const rule of this.#prefixRoutes) {
      if (key.startsWith(rule.prefix)) {
        const rest = rule.stripPrefix ? key.slice(rule.prefix.length) : key;
        if (rest.length === 0) return undefined;
        return { vault: this.#vaults.get(rule.vault) as Vault, rest };
      }
    }
    return this.#defaultVault === undefined
      ? undefined
      : { vault: this.#vaults.get(this.#defaultVault) as Vault, rest: key };
  }

  /** The vault and Key Vault name of `key`, or `undefined` when no route takes it. */
  #target(key: string, action: KeyVaultAction, operation: SecretOperation): Target | undefined {
    const route = this.#route(key);
    if (route === undefined) return undefined;
    let name: string;
    try {
      name = this.#mapper.toVaultName(route.rest);
    } catch (error) {
      const reason = error instanceof Error ? error.message : 'cannot be mapped';
      throw new InvalidKeyError({ provider: this.name, key, operation }, `invalid key "${key}": ${reason}`);
    }
    if (typeof name !== 'string' || !KEY_VAULT_NAME_PATTERN.test(name)) {
      throw new InvalidKeyError(
        { provider: this.name, key, operation },
        `invalid key "${key}": the name mapper gave a name Key Vault does not allow`,
      );
    }
    const slot = `${route.vault.id}\u0000${name.toLowerCase()}`;
    const owner = this.#names.get(slot);
    if (owner === undefined) {
      this.#names.set(slot, key);
    } else if (owner !== key) {
      const collision = new KeyVaultNameCollisionError({
        provider: this.name,
        key,
        operation,
        vault: route.vault.id,
        secretName: name,
        keys: [owner, key],
      });
      // Writes would overwrite another key's secret: refuse. Reads of one secret under two
      // spellings are reported once.
      if (action === 'set' || action === 'delete' || action === 'purge' || action === 'recover')
        throw collision;
      this.#warn('NAME_COLLISION', collision.message, key);
    }
    return { vault: route.vault, name };
  }

  #required(key: string, action: KeyVaultAction, operation: SecretOperation): Target {
    const target = this.#target(key, action, operation);
    if (target === undefined) {
      throw new InvalidKeyError(
        { provider: this.name, key, operation },
        `invalid key "${key}": no vault is routed for it (add a route or a defaultVault)`,
      );
    }
    return target;
  }

  /**
   * The application key a listed name stands for in `vault`: the key, `undefined` when the name
   * belongs to another route (another vault's key), or `null` when it is not this mapper's
   * spelling of any key of this vault (reported by the caller).
   */
  #keyOf(vault: Vault, name: string): string | undefined | null {
    const slot = `${vault.id}\u0000${name}`;
    if (this.#keyOfCache.has(slot)) return this.#keyOfCache.get(slot);
    const found = this.#resolveKeyOf(vault, name);
    // Bounded: a vault holds at most a few thousand names; start over rather than grow.
    if (this.#keyOfCache.size >= 10_000) this.#keyOfCache.clear();
    this.#keyOfCache.set(slot, found);
    return found;
  }

  #resolveKeyOf(vault: Vault, name: string): string | undefined | null {
    const decoded = this.#mapper.fromVaultName(name);
    if (decoded === undefined) return null;
    const candidates = [decoded];
    for (const rule of this.#prefixRoutes) {
      if (rule.vault === vault.id && rule.stripPrefix) candidates.push(rule.prefix + decoded);
    }
    const matches: string[] = [];
    let routedHere = false;
    for (const key of candidates) {
      const route = this.#route(key);
      if (route?.vault !== vault) continue;
      routedHere = true;
      let canonical: string;
      try {
        canonical = this.#mapper.toVaultName(route.rest);
      } catch {
        continue;
      }
      if (canonical.toLowerCase() === name.toLowerCase()) matches.push(key);
    }
    if (matches.length > 1) {
      this.#warn(
        'NAME_COLLISION',
        `Key Vault name "${name}" in vault "${vault.id}" reads as ${matches.map((m) => `"${m}"`).join(' and ')}; left out of keys()`,
      );
      return undefined;
    }
    // A name that reads as a key of this vault whose own name is different (two names for one
    // key) is not listed under either: it is reported instead.
    return matches[0] ?? (routedHere ? null : undefined);
  }

  /** Lists a vault's secrets (properties only), as application keys. */
  async #list(
    vault: Vault,
    signal: AbortSignal | undefined,
    operation: SecretOperation,
  ): Promise<Map<string, Listed>> {
    const client = await this.#clientFor(vault);
    const found = new Map<string, Listed>();
    const names = new Map<string, string>();
    try {
      const pages = client.listPropertiesOfSecrets(this.#requestOptions(signal)).byPage({ maxPageSize: 25 });
      for await (const page of pages) {
        throwIfAborted(signal);
        for (const properties of page) {
          if (properties.enabled === false && !this.#includeDisabled) continue;
          if (properties.managed === true && !this.#includeManaged) continue;
          const key = this.#keyOf(vault, properties.name);
          if (key === null) {
            this.#warn(
              'NAME_UNMAPPED',
              `Key Vault name "${properties.name}" in vault "${vault.id}" does not map back to a key; left out of keys()`,
            );
            continue;
          }
          if (key === undefined) continue;
          const other = names.get(key);
          if (other !== undefined) {
            this.#warn(
              'NAME_COLLISION',
              `Key Vault names "${other}" and "${properties.name}" in vault "${vault.id}" both read as key "${key}"; left out of keys()`,
              key,
            );
            found.delete(key);
            continue;
          }
          names.set(key, properties.name);
          found.set(key, { key, name: properties.name, updated: properties.updatedOn?.getTime() });
        }
      }
    } catch (error) {
      throw this.#fail(error, signal, { operation, action: 'list', target: { vault, name: '' } });
    }
    return found;
  }

  /** Every version of a secret, properties only. */
  async #versions(
    target: Target,
    signal: AbortSignal | undefined,
    operation: SecretOperation,
    key: string,
  ): Promise<VersionInfo[]> {
    const client = await this.#clientFor(target.vault);
    const versions: VersionInfo[] = [];
    try {
      const pages = client
        .listPropertiesOfSecretVersions(target.name, this.#requestOptions(signal))
        .byPage({ maxPageSize: 25 });
      for await (const page of pages) {
        throwIfAborted(signal);
        for (const properties of page) {
          if (properties.version === undefined) continue;
          versions.push({
            version: properties.version,
            created: properties.createdOn?.getTime() ?? 0,
            properties,
          });
        }
      }
    } catch (error) {
      throw this.#fail(error, signal, { operation, action: 'list', key, target });
    }
    return versions;
  }

  #clientFor(vault: Vault): Promise<SecretClient> {
    let client = this.#clients.get(vault.id);
    if (client === undefined) {
      client = this.#createClient(vault);
      this.#clients.set(vault.id, client);
      client.catch(() => {
        if (this.#clients.get(vault.id) === client) this.#clients.delete(vault.id);
      });
    }
    return client;
  }

  async #createClient(vault: Vault): Promise<SecretClient> {
    if (vault.connection.client !== undefined) return vault.connection.client;
    const { SecretClient } = await loadSecretsModule(this.name);
    const credential =
      vault.connection.credential ?? this.#credential ?? (await this.#sharedDefaultCredential());
    return new SecretClient(vault.url, credential, vault.connection.clientOptions ?? {});
  }

  #sharedDefaultCredential(): Promise<TokenCredential> {
    this.#defaultCredential ??= createDefaultCredential(this.name).catch((error: unknown) => {
      this.#defaultCredential = undefined;
      throw error;
    });
    return this.#defaultCredential;
  }

  #requestOptions(signal: AbortSignal | undefined): {
    abortSignal?: AbortSignal;
    requestOptions: { timeout: number };
  } {
    return signal === undefined
      ? { requestOptions: { timeout: this.#timeoutMs } }
      : { abortSignal: signal, requestOptions: { timeout: this.#timeoutMs } };
  }

  /** Maps a failure; an aborted caller gets its own abort reason back. */
  #fail(
    error: unknown,
    signal: AbortSignal | undefined,
    context: { operation: SecretOperation; action: KeyVaultAction; key?: string | undefined; target: Target },
  ): unknown {
    if (signal?.aborted) return signal.reason;
    return mapKeyVaultError(error, {
      provider: this.name,
      operation: context.operation,
      action: context.action,
      key: context.key,
      vault: context.target.vault.id,
      secretName: context.target.name === '' ? undefined : context.target.name,
    });
  }

  #toSecretError(error: unknown, operation: SecretOperation, key?: string): SecretError {
    return mapKeyVaultError(error, {
      provider: this.name,
      operation,
      action: operation === 'watch' || operation === 'keys' || operation === 'metadata' ? 'list' : 'get',
      key,
    });
  }

  /** Key Vault ignores case: the stored spelling may belong to another key. */
  #checkSpelling(key: string, target: Target, stored: string): void {
    if (stored === target.name || stored.toLowerCase() !== target.name.toLowerCase()) return;
    const canonical = this.#keyOf(target.vault, stored);
    if (typeof canonical === 'string' && canonical !== key) {
      this.#warn(
        'NAME_COLLISION',
        `key "${key}" reads Key Vault secret "${stored}" in vault "${target.vault.id}", which keys() lists as "${canonical}" (Key Vault names ignore case)`,
        key,
      );
    }
  }

  #warn(code: string, message: string, key?: string): void {
    const once = `${code}\u0000${message}`;
    if (this.#warned.has(once)) return;
    this.#warned.add(once);
    const warning: WarningEvent = { provider: this.name, code, message, key, detectedAt: new Date() };
    this.emit('warning', warning);
    if (this.#onWarning !== undefined) this.#onWarning(warning);
    else process.emitWarning(message, { code: `SECRET_PROVIDER_AZURE_${code}` });
  }
}

function vaultUrlOf(connection: KeyVaultConnectionOptions, id: string, provider: string): string {
  const raw = connection.vaultUrl ?? connection.client?.vaultUrl;
  if (raw === undefined) {
    throw new InvalidConfigError(
      { provider },
      `invalid configuration: vault "${id}" needs a vaultUrl or a client`,
    );
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvalidConfigError({ provider }, `invalid configuration: vault "${id}" has an invalid URL`);
  }
  if (url.protocol !== 'https:' && connection.clientOptions?.allowInsecureConnection !== true) {
    throw new InvalidConfigError({ provider }, `invalid configuration: vault "${id}" must use https`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new InvalidConfigError(
      { provider },
      `invalid configuration: vault "${id}" URL must not hold credentials`,
    );
  }
  return url.origin;
}

function metadataOf(properties: SecretProperties): Omit<SecretMetadata, 'key'> {
  return {
    version: properties.version,
    createdAt: properties.createdOn,
    updatedAt: properties.updatedOn,
    expiresAt: properties.expiresOn,
    contentType: properties.contentType,
    tags: properties.tags === undefined ? undefined : Object.freeze({ ...properties.tags }),
    enabled: properties.enabled,
  };
}

/**
 * The current version. Key Vault stamps creation in whole seconds, so several versions can share
 * the latest stamp. Among those, a version `seen` in no earlier listing is newer than every
 * version that was; with none new, the `known` current version stays current; otherwise the
 * last listed wins (Key Vault lists versions in creation order).
 */
function latestOf(
  versions: readonly VersionInfo[],
  known: string | undefined,
  seen?: ReadonlySet<string>,
): VersionInfo | undefined {
  let newest = Number.NEGATIVE_INFINITY;
  for (const v of versions) newest = Math.max(newest, v.created);
  const group = versions.filter((v) => v.created === newest);
  if (group.length <= 1) return group[0];
  const fresh = seen === undefined ? [] : group.filter((v) => !seen.has(v.version));
  if (fresh.length > 0) return fresh.at(-1);
  return group.find((v) => v.version === known) ?? group.at(-1);
}

/** The version that was current when the list showed `updated` (epoch ms, whole seconds). */
function asOf(versions: readonly VersionInfo[], updated: number | undefined): VersionInfo | undefined {
  if (updated === undefined) return undefined;
  return latestOf(
    versions.filter((v) => v.created <= updated),
    undefined,
  );
}
