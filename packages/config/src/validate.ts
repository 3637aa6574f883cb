import { stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { looserBits, octal, referencePath } from './references.js';
import { type ConfigIssue, formatPath, secretFields, validateAgainstSchema } from './schema.js';
import type { ProviderConfig, SecretReference } from './types.js';
import { fieldAt, isShadowed, VENDOR_FALLBACKS, vendorValue } from './vendor-env.js';

/** Options of {@link validateConfig}. */
export interface ValidateOptions {
  /** Environment references and vendor variables are read from. @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
  /** Directory relative paths are resolved from. @default process.cwd() */
  readonly baseDir?: string | undefined;
  /** The configuration file, whose own mode is checked too. */
  readonly configFile?: string | undefined;
}

/** What {@link validateConfig} found: errors make the configuration unusable, warnings do not. */
export interface ValidationReport {
  readonly errors: readonly ConfigIssue[];
  readonly warnings: readonly ConfigIssue[];
  /** Every check run, passed or not, for a report that says what was looked at. */
  readonly checked: readonly string[];
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Checks a configuration without any network access: the schema (unknown fields and literal
 * secrets included), duplicate provider names, references that do not resolve (unset
 * variables, missing files, providers not declared before), secret files and the config file
 * with modes looser than 0640, and vendor variables shadowed by the file (warnings).
 */
export async function validateConfig(
  config: unknown,
  options: ValidateOptions = {},
): Promise<ValidationReport> {
  const env = options.env ?? process.env;
  const baseDir = options.baseDir ?? process.cwd();
  const errors: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  const checked: string[] = ['schema'];

  if (options.configFile !== undefined) {
    checked.push('config file mode');
    errors.push(...(await modeIssues(options.configFile, '')));
  }
  errors.push(...validateAgainstSchema(config));
  const providers =
    isRecord(config) && Array.isArray(config.providers) ? (config.providers as unknown[]) : [];

  checked.push('provider names');
  const seen = new Map<string, number>();
  providers.forEach((entry, index) => {
    if (!isRecord(entry) || typeof entry.name !== 'string') return;
    const first = seen.get(entry.name);
    if (first !== undefined) {
      errors.push({
        path: formatPath(['providers', index, 'name']),
        code: 'DUPLICATE_NAME',
        message: `repeats the name of providers[${first}]`,
      });
    } else seen.set(entry.name, index);
  });

  checked.push('references', 'secret file modes', 'vendor variables');
  const fields = secretFields();
  for (const [index, entry] of providers.entries()) {
    if (!isRecord(entry) || typeof entry.type !== 'string') continue;
    const at = (field: string) => `${formatPath(['providers', index])}.${field}`;
    for (const field of fields.get(entry.type) ?? []) {
      const ref = fieldAt(entry, field);
      if (!isRecord(ref)) continue;
      errors.push(...(await referenceIssues(ref as SecretReference, at(field), index, seen, env, baseDir)));
    }
    for (const field of ['tls.keyFile', 'jwtFile', 'auth.jwtFile']) {
      const file = fieldAt(entry, field);
      if (typeof file === 'string') errors.push(...(await fileIssues(absolute(file, baseDir), at(field))));
    }
    for (const fallback of VENDOR_FALLBACKS[entry.type as ProviderConfig['type']] ?? []) {
      const value = vendorValue(env, fallback.env);
      if (value !== undefined && isShadowed(entry as unknown as ProviderConfig, fallback)) {
        warnings.push({
          path: at(fallback.field),
          code: 'SHADOWED_ENV',
          message: `is set in the file, so ${fallback.env} (set in the environment) is not used`,
        });
      }
    }
    if (entry.type === 'vault' && !isShadowed(entry as unknown as ProviderConfig, vaultToken)) {
      if (vendorValue(env, 'VAULT_TOKEN') === undefined) {
        errors.push({
          path: at('auth.token'),
          code: 'UNRESOLVED_REFERENCE',
          message: 'is not given and VAULT_TOKEN is not set',
        });
      }
    }
    if (
      entry.type === 'azure' &&
      entry.vaultUrl === undefined &&
      vendorValue(env, 'AZURE_KEYVAULT_URL') === undefined
    ) {
      errors.push({
        path: at('vaultUrl'),
        code: 'SCHEMA',
        message: 'is required (or set AZURE_KEYVAULT_URL)',
      });
    }
  }

  if (isRecord(config) && isRecord(config.routing)) {
    checked.push('routing');
    for (const table of ['keys', 'prefixes'] as const) {
      const routes = config.routing[table];
      if (!isRecord(routes)) continue;
      for (const [key, target] of Object.entries(routes)) {
        if (typeof target === 'string' && !seen.has(target)) {
          errors.push({
            path: formatPath(['routing', table, key]),
            code: 'UNRESOLVED_REFERENCE',
            message: `names provider "${target}", which is not declared`,
          });
        }
      }
    }
  }
  return { errors, warnings, checked };
}

const vaultToken = { field: 'auth.token', env: 'VAULT_TOKEN' };

function absolute(file: string, baseDir: string): string {
  return isAbsolute(file) ? file : resolve(baseDir, file);
}

async function referenceIssues(
  ref: SecretReference,
  path: string,
  index: number,
  names: ReadonlyMap<string, number>,
  env: Readonly<Record<string, string | undefined>>,
  baseDir: string,
): Promise<ConfigIssue[]> {
  if ('env' in ref && typeof ref.env === 'string') {
    const value = env[ref.env];
    return value === undefined || value === ''
      ? [{ path, code: 'UNRESOLVED_REFERENCE', message: `refers to ${ref.env}, which is not set` }]
      : [];
  }
  if ('file' in ref && typeof ref.file === 'string') return fileIssues(referencePath(ref, baseDir), path);
  if ('provider' in ref && typeof ref.provider === 'string') {
    const position = names.get(ref.provider);
    if (position === undefined || position >= index) {
      return [
        {
          path,
          code: 'UNRESOLVED_REFERENCE',
          message:
            position === undefined
              ? `refers to provider "${ref.provider}", which is not declared`
              : `refers to provider "${ref.provider}", which must come before this one`,
        },
      ];
    }
  }
  return [];
}

async function fileIssues(file: string, path: string): Promise<ConfigIssue[]> {
  try {
    const info = await stat(file);
    if (!info.isFile())
      return [{ path, code: 'UNRESOLVED_REFERENCE', message: `refers to ${file}, which is not a file` }];
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    return [
      { path, code: 'UNRESOLVED_REFERENCE', message: `refers to ${file}, which cannot be read (${code})` },
    ];
  }
  return modeIssues(file, path);
}

/** A file whose mode allows more than 0640. */
export async function modeIssues(file: string, path: string): Promise<ConfigIssue[]> {
  if (process.platform === 'win32') return [];
  try {
    const { mode } = await stat(file);
    if (looserBits(mode) === 0) return [];
    return [
      {
        path,
        code: 'FILE_MODE',
        message: `${path === '' ? 'the configuration file ' : ''}${file} has mode ${octal(mode)}, looser than 0640 (chmod 600 or 640)`,
      },
    ];
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    return [{ path, code: 'UNREADABLE', message: `${file} cannot be read (${code})` }];
  }
}
