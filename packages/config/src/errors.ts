import { InvalidConfigError } from '@secret-provider/core';
import { sanitizeCause } from '@secret-provider/core/adapter';
import type { ConfigIssue, IssueCode } from './schema.js';

/**
 * A configuration that cannot be used. `reason` says why (the first issue's code), `path` where
 * (`providers[2].auth.token`), `issues` lists every problem found. Messages name fields, never
 * their values. `code` is core's `INVALID_CONFIG`, so `isSecretError(e, 'INVALID_CONFIG')` holds.
 */
export class ConfigError extends InvalidConfigError {
  readonly reason: IssueCode;
  readonly path: string;
  readonly issues: readonly ConfigIssue[];

  constructor(
    issues: readonly ConfigIssue[],
    options: { source?: string | undefined; cause?: unknown } = {},
  ) {
    const first = issues[0] ?? { path: '', code: 'SCHEMA' as const, message: 'is invalid' };
    const where = options.source === undefined ? '' : ` (${options.source})`;
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
    super(
      { provider: 'config', cause: options.cause },
      `invalid configuration${where}: ${describeIssue(first)}${more}`,
    );
    this.name = 'ConfigError';
    this.reason = first.code;
    this.path = first.path;
    this.issues = issues;
  }
}

/** `providers[1].auth.token: takes a reference, ...` */
export function describeIssue(issue: ConfigIssue): string {
  return issue.path === '' ? issue.message : `${issue.path} ${issue.message}`;
}

/**
 * An optional package imported on first use (an adapter, the telemetry package): one that is not
 * installed is a {@link ConfigError} `MISSING_PACKAGE` at `path`, naming what to install, instead
 * of Node's module-not-found error.
 */
export async function importOptional<M>(
  specifier: string,
  load: () => Promise<M>,
  path: string,
  message = `needs ${specifier}: install it next to @secret-provider/config`,
): Promise<M> {
  try {
    return await load();
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw error;
    throw new ConfigError([{ path, code: 'MISSING_PACKAGE', message }], {
      cause: sanitizeCause(error, `import of ${specifier} failed`),
    });
  }
}
