import { type ClientRequest, Agent as HttpAgent, type AgentOptions as HttpAgentOptions } from 'node:http';
import { Agent as HttpsAgent, type AgentOptions as HttpsAgentOptions } from 'node:https';
import { createSecureContext } from 'node:tls';
import { inspect } from 'node:util';
import {
  isSecretError,
  ProviderUnavailableError,
  RateLimitedError,
  type SecretError,
  type SecretOperation,
} from '@secret-provider/core';
import {
  type Clock,
  parseRetryAfter,
  type RequestRecord,
  raceSignal,
  retryDelay,
  sleep,
  traceRequest,
} from '@secret-provider/core/adapter';
import { describeFailure, isInvalidToken, isRetryable, mapFailure, type VaultFailure } from './errors.js';
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
  readonly expiresAt: number;
  /** Whether the token can no longer be extended (not renewable, capped at its max, or replaced). */
  readonly final: boolean;
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
  /** The API path (no values in it), published with the request: tells a lease renewal from a revocation. */
  readonly target?: string | undefined;
  /** Sends the request through node-vault with these per-request options. */
  readonly send: (options: RequestOptions, session: AuthSession | undefined) => Promise<T>;
  /** Send the session's token. @default true */
  readonly authenticated?: boolean | undefined;
  /** A token to send instead of the session's (token lookup and renewal). */
  readonly token?: string | undefined;
  /**
   * Whether a successful answer is one the caller understands (the shape of a Vault response).
   * One that is not (a proxy's HTML page, truncated JSON) rejects with `UNAVAILABLE`, never
   * passes as "nothing there". @default any answer
   */
  readonly accept?: ((body: unknown) => boolean) | undefined;
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
  /**
   * Read by the agents: correlation id -> token of a request in flight. When set, tokens are
   * added to requests by the agents, so they never sit in the request options that client
   * libraries print when debugging (follow-redirects under `DEBUG`, Node's `NODE_DEBUG=http`).
   * Without it (a client the provider did not create), tokens go in the request headers.
   */
  readonly tokens?: Map<string, string> | undefined;
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

  /**
   * The wait after the `failures`-th consecutive failure (core's back-off, from `baseDelayMs`
   * doubling to `maxDelayMs`, the upper half random), or exactly the `Retry-After` of `error`.
   */
  retryDelay(failures: number, error?: unknown): number {
    const { baseDelayMs, maxDelayMs, random } = this.#config;
    return retryDelay(failures, error, { base: baseDelayMs, max: maxDelayMs, random, retryAfterSpread: 0 });
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
      const token = spec.token ?? session?.token;
      if (token !== undefined && token !== '') {
        if (config.tokens !== undefined) config.tokens.set(correlationId, token);
        else headers['X-Vault-Token'] = token;
      }
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
        const sent = traceRequest(
          {
            provider: config.provider,
            operation: spec.operation,
            key: spec.key,
            target: spec.target,
            attempt,
          },
          (record) => {
            record.clientRequestId = correlationId;
            return this.#send(spec, options, session).then(
              (body) => describeAnswer(record, spec.operation, body),
              (error: unknown) => {
                record.status = describeFailure(error).status;
                throw error;
              },
            );
          },
        );
        const result = await raceSignal(sent, spec.signal);
        this.#consecutiveThrottles = 0;
        if (spec.accept !== undefined && !spec.accept(result)) throw this.#notUnderstood(spec);
        return result;
      } catch (error) {
        if (spec.signal?.aborted && error === spec.signal.reason) throw error;
        if (isSecretError(error)) throw error;
        original = error;
        failure = describeFailure(error, config.retryAfter.get(correlationId));
      } finally {
        config.retryAfter.delete(correlationId);
        config.tokens?.delete(correlationId);
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
        const wait = this.retryDelay(this.#consecutiveThrottles, mapped);
        this.#blockedUntil = Math.max(this.#blockedUntil, config.clock.now() + wait);
      } else if (failure.status !== undefined) this.#consecutiveThrottles = 0;
      if (attempt >= retries || !isRetryable(failure, spec.idempotent ?? true)) throw mapped;
      let delay = this.retryDelay(attempt + 1);
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

  #notUnderstood(spec: CallSpec<unknown>): SecretError {
    const { provider } = this.#config;
    const key = spec.key === undefined ? '' : ` "${spec.key}"`;
    // The body is not quoted: it may be anything, a value included.
    return new ProviderUnavailableError(
      { provider, key: spec.key, operation: spec.operation },
      `Vault unavailable: ${spec.operation}${key} (provider "${provider}"): the answer is not a Vault response (an HTML page or truncated JSON, perhaps from a proxy)`,
    );
  }

  /** Maps any error the way `call` does (for code that talks to node-vault outside `call`). */
  map(error: unknown, operation: SecretOperation, key?: string): SecretError {
    return mapFailure(error, describeFailure(error), { provider: this.#config.provider, operation, key });
  }
}

/**
 * What a published request record may tell of a Vault answer: its `request_id` (joins Vault's
 * audit log), the status, and lease and token lifetimes. node-vault resolves only 200 and 204
 * answers, and drops the status: a body means 200.
 */
function describeAnswer<T>(record: RequestRecord, operation: SecretOperation, body: T): T {
  record.status = body === undefined || body === null || body === '' ? 204 : 200;
  if (typeof body !== 'object' || body === null) return body;
  const answer = body as {
    request_id?: unknown;
    lease_id?: unknown;
    lease_duration?: unknown;
    auth?: { lease_duration?: unknown } | null;
    data?: { ttl?: unknown } | null;
  };
  if (typeof answer.request_id === 'string') record.correlationId = answer.request_id;
  if (
    typeof answer.lease_id === 'string' &&
    answer.lease_id !== '' &&
    typeof answer.lease_duration === 'number'
  )
    record.leaseDurationS = answer.lease_duration;
  const tokenTtl =
    typeof answer.auth?.lease_duration === 'number'
      ? answer.auth.lease_duration
      : operation === 'auth' && typeof answer.data?.ttl === 'number'
        ? answer.data.ttl
        : undefined;
  // A TTL of 0 is a token that does not expire.
  if (tokenTtl !== undefined && tokenTtl > 0) record.tokenTtlS = tokenTtl;
  return body;
}

type AgentWithAddRequest = { addRequest(req: ClientRequest, options: unknown): void };

/**
 * Records the `Retry-After` of throttled responses by correlation id, and adds the token of the
 * request. node-vault drops response headers, so an agent (passed with each request, and used
 * by axios for redirects too) is the one place that sees them. `addRequest` is how `http.Agent`
 * receives every request, after follow-redirects and Node (`NODE_DEBUG`) have printed its
 * options and before its headers are written: a token set here is in neither printout.
 */
function observe(
  agent: HttpAgent,
  header: string,
  sink: Map<string, number>,
  tokens: ReadonlyMap<string, string> | undefined,
): void {
  // Client libraries print request options, which hold the agent; inspected deeply (`DEBUG_DEPTH`)
  // its pooled sockets lead to earlier requests and the headers they wrote, tokens included.
  Object.defineProperty(agent, inspect.custom, {
    value: () => `${agent.constructor.name} { secret-provider vault agent }`,
  });
  const target = agent as unknown as AgentWithAddRequest;
  const original = target.addRequest.bind(agent);
  target.addRequest = (req: ClientRequest, options: unknown) => {
    const id = req.getHeader(header);
    if (typeof id === 'string') {
      const token = tokens?.get(id);
      if (token !== undefined && !req.headersSent) req.setHeader('X-Vault-Token', token);
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

/** An HTTP agent with keep-alive that records Retry-After headers and adds tokens. */
export function createHttpAgent(
  header: string,
  sink: Map<string, number>,
  tokens?: ReadonlyMap<string, string>,
  options: HttpAgentOptions = {},
): HttpAgent {
  const agent = new HttpAgent({ keepAlive: true, ...options });
  observe(agent, header, sink, tokens);
  return agent;
}

/**
 * An HTTPS agent (verification on unless told otherwise) that records Retry-After headers and
 * adds tokens. Certificates and the client key go into a TLS secure context made here, not
 * into the agent's options: Node names pooled connections after those options and prints the
 * name under `NODE_DEBUG=http`/`https`, PEM text included.
 */
export function createHttpsAgent(
  header: string,
  sink: Map<string, number>,
  tokens?: ReadonlyMap<string, string>,
  options: HttpsAgentOptions = {},
): HttpsAgent {
  const { ca, cert, key, ...rest } = options;
  const material = {
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
  };
  const agent = new HttpsAgent({
    keepAlive: true,
    ...rest,
    ...(Object.keys(material).length === 0 ? {} : { secureContext: createSecureContext(material) }),
  });
  observe(agent as unknown as HttpAgent, header, sink, tokens);
  return agent;
}
