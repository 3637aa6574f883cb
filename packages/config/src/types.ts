// TypeScript view of schema.json for `defineConfig` in .ts/.mjs files. The schema decides what
// is valid (loadConfig validates every config with it, typed or not); a test checks that the
// provider types and fields named here are the schema's.

/** Where a secret comes from; a literal secret is never accepted. */
export type SecretReference =
  | { readonly env: string }
  | { readonly file: string }
  | { readonly provider: string; readonly key: string };

interface ProviderBase {
  /** Unique name: errors, events, `explain` and references use it. */
  readonly name: string;
}

export interface EnvProviderConfig extends ProviderBase {
  readonly type: 'env';
  readonly prefix?: string;
  readonly stripPrefix?: boolean;
  readonly allow?: readonly string[];
  readonly all?: boolean;
  readonly files?: readonly string[];
  readonly override?: boolean;
  readonly requireFiles?: boolean;
  readonly pollInterval?: number;
  readonly debounceMs?: number;
}

export interface FileProviderConfig extends ProviderBase {
  readonly type: 'file';
  readonly path: string;
  readonly format?: 'json' | 'yaml' | 'toml' | 'env' | 'directory';
  readonly jsonKeys?: 'nested' | 'flat';
  readonly readOnly?: boolean;
  readonly strict?: boolean;
  readonly checkPermissions?: boolean;
  readonly debounceMs?: number;
  readonly usePolling?: boolean;
  readonly pollInterval?: number;
}

export interface MemoryProviderConfig extends ProviderBase {
  readonly type: 'memory';
  readonly readOnly?: boolean;
}

export interface TlsFilesConfig {
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly servername?: string;
  readonly rejectUnauthorized?: boolean;
}

export type VaultAuthConfig =
  | { readonly method: 'token'; readonly token?: SecretReference }
  | {
      readonly method: 'approle';
      readonly roleId: SecretReference;
      readonly secretId: SecretReference;
      readonly mount?: string;
    }
  | {
      readonly method: 'kubernetes';
      readonly role: string;
      readonly jwtFile?: string;
      readonly mount?: string;
    };

export interface VaultProviderConfig extends ProviderBase {
  readonly type: 'vault';
  /** @default `VAULT_ADDR` */
  readonly endpoint?: string;
  /** @default `VAULT_NAMESPACE` */
  readonly namespace?: string;
  /** @default token auth from `VAULT_TOKEN` */
  readonly auth?: VaultAuthConfig;
  readonly tls?: TlsFilesConfig;
  readonly requestTimeoutMs?: number;
  readonly mounts?: Readonly<Record<string, { readonly version?: 1 | 2 }>>;
  readonly kvDelete?: 'latest' | 'all';
  readonly listRecursive?: boolean;
  readonly tokenRenewFraction?: number;
  readonly pollInterval?: number;
}

export type AzureCredentialConfig =
  | { readonly type: 'default' }
  | { readonly type: 'access-token'; readonly token: SecretReference; readonly tenantId?: string };

export interface AzureProviderConfig extends ProviderBase {
  readonly type: 'azure';
  /** @default `AZURE_KEYVAULT_URL` */
  readonly vaultUrl?: string;
  /** @default `{ type: 'default' }` (DefaultAzureCredential) */
  readonly credential?: AzureCredentialConfig;
  /** A CA certificate file trusted for the vault (private endpoints behind a TLS proxy). */
  readonly caFile?: string;
  readonly disableChallengeResourceVerification?: boolean;
  readonly requestTimeoutMs?: number;
  readonly deleteMode?: 'soft' | 'purge';
  readonly includeDisabled?: boolean;
  readonly includeManaged?: boolean;
  readonly expired?: 'reject' | 'allow';
  readonly notYetValid?: 'reject' | 'allow';
  readonly pollInterval?: number;
}

export interface HttpProviderConfig extends ProviderBase {
  readonly type: 'http';
  readonly url: string;
  readonly format?: 'json' | 'env' | 'value';
  readonly jsonKeys?: 'nested' | 'flat';
  readonly valueKey?: string;
  readonly bearer?: SecretReference;
  readonly timeout?: number;
  readonly minInterval?: number;
  readonly maxInterval?: number;
  readonly staleIfError?: number;
  readonly maxBytes?: number;
}

export interface ConsulProviderConfig extends ProviderBase {
  readonly type: 'consul';
  /** @default `CONSUL_HTTP_ADDR` */
  readonly address?: string;
  readonly prefix?: string;
  readonly key?: string;
  readonly format?: 'json' | 'env';
  readonly jsonKeys?: 'nested' | 'flat';
  /** @default `CONSUL_HTTP_TOKEN` */
  readonly token?: SecretReference;
  readonly datacenter?: string;
  readonly readOnly?: boolean;
  readonly timeout?: number;
  readonly wait?: number;
  readonly minInterval?: number;
  readonly maxBytes?: number;
}

export interface EtcdProviderConfig extends ProviderBase {
  readonly type: 'etcd';
  readonly hosts: readonly string[];
  readonly prefix?: string;
  readonly document?: string;
  readonly jsonKeys?: 'nested' | 'flat';
  readonly auth?: { readonly username: string; readonly password: SecretReference };
  readonly tls?: TlsFilesConfig;
  readonly requestTimeout?: number;
  readonly readOnly?: boolean;
}

export interface AwsProviderConfig extends ProviderBase {
  readonly type: 'aws';
  /** @default `AWS_REGION`, then `AWS_DEFAULT_REGION`, then the SDK's (profile) */
  readonly region?: string;
  /** @default `AWS_ENDPOINT_URL_SECRETS_MANAGER`, then `AWS_ENDPOINT_URL` */
  readonly endpoint?: string;
  /** Static credentials, as references. @default the SDK's default chain */
  readonly credentials?: {
    readonly accessKeyId: SecretReference;
    readonly secretAccessKey: SecretReference;
    readonly sessionToken?: SecretReference;
  };
  readonly requestTimeoutMs?: number;
  /** `ListSecrets` filters scoping `keys()` and the watch. */
  readonly listFilters?: readonly {
    readonly key:
      | 'name'
      | 'description'
      | 'tag-key'
      | 'tag-value'
      | 'primary-region'
      | 'owning-service'
      | 'all';
    readonly values: readonly string[];
  }[];
  /** Watch these secrets by `DescribeSecret` instead of listing the scope. */
  readonly watchKeys?: readonly string[];
  readonly kmsKeyId?: string;
  readonly recoveryWindowInDays?: number;
  readonly forceDeleteWithoutRecovery?: boolean;
  readonly writeRetries?: number;
  /** The adapter's own cache (on by default), or `false`. */
  readonly cache?: false | CacheConfig;
  readonly pollInterval?: number;
}

export type ProviderConfig =
  | EnvProviderConfig
  | FileProviderConfig
  | MemoryProviderConfig
  | VaultProviderConfig
  | AzureProviderConfig
  | HttpProviderConfig
  | ConsulProviderConfig
  | EtcdProviderConfig
  | AwsProviderConfig;

/** The provider types a configuration can declare. */
export type ProviderType = ProviderConfig['type'];

export interface CacheConfig {
  /** Milliseconds a value is served from the cache. */
  readonly ttl?: number;
  /** Most entries kept (least recently used go first). */
  readonly max?: number;
  readonly staleWhileRevalidate?: number;
}

/** A whole configuration file. */
export interface SecretProviderConfig {
  readonly $schema?: string;
  /** @default 'ordered' */
  readonly mode?: 'ordered' | 'failover';
  /** In chain order. */
  readonly providers: readonly ProviderConfig[];
  readonly cache?: false | CacheConfig;
  /** Re-read intervals (seconds) of static Vault secrets by key pattern. */
  readonly refresh?: {
    readonly intervals?: Readonly<Record<string, number>>;
    readonly defaultInterval?: number;
    readonly envVar?: string;
  };
  /** Keys (exact or by prefix) served by one named provider only. */
  readonly routing?: {
    readonly keys?: Readonly<Record<string, string>>;
    readonly prefixes?: Readonly<Record<string, string>>;
  };
  /**
   * Spans and metrics of every read through `@secret-provider/opentelemetry` (an optional peer),
   * on the global tracer and meter providers. The service name is the OpenTelemetry SDK's
   * resource attribute, set where the SDK is started.
   */
  readonly telemetry?: {
    /** @default false */
    readonly enabled?: boolean;
    /** @default true */
    readonly traces?: boolean;
    /** @default true */
    readonly metrics?: boolean;
  };
}
