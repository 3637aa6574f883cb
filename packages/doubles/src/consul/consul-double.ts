import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A Consul KV double: a `node:http` server on 127.0.0.1 that answers `/v1/kv/*` as Consul's
 * agent does (hashicorp/consul `agent/kvs_endpoint.go`, `agent/consul/kvs_endpoint.go`,
 * `agent/consul/state/kvs.go`, `agent/http.go`, and the API docs on blocking queries):
 *
 * - Entries carry `CreateIndex`, `ModifyIndex`, `LockIndex`, `Flags`, `Key` and `Value` (base64;
 *   `null` for an empty value). Every write is one step of one Raft index (the first write is
 *   index 2: index 1 is the cluster's bootstrap); a write that changes neither value nor flags
 *   changes nothing (no new index).
 * - `X-Consul-Index` per request shape: one key, its `ModifyIndex`; `recurse` and `keys`, the
 *   highest index of the prefix's entries and tombstones, else the table's; a 404, the table's
 *   index. An index of 0 is answered as 1 ("index 1 is impossible anyway").
 * - Blocking: with `?index=N` (N > 0) a read waits until the data it reads changed and its index
 *   passed N, or `wait` (default 5 min, at most 10 min) plus up to `wait / 16` at random passed,
 *   and then answers what is there: a return is no promise of a change.
 * - Query flags are presence tests (`?recurse=false` recurses). `?keys` lists names, with an
 *   optional `separator`; `?raw` answers one value as the body.
 * - `PUT` answers `true` or `false`: `?cas=0` writes only a missing key, `?cas=N` only a key whose
 *   `ModifyIndex` is N (a missing key: `false`). `DELETE` answers `true`, also for a missing key;
 *   with `?cas=N` `false` on a mismatch and `true` for a missing key. `?recurse` deletes a tree.
 * - ACLs (when configured): the token from `X-Consul-Token` or `?token=`; an unknown token 403
 *   "ACL not found"; a read or write the token's rules deny 403 "Permission denied"; lists are
 *   filtered to what the token may read.
 *
 * Not modelled: sessions and locks (`?acquire`/`?release` answer 500 "invalid session"),
 * transactions, namespaces, datacenters, consistency modes beyond their validation.
 */
export interface ConsulDoubleOptions {
  /** Turns ACLs on. */
  readonly acl?: ConsulAclConfig | undefined;
  /** `wait` of a blocking query that gives none. @default 300_000 */
  readonly defaultWaitMs?: number | undefined;
  /** Random source for the wait's spread. @default Math.random */
  readonly random?: (() => number) | undefined;
}

export interface ConsulAclConfig {
  /** What a token may do where none of its rules match. @default 'deny' */
  readonly defaultPolicy?: 'allow' | 'deny' | undefined;
  /** Secret ID -> rules. `anonymous` is the rules of requests without a token. */
  readonly tokens: Readonly<Record<string, 'management' | readonly ConsulKeyRule[]>>;
}

/** A `key_prefix` rule: the longest matching prefix decides. */
export interface ConsulKeyRule {
  readonly prefix: string;
  readonly policy: 'read' | 'write' | 'deny';
}

/** One KV entry as stored. */
export interface ConsulEntry {
  readonly Key: string;
  readonly Flags: number;
  readonly Value: Buffer | null;
  readonly CreateIndex: number;
  readonly ModifyIndex: number;
  readonly LockIndex: number;
}

export interface ConsulRequestLogEntry {
  readonly method: string;
  /** The key as decoded from the path. */
  readonly key: string;
  readonly query: URLSearchParams;
  readonly status: number;
  /** The `X-Consul-Index` answered, if any. */
  readonly index: number | undefined;
  /** Whether the request named a token (the token itself is not logged). */
  readonly token: boolean;
  /** When it arrived and when it was answered (`Date.now()`). */
  readonly receivedAt: number;
  readonly answeredAt: number;
}

/** What the next KV requests meet instead of the store. */
export type ConsulFault =
  | {
      readonly kind: 'status';
      readonly status: number;
      readonly body?: string;
      readonly headers?: Record<string, string>;
    }
  /** The connection is reset before an answer. */
  | { readonly kind: 'reset' }
  /** The store answers, but with this `X-Consul-Index` (a misbehaving proxy, an old agent). */
  | { readonly kind: 'index'; readonly index: number };

interface Waiter {
  readonly matches: (key: string) => boolean;
  readonly wake: () => void;
}

const MAX_WAIT_MS = 600_000;
const MAX_VALUE_SIZE = 512 * 1024;

export class ConsulDouble {
  readonly requests: ConsulRequestLogEntry[] = [];
  readonly #server: Server;
  readonly #entries = new Map<string, ConsulEntry>();
  readonly #tombstones = new Map<string, number>();
  readonly #waiters = new Set<Waiter>();
  readonly #sockets = new Set<Socket>();
  readonly #acl: ConsulAclConfig | undefined;
  readonly #defaultWaitMs: number;
  readonly #random: () => number;
  #faults: ConsulFault[] = [];
  /**
   * The Raft index of the last write. A cluster has applied its bootstrap configuration at index
   * 1 before it serves anything, so no KV write can be index 1, the floor of an empty table's
   * `X-Consul-Index`: a blocking query at that floor wakes on the first write, as on Consul.
   */
  #raft = 1;
  /** The index of the last write to the KV table (sets and deletes). */
  #kvs = 0;

  private constructor(options: ConsulDoubleOptions) {
    this.#acl = options.acl;
    this.#defaultWaitMs = options.defaultWaitMs ?? 300_000;
    this.#random = options.random ?? Math.random;
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  /** Starts a double on a free port of 127.0.0.1. */
  static async start(options: ConsulDoubleOptions = {}): Promise<ConsulDouble> {
    const double = new ConsulDouble(options);
    await new Promise<void>((resolve) => double.#server.listen(0, '127.0.0.1', resolve));
    return double;
  }

  /** `http://127.0.0.1:<port>`, the agent's address. */
  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** The Raft index of the last write. */
  get index(): number {
    return this.#raft;
  }

  /** Blocking queries waiting now. */
  get blocked(): number {
    return this.#waiters.size;
  }

  // ---- out of band, as another client would -------------------------------------------------

  /** Writes `key` as a plain `PUT` would; resolves the entry's `ModifyIndex`. */
  put(key: string, value: string | Buffer, flags = 0): number {
    const bytes = typeof value === 'string' ? Buffer.from(value) : value;
    return this.#set(key, bytes.length === 0 ? null : bytes, flags).ModifyIndex;
  }

  /** Deletes `key` as a plain `DELETE` would. */
  delete(key: string): void {
    this.#deleteKey(key);
  }

  entry(key: string): ConsulEntry | undefined {
    return this.#entries.get(key);
  }

  /**
   * A snapshot restore (or a new cluster behind the same address): indexes move back to `index`.
   * Entries keep their values; their indexes are lowered to at most `index`; tombstones go.
   * Blocking queries with a higher index then wait until their `wait` passes, as on Consul.
   */
  restore(index: number): void {
    for (const [key, entry] of this.#entries) {
      this.#entries.set(key, {
        ...entry,
        CreateIndex: Math.min(entry.CreateIndex, index),
        ModifyIndex: Math.min(entry.ModifyIndex, index),
      });
    }
    this.#tombstones.clear();
    this.#raft = index;
    this.#kvs = Math.min(this.#kvs, index);
    this.#wake('all');
  }

  /** The next `times` KV requests meet `fault`. */
  fail(fault: ConsulFault, times = 1): void {
    for (let i = 0; i < times; i++) this.#faults.push(fault);
  }

  clearFaults(): void {
    this.#faults = [];
  }

  async close(): Promise<void> {
    this.#wake('all');
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  // ---- the store -----------------------------------------------------------------------------

  #set(key: string, value: Buffer | null, flags: number): ConsulEntry {
    const existing = this.#entries.get(key);
    if (existing !== undefined && existing.Flags === flags && sameBytes(existing.Value, value))
      return existing;
    const index = ++this.#raft;
    const entry: ConsulEntry = {
      Key: key,
      Flags: flags,
      Value: value,
      CreateIndex: existing?.CreateIndex ?? index,
      ModifyIndex: index,
      LockIndex: existing?.LockIndex ?? 0,
    };
    this.#entries.set(key, entry);
    this.#tombstones.delete(key);
    this.#kvs = index;
    this.#wake([key]);
    return entry;
  }

  #deleteKey(key: string): void {
    if (!this.#entries.has(key)) return;
    const index = ++this.#raft;
    this.#entries.delete(key);
    this.#tombstones.set(key, index);
    this.#kvs = index;
    this.#wake([key]);
  }

  #deleteTree(prefix: string): void {
    const keys = [...this.#entries.keys()].filter((key) => key.startsWith(prefix));
    if (keys.length === 0) return;
    const index = ++this.#raft;
    for (const key of keys) {
      this.#entries.delete(key);
      this.#tombstones.set(key, index);
    }
    this.#kvs = index;
    this.#wake(keys);
  }

  /** Wakes the blocking queries that read one of `changed` (all of them for a restore). */
  #wake(changed: readonly string[] | 'all'): void {
    for (const waiter of [...this.#waiters]) {
      if (changed === 'all' || changed.some(waiter.matches)) waiter.wake();
    }
  }

  /** Entries under `prefix`, and the index of a list of them (entries and tombstones, else the table's). */
  #list(prefix: string): { entries: ConsulEntry[]; index: number } {
    const entries = [...this.#entries.values()]
      .filter((entry) => entry.Key.startsWith(prefix))
      .sort((a, b) => (a.Key < b.Key ? -1 : 1));
    let index = 0;
    if (prefix === '') index = this.#kvs;
    else {
      for (const entry of entries) index = Math.max(index, entry.ModifyIndex);
      for (const [key, at] of this.#tombstones) if (key.startsWith(prefix)) index = Math.max(index, at);
    }
    return { entries, index: index !== 0 ? index : this.#kvs };
  }

  // ---- HTTP ----------------------------------------------------------------------------------

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const receivedAt = Date.now();
    const url = new URL(req.url ?? '/', 'http://consul');
    const query = url.searchParams;
    let key = '';
    let answeredIndex: number | undefined;
    const token = query.get('token') || (req.headers['x-consul-token'] as string | undefined) || undefined;
    const answer = (status: number, body?: string | Buffer, headers: Record<string, string> = {}) => {
      if (headers['X-Consul-Index'] !== undefined) answeredIndex = Number(headers['X-Consul-Index']);
      this.requests.push({
        method: req.method ?? '',
        key,
        query,
        status,
        index: answeredIndex,
        token: token !== undefined,
        receivedAt,
        answeredAt: Date.now(),
      });
      if (!res.writable) return;
      // Consul writes error texts without a Content-Type; Go's net/http then sniffs one, which
      // for text is this (clients parse bodies by it).
      if (
        body !== undefined &&
        body.length > 0 &&
        !Object.keys(headers).some((h) => /^content-type$/i.test(h))
      ) {
        headers = { ...headers, 'Content-Type': 'text/plain; charset=utf-8' };
      }
      res.writeHead(status, headers);
      res.end(body);
    };
    if (!url.pathname.startsWith('/v1/kv/') && url.pathname !== '/v1/kv') {
      answer(404, '');
      return;
    }
    try {
      key = decodeURIComponent(url.pathname.slice('/v1/kv/'.length));
    } catch {
      answer(400, 'Invalid URL path encoding');
      return;
    }
    const body = await readBody(req);
    const fault = this.#faults.shift();
    if (fault?.kind === 'reset') {
      this.requests.push({
        method: req.method ?? '',
        key,
        query,
        status: 0,
        index: undefined,
        token: token !== undefined,
        receivedAt,
        answeredAt: Date.now(),
      });
      req.socket.resetAndDestroy();
      return;
    }
    if (fault?.kind === 'status') {
      answer(fault.status, fault.body ?? '', fault.headers);
      return;
    }
    const forcedIndex = fault?.kind === 'index' ? fault.index : undefined;

    // agent/http.go parseWait and parseConsistency.
    let waitMs = this.#defaultWaitMs;
    const wait = query.get('wait');
    if (wait) {
      const parsed = parseGoDuration(wait);
      if (parsed === undefined) return answer(400, 'Invalid wait time');
      waitMs = parsed;
    }
    waitMs = Math.min(waitMs, MAX_WAIT_MS);
    let minIndex = 0;
    const indexParam = query.get('index');
    if (indexParam) {
      if (!/^\d+$/.test(indexParam)) return answer(400, 'Invalid index');
      minIndex = Number(indexParam);
    }
    if (query.has('stale') && query.has('consistent')) {
      return answer(400, 'Cannot specify ?stale with ?consistent, conflicting semantics.');
    }

    const rules = this.#rulesOf(token);
    if (rules === 'not-found') return answer(403, 'ACL not found');
    const may = (target: string, need: 'read' | 'write') => allowed(rules, target, need, this.#acl);
    const meta = (index: number): Record<string, string> => ({
      'X-Consul-Index': String(forcedIndex ?? Math.max(1, index)),
      'X-Consul-KnownLeader': 'true',
      'X-Consul-LastContact': '0',
    });
    const json = (value: unknown, index: number) =>
      answer(200, JSON.stringify(value), { ...meta(index), 'Content-Type': 'application/json' });
    // Writes answer a bare JSON boolean, without query metadata.
    const result = (value: boolean) =>
      answer(200, JSON.stringify(value), { 'Content-Type': 'application/json' });

    switch (req.method) {
      case 'GET': {
        if (query.has('keys')) {
          const separator = query.has('separator') ? (query.get('separator') ?? '') : '';
          const read = () => {
            const { entries, index } = this.#list(key);
            return { entries: entries.filter((e) => may(e.Key, 'read')), index };
          };
          await this.#block(
            req,
            (changed) => changed.startsWith(key),
            minIndex,
            waitMs,
            () => read().index,
          );
          const { entries, index } = read();
          if (entries.length === 0 && key !== '') return answer(404, '', meta(index));
          return json(listKeys(entries, key, separator), index);
        }
        if (query.has('recurse')) {
          const read = () => {
            const { entries, index } = this.#list(key);
            return { entries: entries.filter((e) => may(e.Key, 'read')), index };
          };
          await this.#block(
            req,
            (changed) => changed.startsWith(key),
            minIndex,
            waitMs,
            () => read().index,
          );
          const { entries, index } = read();
          if (entries.length === 0) return answer(404, '', meta(index));
          return json(entries.map(render), index);
        }
        if (key === '') return answer(400, 'Missing key name');
        // The permission is checked before any blocking (inside the query, on its first run).
        if (!may(key, 'read')) return answer(403, 'Permission denied');
        const indexOf = () => this.#entries.get(key)?.ModifyIndex ?? this.#kvs;
        await this.#block(req, (changed) => changed === key, minIndex, waitMs, indexOf);
        const entry = this.#entries.get(key);
        if (entry === undefined) return answer(404, '', meta(this.#kvs));
        if (query.has('raw')) {
          return answer(200, entry.Value ?? Buffer.alloc(0), {
            ...meta(entry.ModifyIndex),
            'Content-Type': 'text/plain',
            'X-Content-Type-Options': 'nosniff',
            'Content-Security-Policy': 'sandbox',
          });
        }
        return json([render(entry)], entry.ModifyIndex);
      }
      case 'PUT': {
        if (key === '') return answer(400, 'Missing key name');
        if (['cas', 'acquire', 'release'].filter((flag) => query.has(flag)).length > 1) {
          return answer(400, `Conflicting flags: ${query.toString()}\n`);
        }
        let flags = 0;
        if (query.has('flags')) {
          const parsed = parseUint(query.get('flags'));
          if (parsed === undefined)
            return answer(500, `strconv.ParseUint: parsing "${query.get('flags')}": invalid syntax`);
          flags = parsed;
        }
        if (query.has('acquire') || query.has('release')) {
          return answer(500, `invalid session "${query.get('acquire') ?? query.get('release')}"`);
        }
        if (body.length > MAX_VALUE_SIZE) {
          return answer(
            413,
            `Request body(${body.length} bytes) too large, max size: ${MAX_VALUE_SIZE} bytes.`,
          );
        }
        if (!may(key, 'write')) return answer(403, 'Permission denied');
        const value = body.length === 0 ? null : body;
        if (query.has('cas')) {
          const cas = parseUint(query.get('cas'));
          if (cas === undefined)
            return answer(500, `strconv.ParseUint: parsing "${query.get('cas')}": invalid syntax`);
          const existing = this.#entries.get(key);
          const ok =
            (cas === 0 && existing === undefined) ||
            (cas !== 0 && existing !== undefined && existing.ModifyIndex === cas);
          if (ok) this.#set(key, value, flags);
          return result(ok);
        }
        this.#set(key, value, flags);
        return result(true);
      }
      case 'DELETE': {
        if (query.has('recurse') && query.has('cas'))
          return answer(400, `Conflicting flags: ${query.toString()}\n`);
        if (query.has('recurse')) {
          if (!may(key, 'write')) return answer(403, 'Permission denied');
          this.#deleteTree(key);
          return result(true);
        }
        if (key === '') return answer(400, 'Missing key name');
        if (!may(key, 'write')) return answer(403, 'Permission denied');
        if (query.has('cas')) {
          const cas = parseUint(query.get('cas'));
          if (cas === undefined)
            return answer(500, `strconv.ParseUint: parsing "${query.get('cas')}": invalid syntax`);
          const existing = this.#entries.get(key);
          if (existing === undefined) return result(true);
          if (existing.ModifyIndex !== cas) return result(false);
          this.#deleteKey(key);
          return result(true);
        }
        this.#deleteKey(key);
        return result(true);
      }
      default:
        return answer(405, `method ${req.method} not allowed`, { Allow: 'GET, PUT, DELETE' });
    }
  }

  /**
   * Consul's blockingQuery: with a positive index, wait until a write touches what the query
   * reads and its index passed `minIndex`, or until `wait` (plus up to 1/16 of it) passed.
   */
  async #block(
    req: IncomingMessage,
    matches: (key: string) => boolean,
    minIndex: number,
    waitMs: number,
    indexOf: () => number,
  ): Promise<void> {
    if (!(minIndex > 0) || Math.max(1, indexOf()) > minIndex) return;
    const deadline = Date.now() + waitMs + this.#random() * (waitMs / 16);
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        req.socket.off('close', done);
        resolve();
      };
      const waiter: Waiter = {
        matches,
        wake: () => {
          if (Math.max(1, indexOf()) > minIndex) done();
        },
      };
      const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
      timer.unref();
      this.#waiters.add(waiter);
      req.socket.once('close', done);
    });
  }

  #rulesOf(token: string | undefined): 'all' | 'not-found' | readonly ConsulKeyRule[] {
    if (this.#acl === undefined) return 'all';
    const rules = this.#acl.tokens[token ?? 'anonymous'];
    if (rules === undefined) return token === undefined ? [] : 'not-found';
    return rules === 'management' ? 'all' : rules;
  }
}

function allowed(
  rules: 'all' | readonly ConsulKeyRule[],
  key: string,
  need: 'read' | 'write',
  acl: ConsulAclConfig | undefined,
): boolean {
  if (rules === 'all') return true;
  let best: ConsulKeyRule | undefined;
  for (const rule of rules) {
    if (key.startsWith(rule.prefix) && (best === undefined || rule.prefix.length > best.prefix.length))
      best = rule;
  }
  if (best === undefined) return (acl?.defaultPolicy ?? 'deny') === 'allow';
  if (best.policy === 'deny') return false;
  return need === 'read' || best.policy === 'write';
}

function render(entry: ConsulEntry): Record<string, unknown> {
  return {
    LockIndex: entry.LockIndex,
    Key: entry.Key,
    Flags: entry.Flags,
    Value: entry.Value === null ? null : entry.Value.toString('base64'),
    CreateIndex: entry.CreateIndex,
    ModifyIndex: entry.ModifyIndex,
  };
}

/** KVS.ListKeys: names under `prefix`, cut after the first `separator` past it and deduplicated. */
function listKeys(entries: readonly ConsulEntry[], prefix: string, separator: string): string[] {
  const keys: string[] = [];
  const seen = new Set<string>();
  for (const { Key } of entries) {
    if (separator === '') {
      keys.push(Key);
      continue;
    }
    const at = Key.slice(prefix.length).indexOf(separator);
    const name = at === -1 ? Key : Key.slice(0, prefix.length + at + separator.length);
    if (!seen.has(name)) {
      seen.add(name);
      keys.push(name);
    }
  }
  return keys;
}

function sameBytes(a: Buffer | null, b: Buffer | null): boolean {
  if (a === null || b === null) return a === b;
  return a.equals(b);
}

function parseUint(text: string | null): number | undefined {
  return text !== null && /^\d+$/.test(text) ? Number(text) : undefined;
}

const GO_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

/** Go's `time.ParseDuration` (`10s`, `5m`, `1m30s`, `250ms`), in milliseconds. */
export function parseGoDuration(text: string): number | undefined {
  if (text === '0') return 0;
  const pattern = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index !== consumed) return undefined;
    total += Number(match[1]) * (GO_UNITS[match[2] as string] as number);
    consumed += match[0].length;
  }
  return consumed === text.length && consumed > 0 ? total : undefined;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
