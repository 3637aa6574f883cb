// The watch: rotation detected from properties, never values. Each poll lists every vault (one
// request per 25 secrets) and lists the versions of changed secrets only. Polls run on the base's
// Poller (interval, jitter, back-off after failed polls, Retry-After).
import type { SecretError, VersionChange } from '@secret-provider/core';
import type { EmitFunction, Poller, PollTask } from '@secret-provider/core/adapter';
import type { KeyVaultContext } from './context.js';
import { mapKeyVaultError } from './error-mapping.js';
import { type Listed, listVault, listVersions } from './listing.js';
import { asOf, latestOf } from './properties.js';
import type { Vault } from './routing.js';

interface WatchEntry extends Listed {
  version: string | undefined;
  /** Every version id of the last versions listing, to order versions stamped in one second. */
  seen: ReadonlySet<string> | undefined;
  /** Whether `updated` was recent when listed: the version is checked again next poll. */
  unsettled: boolean;
}

interface Changes {
  readonly errors: SecretError[];
  readonly removed: Array<{ key: string; version: string | undefined }>;
  readonly added: Array<{ key: string; version: string | undefined }>;
  readonly rotated: VersionChange[];
}

export interface WatchOptions {
  /** Secrets updated within this window get their versions checked again (whole-second stamps). */
  readonly settleMs: number;
  /** The base's poller factory (its interval, jitter and clock). */
  readonly createPoller: (task: PollTask, onError: (error: unknown) => void) => Poller;
}

/**
 * Lists once for a baseline, then polls; resolves with the stop. When no vault could be listed,
 * it rejects: the base class reports that and starts the watch again on its back-off. A vault
 * whose first list failed while others answered is an `error` event; its next good list is its
 * baseline.
 */
export async function startKeyVaultWatch(
  context: KeyVaultContext,
  emit: EmitFunction,
  options: WatchOptions,
): Promise<() => Promise<void>> {
  // Per vault: application key -> what the last successful list showed. A vault whose first
  // list failed has no baseline yet; its next successful list becomes one, without events.
  const state = new Map<string, Map<string, WatchEntry>>();
  const poll = async (signal: AbortSignal | undefined): Promise<SecretError[]> => {
    const changes: Changes = { errors: [], removed: [], added: [], rotated: [] };
    await Promise.all(
      [...context.router.vaults.values()].map((vault) =>
        pollVault(context, vault, state, changes, signal, options),
      ),
    );
    if (signal?.aborted) return changes.errors;
    if (state.size === 0 && changes.errors.length > 0) throw longestWait(changes.errors);
    const detectedAt = new Date(context.clock.now());
    const provider = context.provider;
    for (const { key, version } of changes.removed) emit('removed', { provider, key, version, detectedAt });
    for (const { key, version } of changes.added) emit('added', { provider, key, version, detectedAt });
    if (changes.rotated.length > 0) {
      const keys = changes.rotated.map((c) => c.key);
      emit('rotated', { provider, keys, changes: changes.rotated, detectedAt });
    }
    for (const error of changes.errors) emit('error', { provider, error, key: error.key, detectedAt });
    return changes.errors;
  };

  await poll(undefined);
  const poller = options.createPoller(
    async (signal) => {
      const errors = await poll(signal);
      // A failed poll makes the poller back off; the one to wait for is the longest Retry-After.
      if (errors.length > 0 && !signal.aborted) throw longestWait(errors);
    },
    () => {
      // Every failure of the poll was reported as an `error` event already.
    },
  );
  poller.start();
  return () => poller.stop();
}

async function pollVault(
  context: KeyVaultContext,
  vault: Vault,
  state: Map<string, Map<string, WatchEntry>>,
  changes: Changes,
  signal: AbortSignal | undefined,
  options: WatchOptions,
): Promise<void> {
  let listed: Map<string, Listed>;
  try {
    listed = await listVault(context, vault, signal, 'watch');
  } catch (error) {
    changes.errors.push(watchError(context, error));
    return;
  }
  const previous = state.get(vault.id);
  const next = new Map<string, WatchEntry>();
  for (const entry of listed.values()) {
    const before = previous?.get(entry.key);
    if (before !== undefined && before.updated === entry.updated && !before.unsettled) {
      // The steady case: nothing changed and nothing is left to check.
      next.set(entry.key, before);
      continue;
    }
    const current: WatchEntry = {
      ...entry,
      version: before?.version,
      seen: before?.seen,
      unsettled: entry.updated !== undefined && context.clock.now() - entry.updated < options.settleMs,
    };
    next.set(entry.key, current);
    const changed = before === undefined || before.updated !== entry.updated || before.unsettled;
    const needsVersion = previous === undefined ? current.unsettled : changed;
    if (!needsVersion) continue;
    try {
      const versions = await listVersions(context, { vault, name: entry.name }, signal, 'watch', entry.key);
      const latest = latestOf(versions, before?.version, before?.seen)?.version;
      current.seen = new Set(versions.map((v) => v.version));
      if (previous === undefined) {
        current.version = latest;
      } else if (before === undefined) {
        current.version = latest;
        changes.added.push({ key: entry.key, version: latest });
      } else {
        const old = before.version ?? asOf(versions, before.updated)?.version;
        current.version = latest;
        if (latest !== undefined && old !== latest) {
          changes.rotated.push({ key: entry.key, oldVersion: old, newVersion: latest });
        }
      }
    } catch (error) {
      changes.errors.push(watchError(context, error, entry.key));
      // Keep what was known, and look again next time.
      current.unsettled = true;
      if (previous !== undefined && before === undefined) next.delete(entry.key);
    }
  }
  if (previous !== undefined) {
    for (const [key, entry] of previous)
      if (!next.has(key)) changes.removed.push({ key, version: entry.version });
  }
  state.set(vault.id, next);
}

function watchError(context: KeyVaultContext, error: unknown, key?: string): SecretError {
  return mapKeyVaultError(error, { provider: context.provider, operation: 'watch', action: 'list', key });
}

function longestWait(errors: readonly SecretError[]): SecretError {
  let chosen = errors[0] as SecretError;
  for (const error of errors) if ((error.retryAfterMs ?? -1) > (chosen.retryAfterMs ?? -1)) chosen = error;
  return chosen;
}
