import type { TokenCredential } from '@azure/core-auth';
import { InvalidConfigError } from '@secret-provider/core';
import { sanitizeCause } from '@secret-provider/core/adapter';

// The Azure SDK pair costs about 200 ms to import. Only types are imported statically (erased at
// build time); the modules themselves load on the first call that needs a client, so importing
// this package, and certainly core, loads nothing from Azure.

type SecretsModule = typeof import('@azure/keyvault-secrets');
type IdentityModule = typeof import('@azure/identity');

let secrets: Promise<SecretsModule> | undefined;
let identity: Promise<IdentityModule> | undefined;

/** `@azure/keyvault-secrets`, loaded once, on first use. */
export function loadSecretsModule(provider: string): Promise<SecretsModule> {
  secrets ??= import('@azure/keyvault-secrets').catch((error: unknown) => {
    secrets = undefined;
    throw new InvalidConfigError(
      { provider, cause: sanitizeCause(error, 'import of @azure/keyvault-secrets failed') },
      'cannot load @azure/keyvault-secrets: install it next to @secret-provider/azure',
    );
  });
  return secrets;
}

/** A new `DefaultAzureCredential`, loading `@azure/identity` on first use. */
export async function createDefaultCredential(provider: string): Promise<TokenCredential> {
  identity ??= import('@azure/identity').catch((error: unknown) => {
    identity = undefined;
    throw new InvalidConfigError(
      { provider, cause: sanitizeCause(error, 'import of @azure/identity failed') },
      'cannot load @azure/identity for DefaultAzureCredential: install it, or pass a credential',
    );
  });
  const { DefaultAzureCredential } = await identity;
  return new DefaultAzureCredential();
}
