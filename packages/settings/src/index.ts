export type { StandardSchemaV1 } from '@standard-schema/spec';
export { SettingsError } from './errors.js';
export { deriveKey } from './fields.js';
export {
  defineSettings,
  isSecretString,
  type LoadOptions,
  loadSettings,
  SETTINGS_DEFAULTS,
  Settings,
} from './settings.js';
export { loadSettingsOrExit, type SettingsReport, type StartupOptions, settingsReport } from './startup.js';
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
export { SETTINGS_ERROR_WARNING, SETTINGS_LISTENER_WARNING } from './updates.js';
export type { ChangeWatcher, WatcherOptions } from './watchers.js';
