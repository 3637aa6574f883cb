// What the rooms of the provider share: its name, routes, clients, clock and warnings, and the
// one way a failure of an SDK call becomes a SecretError.
import type { SecretOperation } from '@secret-provider/core';
import type { Clock } from '@secret-provider/core/adapter';
import { KeyVaultAnswerError } from './answers.js';
import type { VaultClients } from './clients.js';
import { mapKeyVaultError } from './error-mapping.js';
import type { KeyVaultAction } from './errors.js';
import type { KeyVaultRouter, Target, Warn } from './routing.js';

export interface KeyVaultContext {
  readonly provider: string;
  readonly router: KeyVaultRouter;
  readonly clients: VaultClients;
  readonly clock: Clock;
  readonly includeDisabled: boolean;
  readonly includeManaged: boolean;
  readonly warn: Warn;
}

/** The error an SDK call's failure rejects with; an aborted caller gets its own abort reason back. */
export function failure(
  context: KeyVaultContext,
  error: unknown,
  signal: AbortSignal | undefined,
  where: {
    readonly operation: SecretOperation;
    readonly action: KeyVaultAction;
    readonly key?: string | undefined;
    readonly target?: Target | undefined;
  },
): unknown {
  if (signal?.aborted) return signal.reason;
  // An engine error out of an SDK call is the SDK tripping over an answer it did not expect
  // (with a client passed in, whose pipeline has no answer policy): an outage, not a bug here.
  const cause =
    error instanceof TypeError || error instanceof SyntaxError || error instanceof RangeError
      ? new KeyVaultAnswerError('unreadable')
      : error;
  return mapKeyVaultError(cause, {
    provider: context.provider,
    operation: where.operation,
    action: where.action,
    key: where.key,
    vault: where.target?.vault.id,
    secretName: where.target === undefined || where.target.name === '' ? undefined : where.target.name,
    clock: context.clock,
  });
}
