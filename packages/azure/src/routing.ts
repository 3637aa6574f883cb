// Which vault holds a key, under which Key Vault name, and back: the routes, the name mapper and
// the collisions Key Vault's case-insensitive names cause.
import {
  InvalidConfigError,
  InvalidKeyError,
  isSecretError,
  type SecretOperation,
} from '@secret-provider/core';
import { type KeyVaultAction, KeyVaultNameCollisionError } from './errors.js';
import { defaultNameMapper, KEY_VAULT_NAME_PATTERN, type KeyVaultNameMapper } from './names.js';
import {
  type AzureKeyVaultProviderOptions,
  DEFAULT_VAULT,
  type KeyVaultConnectionOptions,
  type KeyVaultPrefixRoute,
} from './options.js';

/** One configured vault. */
export interface Vault {
  readonly id: string;
  /** The vault's origin, `https://<name>.vault.azure.net`. */
  readonly url: string;
  readonly connection: KeyVaultConnectionOptions;
}

/** Where one key lives. */
export interface Target {
  readonly vault: Vault;
  readonly name: string;
}

/** Reports a warning once (see the provider's `onWarning`). */
export type Warn = (code: string, message: string, key?: string) => void;

const WRITES: ReadonlySet<KeyVaultAction> = new Set(['set', 'delete', 'purge', 'recover']);

/** The vaults, the routes and the name mapper of one provider. */
export class KeyVaultRouter {
  readonly vaults: ReadonlyMap<string, Vault>;
  /** The vault of keys no other rule takes, if any. */
  readonly defaultVault: string | undefined;
  readonly #provider: string;
  readonly #keyRoutes: ReadonlyMap<string, string>;
  readonly #prefixRoutes: readonly KeyVaultPrefixRoute[];
  readonly #mapper: KeyVaultNameMapper;
  readonly #warn: Warn;
  /** `vault \0 lower-case name` -> the application key first seen for it. */
  readonly #names = new Map<string, string>();
  /** `vault \0 name` -> what {@link keyOf} found; names are stable, mappers pure. */
  readonly #keyOfCache = new Map<string, string | undefined | null>();

  constructor(options: AzureKeyVaultProviderOptions, provider: string, warn: Warn) {
    this.#provider = provider;
    this.#warn = warn;
    const vaults = new Map<string, Vault>();
    const add = (id: string, connection: KeyVaultConnectionOptions) => {
      if (vaults.has(id)) throw new InvalidConfigError({ provider }, `vault "${id}" is configured twice`);
      vaults.set(id, { id, url: vaultUrlOf(connection, id, provider), connection: { ...connection } });
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
        { provider },
        'invalid configuration: give a vaultUrl, a client, or vaults',
      );
    }
    this.vaults = vaults;
    const known = (vault: string, where: string) => {
      if (!vaults.has(vault)) {
        throw new InvalidConfigError(
          { provider },
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
    this.defaultVault =
      routes.defaultVault !== undefined
        ? known(routes.defaultVault, 'defaultVault')
        : vaults.size === 1
          ? [...vaults.keys()][0]
          : vaults.has(DEFAULT_VAULT)
            ? DEFAULT_VAULT
            : undefined;
    this.#mapper = options.nameMapper ?? defaultNameMapper;
    // Explicit routes are known keys: two of them on one Key Vault name is a configuration error.
    for (const key of this.#keyRoutes.keys()) {
      try {
        this.target(key, 'set', 'set');
      } catch (error) {
        if (isSecretError(error)) {
          throw new InvalidConfigError(
            { provider, key, cause: error },
            `invalid configuration: ${error.message}`,
          );
        }
        throw error;
      }
    }
  }

  /** The vault and Key Vault name of `key`, or `undefined` when no route takes it. */
  target(key: string, action: KeyVaultAction, operation: SecretOperation): Target | undefined {
    const route = this.#route(key);
    if (route === undefined) return undefined;
    let name: string;
    try {
      name = this.#mapper.toVaultName(route.rest);
    } catch (error) {
      const reason = error instanceof Error ? error.message : 'cannot be mapped';
      throw new InvalidKeyError(
        { provider: this.#provider, key, operation },
        `invalid key "${key}": ${reason}`,
      );
    }
    if (typeof name !== 'string' || !KEY_VAULT_NAME_PATTERN.test(name)) {
      throw new InvalidKeyError(
        { provider: this.#provider, key, operation },
        `invalid key "${key}": the name mapper gave a name Key Vault does not allow`,
      );
    }
    const slot = `${route.vault.id}\u0000${name.toLowerCase()}`;
    const owner = this.#names.get(slot);
    if (owner === undefined) {
      this.#names.set(slot, key);
    } else if (owner !== key) {
      const collision = new KeyVaultNameCollisionError({
        provider: this.#provider,
        key,
        operation,
        vault: route.vault.id,
        secretName: name,
        keys: [owner, key],
      });
      // Writes would overwrite another key's secret: refuse. Reads of one secret under two
      // spellings are reported once.
      if (WRITES.has(action)) throw collision;
      this.#warn('NAME_COLLISION', collision.message, key);
    }
    return { vault: route.vault, name };
  }

  /** {@link target}, or `INVALID_KEY` when no route takes `key` (writes). */
  required(key: string, action: KeyVaultAction, operation: SecretOperation): Target {
    const target = this.target(key, action, operation);
    if (target === undefined) {
      throw new InvalidKeyError(
        { provider: this.#provider, key, operation },
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
  keyOf(vault: Vault, name: string): string | undefined | null {
    const slot = `${vault.id}\u0000${name}`;
    if (this.#keyOfCache.has(slot)) return this.#keyOfCache.get(slot);
    const found = this.#resolveKeyOf(vault, name);
    // Bounded: a vault holds at most a few thousand names; start over rather than grow.
    if (this.#keyOfCache.size >= 10_000) this.#keyOfCache.clear();
    this.#keyOfCache.set(slot, found);
    return found;
  }

  /** Key Vault ignores case: the stored spelling may belong to another key. */
  checkSpelling(key: string, target: Target, stored: string): void {
    if (stored === target.name || stored.toLowerCase() !== target.name.toLowerCase()) return;
    const canonical = this.keyOf(target.vault, stored);
    if (typeof canonical === 'string' && canonical !== key) {
      this.#warn(
        'NAME_COLLISION',
        `key "${key}" reads Key Vault secret "${stored}" in vault "${target.vault.id}", which keys() lists as "${canonical}" (Key Vault names ignore case)`,
        key,
      );
    }
  }

  #route(key: string): { vault: Vault; rest: string } | undefined {
    const explicit = this.#keyRoutes.get(key);
    if (explicit !== undefined) return { vault: this.vaults.get(explicit) as Vault, rest: key };
    for (const rule of this.#prefixRoutes) {
      if (key.startsWith(rule.prefix)) {
        const rest = rule.stripPrefix ? key.slice(rule.prefix.length) : key;
        if (rest.length === 0) return undefined;
        return { vault: this.vaults.get(rule.vault) as Vault, rest };
      }
    }
    return this.defaultVault === undefined
      ? undefined
      : { vault: this.vaults.get(this.defaultVault) as Vault, rest: key };
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
