import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { VaultDouble } from '@secret-provider/doubles/vault';
import { expect, it } from 'vitest';

// The README's first example runs as written, with only its endpoint and credentials pointed at
// the double, so the documentation cannot drift from the API.
it('runs the README example against the double', async () => {
  const readme = await readFile(
    fileURLToPath(new URL('../../packages/vault/README.md', import.meta.url)),
    'utf8',
  );
  const example = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  if (example === undefined) throw new Error('no example in the README');
  const double = await VaultDouble.start();
  // Inside the workspace, so that the example's imports resolve as a user's project would.
  const dir = await mkdtemp(fileURLToPath(new URL('../.tmp-vault-readme-', import.meta.url)));
  try {
    const { roleId, secretId } = double.addAppRole('app', { ttl: 600 });
    const secretIdFile = join(dir, 'secret-id');
    await writeFile(secretIdFile, secretId);
    double.kvPut('secret', 'app/db', { password: 'readme-password' });
    double.addDatabaseRole('app', { ttl: 600, maxTtl: 3600, renewable: true });
    const code = example
      .replace("'https://vault.internal:8200'", JSON.stringify(double.url))
      .replace("'app-role-id'", JSON.stringify(roleId))
      .replace("'/run/secrets/vault-secret-id'", JSON.stringify(secretIdFile));
    expect(code).not.toBe(example);
    const file = join(dir, 'example.ts');
    await writeFile(file, `${code}\nexport { password, username };\n`);
    const { password, username } = await import(/* @vite-ignore */ pathToFileURL(file).href);
    expect(password.reveal()).toBe('readme-password');
    expect(username.reveal()).toMatch(/^v-app-/);
    // `close` revoked the credential's lease.
    expect([...double.state.leases.values()].every((lease) => lease.revokeReason === 'lease revoked')).toBe(
      true,
    );
  } finally {
    await double.close();
    await rm(dir, { recursive: true, force: true });
  }
});
