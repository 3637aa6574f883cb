import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { VaultDouble } from '@secret-provider/doubles/vault';
import { expect, it } from 'vitest';

// The README's example runs as written, with only Vault's address and the file's path pointed at
// the double and a temporary directory: once with Vault up, once as a restart with Vault down.
it('runs the README example, then again as a restart while Vault is down', async () => {
  const readme = await readFile(
    fileURLToPath(new URL('../../packages/offline/README.md', import.meta.url)),
    'utf8',
  );
  const example = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  if (example === undefined) throw new Error('no example in the README');
  const double = await VaultDouble.start();
  // Inside the workspace, so that the example's imports resolve as a user's project would.
  const dir = await mkdtemp(fileURLToPath(new URL('../.tmp-offline-readme-', import.meta.url)));
  const saved = { token: process.env.VAULT_TOKEN, key: process.env.SECRETS_FALLBACK_KEY };
  try {
    double.kvPut('secret', 'app/db', { password: `pw-${randomBytes(8).toString('hex')}` });
    process.env.VAULT_TOKEN = double.rootToken;
    process.env.SECRETS_FALLBACK_KEY = randomBytes(32).toString('base64');
    const code = example
      .replace("'https://vault.internal:8200'", JSON.stringify(double.url))
      .replace("'/var/lib/my-service/secrets.fallback'", JSON.stringify(join(dir, 'secrets.fallback')));
    expect(code).not.toBe(example);
    const run = async (name: string) => {
      const file = join(dir, `${name}.ts`);
      await writeFile(file, `${code}\nexport { password, servedFrom };\n`);
      return (await import(/* @vite-ignore */ pathToFileURL(file).href)) as {
        password: { reveal(): string };
        servedFrom: unknown;
      };
    };
    const first = await run('first');
    expect(first.servedFrom).toBeUndefined();
    await double.stopListening();
    const restarted = await run('restarted');
    expect(restarted.servedFrom).toBe('offline-fallback');
    expect(restarted.password.reveal()).toBe(first.password.reveal());
  } finally {
    process.env.VAULT_TOKEN = saved.token;
    process.env.SECRETS_FALLBACK_KEY = saved.key;
    if (saved.token === undefined) delete process.env.VAULT_TOKEN;
    if (saved.key === undefined) delete process.env.SECRETS_FALLBACK_KEY;
    await double.close();
    await rm(dir, { recursive: true, force: true });
  }
}, 30_000);
