import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VaultDouble } from '@secret-provider/doubles/vault';
import { bundleChild } from '@secret-provider/testing/child';
import { generate } from 'selfsigned';
import { expect, it } from 'vitest';

// Every debug switch of the client libraries under the provider prints request options: the
// `debug` package (follow-redirects inside axios, under DEBUG=*; node-vault under
// DEBUG=node-vault) and Node's own NODE_DEBUG=http/https/net/tls (agent options, the pooled
// connection's name with its TLS key). A child process runs the provider with all of them on,
// as deep as `debug` inspects (DEBUG_DEPTH), and its output must hold no credential and no value.

const here = fileURLToPath(new URL('.', import.meta.url));

it('prints no token, login credential, TLS key or value under DEBUG=* and NODE_DEBUG=*', async () => {
  const pems = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true },
      { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] },
    ],
    clientCertificate: { cn: 'app' },
  });
  // The provider from its sources, as one file; node-vault (and axios, follow-redirects, debug)
  // stay external and load from node_modules, as in a user's process.
  const child = await bundleChild(join(here, 'fixtures', 'debug-child.ts'), {
    under: join(here, '..'),
    prefix: '.tmp-vault-debug-',
    external: ['node-vault'],
  });
  const double = await VaultDouble.start({
    tls: { key: pems.private, cert: pems.cert, ca: pems.cert, requestCert: true },
  });
  try {
    double.setStandby('redirect');
    const seeded = `seeded-value-${Math.random().toString(36).slice(2)}`;
    double.kvPut('secret', 'app/seeded', { value: seeded });
    const { roleId, secretId } = double.addAppRole('app', { ttl: 600 });
    double.addDatabaseRole('app', { ttl: 2, maxTtl: 600, renewable: true });
    // Made after the bundle is built, so its 2 s TTL is not spent waiting for the build.
    const token = double.createToken({ ttl: 2, renewable: true, explicitMaxTtl: 600 }).id;
    const written = `written-value-${Math.random().toString(36).slice(2)}`;
    const clientKey = pems.clientprivate as string;
    const config = {
      url: double.url,
      token,
      roleId,
      secretId,
      written,
      tls: { ca: pems.cert, cert: pems.clientcert as string, key: clientKey },
    };

    const { stdout, stderr } = await child.run({
      DEBUG: '*',
      DEBUG_DEPTH: '20',
      NODE_DEBUG: '*',
      VAULT_CHILD_CONFIG: JSON.stringify(config),
    });

    // The run did what it should, with the debug output on.
    expect(stdout.trim()).toBe('ok kv,read,keys,lease,token-renewed,lease-renewed');
    expect(stderr).toContain('follow-redirects options');
    expect(stderr).toContain('follow-redirects redirecting to');
    expect(stderr).toMatch(/^HTTPS? \d+: /m);
    expect(stderr).toMatch(/^TLS \d+: /m);

    // Everything secret that passed through the child: tokens (given and issued by logins),
    // AppRole credentials, the TLS client key, values written and read, dynamic passwords.
    const keyLines = clientKey.split('\n').filter((line) => line.length > 20 && !line.startsWith('-----'));
    const needles = [
      ...[...double.state.tokens.keys()],
      roleId,
      secretId,
      ...keyLines,
      seeded,
      written,
      ...[...double.state.leases.values()].map((lease) => lease.password),
    ].filter((needle): needle is string => typeof needle === 'string' && needle.length >= 8);
    expect(needles.length).toBeGreaterThan(8);
    const found = needles.filter((needle) => stderr.includes(needle) || stdout.includes(needle));
    // Lengths only: a failure must not print what leaked.
    expect(found.map((needle) => `a secret of ${needle.length} characters`)).toEqual([]);
  } finally {
    await double.close();
    await child.remove();
  }
}, 60_000);
