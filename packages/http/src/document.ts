// Documents of keys served over the network, read by the file provider's readers (one parser per
// format in the product): JSON and YAML (nested mappings as `db.password`), TOML (tables alike)
// and `.env` (as `dotenv.parse` reads it). Failures give a line and column at most, never the
// text: the text is secrets.
import { DotenvSyntaxError } from '@secret-provider/file/dotenv';
import {
  type DocumentFormat as DocumentReader,
  dotenvFormat,
  jsonFormat,
  tomlFormat,
  yamlFormat,
} from '@secret-provider/file/formats';
import { DocumentSyntaxError, type JsonKeyStyle } from '@secret-provider/file/json';

/** What a document is: JSON, YAML, TOML, `.env`, or one raw value. */
export type DocumentFormat = 'json' | 'yaml' | 'toml' | 'env' | 'value';

/** The formats that hold keys. */
export type KeyedFormat = Exclude<DocumentFormat, 'value'>;

export type { JsonKeyStyle } from '@secret-provider/file/json';

const readers = new Map<string, DocumentReader>();

function readerFor(format: KeyedFormat, keys: JsonKeyStyle): DocumentReader {
  const id = `${format}:${keys}`;
  let reader = readers.get(id);
  if (reader === undefined) {
    reader =
      format === 'env'
        ? dotenvFormat
        : format === 'yaml'
          ? yamlFormat(keys)
          : format === 'toml'
            ? tomlFormat(keys)
            : jsonFormat(keys);
    readers.set(id, reader);
  }
  return reader;
}

/**
 * Key -> value of a document. An empty document has no keys. The YAML and TOML libraries load
 * on the first document of their format.
 * @throws {Error} with a message that gives a line and column at most, never the text.
 */
export async function readDocument(
  text: string,
  format: KeyedFormat,
  jsonKeys: JsonKeyStyle = 'nested',
): Promise<Map<string, string>> {
  const reader = readerFor(format, jsonKeys);
  await reader.prepare?.();
  try {
    return reader.parse(text);
  } catch (error) {
    // The readers' own errors give a reason and a position; anything else may quote the text.
    const known = error instanceof DocumentSyntaxError || error instanceof DotenvSyntaxError;
    throw new Error(`invalid ${reader.label} document: ${known ? error.message : 'unreadable'}`);
  }
}

/** The format a `Content-Type` names, if it names one that holds keys. */
export function formatOfContentType(type: string): KeyedFormat | undefined {
  const essence = (type.split(';')[0] ?? '').trim().toLowerCase();
  if (/^application\/(?:[\w.+-]*\+)?json$/.test(essence)) return 'json';
  if (/^(?:application|text)\/(?:x-)?yaml$|^application\/[\w.+-]*\+yaml$/.test(essence)) return 'yaml';
  if (/^application\/(?:x-)?toml$|^application\/[\w.+-]*\+toml$/.test(essence)) return 'toml';
  return undefined;
}

/** The format a URL's last path segment names, if it names one. */
export function formatOfPath(url: URL): KeyedFormat | undefined {
  const name = url.pathname.split('/').pop()?.toLowerCase() ?? '';
  if (name.endsWith('.json')) return 'json';
  if (name.endsWith('.yaml') || name.endsWith('.yml')) return 'yaml';
  if (name.endsWith('.toml')) return 'toml';
  if (name === '.env' || name.startsWith('.env.') || name.endsWith('.env')) return 'env';
  return undefined;
}
