import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FakeCredential, KeyVaultDouble } from '@secret-provider/doubles/key-vault';
import { expectNoLeak } from '@secret-provider/testing';
import { type BundledChild, bundleChild } from '@secret-provider/testing/child';
import { generate } from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The debug switches under the provider: @azure/logger (AZURE_LOG_LEVEL, whose verbose level
// has core-rest-pipeline's log policy print every request and response with their headers), the
// `debug` package (DEBUG=*) and Node's own NODE_DEBUG=http/https/net/tls (whose agent prints the
// options of each request that opens a connection, headers and TLS options included). A child runs
// the provider with each of them on; its output must hold neither the bearer token nor a value,
// in any spelling (base64, base64url, URL-encoded, JSON-escaped).

const here = fileURLToPath(new URL('.', import.meta.url));

let double: KeyVaultDouble;
let child: BundledChild | undefined;

beforeAll(async () => {
  double = await KeyVaultDouble.start();
  // Inside the workspace (ignored by git), so the bundle's @azure packages resolve as a user's would.
  child = await bundleChild(join(here, 'fixtures', 'debug-child.ts'), {
    under: join(here, '..'),
    prefix: '.tmp-azure-debug-',
    external: ['@azure/*'],
  });
});

afterAll(async () => {
  await double?.stop();
  await child?.remove();
});

const switches: ReadonlyArray<[string, Record<string, string>, RegExp[]]> = [
  // Request and response lines of the pipeline's log policy, headers included.
  ['AZURE_LOG_LEVEL=verbose', { AZURE_LOG_LEVEL: 'verbose' }, [/^azure:keyvault-secrets:info Request: /m]],
  ['AZURE_LOG_LEVEL=info', { AZURE_LOG_LEVEL: 'info' }, [/^azure:keyvault-secrets:info Request: /m]],
  [
    'DEBUG=* NODE_DEBUG=*',
    { DEBUG: '*', DEBUG_DEPTH: '20', NODE_DEBUG: '*' },
    [/^HTTPS \d+: createConnection[\s\S]*^HTTPS \d+: createConnection/m, /^TLS \d+: /m, /^NET \d+: /m],
  ],
  [
    'all together',
    { AZURE_LOG_LEVEL: 'verbose', DEBUG: '*', DEBUG_DEPTH: '20', NODE_DEBUG: 'http,https,tls,net' },
    [
      /^azure:keyvault-secrets:info Request: /m,
      /^HTTPS \d+: createConnection[\s\S]*^HTTPS \d+: createConnection/m,
      /^TLS \d+: /m,
    ],
  ],
];

describe('debug output of the Azure Key Vault provider', () => {
  it.each(switches)(
    '%s prints no bearer token and no value',
    async (_name, env, printed) => {
      const credential = new FakeCredential(double);
      const access = await credential.getToken(double.scope);
      if (access === null) throw new Error('the credential gave no token');
      const nonce = () => Math.random().toString(36).slice(2);
      const seeded = `seeded-value-${nonce()}`;
      const written = `written-value-${nonce()}`;
      const rotated = `rotated-value-${nonce()}`;
      for (const name of double.names()) {
        double.deleteSecret(name);
        double.purgeSecret(name);
      }
      double.setSecret('SEEDED', seeded);
      // A client certificate the double does not ask for: its key still sits in the TLS options.
      const client = await generate([{ name: 'commonName', value: 'app' }], {
        keyType: 'ec',
        algorithm: 'sha256',
      });
      const keyLines = client.private
        .split('\n')
        .filter((line) => line.length > 20 && !line.startsWith('-----'));
      const config = {
        url: double.url,
        ca: double.ca,
        cert: client.cert,
        key: client.private,
        token: access.token,
        expiresOnTimestamp: access.expiresOnTimestamp,
        written,
        rotated,
      };
      if (child === undefined) throw new Error('the child was not built');
      const { stdout, stderr } = await child.run({ ...env, KEY_VAULT_CHILD_CONFIG: JSON.stringify(config) });

      // The run did what it should, and the switch did print.
      expect(stdout.trim()).toBe('ok get,parallel,set,list,watch');
      const output = `${stdout}\n${stderr}`;
      for (const pattern of printed) expect(output).toMatch(pattern);
      expect(double.valueOf('WRITTEN')).toBe(rotated);

      // The failure names the spelling and the length, never the secret.
      expect(keyLines.length).toBeGreaterThan(1);
      expectNoLeak([output], [access.token, ...keyLines, seeded, written, rotated], { encodings: true });
    },
    60_000,
  );
});
