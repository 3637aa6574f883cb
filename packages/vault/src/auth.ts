import { readFile } from 'node:fs/promises';
import { inspect } from 'node:util';
import {
  AccessDeniedError,
  createEmitter,
  InvalidConfigError,
  isSecretError,
  Secret,
  type SecretError,
  type SecretOperation,
} from '@secret-provider/core';
import type { Clock } from '@secret-provider/core/adapter';
import {
  type CurrentToken,
  type IssuedToken,
  type RenewedToken,
  type RenewRequest,
  type TokenIssuer,
  type TokenRequest,
  TokenSource,
  type TokenSourceStats,
} from '@secret-provider/token';
import { isInvalidToken, isRecord } from './errors.js';
import type { Credential, NodeVaultClient, VaultAuthOptions } from './options.js';
import type { AuthSession, SessionSource, VaultTransport } from './transport.js';

/** Default file of a Kubernetes service-account token. */
export const DEFAULT_KUBERNETES_JWT_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export interface AuthManagerConfig {
  readonly provider: string;
  readonly auth: VaultAuthOptions;
  /** `VAULT_TOKEN` from the environment, for token auth without an explicit token. */
  readonly envToken: string | undefined;
  readonly transport: VaultTransport;
  readonly client: NodeVaultClient;
  /** The provider created the client: keep node-vault's own token field empty. */
  readonly ownsClient: boolean;
  readonly clock: Clock;
  readonly random: () => number;
  /** `tokenRenewFraction`: renew (or log in again) once this fraction of the token's TTL has passed. */
  readonly renewFraction: number;
  /** Fraction of the wait removed at random from each renewal time. */
  readonly jitter: number;
  readonly warn: (code: string, message: string) => void;
  readonly error: (error: SecretError) => void;
  /** A session was replaced: it will not be renewed again and ends at its `expiresAt`. */
  readonly onRetired: (session: AuthSession) => void;
  /** Vault rejected a session's token: everything it created (leases) is gone. */
  readonly onInvalid: (session: AuthSession) => void;
}

const reveal = (credential: Credential): string =>
  Secret.isSecret(credential) ? credential.reveal() : credential;

interface LoginBody {
  auth?: { client_token?: unknown; lease_duration?: unknown; renewable?: unknown };
  warnings?: unknown;
}

interface LookupBody {
  data?: { ttl?: unknown; creation_ttl?: unknown; renewable?: unknown; period?: unknown };
}

/**
 * One token the token source issued, as the transport and the leases see it. Its end and
 * whether it can still be extended are read from the source while it is the source's token,
 * so renewals move them; once replaced, they stay as they were.
 */
class Session implements AuthSession {
  readonly token: string;
  readonly generation: number;
  invalid = false;
  readonly #source: TokenSource;
  #expiresAt: number;
  #renewable: boolean;
  #retired = false;

  constructor(source: TokenSource, held: CurrentToken) {
    this.#source = source;
    this.token = held.token.reveal();
    this.generation = held.generation;
    this.#expiresAt = held.expiresAt?.getTime() ?? 0;
    this.#renewable = held.renewable;
  }

  get expiresAt(): number {
    this.#follow();
    return this.#expiresAt;
  }

  get final(): boolean {
    this.#follow();
    return this.#retired || (this.#expiresAt !== 0 && !this.#renewable);
  }

  retire(): void {
    this.#follow();
    this.#retired = true;
  }

  #follow(): void {
    if (this.#retired) return;
    const held = this.#source.peek();
    if (held === undefined || held.generation !== this.generation) return;
    this.#expiresAt = held.expiresAt?.getTime() ?? 0;
    this.#renewable = held.renewable;
  }

  // Never the token in output.
  toJSON(): Record<string, unknown> {
    return {
      generation: this.generation,
      expiresAt: this.expiresAt,
      final: this.final,
      invalid: this.invalid,
    };
  }

  [inspect.custom](): string {
    return `VaultSession ${JSON.stringify(this.toJSON())}`;
  }
}

/**
 * Vault authentication on the product's one token lifecycle, {@link TokenSource}: its issuer
 * logs in (AppRole, Kubernetes, a token file) or looks the given token up, and renews tokens in
 * place with `renew-self`; the source decides when (at `tokenRenewFraction` of each TTL, with
 * jitter), shares one refresh among callers, logs in again when a token cannot be renewed, and
 * backs off after refused logins. A token that can neither be renewed nor replaced (token auth
 * without a file) is kept to its end with a `TOKEN_EXPIRING` warning.
 *
 * What stays here is what Vault's leases need: each issued token is a session (its generation),
 * leases are told when one is replaced or rejected, and a rejection is reported once however
 * many requests saw it.
 */
export class AuthManager implements SessionSource {
  readonly #config: AuthManagerConfig;
  readonly #source: TokenSource;
  #current: Session | undefined;
  /** Renewal increment (ms) of the last issued token: its period or creation TTL. */
  #increment: { token: string; ms: number } | undefined;
  /** Sessions whose rejection was already reported (once, however many requests saw it). */
  readonly #rejected = new WeakSet<AuthSession>();
  /** Logins (including token lookups) attempted; for tests and stats. */
  logins = 0;

  constructor(config: AuthManagerConfig) {
    this.#config = config;
    const { auth, renewFraction, jitter } = config;
    const canLogIn = auth.method !== 'token' || auth.tokenFile !== undefined;
    const issuer: TokenIssuer = {
      kind: auth.method === 'token' ? 'Vault token' : `Vault ${auth.method} login`,
      refreshable: canLogIn,
      issue: (request) => this.#login(request),
      renew: (request) => this.#renewSelf(request),
    };
    this.#source = new TokenSource({
      issuer,
      name: `${config.provider}/token`,
      clock: config.clock,
      random: config.random,
      // tokenRenewFraction f maps onto the source's margin per token: (1 - f) × the TTL it was
      // issued or last renewed with. The source's jitter is a fraction of that margin; this keeps
      // the spread Vault had (jitter × f × TTL).
      renewFraction,
      refreshJitter: renewFraction >= 1 ? 0 : Math.min(1, (jitter * renewFraction) / (1 - renewFraction)),
      // Vault, not the client, decides a token's TTL: no clamping, no warning about long ones.
      minLifetime: 1_000,
      maxLifetime: Number.MAX_SAFE_INTEGER,
      // Refusing logins for a while keeps a fleet with bad credentials from hammering Vault.
      issueBackoff: { base: 1_000, max: 60_000 },
    });
    const emitter = createEmitter();
    emitter.on('rotated', () => void this.#sync());
    emitter.on('warning', (event) => {
      // Vault tells of a token it cannot replace by TOKEN_EXPIRING (and TOKEN_REJECTED), as before.
      if (event.code !== 'TOKEN_NOT_REFRESHABLE') config.warn(event.code, event.message);
    });
    emitter.on('error', (event) => config.error(event.error));
    this.#source.watch(emitter);
  }

  /** The session in use, if any (never its token in output). */
  get current(): AuthSession | undefined {
    return this.#sync();
  }

  get method(): string {
    return this.#config.auth.method;
  }

  /** Renewals in place (the token source's count). */
  get renewals(): number {
    return this.#source.stats().renewals;
  }

  /** The token source's counters. */
  stats(): TokenSourceStats {
    return this.#source.stats();
  }

  async session(signal?: AbortSignal): Promise<AuthSession> {
    let session = this.#sync(await this.#source.acquire({ signal }));
    if (session.invalid) {
      // Rejected, and the login that followed failed or is under way: another (shared, held back
      // after failures) for a source that can log in; token auth cannot.
      if (!this.#source.refreshable) throw this.#deadToken('auth');
      session = this.#sync(await this.#source.rejected(session.generation, { signal }));
    }
    return session;
  }

  async reauthenticate(
    failed: AuthSession,
    context: { operation: SecretOperation; key?: string | undefined },
  ): Promise<AuthSession> {
    const current = this.#sync();
    if (current !== undefined && current !== failed && !current.invalid) return current;
    const what = `${context.operation}${context.key === undefined ? '' : ` of "${context.key}"`}`;
    const canLogIn = this.#source.refreshable;
    // Every request that saw the rejection lands here; only the first one reports it.
    if (!this.#rejected.has(failed)) {
      this.#rejected.add(failed);
      failed.invalid = true;
      if (current === failed) this.#config.onInvalid(failed);
      this.#config.warn(
        'TOKEN_REJECTED',
        canLogIn
          ? `Vault rejected the token (expired or revoked) during ${what}; authenticating again and retrying once`
          : `Vault rejected the token (expired or revoked) during ${what}; token auth cannot log in again`,
      );
    }
    if (!canLogIn) throw this.#deadToken(context.operation, context.key, what);
    return this.#sync(await this.#source.rejected(failed.generation));
  }

  /** Stops renewals. The token itself is left to expire (revoking it would revoke its leases). */
  async close(): Promise<void> {
    await this.#source.close();
  }

  // ---- sessions --------------------------------------------------------------------------------

  /** The session of the source's token; a replaced one is retired (its leases told). */
  #sync(): Session | undefined;
  #sync(held: CurrentToken): Session;
  #sync(held: CurrentToken | undefined = this.#source.peek()): Session | undefined {
    const previous = this.#current;
    if (held === undefined || previous?.generation === held.generation) return previous;
    const session = new Session(this.#source, held);
    this.#current = session;
    if (previous !== undefined) {
      previous.retire();
      if (!previous.invalid) this.#config.onRetired(previous);
    }
    return session;
  }

  #deadToken(operation: SecretOperation, key?: string, what: string = operation): SecretError {
    const { provider } = this.#config;
    return new AccessDeniedError(
      { provider, key, operation },
      `access denied: the Vault token was rejected (expired or revoked) during ${what} (provider "${provider}")`,
    );
  }

  /** Vault refused the token while renewing it: its session and leases are gone. */
  #renewRejected(token: string): void {
    const session = this.#sync();
    if (session === undefined || session.token !== token || this.#rejected.has(session)) return;
    this.#rejected.add(session);
    session.invalid = true;
    this.#config.onInvalid(session);
    this.#config.warn('TOKEN_REJECTED', 'Vault rejected the token while renewing it (expired or revoked)');
  }

  // ---- the issuer ------------------------------------------------------------------------------

  /** A login (or a lookup of the given token): the source's `issue`. */
  async #login(request: TokenRequest): Promise<IssuedToken> {
    try {
      const { token, ttlMs, renewable, incrementMs } = await this.#authenticate(request.signal);
      this.#increment = { token, ms: incrementMs };
      // Counted from before the request: the token cannot live longer than that.
      return ttlMs > 0
        ? { value: token, expiresAt: request.now + ttlMs, renewable }
        : { value: token, expiresAt: undefined, expires: false, renewable: false };
    } catch (error) {
      let mapped = isSecretError(error) ? error : this.#config.transport.map(error, 'auth');
      // A chain falls through on NOT_FOUND: a missing auth mount must not look like a missing secret.
      if (mapped.code === 'NOT_FOUND') {
        mapped = new InvalidConfigError(
          { provider: this.#config.provider, operation: 'auth', status: mapped.status, cause: mapped },
          `invalid configuration: Vault has no ${this.#config.auth.method} auth method at the configured path (provider "${this.#config.provider}")`,
        );
      }
      throw mapped;
    }
  }

  async #authenticate(
    signal: AbortSignal,
  ): Promise<{ token: string; ttlMs: number; renewable: boolean; incrementMs: number }> {
    const { auth, transport, client } = this.#config;
    this.logins++;
    if (auth.method === 'token') {
      const token = await this.#tokenValue();
      const body = await transport.call<LookupBody>({
        operation: 'auth',
        authenticated: false,
        token,
        signal,
        send: (options) => client.tokenLookupSelf({ requestOptions: options }) as Promise<LookupBody>,
        accept: (answer) => isRecord(answer) && isRecord(answer.data),
      });
      // What is left of the token, rounded to the second: up to half a second may be missing.
      const ttlMs = typeof body.data?.ttl === 'number' && body.data.ttl > 0 ? body.data.ttl * 1000 - 500 : 0;
      // Renewals ask for the token's period or creation TTL, not what happened to be left at lookup.
      const period = typeof body.data?.period === 'number' ? body.data.period * 1000 : 0;
      const creation = typeof body.data?.creation_ttl === 'number' ? body.data.creation_ttl * 1000 : 0;
      return {
        token,
        ttlMs,
        renewable: body.data?.renewable === true,
        incrementMs: period || creation || ttlMs,
      };
    }
    const body = await transport.call<LoginBody>({
      operation: 'auth',
      authenticated: false,
      signal,
      accept: (answer) => isRecord(answer) && isRecord(answer.auth),
      send: async (options) => {
        if (auth.method === 'approle') {
          const secretId =
            auth.secretIdFile !== undefined
              ? await readCredentialFile(auth.secretIdFile, 'AppRole secret id', this.#config.provider)
              : auth.secretId === undefined
                ? undefined
                : reveal(auth.secretId);
          return client.approleLogin({
            role_id: reveal(auth.roleId),
            ...(secretId === undefined ? {} : { secret_id: secretId }),
            mount_point: auth.mount ?? 'approle',
            requestOptions: options,
          }) as Promise<LoginBody>;
        }
        const jwt = await readCredentialFile(
          auth.jwtFile ?? DEFAULT_KUBERNETES_JWT_FILE,
          'Kubernetes service-account token',
          this.#config.provider,
        );
        return client.kubernetesLogin({
          role: auth.role,
          jwt,
          mount_point: auth.mount ?? 'kubernetes',
          requestOptions: options,
        }) as Promise<LoginBody>;
      },
    });
    // node-vault stores the new token in the client; a client the provider owns keeps none, so
    // no request can go out with a token the provider did not choose.
    if (this.#config.ownsClient) client.token = '';
    const token = body.auth?.client_token;
    if (typeof token !== 'string' || token === '') {
      throw new AccessDeniedError(
        { provider: this.#config.provider, operation: 'auth' },
        `access denied: Vault returned no token on login (provider "${this.#config.provider}")`,
      );
    }
    const ttlMs = typeof body.auth?.lease_duration === 'number' ? body.auth.lease_duration * 1000 : 0;
    return { token, ttlMs, renewable: body.auth?.renewable === true, incrementMs: ttlMs };
  }

  async #tokenValue(): Promise<string> {
    const auth = this.#config.auth as Extract<VaultAuthOptions, { method: 'token' }>;
    if (auth.tokenFile !== undefined)
      return readCredentialFile(auth.tokenFile, 'Vault token', this.#config.provider);
    const token = auth.token === undefined ? this.#config.envToken : reveal(auth.token);
    if (token === undefined || token === '') {
      throw new InvalidConfigError(
        { provider: this.#config.provider, operation: 'auth' },
        `invalid configuration: no Vault token (give auth.token, auth.tokenFile or VAULT_TOKEN) (provider "${this.#config.provider}")`,
      );
    }
    return token;
  }

  /**
   * `renew-self` of the source's token: the source's `renew`. `undefined` when Vault will not
   * extend it (not renewable, past its max TTL); `ACCESS_DENIED` when Vault rejected it.
   */
  async #renewSelf(request: RenewRequest): Promise<RenewedToken | undefined> {
    const { transport, client } = this.#config;
    const token = request.token.reveal();
    const incrementMs =
      this.#increment?.token === token
        ? this.#increment.ms
        : Math.max(1_000, request.expiresAt - request.now);
    let invalid = false;
    let notRenewable = false;
    const body = await transport.call<LoginBody | null>({
      operation: 'auth',
      authenticated: false,
      token,
      retries: 0,
      signal: request.signal,
      send: (options) =>
        client.tokenRenewSelf({
          increment: Math.max(1, Math.round(incrementMs / 1000)),
          requestOptions: options,
        }) as Promise<LoginBody>,
      accept: (answer) => isRecord(answer) && isRecord(answer.auth),
      onFailure: (failure) => {
        if (isInvalidToken(failure)) invalid = true;
        else if (
          failure.status === 400 &&
          failure.errors.some((e) => /not renewable|past the max TTL/.test(e))
        )
          notRenewable = true;
        else return undefined;
        return null;
      },
    });
    if (this.#config.ownsClient) client.token = '';
    if (invalid) {
      this.#renewRejected(token);
      throw new AccessDeniedError(
        { provider: this.#config.provider, operation: 'auth' },
        `access denied: Vault rejected the token while renewing it (provider "${this.#config.provider}")`,
      );
    }
    if (notRenewable || body === null) return undefined;
    const granted = typeof body.auth?.lease_duration === 'number' ? body.auth.lease_duration * 1000 : 0;
    // Less than asked for: the token reached its max TTL and cannot be extended further.
    const capped = granted < incrementMs - 1000 || body.auth?.renewable === false || granted === 0;
    return { expiresAt: request.now + granted, renewable: !capped };
  }
}

async function readCredentialFile(path: string, what: string, provider: string): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw new InvalidConfigError(
      { provider, operation: 'auth', cause: error },
      `invalid configuration: cannot read the ${what} file${typeof code === 'string' ? ` (${code})` : ''} (provider "${provider}")`,
    );
  }
}
