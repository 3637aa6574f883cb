import { deleteDotenvValue, isDotenvKey, parseDotenv, setDotenvValue } from './dotenv.js';
import {
  DocumentSyntaxError,
  deleteJsonValue,
  flattenJson,
  formatJson,
  isForbiddenSegment,
  isObject,
  type JsonKeyStyle,
  type JsonObject,
  parseJsonDocument,
  pathForDelete,
  pathForSet,
  setJsonValue,
} from './json.js';

type Yaml = typeof import('yaml');
type Toml = typeof import('smol-toml');

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
  /** Loads what the format needs (its parser library) before the first use. */
  prepare?(): Promise<void>;
}

/** Keys of a tree of objects: dotted paths (`nested`) or top-level names (`flat`). */
function treeKeyProblem(style: JsonKeyStyle): (key: string) => string | undefined {
  return (key) => {
    const segments = style === 'nested' ? key.split('.') : [key];
    if (segments.some((segment) => segment === '')) return 'empty path segment';
    if (segments.some(isForbiddenSegment)) return 'reserved name';
    return undefined;
  };
}

/** JSON documents; `nested` keys address leaves of nested objects as `db.password`. */
export function jsonFormat(style: JsonKeyStyle): DocumentFormat {
  return {
    label: 'JSON',
    keyProblem: treeKeyProblem(style),
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

/**
 * YAML documents (one document whose top level is a mapping), keys as for JSON. Edits go through
 * the `yaml` library's document model, which keeps comments, order and formatting of the rest.
 * Parse errors give the library's line and column only: its messages quote the text.
 */
export function yamlFormat(style: JsonKeyStyle): DocumentFormat {
  let yaml: Yaml | undefined;
  const load = (): Yaml => {
    if (yaml === undefined) throw new Error('the YAML format was used before it was prepared');
    return yaml;
  };
  const parse = (text: string) => {
    const document = load().parseDocument(text, { uniqueKeys: true });
    const error = document.errors[0];
    if (error !== undefined) {
      const at = error.linePos?.[0];
      throw new DocumentSyntaxError('invalid YAML', at?.line, at?.col);
    }
    let tree: unknown;
    try {
      tree = document.toJS({ maxAliasCount: 100 });
    } catch {
      // Too many aliases (a "billion laughs" document); the message names no content.
      throw new DocumentSyntaxError('invalid YAML: too many aliases');
    }
    if (tree === null || tree === undefined) tree = {};
    if (!isObject(tree))
      throw new DocumentSyntaxError('invalid secrets file: the top level must be a YAML mapping');
    return { document, tree };
  };
  return {
    label: 'YAML',
    keyProblem: treeKeyProblem(style),
    async prepare() {
      yaml ??= await import('yaml');
    },
    parse: (text) => flattenJson(parse(text).tree, style),
    set(text, key, value) {
      const { document, tree } = parse(text);
      const path = pathForSet(tree, key, style);
      // A mapping on the way that is empty (`db:` with no value) becomes a mapping to write into.
      for (let depth = 1; depth < path.length; depth++) {
        const prefix = path.slice(0, depth);
        const node = document.getIn(prefix, true);
        if (node === undefined || node === null || (load().isScalar(node) && node.value === null)) {
          document.setIn(prefix, document.createNode({}));
        }
      }
      document.setIn(path, value);
      return document.toString();
    },
    delete(text, key) {
      const { document, tree } = parse(text);
      const path = pathForDelete(tree, key, style);
      if (path === undefined) return undefined;
      document.deleteIn(path);
      for (let depth = path.length - 1; depth > 0; depth--) {
        const parent = document.getIn(path.slice(0, depth), true);
        if (!load().isMap(parent) || parent.items.length > 0) break;
        document.deleteIn(path.slice(0, depth));
      }
      return document.toString();
    },
  };
}

/**
 * TOML documents, keys as for JSON (tables are objects; dates and times read as ISO 8601 text).
 * Writes rewrite the document with `smol-toml`, which keeps every value but not comments or
 * formatting. Parse errors give a line and column only: the library's messages quote the text.
 */
export function tomlFormat(style: JsonKeyStyle): DocumentFormat {
  let toml: Toml | undefined;
  const parse = (text: string): JsonObject => {
    if (toml === undefined) throw new Error('the TOML format was used before it was prepared');
    try {
      return toml.parse(text) as JsonObject;
    } catch (error) {
      const { line, column } = (error ?? {}) as { line?: unknown; column?: unknown };
      throw typeof line === 'number' && typeof column === 'number'
        ? new DocumentSyntaxError('invalid TOML', line, column)
        : new DocumentSyntaxError('invalid TOML');
    }
  };
  const format = (tree: JsonObject) => (toml as Toml).stringify(tree);
  return {
    label: 'TOML',
    keyProblem: treeKeyProblem(style),
    async prepare() {
      toml ??= await import('smol-toml');
    },
    parse: (text) => flattenJson(parse(text), style),
    set(text, key, value) {
      const tree = parse(text);
      setJsonValue(tree, key, value, style);
      return format(tree);
    },
    delete(text, key) {
      const tree = parse(text);
      return deleteJsonValue(tree, key, style) ? format(tree) : undefined;
    },
  };
}
