// Reads: the value of one version, checked, and refused while the secret may not be used
// (disabled, expired, not yet valid); metadata from the versions listing, without the value.
import type { KeyVaultSecret } from '@azure/keyvault-secrets';
import type { SecretMetadata } from '@secret-provider/core';
import type { StoredSecret } from '@secret-provider/core/adapter';
import { failure, type KeyVaultContext } from './context.js';
import { KeyVaultSecretUnusableError } from './errors.js';
import { listVersions } from './listing.js';
import { checkedSecret, latestOf, metadataOf } from './properties.js';
import type { Target } from './routing.js';

/** What `get` does with secrets Key Vault serves but that should not be used now. */
export interface UsePolicy {
  readonly expired: 'reject' | 'allow';
  readonly notYetValid: 'reject' | 'allow';
}

/** The latest version of `target`, or `version`; rejects when it may not be used. */
export async function readValue(
  context: KeyVaultContext,
  key: string,
  target: Target,
  options: { readonly version?: string | undefined; readonly signal?: AbortSignal | undefined },
  policy: UsePolicy,
): Promise<StoredSecret> {
  const client = await context.clients.get(target.vault);
  let value: string;
  let properties: KeyVaultSecret['properties'];
  try {
    const secret = await client.getSecret(target.name, {
      ...context.clients.requestOptions(options.signal),
      ...(options.version === undefined ? {} : { version: options.version }),
    });
    ({ value, properties } = checkedSecret(secret, { name: target.name, version: options.version }));
  } catch (error) {
    throw failure(context, error, options.signal, { operation: 'get', action: 'get', key, target });
  }
  context.router.checkSpelling(key, target, properties.name);
  const now = context.clock.now();
  const unusable = (reason: 'disabled' | 'expired' | 'not-yet-valid') =>
    new KeyVaultSecretUnusableError({
      provider: context.provider,
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
    policy.expired === 'reject' &&
    properties.expiresOn !== undefined &&
    properties.expiresOn.getTime() <= now
  ) {
    throw unusable('expired');
  }
  if (
    policy.notYetValid === 'reject' &&
    properties.notBefore !== undefined &&
    properties.notBefore.getTime() > now
  ) {
    throw unusable('not-yet-valid');
  }
  return { value, metadata: metadataOf(properties) };
}

/** Metadata of the latest version from the versions listing (needs `secrets/list`, reads no value). */
export async function readLatestMetadata(
  context: KeyVaultContext,
  key: string,
  target: Target,
  signal: AbortSignal | undefined,
): Promise<Omit<SecretMetadata, 'key'> | undefined> {
  const versions = await listVersions(context, target, signal, 'metadata', key);
  const latest = latestOf(versions, undefined);
  return latest === undefined ? undefined : metadataOf(latest.properties);
}
