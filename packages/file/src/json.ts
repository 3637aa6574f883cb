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

export type JsonObject = { [key: string]: unknown };

const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'prototype', 'constructor']);

/** Keys that would reach an object's prototype are refused: they cannot name a secret. */
export function isForbiddenSegment(segment: string): boolean {
  return FORBIDDEN_SEGMENTS.has(segment);
}

/** A plain object (a JSON object, a YAML mapping, a TOML table); not an array, a date or a buffer. */
export function isObject(value: unknown): value is JsonObject {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
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
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (value === null || value === undefined) return undefined;
  // TOML dates and times.
  if (value instanceof Date) return value.toISOString();
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

/**
 * The path of object names `key` is stored at when it is set: the key itself when the top level
 * has it (or in `flat` style), else its dotted segments. Walks own properties only, so
 * `toString.x` names a key under "toString", not Object.prototype's method.
 * @throws {JsonPathConflict} when the path runs through a value that is not an object, or ends
 *   at an object (replacing it by a string would drop every key under it).
 */
export function pathForSet(document: JsonObject, key: string, style: JsonKeyStyle): string[] {
  if (style === 'flat') return [key];
  if (Object.hasOwn(document, key)) {
    if (isObject(document[key])) throw new JsonPathConflict(key);
    return [key];
  }
  const segments = key.split('.');
  let object: JsonObject | undefined = document;
  for (const [index, segment] of segments.entries()) {
    const next: unknown =
      object !== undefined && Object.hasOwn(object, segment) ? object[segment] : undefined;
    const last = index === segments.length - 1;
    if (last ? isObject(next) : next !== undefined && next !== null && !isObject(next)) {
      throw new JsonPathConflict(segments.slice(0, index + 1).join('.'));
    }
    object = isObject(next) ? next : undefined;
  }
  return segments;
}

/** The path of a leaf `key` names in `document`, or `undefined` when it names none. */
export function pathForDelete(document: JsonObject, key: string, style: JsonKeyStyle): string[] | undefined {
  const segments = style === 'flat' || Object.hasOwn(document, key) ? [key] : key.split('.');
  let value: unknown = document;
  for (const segment of segments) {
    if (!isObject(value) || !Object.hasOwn(value, segment)) return undefined;
    value = value[segment];
  }
  return style === 'nested' && isObject(value) ? undefined : segments;
}

/** Sets `key` in `document` (mutating it). Nested keys create the objects on their path. */
export function setJsonValue(document: JsonObject, key: string, value: string, style: JsonKeyStyle): void {
  const path = pathForSet(document, key, style);
  const leaf = path.pop() as string;
  let object = document;
  for (const segment of path) {
    const next = Object.hasOwn(object, segment) ? object[segment] : undefined;
    if (isObject(next)) {
      object = next;
    } else {
      const created: JsonObject = {};
      object[segment] = created;
      object = created;
    }
  }
  object[leaf] = value;
}

/** Removes `key` from `document` (mutating it), pruning objects it leaves empty. */
export function deleteJsonValue(document: JsonObject, key: string, style: JsonKeyStyle): boolean {
  const path = pathForDelete(document, key, style);
  if (path === undefined) return false;
  const chain: JsonObject[] = [document];
  for (const segment of path.slice(0, -1)) chain.push((chain.at(-1) as JsonObject)[segment] as JsonObject);
  delete (chain.at(-1) as JsonObject)[path.at(-1) as string];
  for (let depth = chain.length - 1; depth > 0; depth--) {
    if (Object.keys(chain[depth] as JsonObject).length > 0) break;
    delete (chain[depth - 1] as JsonObject)[path[depth - 1] as string];
  }
  return true;
}

/** The text written for a document: two-space indentation and a final newline. */
export function formatJson(document: JsonObject): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}
