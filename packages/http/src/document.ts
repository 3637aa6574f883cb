// Documents of keys served over the network, named as the file provider names them: JSON
// (nested objects as `db.password`) and `.env` (the file provider's reader, which reads as
// `dotenv.parse` does). Failures give a position at most, never the text: the text is secrets.
import { parseDotenv } from '@secret-provider/file/dotenv';

/** What a document is: JSON, `.env`, or one raw value. */
export type DocumentFormat = 'json' | 'env' | 'value';

/** How keys address a JSON document: leaves of nested objects (`db.password`), or top-level names. */
export type JsonKeyStyle = 'nested' | 'flat';

/** Names that would reach an object's prototype: never keys. */
const FORBIDDEN = new Set(['__proto__', 'prototype', 'constructor']);

type JsonObject = { [key: string]: unknown };

const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Key -> value of a JSON or `.env` document. An empty document has no keys.
 * @throws {Error} with a message that gives a line (and column) at most, never the text.
 */
export function readDocument(
  text: string,
  format: 'json' | 'env',
  jsonKeys: JsonKeyStyle = 'nested',
): Map<string, string> {
  if (format === 'env') {
    try {
      return parseDotenv(text);
    } catch (error) {
      // The reader's messages name a line and a reason, never the text.
      throw new Error(`invalid .env document: ${error instanceof Error ? error.message : 'unreadable'}`);
    }
  }
  const source = text.startsWith('\uFEFF') ? text.slice(1) : text;
  if (source.trim() === '') return new Map();
  let parsed: unknown;
  try {
    parsed = JSON.parse(source);
  } catch (error) {
    // V8 quotes the input in its message: only the numeric position is taken from it.
    const message = error instanceof Error ? error.message : '';
    const position = /at position (\d+)/.exec(message);
    if (position === null) throw new Error('invalid JSON document');
    const before = source.slice(0, Number(position[1]));
    const line = before.split('\n').length;
    const column = before.length - before.lastIndexOf('\n');
    throw new Error(`invalid JSON document at line ${line}, column ${column}`);
  }
  if (!isObject(parsed)) throw new Error('invalid JSON document: the top level must be an object');
  return flatten(parsed, jsonKeys);
}

/** Leaves as strings: numbers and booleans as their JSON text, arrays and (flat) objects as JSON, `null` as no value. */
function flatten(document: JsonObject, style: JsonKeyStyle): Map<string, string> {
  const values = new Map<string, string>();
  const walk = (object: JsonObject, prefix: string) => {
    for (const [name, value] of Object.entries(object)) {
      if (FORBIDDEN.has(name)) continue;
      const path = prefix === '' ? name : `${prefix}.${name}`;
      if (style === 'nested' && isObject(value)) {
        walk(value, path);
        continue;
      }
      if (typeof value === 'string') values.set(path, value);
      else if (typeof value === 'number' || typeof value === 'boolean') values.set(path, String(value));
      else if (value !== null) values.set(path, JSON.stringify(value));
    }
  };
  walk(document, '');
  return values;
}
