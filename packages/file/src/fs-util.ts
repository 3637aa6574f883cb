import { lstat, stat } from 'node:fs/promises';
import type { PermissionCheck } from './permissions.js';

/** What a source needs from its provider. */
export interface SourceContext {
  /** The provider's name, for errors and events. */
  readonly provider: string;
  /** Counted by every read of the disk. */
  readonly stats: { reloads: number };
  readonly permissions: PermissionCheck;
  /** The provider's quiet period (a file truncated less than this ago may be mid-write). */
  readonly debounceMs: number;
}

export function isMissing(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

export function errorCode(error: unknown): unknown {
  return typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
}

export async function statOrUndefined(path: string) {
  try {
    return await stat(path, { bigint: true });
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

export async function lstatOrUndefined(path: string) {
  try {
    return await lstat(path);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

/** Identity and state of a file: a change of any part means it must be read again. */
export function signatureOf(info: {
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  dev: bigint;
}): string {
  return `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
}
