import { randomUUID } from 'node:crypto';
import type {
  DescribeSecretCommandOutput,
  Filter,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import {
  type CacheOptions,
  type GetOptions,
  InvalidConfigError,
  InvalidKeyError,
  ProviderClosedError,
  ProviderUnavailableError,
  Secret,
  type SecretError,
  type SecretEvents,
  type SecretMetadata,
  SecretNotFoundError,
  type SetOptions,
  UnsupportedOperationError,
} from '@secret-provider/core';
import {
  BaseProvider,
  type EmitFunction,
  type ErrorContext,
  type HookContext,
  pickField,
  raceSignal,
  retryDelay,
  type StoredSecret,
  sleep,
  splitFieldKey,
  throwIfAborted,
  type VersionSnapshot,
} from '@secret-provider/core/adapter';
import { isExists, isMissing, isNotFound, mapAwsError } from './error-mapping.js';
import { type AwsSecretsManagerProviderOptions, PROVIDER_NAME, STAGING_LABELS } from './options.js';
import { loadSecretsManager, type SecretsManagerModule } from './sdk.js';

/** Secret names: 1-512 of these characters (`#` is not one, so `name#field` cannot be ambiguous). */
const SECRET_NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}$/;
/** What a `name` filter value of `ListSecrets` may hold. */
const FILTER_VALUE = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
/** Ids per `BatchGetSecretValue` call (the API's limit). */
const BATCH_LIMIT = 20;
/** `DescribeSecret` calls in flight at once for a watch of `watchKeys`. */
const DESCRIBE_CONCURRENCY = 8;
const CURRENT = 'AWSCURRENT';

/** What `GetSecretValue` and `BatchGetSecretValue` answer for one secret. */
interface SecretValueEntry {
  readonly Name?: string | undefined;
  readonly ARN?: string | undefined;
  readonly VersionId?: string | undefined;
  readonly SecretString?: string | undefined;
  readonly SecretBinary?: Uint8Array | undefined;
  readonly CreatedDate?: Date | undefined;
}

/**
 * AWS Secrets Manager as a `SecretProvider`, on `@aws-sdk/client-secrets-manager` (loaded
 * on first use).
 *
 * Keys are secret names or ARNs; `name#field` is one field of a secret whose `SecretString` is a
 * JSON object (a string field as is, any other as its JSON). `get(key, { version })` takes a
 * staging label (`AWSCURRENT`, `AWSPREVIOUS`, `AWSPENDING`) or a version id; versions are the
 * service's version ids. `get` answers text (a `SecretBinary` decoded as UTF-8);
 * {@link AwsSecretsManagerProvider.getBytes} answers the bytes.
 *
 * `watch` detects rotations from version ids only (`ListSecrets`' `SecretVersionsToStages`, or
 * `DescribeSecret` per key with `watchKeys`): which version holds `AWSCURRENT`. It never reads a
 * value. `set` writes a new `AWSCURRENT` version (`PutSecretValue`), creating the secret when
 * missing; `delete` schedules a deletion (or, with `forceDeleteWithoutRecovery`, deletes at once).
 *
 * @example
 * ```ts
 * const aws = new AwsSecretsManagerProvider({ region: 'eu-west-1' });
 * const password = await aws.get('prod/db#password');
 * ```
 */
export class AwsSecretsManagerProvider extends BaseProvider {
  readonly #options: AwsSecretsManagerProviderOptions;
  readonly #listFilters: readonly Filter[];
  readonly #watchKeys: readonly string[] | undefined;
  readonly #writeRetries: number;
  #client: Promise<SecretsManagerClient> | undefined;
  /** Secret -> the field keys read through it, so events reach whoever cached any of them. */
  readonly #fieldKeys = new Map<string, Set<string>>();

  constructor(options: AwsSecretsManagerProviderOptions = {}) {
    const name = options.name ?? PROVIDER_NAME;
    super({
      ...options,
      name,
      cache: cacheOption(options.cache),
      capabilities: { ...options.capabilities, versions: true },
    });
    checkOptions(options, name);
    this.#options = options;
    this.#listFilters = options.listFilters ?? [];
    this.#watchKeys =
      options.watchKeys === undefined
        ? undefined
        : [...new Set(options.watchKeys.map((key) => splitFieldKey(this.validateKey(key), name).base))];
    this.#writeRetries = options.writeRetries ?? (options.client === undefined ? 2 : 0);
    // Events about a secret also name the field keys read through it, so that their cache
    // entries go too and their watchers hear of it.
    const emitToWatchers = this.emit;
    this.emit = ((type, event) => {
      if (type === 'rotated') {
        const rotated = event as SecretEvents['rotated'];
        const changes = rotated.changes.flatMap((change) => [
          change,
          ...[...(this.#fieldKeys.get(change.key) ?? [])].map((key) => ({ ...change, key })),
        ]);
        emitToWatchers('rotated', { ...rotated, keys: changes.map((change) => change.key), changes });
        return;
      }
      emitToWatchers(type, event);
      if (type === 'added' || type === 'removed') {
        const { key } = event as SecretEvents['added'];
        for (const fieldKey of this.#fieldKeys.get(key) ?? [])
          emitToWatchers(type, { ...event, key: fieldKey });
      }
    }) as EmitFunction;
  }

  /**
   * The SDK client (created on first use, or the injected one): an escape hatch for what this
   * provider does not cover (rotation configuration, replication, resource policies).
   */
  client(): Promise<SecretsManagerClient> {
    this.#client ??= (async () => {
      const sdk = await loadSecretsManager(this.name);
      if (this.#options.client !== undefined) return this.#options.client;
      const { region, endpoint, credentials, clientConfig, requestTimeoutMs } = this.#options;
      return new sdk.SecretsManagerClient({
        maxAttempts: 1,
        requestHandler: {
          requestTimeout: requestTimeoutMs ?? 30_000,
          connectionTimeout: 10_000,
          // Without it the handler only logs a warning and waits on.
          throwOnRequestTimeout: true,
        },
        ...(region === undefined ? {} : { region }),
        ...(endpoint === undefined ? {} : { endpoint }),
        ...(credentials === undefined ? {} : { credentials }),
        ...clientConfig,
      });
    })().catch((error: unknown) => {
      this.#client = undefined;
      throw error;
    });
    return this.#client;
  }

  /**
   * The value of `key` as bytes (a `SecretString` as its UTF-8), read from the service every time
   * (not cached: a `Uint8Array` can be wiped, a cached copy could not). Wipe it with `dispose()`.
   */
  async getBytes(rawKey: string, options: GetOptions = {}): Promise<Secret<Uint8Array>> {
    if (this.closed) throw new ProviderClosedError({ provider: this.name, key: rawKey, operation: 'get' });
    const key = this.validateKey(rawKey);
    throwIfAborted(options.signal);
    let stored: StoredSecret | undefined;
    try {
      stored = await raceSignal(
        this.readSecret(key, { operation: 'get', signal: options.signal, version: options.version }),
        options.signal,
      );
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      throw this.mapError(error, { operation: 'get', key, signal: options.signal });
    }
    if (stored === undefined) throw new SecretNotFoundError({ provider: this.name, key, operation: 'get' });
    const bytes =
      typeof stored.value === 'string' ? new Uint8Array(Buffer.from(stored.value, 'utf8')) : stored.value;
    return new Secret(bytes, { key, ...stored.metadata });
  }

  // ---- hooks ---------------------------------------------------------------------------------

  protected override validateKey(key: unknown): string {
    const checked = super.validateKey(key);
    const { base } = splitFieldKey(checked, this.name);
    if (!SECRET_NAME.test(base) && !SECRET_ARN.test(base)) {
      throw new InvalidKeyError(
        { provider: this.name },
        'invalid key: a Secrets Manager name holds 1 to 512 of A-Z a-z 0-9 / _ + = . @ - (or is a secret ARN), optionally followed by #field',
      );
    }
    return checked;
  }

  protected override async readSecret(
    key: string,
    context: HookContext & { version?: string | undefined },
  ): Promise<StoredSecret | undefined> {
    const { base, field } = splitFieldKey(key, this.name);
    const { sdk, client } = await this.#sdk();
    let answer: SecretValueEntry;
    try {
      answer = await client.send(
        new sdk.GetSecretValueCommand({ SecretId: base, ...versionInput(context.version) }),
        sendOptions(context.signal),
      );
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    if (field !== undefined) this.#rememberFieldKey(base, key);
    return this.#stored(answer, key, field);
  }

  /**
   * Many secrets in `BatchGetSecretValue` calls of up to 20 ids each (pages followed by
   * `NextToken`). A key absent from the map is missing; a secret the service could not read
   * (denied, KMS) fails the whole call with that secret's mapped error.
   */
  protected override async readMany(
    keys: readonly string[],
    context: HookContext,
  ): Promise<Map<string, StoredSecret>> {
    const byBase = new Map<string, string[]>();
    for (const key of keys) {
      const { base } = splitFieldKey(key, this.name);
      byBase.set(base, [...(byBase.get(base) ?? []), key]);
    }
    const found = new Map<string, StoredSecret>();
    const { sdk, client } = await this.#sdk();
    const bases = [...byBase.keys()];
    for (let start = 0; start < bases.length; start += BATCH_LIMIT) {
      const chunk = bases.slice(start, start + BATCH_LIMIT);
      let nextToken: string | undefined;
      do {
        const page = await client.send(
          new sdk.BatchGetSecretValueCommand({
            SecretIdList: chunk,
            ...(nextToken === undefined ? {} : { NextToken: nextToken }),
          }),
          sendOptions(context.signal),
        );
        for (const failure of page.Errors ?? []) {
          const id = failure.SecretId;
          const failed = { name: failure.ErrorCode, message: failure.Message };
          if (isMissing(failed)) continue;
          const key = id === undefined ? undefined : (byBase.get(id)?.[0] ?? id);
          throw mapAwsError(failed, { provider: this.name, operation: 'get', key });
        }
        for (const entry of page.SecretValues ?? []) {
          const requested = chunk.find((id) => id === entry.Name || id === entry.ARN);
          if (requested === undefined) continue;
          for (const key of byBase.get(requested) ?? []) {
            const { field } = splitFieldKey(key, this.name);
            if (field !== undefined) this.#rememberFieldKey(requested, key);
            const stored = this.#stored(entry, key, field);
            if (stored !== undefined) found.set(key, stored);
          }
        }
        nextToken = page.NextToken;
      } while (nextToken !== undefined);
    }
    return found;
  }

  protected override async writeSecret(
    key: string,
    value: string,
    context: HookContext & SetOptions,
  ): Promise<void> {
    const base = this.#wholeSecret(key, 'set');
    // One token for every attempt of this write: the service makes one version of it, however
    // many attempts reach it.
    const token = randomUUID();
    for (let failures = 0; ; failures++) {
      try {
        await this.#put(base, value, token, context.signal);
        return;
      } catch (error) {
        const mapped = mapAwsError(error, { provider: this.name, operation: 'set', key });
        if (!mapped.retryable || failures >= this.#writeRetries || context.signal?.aborted) throw mapped;
        await sleep(retryDelay(failures + 1, mapped, { base: 250, max: 5_000 }), context.signal, this.clock);
        throwIfAborted(context.signal);
      }
    }
  }

  protected override async deleteSecret(key: string, context: HookContext): Promise<boolean> {
    const base = this.#wholeSecret(key, 'delete');
    const { sdk, client } = await this.#sdk();
    const force = this.#options.forceDeleteWithoutRecovery === true;
    try {
      await client.send(
        new sdk.DeleteSecretCommand({
          SecretId: base,
          ...(force
            ? { ForceDeleteWithoutRecovery: true }
            : { RecoveryWindowInDays: this.#options.recoveryWindowInDays ?? 30 }),
        }),
        sendOptions(context.signal),
      );
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
    return true;
  }

  protected override async listKeys(
    context: HookContext & { prefix?: string | undefined },
  ): Promise<string[]> {
    const filters = [...this.#listFilters];
    const prefix = context.prefix;
    if (prefix !== undefined && prefix !== '') {
      // A prefix no secret name can start with lists nothing; the base class filters by it anyway.
      if (!FILTER_VALUE.test(prefix)) return [];
      filters.push({ Key: 'name', Values: [prefix] });
    }
    const names: string[] = [];
    await this.#list(filters, context.signal, (entry) => names.push(entry.name));
    return names;
  }

  protected override async readMetadata(
    key: string,
    context: HookContext,
  ): Promise<Omit<SecretMetadata, 'key'> | undefined> {
    const { base } = splitFieldKey(key, this.name);
    const described = await this.#describe(base, context.signal);
    if (described === undefined) return undefined;
    return described;
  }

  protected override async readSnapshot(context: HookContext): Promise<VersionSnapshot> {
    const snapshot = new Map<string, string>();
    const watchKeys = this.#watchKeys;
    if (watchKeys === undefined) {
      await this.#list(this.#listFilters, context.signal, ({ name, current }) => {
        if (current !== undefined) snapshot.set(name, current);
      });
      return snapshot;
    }
    let next = 0;
    const worker = async () => {
      while (next < watchKeys.length) {
        const key = watchKeys[next++] as string;
        const described = await this.#describe(key, context.signal);
        if (described?.version !== undefined) snapshot.set(key, described.version);
      }
    };
    await Promise.all(Array.from({ length: Math.min(DESCRIBE_CONCURRENCY, watchKeys.length) }, worker));
    return snapshot;
  }

  protected override mapError(error: unknown, context: ErrorContext): SecretError {
    return mapAwsError(error, { provider: this.name, operation: context.operation, key: context.key });
  }

  protected override async onClose(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    if (client === undefined || this.#options.client !== undefined) return;
    try {
      (await client).destroy();
    } catch {
      // A client that was never made has nothing to release.
    }
  }

  // ---- internals -----------------------------------------------------------------------------

  async #sdk(): Promise<{ sdk: SecretsManagerModule; client: SecretsManagerClient }> {
    const [sdk, client] = await Promise.all([loadSecretsManager(this.name), this.client()]);
    return { sdk, client };
  }

  /** `PutSecretValue`; `CreateSecret` when the secret is missing (and `PutSecretValue` again if a create raced). */
  async #put(name: string, value: string, token: string, signal: AbortSignal | undefined): Promise<void> {
    const { sdk, client } = await this.#sdk();
    const put = () =>
      client.send(
        new sdk.PutSecretValueCommand({ SecretId: name, ClientRequestToken: token, SecretString: value }),
        sendOptions(signal),
      );
    try {
      await put();
      return;
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    try {
      await client.send(
        new sdk.CreateSecretCommand({
          Name: name,
          ClientRequestToken: token,
          SecretString: value,
          ...(this.#options.kmsKeyId === undefined ? {} : { KmsKeyId: this.#options.kmsKeyId }),
        }),
        sendOptions(signal),
      );
    } catch (error) {
      if (!isExists(error)) throw error;
      await put();
    }
  }

  /** Metadata from `DescribeSecret`: `undefined` when missing, scheduled for deletion, or without a current value. */
  async #describe(
    name: string,
    signal: AbortSignal | undefined,
  ): Promise<Omit<SecretMetadata, 'key'> | undefined> {
    const { sdk, client } = await this.#sdk();
    let described: DescribeSecretCommandOutput;
    try {
      described = await client.send(new sdk.DescribeSecretCommand({ SecretId: name }), sendOptions(signal));
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    if (described.DeletedDate !== undefined) return undefined;
    const version = currentOf(described.VersionIdsToStages);
    if (version === undefined) return undefined;
    const tags = described.Tags?.length
      ? Object.fromEntries(described.Tags.map((tag) => [tag.Key ?? '', tag.Value ?? '']))
      : undefined;
    return {
      version,
      createdAt: described.CreatedDate,
      updatedAt: described.LastChangedDate,
      ...(tags === undefined ? {} : { tags }),
    };
  }

  /** Every page of `ListSecrets` with `filters` (names and current version ids, never values). */
  async #list(
    filters: readonly Filter[],
    signal: AbortSignal | undefined,
    each: (entry: { name: string; current: string | undefined }) => void,
  ): Promise<void> {
    const { sdk, client } = await this.#sdk();
    let nextToken: string | undefined;
    do {
      const page = await client.send(
        new sdk.ListSecretsCommand({
          MaxResults: 100,
          ...(filters.length === 0 ? {} : { Filters: [...filters] }),
          ...(nextToken === undefined ? {} : { NextToken: nextToken }),
        }),
        sendOptions(signal),
      );
      if (page.SecretList === undefined) {
        throw new ProviderUnavailableError(
          { provider: this.name, operation: 'keys' },
          `Secrets Manager answered ListSecrets without a SecretList (provider "${this.name}")`,
        );
      }
      for (const entry of page.SecretList) {
        if (typeof entry.Name !== 'string' || entry.DeletedDate !== undefined) continue;
        each({ name: entry.Name, current: currentOf(entry.SecretVersionsToStages) });
      }
      nextToken = page.NextToken;
    } while (nextToken !== undefined);
  }

  #stored(answer: SecretValueEntry, key: string, field: string | undefined): StoredSecret | undefined {
    const { SecretString: text, SecretBinary: binary } = answer;
    if (text === undefined && binary === undefined) {
      throw new ProviderUnavailableError(
        { provider: this.name, key, operation: 'get' },
        `Secrets Manager answered "${key}" without SecretString or SecretBinary (provider "${this.name}")`,
      );
    }
    const metadata = {
      version: answer.VersionId,
      createdAt: answer.CreatedDate,
      updatedAt: answer.CreatedDate,
    };
    if (field === undefined) return { value: text ?? (binary as Uint8Array), metadata };
    const data = jsonObjectOf(text ?? Buffer.from(binary as Uint8Array).toString('utf8'));
    const value = data === undefined ? undefined : pickField(data, field);
    return value === undefined ? undefined : { value, metadata };
  }

  /** The secret a whole-secret operation names; a field key is refused (no atomic field update). */
  #wholeSecret(key: string, operation: 'set' | 'delete'): string {
    const { base, field } = splitFieldKey(key, this.name);
    if (field !== undefined) {
      throw new UnsupportedOperationError(
        { provider: this.name, key, operation },
        `${operation} acts on a whole secret; "${key}" names one field (provider "${this.name}")`,
      );
    }
    return base;
  }

  #rememberFieldKey(base: string, key: string): void {
    let keys = this.#fieldKeys.get(base);
    if (keys === undefined) {
      if (this.#fieldKeys.size >= 10_000) {
        const oldest = this.#fieldKeys.keys().next().value;
        if (oldest !== undefined) this.#fieldKeys.delete(oldest);
      }
      keys = new Set();
      this.#fieldKeys.set(base, keys);
    }
    if (keys.size < 100) keys.add(key);
  }
}

/** The SDK's per-request options: the caller's signal, when there is one. */
function sendOptions(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
  return signal === undefined ? {} : { abortSignal: signal };
}

/** `VersionStage` for a staging label, `VersionId` for anything else. */
function versionInput(version: string | undefined): { VersionId?: string; VersionStage?: string } {
  if (version === undefined) return {};
  return STAGING_LABELS.includes(version) ? { VersionStage: version } : { VersionId: version };
}

/** The version id holding `AWSCURRENT`. */
function currentOf(stages: Record<string, string[]> | undefined): string | undefined {
  if (stages === undefined) return undefined;
  for (const [id, labels] of Object.entries(stages)) if (labels.includes(CURRENT)) return id;
  return undefined;
}

/** The JSON object `text` holds, else `undefined`; a parse error (which quotes its input) is dropped. */
function jsonObjectOf(text: string): Record<string, unknown> | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
    ? (parsed as Record<string, unknown>)
    : undefined;
}

/**
 * The `cache` option as the provider applies it: on by default (a remote, billed backend), with
 * core's defaults plus `spreadFirst`, so that a fleet started together does not refresh in step.
 */
function cacheOption(option: CacheOptions | boolean | undefined): CacheOptions | false {
  if (option === false) return false;
  return { spreadFirst: true, ...(option === true || option === undefined ? {} : option) };
}

function checkOptions(options: AwsSecretsManagerProviderOptions, provider: string): void {
  const refuse = (message: string) => {
    throw new InvalidConfigError({ provider }, `${message} (provider "${provider}")`);
  };
  const days = options.recoveryWindowInDays;
  if (days !== undefined && (!Number.isInteger(days) || days < 7 || days > 30)) {
    refuse('recoveryWindowInDays must be an integer from 7 to 30');
  }
  if (days !== undefined && options.forceDeleteWithoutRecovery === true) {
    refuse('recoveryWindowInDays and forceDeleteWithoutRecovery exclude each other');
  }
  const retries = options.writeRetries;
  if (retries !== undefined && (!Number.isInteger(retries) || retries < 0 || retries > 10)) {
    refuse('writeRetries must be an integer from 0 to 10');
  }
  const timeout = options.requestTimeoutMs;
  if (timeout !== undefined && (!Number.isFinite(timeout) || timeout <= 0)) {
    refuse('requestTimeoutMs must be a positive number of milliseconds');
  }
  if (options.client !== undefined) {
    for (const name of ['region', 'endpoint', 'credentials', 'clientConfig', 'requestTimeoutMs'] as const) {
      if (options[name] !== undefined)
        refuse(`${name} configures a client this provider creates; with client it would be ignored`);
    }
  }
}
