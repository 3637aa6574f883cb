// The memory world: caches and chains over memory stores whose providers can be made to fail or
// to stall, on a fake clock. Every change of a store and every backend read is stamped with one
// logical clock (`tick`), so a read's result can be checked against what the stores held while
// the read was in flight, and against what a cache was allowed to keep.
import { AsyncLocalStorage } from 'node:async_hooks';
import { ChainedProvider, type ChainedProviderOptions } from '@secret-provider/chained';
import {
  CachedProvider,
  type CachedProviderOptions,
  createEmitter,
  hasKey,
  ProviderUnavailableError,
  type SecretEvents,
  type SecretProvider,
  type SetOptions,
  type WatchHandle,
} from '@secret-provider/core';
import type { HookContext, StoredSecret } from '@secret-provider/core/adapter';
import { MemoryProvider, type MemoryProviderOptions, MemoryStore } from '@secret-provider/memory';
import fc from 'fast-check';
import {
  type AbortMode,
  abortReason,
  codeOf,
  drain,
  type Harness,
  Observer,
  type State,
  show,
  TAILS,
  type Tally,
  ValueBook,
  violation,
} from './harness.js';

export const KEYS = ['alpha', 'beta', 'gamma'] as const;

/** The id of the operation a backend call is made for. */
const calling = new AsyncLocalStorage<number>();

export type ReadKind = 'get' | 'has' | 'keys';
export type WriteKind = 'set' | 'delete';

/** One step of a run. Indices wrap around the keys, stores and backends a variant has. */
export type MemoryStep =
  | { op: 'get' | 'has' | 'delete'; key: number; abort: AbortMode; reason: number }
  | { op: 'keys'; abort: AbortMode; reason: number }
  | { op: 'set'; key: number; tail: number; abort: AbortMode; reason: number }
  /** Out of band: the backing store changes behind the provider's back. */
  | { op: 'rotate'; store: number; key: number; tail: number }
  | { op: 'remove'; store: number; key: number }
  /** The next `count` reads, writes or deletes of a backend throw `ProviderUnavailableError`. */
  | { op: 'fail'; backend: number; count: number }
  /** The next call of a backend stalls, before or after it touches the store, until released. */
  | { op: 'slow'; backend: number; at: 'before' | 'after' }
  | { op: 'release'; index: number }
  /** The fake clock of the caches moves on. */
  | { op: 'advance'; ms: number }
  /** Close the provider (checking that it refuses everything), then open a new one on the same stores. */
  | { op: 'close' };

type CallKind = 'read' | 'write' | 'delete';

interface BackendRead {
  readonly backend: number;
  readonly key: string;
  readonly state: State;
  readonly tick: number;
  doneTick: number;
  doneTime: number;
}

interface Apply {
  /** The operation whose call made the change (through the async context of its call). */
  readonly op: number | undefined;
  readonly backend: number;
  readonly kind: 'set' | 'delete';
  readonly key: string;
  readonly value: State;
  readonly tick: number;
  claimed: boolean;
}

interface Consumed {
  /** The operation whose call met the failure. */
  readonly op: number | undefined;
  readonly backend: number;
  readonly kind: CallKind;
  readonly key: string;
  readonly tick: number;
}

interface Gate {
  readonly backend: number;
  readonly kind: CallKind;
  readonly key: string;
  readonly open: () => void;
}

/** The failure and stall switches of one backend position, kept across re-opens. */
class Backend {
  failures = 0;
  readonly armed: Array<'before' | 'after'> = [];

  constructor(
    readonly index: number,
    readonly world: MemoryHarness,
  ) {}

  /**
   * Runs one call of a memory provider's hook: stalls where a gate is armed, fails where a
   * failure is armed (before touching the store, so a failed write changes nothing), and
   * records what the store gave or took, stamped with the world's clock.
   */
  async guard<T>(
    kind: CallKind,
    key: string,
    provider: string,
    access: () => Promise<T>,
    readAtOnce = false,
  ): Promise<T> {
    const world = this.world;
    const armed = this.armed.shift();
    // A provider whose synchronous presence check says "yes" promises that a read started in the
    // same tick finds the key (the chain relies on it): its reads touch the store at once.
    const gate = readAtOnce && kind === 'read' && armed === 'before' ? 'after' : armed;
    if (gate === 'before') await world.hold(this.index, kind, key);
    if (this.failures > 0) {
      this.failures--;
      world.consumed.push({ op: calling.getStore(), backend: this.index, kind, key, tick: world.next() });
      throw new ProviderUnavailableError(
        { provider, key, operation: kind === 'read' ? 'get' : kind === 'write' ? 'set' : 'delete' },
        `backend of "${provider}" unavailable (injected failure)`,
      );
    }
    const store = world.stores[this.index] as MemoryStore;
    const read: BackendRead | undefined =
      kind === 'read'
        ? {
            backend: this.index,
            key,
            state: store.read(key)?.value ?? null,
            tick: world.next(),
            doneTick: -1,
            doneTime: -1,
          }
        : undefined;
    const result = await access();
    if (read !== undefined) world.reads.push(read);
    if (gate === 'after') await world.hold(this.index, kind, key);
    if (read !== undefined) {
      read.doneTick = world.next();
      read.doneTime = world.time;
    }
    return result;
  }
}

interface FlakyOptions extends MemoryProviderOptions {
  readonly backend: Backend;
}

/**
 * A memory provider whose reads, writes and deletes pass through its backend's switches. Its
 * presence check is derived from its reads (it overrides `readSecret` alone).
 */
class FlakyMemoryProvider extends MemoryProvider {
  readonly #backend: Backend;

  constructor(options: FlakyOptions) {
    super(options);
    this.#backend = options.backend;
  }

  protected override readSecret(key: string): Promise<StoredSecret | undefined> {
    return this.#backend.guard('read', key, this.name, () => super.readSecret(key), this.readAtOnce());
  }

  protected readAtOnce(): boolean {
    return false;
  }

  protected override writeSecret(
    key: string,
    value: string,
    context: HookContext & SetOptions,
  ): Promise<void> {
    return this.#backend.guard('write', key, this.name, async () => {
      await super.writeSecret(key, value, context);
      this.#backend.world.applied(this.#backend.index, 'set', key, value);
    });
  }

  protected override deleteSecret(key: string): Promise<boolean> {
    return this.#backend.guard('delete', key, this.name, async () => {
      const existed = await super.deleteSecret(key);
      if (existed) this.#backend.world.applied(this.#backend.index, 'delete', key, null);
      return existed;
    });
  }
}

/** The same, with its own synchronous presence check (a chain then skips it without a read). */
class FlakyPresenceProvider extends FlakyMemoryProvider {
  protected override hasSecret(key: string): boolean {
    return this.store.has(key);
  }

  protected override readAtOnce(): boolean {
    return true;
  }
}

/** What a variant builds its provider from. */
export interface BuildContext {
  readonly stores: readonly MemoryStore[];
  /** A memory provider on store `index` through the backend switches of that position. */
  flaky(
    index: number,
    options?: { presence?: boolean; cache?: MemoryProviderOptions['cache'] },
  ): MemoryProvider;
  /** The fake clock (epoch ms) and a seeded random source, for caches. */
  readonly now: () => number;
  readonly random: () => number;
}

export interface MemoryVariant {
  readonly name: string;
  readonly stores: number;
  /**
   * How long a value and a not-found may be served from a cache after they were read, when no
   * watch tells the cache of changes. Without it every read must be linearizable: its result is
   * what the stores held at some moment while it was in flight.
   */
  readonly staleFor?: { readonly value: number; readonly absent: number } | undefined;
  /** The variant serves the last good value when the backend fails (stale-if-error). */
  readonly masksFailures: boolean;
  /** The provider is watched from the start; events are recorded and checked. */
  readonly watched: boolean;
  build(context: BuildContext): SecretProvider;
}

const cacheOptions = (
  context: BuildContext,
  options: Omit<CachedProviderOptions, 'now' | 'random'>,
): CachedProviderOptions => ({ ...options, now: context.now, random: context.random });

export const CACHE_VARIANTS: readonly MemoryVariant[] = [
  {
    name: 'CachedProvider over memory, unwatched',
    stores: 1,
    staleFor: { value: 1_000, absent: 300 },
    masksFailures: false,
    watched: false,
    build: (c) =>
      new CachedProvider(c.flaky(0), cacheOptions(c, { ttl: 1_000, negativeTtl: 300, jitter: 0.2 })),
  },
  {
    name: 'CachedProvider over memory, watched, stale-while-revalidate and stale-if-error',
    stores: 1,
    masksFailures: true,
    watched: true,
    build: (c) =>
      new CachedProvider(
        c.flaky(0),
        cacheOptions(c, {
          ttl: 1_000,
          negativeTtl: 300,
          staleWhileRevalidate: 400,
          staleIfError: 3_000,
        }),
      ),
  },
  {
    name: 'memory provider with its cache option, unwatched, stale-if-error',
    stores: 1,
    staleFor: { value: 800 + 1_500, absent: 0 },
    masksFailures: true,
    watched: false,
    build: (c) =>
      c.flaky(0, {
        cache: { ttl: 800, negativeTtl: 0, staleIfError: 1_500, now: c.now, random: c.random },
      }),
  },
  {
    name: 'memory provider (own presence check) with its cache option, watched',
    stores: 1,
    masksFailures: false,
    watched: true,
    build: (c) =>
      c.flaky(0, { presence: true, cache: { ttl: 500, negativeTtl: 200, now: c.now, random: c.random } }),
  },
];

const chain = (providers: SecretProvider[], options?: ChainedProviderOptions) =>
  new ChainedProvider(providers, options);

export const CHAIN_VARIANTS: readonly MemoryVariant[] = [
  {
    name: 'chain of three memory providers, default options',
    stores: 3,
    masksFailures: false,
    watched: false,
    build: (c) => chain([c.flaky(0, { presence: true }), c.flaky(1), c.flaky(2)]),
  },
  {
    name: 'chain of two memory providers, index, watched',
    stores: 2,
    masksFailures: false,
    watched: true,
    build: (c) => chain([c.flaky(0), c.flaky(1)], { index: true }),
  },
  {
    name: 'chain of three memory providers, index, unwatched',
    stores: 3,
    masksFailures: false,
    watched: false,
    build: (c) => chain([c.flaky(0), c.flaky(1, { presence: true }), c.flaky(2)], { index: true }),
  },
];

const abortArb = fc.constantFrom<AbortMode>('none', 'none', 'none', 'none', 'before', 'during', 'late');

/** Random steps, weighted so that reads and writes dominate and closes stay rare. */
export function memoryStep(variant: MemoryVariant): fc.Arbitrary<MemoryStep> {
  const key = fc.nat({ max: KEYS.length - 1 });
  const store = fc.nat({ max: variant.stores - 1 });
  const reason = fc.nat({ max: 3 });
  const tail = fc.nat({ max: TAILS.length });
  return fc.oneof(
    { weight: 8, arbitrary: fc.record({ op: fc.constant('get' as const), key, abort: abortArb, reason }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('has' as const), key, abort: abortArb, reason }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('keys' as const), abort: abortArb, reason }) },
    {
      weight: 5,
      arbitrary: fc.record({ op: fc.constant('set' as const), key, tail, abort: abortArb, reason }),
    },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), key, abort: abortArb, reason }) },
    { weight: 4, arbitrary: fc.record({ op: fc.constant('rotate' as const), store, key, tail }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('remove' as const), store, key }) },
    {
      weight: 2,
      arbitrary: fc.record({
        op: fc.constant('fail' as const),
        backend: store,
        count: fc.integer({ min: 1, max: 3 }),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        op: fc.constant('slow' as const),
        backend: store,
        at: fc.constantFrom<'before' | 'after'>('before', 'after'),
      }),
    },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('release' as const), index: fc.nat({ max: 3 }) }) },
    {
      weight: 3,
      arbitrary: fc.record({
        op: fc.constant('advance' as const),
        ms: fc.constantFrom(1, 50, 199, 250, 301, 450, 799, 1_001, 2_000, 5_000),
      }),
    },
    { weight: 1, arbitrary: fc.constant({ op: 'close' as const }) },
  );
}

type Outcome =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: unknown };

interface Op {
  readonly id: number;
  /** The step that started it (for messages). */
  readonly step: number;
  readonly kind: ReadKind | WriteKind;
  readonly key: string | undefined;
  readonly value: string | undefined;
  readonly inv: number;
  readonly tInv: number;
  readonly gen: number;
  /** Invoked on a provider already closed. */
  readonly onClosed: boolean;
  readonly abort: AbortMode;
  readonly reason: unknown;
  /** Apply tick of the last provider write of the key that had completed when this one started. */
  readonly lo: number;
  abortedWhilePending: boolean;
  /** Another operation was in flight at some point of this one's life. */
  concurrent: boolean;
  resp: number;
  outcome: Outcome | undefined;
  apply: Apply | undefined;
}

interface Watch {
  readonly handle: WatchHandle;
  readonly gen: number;
  readonly presence: Map<string, boolean>;
  /** Keys named by events since the start of the current step. */
  readonly named: Set<string>;
}

/** A memory variant under test with its model. */
export class MemoryHarness implements Harness<MemoryStep> {
  readonly variant: MemoryVariant;
  readonly tally: Tally;
  readonly book = new ValueBook();
  readonly observer = new Observer();
  readonly stores: MemoryStore[];
  readonly backends: Backend[];
  readonly reads: BackendRead[] = [];
  readonly applies: Apply[] = [];
  readonly consumed: Consumed[] = [];
  readonly gates: Gate[] = [];
  /** Composite state of each key (what an ordered lookup of the stores returns), as it changed. */
  readonly #history = new Map<string, Array<{ tick: number; state: State }>>();
  /** State of each key in each store, as it changed. */
  readonly #storeHistory: Array<Map<string, Array<{ tick: number; state: State }>>>;
  readonly #lo = new Map<string, number>();
  readonly #pending = new Set<Op>();
  readonly #settled: Op[] = [];
  readonly #closedAt = new Map<number, number>();
  #tick = 0;
  time = 1_700_000_000_000;
  #seed: number;
  #ops = 0;
  #opIds = 0;
  #gen = 0;
  provider: SecretProvider;
  #watch: Watch | undefined;

  private constructor(variant: MemoryVariant, tally: Tally, seed: number) {
    this.variant = variant;
    this.tally = tally;
    this.#seed = seed;
    this.stores = Array.from({ length: variant.stores }, () => new MemoryStore());
    this.backends = this.stores.map((_, i) => new Backend(i, this));
    this.#storeHistory = this.stores.map(() => new Map());
    for (const key of KEYS) this.#history.set(key, [{ tick: 0, state: null }]);
    this.stores.forEach((store, index) => {
      for (const key of KEYS) this.#storeHistory[index]?.set(key, [{ tick: 0, state: null }]);
      store.subscribe((change) => this.#changed(index, change.key));
    });
    this.observer.start();
    this.provider = this.#build();
  }

  static async create(variant: MemoryVariant, tally: Tally, seed = 1): Promise<MemoryHarness> {
    const harness = new MemoryHarness(variant, tally, seed);
    await harness.#arm();
    return harness;
  }

  next(): number {
    return ++this.#tick;
  }

  #random = (): number => {
    this.#seed = (Math.imul(this.#seed, 1103515245) + 12345) | 0;
    return ((this.#seed >>> 8) & 0xffffff) / 0x1000000;
  };

  #build(): SecretProvider {
    return this.variant.build({
      stores: this.stores,
      now: () => this.time,
      random: this.#random,
      flaky: (index, options = {}) => {
        const Class = options.presence ? FlakyPresenceProvider : FlakyMemoryProvider;
        return new Class({
          name: `m${index}`,
          store: this.stores[index] as MemoryStore,
          backend: this.backends[index] as Backend,
          ...(options.cache === undefined ? {} : { cache: options.cache }),
        });
      },
    });
  }

  async #arm(): Promise<void> {
    if (!this.variant.watched) return;
    const emitter = createEmitter();
    const gen = this.#gen;
    const presence = new Map<string, boolean>();
    const named = new Set<string>();
    emitter.on('*', (type, event) => {
      this.observer.event(event);
      if (this.#watch?.gen !== gen) return;
      const e = event as SecretEvents[keyof SecretEvents];
      const names = 'keys' in e ? [...e.keys] : 'key' in e && e.key !== undefined ? [e.key] : [];
      if (type === 'added' || type === 'rotated') for (const k of names) presence.set(k, true);
      if (type === 'removed') for (const k of names) presence.set(k, false);
      if (type === 'added' || type === 'rotated' || type === 'removed') for (const k of names) named.add(k);
    });
    const handle = this.provider.watch(emitter);
    this.#watch = { handle, gen, presence, named };
    await handle.ready;
    for (const key of KEYS) presence.set(key, this.#stateAt(key, this.#tick) !== null);
  }

  /** A store changed: record it, and the composite state if that changed. */
  #changed(index: number, key: string): void {
    const tick = this.next();
    const state = this.stores[index]?.read(key)?.value ?? null;
    this.#storeHistory[index]?.get(key)?.push({ tick, state });
    let composite: State = null;
    for (const store of this.stores) {
      const entry = store.read(key);
      if (entry !== undefined) {
        composite = entry.value;
        break;
      }
    }
    const history = this.#history.get(key);
    if (history !== undefined && history[history.length - 1]?.state !== composite)
      history.push({ tick, state: composite });
  }

  applied(backend: number, kind: 'set' | 'delete', key: string, value: State): void {
    this.applies.push({
      op: calling.getStore(),
      backend,
      kind,
      key,
      value,
      tick: this.next(),
      claimed: false,
    });
  }

  /** Stalls a backend call until a `release` step (or the end of the run) opens its gate. */
  hold(backend: number, kind: CallKind, key: string): Promise<void> {
    return new Promise((resolve) => {
      const gate: Gate = {
        backend,
        kind,
        key,
        open: () => {
          const at = this.gates.indexOf(gate);
          if (at >= 0) this.gates.splice(at, 1);
          resolve();
        },
      };
      this.gates.push(gate);
    });
  }

  #stateAt(key: string, tick: number, history = this.#history.get(key)): State {
    let state: State = null;
    for (const change of history ?? []) {
      if (change.tick > tick) break;
      state = change.state;
    }
    return state;
  }

  /** Whether `matches` holds for the composite state of `key` at some tick in [from, to]. */
  #heldDuring(
    key: string,
    from: number,
    to: number,
    matches: (s: State) => boolean,
    history = this.#history.get(key),
  ): boolean {
    if (matches(this.#stateAt(key, from, history))) return true;
    return (history ?? []).some((c) => c.tick > from && c.tick <= to && matches(c.state));
  }

  /**
   * Whether an ordered lookup running from `from` to `to` could have answered a state that
   * `matches`: store 0 held it at some tick of the window, or store 0 lacked the key at some
   * tick and store 1 held it later on, and so on; a not-found needs every store to have lacked
   * the key, one after the other. With one store this is plain linearizability. A lookup cannot
   * read several stores at one instant, so a concurrent change of an earlier store may be missed.
   */
  #lookupHeld(key: string, from: number, to: number, matches: (s: State) => boolean): boolean {
    let at = from;
    for (const stores of this.#storeHistory) {
      const history = stores.get(key) ?? [];
      if (this.#heldDuring(key, at, to, (s) => s !== null && matches(s), history)) return true;
      if (this.#stateAt(key, at, history) !== null) {
        const gone = history.find((c) => c.tick > at && c.tick <= to && c.state === null);
        if (gone === undefined) return false;
        at = gone.tick;
      }
    }
    return matches(null);
  }

  /** End (exclusive) of the composite interval of `key` that contains `tick`. */
  #intervalEnd(key: string, tick: number): number {
    const change = this.#history.get(key)?.find((c) => c.tick > tick);
    return change === undefined ? Number.POSITIVE_INFINITY : change.tick;
  }

  // ---- steps -------------------------------------------------------------------------------

  applicable(step: MemoryStep): boolean {
    if (step.op === 'release') return this.gates.length > 0;
    return true;
  }

  async run(step: MemoryStep): Promise<void> {
    this.#ops++;
    this.tally.count(
      this.variant.name,
      'abort' in step && step.abort !== 'none' ? `${step.op}+abort` : step.op,
    );
    const before = KEYS.map((key) => this.#stateAt(key, this.#tick));
    this.#watch?.named.clear();
    const watchGen = this.#watch?.gen;
    switch (step.op) {
      case 'get':
      case 'has':
      case 'delete':
      case 'set':
      case 'keys':
        await this.#operate(step);
        break;
      case 'rotate':
        this.stores[step.store % this.stores.length]?.set(this.#key(step.key), this.book.next(step.tail));
        break;
      case 'remove':
        this.stores[step.store % this.stores.length]?.delete(this.#key(step.key));
        break;
      case 'fail':
        (this.backends[step.backend % this.backends.length] as Backend).failures += step.count;
        break;
      case 'slow':
        (this.backends[step.backend % this.backends.length] as Backend).armed.push(step.at);
        break;
      case 'release':
        this.gates[step.index % this.gates.length]?.open();
        break;
      case 'advance':
        this.time += step.ms;
        break;
      case 'close':
        await this.#close();
        break;
    }
    await drain();
    this.#verifySettled();
    if (this.#watch !== undefined && this.#watch.gen === watchGen) this.#verifyEvents(before);
    this.observer.check(this.book);
  }

  #key(index: number): string {
    return KEYS[index % KEYS.length] as string;
  }

  async #operate(
    step: Extract<MemoryStep, { abort: AbortMode }>,
    provider = this.provider,
    onClosed = false,
  ): Promise<void> {
    const key = step.op === 'keys' ? undefined : this.#key(step.key);
    const value = step.op === 'set' ? this.book.next(step.tail) : undefined;
    const controller = step.abort === 'none' ? undefined : new AbortController();
    const reason = abortReason(step.reason);
    if (step.abort === 'before') controller?.abort(reason);
    const signal = controller?.signal;
    const options = signal === undefined ? undefined : { signal };
    const op: Op = {
      id: ++this.#opIds,
      step: this.#ops,
      kind: step.op,
      key,
      value,
      inv: this.next(),
      tInv: this.time,
      gen: onClosed ? this.#gen - 1 : this.#gen,
      onClosed,
      abort: step.abort,
      reason,
      lo: key === undefined ? -1 : (this.#lo.get(key) ?? -1),
      abortedWhilePending: false,
      concurrent: this.#pending.size > 0,
      resp: -1,
      outcome: undefined,
      apply: undefined,
    };
    for (const other of this.#pending) other.concurrent = true;
    this.#pending.add(op);
    let promise: Promise<unknown> = Promise.resolve();
    let synchronous = false;
    calling.run(op.id, () => {
      try {
        switch (step.op) {
          case 'get':
            promise = provider.get(key as string, options).then((secret) => secret.reveal());
            break;
          case 'has': {
            const answer =
              typeof provider.has === 'function'
                ? provider.has(key as string, options)
                : hasKey(provider, key as string, options);
            // A synchronous answer (a local lookup, a cached presence) is settled before any abort.
            synchronous = typeof answer === 'boolean';
            promise = Promise.resolve(answer);
            break;
          }
          case 'keys':
            promise = provider.keys(options);
            break;
          case 'set':
            promise = provider.set(key as string, value as string, options);
            break;
          default:
            promise = provider.delete(key as string, options);
        }
      } catch (error) {
        violation(`${step.op} threw synchronously instead of rejecting: ${show(error)}`);
      }
    });
    promise.then(
      (result) => this.#settle(op, { ok: true, value: result }),
      (error: unknown) => {
        this.observer.error(error);
        this.#settle(op, { ok: false, error });
      },
    );
    if (step.abort === 'during' || step.abort === 'late') {
      if (step.abort === 'late') await drain(1);
      op.abortedWhilePending = op.outcome === undefined && !synchronous;
      controller?.abort(reason);
    }
  }

  #settle(op: Op, outcome: Outcome): void {
    op.resp = this.next();
    op.outcome = outcome;
    this.#pending.delete(op);
    this.#settled.push(op);
    // A write that reached the store counts as completed for every read that starts from now on.
    // Writes of an earlier (closed) instance are out of band for the one that replaced it.
    if ((op.kind === 'set' || op.kind === 'delete') && op.key !== undefined && !op.onClosed) {
      const apply = this.applies.find((a) => a.op === op.id && a.backend === 0 && a.key === op.key);
      if (apply !== undefined) {
        apply.claimed = true;
        op.apply = apply;
        if (op.gen === this.#gen) this.#lo.set(op.key, Math.max(this.#lo.get(op.key) ?? -1, apply.tick));
      }
    }
  }

  async #close(): Promise<void> {
    const closed = this.provider;
    const gen = this.#gen;
    const watch = this.#watch;
    await withDeadline(closed.close(), 'close');
    this.#closedAt.set(gen, this.next());
    await withDeadline(closed.close(), 'a second close');
    if (watch !== undefined)
      await withDeadline(watch.handle.done ?? Promise.resolve(), 'the watch to end on close');
    this.#watch = undefined;
    this.#gen++;
    this.#lo.clear();
    this.provider = this.#build();
    // Everything the closed provider is asked now rejects with CLOSED (checked when they settle).
    const reason = 0;
    for (const step of [
      { op: 'get', key: 0, abort: 'none', reason },
      { op: 'has', key: 1, abort: 'none', reason },
      { op: 'keys', abort: 'none', reason },
      { op: 'set', key: 2, tail: 0, abort: 'none', reason },
      { op: 'delete', key: 0, abort: 'none', reason },
    ] as const)
      await this.#operate(step, closed, true);
    const late = closed.watch(createEmitter());
    if (!late.stopped) violation('watch on a closed provider returned a running handle');
    const ready = await late.ready.then(
      () => undefined,
      (error: unknown) => error,
    );
    this.observer.error(ready);
    if (codeOf(ready, 'watch on a closed provider') !== 'CLOSED')
      violation(`watch on a closed provider: ready rejected with ${show(ready)}`);
    await this.#arm();
  }

  // ---- checks ------------------------------------------------------------------------------

  #verifySettled(): void {
    for (const op of this.#settled.splice(0)) this.#verify(op);
  }

  #verify(op: Op): void {
    const what = `${op.kind}${op.key === undefined ? '' : `(${op.key})`} of step ${op.step}`;
    const outcome = op.outcome as Outcome;
    const write = op.kind === 'set' || op.kind === 'delete';
    const error = outcome.ok ? undefined : outcome.error;
    if (op.onClosed) {
      if (outcome.ok || codeOf(error, what) !== 'CLOSED')
        violation(`${what} on a closed provider: ${outcome.ok ? 'resolved' : show(error)}, expected CLOSED`);
      if (this.applies.some((a) => a.tick > op.inv && a.tick < op.resp && a.value === op.value && write))
        violation(`${what} on a closed provider changed the store`);
      return;
    }
    if (op.abort === 'before') {
      if (outcome.ok || error !== op.reason)
        violation(
          `${what} with an aborted signal: ${outcome.ok ? 'resolved' : show(error)}, expected the signal's reason`,
        );
      if (op.apply !== undefined) violation(`${what} with an aborted signal changed the store`);
      return;
    }
    if (!outcome.ok && op.abort !== 'none' && error === op.reason) {
      if (!op.abortedWhilePending)
        violation(`${what} rejected with the abort reason although it had settled first`);
      return;
    }
    if (op.abortedWhilePending && !write)
      violation(
        `${what} aborted while in flight: ${outcome.ok ? `resolved ${show(outcome.value)}` : show(error)}, expected the signal's reason`,
      );
    const consumed = this.consumed.some(
      (c) =>
        c.tick > op.inv &&
        c.tick < op.resp &&
        (op.kind === 'keys' || c.key === op.key) &&
        c.kind === (op.kind === 'set' ? 'write' : op.kind === 'delete' ? 'delete' : 'read'),
    );
    let state: State | boolean | string[];
    if (!outcome.ok) {
      const code = codeOf(error, what);
      if (code === 'CLOSED') {
        const closedAt = this.#closedAt.get(op.gen);
        if (closedAt === undefined || closedAt > op.resp)
          violation(`${what} rejected CLOSED on an open provider`);
        if (op.apply !== undefined) violation(`${what} rejected CLOSED but changed the store`);
        return;
      }
      if (code === 'UNAVAILABLE') {
        if (!consumed) violation(`${what} rejected UNAVAILABLE without a backend failure during it`);
        if (op.apply !== undefined) violation(`${what} rejected UNAVAILABLE but changed the store`);
        return;
      }
      if (code !== 'NOT_FOUND' || (op.kind !== 'get' && op.kind !== 'delete'))
        violation(`${what} rejected with unexpected ${show(error)}`);
      if (op.kind === 'delete') {
        const history = this.#storeHistory[0]?.get(op.key as string);
        if (!this.#heldDuring(op.key as string, op.inv, op.resp, (s) => s === null, history))
          violation(`${what} rejected NOT_FOUND while the first store held the key throughout`);
        return;
      }
      state = null;
    } else if (op.kind === 'set' || op.kind === 'delete') {
      if (op.apply === undefined) violation(`${what} resolved but the store never saw it (lost write)`);
      return;
    } else {
      state =
        op.kind === 'keys' ? [...(outcome.value as string[])].sort() : (outcome.value as string | boolean);
    }
    // A failure met by this operation's own backend call, with nothing else in flight that could
    // have shared its outcome, must reach the caller unless the variant serves stale values.
    const ownFailure = this.consumed.some((c) => c.op === op.id);
    if (ownFailure && !op.concurrent && !this.variant.masksFailures && op.kind !== 'keys')
      violation(`${what} hid a backend failure: ${show(state)} instead of UNAVAILABLE`);
    if (op.kind === 'keys') {
      this.#verifyKeys(op, state as string[]);
      return;
    }
    const key = op.key as string;
    const matches =
      op.kind === 'has' ? (s: State) => (s !== null) === state : (s: State) => s === (state as State);
    if (this.#lookupHeld(key, op.inv, op.resp, matches)) return;
    const staleFor = this.variant.staleFor;
    if (staleFor !== undefined && this.#servedFromCache(op, key, matches, staleFor)) return;
    violation(
      `${what} returned ${show(state)}, which the store did not hold while it ran (held ${show(this.#stateAt(key, op.inv))} at its start)${
        staleFor === undefined ? '' : ', and no read the cache may still serve returned it'
      }`,
    );
  }

  /**
   * Whether a cache may have served the result: a backend read of it finished while the read was
   * in flight, or before within the cache's staleness bound, and no completed write of the
   * provider had replaced it by then.
   */
  #servedFromCache(
    op: Op,
    key: string,
    matches: (s: State) => boolean,
    staleFor: NonNullable<MemoryVariant['staleFor']>,
  ): boolean {
    return this.reads.some((read) => {
      if (read.key !== key || read.doneTick < 0 || read.doneTick > op.resp || !matches(read.state))
        return false;
      const bound = read.state === null ? staleFor.absent : staleFor.value;
      const fresh = read.doneTick > op.inv || read.doneTime > op.tInv - bound;
      return fresh && this.#intervalEnd(key, read.tick) > op.lo;
    });
  }

  #verifyKeys(op: Op, names: string[]): void {
    const at = (tick: number) => KEYS.filter((k) => this.#stateAt(k, tick) !== null).join(',');
    const got = names.join(',');
    const ticks = [op.inv];
    for (const history of this.#history.values())
      for (const c of history) if (c.tick > op.inv && c.tick < op.resp) ticks.push(c.tick);
    if (!ticks.some((t) => at(t) === got))
      violation(
        `keys of step ${op.step} returned [${got}], never the stores' keys while it ran (were [${at(op.inv)}])`,
      );
  }

  /** Events name every key whose value changed, and say which keys exist. */
  #verifyEvents(before: readonly State[]): void {
    const watch = this.#watch as Watch;
    KEYS.forEach((key, i) => {
      const now = this.#stateAt(key, this.#tick);
      if (now !== before[i] && !watch.named.has(key))
        violation(`"${key}" changed from ${show(before[i])} to ${show(now)} and no event named it`);
      if (watch.presence.get(key) !== (now !== null))
        violation(
          `events say "${key}" ${watch.presence.get(key) ? 'exists' : 'does not exist'}, the stores say ${show(now)}`,
        );
    });
  }

  async finish(): Promise<void> {
    for (const backend of this.backends) backend.armed.length = 0;
    for (let round = 0; round < 50 && (this.gates.length > 0 || this.#pending.size > 0); round++) {
      for (const gate of [...this.gates]) gate.open();
      await drain();
    }
    if (this.#pending.size > 0) violation(`${this.#pending.size} operations never settled`);
    this.#verifySettled();
    this.observer.checkAll(this.book);
  }

  async dispose(): Promise<void> {
    for (const backend of this.backends) {
      backend.armed.length = 0;
      backend.failures = 0;
    }
    for (const gate of [...this.gates]) gate.open();
    await drain();
    await this.provider.close().catch(() => {});
    await drain();
    this.observer.stop();
  }
}

/** Rejects (as a violation) when `promise` does not settle within `ms`. */
export async function withDeadline<T>(promise: Promise<T>, what: string, ms = 5_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } catch (error) {
    if (error instanceof Error && error.message.endsWith(`within ${ms} ms`)) violation(error.message);
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
