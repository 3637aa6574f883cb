import type { SecretError } from '@secret-provider/core';
import type { EmitFunction } from '@secret-provider/core/adapter';
import { describeMode, InsecurePermissionsError } from './errors.js';

/** Settings of a {@link PermissionCheck}. */
export interface PermissionCheckOptions {
  readonly provider: string;
  /** Check permission bits at all. */
  readonly enabled: boolean;
  /** Refuse loose files instead of warning. */
  readonly strict: boolean;
  readonly emit: EmitFunction;
}

/**
 * The check of permission bits every read makes: files and directories readable by group or
 * others are refused in strict mode, else reported once per path and mode as a `warning`.
 */
export class PermissionCheck {
  readonly #options: PermissionCheckOptions;
  readonly #warned = new Set<string>();

  constructor(options: PermissionCheckOptions) {
    this.#options = options;
  }

  /** The refusal of `path` with permission bits `mode`, or `undefined` when it may be read. */
  check(path: string, mode: number, key?: string): SecretError | undefined {
    const { enabled, strict, provider, emit } = this.#options;
    if (!enabled || (mode & 0o044) === 0) return undefined;
    if (strict) return new InsecurePermissionsError({ provider, key, operation: 'get' }, path, mode);
    const id = `${path}\0${mode}`;
    if (!this.#warned.has(id)) {
      this.#warned.add(id);
      emit('warning', {
        provider,
        code: 'INSECURE_PERMISSIONS',
        message: describeMode(path, mode),
        key,
        detectedAt: new Date(),
      });
    }
    return undefined;
  }

  /** Forgets what was reported (a new watch reports it again). */
  reset(): void {
    this.#warned.clear();
  }
}
