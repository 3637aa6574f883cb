// A STAND-IN for a database, so that the service examples run where no database server does.
// It checks a user's password in a handshake, as PostgreSQL or MySQL do, keeps sessions that
// logged in with a password that was later retired (real servers do too), and answers three
// queries. `Pool` is a small client with the shape of `pg.Pool` (`query`, `end`), so the
// examples' code maps onto a real driver line by line. Replace both with your database and driver.
//
// Wire protocol: one JSON document per line. The client sends `{ user, password }` first; the
// server answers `{ ok: true }` or `{ error, code }` and hangs up. Then `{ id, sql, values }`
// gets `{ id, rows }` or `{ id, error, code }`.
import { createConnection, createServer } from 'node:net';

/** PostgreSQL's code for a failed password check. */
export const AUTH_FAILED = '28P01';

/**
 * Starts the stand-in on `host:port` (port 0: any free port). `passwords` are the passwords it
 * accepts now: an array, or a function asked at each handshake (the CLI reads a file with it).
 */
export async function startStandInDatabase({
  host = '127.0.0.1',
  port = 0,
  user = 'app',
  passwords = [],
} = {}) {
  const accepted = new Set(typeof passwords === 'function' ? [] : passwords);
  const acceptedNow = typeof passwords === 'function' ? () => new Set(passwords()) : () => accepted;
  /** @type {Map<import('node:net').Socket, string | undefined>} socket -> the password it logged in with */
  const sessions = new Map();
  let refused = 0;
  let running = 0;

  const server = createServer((socket) => {
    sessions.set(socket, undefined);
    socket.on('close', () => sessions.delete(socket));
    socket.on('error', () => socket.destroy());
    onLines(socket, (message) => {
      if (sessions.get(socket) === undefined) {
        if (message.user === user && acceptedNow().has(message.password)) {
          sessions.set(socket, message.password);
          send(socket, { ok: true });
        } else {
          refused++;
          // Never echoes what was sent: that is the password.
          socket.end(
            `${JSON.stringify({ error: `password authentication failed for user "${user}"`, code: AUTH_FAILED })}\n`,
          );
        }
        return;
      }
      running++;
      void execute(message).then((answer) => {
        running--;
        send(socket, { id: message.id, ...answer });
      });
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(undefined));
  });

  return {
    host,
    port: /** @type {import('node:net').AddressInfo} */ (server.address()).port,
    /** Accept `password` from now on (rotation, step 1: both passwords work). */
    accept: (password) => void accepted.add(password),
    /** Refuse `password` at new handshakes; sessions already logged in with it go on. */
    retire: (password) => void accepted.delete(password),
    /** Open sessions that logged in with `password`. */
    sessionsWith: (password) => [...sessions.values()].filter((p) => p === password).length,
    /** Queries being executed now. */
    get running() {
      return running;
    },
    /** Handshakes refused so far. */
    get refused() {
      return refused;
    },
    close: () =>
      new Promise((resolve) => {
        for (const socket of sessions.keys()) socket.destroy();
        server.close(() => resolve(undefined));
      }),
  };
}

async function execute({ sql, values = [] }) {
  if (sql === 'select 1') return { rows: [{ '?column?': 1 }] };
  if (sql === 'select now()') return { rows: [{ now: new Date().toISOString() }] };
  if (sql === 'select pg_sleep($1)') {
    await new Promise((resolve) => setTimeout(resolve, Math.min(Number(values[0]) * 1000, 30_000)));
    return { rows: [{ pg_sleep: '' }] };
  }
  return {
    error: 'syntax error: the stand-in knows select 1, select now() and select pg_sleep($1)',
    code: '42601',
  };
}

function send(socket, message) {
  if (socket.writable) socket.write(`${JSON.stringify(message)}\n`);
}

/** Calls `onMessage` with each JSON line that arrives on `socket`; a line that does not parse ends it. */
function onLines(socket, onMessage) {
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk) => {
    buffered += chunk;
    for (let end = buffered.indexOf('\n'); end !== -1; end = buffered.indexOf('\n')) {
      const line = buffered.slice(0, end);
      buffered = buffered.slice(end + 1);
      let message;
      try {
        message = JSON.parse(line);
      } catch {
        socket.destroy();
        return;
      }
      onMessage(message);
    }
  });
}

/** An error of the stand-in, with a code like `pg`'s (`28P01`, `42601`, `57P01`). */
export class StandInDatabaseError extends Error {
  constructor(message, code) {
    super(message);
    this.name = 'StandInDatabaseError';
    this.code = code;
  }
}

/** One logged-in session. */
class Connection {
  #socket;
  #pending = new Map();
  #nextId = 0;
  #closed = false;

  static open({ host, port, user, password, connectTimeoutMs }) {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ host, port });
      const fail = (error) => {
        socket.destroy();
        reject(error);
      };
      const timer = setTimeout(
        () => fail(new StandInDatabaseError('connection timeout', '08006')),
        connectTimeoutMs,
      );
      socket.once('error', (error) => {
        clearTimeout(timer);
        // Node's message names the address only; the error object carries nothing of ours.
        fail(new StandInDatabaseError(`connection failed: ${error.code ?? error.message}`, '08006'));
      });
      socket.once('connect', () => socket.write(`${JSON.stringify({ user, password })}\n`));
      let first = true;
      onLines(socket, (message) => {
        if (!first) return;
        first = false;
        clearTimeout(timer);
        if (message.ok === true) resolve(new Connection(socket));
        else fail(new StandInDatabaseError(String(message.error), message.code));
      });
    });
  }

  constructor(socket) {
    this.#socket = socket;
    socket.removeAllListeners('data');
    // A reset or a broken pipe ends the session; 'close' below fails what was pending.
    socket.on('error', () => {});
    onLines(socket, ({ id, rows, error, code }) => {
      const waiter = this.#pending.get(id);
      this.#pending.delete(id);
      if (error === undefined) waiter?.resolve({ rows });
      else waiter?.reject(new StandInDatabaseError(error, code));
    });
    socket.on('close', () => {
      this.#closed = true;
      for (const waiter of this.#pending.values()) {
        waiter.reject(new StandInDatabaseError('connection terminated', '57P01'));
      }
      this.#pending.clear();
    });
  }

  get closed() {
    return this.#closed;
  }

  query(sql, values) {
    if (this.#closed) return Promise.reject(new StandInDatabaseError('connection terminated', '57P01'));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#socket.write(`${JSON.stringify({ id, sql, values })}\n`);
    });
  }

  close() {
    this.#socket.end();
  }
}

/**
 * A pool of sessions with the shape of `pg.Pool`: `query(sql, values)` borrows a session (opening
 * one, up to `max`), `end()` refuses new queries, waits for those in flight, and closes every
 * session.
 */
export class Pool {
  #options;
  /** @type {Connection[]} */
  #idle = [];
  #size = 0;
  /** @type {Array<{ resolve: (c: Connection) => void, reject: (e: Error) => void }>} */
  #waiting = [];
  #inFlight = 0;
  #ended;
  #drained = () => {};

  constructor({ host = '127.0.0.1', port, user = 'app', password, max = 4, connectTimeoutMs = 2_000 }) {
    this.#options = { host, port, user, password, max, connectTimeoutMs };
  }

  /** Queries in flight. */
  get inFlight() {
    return this.#inFlight;
  }

  async query(sql, values = []) {
    if (this.#ended !== undefined)
      throw new StandInDatabaseError('cannot use a pool after calling end on the pool');
    this.#inFlight++;
    try {
      const connection = await this.#acquire();
      try {
        return await connection.query(sql, values);
      } finally {
        this.#release(connection);
      }
    } finally {
      this.#inFlight--;
      if (this.#inFlight === 0) this.#drained();
    }
  }

  /** Waits for the queries in flight, then closes every session. Idempotent. */
  end() {
    this.#ended ??= new Promise((resolve) => {
      this.#drained = resolve;
      if (this.#inFlight === 0) resolve(undefined);
    }).then(() => {
      for (const connection of this.#idle) connection.close();
      this.#idle = [];
    });
    return this.#ended;
  }

  async #acquire() {
    while (this.#idle.length > 0) {
      const connection = this.#idle.pop();
      if (connection !== undefined && !connection.closed) return connection;
      this.#size--;
    }
    if (this.#size >= this.#options.max) {
      return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
    }
    this.#size++;
    try {
      return await Connection.open(this.#options);
    } catch (error) {
      this.#size--;
      throw error;
    }
  }

  #release(connection) {
    if (connection.closed) {
      this.#size--;
      // A waiter gets a fresh session in place of the lost one.
      const waiter = this.#waiting.shift();
      if (waiter !== undefined) {
        this.#size++;
        Connection.open(this.#options).then(waiter.resolve, (error) => {
          this.#size--;
          waiter.reject(error);
        });
      }
      return;
    }
    const waiter = this.#waiting.shift();
    if (waiter !== undefined) waiter.resolve(connection);
    else this.#idle.push(connection);
  }
}
