// A database pool that follows the rotation of its password. The stand-in's `Pool` has the shape
// of `pg.Pool` (`query`, `end`): with PostgreSQL, import `Pool` from 'pg' instead.
import { Pool } from '@secret-provider/example-stand-in-db';

/**
 * Queries go to the current pool. On a new password, `rotate` opens a new pool, checks that it
 * logs in, switches queries to it, then ends the old one: `end()` lets the queries in flight on
 * it finish before it closes its sessions. No query fails as long as the database accepts the
 * new password before the secret rotates (rotate the database first, as dual-password and
 * alternating-user schemes do) and keeps the old one's sessions until they close.
 */
export class RotatingPool {
  #open;
  #current;
  #generation = 1;

  /** `open(password)` returns a new pool that logs in with `password` (a `Secret`). */
  constructor(open, password) {
    this.#open = open;
    this.#current = open(password);
  }

  /** How many pools there have been: 1, then one more per rotation. */
  get generation() {
    return this.#generation;
  }

  query(sql, values) {
    return this.#current.query(sql, values);
  }

  /** Switches to `password`; rejects, keeping the current pool, when the new pool cannot log in. */
  async rotate(password) {
    const next = this.#open(password);
    try {
      await next.query('select 1');
    } catch (error) {
      await next.end();
      throw error;
    }
    const previous = this.#current;
    this.#current = next;
    this.#generation++;
    await previous.end();
  }

  end() {
    return this.#current.end();
  }
}

/** The pool of the service's settings, following `dbPassword` as it rotates. */
export function createDatabase({ settings, logger }) {
  const { dbHost, dbPort, dbUser, dbPassword } = settings.current;
  const open = (password) => {
    const options = { host: dbHost, port: dbPort, user: dbUser, password: password.reveal(), max: 4 };
    // Drivers' options often end up in logs like this one; the redactor masks the password.
    logger.debug({ options }, 'opening a database pool');
    return new Pool(options);
  };
  const pool = new RotatingPool(open, dbPassword);
  // Runs after the settings validated the new snapshot, one change at a time.
  settings.onChange('dbPassword', async (_previous, password) => {
    try {
      await pool.rotate(password);
      logger.info({ generation: pool.generation }, 'database pool switched to the rotated password');
    } catch (error) {
      logger.error({ err: error }, 'rotated database password refused; the previous pool stays in use');
    }
  });
  return pool;
}
