import { constants } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import {
  InvalidConfigError,
  InvalidValueError,
  type SecretError,
  type SecretOperation,
} from '@secret-provider/core';
import { fingerprint, sanitizeCause } from '@secret-provider/core/adapter';
import { writeFileAtomic } from './atomic-write.js';
import { checkVersion, mapFileError } from './errors.js';
import { withFileLock } from './file-lock.js';
import type { DocumentFormat } from './formats.js';
import { isMissing, type SourceContext, signatureOf, statOrUndefined } from './fs-util.js';
import { DocumentSyntaxError } from './json.js';
import type { Entry, KeyLoad, OwnWrite, Reading, SecretSource, Target } from './source.js';

type FileLoad =
  | {
      readonly kind: 'ok';
      readonly entries: Map<string, Entry>;
      readonly empty: boolean;
      readonly signature: string;
      readonly mtimeMs: number;
    }
  | { readonly kind: 'missing' }
  | { readonly kind: 'invalid'; readonly error: SecretError; readonly signature: string };

/**
 * Secrets in one document file (JSON, `.env`, ...), read whole and edited one key at a time.
 * Unwatched reads check the file's stat and re-read it when it changed.
 */
export class DocumentSource implements SecretSource {
  readonly watchDir: string;
  readonly #path: string;
  readonly #format: DocumentFormat;
  readonly #context: SourceContext;
  /** The last good values (unwatched reads). */
  #entries: Map<string, Entry> | undefined;
  /** Stat signature of the file the entries (or the failure) came from. */
  #signature: string | undefined;
  /** Why the file cannot be read, when there are no last good values to serve. */
  #failure: SecretError | undefined;
  #refreshing: Promise<void> | undefined;
  /** The refresh that follows the one in flight, for calls that arrived during it. */
  #followUp: Promise<void> | undefined;
  /** Bumped by this provider's own writes: a read that started before one must not undo it. */
  #writes = 0;

  constructor(path: string, format: DocumentFormat, context: SourceContext) {
    this.#path = path;
    this.#format = format;
    this.#context = context;
    this.watchDir = dirname(path);
  }

  keyProblem(key: string): string | undefined {
    return this.#format.keyProblem(key);
  }

  classify(name: string | null): Target | undefined {
    // `..data` swaps when the file sits in a Kubernetes volume.
    return name === null || name === basename(this.#path) || name === '..data' ? 'all' : undefined;
  }

  async entry(key: string): Promise<Entry | undefined> {
    return (await this.#current()).get(key);
  }

  async list(): Promise<string[]> {
    return [...(await this.#current()).keys()];
  }

  async read(): Promise<Reading> {
    const loaded = await this.#load();
    if (loaded.kind === 'invalid') return { keys: new Map(), complete: true, failure: loaded.error };
    const keys = new Map<string, KeyLoad>();
    if (loaded.kind === 'ok') for (const [key, entry] of loaded.entries) keys.set(key, { kind: 'ok', entry });
    return { keys, complete: true };
  }

  async write(
    key: string,
    value: string,
    ifVersion: string | null | undefined,
    applied: OwnWrite,
  ): Promise<void> {
    await this.#format.prepare?.();
    await withFileLock(this.#path, async () => {
      const text = await this.#readForUpdate('set');
      const current = this.#parseForUpdate(text, 'set').get(key);
      checkVersion(
        { provider: this.#context.provider, key },
        current === undefined ? undefined : fingerprint(current),
        ifVersion,
      );
      const next = this.#format.set(text, key, value);
      this.#checkEdit(text, next, key, value);
      await writeFileAtomic(this.#path, next);
      applied(await this.#own(next));
    });
  }

  async remove(key: string, applied: OwnWrite): Promise<boolean> {
    await this.#format.prepare?.();
    return withFileLock(this.#path, async () => {
      const text = await this.#readForUpdate('delete');
      if (!this.#parseForUpdate(text, 'delete').has(key)) return false;
      const next = this.#format.delete(text, key);
      if (next === undefined) return false;
      this.#checkEdit(text, next, key, undefined);
      await writeFileAtomic(this.#path, next);
      applied(await this.#own(next));
      return true;
    });
  }

  /** The values of the file as it is now (unwatched reads). */
  async #current(): Promise<Map<string, Entry>> {
    await this.#refresh();
    if (this.#entries === undefined && this.#failure !== undefined) throw this.#failure;
    return this.#entries ?? new Map();
  }

  /**
   * Brings the values up to date when the file's stat changed. A call that arrives while a
   * refresh is in flight does not join it (that one may have read the file before the call):
   * it waits for it and then for one more, shared by every call that arrived meanwhile.
   */
  #refresh(): Promise<void> {
    if (this.#refreshing === undefined) return this.#startRefresh();
    this.#followUp ??= this.#refreshing.then(() => {
      this.#followUp = undefined;
      return this.#refresh();
    });
    return this.#followUp;
  }

  #startRefresh(): Promise<void> {
    this.#refreshing = (async () => {
      try {
        const info = await statOrUndefined(this.#path);
        if (info === undefined) {
          this.#adopt(new Map(), 'missing');
          return;
        }
        if (signatureOf(info) === this.#signature) return;
        const writes = this.#writes;
        const loaded = await this.#load();
        // An own write replaced the file meanwhile and already set what it wrote.
        if (writes !== this.#writes) return;
        if (loaded.kind === 'missing') {
          this.#adopt(new Map(), 'missing');
        } else if (loaded.kind === 'invalid') {
          // Keep the last good values; remember the failure so the same bad file is not re-parsed.
          if (this.#entries === undefined) this.#failure = loaded.error;
          this.#signature = loaded.signature;
        } else if (
          loaded.empty &&
          this.#entries !== undefined &&
          this.#entries.size > 0 &&
          Date.now() - loaded.mtimeMs < this.#context.debounceMs
        ) {
          // Just truncated: a writer is probably about to fill it. The next read looks again.
        } else {
          this.#adopt(loaded.entries, loaded.signature);
        }
      } finally {
        this.#refreshing = undefined;
      }
    })();
    return this.#refreshing;
  }

  #adopt(entries: Map<string, Entry>, signature: string | undefined): void {
    this.#entries = entries;
    this.#signature = signature;
    this.#failure = undefined;
  }

  /** Reads and parses the whole file. I/O failures other than "missing" throw. */
  async #load(): Promise<FileLoad> {
    await this.#format.prepare?.();
    this.#context.stats.reloads++;
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(this.#path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (error) {
      if (isMissing(error)) return { kind: 'missing' };
      throw error;
    }
    try {
      const info = await handle.stat({ bigint: true });
      const signature = signatureOf(info);
      const { provider } = this.#context;
      if (!info.isFile()) {
        const error = new InvalidConfigError(
          { provider, operation: 'get' },
          `secrets path "${this.#path}" is not a regular file (provider "${provider}")`,
        );
        return { kind: 'invalid', error, signature };
      }
      const refusal = this.#context.permissions.check(this.#path, Number(info.mode));
      if (refusal !== undefined) return { kind: 'invalid', error: refusal, signature };
      const text = await handle.readFile('utf8');
      let values: Map<string, string>;
      try {
        values = this.#format.parse(text);
      } catch (error) {
        return { kind: 'invalid', error: this.#parseError(error), signature };
      }
      const updatedAt = new Date(Number(info.mtimeMs));
      return {
        kind: 'ok',
        entries: entriesOf(values, updatedAt),
        empty: text.length === 0,
        signature,
        mtimeMs: Number(info.mtimeMs),
      };
    } finally {
      await handle.close().catch(() => {});
    }
  }

  /** After writing the whole file: the values written, served at once. */
  async #own(text: string): Promise<Reading> {
    this.#writes++;
    const info = await statOrUndefined(this.#path);
    const entries = entriesOf(
      this.#format.parse(text),
      info === undefined ? new Date() : new Date(Number(info.mtimeMs)),
    );
    this.#adopt(entries, info === undefined ? undefined : signatureOf(info));
    const keys = new Map<string, KeyLoad>();
    for (const [key, entry] of entries) keys.set(key, { kind: 'ok', entry });
    return { keys, complete: true };
  }

  /**
   * Every edit is read back before it is written: the key must read as set (or be gone) and every
   * other key as before. A format whose writer cannot carry the value is refused here.
   */
  #checkEdit(before: string, after: string, key: string, value: string | undefined): void {
    const expected = this.#format.parse(before);
    if (value === undefined) expected.delete(key);
    else expected.set(key, value);
    const actual = this.#format.parse(after);
    const same = actual.size === expected.size && [...expected].every(([k, v]) => actual.get(k) === v);
    if (!same) {
      const { provider } = this.#context;
      throw new InvalidValueError(
        { provider, key, operation: value === undefined ? 'delete' : 'set' },
        `cannot ${value === undefined ? 'delete' : 'write'} "${key}" in secrets file "${this.#path}": the ${this.#format.label} written would not read back exactly (provider "${provider}")`,
      );
    }
  }

  #parseError(error: unknown, operation: SecretOperation = 'get'): SecretError {
    // The parsers' messages carry a position at most (never the text); anything else is not trusted.
    const where = error instanceof DocumentSyntaxError ? error.message : 'invalid content';
    const { provider } = this.#context;
    return new InvalidValueError(
      { provider, operation, cause: sanitizeCause(error, where) },
      `secrets file "${this.#path}" is not valid ${this.#format.label} (${where}) (provider "${provider}")`,
    );
  }

  async #readForUpdate(operation: SecretOperation): Promise<string> {
    try {
      return await readFile(this.#path, 'utf8');
    } catch (error) {
      if (isMissing(error)) return '';
      throw mapFileError(error, { provider: this.#context.provider, operation }) ?? error;
    }
  }

  #parseForUpdate(text: string, operation: SecretOperation): Map<string, string> {
    try {
      return this.#format.parse(text);
    } catch (error) {
      // Rewriting a file that cannot be read would drop whatever it holds.
      throw this.#parseError(error, operation);
    }
  }
}

function entriesOf(values: Map<string, string>, updatedAt: Date): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  for (const [key, value] of values)
    entries.set(key, { value, version: fingerprint(value), updatedAt, empty: false });
  return entries;
}
