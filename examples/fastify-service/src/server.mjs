// A Fastify 5 service that reads its secrets through secret-provider: settings from a chain
// (environment > secret volume > defaults), a pino logger that never prints a secret (Fastify
// logs through it), a database pool that follows password rotation, `/healthz`, and a graceful
// close on SIGTERM.
import Fastify from 'fastify';
import { loadConfig } from './config.mjs';
import { createDatabase } from './db.mjs';
import { checkHealth } from './health.mjs';

/** Longest a graceful close may take before the process gives up (with exit code 1). */
const CLOSE_DEADLINE_MS = 10_000;

const config = await loadConfig();
const { secrets, settings, logger } = config;
const pool = createDatabase({ settings, logger });

// Fastify's request logs go through the redacting logger too.
const app = Fastify({ loggerInstance: logger });
app.get('/healthz', async (_request, reply) => {
  const { status, body } = await checkHealth(secrets, pool);
  return reply.code(status).send(body);
});
app.get('/time', async () => {
  const { rows } = await pool.query('select now()');
  return { now: rows[0].now, pool: pool.generation };
});
// A slow query, to see a close wait for the requests in flight.
app.get('/slow', async (request) => {
  await pool.query('select pg_sleep($1)', [Math.min(Number(request.query.seconds ?? 1), 5)]);
  return { slept: true, pool: pool.generation };
});
// The pool ends after the server stopped taking requests and finished those in flight.
app.addHook('onClose', async () => {
  await pool.end();
});

const { host, port } = settings.current;
await app.listen({ host, port });
logger.info({ host, port: app.server.address().port }, 'listening');

let closing = false;
async function close(signal) {
  logger.info({ signal }, 'closing: no new connections, finishing the requests in flight');
  const deadline = setTimeout(() => {
    logger.error('close did not finish in time');
    process.exit(1);
  }, CLOSE_DEADLINE_MS);
  deadline.unref();
  await app.close(); // stops accepting, waits for requests in flight, runs onClose (the pool)
  await config.close(); // settings, redactor, then `await secrets.close()`
  logger.info('closed');
  clearTimeout(deadline);
  // Nothing is left open: the process ends by itself, with exit code 0.
}
// A second signal while closing is ignored (the deadline above bounds the close).
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    if (closing) return;
    closing = true;
    close(signal).catch((error) => {
      logger.error({ err: error }, 'close failed');
      process.exit(1);
    });
  });
}
