/**
 * The redaction engine: masks known secret values, and their common encodings, in log text and
 * log records. Importable as `@secret-provider/core/redaction`; the main entry re-exports
 * `createRedactor` and its types, and nothing outside this folder imports it, so an application
 * that imports only `Secret` does not load it.
 */
export { TRUNCATED, UNREADABLE } from './deep.js';
export type { RedactionEncoding } from './encodings.js';
export type { RedactingProvider } from './provider.js';
export {
  type AttachHandle,
  type AttachOptions,
  type ChunkRedactor,
  createRedactor,
  DEFAULT_MIN_SECRET_LENGTH,
  DEFAULT_REDACTION_MAX_DEPTH,
  DEFAULT_ROTATION_GRACE_MS,
  type LearnOptions,
  type LearnResult,
  Redactor,
  type RedactorAddOptions,
  type RedactorOptions,
  type RedactorStats,
  type RedactorWarning,
} from './redactor.js';
