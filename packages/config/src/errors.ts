import { InvalidConfigError } from '@secret-provider/core';
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
