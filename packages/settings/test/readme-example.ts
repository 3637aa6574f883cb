import { ChainedProvider } from '@secret-provider/chained';
import type { Secret } from '@secret-provider/core';
import { EnvProvider } from '@secret-provider/env';
import { MemoryProvider } from '@secret-provider/memory';
import { defineSettings, isSecretString } from '@secret-provider/settings';
import { z } from 'zod';

export async function example(reconnect: (password: Secret<string>) => Promise<void>) {
  const defaults = new MemoryProvider({
    initial: { PORT: '8080', DB_PASSWORD: 'dev-password-123', DB_HOST: 'localhost', LIMITS: '{"rps":100}' },
  });
  const source = new ChainedProvider([new EnvProvider({ prefix: 'APP_' }), defaults]);

  const settings = defineSettings({
    source,
    schema: z.object({
      port: z.coerce.number().int().min(1), //       key PORT
      dbPassword: z.custom<Secret<string>>(isSecretString), // key DB_PASSWORD
      db: z.object({ host: z.string() }), //          key DB_HOST
      limits: z.object({ rps: z.number() }), //      key LIMITS, a JSON document
      debug: z.stringbool().default(false), //       key DEBUG, may be missing
    }),
    fields: {
      dbPassword: { secret: true }, // reaches the schema, and the object, as a Secret
      limits: { format: 'json' },
    },
  });

  const config = await settings.load(); // frozen, typed, validated
  console.log(config.port, config.db.host); // 8080 'localhost'
  console.log(config); // Settings(settings) { port: [REDACTED], dbPassword: [REDACTED], ... }

  settings.onChange('dbPassword', async (_old, password) => {
    await reconnect(password); // awaited; runs only after a validated swap
  });
  settings.on('error', ({ error }) => console.error(error.message)); // rejected updates, no values

  await defaults.set('DB_PASSWORD', 'rotated-password-456'); // a rotation in any layer
  for await (const update of settings.updates({ signal: AbortSignal.timeout(2000) })) {
    console.log(update.changed); // [ 'dbPassword' ]
    break;
  }

  await settings.refresh({ timeout: 5000 }); // re-read everything now, or reject with TIMEOUT
  await settings.close();
  await source.close();
  return config;
}
