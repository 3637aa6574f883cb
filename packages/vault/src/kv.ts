import type { SecretOperation } from '@secret-provider/core';
import { fingerprint } from '@secret-provider/core/adapter';
import { encodePath, type KvAddress, type ListStart } from './addressing.js';
import { isEmptyBody, isRecord, type VaultFailure } from './errors.js';
import type { NodeVaultClient } from './options.js';
import type { VaultTransport } from './transport.js';

/** A KV secret as read: all its fields and what is known of its version. */
export interface KvRead {
  readonly data: Readonly<Record<string, unknown>>;
  /** KV v2: the version number; KV v1 (no versions): a keyed fingerprint of the data. */
  readonly version: string;
  readonly createdAt?: Date | undefined;
  readonly tags?: Readonly<Record<string, string>> | undefined;
}

/** KV v2 metadata of one key, without values. */
export interface KvMetadata {
  readonly currentVersion: number;
  /** Whether the current version can be read (not soft-deleted, not destroyed). */
  readonly currentReadable: boolean;
  readonly createdAt: Date | undefined;
  readonly updatedAt: Date | undefined;
  readonly tags: Readonly<Record<string, string>> | undefined;
}

export interface Call {
  readonly transport: VaultTransport;
  readonly client: NodeVaultClient;
  readonly signal?: AbortSignal | undefined;
  /** Background work sends once and reschedules itself. */
  readonly retries?: number | undefined;
}

interface V2DataBody {
  data?: {
    data?: Record<string, unknown> | null;
    metadata?: {
      version?: number;
      created_time?: string;
      deletion_time?: string;
      destroyed?: boolean;
      custom_metadata?: Record<string, string> | null;
    };
  };
}

const NOT_FOUND = null;

function date(value: unknown): Date | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  const parsed = new Date(value);
  return Number.isNaN(parsed.getTime()) ? undefined : parsed;
}

function tags(value: unknown): Record<string, string> | undefined {
  if (!isRecord(value)) return undefined;
  // fromEntries defines own properties: a tag named `__proto__` is kept as a tag.
  return Object.fromEntries(Object.entries(value).filter(([, v]) => typeof v === 'string')) as Record<
    string,
    string
  >;
}

/**
 * A request body with the given fields as its own properties, whatever their names. axios
 * deep-copies plain-object bodies and drops keys named `__proto__`, `constructor` and
 * `prototype` on the way (at every depth): a field of that name would be lost, silently, and so
 * would another client's field of that name when a field next to it is written. An instance of
 * this class is not a plain object, so axios serializes it as it is.
 */
class JsonBody {
  constructor(fields: Readonly<Record<string, unknown>>) {
    for (const [name, value] of Object.entries(fields)) {
      Object.defineProperty(this, name, {
        value: isRecord(value) ? new JsonBody(value) : value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
}

/** Vault's own "nothing here" (404 with a Vault body); a 404 page from a proxy is an outage. */
const missing = (failure: VaultFailure) => failure.status === 404 && failure.understood;

/** A read's answer: a JSON object whose `data` is an object. */
const hasData = (body: unknown) => isRecord(body) && isRecord(body.data);

/** A write's or delete's answer: nothing (204) or a JSON object. */
const written = (body: unknown) => isEmptyBody(body) || isRecord(body);

/** Fingerprint of a KV v1 secret's fields, independent of key order. */
export function dataFingerprint(data: Readonly<Record<string, unknown>>): string {
  const sorted = Object.keys(data)
    .sort()
    .map((k) => [k, data[k]]);
  return `fp:${fingerprint(JSON.stringify(sorted))}`;
}

function base(call: Call, operation: SecretOperation, key: string) {
  return {
    operation,
    key,
    signal: call.signal,
    ...(call.retries === undefined ? {} : { retries: call.retries }),
  };
}

/**
 * Reads a KV secret (a given version on v2). Resolves `undefined` when it does not exist or the
 * version is soft-deleted or destroyed (Vault's 404 with a body), and `currentVersion` alongside
 * so a write can check-and-set against a deleted version.
 */
export async function readKv(
  call: Call,
  address: KvAddress,
  version?: string,
  operation: SecretOperation = 'get',
): Promise<{ read: KvRead | undefined; currentVersion: number }> {
  const { transport, client } = call;
  if (address.version === 1) {
    const body = await transport.call<{ data?: Record<string, unknown> } | null>({
      ...base(call, operation, address.key),
      send: (options) =>
        client.read(`${address.mount}/${encodePath(address.path)}`, options) as Promise<{
          data?: Record<string, unknown>;
        }>,
      accept: hasData,
      onFailure: (failure) => (missing(failure) ? NOT_FOUND : undefined),
    });
    if (body === NOT_FOUND || !isRecord(body?.data)) return { read: undefined, currentVersion: 0 };
    return { read: { data: body.data, version: dataFingerprint(body.data) }, currentVersion: 0 };
  }
  let deletedBody: V2DataBody | undefined;
  const query = version === undefined ? '' : `?version=${encodeURIComponent(version)}`;
  const body = await transport.call<V2DataBody | null>({
    ...base(call, operation, address.key),
    send: (options) =>
      client.read(
        `${address.mount}/data/${encodePath(address.path)}${query}`,
        options,
      ) as Promise<V2DataBody>,
    // A 200 holds the fields and their metadata (or, from older Vaults, no fields and the
    // metadata of a deleted version); anything else is not understood, never "not found".
    accept: (answer) => {
      if (!hasData(answer)) return false;
      const { data, metadata } = (answer as V2DataBody).data ?? {};
      if (!isRecord(metadata)) return false;
      return isRecord(data) || (data === null && (metadata.destroyed === true || !!metadata.deletion_time));
    },
    onFailure: (failure) => {
      if (!missing(failure)) return undefined;
      deletedBody = (failure.data === undefined ? {} : { data: failure.data }) as V2DataBody;
      return NOT_FOUND;
    },
  });
  if (body === NOT_FOUND) {
    const metadataVersion = deletedBody?.data?.metadata?.version;
    return { read: undefined, currentVersion: typeof metadataVersion === 'number' ? metadataVersion : 0 };
  }
  const data = body?.data?.data;
  const metadata = body?.data?.metadata;
  if (typeof data !== 'object' || data === null) {
    return { read: undefined, currentVersion: typeof metadata?.version === 'number' ? metadata.version : 0 };
  }
  const number = typeof metadata?.version === 'number' ? metadata.version : 0;
  return {
    read: {
      data,
      version: String(number),
      createdAt: date(metadata?.created_time),
      tags: tags(metadata?.custom_metadata),
    },
    currentVersion: number,
  };
}

/** KV v2 metadata, or `undefined` when the key has none. */
export async function readKvMetadata(
  call: Call,
  address: KvAddress,
  operation: SecretOperation = 'metadata',
): Promise<KvMetadata | undefined> {
  const { transport, client } = call;
  const body = await transport.call<{ data?: Record<string, unknown> } | null>({
    ...base(call, operation, address.key),
    send: (options) =>
      client.read(`${address.mount}/metadata/${encodePath(address.path)}`, options) as Promise<{
        data?: Record<string, unknown>;
      }>,
    accept: hasData,
    onFailure: (failure) => (missing(failure) ? NOT_FOUND : undefined),
  });
  if (body === NOT_FOUND || !isRecord(body?.data)) return undefined;
  const meta = body.data;
  const current = typeof meta.current_version === 'number' ? meta.current_version : 0;
  const versions = (isRecord(meta.versions) ? meta.versions : {}) as Record<
    string,
    { created_time?: string; deletion_time?: string; destroyed?: boolean }
  >;
  const entry = Object.hasOwn(versions, String(current)) ? versions[String(current)] : undefined;
  return {
    currentVersion: current,
    currentReadable: entry !== undefined && !entry.destroyed && (entry.deletion_time ?? '') === '',
    createdAt: date(meta.created_time),
    updatedAt: date(entry?.created_time) ?? date(meta.updated_time),
    tags: tags(meta.custom_metadata),
  };
}

/** Writes all fields of a KV secret; `cas` (v2 only) makes it a check-and-set. */
export async function writeKv(
  call: Call,
  address: KvAddress,
  data: Record<string, unknown>,
  cas: number | undefined,
): Promise<void> {
  const { transport, client } = call;
  await transport.call({
    ...base(call, 'set', address.key),
    // A write that may have reached Vault is not sent again: it could land twice.
    idempotent: false,
    accept: written,
    send: (options) =>
      address.version === 1
        ? client.write(`${address.mount}/${encodePath(address.path)}`, new JsonBody(data), options)
        : client.write(
            `${address.mount}/data/${encodePath(address.path)}`,
            new JsonBody(cas === undefined ? { data } : { data, options: { cas } }),
            options,
          ),
  });
}

/** Deletes a KV secret: v1 removes it; v2 soft-deletes the latest version, or removes every version. */
export async function deleteKv(call: Call, address: KvAddress, mode: 'latest' | 'all'): Promise<void> {
  const { transport, client } = call;
  const path =
    address.version === 1
      ? `${address.mount}/${encodePath(address.path)}`
      : `${address.mount}/${mode === 'all' ? 'metadata' : 'data'}/${encodePath(address.path)}`;
  await transport.call({
    ...base(call, 'delete', address.key),
    accept: written,
    send: (options) => client.delete(path, options),
  });
}

/** One LIST: names in `folder` of a mount (sub-folders end in `/`); an empty or missing folder is `[]`. */
export async function listFolder(
  call: Call,
  start: ListStart,
  operation: SecretOperation = 'keys',
): Promise<string[]> {
  const { transport, client } = call;
  const path =
    start.version === 1
      ? `${start.mount}/${encodePath(start.folder)}`
      : `${start.mount}/metadata/${encodePath(start.folder)}`;
  const body = await transport.call<{ data?: { keys?: unknown } } | null>({
    ...base(call, operation, `${start.mount}/${start.folder}`),
    send: (options) => client.list(path, options) as Promise<{ data?: { keys?: unknown } }>,
    accept: (answer) => hasData(answer) && Array.isArray((answer as { data: { keys?: unknown } }).data.keys),
    onFailure: (failure) => (missing(failure) ? NOT_FOUND : undefined),
  });
  if (body === NOT_FOUND) return [];
  const keys = body?.data?.keys;
  return Array.isArray(keys) ? keys.filter((k): k is string => typeof k === 'string') : [];
}

/**
 * Lists the keys under `start`, descending into folders when `recursive` (bounded), else
 * returning folders as names ending in `/`. Names are full keys (`secret/app/db`).
 */
export async function listKeys(
  call: Call,
  start: ListStart,
  recursive: boolean,
  limits: { maxKeys: number; concurrency: number },
  operation: SecretOperation = 'keys',
): Promise<string[]> {
  const found: string[] = [];
  let queue: string[] = [start.folder];
  for (let depth = 0; queue.length > 0 && depth < 64; depth++) {
    const next: string[] = [];
    for (let i = 0; i < queue.length; i += limits.concurrency) {
      const batch = queue.slice(i, i + limits.concurrency);
      const results = await Promise.all(
        batch.map((folder) => listFolder(call, { ...start, folder }, operation)),
      );
      batch.forEach((folder, index) => {
        for (const name of results[index] ?? []) {
          const full = `${folder}${name}`;
          if (name.endsWith('/')) {
            if (recursive) next.push(full);
            else found.push(`${start.mount}/${full}`);
          } else found.push(`${start.mount}/${full}`);
        }
      });
      if (found.length >= limits.maxKeys) return found.slice(0, limits.maxKeys);
    }
    queue = next;
  }
  return found;
}
