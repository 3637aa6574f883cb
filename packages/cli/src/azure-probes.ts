import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { type AzureProviderConfig, type ReferenceContext, vendorValue } from '@secret-provider/config';
import { isSecretError, type SecretProvider } from '@secret-provider/core';
import { failureLine } from './local-commands.js';
import type { CheckLine } from './output.js';
import { daysUntil, ProbeFailure, probe } from './probe-request.js';

/** Key Vault's data-plane API version the challenge request names. */
const API_VERSION = '7.5';

/** Access-policy names and RBAC data actions per action (the adapter's own table). */
async function permissions() {
  const { KEY_VAULT_PERMISSIONS } = await import('@secret-provider/azure');
  return KEY_VAULT_PERMISSIONS;
}

/**
 * `check` of one Key Vault: TLS and the auth challenge on an unauthenticated request (which
 * reads nothing), then authentication and listing through the adapter itself.
 */
export async function checkAzure(
  entry: AzureProviderConfig,
  provider: SecretProvider,
  context: ReferenceContext,
  timeoutMs: number,
  report: (line: CheckLine) => void,
): Promise<void> {
  const vaultUrl = entry.vaultUrl ?? vendorValue(context.env, 'AZURE_KEYVAULT_URL');
  if (vaultUrl === undefined) {
    report({
      provider: entry.name,
      check: 'reachable',
      outcome: 'local',
      detail: 'no vaultUrl and AZURE_KEYVAULT_URL is not set',
    });
    return;
  }
  const ca =
    entry.caFile === undefined
      ? undefined
      : await readFile(isAbsolute(entry.caFile) ? entry.caFile : resolve(context.baseDir, entry.caFile));
  const url = new URL(
    `secrets?api-version=${API_VERSION}&maxresults=1`,
    vaultUrl.endsWith('/') ? vaultUrl : `${vaultUrl}/`,
  );
  let challenge: Awaited<ReturnType<typeof probe>>;
  try {
    challenge = await probe(url, { ca, timeoutMs });
  } catch (error) {
    if (!(error instanceof ProbeFailure)) throw error;
    report({
      provider: entry.name,
      check: 'reachable',
      outcome: 'remote',
      detail: `${url.origin} ${error.message}`,
      hint:
        error.kind === 'tls'
          ? 'check caFile and the vault certificate'
          : 'check vaultUrl, DNS, firewall or private endpoint',
      data: { kind: error.kind, errorCode: error.errorCode },
    });
    return;
  }
  const header = challenge.headers['www-authenticate'];
  const text = Array.isArray(header) ? header.join(', ') : (header ?? '');
  const authority = /authorization(?:_uri)?="([^"]+)"/i.exec(text)?.[1];
  const resource = /resource="([^"]+)"/i.exec(text)?.[1];
  const tenant = authority === undefined ? undefined : /\/([0-9a-f-]{36}|[\w.-]+)\/?$/i.exec(authority)?.[1];
  if (challenge.status !== 401 || authority === undefined) {
    report({
      provider: entry.name,
      check: 'reachable',
      outcome: 'remote',
      detail: `${url.origin} did not answer with Key Vault's auth challenge (status ${challenge.status})`,
      hint: 'is vaultUrl a Key Vault (https://<name>.vault.azure.net)? a proxy may be answering',
      latencyMs: challenge.latencyMs,
    });
    return;
  }
  report({
    provider: entry.name,
    check: 'reachable',
    outcome: 'ok',
    detail: `auth challenge received, tenant ${tenant ?? 'unknown'}`,
    latencyMs: challenge.latencyMs,
    data: { tenant, resource },
  });
  if (challenge.certificate !== undefined) {
    const days = daysUntil(challenge.certificate.validTo);
    report({
      provider: entry.name,
      check: 'tls',
      outcome: days < 0 ? 'remote' : days < 14 ? 'warn' : 'ok',
      detail:
        days < 0 ? 'the vault certificate has expired' : `vault certificate valid for ${days} more days`,
      data: { validTo: challenge.certificate.validTo.toISOString(), days },
    });
  }
  const credential = entry.credential?.type ?? 'default';
  const started = performance.now();
  try {
    const names = await provider.keys();
    report({
      provider: entry.name,
      check: 'auth',
      outcome: 'ok',
      detail: `${credential === 'default' ? 'DefaultAzureCredential' : 'access token'} accepted, tenant ${tenant ?? 'unknown'}; ${names.length} secret${names.length === 1 ? '' : 's'} listed`,
      latencyMs: performance.now() - started,
      data: { credential, tenant, count: names.length },
    });
  } catch (error) {
    const line = failureLine(entry.name, 'auth', error, performance.now() - started);
    const denied = isSecretError(error, 'ACCESS_DENIED');
    const table = await permissions();
    report({
      ...line,
      data: { ...line.data, credential, tenant },
      hint: denied
        ? `grant ${table.list.policy} (access policy) or ${table.list.rbac} (RBAC, e.g. Key Vault Secrets User) to the identity in tenant ${tenant ?? 'unknown'}`
        : 'the credential could not get a token or the vault failed; see the code',
    });
  }
}

/**
 * `can-i` against Key Vault, which has no "what may I do" API: `get` reads the secret (the value
 * is dropped at once, never shown), `list` lists; `set` and `delete` have no probe that writes
 * nothing, so they answer `unknown` with the permission to look for.
 */
export async function azureCanI(
  entry: AzureProviderConfig,
  provider: SecretProvider,
  action: 'get' | 'list' | 'set' | 'delete',
  key: string,
): Promise<CheckLine> {
  const table = await permissions();
  const { policy, rbac } = table[action];
  const base = {
    provider: entry.name,
    check: `${action} ${key}`,
    data: { action: policy, rbacAction: rbac },
  };
  if (action === 'set' || action === 'delete') {
    return {
      ...base,
      outcome: 'unknown',
      detail: `unknown: Key Vault cannot test ${policy} without writing`,
      hint: `look for ${policy} in the vault's access policies, or ${rbac} in the identity's role assignments`,
    };
  }
  const started = performance.now();
  try {
    if (action === 'get') {
      const secret = await provider.get(key);
      secret.dispose();
    } else await provider.keys({ prefix: key });
    return { ...base, outcome: 'ok', detail: `allowed (${policy})`, latencyMs: performance.now() - started };
  } catch (error) {
    if (action === 'get' && isSecretError(error, 'NOT_FOUND')) {
      return {
        ...base,
        outcome: 'ok',
        detail: `allowed (${policy}); the secret does not exist`,
        latencyMs: performance.now() - started,
      };
    }
    const line = failureLine(entry.name, base.check, error, performance.now() - started);
    return {
      ...line,
      data: { ...base.data, ...line.data },
      detail: isSecretError(error, 'ACCESS_DENIED') ? `denied (${policy})` : line.detail,
      hint: isSecretError(error, 'ACCESS_DENIED')
        ? `grant ${policy} (access policy) or ${rbac} (RBAC)`
        : undefined,
    };
  }
}
