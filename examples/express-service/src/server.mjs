// An Express 5 service that reads its secrets through secret-provider: settings from a chain
// (environment > secret volume > defaults), a pino logger that never prints a secret, a
// database pool that follows password rotation, `/healthz`, and a graceful close on SIGTERM.
import express from 'express';
import { loadConfig } from './config.mjs';
import { createDatabase } from './db.mjs';
import { checkHealth } from './health.mjs';

/** Longest a graceful close may take before the process gives up (with exit code 1). */
const CLOSE_DEADLINE_MS = 10_000;

const config = await loadConfig();
const { secrets, settings, logger } = config;
const pool = createDatabase({ settings, logger });

const app = express();
app.get('/healthz', async (_req, res) => {
  const { status, body } = await checkHealth(secrets, pool);
  res.status(status).json(body);
});
app.get('/time', async (_req, res) => {
  const { rows } = await pool.query('select now()');
  res.json({ now: rows[0].now, pool: pool.generation });
});
// A slow query, to see a close wait for the requests in flight.
app.get('/slow', async (req, res) => {
  await pool.query('select pg_sleep($1)', [Math.min(Number(req.query.seconds ?? 1), 5)]);
  res.json({ slept: true, pool: pool.generation });
});
// Express 5 hands rejected promises of handlers here.
app.use((error, req, res, _next) => {
  logger.error({ err: error, path: req.path }, 'request failed');
  res.status(500).json({ error: 'internal error' });
});

const { host, port } = settings.current;
const server = app.listen(port, host, () => {
  logger.info({ host, port: server.address().port }, 'listening');
});

let closing = false;
async function close(signal) {
  logger.info({ signal }, 'closing: no new connections, finishing the requests in flight');
  const deadline = setTimeout(() => {
    logger.error('close did not finish in time');
    process.exit(1);
  }, CLOSE_DEADLINE_MS);
  deadline.unref();
  // close() stops accepting and ends idle keep-alive connections; connections that become idle
  // after their last response are ended as they do.
  const closed = new Promise((resolve) => server.close(resolve));
  const idle = setInterval(() => server.closeIdleConnections(), 50);
  await closed;
  clearInterval(idle);
  await pool.end(); // queries in flight finish first
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
