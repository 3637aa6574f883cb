import type { SecretError } from '@secret-provider/core';
import {
  type Clock,
  type EmitFunction,
  fingerprint,
  type Poller,
  sleep,
} from '@secret-provider/core/adapter';
import type { IKeyValue, IWatchRequest, IWatchResponse, Namespace, Watcher } from 'etcd3';
import { flattenDocument, type JsonKeyStyle, parseDocument } from './document.js';

/** What the provider watches: every key under its prefix, or the one key holding its document. */
export type WatchScope =
  | { readonly kind: 'prefix' }
  | { readonly kind: 'document'; readonly key: string; readonly jsonKeys: JsonKeyStyle };

/** Everything watched, as of one read. */
export interface Snapshot {
  /** The revision of the store the read saw. */
  readonly revision: bigint;
  readonly kvs: readonly IKeyValue[];
}

/** What a watch session needs from its provider. */
export interface WatchSessionDeps {
  readonly name: string;
  readonly scope: WatchScope;
  readonly namespace: Namespace;
  readonly clock: Clock;
  /** Reads everything watched (values included), linearizably. */
  readonly read: () => Promise<Snapshot>;
  readonly emit: EmitFunction;
  /** Maps a failure for an `error` event. */
  readonly mapError: (error: unknown) => SecretError;
  /** A poller on the provider's clock that retries `task` with core's back-off until it succeeds. */
  readonly retrier: (task: (signal: AbortSignal) => Promise<void>) => Poller;
}

/** Counters of a running watch, for diagnostics. */
export interface EtcdWatchStats {
  /** Watchers created (the first one, and one per replacement). */
  watchers: number;
  /** Replacements of a failed watcher (compaction, cancellation): a full re-read each. */
  resyncs: number;
  /** Reconnections whose resume revision was moved back to the one after the last delivered. */
  rewinds: number;
  /** Events dropped because their revision had been applied already. */
  duplicates: number;
  /** Disconnections of the watch stream. */
  reconnects: number;
  /** Id of the member that answered the watch last (decimal). */
  member: string | undefined;
}

/** What the session knows of one etcd key: the revision last applied and its leaves' fingerprints. */
interface KeyState {
  /** mod_revision of the value applied, or the revision at which the key was seen gone. */
  readonly revision: bigint;
  readonly exists: boolean;
  /** Name -> fingerprint of the value (one entry in prefix scope, the leaves in document scope). */
  readonly leaves: ReadonlyMap<string, string>;
}

const NO_LEAVES: ReadonlyMap<string, string> = new Map();

/**
 * A watch of etcd that loses and repeats nothing. It reads everything once, then watches from
 * the read's revision + 1. Each event is applied only when its revision is past the one already
 * applied for its key (so a replay after a reconnection repeats nothing), and only a change of
 * content is reported. A watcher that fails (etcd3 reports a compaction, a cancellation or a
 * revoked permission as one generic error) is replaced: read everything again, report what
 * differs, watch from that read's revision + 1. A reconnection resumes from the revision after the
 * last one delivered (etcd3 would resume after the header of the watch's creation instead).
 */
export class WatchSession {
  readonly #deps: WatchSessionDeps;
  readonly #state = new Map<string, KeyState>();
  #watcher: Watcher | undefined;
  /** Highest revision the current watcher is known to have delivered everything up to. */
  #progress = 0n;
  #stopped = false;
  #recovery: Poller | undefined;
  #reportedDisconnect = false;
  readonly stats: EtcdWatchStats = {
    watchers: 0,
    resyncs: 0,
    rewinds: 0,
    duplicates: 0,
    reconnects: 0,
    member: undefined,
  };

  constructor(deps: WatchSessionDeps) {
    this.#deps = deps;
  }

  /**
   * Reads everything (the starting point, not reported) and arms the first watcher. A failure
   * rejects (an outage, a permission missing): the provider's base class reports it and starts a
   * new session on its back-off.
   */
  async start(): Promise<void> {
    const snapshot = await this.#deps.read();
    if (this.#stopped) return;
    this.#reconcile(snapshot, false);
    await this.#arm(snapshot.revision + 1n);
  }

  /** Stops watching. Never waits long for an unreachable cluster. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#recovery?.stop();
    const watcher = this.#watcher;
    this.#watcher = undefined;
    if (watcher !== undefined) await this.#cancel(watcher);
  }

  async #cancel(watcher: Watcher): Promise<void> {
    watcher.removeAllListeners();
    // A watcher keeps an `error` listener: the client may still report on it while cancelling.
    watcher.on('error', () => {});
    // The cancellation waits for etcd's answer; a cluster that is gone never gives one.
    const controller = new AbortController();
    await Promise.race([watcher.cancel().catch(() => {}), sleep(1_000, controller.signal, this.#deps.clock)]);
    controller.abort();
  }

  async #arm(from: bigint, signal?: AbortSignal): Promise<void> {
    const { namespace, scope } = this.#deps;
    const builder = namespace.watch();
    if (scope.kind === 'prefix') builder.prefix('');
    else builder.key(scope.key);
    const created = builder.startRevision(from.toString()).create();
    let watcher: Watcher;
    if (signal === undefined) {
      watcher = await created;
    } else {
      const aborted = new Promise<undefined>((resolve) =>
        signal.addEventListener('abort', () => resolve(undefined), { once: true }),
      );
      const first = await Promise.race([created, aborted]);
      if (first === undefined) {
        void created.then((late) => this.#cancel(late)).catch(() => {});
        return;
      }
      watcher = first;
    }
    if (this.#stopped) {
      await this.#cancel(watcher);
      return;
    }
    this.stats.watchers++;
    this.#progress = from - 1n;
    this.#watcher = watcher;
    watcher.on('put', (kv) => this.#apply(kv, 'put'));
    watcher.on('delete', (kv) => this.#apply(kv, 'delete'));
    watcher.on('data', (response: IWatchResponse) => {
      // After the events of a response are handed out, everything up to its header is delivered.
      const revision = BigInt(response.header.revision);
      if (revision > this.#progress) this.#progress = revision;
      this.stats.member = response.header.member_id;
    });
    watcher.on('disconnected', (error: unknown) => {
      this.stats.reconnects++;
      if (this.#reportedDisconnect) return;
      this.#reportedDisconnect = true;
      this.#reportError(error);
    });
    watcher.on('connecting', (request: IWatchRequest) => {
      // The client hands out the create request it is about to send, with the revision it resumes
      // from. It moves that revision to the header of the watch's creation + 1, which can be past
      // events not delivered yet (a stream that died right after the creation): resuming from the
      // revision after the last one delivered loses nothing, and replays are dropped.
      const create = request as { start_revision?: string | number };
      const resume = create.start_revision === undefined ? 0n : BigInt(create.start_revision);
      if (resume > this.#progress + 1n) {
        create.start_revision = (this.#progress + 1n).toString();
        this.stats.rewinds++;
      }
    });
    watcher.on('connected', (response: IWatchResponse) => {
      this.#reportedDisconnect = false;
      this.stats.member = response.header.member_id;
    });
    watcher.on('error', (error: unknown) => this.#replace(watcher, error));
  }

  /** Set while the first read is applied: what exists then is the starting point, not a change. */
  #silent = false;

  /** Drops a failed watcher and reads everything before watching again, retrying with back-off. */
  #replace(failed: Watcher, error: unknown): void {
    if (this.#stopped || this.#watcher !== failed) return;
    this.#watcher = undefined;
    // The client has already dropped a watcher it reported failed: cancelling it would wait for an
    // answer that never comes.
    failed.removeAllListeners();
    failed.on('error', () => {});
    this.#reportError(error);
    this.stats.resyncs++;
    this.#recover(async (signal) => {
      const snapshot = await this.#deps.read();
      if (signal.aborted || this.#stopped) return;
      this.#reconcile(snapshot, true);
      await this.#arm(snapshot.revision + 1n, signal);
    });
  }

  /**
   * Runs `task` until it succeeds, on core's back-off; failures are reported as `error` events.
   * A new recovery takes over from one still retrying (each reads everything).
   */
  #recover(task: (signal: AbortSignal) => Promise<void>): void {
    const previous = this.#recovery;
    const recovery = this.#deps.retrier(async (signal) => {
      await task(signal);
      if (this.#recovery === recovery) this.#recovery = undefined;
      void recovery.stop();
    });
    this.#recovery = recovery;
    void previous?.stop();
    recovery.start();
  }

  #reportError(error: unknown): void {
    this.#deps.emit('error', {
      provider: this.#deps.name,
      error: this.#deps.mapError(error),
      detectedAt: new Date(),
    });
  }

  /** Leaves of one etcd value: the value itself in prefix scope, the document's leaves else. */
  #leavesOf(kv: IKeyValue): ReadonlyMap<string, string> | undefined {
    const { scope } = this.#deps;
    if (scope.kind === 'prefix') return new Map([[kv.key.toString('utf8'), fingerprint(kv.value)]]);
    try {
      const leaves = new Map<string, string>();
      for (const [name, value] of flattenDocument(parseDocument(kv.value.toString('utf8')), scope.jsonKeys))
        leaves.set(name, fingerprint(value));
      return leaves;
    } catch (error) {
      this.#reportError(error);
      return undefined;
    }
  }

  #apply(kv: IKeyValue, type: 'put' | 'delete', revisionOverride?: bigint): void {
    if (this.#stopped) return;
    const key = kv.key.toString('utf8');
    const revision = revisionOverride ?? BigInt(kv.mod_revision);
    const known = this.#state.get(key);
    if (known !== undefined && revision <= known.revision) {
      this.stats.duplicates++;
      return;
    }
    const before = known?.exists ? known.leaves : NO_LEAVES;
    if (type === 'delete') {
      this.#state.set(key, { revision, exists: false, leaves: NO_LEAVES });
      this.#report(before, NO_LEAVES, known?.revision, revision, true);
      return;
    }
    // A document that cannot be parsed keeps its last good leaves (reported as an error once).
    const after = this.#leavesOf(kv) ?? before;
    this.#state.set(key, { revision, exists: true, leaves: after });
    this.#report(before, after, known?.exists ? known.revision : undefined, revision, false);
  }

  #report(
    before: ReadonlyMap<string, string>,
    after: ReadonlyMap<string, string>,
    oldRevision: bigint | undefined,
    revision: bigint,
    deleted: boolean,
  ): void {
    if (this.#silent) return;
    const { emit, name } = this.#deps;
    const detectedAt = new Date();
    const oldVersion = oldRevision?.toString();
    const newVersion = revision.toString();
    const rotated: string[] = [];
    for (const [leaf, print] of after) {
      const previous = before.get(leaf);
      if (previous === undefined)
        emit('added', { provider: name, key: leaf, version: newVersion, detectedAt });
      else if (previous !== print) rotated.push(leaf);
    }
    if (rotated.length > 0) {
      emit('rotated', {
        provider: name,
        keys: rotated,
        changes: rotated.map((leaf) => ({ key: leaf, oldVersion, newVersion })),
        detectedAt,
      });
    }
    for (const leaf of before.keys()) {
      if (!after.has(leaf)) {
        emit('removed', {
          provider: name,
          key: leaf,
          version: deleted ? oldVersion : newVersion,
          detectedAt,
        });
      }
    }
  }

  /**
   * Applies a read: values newer than what is known are applied (reported when `report`), and
   * keys known to exist but absent from the read, as of a revision past theirs, are gone.
   */
  #reconcile(snapshot: Snapshot, report: boolean): void {
    const seen = new Set<string>();
    this.#silent = !report;
    try {
      for (const kv of snapshot.kvs) {
        seen.add(kv.key.toString('utf8'));
        this.#apply(kv, 'put');
      }
      for (const [key, state] of [...this.#state]) {
        if (state.exists && !seen.has(key)) {
          this.#apply({ key: Buffer.from(key, 'utf8') } as IKeyValue, 'delete', snapshot.revision);
        }
      }
    } finally {
      this.#silent = false;
    }
    if (snapshot.revision > this.#progress && this.#watcher === undefined) this.#progress = snapshot.revision;
  }
}
