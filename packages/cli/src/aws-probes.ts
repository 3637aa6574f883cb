import type { AwsProviderConfig } from '@secret-provider/config';
import { isSecretError, type SecretProvider } from '@secret-provider/core';
import { SanitizedCause, withTimeout } from '@secret-provider/core/adapter';
import { failureLine } from './local-commands.js';
import type { CheckLine } from './output.js';

type Action = 'get' | 'list' | 'set' | 'delete';

/** The IAM actions each `can-i` action needs (a write may also need `secretsmanager:CreateSecret`). */
const IAM_ACTIONS: Readonly<Record<Action, readonly string[]>> = {
  get: ['secretsmanager:GetSecretValue'],
  list: ['secretsmanager:ListSecrets'],
  set: ['secretsmanager:PutSecretValue', 'secretsmanager:CreateSecret'],
  delete: ['secretsmanager:DeleteSecret'],
};

/** The adapter's client, through its public escape hatch (typed here without importing the SDK). */
interface AwsAdapter extends SecretProvider {
  client(): Promise<{ send(command: unknown, options?: { abortSignal?: AbortSignal }): Promise<unknown> }>;
  getBytes(key: string): Promise<{ dispose(): void }>;
}

/** Whether the error comes from the credential chain (nothing was sent) rather than the service. */
function credentialFailure(error: unknown): boolean {
  const cause = isSecretError(error) ? error.cause : undefined;
  return cause instanceof SanitizedCause && cause.originalName === 'CredentialsProviderError';
}

/**
 * `check` of one Secrets Manager provider with one request that reads no value (neither
 * `GetSecretValue` nor a KMS decrypt): `DescribeSecret` of the first watch key when `watchKeys`
 * is set, else `ListSecrets` with `MaxResults` 1 and the configured filters. Each asks exactly
 * the permission the provider's own watch and `keys()` need; `DescribeSecret` can be granted on
 * one secret, `ListSecrets` only account-wide (IAM has no resource for it).
 */
export async function checkAws(
  entry: AwsProviderConfig,
  provider: SecretProvider,
  timeoutMs: number,
  report: (line: CheckLine) => void,
): Promise<void> {
  let sdk: typeof import('@aws-sdk/client-secrets-manager');
  try {
    sdk = await import('@aws-sdk/client-secrets-manager');
  } catch {
    report({
      provider: entry.name,
      check: 'auth',
      outcome: 'local',
      detail: 'cannot load @aws-sdk/client-secrets-manager',
      hint: 'install @aws-sdk/client-secrets-manager next to @secret-provider/aws',
    });
    return;
  }
  const watchKey = entry.watchKeys?.[0]?.split('#')[0];
  const action = watchKey === undefined ? 'secretsmanager:ListSecrets' : 'secretsmanager:DescribeSecret';
  const command =
    watchKey === undefined
      ? new sdk.ListSecretsCommand({
          MaxResults: 1,
          ...(entry.listFilters === undefined
            ? {}
            : { Filters: entry.listFilters.map((f) => ({ Key: f.key, Values: [...f.values] })) }),
        })
      : new sdk.DescribeSecretCommand({ SecretId: watchKey });
  const started = performance.now();
  try {
    const client = await (provider as AwsAdapter).client();
    await withTimeout((signal) => client.send(command, { abortSignal: signal }), timeoutMs, {
      provider: entry.name,
      operation: 'keys',
    });
    report({
      provider: entry.name,
      check: 'auth',
      outcome: 'ok',
      detail: `reachable and authenticated: ${action} allowed${watchKey === undefined ? '' : ` on "${watchKey}"`}`,
      latencyMs: performance.now() - started,
      data: { action },
    });
  } catch (raw) {
    const { mapAwsError } = await import('@secret-provider/aws');
    const error = mapAwsError(raw, { provider: entry.name, operation: 'keys', key: watchKey });
    const latencyMs = performance.now() - started;
    if (watchKey !== undefined && isSecretError(error, 'NOT_FOUND')) {
      report({
        provider: entry.name,
        check: 'auth',
        outcome: 'warn',
        detail: `reachable and authenticated, but watch key "${watchKey}" does not exist`,
        latencyMs,
        data: { action, code: 'NOT_FOUND' },
      });
      return;
    }
    const line = failureLine(entry.name, 'auth', error, latencyMs);
    if (credentialFailure(error)) {
      report({
        ...line,
        outcome: 'local',
        detail: 'no AWS credentials found (nothing was sent)',
        hint: 'set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, run on a role, or give credentials as references',
      });
      return;
    }
    report({
      ...line,
      data: { ...line.data, action },
      hint:
        line.outcome === 'denied'
          ? `allow ${action}${watchKey === undefined ? '' : ` on "${watchKey}"`} to the identity (or check its credentials: an unknown key id or a bad signature is denied too)`
          : line.outcome === 'remote'
            ? 'check endpoint, region, network (VPC endpoint, proxy) and the service status'
            : undefined,
    });
  }
}

/**
 * `can-i` against Secrets Manager, which has no "what may I do" API this provider can call
 * without IAM's simulator: `get` reads the secret (the bytes are wiped at once, never shown),
 * `list` lists one name with the key as a prefix; `set` and `delete` cannot be tested without
 * writing, so they answer `unknown` with the IAM actions to look for.
 */
export async function awsCanI(
  entry: AwsProviderConfig,
  provider: SecretProvider,
  action: Action,
  key: string,
): Promise<CheckLine> {
  const needs = IAM_ACTIONS[action];
  const base = { provider: entry.name, check: `${action} ${key}`, data: { actions: needs } };
  if (action === 'set' || action === 'delete') {
    return {
      ...base,
      outcome: 'unknown',
      detail: `unknown: Secrets Manager cannot test ${needs.join(' and ')} without writing`,
      hint: `look for ${needs.join(', ')} on the secret in the identity's IAM policies (or the IAM policy simulator)`,
    };
  }
  const started = performance.now();
  try {
    if (action === 'get') (await (provider as AwsAdapter).getBytes(key)).dispose();
    else await provider.keys({ prefix: key });
    return {
      ...base,
      outcome: 'ok',
      detail: `allowed (${needs.join(', ')})`,
      latencyMs: performance.now() - started,
    };
  } catch (error) {
    if (action === 'get' && isSecretError(error, 'NOT_FOUND')) {
      return {
        ...base,
        outcome: 'ok',
        detail: `allowed (${needs.join(', ')}); the secret does not exist`,
        latencyMs: performance.now() - started,
      };
    }
    const line = failureLine(entry.name, base.check, error, performance.now() - started);
    const denied = isSecretError(error, 'ACCESS_DENIED');
    const kms =
      denied && error.cause instanceof SanitizedCause && error.cause.originalName === 'DecryptionFailure';
    return {
      ...line,
      data: { ...base.data, ...line.data },
      detail: denied ? `denied (${kms ? 'kms:Decrypt' : needs.join(', ')})` : line.detail,
      hint: denied
        ? kms
          ? 'allow kms:Decrypt on the KMS key of the secret to the identity'
          : `allow ${needs.join(', ')} on the secret to the identity`
        : undefined,
    };
  }
}
