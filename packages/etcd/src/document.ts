// JSON documents stored in one etcd key: the file provider's JSON reader and editor (one parser in
// the product), with etcd's reading of an empty key as an empty document.
import { type JsonObject, parseJsonDocument } from '@secret-provider/file/json';

export {
  DocumentSyntaxError,
  deleteJsonValue as deleteDocumentValue,
  flattenJson as flattenDocument,
  formatJson as formatDocument,
  isForbiddenSegment,
  type JsonKeyStyle,
  JsonPathConflict as DocumentPathConflict,
  setJsonValue as setDocumentValue,
} from '@secret-provider/file/json';

/**
 * Parses a document whose top level is a JSON object; an empty value is an empty document.
 * @throws {DocumentSyntaxError} with a position, never the text.
 */
export function parseDocument(text: string): JsonObject {
  return text.trim() === '' ? {} : parseJsonDocument(text);
}
