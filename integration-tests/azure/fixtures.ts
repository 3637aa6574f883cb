import { AzureKeyVaultProvider, type AzureKeyVaultProviderOptions } from '@secret-provider/azure';
import type { WarningEvent } from '@secret-provider/core';
import {
  FakeCredential,
  KeyVaultDouble,
  type KeyVaultDoubleOptions,
  type KeyVaultPermission,
} from '@secret-provider/doubles/key-vault';

/** Client options that make the real SecretClient talk to a double: its CA, fast SDK retries. */
export function clientOptionsFor(double: KeyVaultDouble) {
  return {
    tlsOptions: { ca: double.ca },
    // The challenge names vault.azure.net; the double lives on 127.0.0.1.
    disableChallengeResourceVerification: true,
    retryOptions: { retryDelayInMs: 20, maxRetryDelayInMs: 200 },
  };
}

export interface SingleVault {
  readonly double: KeyVaultDouble;
  readonly credential: FakeCredential;
  readonly provider: AzureKeyVaultProvider;
  readonly warnings: WarningEvent[];
  stop(): Promise<void>;
}

/** A double and a provider over it; `stop` closes both. */
export async function singleVault(
  options: Partial<AzureKeyVaultProviderOptions> = {},
  doubleOptions: KeyVaultDoubleOptions = {},
  permissions?: readonly KeyVaultPermission[],
): Promise<SingleVault> {
  const double = await KeyVaultDouble.start(doubleOptions);
  const credential = new FakeCredential(double, permissions === undefined ? {} : { permissions });
  const warnings: WarningEvent[] = [];
  const provider = new AzureKeyVaultProvider({
    vaultUrl: double.url,
    credential,
    clientOptions: clientOptionsFor(double),
    pollInterval: 100,
    onWarning: (warning) => warnings.push(warning),
    ...options,
  });
  return {
    double,
    credential,
    provider,
    warnings,
    stop: async () => {
      await provider.close();
      await double.stop();
    },
  };
}
