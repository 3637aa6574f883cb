// The file world: a FileProvider on a real temporary directory, in JSON file and directory
// format, watched and not, while the test changes the files behind its back. The model holds
// what is on disk (and checks it against the disk after every write), and which states a read
// may return: exactly the disk for an unwatched provider, anything the disk held since the last
// point of convergence for a watched one, which must converge within its debounce.
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createEmitter, type SecretEvents, type WatchHandle } from '@secret-provider/core';
import { FileProvider } from '@secret-provider/file';
import { tempDir } from '@secret-provider/testing';
import fc from 'fast-check';
import {
  type AbortMode,
  abortReason,
  codeOf,
  type Harness,
  Observer,
  realPause,
  type State,
  settings,
  show,
  TAILS,
  type Tally,
  ValueBook,
  violation,
} from './harness.js';
import { withDeadline } from './memory-world.js';

export interface FileVariant {
  readonly name: string;
  readonly format: 'json' | 'directory';
  readonly watched: boolean;
}

export const FILE_VARIANTS: readonly FileVariant[] = [
  { name: 'file provider, JSON file, unwatched', format: 'json', watched: false },
  { name: 'file provider, JSON file, watched', format: 'json', watched: true },
  { name: 'file provider, directory, unwatched', format: 'directory', watched: false },
  { name: 'file provider, directory, watched', format: 'directory', watched: true },
];

const JSON_KEYS = ['alpha', 'beta', 'db.user', 'db.pass'] as const;
const DIR_KEYS = ['alpha', 'beta', 'gamma', 'delta'] as const;
const DEBOUNCE_MS = 15;

type How = 'rename' | 'inplace';

export type BurstOp = { op: 'set' | 'delete' | 'get'; key: number; tail: number };

export type FileStep =
  | { op: 'get' | 'has' | 'delete'; key: number; abort: AbortMode; reason: number }
  | { op: 'set'; key: number; tail: number; abort: AbortMode; reason: number }
  | { op: 'keys' }
  /** Several operations of the provider at once. */
  | { op: 'burst'; ops: BurstOp[] }
  /** Out of band: a value written into the file or directory by someone else. */
  | { op: 'write'; key: number; tail: number; how: How; loose: boolean; pad?: number }
  | { op: 'unlink'; key: number; how: How }
  /** Out of band (JSON): the file is replaced by text that does not parse. */
  | { op: 'corrupt'; how: How }
  /** Out of band: the whole file or directory is removed. */
  | { op: 'drop' }
  /** Out of band: the file or directory is removed and created again, with one value changed. */
  | { op: 'recreate'; key: number; tail: number }
  | { op: 'pause'; ms: number }
  /** A watched provider must now converge (values, listing and events) within its debounce. */
  | { op: 'settle' }
  | { op: 'close' };

const abortArb = fc.constantFrom<AbortMode>('none', 'none', 'none', 'none', 'before', 'during', 'late');

export function fileStep(variant: FileVariant): fc.Arbitrary<FileStep> {
  const key = fc.nat({ max: 3 });
  const tail = fc.nat({ max: TAILS.length });
  const reason = fc.nat({ max: 3 });
  const how = fc.constantFrom<How>('rename', 'inplace');
  const steps: Array<fc.WeightedArbitrary<FileStep>> = [
    { weight: 8, arbitrary: fc.record({ op: fc.constant('get' as const), key, abort: abortArb, reason }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('has' as const), key, abort: abortArb, reason }) },
    { weight: 1, arbitrary: fc.constant({ op: 'keys' as const }) },
    {
      weight: 5,
      arbitrary: fc.record({ op: fc.constant('set' as const), key, tail, abort: abortArb, reason }),
    },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), key, abort: abortArb, reason }) },
    {
      weight: 2,
      arbitrary: fc.record({
        op: fc.constant('burst' as const),
        ops: fc.array(
          fc.record({ op: fc.constantFrom<BurstOp['op']>('set', 'set', 'delete', 'get'), key, tail }),
          { minLength: 2, maxLength: 4 },
        ),
      }),
    },
    {
      weight: 5,
      arbitrary: fc.record({
        op: fc.constant('write' as const),
        key,
        tail,
        how,
        loose: fc.constantFrom(false, false, false, true),
      }),
    },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('unlink' as const), key, how }) },
    { weight: 1, arbitrary: fc.constant({ op: 'drop' as const }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('recreate' as const), key, tail }) },
    {
      weight: 2,
      arbitrary: fc.record({ op: fc.constant('pause' as const), ms: fc.constantFrom(1, 5, DEBOUNCE_MS, 40) }),
    },
    { weight: 3, arbitrary: fc.constant({ op: 'settle' as const }) },
    { weight: 1, arbitrary: fc.constant({ op: 'close' as const }) },
  ];
  if (variant.format === 'json')
    steps.push({ weight: 1, arbitrary: fc.record({ op: fc.constant('corrupt' as const), how }) });
  return fc.oneof(...steps);
}

/** How a value is stored in a key file so that `trailingNewline: 'strip-one'` reads it back. */
const encode = (value: string) => (value.endsWith('\n') ? `${value}\n` : value);
const decode = (raw: string) =>
  raw.endsWith('\r\n') ? raw.slice(0, -2) : raw.endsWith('\n') ? raw.slice(0, -1) : raw;

type Outcome =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: unknown };

interface Watch {
  readonly handle: WatchHandle;
  readonly gen: number;
  /** Key -> version as the events tell it (`null`: removed). */
  readonly versions: Map<string, string | null | undefined>;
}

export class FileHarness implements Harness<FileStep> {
  readonly variant: FileVariant;
  readonly tally: Tally;
  readonly book = new ValueBook();
  readonly observer = new Observer();
  readonly keys: readonly string[];
  readonly #root: { dir: string; remove: () => void };
  readonly path: string;
  /** What the disk holds, as the model knows it (checked against the disk after each write). */
  #disk = new Map<string, string>();
  #corrupt = false;
  /** States each key may be read as now (watched, or last good values of a corrupt file). */
  readonly #allowed = new Map<string, Set<State>>();
  /** The file was corrupt at some point since the last convergence. */
  #corruptSince = false;
  #gen = 0;
  #step = 0;
  #temp = 0;
  provider: FileProvider;
  #watch: Watch | undefined;

  private constructor(variant: FileVariant, tally: Tally) {
    this.variant = variant;
    this.tally = tally;
    this.keys = variant.format === 'json' ? JSON_KEYS : DIR_KEYS;
    this.#root = tempDir('secret-provider-model-');
    this.path = join(this.#root.dir, variant.format === 'json' ? 'secrets.json' : 'secrets');
    this.observer.start();
    this.#anchorAll();
    this.provider = this.#build();
  }

  static async create(variant: FileVariant, tally: Tally): Promise<FileHarness> {
    const harness = new FileHarness(variant, tally);
    await harness.#arm();
    return harness;
  }

  #build(): FileProvider {
    return new FileProvider({ path: this.path, format: this.variant.format, debounceMs: DEBOUNCE_MS });
  }

  async #arm(): Promise<void> {
    if (!this.variant.watched) return;
    const emitter = createEmitter();
    const gen = this.#gen;
    const versions = new Map<string, string | null | undefined>();
    emitter.on('*', (type, event) => {
      this.observer.event(event);
      if (this.#watch?.gen !== gen) return;
      const e = event as SecretEvents[keyof SecretEvents];
      if (type === 'added')
        versions.set((e as SecretEvents['added']).key, (e as SecretEvents['added']).version);
      else if (type === 'removed') versions.set((e as SecretEvents['removed']).key, null);
      else if (type === 'rotated') {
        const rotated = e as SecretEvents['rotated'];
        for (const k of rotated.keys) versions.set(k, rotated.changes.find((c) => c.key === k)?.newVersion);
      }
    });
    const handle = this.provider.watch(emitter);
    this.#watch = { handle, gen, versions };
    await withDeadline(handle.ready, 'the watch to be ready');
    // The watch reports changes from here on: the baseline is what the provider serves now.
    for (const key of this.keys) {
      const version = await this.provider.metadata(key).then(
        (m) => m.version,
        () => null,
      );
      versions.set(key, version);
    }
  }

  /** Reads may return exactly what the disk holds now (a corrupt file: nothing yet). */
  #anchorAll(): void {
    for (const key of this.keys) this.#anchor(key);
    this.#corruptSince = this.#corrupt;
  }

  #anchor(key: string): void {
    this.#allowed.set(key, this.#corrupt ? new Set() : new Set([this.#state(key)]));
  }

  #state(key: string): State {
    return this.#disk.get(key) ?? null;
  }

  #key(index: number): string {
    return this.keys[index % this.keys.length] as string;
  }

  // ---- the disk, out of band ---------------------------------------------------------------

  #tempPath(): string {
    return join(this.#root.dir, `..oob-${++this.#temp}`);
  }

  #put(path: string, content: string, how: How, loose = false): void {
    if (how === 'rename') {
      const temp = this.#tempPath();
      writeFileSync(temp, content, { mode: 0o600 });
      if (loose) chmodSync(temp, 0o644);
      renameSync(temp, path);
    } else {
      writeFileSync(path, content, { mode: 0o600 });
      if (loose) chmodSync(path, 0o644);
    }
  }

  #document(values: Map<string, string>): string {
    const doc: Record<string, unknown> = {};
    for (const [key, value] of values) {
      const [head, leaf] = key.split('.') as [string, string | undefined];
      if (leaf === undefined) doc[head] = value;
      else {
        const branch = (doc[head] ?? {}) as Record<string, string>;
        branch[leaf] = value;
        doc[head] = branch;
      }
    }
    return `${JSON.stringify(doc, null, 2)}\n`;
  }

  /** Makes the disk hold `next` (out of band); the keys it changes may now be read either way. */
  #writeOut(next: Map<string, string>, how: How, loose = false, changed?: readonly string[]): void {
    if (this.variant.format === 'json') {
      this.#put(this.path, this.#document(next), how, loose);
    } else {
      mkdirSync(this.path, { recursive: true, mode: 0o700 });
      for (const key of changed ?? this.keys) {
        const file = join(this.path, key);
        const value = next.get(key);
        if (value === undefined) rmSync(file, { force: true });
        else this.#put(file, encode(value), how, loose);
      }
    }
    this.#changed(next);
  }

  #changed(next: Map<string, string>): void {
    this.#corrupt = false;
    this.#disk = next;
    for (const key of this.keys) this.#allowed.get(key)?.add(this.#state(key));
  }

  /** What the disk holds, read directly. */
  #readDisk(): { values: Map<string, string>; corrupt: boolean } {
    const values = new Map<string, string>();
    if (this.variant.format === 'json') {
      let text: string;
      try {
        text = readFileSync(this.path, 'utf8');
      } catch {
        return { values, corrupt: false };
      }
      let doc: Record<string, unknown>;
      try {
        doc = JSON.parse(text) as Record<string, unknown>;
      } catch {
        return { values: this.#disk, corrupt: true };
      }
      for (const key of this.keys) {
        const [head, leaf] = key.split('.') as [string, string | undefined];
        const value =
          leaf === undefined ? doc[head] : (doc[head] as Record<string, unknown> | undefined)?.[leaf];
        if (value !== undefined && typeof value !== 'string')
          violation(`"${key}" is stored as ${typeof value}, not as the string written`);
        if (value !== undefined) values.set(key, value);
      }
      return { values, corrupt: false };
    }
    let names: string[] = [];
    try {
      names = readdirSync(this.path);
    } catch {
      return { values, corrupt: false };
    }
    for (const name of names) {
      if (name.startsWith('..')) violation(`a temporary file "${name}" was left in the directory`);
      if (!this.keys.includes(name)) violation(`an unexpected file "${name}" is in the directory`);
      values.set(name, decode(readFileSync(join(this.path, name), 'utf8')));
    }
    return { values, corrupt: false };
  }

  // ---- steps -------------------------------------------------------------------------------

  applicable(step: FileStep): boolean {
    if (step.op === 'corrupt') return this.variant.format === 'json';
    return true;
  }

  async run(step: FileStep): Promise<void> {
    this.#step++;
    this.tally.count(
      this.variant.name,
      'abort' in step && step.abort !== 'none' ? `${step.op}+abort` : step.op,
    );
    switch (step.op) {
      case 'get':
      case 'has':
      case 'set':
      case 'delete':
        await this.#single(step);
        break;
      case 'keys':
        await this.#listing();
        break;
      case 'burst':
        await this.#burst(step.ops);
        break;
      case 'write': {
        const key = this.#key(step.key);
        const next = new Map(this.#disk);
        next.set(key, this.book.next(step.tail, step.pad));
        this.#writeOut(next, step.how, step.loose, [key]);
        break;
      }
      case 'unlink': {
        const key = this.#key(step.key);
        const next = new Map(this.#disk);
        next.delete(key);
        this.#writeOut(next, step.how, false, [key]);
        break;
      }
      case 'corrupt': {
        const text = this.#document(this.#disk);
        this.#put(this.path, text.slice(0, Math.max(1, Math.floor(text.length / 2))), step.how);
        this.#corrupt = true;
        this.#corruptSince = true;
        break;
      }
      case 'drop':
        rmSync(this.path, { recursive: true, force: true });
        this.#changed(new Map());
        break;
      case 'recreate': {
        const next = new Map(this.#disk);
        next.set(this.#key(step.key), this.book.next(step.tail));
        rmSync(this.path, { recursive: true, force: true });
        this.#writeOut(next, 'rename');
        break;
      }
      case 'pause':
        await realPause(step.ms);
        break;
      case 'settle':
        await this.#settle();
        break;
      case 'close':
        await this.#close();
        break;
    }
    this.observer.check(this.book);
  }

  /** One operation with its abort, checked against the disk and the states allowed. */
  async #single(
    step: Extract<FileStep, { abort: AbortMode }>,
    provider = this.provider,
    onClosed = false,
  ): Promise<void> {
    const key = this.#key(step.key);
    const value = step.op === 'set' ? this.book.next(step.tail) : undefined;
    const what = `${step.op}(${key}) of step ${this.#step}`;
    const controller = step.abort === 'none' ? undefined : new AbortController();
    const reason = abortReason(step.reason);
    if (step.abort === 'before') controller?.abort(reason);
    const options = controller === undefined ? undefined : { signal: controller.signal };
    const before = new Map(this.#disk);
    const corrupt = this.#corrupt;
    let settled = false;
    const pending = this.#outcome(
      this.#call(provider, step.op, key, value, options).finally(() => {
        settled = true;
      }),
      what,
    );
    let abortedWhilePending = false;
    if (step.abort === 'during' || step.abort === 'late') {
      if (step.abort === 'late') await realPause(1);
      abortedWhilePending = !settled;
      controller?.abort(reason);
    }
    const outcome = await pending;
    const write = step.op === 'set' || step.op === 'delete';
    const error = outcome.ok ? undefined : outcome.error;
    if (write) this.#afterWrite(what, before, key);
    const changed = write && this.#state(key) !== (before.get(key) ?? null);
    if (onClosed || step.abort === 'before') {
      const expected = onClosed ? 'CLOSED' : "the signal's reason";
      const right = !outcome.ok && (onClosed ? codeOf(error, what) === 'CLOSED' : error === reason);
      if (!right) violation(`${what}: ${outcome.ok ? 'resolved' : show(error)}, expected ${expected}`);
      if (changed) violation(`${what} changed the disk`);
      return;
    }
    if (!outcome.ok && step.abort !== 'none' && error === reason) {
      if (!abortedWhilePending)
        violation(`${what} rejected with the abort reason although it had settled first`);
      // The write may or may not have happened: if it did, only it (or later changes) may be read.
      if (changed) this.#anchor(key);
      return;
    }
    if (abortedWhilePending && !write)
      violation(
        `${what} aborted while in flight: ${outcome.ok ? `resolved ${show(outcome.value)}` : show(error)}, expected the signal's reason`,
      );
    if (write) {
      this.#checkWrite(what, step.op as 'set' | 'delete', key, value, before, corrupt, outcome, changed);
      return;
    }
    this.#checkRead(what, step.op as 'get' | 'has', key, outcome, undefined);
  }

  #call(
    provider: FileProvider,
    op: 'get' | 'has' | 'set' | 'delete',
    key: string,
    value: string | undefined,
    options: { signal: AbortSignal } | undefined,
  ): Promise<unknown> {
    try {
      switch (op) {
        case 'get':
          return provider.get(key, options).then((secret) => secret.reveal());
        case 'has':
          return Promise.resolve(provider.has(key, options));
        case 'set':
          return provider.set(key, value as string, options);
        default:
          return provider.delete(key, options);
      }
    } catch (error) {
      violation(`${op} threw synchronously instead of rejecting: ${show(error)}`);
    }
  }

  async #outcome(promise: Promise<unknown>, what: string): Promise<Outcome> {
    const outcome = await withDeadline(
      promise.then(
        (value): Outcome => ({ ok: true, value }),
        (error: unknown): Outcome => ({ ok: false, error }),
      ),
      what,
    );
    if (!outcome.ok) this.observer.error(outcome.error);
    return outcome;
  }

  /** The disk after a write: only the written key may have changed; the model follows the disk. */
  #afterWrite(what: string, before: Map<string, string>, ...written: string[]): void {
    const disk = this.#readDisk();
    if (disk.corrupt !== this.#corrupt)
      violation(`${what}: the file ${disk.corrupt ? 'no longer parses' : 'was repaired'}`);
    for (const key of this.keys) {
      if (written.includes(key)) continue;
      const now = disk.values.get(key) ?? null;
      if (now !== (before.get(key) ?? null))
        violation(
          `${what} changed "${key}" from ${show(before.get(key) ?? null)} to ${show(now)} (a lost update)`,
        );
    }
    if (!disk.corrupt) this.#disk = disk.values;
  }

  #checkWrite(
    what: string,
    op: 'set' | 'delete',
    key: string,
    value: string | undefined,
    before: Map<string, string>,
    corrupt: boolean,
    outcome: Outcome,
    changed: boolean,
  ): void {
    const now = this.#state(key);
    if (!outcome.ok) {
      const code = codeOf(outcome.error, what);
      if (corrupt && code === 'INVALID_VALUE') {
        if (changed) violation(`${what} refused a file that does not parse, but changed it`);
        return;
      }
      if (op === 'delete' && code === 'NOT_FOUND' && !before.has(key) && !corrupt) return;
      violation(
        `${what} rejected with unexpected ${show(outcome.error)}${corrupt ? ' (the file does not parse)' : ''}`,
      );
    }
    if (corrupt) violation(`${what} resolved although the file does not parse (it would drop what it holds)`);
    if (op === 'set' && now !== value)
      violation(`${what} resolved but the disk holds ${show(now)} (lost write)`);
    if (op === 'delete' && (now !== null || !before.has(key)))
      violation(`${what} resolved but "${key}" ${before.has(key) ? 'is still on disk' : 'did not exist'}`);
    // Read your writes: from now on only what was written (or a later change) may be read.
    this.#anchor(key);
  }

  /** Whether a read result is one the provider may return now. */
  #checkRead(
    what: string,
    op: 'get' | 'has',
    key: string,
    outcome: Outcome,
    extra: ReadonlySet<State> | undefined,
  ): State | undefined {
    let state: State | boolean;
    if (!outcome.ok) {
      const code = codeOf(outcome.error, what);
      if (code === 'INVALID_VALUE' && (this.variant.watched ? this.#corruptSince : this.#corrupt))
        return undefined;
      if (code !== 'NOT_FOUND' || op !== 'get')
        violation(`${what} rejected with unexpected ${show(outcome.error)}`);
      state = null;
    } else state = op === 'has' ? (outcome.value as boolean) : (outcome.value as string);
    const matches = (s: State) => (op === 'has' ? (s !== null) === state : s === state);
    const exact = !this.variant.watched && !this.#corrupt;
    const allowed = exact ? new Set([this.#state(key)]) : (this.#allowed.get(key) ?? new Set());
    if (![...allowed, ...(extra ?? [])].some(matches)) {
      violation(
        `${what} returned ${show(state)}; the disk holds ${show(this.#state(key))}${
          exact
            ? ''
            : `, and since it last converged held ${[...allowed].map(show).join(', ') || 'nothing readable'}`
        }`,
      );
    }
    // An unwatched JSON provider re-read the whole file: its last good values are the disk's.
    if (exact && this.variant.format === 'json') this.#anchorAll();
    return op === 'get' ? (state as State) : undefined;
  }

  async #listing(provider = this.provider, onClosed = false): Promise<void> {
    const what = `keys of step ${this.#step}`;
    const outcome = await this.#outcome((async () => provider.keys())(), what);
    if (onClosed) {
      if (outcome.ok || codeOf(outcome.error, what) !== 'CLOSED')
        violation(
          `${what} on a closed provider: ${outcome.ok ? 'resolved' : show(outcome.error)}, expected CLOSED`,
        );
      return;
    }
    if (!outcome.ok) {
      const code = codeOf(outcome.error, what);
      if (code === 'INVALID_VALUE' && (this.variant.watched ? this.#corruptSince : this.#corrupt)) return;
      violation(`${what} rejected with unexpected ${show(outcome.error)}`);
    }
    const names = outcome.value as string[];
    if (new Set(names).size !== names.length) violation(`${what} listed a key twice: [${names.join(',')}]`);
    for (const name of names)
      if (!this.keys.includes(name)) violation(`${what} listed an unknown key "${name}"`);
    const exact = !this.variant.watched && !this.#corrupt;
    for (const key of this.keys) {
      const listed = names.includes(key);
      const allowed = exact ? new Set([this.#state(key)]) : (this.#allowed.get(key) ?? new Set());
      if (![...allowed].some((s) => (s !== null) === listed))
        violation(
          `${what} ${listed ? 'listed' : 'left out'} "${key}", which the disk ${this.#state(key) === null ? 'lacks' : 'holds'}`,
        );
    }
    if (exact && this.variant.format === 'json') this.#anchorAll();
  }

  async #burst(ops: readonly BurstOp[]): Promise<void> {
    const before = new Map(this.#disk);
    const corrupt = this.#corrupt;
    // What each read of the burst may return is decided by the state when the burst started.
    const allowedBefore = new Map([...this.#allowed].map(([k, states]) => [k, new Set(states)]));
    const exactBefore = !this.variant.watched && !corrupt;
    const calls = ops.map((op) => {
      const key = this.#key(op.key);
      const value = op.op === 'set' ? this.book.next(op.tail) : undefined;
      return { ...op, key, value, promise: this.#call(this.provider, op.op, key, value, undefined) };
    });
    const outcomes = await Promise.all(
      calls.map((c, i) => this.#outcome(c.promise, `${c.op}(${c.key}) #${i} of burst step ${this.#step}`)),
    );
    const written = [...new Set(calls.filter((c) => c.op !== 'get').map((c) => c.key))];
    this.#afterWrite(`burst step ${this.#step}`, before, ...written);
    for (const key of written) {
      const mine = calls
        .map((c, i) => ({ ...c, outcome: outcomes[i] as Outcome }))
        .filter((c) => c.key === key && c.op !== 'get');
      const effects = new Set<State>(
        mine.filter((c) => c.outcome.ok).map((c) => (c.op === 'set' ? (c.value as string) : null)),
      );
      const attempted = new Set<State>([
        before.get(key) ?? null,
        ...mine.map((c) => (c.op === 'set' ? (c.value as string) : null)),
      ]);
      const now = this.#state(key);
      const possible = effects.size > 0 ? effects : attempted;
      if (!possible.has(now))
        violation(
          `burst step ${this.#step}: "${key}" holds ${show(now)}, not the effect of a write that resolved (lost write)`,
        );
      for (const c of mine) {
        if (c.outcome.ok) {
          if (corrupt)
            violation(`burst step ${this.#step}: ${c.op}(${key}) resolved although the file does not parse`);
          continue;
        }
        const code = codeOf(c.outcome.error, `${c.op}(${key}) in burst step ${this.#step}`);
        if (code === 'INVALID_VALUE' && corrupt) continue;
        // Another delete (or the absence before) explains a not-found.
        if (code === 'NOT_FOUND' && c.op === 'delete' && (attempted.has(null) || mine.length > 1)) continue;
        violation(
          `burst step ${this.#step}: ${c.op}(${key}) rejected with unexpected ${show(c.outcome.error)}`,
        );
      }
      if (effects.size > 0) this.#anchor(key);
    }
    calls.forEach((c, i) => {
      if (c.op !== 'get') return;
      const extra = new Set<State>([
        ...(exactBefore ? [] : (allowedBefore.get(c.key) ?? [])),
        before.get(c.key) ?? null,
        ...calls
          .filter((o) => o.key === c.key && o.op !== 'get')
          .map((o) => (o.op === 'set' ? (o.value as string) : null)),
      ]);
      this.#checkRead(
        `get(${c.key}) in burst step ${this.#step}`,
        'get',
        c.key,
        outcomes[i] as Outcome,
        extra,
      );
    });
  }

  /** Unwatched: everything reads as the disk. Watched: it converges within the settle time. */
  async #settle(): Promise<void> {
    if (this.#corrupt) {
      await realPause(DEBOUNCE_MS * 3);
      return;
    }
    const deadline = performance.now() + (this.variant.watched ? settings.settleMs : 0);
    for (;;) {
      const mismatch = await this.#mismatch();
      if (mismatch === undefined) break;
      if (performance.now() > deadline)
        violation(
          `${this.variant.watched ? `not converged ${settings.settleMs} ms after step ${this.#step}` : `step ${this.#step}`}: ${mismatch}`,
        );
      await realPause(10);
    }
    this.#anchorAll();
  }

  /** What still differs from the disk (values, listing, events), or `undefined`. */
  async #mismatch(): Promise<string | undefined> {
    for (const key of this.keys) {
      const what = `get(${key}) while settling after step ${this.#step}`;
      const outcome = await this.#outcome((async () => (await this.provider.get(key)).reveal())(), what);
      const state = this.#checkRead(what, 'get', key, outcome, undefined);
      if (state === undefined)
        return `get(${key}) failed with ${show(outcome.ok ? undefined : outcome.error)}`;
      if (state !== this.#state(key))
        return `"${key}" reads ${show(state)}, the disk holds ${show(this.#state(key))}`;
    }
    const names = await this.provider.keys().catch((error: unknown) => {
      this.observer.error(error);
      return undefined;
    });
    const expected = this.keys.filter((k) => this.#disk.has(k));
    if (names === undefined || [...names].sort().join(',') !== [...expected].sort().join(','))
      return `keys() lists [${names?.join(',')}], the disk holds [${expected.join(',')}]`;
    const watch = this.#watch;
    if (watch === undefined) return undefined;
    for (const key of this.keys) {
      const told = watch.versions.get(key);
      if (!this.#disk.has(key)) {
        if (told !== null) return `events last said "${key}" exists (version ${told}), the disk lacks it`;
        continue;
      }
      const version = (await this.provider.metadata(key)).version;
      if (told !== version)
        return `events last said "${key}" is at ${told === null ? 'removed' : `version ${told}`}, it reads at version ${version}`;
    }
    return undefined;
  }

  async #close(): Promise<void> {
    const closed = this.provider;
    const watch = this.#watch;
    await withDeadline(closed.close(), 'close');
    await withDeadline(closed.close(), 'a second close');
    if (watch !== undefined)
      await withDeadline(watch.handle.done ?? Promise.resolve(), 'the watch to end on close');
    this.#watch = undefined;
    for (const step of [
      { op: 'get', key: 0, abort: 'none', reason: 0 },
      { op: 'has', key: 1, abort: 'none', reason: 0 },
      { op: 'set', key: 2, tail: 0, abort: 'none', reason: 0 },
      { op: 'delete', key: 3, abort: 'none', reason: 0 },
    ] as const)
      await this.#single(step, closed, true);
    await this.#listing(closed, true);
    const late = closed.watch(createEmitter());
    if (!late.stopped) violation('watch on a closed provider returned a running handle');
    const ready = await late.ready.then(
      () => undefined,
      (error: unknown) => error,
    );
    this.observer.error(ready);
    if (codeOf(ready, 'watch on a closed provider') !== 'CLOSED')
      violation(`watch on a closed provider: ready rejected with ${show(ready)}`);
    this.#gen++;
    this.provider = this.#build();
    this.#anchorAll();
    await this.#arm();
  }

  async finish(): Promise<void> {
    await this.#settle();
    this.observer.checkAll(this.book);
  }

  async dispose(): Promise<void> {
    await this.provider.close().catch(() => {});
    this.observer.stop();
    this.#root.remove();
  }
}
