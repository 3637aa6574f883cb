import { readFile } from 'node:fs/promises';
import {
  AccessDeniedError,
  InvalidConfigError,
  isSecretError,
  Secret,
  type SecretError,
  type SecretOperation,
} from '@secret-provider/core';
import { backoffDelay, type Clock, type Timer } from '@secret-provider/core/adapter';
import { isInvalidToken, isRecord } from './errors.js';
import type { Credential, NodeVaultClient, VaultAuthOptions } from './options.js';
import type { AuthSession, SessionSource, VaultTransport } from './transport.js';

/** Default file of a Kubernetes service-account token. */
export const DEFAULT_KUBERNETES_JWT_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token';

interface Session extends AuthSession {
  /** TTL (ms) the token was issued or last renewed with; the increment asked for on renewal. */
  ttlMs: number;
  renewable: boolean;
}

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
  readonly renewFraction: number;
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
 * Keeps a Vault token alive. Token auth looks the token up at start and renews it at the
 * configured fraction of its TTL while Vault lets it; it warns before a token that cannot be
 * renewed expires. AppRole and Kubernetes auth log in, renew while renewable, and log in again
 * before the token's end. A token Vault rejects (expired or revoked) gets one re-authentication,
 * shared by every request that saw the rejection; repeated failures back off instead of storming.
 */
export class AuthManager implements SessionSource {
  readonly #config: AuthManagerConfig;
  #current: Session | undefined;
  #pending: Promise<Session> | undefined;
  #generation = 0;
  #timer: Timer | undefined;
  #loginFailure: { error: SecretError; until: number; count: number } | undefined;
  #closed = false;
  /** Sessions whose rejection was already reported (once, however many requests saw it). */
  readonly #rejected = new WeakSet<AuthSession>();
  /** Logins (including token lookups) performed; for tests and stats. */
  logins = 0;
  renewals = 0;

  constructor(config: AuthManagerConfig) {
    this.#config = config;
  }

  /** The session in use, if any (never its token in output). */
  get current(): AuthSession | undefined {
    return this.#current;
  }

  get method(): string {
    return this.#config.auth.method;
  }

  async session(signal?: AbortSignal): Promise<AuthSession> {
    const current = this.#current;
    const now = this.#config.clock.now();
    if (current !== undefined && !current.invalid && (current.expiresAt === 0 || current.expiresAt > now))
      return current;
    if (
      current !== undefined &&
      !current.invalid &&
      current.expiresAt !== 0 &&
      this.#config.auth.method === 'token' &&
      !this.#config.auth.tokenFile
    ) {
      // A static token past its end: let Vault say so, so the caller gets its answer.
      return current;
    }
    signal?.throwIfAborted();
    return this.#login();
  }

  async reauthenticate(
    failed: AuthSession,
    context: { operation: SecretOperation; key?: string | undefined },
  ): Promise<AuthSession> {
    const current = this.#current;
    if (current !== undefined && current !== failed && !current.invalid) return current;
    const what = `${context.operation}${context.key === undefined ? '' : ` of "${context.key}"`}`;
    const { auth } = this.#config;
    const canLogIn = auth.method !== 'token' || auth.tokenFile !== undefined;
    // Every request that saw the rejection lands here; only the first one reports it.
    const first = !this.#rejected.has(failed);
    if (first) {
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
    if (!canLogIn) {
      throw new AccessDeniedError(
        { provider: this.#config.provider, key: context.key, operation: context.operation },
        `access denied: the Vault token was rejected (expired or revoked) during ${what} (provider "${this.#config.provider}")`,
      );
    }
    return this.#login();
  }

  /** Stops renewals. The token itself is left to expire (revoking it would revoke its leases). */
  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  // ---- login -----------------------------------------------------------------------------------

  #login(): Promise<Session> {
    if (this.#pending !== undefined) return this.#pending;
    const failure = this.#loginFailure;
    if (failure !== undefined && this.#config.clock.now() < failure.until)
      return Promise.reject(failure.error);
    this.#pending = this.#doLogin()
      .then(
        (session) => {
          this.#loginFailure = undefined;
          const previous = this.#current;
          this.#current = session;
          if (previous !== undefined && previous !== session && !previous.invalid) {
            previous.final = true;
            this.#config.onRetired(previous);
          }
          this.#schedule(session);
          return session;
        },
        (error: unknown) => {
          let mapped = isSecretError(error) ? error : this.#config.transport.map(error, 'auth');
          // A chain falls through on NOT_FOUND: a missing auth mount must not look like a missing secret.
          if (mapped.code === 'NOT_FOUND') {
            mapped = new InvalidConfigError(
              { provider: this.#config.provider, operation: 'auth', status: mapped.status, cause: mapped },
              `invalid configuration: Vault has no ${this.#config.auth.method} auth method at the configured path (provider "${this.#config.provider}")`,
            );
          }
          const count = (this.#loginFailure?.count ?? 0) + 1;
          // Refusing logins for a while keeps a fleet with bad credentials from hammering Vault.
          const wait = backoffDelay(count, { base: 1_000, max: 60_000, random: this.#config.random });
          this.#loginFailure = { error: mapped, count, until: this.#config.clock.now() + wait };
          throw mapped;
        },
      )
      .finally(() => {
        this.#pending = undefined;
      });
    return this.#pending;
  }

  async #doLogin(): Promise<Session> {
    const { auth, transport, client, clock } = this.#config;
    const startedAt = clock.now();
    this.logins++;
    if (auth.method === 'token') {
      const token = await this.#tokenValue();
      const body = await transport.call<LookupBody>({
        operation: 'auth',
        authenticated: false,
        token,
        send: (options) => client.tokenLookupSelf({ requestOptions: options }) as Promise<LookupBody>,
        accept: (answer) => isRecord(answer) && isRecord(answer.data),
      });
      const ttl = typeof body.data?.ttl === 'number' ? body.data.ttl * 1000 : 0;
      const renewable = body.data?.renewable === true;
      // Renewals ask for the token's period or creation TTL, not what happened to be left at lookup.
      const period = typeof body.data?.period === 'number' ? body.data.period * 1000 : 0;
      const creation = typeof body.data?.creation_ttl === 'number' ? body.data.creation_ttl * 1000 : 0;
      return this.#newSession(token, startedAt, ttl, renewable, period || creation || ttl);
    }
    const body = await transport.call<LoginBody>({
      operation: 'auth',
      authenticated: false,
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
    const ttl = typeof body.auth?.lease_duration === 'number' ? body.auth.lease_duration * 1000 : 0;
    return this.#newSession(token, startedAt, ttl, body.auth?.renewable === true);
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

  #newSession(
    token: string,
    startedAt: number,
    ttlMs: number,
    renewable: boolean,
    incrementMs = ttlMs,
  ): Session {
    return {
      token,
      generation: ++this.#generation,
      // Counted from before the request: the token cannot live longer than that.
      expiresAt: ttlMs > 0 ? startedAt + ttlMs : 0,
      final: ttlMs > 0 && !renewable,
      invalid: false,
      ttlMs: incrementMs,
      renewable,
    };
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  #schedule(session: Session): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    if (this.#closed || session.expiresAt === 0 || session !== this.#current) return;
    const { clock, random, renewFraction, jitter, auth } = this.#config;
    const remaining = session.expiresAt - clock.now();
    const delay = Math.max(0, remaining * renewFraction * (1 - jitter * random()));
    if (!session.final) {
      this.#timer = clock.setTimer(() => this.#renew(session), delay);
      return;
    }
    if (auth.method === 'token' && auth.tokenFile === undefined) {
      this.#timer = clock.setTimer(() => {
        if (session !== this.#current || this.#closed) return;
        this.#config.warn(
          'TOKEN_EXPIRING',
          `the Vault token cannot be renewed and expires at ${new Date(session.expiresAt).toISOString()}; give the provider a new token or a login method`,
        );
      }, delay);
      return;
    }
    // Log in again ahead of the end, leaving the rest of the token's life for leases it made to be replaced.
    this.#timer = clock.setTimer(() => this.#relogin(session), delay);
  }

  async #renew(session: Session): Promise<void> {
    if (this.#closed || session !== this.#current) return;
    const { transport, client, clock } = this.#config;
    const startedAt = clock.now();
    let invalid = false;
    let notRenewable = false;
    try {
      const body = await transport.call<LoginBody | null>({
        operation: 'auth',
        authenticated: false,
        token: session.token,
        retries: 0,
        send: (options) =>
          client.tokenRenewSelf({
            increment: Math.max(1, Math.round(session.ttlMs / 1000)),
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
      if (this.#closed || session !== this.#current) return;
      if (invalid) {
        session.invalid = true;
        this.#config.onInvalid(session);
        this.#config.warn(
          'TOKEN_REJECTED',
          'Vault rejected the token while renewing it (expired or revoked)',
        );
        if (this.#config.auth.method !== 'token' || this.#config.auth.tokenFile !== undefined)
          await this.#login().catch((e: unknown) => this.#reportError(e));
        return;
      }
      if (notRenewable || body === null) {
        session.final = true;
        this.#schedule(session);
        return;
      }
      const granted = typeof body.auth?.lease_duration === 'number' ? body.auth.lease_duration * 1000 : 0;
      this.renewals++;
      session.expiresAt = startedAt + granted;
      // Less than asked for: the token reached its max TTL and cannot be extended further.
      if (granted < session.ttlMs - 1000 || body.auth?.renewable === false || granted === 0)
        session.final = true;
      this.#schedule(session);
    } catch (error) {
      if (this.#closed || session !== this.#current) return;
      this.#reportError(error);
      const remaining = session.expiresAt - clock.now();
      const retryIn = Math.min(transport.retryDelay(3), remaining / 4);
      if (remaining > 2_000 && retryIn > 0) this.#timer = clock.setTimer(() => this.#renew(session), retryIn);
      else if (this.#config.auth.method !== 'token')
        this.#timer = clock.setTimer(() => this.#relogin(session), 0);
    }
  }

  async #relogin(session: Session): Promise<void> {
    if (this.#closed || session !== this.#current) return;
    try {
      await this.#login();
    } catch (error) {
      if (this.#closed) return;
      this.#reportError(error);
      const remaining = session.expiresAt - this.#config.clock.now();
      if (remaining > 0) {
        this.#timer = this.#config.clock.setTimer(
          () => this.#relogin(session),
          Math.max(500, Math.min(this.#config.transport.retryDelay(4), remaining / 4)),
        );
      }
    }
  }

  #reportError(error: unknown): void {
    this.#config.error(isSecretError(error) ? error : this.#config.transport.map(error, 'auth'));
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
