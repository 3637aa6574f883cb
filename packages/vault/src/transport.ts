import { type ClientRequest, Agent as HttpAgent, type AgentOptions as HttpAgentOptions } from 'node:http';
import { Agent as HttpsAgent, type AgentOptions as HttpsAgentOptions } from 'node:https';
import {
  isSecretError,
  RateLimitedError,
  type SecretError,
  type SecretOperation,
} from '@secret-provider/core';
import { type Clock, raceSignal, sleep } from '@secret-provider/core/adapter';
import {
  describeFailure,
  isInvalidToken,
  isRetryable,
  mapFailure,
  parseRetryAfter,
  type VaultFailure,
} from './errors.js';
import type { NodeVaultClient } from './options.js';

/** What the provider passes node-vault for one request (merged into axios' request config). */
export interface RequestOptions {
  readonly headers: Record<string, string>;
  readonly timeout: number;
  readonly httpAgent?: HttpAgent | undefined;
  readonly httpsAgent?: HttpsAgent | undefined;
}

/** A token in use, and what is known of its life. */
export interface AuthSession {
  readonly token: string;
  /** Increases with each login or token change. */
  readonly generation: number;
  /** Epoch ms the token expires; 0 when it does not. Moves with renewals. */
  expiresAt: number;
  /** Set once the token can no longer be extended (not renewable, capped at its max, or replaced). */
  final: boolean;
  /** Set when Vault rejected the token (expired or revoked): what it created is gone. */
  invalid: boolean;
}

/** The auth side the transport needs: a live session, and one re-authentication on an invalid token. */
export interface SessionSource {
  session(signal?: AbortSignal): Promise<AuthSession>;
  /** Called when Vault rejects `failed` as invalid; resolves a new session or rejects with ACCESS_DENIED. */
  reauthenticate(
    failed: AuthSession,
    context: { operation: SecretOperation; key?: string | undefined },
  ): Promise<AuthSession>;
}

export interface CallSpec<T> {
  readonly operation: SecretOperation;
  readonly key?: string | undefined;
  /** Sends the request through node-vault with these per-request options. */
  readonly send: (options: RequestOptions, session: AuthSession | undefined) => Promise<T>;
  /** Send the session's token. @default true */
  readonly authenticated?: boolean | undefined;
  /** Retries allowed (background work passes 0 and reschedules itself). @default the configured retries */
  readonly retries?: number | undefined;
  /** Whether a request that may have reached Vault can be sent again. @default true */
  readonly idempotent?: boolean | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Maps the failure; for callers that treat some statuses (404, lease errors) themselves. */
  readonly onFailure?: ((failure: VaultFailure, error: unknown) => T | undefined) | undefined;
}

export interface TransportConfig {
  readonly provider: string;
  readonly client: NodeVaultClient;
  readonly clock: Clock;
  readonly random: () => number;
  readonly correlationHeader: string;
  readonly correlationId: () => string;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly maxRetryAfterMs: number;
  /** Agents to pass with each request; `undefined` leaves node-vault's own. */
  readonly agents: { http?: HttpAgent | undefined; https?: HttpsAgent | undefined };
  /** Filled by the agents: correlation id -> Retry-After (ms) of its response. */
  readonly retryAfter: Map<string, number>;
}

/**
 * Sends requests through node-vault with a fresh correlation id and the current token, maps
 * every failure to the taxonomy (no node-vault or axios error leaves this class), retries 429
 * (after `Retry-After` when given, else jittered exponential back-off), 503/502 and connection
 * errors with bounded jittered back-off, and re-authenticates once on an invalid token.
 */
export class VaultTransport {
  readonly #config: TransportConfig;
  #sessions: SessionSource | undefined;
  /** Requests sent, by outcome class; for stats. */
  readonly counters = { requests: 0, retries: 0, reauthentications: 0, rateLimited: 0, heldBack: 0 };
  /** Until when Vault asked this client to hold off (429), epoch ms on the provider's clock. */
  #blockedUntil = 0;
  #consecutiveThrottles = 0;

  constructor(config: TransportConfig) {
    this.#config = config;
  }

  get client(): NodeVaultClient {
    return this.#config.client;
  }

  set sessions(source: SessionSource) {
    this.#sessions = source;
  }

  /** Back-off before attempt `attempt + 1`: exponential from the base, half of it random. */
  backoff(attempt: number): number {
    const { baseDelayMs, maxDelayMs, random } = this.#config;
    const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** attempt);
    return ceiling / 2 + (ceiling / 2) * random();
  }

  /**
   * How long (ms) Vault asked this client to hold off, as of now: after a 429 the provider sends
   * nothing until then (the `Retry-After`, or a back-off growing with consecutive 429s), so that
   * neither retries nor other requests of the same instance keep hitting a throttled Vault.
   */
  heldBackFor(): number {
    return Math.max(0, this.#blockedUntil - this.#config.clock.now());
  }

  /** Runs one logical request with retries; resolves its result or rejects with a `SecretError`. */
  async call<T>(spec: CallSpec<T>): Promise<T> {
    const config = this.#config;
    const retries = spec.retries ?? config.retries;
    const authenticated = spec.authenticated ?? true;
    let reauthenticated = false;
    for (let attempt = 0; ; attempt++) {
      const hold = this.heldBackFor();
      if (hold > 0) {
        // Waiting longer than allowed inline (or at all, for background work) helps nobody: the
        // caller, or a cache holding a stale value, decides.
        if (hold > config.maxRetryAfterMs || retries === 0) {
          this.counters.heldBack++;
          throw new RateLimitedError(
            {
              provider: config.provider,
              key: spec.key,
              operation: spec.operation,
              retryAfterMs: hold,
              status: 429,
            },
            `rate limited: ${spec.operation}${spec.key === undefined ? '' : ` "${spec.key}"`} (provider "${config.provider}"): Vault asked to wait ${Math.ceil(hold)} ms more`,
          );
        }
        if (!(await sleep(hold, spec.signal, config.clock))) throw spec.signal?.reason;
      }
      let session: AuthSession | undefined;
      if (authenticated) {
        if (this.#sessions === undefined) throw new Error('no session source');
        session = await this.#sessions.session(spec.signal);
      }
      const correlationId = config.correlationId();
      // X-Vault-Request is what Vault's own clients send; a Vault Agent or Proxy may require it.
      const headers: Record<string, string> = {
        [config.correlationHeader]: correlationId,
        'X-Vault-Request': 'true',
      };
      if (session !== undefined && session.token !== '') headers['X-Vault-Token'] = session.token;
      const options: RequestOptions = {
        headers,
        timeout: config.timeoutMs,
        ...(config.agents.http ? { httpAgent: config.agents.http } : {}),
        ...(config.agents.https ? { httpsAgent: config.agents.https } : {}),
      };
      this.counters.requests++;
      let failure: VaultFailure;
      let original: unknown;
      try {
        const result = await raceSignal(this.#send(spec, options, session), spec.signal);
        this.#consecutiveThrottles = 0;
        return result;
      } catch (error) {
        if (spec.signal?.aborted && error === spec.signal.reason) throw error;
        if (isSecretError(error)) throw error;
        original = error;
        failure = describeFailure(error, config.retryAfter.get(correlationId));
      } finally {
        config.retryAfter.delete(correlationId);
      }
      const handled = spec.onFailure?.(failure, original);
      if (handled !== undefined) return handled;
      const context = { provider: config.provider, operation: spec.operation, key: spec.key };
      if (
        session !== undefined &&
        isInvalidToken(failure) &&
        !reauthenticated &&
        this.#sessions !== undefined
      ) {
        // One re-authentication and one more try; a second rejection is final.
        reauthenticated = true;
        this.counters.reauthentications++;
        session.invalid = true;
        await this.#sessions.reauthenticate(session, context);
        attempt--;
        continue;
      }
      const mapped = mapFailure(original, failure, context);
      if (failure.status === 429) {
        this.counters.rateLimited++;
        this.#consecutiveThrottles++;
        const wait = failure.retryAfterMs ?? this.backoff(this.#consecutiveThrottles - 1);
        this.#blockedUntil = Math.max(this.#blockedUntil, config.clock.now() + wait);
      } else if (failure.status !== undefined) this.#consecutiveThrottles = 0;
      if (attempt >= retries || !isRetryable(failure, spec.idempotent ?? true)) throw mapped;
      let delay = this.backoff(attempt);
      if (failure.status === 429) {
        // Waiting longer than allowed inline helps nobody: let the caller (or a cache) decide.
        const hold = this.heldBackFor();
        if (hold > config.maxRetryAfterMs) throw mapped;
        delay = Math.max(delay, hold);
      }
      this.counters.retries++;
      if (!(await sleep(delay, spec.signal, config.clock))) throw spec.signal?.reason ?? mapped;
    }
  }

  async #send<T>(spec: CallSpec<T>, options: RequestOptions, session: AuthSession | undefined): Promise<T> {
    // Errors thrown synchronously by node-vault (argument checks) become rejections here.
    return spec.send(options, session);
  }

  /** Maps any error the way `call` does (for code that talks to node-vault outside `call`). */
  map(error: unknown, operation: SecretOperation, key?: string): SecretError {
    return mapFailure(error, describeFailure(error), { provider: this.#config.provider, operation, key });
  }
}

type AgentWithAddRequest = { addRequest(req: ClientRequest, options: unknown): void };

/**
 * Records the `Retry-After` of throttled responses by correlation id. node-vault drops response
 * headers, so an agent (passed with each request, and used by axios for redirects too) is the
 * one place that sees them. `addRequest` is how `http.Agent` receives every request.
 */
function observe(agent: HttpAgent, header: string, sink: Map<string, number>): void {
  const target = agent as unknown as AgentWithAddRequest;
  const original = target.addRequest.bind(agent);
  target.addRequest = (req: ClientRequest, options: unknown) => {
    const id = req.getHeader(header);
    if (typeof id === 'string') {
      req.once('response', (res) => {
        const value = res.headers['retry-after'];
        if ((res.statusCode === 429 || res.statusCode === 503) && typeof value === 'string') {
          const ms = parseRetryAfter(value);
          if (ms !== undefined) sink.set(id, ms);
        }
      });
    }
    original(req, options);
  };
}

/** An HTTP agent with keep-alive that records Retry-After headers. */
export function createHttpAgent(
  header: string,
  sink: Map<string, number>,
  options: HttpAgentOptions = {},
): HttpAgent {
  const agent = new HttpAgent({ keepAlive: true, ...options });
  observe(agent, header, sink);
  return agent;
}

/** An HTTPS agent (verification on unless told otherwise) that records Retry-After headers. */
export function createHttpsAgent(
  header: string,
  sink: Map<string, number>,
  options: HttpsAgentOptions = {},
): HttpsAgent {
  const agent = new HttpsAgent({ keepAlive: true, ...options });
  observe(agent as unknown as HttpAgent, header, sink);
  return agent;
}
