import { isSecretError, UnsupportedOperationError } from './errors.js';
import type { Secret } from './secret.js';
import type { GetOptions, SecretProvider } from './types.js';
import {
  DEFAULT_GET_MANY_CONCURRENCY,
  mapBounded,
  raceSignal,
  throwIfAborted,
  uniqueKeys,
  validateKey,
} from './util.js';

/** Options of {@link getMany}. */
export interface GetManyOptions extends GetOptions {
  /**
   * For a provider without its own `getMany`: how many `get`s run at once.
   * @default 8
   */
  readonly concurrency?: number | undefined;
}

/**
 * The values of several keys from any provider: its own `getMany` when it has one (a batch read
 * where the backend has one), else concurrent `get`s, at most `concurrency` at a time. Resolves a
 * map of the keys that exist, in the order asked; a missing key is absent, any other failure
 * rejects. Duplicate keys are read once.
 *
 * Without the provider's own `getMany`, keys are checked by the rules every provider shares
 * (strings, not empty, no control characters) before any read; a provider's stricter rules
 * surface as its `get`'s `INVALID_KEY`.
 *
 * @example
 * ```ts
 * const found = await getMany(chain, ['DATABASE_URL', 'API_TOKEN']);
 * const url = found.get('DATABASE_URL')?.reveal();
 * ```
 */
export async function getMany(
  provider: SecretProvider,
  keys: readonly string[],
  options: GetManyOptions = {},
): Promise<Map<string, Secret<string>>> {
  const { concurrency, ...getOptions } = options;
  if (typeof provider.getMany === 'function') return provider.getMany(keys, getOptions);
  const unique = uniqueKeys(keys, provider.name, (key) => validateKey(key, provider.name));
  throwIfAborted(options.signal);
  if (options.version !== undefined) {
    throw new UnsupportedOperationError(
      { provider: provider.name, operation: 'get' },
      'getMany reads the latest versions; read a version with get(key, { version })',
    );
  }
  const secrets = await raceSignal(
    mapBounded(
      unique,
      concurrency ?? DEFAULT_GET_MANY_CONCURRENCY,
      async (key) => {
        try {
          return await provider.get(key, getOptions);
        } catch (error) {
          if (isSecretError(error, 'NOT_FOUND')) return undefined;
          throw error;
        }
      },
      options.signal,
    ),
    options.signal,
  );
  const found = new Map<string, Secret<string>>();
  unique.forEach((key, index) => {
    const secret = secrets[index];
    if (secret !== undefined) found.set(key, secret);
  });
  return found;
}
