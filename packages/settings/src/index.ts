export type { StandardSchemaV1 } from '@standard-schema/spec';
export { SettingsError } from './errors.js';
export { deriveKey } from './fields.js';
export {
  type ChangeWatcher,
  defineSettings,
  isSecretString,
  type LoadOptions,
  loadSettings,
  SETTINGS_DEFAULTS,
  Settings,
  type WatcherOptions,
} from './settings.js';
export type {
  DeepReadonly,
  FieldFormat,
  FieldOptions,
  FieldPath,
  FieldSpec,
  FieldsSpec,
  FieldValue,
  KeyStyle,
  NestedFieldOptions,
  SettingsErrorEvent,
  SettingsEvents,
  SettingsOf,
  SettingsOptions,
  SettingsProblem,
  SettingsUpdate,
  SettingsWarningEvent,
} from './types.js';
