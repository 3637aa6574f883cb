import { isSecretError } from './errors.js';
import type { OperationOptions, SecretProvider } from './types.js';

/**
 * Whether `provider` holds `key`: its own `has` when it has one, else derived from `get` (a
 * `NOT_FOUND` is `false`; any other failure rejects, so an outage is never taken for "missing").
 */
export async function hasKey(
  provider: SecretProvider,
  key: string,
  options?: OperationOptions,
): Promise<boolean> {
  if (typeof provider.has === 'function') return provider.has(key, options);
  try {
    await provider.get(key, options);
    return true;
  } catch (error) {
    if (isSecretError(error, 'NOT_FOUND')) return false;
    throw error;
  }
}
