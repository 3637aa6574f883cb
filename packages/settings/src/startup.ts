import { writeSync } from 'node:fs';
import { isSecretError, type SecretError } from '@secret-provider/core';
import { toSecretError } from '@secret-provider/core/adapter';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { describeProblem, SettingsError } from './errors.js';
import { type LoadOptions, SETTINGS_DEFAULTS, Settings } from './settings.js';
import type { SettingsOptions, SettingsProblem } from './types.js';

/** What a start-up reporter receives when the settings cannot be loaded. Names and codes, no value. */
export interface SettingsReport {
  /** The settings' `name`. */
  readonly settings: string;
  /**
   * Why: a {@link SettingsError} (invalid, missing or unreadable fields), a `TIMEOUT`, or the
   * `INVALID_CONFIG` of a definition that cannot be routed.
   */
  readonly error: SecretError;
  /** Every problem with a field: field, key, provider, code, reason. Empty for other failures. */
  readonly problems: readonly SettingsProblem[];
  /** The report as {@link loadSettingsOrExit} prints it by default: a header and one line per problem. */
  readonly text: string;
}

/** Options of {@link loadSettingsOrExit}. */
export interface StartupOptions {
  /**
   * Receives the report in place of the default, which writes `report.text` to stderr (a
   * logger, another format). Awaited before the exit; if it throws, the default report is
   * written after all.
   */
  readonly reporter?: ((report: SettingsReport) => void | Promise<void>) | undefined;
  /** The code the process exits with. @default 1 */
  readonly exitCode?: number | undefined;
}

/**
 * Fails fast at boot: defines and loads the settings, or reports every problem (field names,
 * keys, providers and codes, never a value) and ends the process with a non-zero code. For
 * entry points that must not start with invalid configuration, as envalid's `reporter` and
 * t3-env's `onValidationError` are.
 *
 * @example
 * ```ts
 * const settings = await loadSettingsOrExit({ source, schema }); // exits 1 with a report on stderr
 * ```
 * @returns the loaded settings; never returns when they cannot be loaded.
 */
export async function loadSettingsOrExit<S extends StandardSchemaV1>(
  options: SettingsOptions<S> & LoadOptions,
  startup: StartupOptions = {},
): Promise<Settings<S>> {
  let settings: Settings<S> | undefined;
  try {
    settings = new Settings(options);
    await settings.load(options);
    return settings;
  } catch (error) {
    const report = settingsReport(options.name ?? SETTINGS_DEFAULTS.name, error);
    try {
      await (startup.reporter ?? printReport)(report);
    } catch {
      printReport(report);
    }
    await settings?.close().catch(() => {});
    process.exit(startup.exitCode ?? 1);
  }
}

/** The report of a failed load: the problems of a {@link SettingsError}, or the failure alone. */
export function settingsReport(settings: string, failure: unknown): SettingsReport {
  const error = isSecretError(failure)
    ? failure
    : toSecretError(failure, { provider: settings, operation: 'refresh' });
  const problems = error instanceof SettingsError ? error.problems : [];
  const header =
    problems.length > 0
      ? `settings "${settings}": cannot start, ${problems.length} problem${problems.length === 1 ? '' : 's'} (values are not shown):`
      : `settings "${settings}": cannot start: ${error.code}: ${error.message}`;
  const lines = problems.map((problem) => `  - ${describeProblem(problem)}`);
  return Object.freeze({ settings, error, problems, text: [header, ...lines].join('\n') });
}

function printReport(report: SettingsReport): void {
  // Synchronous, so that the whole report is out before the process exits.
  writeSync(2, `${report.text}\n`);
}
