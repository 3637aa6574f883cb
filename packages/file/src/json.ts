/**
 * JSON secrets files: parsing without leaking the text through V8's messages, flattening nested
 * objects into `a.b.c` keys, and editing one key while keeping the rest of the document.
 */

/** How keys address a JSON document. */
export type JsonKeyStyle = 'nested' | 'flat';

/**
 * A document that does not parse: a reason and a position, never the text (every document format
 * reports its parse failures this way, so their messages are safe to show).
 */
export class DocumentSyntaxError extends Error {
  readonly line: number | undefined;
  readonly column: number | undefined;
  constructor(reason: string, line?: number, column?: number) {
    super(line === undefined ? reason : `${reason} at line ${line}, column ${column}`);
    this.name = 'DocumentSyntaxError';
    this.line = line;
    this.column = column;
  }
}

/** A JSON parse failure with a position and no content. */
export class JsonSyntaxError extends DocumentSyntaxError {
  constructor(reason: string, line?: number, column?: number) {
    super(reason, line, column);
    this.name = 'JsonSyntaxError';
  }
}

type JsonObject = { [key: string]: unknown };

const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'prototype', 'constructor']);

/** Keys that would reach an object's prototype are refused: they cannot name a secret. */
export function isForbiddenSegment(segment: string): boolean {
  return FORBIDDEN_SEGMENTS.has(segment);
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses a JSON document whose top level is an object.
 * @throws {JsonSyntaxError} with a line and column where V8 gives a position; never the text.
 */
export function parseJsonDocument(text: string): JsonObject {
  const source = text.startsWith('\uFEFF') ? text.slice(1) : text;
  let parsed: unknown;
  try {
    parsed = JSON.parse(source);
  } catch (error) {
    // V8 quotes the input in its message ("Unexpected token 'h', "hunter2"... is not valid
    // JSON"); only the numeric position is taken from it.
    const message = error instanceof Error ? error.message : '';
    const position = /at position (\d+)/.exec(message);
    if (position === null) {
      throw new JsonSyntaxError(
        /end of JSON input/.test(message) ? 'invalid JSON: unexpected end of input' : 'invalid JSON',
      );
    }
    const offset = Number(position[1]);
    const before = source.slice(0, offset);
    const line = before.split('\n').length;
    const column = offset - before.lastIndexOf('\n');
    throw new JsonSyntaxError('invalid JSON', line, column);
  }
  if (!isObject(parsed))
    throw new JsonSyntaxError('invalid secrets file: the top level must be a JSON object');
  return parsed;
}

function leafToString(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === null || value === undefined) return undefined;
  return JSON.stringify(value);
}

/**
 * Key -> string value of a document. `nested`: objects are walked and their leaves named by
 * dotted paths (`db.password`); arrays, numbers and booleans become their JSON text; `null` is
 * no value. `flat`: only the top level, objects as JSON text.
 */
export function flattenJson(document: JsonObject, style: JsonKeyStyle): Map<string, string> {
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

/** Thrown when a nested key runs through a value that is not an object. */
export class JsonPathConflict extends Error {
  constructor(readonly segment: string) {
    super(`"${segment}" is not a leaf of the document's tree`);
    this.name = 'JsonPathConflict';
  }
}

/** Sets `key` in `document` (mutating it). Nested keys create the objects on their path. */
export function setJsonValue(document: JsonObject, key: string, value: string, style: JsonKeyStyle): void {
  if (style === 'flat') {
    document[key] = value;
    return;
  }
  if (Object.hasOwn(document, key)) {
    // Replacing an object by a string would drop every key under it.
    if (isObject(document[key])) throw new JsonPathConflict(key);
    document[key] = value;
    return;
  }
  const segments = key.split('.');
  const leaf = segments.pop() as string;
  let object = document;
  const walked: string[] = [];
  for (const segment of segments) {
    walked.push(segment);
    // Own properties only: `toString.x` names a key "toString", not Object.prototype's method.
    const next = Object.hasOwn(object, segment) ? object[segment] : undefined;
    if (next === undefined || next === null) {
      const created: JsonObject = {};
      object[segment] = created;
      object = created;
    } else if (isObject(next)) {
      object = next;
    } else {
      throw new JsonPathConflict(walked.join('.'));
    }
  }
  object[leaf] = value;
}

/** Removes `key` from `document` (mutating it), pruning objects it leaves empty. */
export function deleteJsonValue(document: JsonObject, key: string, style: JsonKeyStyle): boolean {
  if (style === 'flat' || Object.hasOwn(document, key)) {
    if (!Object.hasOwn(document, key)) return false;
    if (style === 'nested' && isObject(document[key])) return false;
    delete document[key];
    return true;
  }
  const segments = key.split('.');
  const chain: JsonObject[] = [document];
  for (const segment of segments.slice(0, -1)) {
    const parent = chain.at(-1) as JsonObject;
    const next = Object.hasOwn(parent, segment) ? parent[segment] : undefined;
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

/** The text written for a document: two-space indentation and a final newline. */
export function formatJson(document: JsonObject): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}
