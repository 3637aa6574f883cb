import type { SecretError } from '@secret-provider/core';

/** One key's value as read from disk. */
export interface Entry {
  readonly value: string;
  readonly version: string;
  readonly updatedAt: Date | undefined;
  /** The file had no bytes at all: possibly truncated by a writer that has not written yet. */
  readonly empty: boolean;
}

/** What reading one key found. */
export type KeyLoad =
  | { readonly kind: 'ok'; readonly entry: Entry }
  | { readonly kind: 'missing' }
  | { readonly kind: 'invalid'; readonly error: SecretError };

/** What a re-read covers: every key, or some. */
export type Target = 'all' | ReadonlySet<string>;

/** The result of reading a source (or a part of it). */
export interface Reading {
  /** What was found for each key read. */
  readonly keys: ReadonlyMap<string, KeyLoad>;
  /** Whether keys absent from `keys` are gone (a whole document, a directory scan). */
  readonly complete: boolean;
  /** Keys switched in whole by an atomic writer (Kubernetes' `..data`): never seen mid-write. */
  readonly atomic?: ReadonlySet<string> | undefined;
  /** The whole source could not be understood (a document that does not parse): keys keep their values. */
  readonly failure?: SecretError | undefined;
}

/** Called with what is on disk after a write of this provider, while the write still holds its lock. */
export type OwnWrite = (reading: Reading) => void;

/**
 * A layout of secrets on disk, behind one interface: a document (JSON, `.env`) or a directory
 * of files. The provider picks one when it is constructed and never asks which it has.
 */
export interface SecretSource {
  /** The directory a watch observes (the document's directory, or the directory itself). */
  readonly watchDir: string;
  /** Why `key` cannot name a secret of this source, or `undefined` when it can. */
  keyProblem(key: string): string | undefined;
  /** Which keys a change of the entry `name` of `watchDir` may concern (`null`: any); `undefined`: none. */
  classify(name: string | null): Target | undefined | Promise<Target | undefined>;
  /** One key, read for an unwatched `get`. */
  entry(key: string): Promise<Entry | undefined>;
  /** Every key, for an unwatched `keys()`. */
  list(): Promise<string[]>;
  /** Reads `target` for a watch. I/O failures other than "missing" reject. */
  read(target: Target): Promise<Reading>;
  /** Stores a value (check-and-set against `ifVersion`), reporting the result through `applied`. */
  write(key: string, value: string, ifVersion: string | null | undefined, applied: OwnWrite): Promise<void>;
  /** Removes a key; `false` when it was not there. */
  remove(key: string, applied: OwnWrite): Promise<boolean>;
}

/** The union of two targets. */
export function mergeTargets(into: Target | undefined, target: Target | undefined): Target | undefined {
  if (target === undefined) return into;
  if (into === 'all' || target === 'all') return 'all';
  const merged = new Set(into);
  for (const key of target) merged.add(key);
  return merged;
}
