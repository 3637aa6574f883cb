import { deleteDotenvValue, isDotenvKey, parseDotenv, setDotenvValue } from './dotenv.js';
import {
  deleteJsonValue,
  flattenJson,
  formatJson,
  isForbiddenSegment,
  type JsonKeyStyle,
  parseJsonDocument,
  setJsonValue,
} from './json.js';

/**
 * How one kind of secrets document (a whole file of keys) is read and edited. Parsers throw
 * errors that give a position at most, never the text.
 */
export interface DocumentFormat {
  /** The format's name in messages: `JSON`, `.env`. */
  readonly label: string;
  /** Why `key` cannot be a key of this format, or `undefined`. */
  keyProblem(key: string): string | undefined;
  /** Key -> value of a document. */
  parse(text: string): Map<string, string>;
  /** The document with `key` set to `value`, every other key kept. */
  set(text: string, key: string, value: string): string;
  /** The document without `key`, or `undefined` when it has no such key. */
  delete(text: string, key: string): string | undefined;
}

/** JSON documents; `nested` keys address leaves of nested objects as `db.password`. */
export function jsonFormat(style: JsonKeyStyle): DocumentFormat {
  return {
    label: 'JSON',
    keyProblem(key) {
      const segments = style === 'nested' ? key.split('.') : [key];
      if (segments.some((segment) => segment === '')) return 'empty path segment';
      if (segments.some(isForbiddenSegment)) return 'reserved name';
      return undefined;
    },
    // An empty file is "no secrets yet", which is what a new file provider writes into.
    parse: (text) => (text.trim() === '' ? new Map() : flattenJson(parseJsonDocument(text), style)),
    set(text, key, value) {
      const document = text.trim() === '' ? {} : parseJsonDocument(text);
      setJsonValue(document, key, value, style);
      return formatJson(document);
    },
    delete(text, key) {
      if (text.trim() === '') return undefined;
      const document = parseJsonDocument(text);
      return deleteJsonValue(document, key, style) ? formatJson(document) : undefined;
    },
  };
}

/** `.env` documents, read as `dotenv.parse` reads them and edited in place. */
export const dotenvFormat: DocumentFormat = {
  label: '.env',
  keyProblem: (key) => (isDotenvKey(key) ? undefined : 'only letters, digits, "_", "." and "-" are allowed'),
  parse: parseDotenv,
  set: setDotenvValue,
  delete: deleteDotenvValue,
};
