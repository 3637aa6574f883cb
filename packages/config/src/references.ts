import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { isSecretError, Secret, type SecretProvider } from '@secret-provider/core';
import { ConfigError } from './errors.js';
import type { SecretReference } from './types.js';

/** Permission bits a secret-bearing file may have at most (owner read/write, group read). */
export const MAX_SECRET_FILE_MODE = 0o640;

/** Mode bits beyond {@link MAX_SECRET_FILE_MODE}: group write/execute, anything for others, owner execute. */
export function looserBits(mode: number): number {
  return mode & 0o777 & ~MAX_SECRET_FILE_MODE;
}

/** `0644` */
export function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8)}`;
}

export interface ReferenceContext {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Relative file references are resolved from here (the config file's directory). */
  readonly baseDir: string;
  /** Providers built so far, by name. */
  readonly providers: ReadonlyMap<string, SecretProvider>;
}

export function referencePath(ref: { file: string }, baseDir: string): string {
  return isAbsolute(ref.file) ? ref.file : resolve(baseDir, ref.file);
}

/** What a reference names, for messages: `env VAULT_TOKEN`, `file /vault/token`, `files:vault-token`. */
export function describeReference(ref: SecretReference): string {
  if ('env' in ref) return `environment variable ${ref.env}`;
  if ('file' in ref) return `file ${ref.file}`;
  return `key ${ref.key} of provider "${ref.provider}"`;
}

/**
 * Reads the secret a reference points at. A file loses one trailing newline (as secret volumes
 * and `echo` write them). Failures are {@link ConfigError}s at `path` with code
 * `UNRESOLVED_REFERENCE`; they name the reference, never a value.
 */
export async function resolveReference(
  ref: SecretReference,
  path: string,
  context: ReferenceContext,
): Promise<Secret<string>> {
  const unresolved = (message: string, cause?: unknown) =>
    new ConfigError([{ path, code: 'UNRESOLVED_REFERENCE', message }], { cause });
  if ('env' in ref) {
    const value = context.env[ref.env];
    if (value === undefined || value === '') throw unresolved(`refers to ${ref.env}, which is not set`);
    return new Secret(value);
  }
  if ('file' in ref) {
    const file = referencePath(ref, context.baseDir);
    try {
      const info = await stat(file);
      if (!info.isFile()) throw unresolved(`refers to ${file}, which is not a file`);
      const text = await readFile(file, 'utf8');
      return new Secret(text.endsWith('\n') ? text.slice(0, text.endsWith('\r\n') ? -2 : -1) : text);
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      throw unresolved(`refers to ${file}, which cannot be read (${code ?? 'error'})`);
    }
  }
  const provider = context.providers.get(ref.provider);
  if (provider === undefined) {
    throw unresolved(`refers to provider "${ref.provider}", which is not declared before this one`);
  }
  try {
    return await provider.get(ref.key);
  } catch (error) {
    const code = isSecretError(error) ? error.code : 'UNKNOWN';
    throw unresolved(`refers to key ${ref.key} of provider "${ref.provider}", which failed (${code})`, error);
  }
}
