import type { TokenCredential } from '@azure/core-auth';
import type { SecretClientOptions } from '@azure/keyvault-secrets';
import { AzureKeyVaultProvider } from '@secret-provider/azure';
import { createEmitter } from '@secret-provider/core';

/**
 * The README's quick start, run by `readme.test.ts` against the Key Vault double. In an
 * application `credential` and `clientOptions` are left out (DefaultAzureCredential, public TLS).
 */
export async function example(
  vaultUrl: string,
  credential: TokenCredential,
  clientOptions: SecretClientOptions,
) {
  const secrets = new AzureKeyVaultProvider({ vaultUrl, credential, clientOptions, pollInterval: 100 });

  await secrets.set('DATABASE_URL', 'postgres://app:s3cret@db/prod', { contentType: 'text/uri' });
  const url = await secrets.get('DATABASE_URL'); // Key Vault secret "DATABASE-URL"
  console.log(`${url}`, url.metadata?.contentType); // [REDACTED] text/uri
  connect(url.reveal());

  const events = createEmitter();
  events.on('rotated', ({ changes }) => console.log(changes)); // [{ key, oldVersion, newVersion }]
  const watching = secrets.watch(events);
  await watching.ready;

  return { secrets, watching };
}

export const connections: string[] = [];

function connect(url: string): void {
  connections.push(url);
}
