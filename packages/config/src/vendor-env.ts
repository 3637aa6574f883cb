import type { ProviderConfig, ProviderType } from './types.js';

/** An environment variable a vendor's own tools read, used when the config leaves a field unset. */
export interface VendorFallback {
  /** Field path inside the provider entry, e.g. `auth.token`. */
  readonly field: string;
  readonly env: string;
}

/**
 * The vendor variables honoured per provider type. Vault's are the ones `@secret-provider/vault`
 * reads itself; Key Vault's, Consul's and the AWS region and endpoint are applied by the
 * configuration (their adapters take explicit options only). AWS credential variables are the
 * SDK's own; they are listed so that explicit credentials in the file warn that they win.
 */
export const VENDOR_FALLBACKS: Readonly<Partial<Record<ProviderType, readonly VendorFallback[]>>> = {
  vault: [
    { field: 'endpoint', env: 'VAULT_ADDR' },
    { field: 'namespace', env: 'VAULT_NAMESPACE' },
    { field: 'auth.token', env: 'VAULT_TOKEN' },
    { field: 'tls.caFile', env: 'VAULT_CACERT' },
    { field: 'tls.certFile', env: 'VAULT_CLIENT_CERT' },
    { field: 'tls.keyFile', env: 'VAULT_CLIENT_KEY' },
    { field: 'tls.servername', env: 'VAULT_TLS_SERVER_NAME' },
  ],
  azure: [{ field: 'vaultUrl', env: 'AZURE_KEYVAULT_URL' }],
  consul: [
    { field: 'address', env: 'CONSUL_HTTP_ADDR' },
    { field: 'token', env: 'CONSUL_HTTP_TOKEN' },
  ],
  // Credentials stay the SDK's (AWS_ACCESS_KEY_ID, AWS_PROFILE... read by it): explicit ones replace them.
  aws: [
    { field: 'region', env: 'AWS_REGION' },
    { field: 'region', env: 'AWS_DEFAULT_REGION' },
    { field: 'endpoint', env: 'AWS_ENDPOINT_URL_SECRETS_MANAGER' },
    { field: 'endpoint', env: 'AWS_ENDPOINT_URL' },
    { field: 'credentials.accessKeyId', env: 'AWS_ACCESS_KEY_ID' },
  ],
};

/** The field at a dotted path, or undefined. */
export function fieldAt(entry: unknown, field: string): unknown {
  let at: unknown = entry;
  for (const part of field.split('.')) {
    if (typeof at !== 'object' || at === null) return undefined;
    at = (at as Record<string, unknown>)[part];
  }
  return at;
}

/** Whether the file sets what `fallback` would provide (any auth method replaces `VAULT_TOKEN`). */
export function isShadowed(entry: ProviderConfig, fallback: VendorFallback): boolean {
  // A reference to the vendor variable itself uses it.
  const given = fieldAt(entry, fallback.field) as { env?: unknown } | undefined;
  if (typeof given === 'object' && given !== null && given.env === fallback.env) return false;
  if (fallback.field === 'auth.token') {
    const auth = (entry as { auth?: { method?: string; token?: unknown } }).auth;
    return auth !== undefined && (auth.method !== 'token' || auth.token !== undefined);
  }
  return fieldAt(entry, fallback.field) !== undefined;
}

/** Value of a vendor variable; empty counts as unset, as the vendors' tools do. */
export function vendorValue(
  env: Readonly<Record<string, string | undefined>>,
  name: string,
): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}
