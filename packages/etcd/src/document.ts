/**
 * A JSON document held by one etcd key: parsed without letting V8 quote its text, flattened into
 * `a.b.c` keys as the file provider names them, and edited one key at a time.
 */

/** How keys address a JSON document: `nested` walks objects (`db.password`), `flat` does not. */
export type JsonKeyStyle = 'nested' | 'flat';

type JsonObject = { [key: string]: unknown };

const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'prototype', 'constructor']);

/** Names that would reach an object's prototype cannot name a secret. */
export function isForbiddenSegment(segment: string): boolean {
  return FORBIDDEN_SEGMENTS.has(segment);
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The document is not a JSON object; carries no part of its text. */
export class DocumentSyntaxError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'DocumentSyntaxError';
  }
}

/** A write whose key runs through a value that is not an object, or that would replace one. */
export class DocumentPathConflict extends Error {
  constructor() {
    super('the key is not a leaf of the document');
    this.name = 'DocumentPathConflict';
  }
}

/**
 * Parses a document whose top level is an object. An empty value is an empty document.
 * @throws {DocumentSyntaxError} with at most a position: V8's messages quote the input.
 */
export function parseDocument(text: string): JsonObject {
  if (text.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    const position = /at position (\d+)/.exec(error instanceof Error ? error.message : '');
    throw new DocumentSyntaxError(
      position === null ? 'invalid JSON' : `invalid JSON at offset ${Number(position[1])}`,
    );
  }
  if (!isObject(parsed)) throw new DocumentSyntaxError('the top level of the document is not a JSON object');
  return parsed;
}

function leafToString(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === null || value === undefined) return undefined;
  return JSON.stringify(value);
}

/**
 * Key -> string value. `nested`: objects are walked and leaves named by dotted paths; arrays,
 * numbers and booleans become their JSON text; `null` is no value. `flat`: the top level only.
 */
export function flattenDocument(document: JsonObject, style: JsonKeyStyle): Map<string, string> {
  const values = new Map<string, string>();
  const walk = (object: JsonObject, prefix: string) => {
    for (const [name, value] of Object.entries(object)) {
      if (isForbiddenSegment(name)) continue;
      const path = prefix === '' ? name : `${prefix}.${name}`;
      if (style === 'nested' && isObject(value)) {
        walk(value, path);
        continue;
      }
      const text = leafToString(value);
      if (text !== undefined) values.set(path, text);
    }
  };
  walk(document, '');
  return values;
}

/** Sets `key` (mutating `document`); nested keys create the objects on their path. */
export function setDocumentValue(
  document: JsonObject,
  key: string,
  value: string,
  style: JsonKeyStyle,
): void {
  if (style === 'flat' || Object.hasOwn(document, key)) {
    if (style === 'nested' && isObject(document[key])) throw new DocumentPathConflict();
    document[key] = value;
    return;
  }
  const segments = key.split('.');
  const leaf = segments.pop() as string;
  let object = document;
  for (const segment of segments) {
    const next = object[segment];
    if (next === undefined || next === null) {
      const created: JsonObject = {};
      object[segment] = created;
      object = created;
    } else if (isObject(next)) {
      object = next;
    } else {
      throw new DocumentPathConflict();
    }
  }
  if (isObject(object[leaf])) throw new DocumentPathConflict();
  object[leaf] = value;
}

/** Removes `key` (mutating `document`), pruning the objects it leaves empty; false if absent. */
export function deleteDocumentValue(document: JsonObject, key: string, style: JsonKeyStyle): boolean {
  if (style === 'flat' || Object.hasOwn(document, key)) {
    if (!Object.hasOwn(document, key) || (style === 'nested' && isObject(document[key]))) return false;
    delete document[key];
    return true;
  }
  const segments = key.split('.');
  const chain: JsonObject[] = [document];
  for (const segment of segments.slice(0, -1)) {
    const next = (chain.at(-1) as JsonObject)[segment];
    if (!isObject(next)) return false;
    chain.push(next);
  }
  const leaf = segments.at(-1) as string;
  const parent = chain.at(-1) as JsonObject;
  if (!Object.hasOwn(parent, leaf) || isObject(parent[leaf])) return false;
  delete parent[leaf];
  for (let depth = chain.length - 1; depth > 0; depth--) {
    if (Object.keys(chain[depth] as JsonObject).length > 0) break;
    delete (chain[depth - 1] as JsonObject)[segments[depth - 1] as string];
  }
  return true;
}

/** The text stored for a document: two-space indentation. */
export function formatDocument(document: JsonObject): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}
