import { ChainedProvider } from '@secret-provider/chained';
import { createEmitter, type SecretProvider } from '@secret-provider/core';
import { EnvProvider } from '@secret-provider/env';
import { MemoryProvider } from '@secret-provider/memory';

/** The README's first example; the lines between the markers appear there word for word. */
export async function layered(
  change: () => Promise<void>,
): Promise<{ url: string; servedBy: string | undefined }> {
  // readme:begin layered
  const secrets = new ChainedProvider([
    new EnvProvider({ prefix: 'APP_', pollInterval: 200 }), // the environment overrides...
    new MemoryProvider({ name: 'defaults', initial: { DATABASE_URL: 'postgres://localhost/dev' } }), // ...defaults
  ]);

  const url = await secrets.get('DATABASE_URL'); // APP_DATABASE_URL if set, else the default
  const why = await secrets.explain('DATABASE_URL');
  console.log(
    why.servedBy,
    why.entries.map((e) => `${e.provider}: ${e.status}`),
  );

  const events = createEmitter();
  events.on('rotated', ({ keys, source }) => console.log(`rotated ${keys.join()} in ${source}`));
  const watch = secrets.watch(events);
  await watch.ready;
  // readme:end layered

  await change();
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  await secrets.close();
  return { url: url.reveal(), servedBy: why.servedBy };
}

/** The README's failover example, with two replicas standing in for two vaults. */
export async function replicas(
  primaryVault: SecretProvider,
  secondaryVault: SecretProvider,
  fail: () => void,
) {
  // readme:begin failover
  const vault = new ChainedProvider([primaryVault, secondaryVault], {
    mode: 'failover',
    probeInterval: 5_000,
  });
  const events = createEmitter();
  events.on('warning', ({ code, message }) => console.log(code, message)); // FAILOVER, FAILBACK
  vault.watch(events);
  // readme:end failover

  fail();
  const value = await vault.get('db-password');
  const active = vault.activeProvider.name;
  await vault.close();
  return { value, active };
}
