import type {
  Filter,
  SecretsManagerClient,
  SecretsManagerClientConfig,
} from '@aws-sdk/client-secrets-manager';
import type { BaseProviderOptions } from '@secret-provider/core/adapter';

/** Name of this adapter in errors and events unless another is given. */
export const PROVIDER_NAME = 'aws';

/** The staging labels `get(key, { version })` takes as labels; any other version is a version id. */
export const STAGING_LABELS: readonly string[] = ['AWSCURRENT', 'AWSPREVIOUS', 'AWSPENDING'];

/**
 * Options of {@link AwsSecretsManagerProvider}. Beyond these, the base options: `cache` (on by
 * default here: remote reads are slow and billed per 10,000 calls), `pollInterval` (the watch,
 * 30 s by default), `pollJitter`, `clock`, `maxKeyLength`, `name`.
 */
export interface AwsSecretsManagerProviderOptions extends Partial<BaseProviderOptions> {
  /**
   * An existing `SecretsManagerClient`, used as is: its region, endpoint, credentials and retry
   * policy. This provider then does not retry writes itself (see `writeRetries`), and does not
   * destroy the client on `close()`.
   */
  readonly client?: SecretsManagerClient | undefined;
  /** Region of the client this provider creates. @default the SDK's (`AWS_REGION`, profile) */
  readonly region?: string | undefined;
  /** Endpoint of the client this provider creates (a VPC endpoint, a local double). */
  readonly endpoint?: string | undefined;
  /**
   * Credentials of the client this provider creates: static ones or a provider function.
   * @default the SDK's default chain (environment, profile, SSO, container and instance roles)
   */
  readonly credentials?: SecretsManagerClientConfig['credentials'] | undefined;
  /**
   * More configuration of the client this provider creates. `maxAttempts` is 1 unless given
   * here: the cache, the watch's back-off and the write retries of this provider take the SDK's
   * place, so that retries are not stacked.
   */
  readonly clientConfig?: SecretsManagerClientConfig | undefined;
  /** Time each request may take, in ms (the SDK's `requestTimeout`). @default 30_000 */
  readonly requestTimeoutMs?: number | undefined;
  /**
   * `ListSecrets` filters that scope `keys()` and the watch (a `name` prefix, `tag-key`,
   * `tag-value`...). `keys({ prefix })` adds a `name` filter to them.
   */
  readonly listFilters?: readonly Filter[] | undefined;
  /**
   * Watch these secrets with one `DescribeSecret` each per poll instead of listing the scope with
   * `ListSecrets` (100 secrets a page). For a few secrets among many, or without
   * `secretsmanager:ListSecrets`.
   */
  readonly watchKeys?: readonly string[] | undefined;
  /** KMS key of the secrets `set` creates. @default the account's `aws/secretsmanager` key */
  readonly kmsKeyId?: string | undefined;
  /** Days a deleted secret can be restored, 7 to 30. @default 30 */
  readonly recoveryWindowInDays?: number | undefined;
  /**
   * `delete` removes the secret at once, without a recovery window: it cannot be restored.
   * @default false
   */
  readonly forceDeleteWithoutRecovery?: boolean | undefined;
  /**
   * Retries of a write that failed with a retryable error (unreachable, timeout, throttled),
   * after core's back-off (or the server's `Retry-After`). Every attempt of one `set` sends the
   * same `ClientRequestToken`, so a write that reached the service before its answer was lost
   * is not made twice. @default 2, or 0 with an injected `client` (its own retries apply)
   */
  readonly writeRetries?: number | undefined;
}
