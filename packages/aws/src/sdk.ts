import { InvalidConfigError } from '@secret-provider/core';
import { sanitizeCause } from '@secret-provider/core/adapter';

// The SDK costs far more to import than this package (see benchmarks/aws-import.bench.mjs). Only
// types are imported statically (erased at build time); the module loads on the first call that
// needs a client or a command, so importing this package, and certainly core, loads nothing of AWS.

export type SecretsManagerModule = typeof import('@aws-sdk/client-secrets-manager');

let loading: Promise<SecretsManagerModule> | undefined;

/** `@aws-sdk/client-secrets-manager`, loaded once, on first use. */
export function loadSecretsManager(provider: string): Promise<SecretsManagerModule> {
  loading ??= import('@aws-sdk/client-secrets-manager').catch((error: unknown) => {
    loading = undefined;
    throw new InvalidConfigError(
      { provider, cause: sanitizeCause(error, 'import of @aws-sdk/client-secrets-manager failed') },
      'cannot load @aws-sdk/client-secrets-manager: install it next to @secret-provider/aws',
    );
  });
  return loading;
}
