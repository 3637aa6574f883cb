import type { SecretProviderConfig } from './types.js';

export { ConfigError, describeIssue } from './errors.js';
export { createProvider, type FactoryContext, PROVIDER_TYPES } from './factories.js';
export {
  type LoadConfigOptions,
  type LoadedConfig,
  loadConfig,
  type ReadConfig,
  readConfig,
} from './load.js';
export {
  describeReference,
  looserBits,
  MAX_SECRET_FILE_MODE,
  octal,
  type ReferenceContext,
  referencePath,
  resolveReference,
} from './references.js';
export { RoutedProvider, type Routes } from './routing.js';
export {
  type ConfigIssue,
  configSchema,
  formatPath,
  type IssueCode,
  type SchemaNode,
  secretFields,
  validateAgainstSchema,
} from './schema.js';
export type * from './types.js';
export { modeIssues, type ValidateOptions, type ValidationReport, validateConfig } from './validate.js';
export { fieldAt, isShadowed, VENDOR_FALLBACKS, type VendorFallback, vendorValue } from './vendor-env.js';

/**
 * Types a configuration in a `.ts`/`.mjs` file (`export default defineConfig({...})`). It returns
 * its argument: validation happens in {@link loadConfig}, for typed and untyped files alike.
 *
 * @example
 * ```ts
 * export default defineConfig({
 *   providers: [
 *     { name: 'env', type: 'env', prefix: 'APP_' },
 *     { name: 'vault', type: 'vault', auth: { method: 'token', token: { file: '/vault/secrets/token' } } },
 *   ],
 * });
 * ```
 */
export function defineConfig<const C extends SecretProviderConfig>(config: C): C {
  return config;
}
