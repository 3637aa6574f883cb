import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import {
  type ReferenceContext,
  resolveReference,
  type SecretReference,
  type VaultProviderConfig,
  vendorValue,
} from '@secret-provider/config';
import type { Secret } from '@secret-provider/core';
import type { CheckLine } from './output.js';
import { daysUntil, ProbeFailure, probe } from './probe-request.js';

/** Where and how to reach one Vault, as the adapter would: file fields first, VAULT_* second. */
export interface VaultTarget {
  readonly name: string;
  readonly endpoint: URL;
  readonly namespace: string | undefined;
  readonly ca: Buffer | undefined;
  readonly rejectUnauthorized: boolean;
  readonly timeoutMs: number;
}

// Go's strconv.ParseBool, as Vault's tools read VAULT_SKIP_VERIFY.
const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);

export async function vaultTarget(
  entry: VaultProviderConfig,
  context: ReferenceContext,
  timeoutMs: number,
): Promise<VaultTarget> {
  const endpoint = entry.endpoint ?? vendorValue(context.env, 'VAULT_ADDR') ?? 'https://127.0.0.1:8200';
  const caFile = entry.tls?.caFile ?? vendorValue(context.env, 'VAULT_CACERT');
  const ca =
    caFile === undefined
      ? undefined
      : await readFile(isAbsolute(caFile) ? caFile : resolve(context.baseDir, caFile));
  const skip = TRUE.has(context.env.VAULT_SKIP_VERIFY ?? '');
  return {
    name: entry.name,
    endpoint: new URL(endpoint.replace(/\/+$/, '')),
    namespace: entry.namespace ?? vendorValue(context.env, 'VAULT_NAMESPACE'),
    ca,
    rejectUnauthorized: entry.tls?.rejectUnauthorized ?? !skip,
    timeoutMs,
  };
}

function apiUrl(target: VaultTarget, path: string): URL {
  return new URL(`${target.endpoint.pathname.replace(/\/$/, '')}/v1/${path}`, target.endpoint);
}

async function call(
  target: VaultTarget,
  path: string,
  options: { method?: string; token?: Secret<string> | undefined; body?: unknown } = {},
) {
  return probe(apiUrl(target, path), {
    method: options.method ?? 'GET',
    headers: {
      ...(options.token === undefined ? {} : { 'X-Vault-Token': options.token.reveal() }),
      ...(target.namespace === undefined ? {} : { 'X-Vault-Namespace': target.namespace }),
      'X-Vault-Request': 'true',
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    ca: target.ca,
    rejectUnauthorized: target.rejectUnauthorized,
    timeoutMs: target.timeoutMs,
  });
}

const record = (value: unknown): Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};

/** Vault's error strings are its own and value-free ("permission denied", "Vault is sealed"); anything else is dropped. */
function vaultErrors(body: unknown): string[] {
  const errors = record(body).errors;
  if (!Array.isArray(errors)) return [];
  return errors.filter(
    (e): e is string => typeof e === 'string' && e.length < 200 && /^[\w\s.,:*'"()-]+$/.test(e),
  );
}

/** A probe failure as a line: no answer at all is a remote failure. */
function unreachable(target: VaultTarget, check: string, error: unknown): CheckLine {
  if (error instanceof ProbeFailure) {
    return {
      provider: target.name,
      check,
      outcome: 'remote',
      detail: `${target.endpoint.origin} ${error.message}`,
      hint:
        error.kind === 'tls'
          ? 'check tls.caFile (or VAULT_CACERT) and the server certificate'
          : 'check endpoint (or VAULT_ADDR) and that Vault is running and reachable',
      data: { kind: error.kind, errorCode: error.errorCode },
    };
  }
  throw error;
}

/** The token to check with: the configured reference, VAULT_TOKEN, or a fresh login. */
export async function vaultToken(
  entry: VaultProviderConfig,
  target: VaultTarget,
  context: ReferenceContext,
  path: string,
): Promise<{ token: Secret<string>; source: string } | CheckLine> {
  const auth = entry.auth;
  if (auth === undefined || (auth.method === 'token' && auth.token === undefined)) {
    const { Secret } = await import('@secret-provider/core');
    const token = vendorValue(context.env, 'VAULT_TOKEN');
    if (token === undefined) {
      return {
        provider: entry.name,
        check: 'auth',
        outcome: 'local',
        detail: 'no token: auth.token is not given and VAULT_TOKEN is not set',
      };
    }
    return { token: new Secret(token), source: 'VAULT_TOKEN' };
  }
  if (auth.method === 'token') {
    return {
      token: await resolveReference(auth.token as SecretReference, `${path}.auth.token`, context),
      source: 'auth.token',
    };
  }
  let loginPath: string;
  let body: Record<string, unknown>;
  if (auth.method === 'approle') {
    loginPath = `auth/${auth.mount ?? 'approle'}/login`;
    const roleId = await resolveReference(auth.roleId, `${path}.auth.roleId`, context);
    const secretId = await resolveReference(auth.secretId, `${path}.auth.secretId`, context);
    body = { role_id: roleId.reveal(), secret_id: secretId.reveal() };
  } else {
    loginPath = `auth/${auth.mount ?? 'kubernetes'}/login`;
    const { DEFAULT_KUBERNETES_JWT_FILE } = await import('@secret-provider/vault');
    const jwt = await resolveReference(
      { file: auth.jwtFile ?? DEFAULT_KUBERNETES_JWT_FILE },
      `${path}.auth.jwtFile`,
      context,
    );
    body = { role: auth.role, jwt: jwt.reveal() };
  }
  let answer: Awaited<ReturnType<typeof call>>;
  try {
    answer = await call(target, loginPath, { method: 'POST', body });
  } catch (error) {
    return unreachable(target, 'auth', error);
  }
  const clientToken = record(record(answer.body).auth).client_token;
  if (answer.status !== 200 || typeof clientToken !== 'string') {
    return {
      provider: entry.name,
      check: 'auth',
      outcome: answer.status >= 500 ? 'remote' : 'denied',
      detail: `${auth.method} login refused (${answer.status}${vaultErrors(answer.body).length > 0 ? `: ${vaultErrors(answer.body).join('; ')}` : ''})`,
      hint: `check the ${auth.method} credentials and role`,
      latencyMs: answer.latencyMs,
    };
  }
  const { Secret } = await import('@secret-provider/core');
  return { token: new Secret(clientToken), source: `${auth.method} login` };
}

/** `check` of one Vault: reachability (sys/health), TLS expiry, the token (lookup-self). */
export async function checkVault(
  entry: VaultProviderConfig,
  context: ReferenceContext,
  path: string,
  timeoutMs: number,
  report: (line: CheckLine) => void,
): Promise<void> {
  const target = await vaultTarget(entry, context, timeoutMs);
  let health: Awaited<ReturnType<typeof call>>;
  try {
    health = await call(target, 'sys/health?standbycode=429&perfstandbycode=473');
  } catch (error) {
    report(unreachable(target, 'reachable', error));
    return;
  }
  const h = record(health.body);
  const facts = {
    status: health.status,
    initialized: h.initialized,
    sealed: h.sealed,
    standby: h.standby,
    version: typeof h.version === 'string' ? h.version : undefined,
  };
  if (health.status === 503 || h.sealed === true) {
    report({
      provider: entry.name,
      check: 'reachable',
      outcome: 'remote',
      detail: `${target.endpoint.origin} answers but Vault is sealed`,
      hint: 'unseal Vault (vault operator unseal) or point to an unsealed node',
      latencyMs: health.latencyMs,
      data: facts,
    });
    return;
  }
  if (health.status === 501) {
    report({
      provider: entry.name,
      check: 'reachable',
      outcome: 'remote',
      detail: 'Vault is not initialised',
      latencyMs: health.latencyMs,
      data: facts,
    });
    return;
  }
  if (health.status === 429 || health.status === 473) {
    report({
      provider: entry.name,
      check: 'reachable',
      outcome: 'warn',
      detail: `${target.endpoint.origin} is a ${health.status === 473 ? 'performance ' : ''}standby node`,
      hint: 'point endpoint at the active node or a load balancer in front of the cluster',
      latencyMs: health.latencyMs,
      data: facts,
    });
  } else if (health.status !== 200 || typeof h.initialized !== 'boolean') {
    report({
      provider: entry.name,
      check: 'reachable',
      outcome: 'remote',
      detail: `${target.endpoint.origin} did not answer as Vault does (status ${health.status})`,
      latencyMs: health.latencyMs,
      data: facts,
    });
    return;
  } else {
    report({
      provider: entry.name,
      check: 'reachable',
      outcome: 'ok',
      detail: `active, unsealed${facts.version === undefined ? '' : `, Vault ${facts.version}`}`,
      latencyMs: health.latencyMs,
      data: facts,
    });
  }

  if (health.certificate !== undefined) {
    const days = daysUntil(health.certificate.validTo);
    report({
      provider: entry.name,
      check: 'tls',
      outcome: days < 0 ? 'remote' : days < 14 ? 'warn' : 'ok',
      detail:
        days < 0 ? 'the server certificate has expired' : `server certificate valid for ${days} more days`,
      data: { validTo: health.certificate.validTo.toISOString(), days },
    });
  } else if (target.endpoint.protocol === 'http:') {
    report({
      provider: entry.name,
      check: 'tls',
      outcome: 'warn',
      detail: 'plain HTTP: the token crosses the network unencrypted',
    });
  }

  const token = await vaultToken(entry, target, context, path);
  if (!('token' in token)) {
    report(token);
    return;
  }
  let lookup: Awaited<ReturnType<typeof call>>;
  try {
    lookup = await call(target, 'auth/token/lookup-self', { token: token.token });
  } catch (error) {
    report(unreachable(target, 'auth', error));
    return;
  }
  if (lookup.status === 403) {
    const invalid = vaultErrors(lookup.body).some((e) => e.includes('invalid token'));
    report({
      provider: entry.name,
      check: 'auth',
      outcome: 'denied',
      detail: invalid
        ? `the token (from ${token.source}) is invalid, expired or revoked`
        : `the token (from ${token.source}) may not look itself up`,
      hint: invalid
        ? 'log in again or give a current token'
        : 'the token needs the default policy (auth/token/lookup-self: read)',
      latencyMs: lookup.latencyMs,
      data: { status: 403 },
    });
    return;
  }
  const d = record(record(lookup.body).data);
  if (lookup.status !== 200) {
    report({
      provider: entry.name,
      check: 'auth',
      outcome: 'remote',
      detail: `lookup-self answered ${lookup.status}`,
      latencyMs: lookup.latencyMs,
    });
    return;
  }
  const ttl = typeof d.ttl === 'number' ? d.ttl : undefined;
  const policies = Array.isArray(d.policies)
    ? d.policies.filter((p): p is string => typeof p === 'string')
    : [];
  const renewable = d.renewable === true;
  report({
    provider: entry.name,
    check: 'auth',
    outcome: ttl !== undefined && ttl > 0 && ttl < 300 && !renewable ? 'warn' : 'ok',
    detail: `token from ${token.source}: ${ttl === 0 ? 'no expiry' : `ttl ${ttl}s`}, ${renewable ? 'renewable' : 'not renewable'}, policies ${policies.join(', ') || '(none)'}`,
    latencyMs: lookup.latencyMs,
    data: {
      source: token.source,
      ttl,
      renewable,
      policies,
      ...(typeof d.expire_time === 'string' ? { expireTime: d.expire_time } : {}),
      ...(typeof d.display_name === 'string' ? { displayName: d.display_name } : {}),
    },
  });
}

/** KV mounts by name, as the adapter reads them (default: `secret`, version 2). */
function mountsOf(entry: VaultProviderConfig): ReadonlyMap<string, 1 | 2> {
  return new Map(
    Object.entries(entry.mounts ?? { secret: { version: 2 } }).map(([m, o]) => [m, o.version ?? 2]),
  );
}

/** Vault's API path and the capability an action needs for a key. */
export async function vaultRequirement(
  entry: VaultProviderConfig,
  key: string,
  action: 'get' | 'list' | 'set' | 'delete',
): Promise<{ path: string; needs: readonly string[] }> {
  const { parseKey } = await import('@secret-provider/vault');
  const address = parseKey(key, mountsOf(entry), entry.name);
  if (address.kind !== 'kv') {
    const needs =
      action === 'get'
        ? ['read']
        : action === 'list'
          ? ['list']
          : action === 'set'
            ? ['update', 'create']
            : ['delete'];
    return { path: address.base, needs };
  }
  const { mount, path, version } = address;
  if (version === 1) {
    const needs =
      action === 'get'
        ? ['read']
        : action === 'list'
          ? ['list']
          : action === 'set'
            ? ['create', 'update']
            : ['delete'];
    return { path: action === 'list' ? `${mount}/${path.replace(/[^/]*$/, '')}` : `${mount}/${path}`, needs };
  }
  switch (action) {
    case 'get':
      return { path: `${mount}/data/${path}`, needs: ['read'] };
    case 'list':
      return { path: `${mount}/metadata/${path.replace(/[^/]*$/, '')}`, needs: ['list'] };
    case 'set':
      return { path: `${mount}/data/${path}`, needs: ['create', 'update'] };
    case 'delete':
      return entry.kvDelete === 'all'
        ? { path: `${mount}/metadata/${path}`, needs: ['delete'] }
        : { path: `${mount}/data/${path}`, needs: ['delete'] };
  }
}

/** Capabilities of the token on `paths`, in one `sys/capabilities-self` request. */
export async function vaultCapabilities(
  entry: VaultProviderConfig,
  context: ReferenceContext,
  path: string,
  timeoutMs: number,
  paths: readonly string[],
): Promise<{ capabilities: ReadonlyMap<string, readonly string[]>; latencyMs: number } | CheckLine> {
  const target = await vaultTarget(entry, context, timeoutMs);
  const token = await vaultToken(entry, target, context, path);
  if (!('token' in token)) return token;
  let answer: Awaited<ReturnType<typeof call>>;
  try {
    answer = await call(target, 'sys/capabilities-self', {
      method: 'POST',
      token: token.token,
      body: { paths },
    });
  } catch (error) {
    return unreachable(target, 'can-i', error);
  }
  if (answer.status !== 200) {
    const invalid = vaultErrors(answer.body).some((e) => e.includes('invalid token'));
    return {
      provider: entry.name,
      check: 'can-i',
      outcome: answer.status === 403 ? 'denied' : 'remote',
      detail:
        answer.status === 403
          ? invalid
            ? 'the token is invalid, expired or revoked'
            : 'the token may not ask for its capabilities'
          : `sys/capabilities-self answered ${answer.status}${vaultErrors(answer.body).length > 0 ? ` (${vaultErrors(answer.body).join('; ')})` : ''}`,
      hint:
        answer.status === 403
          ? invalid
            ? 'log in again or give a current token'
            : 'grant update on sys/capabilities-self (in the default policy)'
          : undefined,
      latencyMs: answer.latencyMs,
    };
  }
  const body = record(answer.body);
  const data = { ...body, ...record(body.data) };
  const capabilities = new Map<string, string[]>();
  for (const p of paths) {
    const listed = data[p] ?? (paths.length === 1 ? data.capabilities : undefined);
    capabilities.set(
      p,
      Array.isArray(listed) ? listed.filter((c): c is string => typeof c === 'string') : [],
    );
  }
  return { capabilities, latencyMs: answer.latencyMs };
}
