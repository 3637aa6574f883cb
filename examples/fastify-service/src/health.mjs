// What `/healthz` reports: for each key the service needs, which provider serves it and what the
// others say (no value), and whether the database answers.
import { REQUIRED_KEYS } from './config.mjs';

/** `{ status, body }`: 200 when every key is served and the database answers, else 503. */
export async function checkHealth(secrets, pool) {
  const explained = await Promise.all(REQUIRED_KEYS.map((key) => secrets.explain(key)));
  const secretsOk = explained.every(
    (e) => e.servedBy !== undefined && !e.entries.some((entry) => entry.status === 'failed'),
  );
  const report = Object.fromEntries(
    explained.map((e) => [
      e.key,
      {
        servedBy: e.servedBy ?? null,
        providers: Object.fromEntries(e.entries.map((entry) => [entry.provider, entry.status])),
      },
    ]),
  );
  let db;
  try {
    await pool.query('select 1');
    db = { ok: true, pool: pool.generation };
  } catch (error) {
    db = { ok: false, pool: pool.generation, code: error?.code ?? 'UNKNOWN' };
  }
  const ok = secretsOk && db.ok;
  return { status: ok ? 200 : 503, body: { status: ok ? 'ok' : 'degraded', secrets: report, db } };
}
