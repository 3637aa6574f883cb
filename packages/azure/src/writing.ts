// Writes: a new version with its properties, soft delete (and purge), and the recovery and purge
// of deleted secrets. Key Vault has no conditional write: `ifVersion` never reaches here (the
// provider does not declare `checkAndSet`, so the base refuses it).
import { isSecretError, type SetOptions } from '@secret-provider/core';
import { failure, type KeyVaultContext } from './context.js';
import type { KeyVaultAction } from './errors.js';
import { checkedProperties } from './properties.js';
import type { Target } from './routing.js';

/** Creates a new version of `target` with `value` and the properties in `options`. */
export async function writeValue(
  context: KeyVaultContext,
  key: string,
  target: Target,
  value: string,
  options: SetOptions,
): Promise<void> {
  const client = await context.clients.get(target.vault);
  let stored: string;
  try {
    const written = await client.setSecret(target.name, value, {
      ...context.clients.requestOptions(options.signal),
      ...(options.contentType === undefined ? {} : { contentType: options.contentType }),
      ...(options.tags === undefined ? {} : { tags: { ...options.tags } }),
      ...(options.expiresAt === undefined ? {} : { expiresOn: options.expiresAt }),
    });
    stored = checkedProperties(written.properties, { name: target.name, version: 'required' }).name;
  } catch (error) {
    throw failure(context, error, options.signal, { operation: 'set', action: 'set', key, target });
  }
  context.router.checkSpelling(key, target, stored);
}

/**
 * Deletes `target`: soft delete, or with `purge` waits for the deletion and purges it.
 * Resolves `false` when there was nothing to delete.
 */
export async function deleteValue(
  context: KeyVaultContext,
  key: string,
  target: Target,
  options: { readonly signal?: AbortSignal | undefined; readonly purge: boolean; readonly pollMs: number },
): Promise<boolean> {
  const client = await context.clients.get(target.vault);
  let action: KeyVaultAction = 'delete';
  try {
    const poller = await client.beginDeleteSecret(target.name, {
      ...context.clients.requestOptions(options.signal),
      intervalInMs: options.pollMs,
    });
    if (options.purge) {
      await poller.pollUntilDone(options.signal === undefined ? {} : { abortSignal: options.signal });
      action = 'purge';
      await client.purgeDeletedSecret(target.name, context.clients.requestOptions(options.signal));
    }
    return true;
  } catch (error) {
    const mapped = failure(context, error, options.signal, { operation: 'delete', action, key, target });
    if (action === 'delete' && isSecretError(mapped, 'NOT_FOUND')) return false;
    throw mapped;
  }
}

/** Recovers a soft-deleted secret and waits until it can be read again. */
export async function recoverValue(
  context: KeyVaultContext,
  key: string,
  target: Target,
  options: { readonly signal?: AbortSignal | undefined; readonly pollMs: number },
): Promise<void> {
  const client = await context.clients.get(target.vault);
  try {
    const poller = await client.beginRecoverDeletedSecret(target.name, {
      ...context.clients.requestOptions(options.signal),
      intervalInMs: options.pollMs,
    });
    await poller.pollUntilDone(options.signal === undefined ? {} : { abortSignal: options.signal });
  } catch (error) {
    throw failure(context, error, options.signal, { operation: 'set', action: 'recover', key, target });
  }
}

/** Purges a soft-deleted secret for good. */
export async function purgeValue(
  context: KeyVaultContext,
  key: string,
  target: Target,
  signal: AbortSignal | undefined,
): Promise<void> {
  const client = await context.clients.get(target.vault);
  try {
    await client.purgeDeletedSecret(target.name, context.clients.requestOptions(signal));
  } catch (error) {
    throw failure(context, error, signal, { operation: 'delete', action: 'purge', key, target });
  }
}
