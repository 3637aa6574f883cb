// The service's secrets, settings and logger. Environment variables (APP_*) override the secret
// volume (one file per key, as Kubernetes mounts a Secret), which overrides built-in defaults.
// Settings are typed and validated once at boot (the process exits with a report of every
// problem, never a value, when they are invalid) and stay current as the secrets rotate. The
// logger masks every secret value the chain holds, including the ones it rotates to.
import { ChainedProvider } from '@secret-provider/chained';
import { createRedactor } from '@secret-provider/core';
import { EnvProvider } from '@secret-provider/env';
import { FileProvider } from '@secret-provider/file';
import { redactPino } from '@secret-provider/logging';
import { MemoryProvider } from '@secret-provider/memory';
import { isSecretString, loadSettingsOrExit } from '@secret-provider/settings';
import pino from 'pino';
import { z } from 'zod';

/** What the service runs with when nothing overrides it. No secret has a default. */
const DEFAULTS = {
  HOST: '127.0.0.1',
  PORT: '3000',
  LOG_LEVEL: 'info',
  DB_HOST: '127.0.0.1',
  DB_PORT: '5433',
  DB_USER: 'app',
};

const schema = z.object({
  host: z.string().min(1), //                          key HOST
  port: z.coerce.number().int().min(0).max(65_535), //  key PORT (0: any free port)
  logLevel: z.enum(['debug', 'info', 'warn', 'error']), // key LOG_LEVEL
  dbHost: z.string().min(1), //                        key DB_HOST
  dbPort: z.coerce.number().int().min(1).max(65_535), // key DB_PORT
  dbUser: z.string().min(1), //                        key DB_USER
  dbPassword: z.custom(isSecretString), //             key DB_PASSWORD, kept a Secret
});

/** The keys the service needs; `/healthz` explains where each one comes from. */
export const REQUIRED_KEYS = ['HOST', 'PORT', 'LOG_LEVEL', 'DB_HOST', 'DB_PORT', 'DB_USER', 'DB_PASSWORD'];

/**
 * Builds the chain, the redactor, the settings and the logger. Exits the process with code 1
 * and a report on stderr when the settings cannot be loaded.
 */
export async function loadConfig(env = process.env) {
  const secrets = new ChainedProvider([
    new EnvProvider({ name: 'env', env, prefix: 'APP_', stripPrefix: true }),
    new FileProvider({ name: 'secret-volume', path: env.SECRETS_DIR ?? '/var/run/secrets/app' }),
    new MemoryProvider({ name: 'defaults', initial: DEFAULTS }),
  ]);

  // Learns every value now and follows rotations; the core's default `secretKeys` decides what
  // is masked (DB_PASSWORD is, DB_HOST=127.0.0.1 and PORT are plain configuration).
  const redactor = createRedactor();
  const following = redactor.attach(secrets);
  await following.ready;

  // Read through `redactor.wrap`, a rotated value is known to the redactor before the settings,
  // and so any code that could log it, see it.
  const settings = await loadSettingsOrExit({
    name: 'service',
    source: redactor.wrap(secrets),
    schema,
    fields: { dbPassword: { secret: true } },
  });

  const logger = pino({ level: settings.current.logLevel, ...redactPino(redactor) });

  return {
    secrets,
    settings,
    logger,
    /** Stops following the secrets and releases the providers' watchers and timers. */
    async close() {
      await settings.close();
      await following.stop();
      await secrets.close();
    },
  };
}
