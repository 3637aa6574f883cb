import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * An AWS Secrets Manager double: a `node:http` server on 127.0.0.1 that speaks the service's
 * AWS JSON 1.1 protocol as the API reference (secretsmanager-2017-10-17) documents it:
 *
 * - `POST /` with `X-Amz-Target: secretsmanager.<Operation>` and `Content-Type:
 *   application/x-amz-json-1.1`; every client error answers 400 `{"__type", "Message"}`
 *   (throttling and access denied included), an internal error 500.
 * - The SigV4 `Authorization` header is checked for its shape and credential scope
 *   (`AWS4-HMAC-SHA256 Credential=<akid>/<yyyymmdd>/<region>/secretsmanager/aws4_request,
 *   SignedHeaders=..., Signature=<64 hex>`, the date matching `X-Amz-Date`); the signature
 *   itself is not recomputed.
 * - Versions and staging labels: a `PutSecretValue` without `VersionStages` moves `AWSCURRENT`
 *   to the new version and `AWSPREVIOUS` to the version that held it; with `VersionStages` it
 *   moves only those labels. A `ClientRequestToken` already used for a version with the same
 *   value is a no-op answering that version; with another value, `ResourceExistsException`.
 * - `DeleteSecret` schedules a deletion (7-30 days, default 30) or, with
 *   `ForceDeleteWithoutRecovery`, deletes at once; a scheduled secret answers
 *   `InvalidRequestException` ("marked for deletion") to reads and writes, is described with its
 *   `DeletedDate`, and is left out of `ListSecrets` unless `IncludePlannedDeletion`.
 * - `ListSecrets` pages (`MaxResults` 1-100, `NextToken`) with `name` filters (case-sensitive
 *   prefixes, `!` negates); `BatchGetSecretValue` takes up to 20 `SecretIdList` entries or
 *   filters, and reports failures per secret in `Errors`.
 *
 * Not modelled: replication, rotation lambdas (`RotateSecret`), resource policies, tags beyond
 * `CreateSecret`, KMS keys beyond a per-secret decrypt fault, the other filter keys.
 */
export interface SecretsManagerDoubleOptions {
  /** The region credential scopes must name. @default 'us-east-1' */
  readonly region?: string | undefined;
  /** Access key ids accepted; any other answers `UnrecognizedClientException`. @default any */
  readonly accessKeyIds?: readonly string[] | undefined;
  /** Account id in ARNs. @default '123456789012' */
  readonly accountId?: string | undefined;
}

/** One version of a secret as stored. */
export interface StoredVersion {
  readonly versionId: string;
  readonly secretString?: string | undefined;
  readonly secretBinary?: Buffer | undefined;
  readonly createdDate: number;
  /** The request token that created it. */
  readonly token: string;
}

interface StoredSecretEntry {
  readonly name: string;
  readonly arn: string;
  readonly createdDate: number;
  lastChangedDate: number;
  deletedDate: number | undefined;
  /** Days of the recovery window of a scheduled deletion. */
  recoveryDays: number | undefined;
  readonly description: string | undefined;
  readonly kmsKeyId: string | undefined;
  readonly tags: ReadonlyArray<{ Key: string; Value: string }>;
  readonly versions: Map<string, StoredVersion>;
  /** Staging label -> version id. */
  readonly stages: Map<string, string>;
}

export interface SecretsManagerRequestLogEntry {
  /** The operation from `X-Amz-Target` (`GetSecretValue`...), `''` when absent. */
  readonly operation: string;
  readonly status: number;
  /** `__type` of an error answer. */
  readonly errorType: string | undefined;
  readonly receivedAt: number;
}

/** What the next requests meet instead of the service. */
export type SecretsManagerFault =
  /** An error answer: `type` becomes `__type` (no body at all when `type` is absent). */
  | {
      readonly kind: 'status';
      readonly status: number;
      readonly type?: string | undefined;
      readonly message?: string | undefined;
      readonly headers?: Readonly<Record<string, string>> | undefined;
    }
  /** The connection is reset before an answer. */
  | { readonly kind: 'reset' }
  /** The request is carried out, then the connection is reset instead of answered. */
  | { readonly kind: 'reset-after' }
  /** A 200 whose body is not JSON (a proxy page). */
  | { readonly kind: 'garbage' }
  /** No answer at all (until the client gives up or the double closes). */
  | { readonly kind: 'hang' };

/** A fault of one secret: reads of it fail this way (in `BatchGetSecretValue`, as an `Errors` entry). */
export type SecretFault = 'DecryptionFailure' | 'AccessDeniedException';

const MESSAGES = {
  notFound: "Secrets Manager can't find the specified secret.",
  markedForDeletion: "You can't perform this operation on the secret because it was marked for deletion.",
  scheduled:
    "You can't create this secret because a secret with this name is already scheduled for deletion.",
  decryption: "Secrets Manager can't decrypt the protected secret text using the provided KMS key.",
};

const MAX_BATCH_IDS = 20;
const LABEL_CURRENT = 'AWSCURRENT';
const LABEL_PREVIOUS = 'AWSPREVIOUS';

class ApiError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export class SecretsManagerDouble {
  readonly requests: SecretsManagerRequestLogEntry[] = [];
  readonly #server: Server;
  readonly #secrets = new Map<string, StoredSecretEntry>();
  readonly #sockets = new Set<Socket>();
  readonly #secretFaults = new Map<string, SecretFault>();
  readonly #region: string;
  readonly #accessKeyIds: ReadonlySet<string> | undefined;
  readonly #accountId: string;
  #faults: SecretsManagerFault[] = [];
  /** Listing snapshots by `NextToken`. */
  readonly #pages = new Map<string, readonly string[]>();

  private constructor(options: SecretsManagerDoubleOptions) {
    this.#region = options.region ?? 'us-east-1';
    this.#accessKeyIds = options.accessKeyIds === undefined ? undefined : new Set(options.accessKeyIds);
    this.#accountId = options.accountId ?? '123456789012';
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  /** Starts a double on a free port of 127.0.0.1. */
  static async start(options: SecretsManagerDoubleOptions = {}): Promise<SecretsManagerDouble> {
    const double = new SecretsManagerDouble(options);
    await new Promise<void>((resolve) => double.#server.listen(0, '127.0.0.1', resolve));
    return double;
  }

  /** `http://127.0.0.1:<port>`, the endpoint. */
  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  get region(): string {
    return this.#region;
  }

  /** Requests of `operation` answered so far (faults included). */
  count(operation: string): number {
    let n = 0;
    for (const entry of this.requests) if (entry.operation === operation) n++;
    return n;
  }

  // ---- out of band, as another client would -------------------------------------------------

  /**
   * Writes a new `AWSCURRENT` version of `name` (creating the secret when missing), as
   * `PutSecretValue` would; resolves the new version id.
   */
  put(name: string, value: string | Uint8Array, stages?: readonly string[]): string {
    const secret = this.#secrets.get(name) ?? this.#create(name, {});
    return this.#putVersion(secret, toStored(value), randomUUID(), stages);
  }

  /** Removes `name` at once, as `DeleteSecret` with `ForceDeleteWithoutRecovery` would. */
  delete(name: string): void {
    this.#secrets.delete(name);
  }

  /** The value labelled `stage` (default `AWSCURRENT`) of a live secret. */
  read(name: string, stage = LABEL_CURRENT): string | Buffer | undefined {
    const secret = this.#secrets.get(name);
    if (secret === undefined || secret.deletedDate !== undefined) return undefined;
    const id = secret.stages.get(stage);
    const version = id === undefined ? undefined : secret.versions.get(id);
    return version?.secretString ?? version?.secretBinary;
  }

  /** Version id -> staging labels of `name`. */
  stagesOf(name: string): Record<string, string[]> {
    const secret = this.#secrets.get(name);
    return secret === undefined ? {} : versionsToStages(secret);
  }

  /** Number of versions `name` holds. */
  versionCount(name: string): number {
    return this.#secrets.get(name)?.versions.size ?? 0;
  }

  /** When `name` was scheduled for deletion (epoch seconds), if it was. */
  deletedDate(name: string): number | undefined {
    return this.#secrets.get(name)?.deletedDate;
  }

  /** The recovery window (days) of a scheduled deletion of `name`. */
  recoveryWindowOf(name: string): number | undefined {
    return this.#secrets.get(name)?.recoveryDays;
  }

  /** Reads of `name` fail with `fault` until cleared with `undefined`. */
  setSecretFault(name: string, fault: SecretFault | undefined): void {
    if (fault === undefined) this.#secretFaults.delete(name);
    else this.#secretFaults.set(name, fault);
  }

  /** The next `times` requests meet `fault`. */
  fail(fault: SecretsManagerFault, times = 1): void {
    for (let i = 0; i < times; i++) this.#faults.push(fault);
  }

  clearFaults(): void {
    this.#faults = [];
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  // ---- the store -----------------------------------------------------------------------------

  #create(
    name: string,
    input: { description?: string; kmsKeyId?: string; tags?: Array<{ Key: string; Value: string }> },
  ): StoredSecretEntry {
    const now = nowSeconds();
    const secret: StoredSecretEntry = {
      name,
      arn: `arn:aws:secretsmanager:${this.#region}:${this.#accountId}:secret:${name}-${randomSuffix()}`,
      createdDate: now,
      lastChangedDate: now,
      deletedDate: undefined,
      recoveryDays: undefined,
      description: input.description,
      kmsKeyId: input.kmsKeyId,
      tags: input.tags ?? [],
      versions: new Map(),
      stages: new Map(),
    };
    this.#secrets.set(name, secret);
    return secret;
  }

  /** Adds a version (or finds the one `token` made); moves the labels. */
  #putVersion(
    secret: StoredSecretEntry,
    value: { secretString?: string; secretBinary?: Buffer },
    token: string,
    stages: readonly string[] | undefined,
  ): string {
    const existing = secret.versions.get(token);
    if (existing !== undefined) {
      if (
        existing.secretString === value.secretString &&
        (existing.secretBinary === undefined) === (value.secretBinary === undefined) &&
        (existing.secretBinary === undefined ||
          (value.secretBinary !== undefined && existing.secretBinary.equals(value.secretBinary)))
      ) {
        return existing.versionId;
      }
      throw new ApiError(
        'ResourceExistsException',
        'You can’t modify an existing version, you can only create a new version.',
      );
    }
    // The token becomes the version id, as the service does.
    const versionId = token;
    secret.versions.set(versionId, { versionId, ...value, createdDate: nowSeconds(), token });
    const labels = stages ?? [LABEL_CURRENT];
    for (const label of labels) {
      const before = secret.stages.get(label);
      secret.stages.set(label, versionId);
      if (label === LABEL_CURRENT && before !== undefined && before !== versionId) {
        secret.stages.set(LABEL_PREVIOUS, before);
      }
    }
    secret.lastChangedDate = nowSeconds();
    return versionId;
  }

  /** A live secret by name or ARN. */
  #find(id: unknown, { allowDeleted = false } = {}): StoredSecretEntry {
    if (typeof id !== 'string' || id === '') {
      throw new ApiError('InvalidParameterException', 'Invalid SecretId.');
    }
    let secret = this.#secrets.get(id);
    if (secret === undefined && id.startsWith('arn:')) {
      for (const candidate of this.#secrets.values()) if (candidate.arn === id) secret = candidate;
    }
    if (secret === undefined) throw new ApiError('ResourceNotFoundException', MESSAGES.notFound);
    if (!allowDeleted && secret.deletedDate !== undefined) {
      throw new ApiError('InvalidRequestException', MESSAGES.markedForDeletion);
    }
    return secret;
  }

  #valueOf(secret: StoredSecretEntry, versionId: unknown, versionStage: unknown) {
    const fault = this.#secretFaults.get(secret.name);
    if (fault === 'AccessDeniedException') {
      throw new ApiError(
        'AccessDeniedException',
        `User: arn:aws:iam::${this.#accountId}:user/test is not authorized to perform: secretsmanager:GetSecretValue on resource: ${secret.name} because no identity-based policy allows the secretsmanager:GetSecretValue action`,
      );
    }
    let id: string | undefined;
    if (typeof versionId === 'string') {
      id = secret.versions.has(versionId) ? versionId : undefined;
      if (id !== undefined && typeof versionStage === 'string' && secret.stages.get(versionStage) !== id)
        id = undefined;
      if (id === undefined) {
        throw new ApiError(
          'ResourceNotFoundException',
          `Secrets Manager can't find the specified secret value for VersionId: ${versionId}`,
        );
      }
    } else {
      const stage = typeof versionStage === 'string' ? versionStage : LABEL_CURRENT;
      id = secret.stages.get(stage);
      if (id === undefined) {
        throw new ApiError(
          'ResourceNotFoundException',
          `Secrets Manager can't find the specified secret value for staging label: ${stage}`,
        );
      }
    }
    if (fault === 'DecryptionFailure') throw new ApiError('DecryptionFailure', MESSAGES.decryption);
    const version = secret.versions.get(id) as StoredVersion;
    return {
      ARN: secret.arn,
      Name: secret.name,
      VersionId: version.versionId,
      ...(version.secretString === undefined ? {} : { SecretString: version.secretString }),
      ...(version.secretBinary === undefined
        ? {}
        : { SecretBinary: version.secretBinary.toString('base64') }),
      VersionStages: stagesOfVersion(secret, version.versionId),
      CreatedDate: version.createdDate,
    };
  }

  // ---- the protocol --------------------------------------------------------------------------

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const receivedAt = Date.now();
    const target = String(req.headers['x-amz-target'] ?? '');
    const operation = target.startsWith('secretsmanager.') ? target.slice('secretsmanager.'.length) : '';
    const log = (status: number, errorType?: string) =>
      this.requests.push({ operation, status, errorType, receivedAt });
    const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      if (!res.writable) return;
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, {
        'Content-Type': 'application/x-amz-json-1.1',
        'x-amzn-RequestId': randomUUID(),
        ...headers,
      });
      res.end(text);
    };
    const answerError = (error: ApiError, headers: Record<string, string> = {}) => {
      log(error.status, error.type);
      answer(error.status, { __type: error.type, Message: error.message }, headers);
    };
    const raw = await readBody(req);
    const fault = this.#faults.shift();
    if (fault?.kind === 'reset') {
      log(0);
      req.socket.resetAndDestroy();
      return;
    }
    if (fault?.kind === 'status') {
      log(fault.status, fault.type);
      if (!res.writable) return;
      res.writeHead(fault.status, { 'Content-Type': 'application/x-amz-json-1.1', ...fault.headers });
      res.end(
        fault.type === undefined ? '' : JSON.stringify({ __type: fault.type, Message: fault.message ?? '' }),
      );
      return;
    }
    if (fault?.kind === 'hang') {
      log(0);
      return;
    }
    if (fault?.kind === 'garbage') {
      log(200);
      if (!res.writable) return;
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<html><body>Gateway says hello</body></html>');
      return;
    }
    try {
      if (req.method !== 'POST' || (req.url ?? '/') !== '/') {
        throw new ApiError('UnknownOperationException', 'Unknown operation');
      }
      this.#checkSignature(req);
      const contentType = String(req.headers['content-type'] ?? '');
      if (!contentType.startsWith('application/x-amz-json-1.1')) {
        throw new ApiError('SerializationException', 'Unsupported content type');
      }
      let input: Record<string, unknown>;
      try {
        input = raw.length === 0 ? {} : (JSON.parse(raw.toString('utf8')) as Record<string, unknown>);
      } catch {
        throw new ApiError('SerializationException', 'Start of structure or map found where not expected.');
      }
      if (input === null || typeof input !== 'object' || Array.isArray(input)) {
        throw new ApiError('SerializationException', 'Start of structure or map found where not expected.');
      }
      const output = this.#operate(operation, input);
      if (fault?.kind === 'reset-after') {
        log(0);
        req.socket.resetAndDestroy();
        return;
      }
      log(200);
      answer(200, output);
    } catch (error) {
      if (error instanceof ApiError) answerError(error);
      else answerError(new ApiError('InternalServiceError', 'An error occurred on the server side.', 500));
    }
  }

  #checkSignature(req: IncomingMessage): void {
    const authorization = req.headers.authorization;
    if (authorization === undefined) {
      throw new ApiError('MissingAuthenticationTokenException', 'Missing Authentication Token');
    }
    const match =
      /^AWS4-HMAC-SHA256 Credential=([^/\s,]+)\/(\d{8})\/([^/\s,]+)\/([^/\s,]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(
        authorization,
      );
    if (match === null) {
      throw new ApiError(
        'IncompleteSignatureException',
        'Authorization header requires Credential, SignedHeaders and Signature parameters.',
      );
    }
    const [, accessKeyId, date, region, service, signedHeaders] = match as unknown as string[];
    const amzDate = String(req.headers['x-amz-date'] ?? '');
    if (!/^\d{8}T\d{6}Z$/.test(amzDate) || amzDate.slice(0, 8) !== date) {
      throw new ApiError(
        'IncompleteSignatureException',
        'Date in Credential scope does not match X-Amz-Date.',
      );
    }
    if (region !== this.#region || service !== 'secretsmanager') {
      throw new ApiError(
        'InvalidSignatureException',
        `Credential should be scoped to a valid region and service.`,
      );
    }
    const signed = (signedHeaders as string).split(';');
    if (!signed.includes('host') || !signed.includes('x-amz-date')) {
      throw new ApiError('IncompleteSignatureException', 'SignedHeaders must include host and x-amz-date.');
    }
    if (this.#accessKeyIds !== undefined && !this.#accessKeyIds.has(accessKeyId as string)) {
      throw new ApiError(
        'UnrecognizedClientException',
        'The security token included in the request is invalid.',
      );
    }
  }

  #operate(operation: string, input: Record<string, unknown>): unknown {
    switch (operation) {
      case 'GetSecretValue': {
        const secret = this.#find(input.SecretId);
        return this.#valueOf(secret, input.VersionId, input.VersionStage);
      }
      case 'BatchGetSecretValue':
        return this.#batchGet(input);
      case 'DescribeSecret': {
        const secret = this.#find(input.SecretId, { allowDeleted: true });
        return {
          ...this.#entryOf(secret),
          VersionIdsToStages: versionsToStages(secret),
        };
      }
      case 'ListSecrets':
        return this.#listSecrets(input);
      case 'CreateSecret':
        return this.#createSecret(input);
      case 'PutSecretValue': {
        const secret = this.#find(input.SecretId);
        const value = valueOfInput(input);
        const token = tokenOf(input.ClientRequestToken);
        const stages = Array.isArray(input.VersionStages) ? (input.VersionStages as string[]) : undefined;
        const versionId = this.#putVersion(secret, value, token, stages);
        return {
          ARN: secret.arn,
          Name: secret.name,
          VersionId: versionId,
          VersionStages: stagesOfVersion(secret, versionId),
        };
      }
      case 'DeleteSecret':
        return this.#deleteSecret(input);
      case 'RestoreSecret': {
        const secret = this.#find(input.SecretId, { allowDeleted: true });
        secret.deletedDate = undefined;
        secret.recoveryDays = undefined;
        return { ARN: secret.arn, Name: secret.name };
      }
      default:
        throw new ApiError('UnknownOperationException', 'Unknown operation');
    }
  }

  #createSecret(input: Record<string, unknown>): unknown {
    const name = input.Name;
    if (typeof name !== 'string' || !/^[A-Za-z0-9/_+=.@-]{1,512}$/.test(name)) {
      throw new ApiError(
        'InvalidParameterException',
        'Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!',
      );
    }
    const existing = this.#secrets.get(name);
    if (existing !== undefined) {
      if (existing.deletedDate !== undefined)
        throw new ApiError('InvalidRequestException', MESSAGES.scheduled);
      const token = typeof input.ClientRequestToken === 'string' ? input.ClientRequestToken : undefined;
      // A retry of the same create (same token) answers as the first did.
      if (token !== undefined && existing.versions.has(token)) {
        this.#putVersion(existing, valueOfInput(input), token, undefined);
        return { ARN: existing.arn, Name: existing.name, VersionId: token };
      }
      throw new ApiError(
        'ResourceExistsException',
        `The operation failed because the secret ${name} already exists.`,
      );
    }
    const hasValue = input.SecretString !== undefined || input.SecretBinary !== undefined;
    const value = hasValue ? valueOfInput(input) : undefined;
    const token = hasValue ? tokenOf(input.ClientRequestToken) : undefined;
    const secret = this.#create(name, {
      ...(typeof input.Description === 'string' ? { description: input.Description } : {}),
      ...(typeof input.KmsKeyId === 'string' ? { kmsKeyId: input.KmsKeyId } : {}),
      ...(Array.isArray(input.Tags) ? { tags: input.Tags as Array<{ Key: string; Value: string }> } : {}),
    });
    const versionId =
      value === undefined || token === undefined
        ? undefined
        : this.#putVersion(secret, value, token, undefined);
    return {
      ARN: secret.arn,
      Name: secret.name,
      ...(versionId === undefined ? {} : { VersionId: versionId }),
    };
  }

  #deleteSecret(input: Record<string, unknown>): unknown {
    const force = input.ForceDeleteWithoutRecovery === true;
    const window = input.RecoveryWindowInDays;
    if (force && window !== undefined) {
      throw new ApiError(
        'InvalidParameterException',
        "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
      );
    }
    const days = window === undefined ? 30 : window;
    if (!force && (typeof days !== 'number' || !Number.isInteger(days) || days < 7 || days > 30)) {
      throw new ApiError(
        'InvalidParameterException',
        'The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).',
      );
    }
    const secret = this.#find(input.SecretId, { allowDeleted: force });
    if (force) {
      this.#secrets.delete(secret.name);
      return { ARN: secret.arn, Name: secret.name, DeletionDate: nowSeconds() };
    }
    secret.deletedDate = nowSeconds();
    secret.recoveryDays = days as number;
    return {
      ARN: secret.arn,
      Name: secret.name,
      DeletionDate: secret.deletedDate + (days as number) * 86_400,
    };
  }

  #entryOf(secret: StoredSecretEntry): Record<string, unknown> {
    return {
      ARN: secret.arn,
      Name: secret.name,
      ...(secret.description === undefined ? {} : { Description: secret.description }),
      ...(secret.kmsKeyId === undefined ? {} : { KmsKeyId: secret.kmsKeyId }),
      LastChangedDate: secret.lastChangedDate,
      CreatedDate: secret.createdDate,
      ...(secret.deletedDate === undefined ? {} : { DeletedDate: secret.deletedDate }),
      ...(secret.tags.length === 0 ? {} : { Tags: secret.tags }),
    };
  }

  /** Names matching the `name` filters, sorted (the service sorts by creation; any fixed order will do). */
  #matching(filters: unknown, includeDeleted: boolean): string[] {
    const names = [...this.#secrets.values()]
      .filter((secret) => includeDeleted || secret.deletedDate === undefined)
      .map((secret) => secret.name)
      .sort();
    if (filters === undefined) return names;
    if (!Array.isArray(filters)) throw new ApiError('InvalidParameterException', 'Invalid filters.');
    let kept = names;
    for (const filter of filters as Array<{ Key?: unknown; Values?: unknown }>) {
      if (filter.Key !== 'name') {
        throw new ApiError('InvalidParameterException', 'Only the name filter is supported by this double.');
      }
      const values = filter.Values;
      if (!Array.isArray(values) || values.length < 1 || values.length > 10) {
        throw new ApiError('InvalidParameterException', 'Filter values must hold 1 to 10 items.');
      }
      for (const value of values) {
        if (typeof value !== 'string' || value.length > 512 || !/^!?[a-zA-Z0-9 :_@/+=.\-!]*$/.test(value)) {
          throw new ApiError('ValidationException', 'Filter value does not match the allowed pattern.');
        }
      }
      const positive = (values as string[]).filter((v) => !v.startsWith('!'));
      const negative = (values as string[]).filter((v) => v.startsWith('!')).map((v) => v.slice(1));
      kept = kept.filter(
        (name) =>
          (positive.length === 0 || positive.some((p) => name.startsWith(p))) &&
          !negative.some((n) => name.startsWith(n)),
      );
    }
    return kept;
  }

  /** One page of `names`, continuing from `token`. */
  #page(names: () => string[], token: unknown, maxResults: unknown, limit: number) {
    let all: readonly string[];
    let start = 0;
    if (token !== undefined) {
      const stored = typeof token === 'string' ? this.#pages.get(token.split(':')[0] as string) : undefined;
      if (stored === undefined || typeof token !== 'string') {
        throw new ApiError('InvalidNextTokenException', 'The NextToken value is invalid.');
      }
      all = stored;
      start = Number(token.split(':')[1]);
    } else all = names();
    const size = maxResults === undefined ? limit : Number(maxResults);
    if (!Number.isInteger(size) || size < 1 || size > limit) {
      throw new ApiError('InvalidParameterException', `MaxResults must be between 1 and ${limit}.`);
    }
    const page = all.slice(start, start + size);
    let next: string | undefined;
    if (start + size < all.length) {
      const id = randomUUID();
      this.#pages.set(id, all);
      if (this.#pages.size > 1000) this.#pages.delete(this.#pages.keys().next().value as string);
      next = `${id}:${start + size}`;
    }
    return { page, next };
  }

  #listSecrets(input: Record<string, unknown>): unknown {
    const include = input.IncludePlannedDeletion === true;
    const { page, next } = this.#page(
      () => this.#matching(input.Filters, include),
      input.NextToken,
      input.MaxResults,
      100,
    );
    const list = page
      .map((name) => this.#secrets.get(name))
      .filter((secret): secret is StoredSecretEntry => secret !== undefined)
      .map((secret) => ({ ...this.#entryOf(secret), SecretVersionsToStages: versionsToStages(secret) }));
    return { SecretList: list, ...(next === undefined ? {} : { NextToken: next }) };
  }

  #batchGet(input: Record<string, unknown>): unknown {
    const ids = input.SecretIdList;
    if ((ids === undefined) === (input.Filters === undefined)) {
      throw new ApiError(
        'InvalidParameterException',
        'You must include Filters or SecretIdList, but not both.',
      );
    }
    if (ids !== undefined) {
      if (!Array.isArray(ids) || ids.length < 1 || ids.length > MAX_BATCH_IDS) {
        throw new ApiError('InvalidParameterException', `SecretIdList must hold 1 to ${MAX_BATCH_IDS} ids.`);
      }
      if (input.MaxResults !== undefined) {
        throw new ApiError('InvalidParameterException', 'MaxResults can only be used with Filters.');
      }
    }
    const { page, next } = this.#page(
      () => (ids === undefined ? this.#matching(input.Filters, false) : [...new Set(ids as string[])]),
      input.NextToken,
      input.MaxResults,
      MAX_BATCH_IDS,
    );
    const values: unknown[] = [];
    const errors: unknown[] = [];
    for (const id of page) {
      try {
        values.push(this.#valueOf(this.#find(id), undefined, undefined));
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        errors.push({ SecretId: id, ErrorCode: error.type, Message: error.message });
      }
    }
    return { SecretValues: values, Errors: errors, ...(next === undefined ? {} : { NextToken: next }) };
  }
}

function versionsToStages(secret: StoredSecretEntry): Record<string, string[]> {
  const map: Record<string, string[]> = {};
  for (const [label, id] of secret.stages) {
    map[id] = [...(map[id] ?? []), label];
  }
  return map;
}

function stagesOfVersion(secret: StoredSecretEntry, versionId: string): string[] {
  return [...secret.stages].filter(([, id]) => id === versionId).map(([label]) => label);
}

function valueOfInput(input: Record<string, unknown>): { secretString?: string; secretBinary?: Buffer } {
  const { SecretString: text, SecretBinary: binary } = input;
  if ((text === undefined) === (binary === undefined)) {
    throw new ApiError('InvalidParameterException', 'You must provide either SecretString or SecretBinary.');
  }
  if (text !== undefined) {
    if (typeof text !== 'string' || Buffer.byteLength(text) > 65_536) {
      throw new ApiError(
        'InvalidParameterException',
        'SecretString must be a string of at most 65536 bytes.',
      );
    }
    return { secretString: text };
  }
  if (typeof binary !== 'string')
    throw new ApiError('SerializationException', 'SecretBinary must be base64.');
  return { secretBinary: Buffer.from(binary, 'base64') };
}

function toStored(value: string | Uint8Array): { secretString?: string; secretBinary?: Buffer } {
  return typeof value === 'string' ? { secretString: value } : { secretBinary: Buffer.from(value) };
}

function tokenOf(token: unknown): string {
  if (token === undefined) return randomUUID();
  if (typeof token !== 'string' || token.length < 32 || token.length > 64) {
    throw new ApiError('InvalidParameterException', 'ClientRequestToken must be 32 to 64 characters long.');
  }
  return token;
}

function randomSuffix(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  return [...randomBytes(6)].map((byte) => alphabet[byte % alphabet.length]).join('');
}

function nowSeconds(): number {
  return Date.now() / 1000;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
