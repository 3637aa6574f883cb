import type { SecretClient } from '@azure/keyvault-secrets';
import {
  InvalidConfigError,
  ProviderClosedError,
  type SecretError,
  type SecretMetadata,
  type SecretOperation,
  type SetOptions,
  type WarningEvent,
} from '@secret-provider/core';
import {
  BaseProvider,
  type Clock,
  type EmitFunction,
  type HookContext,
  type StoredSecret,
  systemClock,
} from '@secret-provider/core/adapter';
import { VaultClients } from './clients.js';
import type { KeyVaultContext } from './context.js';
import { mapKeyVaultError } from './error-mapping.js';
import { listVault } from './listing.js';
import { type AzureKeyVaultProviderOptions, DEFAULT_VAULT, PROVIDER_NAME } from './options.js';
import { readLatestMetadata, readValue, type UsePolicy } from './reading.js';
import { KeyVaultRouter } from './routing.js';
import { startKeyVaultWatch } from './watching.js';
import { deleteValue, purgeValue, recoverValue, writeValue } from './writing.js';

const INSPECT: unique symbol = Symbol.for('nodejs.util.inspect.custom') as never;

/**
 * Azure Key Vault secrets, from one vault or several routed by key.
 *
 * - **Lazy**: the Azure SDK loads on the first call that needs it, not on import.
 * - **Names**: application keys map to Key Vault names and back ({@link defaultNameMapper}:
 *   `DATABASE_URL` <-> `DATABASE-URL`); collisions are reported, never merged silently.
 * - **Reads**: latest or a given version; disabled, expired and not-yet-valid secrets reject
 *   with {@link KeyVaultSecretUnusableError}; content type and tags are metadata. An answer that
 *   cannot be understood (no value, not JSON, broken ids) is `UNAVAILABLE`, never an empty value.
 * - **Rotation without values**: `metadata` and `watch` read properties only; the watch polls
 *   the list with jitter and lists the versions of changed secrets only.
 * - **Errors**: typed, with the missing permission named; the SDK's `RestError` (which holds the
 *   bearer token and, on writes, the value) never escapes, nor any text the server wrote. No
 *   retries on top of the SDK's.
 * - **Cache**: on by default (`cache: true`: core's defaults, one hour with jitter);
 *   `cache: false` turns it off; `cacheStats()` counts.
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
  readonly #router: KeyVaultRouter;
  readonly #clients: VaultClients;
  readonly #context: KeyVaultContext;
  readonly #use: UsePolicy;
  readonly #deleteMode: 'soft' | 'purge';
  readonly #deletePollMs: number;
  readonly #settleMs: number;
  readonly #onWarning: ((warning: WarningEvent) => void) | undefined;
  readonly #warned = new Set<string>();

  constructor(options: AzureKeyVaultProviderOptions) {
    super({
      ...options,
      name: options.name ?? PROVIDER_NAME,
      cache: options.cache ?? true,
      clock: options.clock ?? clockOf(options.now),
      capabilities: { versions: true, expiry: true, tags: true, contentType: true },
    });
    this.#onWarning = options.onWarning;
    const warn = (code: string, message: string, key?: string) => this.#warn(code, message, key);
    this.#router = new KeyVaultRouter(options, this.name, warn);
    this.#clients = new VaultClients(this.name, options.credential, options.requestTimeoutMs ?? 30_000);
    this.#context = {
      provider: this.name,
      router: this.#router,
      clients: this.#clients,
      clock: this.clock,
      includeDisabled: options.includeDisabled ?? false,
      includeManaged: options.includeManaged ?? false,
      warn,
    };
    this.#use = { expired: options.expired ?? 'reject', notYetValid: options.notYetValid ?? 'reject' };
    this.#deleteMode = options.deleteMode ?? 'soft';
    this.#deletePollMs = options.deletePollIntervalMs ?? 1000;
    this.#settleMs = options.settleWindowMs ?? 60_000;
  }

  /** The configured vaults, name -> URL. */
  get vaults(): Readonly<Record<string, string>> {
    return Object.fromEntries([...this.#router.vaults.values()].map((v) => [v.id, v.url]));
  }

  /**
   * The native `SecretClient` of a vault (loading the SDK if needed), for what this provider
   * does not cover (backups, certificates' secrets, …). Errors it throws are the SDK's own:
   * sanitize them before logging (they carry the request).
   */
  async client(
    vault: string = this.#router.defaultVault ?? [...this.#router.vaults.keys()][0] ?? DEFAULT_VAULT,
  ): Promise<SecretClient> {
    if (this.closed) throw new ProviderClosedError({ provider: this.name, operation: 'get' });
    const found = this.#router.vaults.get(vault);
    if (found === undefined)
      throw new InvalidConfigError({ provider: this.name }, `unknown vault "${vault}"`);
    return this.#clients.get(found);
  }

  /** Where `key` lives: the vault and its Key Vault name, or `undefined` when no route takes it. */
  locate(key: string): { vault: string; vaultUrl: string; secretName: string } | undefined {
    const target = this.#router.target(this.validateKey(key), 'get', 'get');
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
    const target = this.#router.required(key, 'recover', 'set');
    try {
      await recoverValue(this.#context, key, target, { signal: options.signal, pollMs: this.#deletePollMs });
    } finally {
      this.invalidate(key);
    }
  }

  /** Purges a soft-deleted secret for good, freeing its name. Needs `secrets/purge`. */
  async purgeDeleted(rawKey: string, options: { signal?: AbortSignal | undefined } = {}): Promise<void> {
    const key = this.#open(rawKey, 'delete');
    const target = this.#router.required(key, 'purge', 'delete');
    await purgeValue(this.#context, key, target, options.signal);
  }

  // ---- hooks ---------------------------------------------------------------------------------

  protected override async readSecret(
    key: string,
    context: HookContext & { version?: string | undefined },
  ): Promise<StoredSecret | undefined> {
    const target = this.#router.target(key, 'get', 'get');
    if (target === undefined) return undefined;
    return readValue(this.#context, key, target, context, this.#use);
  }

  protected override async readMetadata(
    key: string,
    context: HookContext,
  ): Promise<Omit<SecretMetadata, 'key'> | undefined> {
    const target = this.#router.target(key, 'list', 'metadata');
    if (target === undefined) return undefined;
    return readLatestMetadata(this.#context, key, target, context.signal);
  }

  protected override async writeSecret(
    key: string,
    value: string,
    context: HookContext & SetOptions,
  ): Promise<void> {
    const target = this.#router.required(key, 'set', 'set');
    await writeValue(this.#context, key, target, value, context);
  }

  protected override async deleteSecret(key: string, context: HookContext): Promise<boolean> {
    const target = this.#router.target(key, 'delete', 'delete');
    if (target === undefined) return false;
    return deleteValue(this.#context, key, target, {
      signal: context.signal,
      purge: this.#deleteMode === 'purge',
      pollMs: this.#deletePollMs,
    });
  }

  protected override async listKeys(context: HookContext): Promise<string[]> {
    const lists = await Promise.all(
      [...this.#router.vaults.values()].map((vault) =>
        listVault(this.#context, vault, context.signal, 'keys'),
      ),
    );
    return lists.flatMap((listed) => [...listed.values()].map((entry) => entry.key));
  }

  protected override startWatch(emit: EmitFunction): Promise<() => Promise<void>> {
    return startKeyVaultWatch(this.#context, emit, {
      settleMs: this.#settleMs,
      createPoller: (task, onError) => this.createPoller(task, {}, onError),
    });
  }

  protected override mapError(
    error: unknown,
    context: { operation: SecretOperation; key?: string | undefined },
  ): SecretError {
    const { operation } = context;
    return mapKeyVaultError(error, {
      provider: this.name,
      operation,
      action: operation === 'watch' || operation === 'keys' || operation === 'metadata' ? 'list' : 'get',
      key: context.key,
      clock: this.clock,
    });
  }

  protected override async onClose(): Promise<void> {
    this.#clients.clear();
  }

  // ---- output --------------------------------------------------------------------------------

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), vaults: this.vaults };
  }

  [INSPECT](): string {
    const vaults = [...this.#router.vaults.values()].map((v) => `${v.id}: ${v.url}`).join(', ');
    return `AzureKeyVaultProvider { name: ${JSON.stringify(this.name)}, vaults: { ${vaults} }${this.closed ? ', closed' : ''} }`;
  }

  // ---- internals -----------------------------------------------------------------------------

  #open(key: unknown, operation: SecretOperation): string {
    if (this.closed) throw new ProviderClosedError({ provider: this.name, operation });
    return this.validateKey(key);
  }

  #warn(code: string, message: string, key?: string): void {
    const once = `${code}\u0000${message}`;
    if (this.#warned.has(once)) return;
    this.#warned.add(once);
    const warning: WarningEvent = {
      provider: this.name,
      code,
      message,
      key,
      detectedAt: new Date(this.clock.now()),
    };
    this.emit('warning', warning);
    if (this.#onWarning !== undefined) this.#onWarning(warning);
    else process.emitWarning(message, { code: `SECRET_PROVIDER_AZURE_${code}` });
  }
}

/** The deprecated `now` option as a clock: its time, the system's timers. */
function clockOf(now: (() => number) | undefined): Clock | undefined {
  if (now === undefined) return undefined;
  return { now, setTimer: (callback, delayMs, options) => systemClock.setTimer(callback, delayMs, options) };
}
