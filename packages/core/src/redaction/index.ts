/**
 * The redaction engine: masks known secret values, and their common encodings, in log text and
 * log records. Importable as `@secret-provider/core/redaction`; the main entry re-exports
 * `createRedactor` and its types. No module of core outside this folder imports it, so a
 * bundle of an application that imports only `Secret` leaves it out.
 */
export {
  DEFAULT_REDACTION_MAX_DEPTH,
  type DeepRedactOptions,
  redactDeep,
  TRUNCATED,
  UNREADABLE,
} from './deep.js';
export type { RedactionEncoding } from './encodings.js';
export type { RedactingProvider } from './provider.js';
export {
  type AttachHandle,
  type AttachOptions,
  type ChunkRedactor,
  createRedactor,
  DEFAULT_MIN_SECRET_LENGTH,
  DEFAULT_ROTATION_GRACE_MS,
  type LearnOptions,
  type LearnResult,
  Redactor,
  type RedactorAddOptions,
  type RedactorOptions,
  type RedactorStats,
  type RedactorWarning,
  type WrapOptions,
} from './redactor.js';
export {
  DEFAULT_SECRET_KEY_WORDS,
  defaultSecretKeys,
  NON_SECRET_ENVIRONMENT_KEYS,
  type SecretKeyPredicate,
} from './secret-keys.js';
