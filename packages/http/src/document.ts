// Documents of keys served over the network, read by the file provider's readers (one parser in
// the product): JSON (nested objects as `db.password`) and `.env` (as `dotenv.parse` reads it).
// Failures give a position at most, never the text: the text is secrets.
import { parseDotenv } from '@secret-provider/file/dotenv';
import {
  DocumentSyntaxError,
  flattenJson,
  type JsonKeyStyle,
  type JsonObject,
  parseJsonDocument,
} from '@secret-provider/file/json';

/** What a document is: JSON, `.env`, or one raw value. */
export type DocumentFormat = 'json' | 'env' | 'value';

export type { JsonKeyStyle } from '@secret-provider/file/json';

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
  if ((text.startsWith('\uFEFF') ? text.slice(1) : text).trim() === '') return new Map();
  let parsed: JsonObject;
  try {
    parsed = parseJsonDocument(text);
  } catch (error) {
    // The file provider's reader reports a reason and a position, never the text.
    throw new Error(
      `invalid JSON document: ${error instanceof DocumentSyntaxError ? error.message : 'unreadable'}`,
    );
  }
  return flattenJson(parsed, jsonKeys);
}
