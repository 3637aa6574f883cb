import { readFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import type { SecretProvider } from '@secret-provider/core';
import { ConfigError, importOptional } from './errors.js';
import { type ReferenceContext, referencePath, resolveReference } from './references.js';
import type {
  AwsProviderConfig,
  AzureProviderConfig,
  ConsulProviderConfig,
  EnvProviderConfig,
  EtcdProviderConfig,
  FileProviderConfig,
  HttpProviderConfig,
  MemoryProviderConfig,
  ProviderConfig,
  ProviderType,
  SecretProviderConfig,
  SecretReference,
  TlsFilesConfig,
  VaultProviderConfig,
} from './types.js';
import { vendorValue } from './vendor-env.js';

/** What a factory gets besides its entry. */
export interface FactoryContext extends ReferenceContext {
  /** Field path of the entry, `providers[2]`. */
  readonly path: string;
  readonly config: SecretProviderConfig;
  /** Providers the factory creates for its own use (credential sources); closed with the chain. */
  readonly adopt: (provider: SecretProvider) => void;
}

type Factory<C extends ProviderConfig> = (entry: C, context: FactoryContext) => Promise<SecretProvider>;

// Each factory imports its adapter when called, so an SDK loads only when a configuration
// declares a provider of its type.
const FACTORIES: { readonly [T in ProviderType]: Factory<Extract<ProviderConfig, { type: T }>> } = {
  env: createEnv,
  file: createFile,
  memory: createMemory,
  vault: createVault,
  azure: createAzure,
  http: createHttp,
  consul: createConsul,
  etcd: createEtcd,
  aws: createAws,
};

/** The provider types a configuration can declare (the keys of the factory table). */
export const PROVIDER_TYPES: readonly ProviderType[] = Object.keys(FACTORIES) as ProviderType[];

/** Builds the provider an entry describes. */
export function createProvider(entry: ProviderConfig, context: FactoryContext): Promise<SecretProvider> {
  const factory = FACTORIES[entry.type] as Factory<ProviderConfig> | undefined;
  if (factory === undefined) {
    throw new ConfigError([
      { path: `${context.path}.type`, code: 'SCHEMA', message: 'is not a known provider type' },
    ]);
  }
  return factory(entry, context);
}

/** Copies the fields that are set, so `exactOptionalPropertyTypes` options see no `undefined`. */
function pick<E extends object, K extends keyof E>(entry: E, keys: readonly K[]): Partial<Pick<E, K>> {
  const out: Partial<Pick<E, K>> = {};
  for (const key of keys) if (entry[key] !== undefined) out[key] = entry[key];
  return out;
}

function absolute(file: string, baseDir: string): string {
  return isAbsolute(file) ? file : resolve(baseDir, file);
}

async function readTls(tls: TlsFilesConfig | undefined, path: string, context: FactoryContext) {
  const read = async (file: string | undefined, field: string) => {
    if (file === undefined) return undefined;
    try {
      return await readFile(absolute(file, context.baseDir));
    } catch (error) {
      throw new ConfigError([
        {
          path: `${path}.${field}`,
          code: 'UNRESOLVED_REFERENCE',
          message: `refers to ${file}, which cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
        },
      ]);
    }
  };
  return {
    ca: await read(tls?.caFile, 'caFile'),
    cert: await read(tls?.certFile, 'certFile'),
    key: await read(tls?.keyFile, 'keyFile'),
  };
}

/**
 * A reference as a provider and key, for adapters that re-read a credential when it is
 * refused (HTTP bearer, Consul token): a variable through an env provider, a file through a
 * directory provider on its folder, a provider key as it is.
 */
async function referenceSource(
  ref: SecretReference,
  path: string,
  context: FactoryContext,
): Promise<{ provider: SecretProvider; key: string }> {
  if ('provider' in ref) {
    const provider = context.providers.get(ref.provider);
    if (provider === undefined) await resolveReference(ref, path, context); // throws the typed error
    return { provider: provider as SecretProvider, key: ref.key };
  }
  await resolveReference(ref, path, context); // fails early, at this path, when it is missing
  if ('env' in ref) {
    const { EnvProvider } = await importOptional(
      '@secret-provider/env',
      () => import('@secret-provider/env'),
      path,
    );
    const provider = new EnvProvider({
      name: `${path}:env`,
      allow: [ref.env],
      env: context.env as NodeJS.ProcessEnv,
    });
    context.adopt(provider);
    return { provider, key: ref.env };
  }
  const file = referencePath(ref, context.baseDir);
  const { FileProvider } = await importOptional(
    '@secret-provider/file',
    () => import('@secret-provider/file'),
    path,
  );
  const provider = new FileProvider({
    name: `${path}:file`,
    path: dirname(file),
    format: 'directory',
    readOnly: true,
  });
  context.adopt(provider);
  return { provider, key: basename(file) };
}

async function createEnv(entry: EnvProviderConfig, context: FactoryContext): Promise<SecretProvider> {
  const { EnvProvider } = await importOptional(
    '@secret-provider/env',
    () => import('@secret-provider/env'),
    `${context.path}.type`,
  );
  return new EnvProvider({
    ...pick(entry, [
      'name',
      'prefix',
      'stripPrefix',
      'all',
      'override',
      'requireFiles',
      'pollInterval',
      'debounceMs',
    ]),
    ...(entry.allow === undefined ? {} : { allow: entry.allow }),
    ...(entry.files === undefined
      ? {}
      : { files: entry.files.map((file) => absolute(file, context.baseDir)) }),
    env: context.env as NodeJS.ProcessEnv,
  });
}

async function createFile(entry: FileProviderConfig, context: FactoryContext): Promise<SecretProvider> {
  const { FileProvider } = await importOptional(
    '@secret-provider/file',
    () => import('@secret-provider/file'),
    `${context.path}.type`,
  );
  return new FileProvider({
    ...pick(entry, [
      'format',
      'jsonKeys',
      'readOnly',
      'strict',
      'checkPermissions',
      'debounceMs',
      'usePolling',
      'pollInterval',
    ]),
    name: entry.name,
    path: absolute(entry.path, context.baseDir),
  });
}

async function createMemory(entry: MemoryProviderConfig, context: FactoryContext): Promise<SecretProvider> {
  const { MemoryProvider } = await importOptional(
    '@secret-provider/memory',
    () => import('@secret-provider/memory'),
    `${context.path}.type`,
  );
  return new MemoryProvider(pick(entry, ['name', 'readOnly']));
}

async function createVault(entry: VaultProviderConfig, context: FactoryContext): Promise<SecretProvider> {
  const { VaultProvider } = await importOptional(
    '@secret-provider/vault',
    () => import('@secret-provider/vault'),
    `${context.path}.type`,
  );
  const path = context.path;
  let auth: import('@secret-provider/vault').VaultAuthOptions | undefined;
  const given = entry.auth;
  if (given?.method === 'token' && given.token !== undefined) {
    // A token file is given to the provider as such: it re-reads it when Vault refuses the token.
    auth =
      'file' in given.token
        ? { method: 'token', tokenFile: referencePath(given.token, context.baseDir) }
        : { method: 'token', token: await resolveReference(given.token, `${path}.auth.token`, context) };
  } else if (given?.method === 'approle') {
    auth = {
      method: 'approle',
      roleId: await resolveReference(given.roleId, `${path}.auth.roleId`, context),
      ...('file' in given.secretId
        ? { secretIdFile: referencePath(given.secretId, context.baseDir) }
        : { secretId: await resolveReference(given.secretId, `${path}.auth.secretId`, context) }),
      ...(given.mount === undefined ? {} : { mount: given.mount }),
    };
  } else if (given?.method === 'kubernetes') {
    auth = {
      method: 'kubernetes',
      role: given.role,
      ...(given.jwtFile === undefined ? {} : { jwtFile: absolute(given.jwtFile, context.baseDir) }),
      ...(given.mount === undefined ? {} : { mount: given.mount }),
    };
  }
  const tls = entry.tls === undefined ? undefined : await readTls(entry.tls, `${path}.tls`, context);
  const refresh = context.config.refresh;
  return new VaultProvider({
    ...pick(entry, [
      'name',
      'endpoint',
      'namespace',
      'requestTimeoutMs',
      'mounts',
      'kvDelete',
      'listRecursive',
      'tokenRenewFraction',
      'pollInterval',
    ]),
    ...(auth === undefined ? {} : { auth }),
    ...(tls === undefined
      ? {}
      : {
          tls: {
            ...(tls.ca === undefined ? {} : { ca: tls.ca }),
            ...(tls.cert === undefined ? {} : { cert: tls.cert }),
            ...(tls.key === undefined ? {} : { key: tls.key }),
            ...pick(entry.tls ?? {}, ['servername', 'rejectUnauthorized']),
          },
        }),
    ...(refresh === undefined
      ? {}
      : { staticRefresh: pick(refresh, ['intervals', 'defaultInterval', 'envVar']) }),
    env: context.env,
  });
}

async function createAzure(entry: AzureProviderConfig, context: FactoryContext): Promise<SecretProvider> {
  const { AzureKeyVaultProvider } = await importOptional(
    '@secret-provider/azure',
    () => import('@secret-provider/azure'),
    `${context.path}.type`,
  );
  const vaultUrl = entry.vaultUrl ?? vendorValue(context.env, 'AZURE_KEYVAULT_URL');
  if (vaultUrl === undefined) {
    throw new ConfigError([
      {
        path: `${context.path}.vaultUrl`,
        code: 'SCHEMA',
        message: 'is required (or set AZURE_KEYVAULT_URL)',
      },
    ]);
  }
  let credential: import('@secret-provider/azure').AzureKeyVaultProviderOptions['credential'];
  if (entry.credential?.type === 'access-token') {
    const token = await resolveReference(entry.credential.token, `${context.path}.credential.token`, context);
    // A token obtained elsewhere has no expiry the client can know; the hour is Entra ID's usual
    // lifetime, after which the client asks again and gets the same token (refused if expired).
    credential = {
      getToken: async () => ({
        token: token.reveal(),
        expiresOnTimestamp: Date.now() + 3_600_000,
        tokenType: 'Bearer',
      }),
    };
  }
  const ca =
    entry.caFile === undefined
      ? undefined
      : (await readTls({ caFile: entry.caFile }, context.path, context)).ca;
  const clientOptions = {
    ...(ca === undefined ? {} : { tlsOptions: { ca: ca.toString('utf8') } }),
    ...(entry.disableChallengeResourceVerification === undefined
      ? {}
      : { disableChallengeResourceVerification: entry.disableChallengeResourceVerification }),
  };
  return new AzureKeyVaultProvider({
    ...pick(entry, [
      'name',
      'requestTimeoutMs',
      'deleteMode',
      'includeDisabled',
      'includeManaged',
      'expired',
      'notYetValid',
      'pollInterval',
    ]),
    vaultUrl,
    ...(credential === undefined ? {} : { credential }),
    clientOptions,
  });
}

async function createHttp(entry: HttpProviderConfig, context: FactoryContext): Promise<SecretProvider> {
  const { HttpProvider } = await importOptional(
    '@secret-provider/http',
    () => import('@secret-provider/http'),
    `${context.path}.type`,
  );
  const bearer =
    entry.bearer === undefined
      ? undefined
      : await referenceSource(entry.bearer, `${context.path}.bearer`, context);
  return new HttpProvider({
    ...pick(entry, [
      'name',
      'format',
      'jsonKeys',
      'valueKey',
      'timeout',
      'minInterval',
      'maxInterval',
      'staleIfError',
      'maxBytes',
    ]),
    url: entry.url,
    ...(bearer === undefined ? {} : { bearer }),
  });
}

async function createConsul(entry: ConsulProviderConfig, context: FactoryContext): Promise<SecretProvider> {
  const { ConsulProvider } = await importOptional(
    '@secret-provider/consul',
    () => import('@secret-provider/consul'),
    `${context.path}.type`,
  );
  const address = entry.address ?? vendorValue(context.env, 'CONSUL_HTTP_ADDR');
  const envToken = vendorValue(context.env, 'CONSUL_HTTP_TOKEN');
  const tokenRef: SecretReference | undefined =
    entry.token ?? (envToken === undefined ? undefined : { env: 'CONSUL_HTTP_TOKEN' });
  const token =
    tokenRef === undefined ? undefined : await referenceSource(tokenRef, `${context.path}.token`, context);
  return new ConsulProvider({
    ...pick(entry, [
      'name',
      'prefix',
      'key',
      'format',
      'jsonKeys',
      'datacenter',
      'readOnly',
      'timeout',
      'wait',
      'minInterval',
      'maxBytes',
    ]),
    ...(address === undefined ? {} : { address }),
    ...(token === undefined ? {} : { token }),
  });
}

async function createEtcd(entry: EtcdProviderConfig, context: FactoryContext): Promise<SecretProvider> {
  const { EtcdProvider } = await importOptional(
    '@secret-provider/etcd',
    () => import('@secret-provider/etcd'),
    `${context.path}.type`,
  );
  const auth =
    entry.auth === undefined
      ? undefined
      : {
          username: entry.auth.username,
          password: await resolveReference(entry.auth.password, `${context.path}.auth.password`, context),
        };
  const tls = entry.tls === undefined ? undefined : await readTls(entry.tls, `${context.path}.tls`, context);
  if (tls !== undefined && tls.ca === undefined) {
    throw new ConfigError([
      { path: `${context.path}.tls.caFile`, code: 'SCHEMA', message: 'is required with tls' },
    ]);
  }
  return new EtcdProvider({
    ...pick(entry, ['name', 'prefix', 'document', 'jsonKeys', 'requestTimeout', 'readOnly']),
    hosts: [...entry.hosts],
    ...(auth === undefined ? {} : { auth }),
    ...(tls === undefined
      ? {}
      : {
          tls: {
            rootCertificate: tls.ca as Buffer,
            ...(tls.key === undefined ? {} : { privateKey: tls.key }),
            ...(tls.cert === undefined ? {} : { certChain: tls.cert }),
          },
        }),
  });
}

/** The endpoint the AWS SDK would take from the environment, applied from the config's `env`. */
export function awsEndpointFromEnv(env: Readonly<Record<string, string | undefined>>): string | undefined {
  if (vendorValue(env, 'AWS_IGNORE_CONFIGURED_ENDPOINT_URLS')?.toLowerCase() === 'true') return undefined;
  return vendorValue(env, 'AWS_ENDPOINT_URL_SECRETS_MANAGER') ?? vendorValue(env, 'AWS_ENDPOINT_URL');
}

async function createAws(entry: AwsProviderConfig, context: FactoryContext): Promise<SecretProvider> {
  const { AwsSecretsManagerProvider } = await importOptional(
    '@secret-provider/aws',
    () => import('@secret-provider/aws'),
    `${context.path}.type`,
  );
  // The SDK reads these from process.env itself; the config applies them from its own `env`.
  // AWS_DEFAULT_REGION is the AWS CLI's: the JavaScript SDK takes a client's region from AWS_REGION only.
  const region =
    entry.region ?? vendorValue(context.env, 'AWS_REGION') ?? vendorValue(context.env, 'AWS_DEFAULT_REGION');
  const endpoint = entry.endpoint ?? awsEndpointFromEnv(context.env);
  const given = entry.credentials;
  const path = `${context.path}.credentials`;
  let credentials:
    | (() => Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken?: string }>)
    | undefined;
  if (given !== undefined) {
    const accessKeyId = await resolveReference(given.accessKeyId, `${path}.accessKeyId`, context);
    const secretAccessKey = await resolveReference(given.secretAccessKey, `${path}.secretAccessKey`, context);
    const sessionToken =
      given.sessionToken === undefined
        ? undefined
        : await resolveReference(given.sessionToken, `${path}.sessionToken`, context);
    // A credential provider, not a static object: the values stay in redacting Secrets (in the
    // provider's options too) until the SDK asks for them.
    credentials = async () => ({
      accessKeyId: accessKeyId.reveal(),
      secretAccessKey: secretAccessKey.reveal(),
      ...(sessionToken === undefined ? {} : { sessionToken: sessionToken.reveal() }),
    });
  }
  return new AwsSecretsManagerProvider({
    ...pick(entry, [
      'name',
      'requestTimeoutMs',
      'watchKeys',
      'kmsKeyId',
      'recoveryWindowInDays',
      'forceDeleteWithoutRecovery',
      'writeRetries',
      'pollInterval',
    ]),
    ...(region === undefined ? {} : { region }),
    ...(endpoint === undefined ? {} : { endpoint }),
    ...(credentials === undefined ? {} : { credentials }),
    ...(entry.listFilters === undefined
      ? {}
      : { listFilters: entry.listFilters.map((f) => ({ Key: f.key, Values: [...f.values] })) }),
    ...(entry.cache === undefined
      ? {}
      : { cache: entry.cache === false ? false : pick(entry.cache, ['ttl', 'max', 'staleWhileRevalidate']) }),
  });
}
