import { InvalidKeyError } from '@secret-provider/core';
import { splitFieldKey } from '@secret-provider/core/adapter';

/** A key on a KV mount. */
export interface KvAddress {
  readonly kind: 'kv';
  /** The key as given (`secret/app/db#password`). */
  readonly key: string;
  /** The secret without the field (`secret/app/db`): what caches, leases and events group by. */
  readonly base: string;
  readonly mount: string;
  readonly version: 1 | 2;
  /** Path inside the mount (`app/db`). */
  readonly path: string;
  /** One field of the secret, or the whole secret when absent. */
  readonly field: string | undefined;
}

/** A key on any other path (dynamic engines such as `database/creds/app`). */
export interface LogicalAddress {
  readonly kind: 'logical';
  readonly key: string;
  readonly base: string;
  readonly path: string;
  readonly field: string | undefined;
}

export type VaultAddress = KvAddress | LogicalAddress;

/**
 * Parses a key. Keys are Vault paths starting with the mount, optionally with `#field`:
 *
 * - `secret/app/db#password` — the `password` field of the KV secret `app/db` on mount `secret`;
 * - `secret/app/db` — the whole secret: its `value` field when that is its only field (what
 *   `set` stores), otherwise the JSON of all its fields;
 * - `database/creds/app#username` — a field of what a dynamic engine returns (all fields of one
 *   path come from one lease).
 *
 * @throws {InvalidKeyError} for empty segments, `.`/`..` segments, a leading or trailing `/`,
 *   or an empty field name.
 */
export function parseKey(key: string, mounts: ReadonlyMap<string, 1 | 2>, provider: string): VaultAddress {
  const { base, field } = splitFieldKey(key, provider);
  checkPath(base, provider);
  const slash = base.indexOf('/');
  const first = slash < 0 ? base : base.slice(0, slash);
  const version = mounts.get(first);
  if (version !== undefined) {
    const path = slash < 0 ? '' : base.slice(slash + 1);
    if (path === '') {
      throw new InvalidKeyError({ provider }, 'invalid key: names a KV mount, not a secret in it');
    }
    return { kind: 'kv', key, base, mount: first, version, path, field };
  }
  return { kind: 'logical', key, base, path: base, field };
}

function checkPath(path: string, provider: string): void {
  if (path === '') throw new InvalidKeyError({ provider }, 'invalid key: empty path');
  if (path.startsWith('/') || path.endsWith('/')) {
    throw new InvalidKeyError({ provider }, 'invalid key: must not start or end with "/"');
  }
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') {
      throw new InvalidKeyError({ provider }, 'invalid key: empty, "." or ".." path segment');
    }
  }
}

/**
 * A path as it goes into a URL: each segment percent-encoded, so that `?`, `%`, spaces and the
 * like name a secret instead of changing the request.
 */
export function encodePath(path: string): string {
  return path
    .split('/')
    .map((segment) => encodeURIComponent(segment))
    .join('/');
}

/** Where `keys({ prefix })` starts listing: a KV mount and the folder inside it. */
export interface ListStart {
  readonly mount: string;
  readonly version: 1 | 2;
  /** Folder inside the mount, `''` or ending in `/`. */
  readonly folder: string;
}

/**
 * The folders to list for `prefix`: the deepest folder containing every key that starts with it.
 * Without a prefix, the root of every KV mount; a prefix outside every KV mount lists nothing.
 */
export function listStarts(prefix: string | undefined, mounts: ReadonlyMap<string, 1 | 2>): ListStart[] {
  if (prefix === undefined || prefix === '') {
    return [...mounts].map(([mount, version]) => ({ mount, version, folder: '' }));
  }
  const slash = prefix.indexOf('/');
  if (slash < 0) {
    // A partial mount name: every mount it could be.
    return [...mounts]
      .filter(([mount]) => mount.startsWith(prefix))
      .map(([mount, version]) => ({ mount, version, folder: '' }));
  }
  const mount = prefix.slice(0, slash);
  const version = mounts.get(mount);
  if (version === undefined) return [];
  const rest = prefix.slice(slash + 1);
  const lastSlash = rest.lastIndexOf('/');
  const folder = lastSlash < 0 ? '' : rest.slice(0, lastSlash + 1);
  if (folder.split('/').some((s, i, all) => (s === '' && i < all.length - 1) || s === '.' || s === '..'))
    return [];
  return [{ mount, version, folder }];
}

/** Matches a key against a refresh pattern: `*` within a segment, `**` across segments. */
export function compilePattern(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i] as string;
    if (char === '*') {
      if (pattern[i + 1] === '*') {
        source += '.*';
        i++;
      } else source += '[^/]*';
    } else source += char.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}
