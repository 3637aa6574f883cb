// Lists of properties, never values: a vault's secrets (as application keys) and one secret's
// versions. Each page is checked before it is believed.
import type { SecretProperties } from '@azure/keyvault-secrets';
import type { SecretOperation } from '@secret-provider/core';
import { throwIfAborted } from '@secret-provider/core/adapter';
import { failure, type KeyVaultContext } from './context.js';
import { checkedProperties, type VersionInfo } from './properties.js';
import type { Target, Vault } from './routing.js';

/** A listed secret. */
export interface Listed {
  readonly key: string;
  readonly name: string;
  /** `updated` of the latest version, epoch ms (Key Vault keeps whole seconds). */
  readonly updated: number | undefined;
}

const PAGE = { maxPageSize: 25 };

/** A vault's secrets as application keys (disabled and managed ones as configured). */
export async function listVault(
  context: KeyVaultContext,
  vault: Vault,
  signal: AbortSignal | undefined,
  operation: SecretOperation,
): Promise<Map<string, Listed>> {
  const client = await context.clients.get(vault);
  const all: SecretProperties[] = [];
  try {
    const pages = client.listPropertiesOfSecrets(context.clients.requestOptions(signal)).byPage(PAGE);
    for await (const page of pages) {
      throwIfAborted(signal);
      for (const properties of page) all.push(checkedProperties(properties, { version: 'any' }));
    }
  } catch (error) {
    throw failure(context, error, signal, { operation, action: 'list', target: { vault, name: '' } });
  }
  const found = new Map<string, Listed>();
  const names = new Map<string, string>();
  for (const properties of all) {
    if (properties.enabled === false && !context.includeDisabled) continue;
    if (properties.managed === true && !context.includeManaged) continue;
    const key = context.router.keyOf(vault, properties.name);
    if (key === null) {
      context.warn(
        'NAME_UNMAPPED',
        `Key Vault name "${properties.name}" in vault "${vault.id}" does not map back to a key; left out of keys()`,
      );
      continue;
    }
    if (key === undefined) continue;
    const other = names.get(key);
    if (other !== undefined) {
      context.warn(
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
  return found;
}

/** Every version of a secret, properties only. */
export async function listVersions(
  context: KeyVaultContext,
  target: Target,
  signal: AbortSignal | undefined,
  operation: SecretOperation,
  key: string,
): Promise<VersionInfo[]> {
  const client = await context.clients.get(target.vault);
  const versions: VersionInfo[] = [];
  try {
    const pages = client
      .listPropertiesOfSecretVersions(target.name, context.clients.requestOptions(signal))
      .byPage(PAGE);
    for await (const page of pages) {
      throwIfAborted(signal);
      for (const listed of page) {
        const properties = checkedProperties(listed, { name: target.name, version: 'required' });
        versions.push({
          version: properties.version as string,
          created: properties.createdOn?.getTime() ?? 0,
          properties,
        });
      }
    }
  } catch (error) {
    throw failure(context, error, signal, { operation, action: 'list', key, target });
  }
  return versions;
}
