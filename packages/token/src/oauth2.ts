import {
  AccessDeniedError,
  InvalidConfigError,
  ProviderUnavailableError,
  type SecretError,
} from '@secret-provider/core';
import {
  type CredentialReference,
  CredentialSource,
  type RequestContext,
  sendRequest,
  statusError,
} from '@secret-provider/http/transport';
import type { IssuedToken, TokenIssuer } from './issuer.js';

/** Options of {@link clientCredentials}. Durations in milliseconds. */
export interface ClientCredentialsOptions {
  /** The authorization server's token endpoint. */
  readonly tokenUrl: string | URL;
  readonly clientId: string;
  /** Where the client secret is held: `{ provider: vault, key: 'svc/client-secret' }`. */
  readonly clientSecret: CredentialReference;
  /** The `scope` parameter; a list is joined with spaces. */
  readonly scope?: string | readonly string[] | undefined;
  /**
   * How the client authenticates (RFC 6749 §2.3.1): HTTP Basic (which every server must
   * support) or `client_id`/`client_secret` in the form body. @default 'basic'
   */
  readonly authentication?: 'basic' | 'body' | undefined;
  /** More form parameters (`audience`, `resource`); they cannot replace the ones above. */
  readonly parameters?: Readonly<Record<string, string>> | undefined;
  /** The whole exchange must end within this. @default 10_000 */
  readonly timeoutMs?: number | undefined;
  /** Longest answer accepted. @default 65_536 */
  readonly maxBytes?: number | undefined;
  /** An undici `Dispatcher` for `fetch` (TLS options, a proxy). */
  readonly dispatcher?: unknown;
}

/** RFC 6749 §5.2 error codes: the only part of an error body kept. */
const REFUSALS = new Set(['invalid_client', 'invalid_grant', 'unauthorized_client']);
const MISCONFIGURED = new Set(['invalid_request', 'unsupported_grant_type', 'invalid_scope']);
const RESERVED = new Set(['grant_type', 'scope', 'client_id', 'client_secret']);

/** `application/x-www-form-urlencoded` for RFC 6749's Basic credentials (§2.3.1, Appendix B). */
const formEncode = (value: string): string => new URLSearchParams({ v: value }).toString().slice(2);

/**
 * OAuth2 client credentials grant (RFC 6749 §4.4): a form-encoded `POST` of
 * `grant_type=client_credentials` to the token endpoint, authenticated with the client id and
 * a client secret another provider holds (re-read when that provider reports it rotated, or
 * after the server refused it). The answer's `access_token` and `expires_in` make the token.
 *
 * Error bodies are untrusted: of a refusal only the `error` code is kept, and only if it is one
 * of RFC 6749's: `invalid_client`, `invalid_grant`, `unauthorized_client` reject with
 * `ACCESS_DENIED`; `invalid_request`, `unsupported_grant_type`, `invalid_scope` with
 * `INVALID_CONFIG`. `429` is `RATE_LIMITED` with its `Retry-After`; anything else, or an answer
 * that is not a bearer token, is `UNAVAILABLE`.
 */
export function clientCredentials(options: ClientCredentialsOptions): TokenIssuer {
  let url: URL;
  try {
    url = new URL(options.tokenUrl);
  } catch {
    throw new InvalidConfigError({ provider: 'token' }, 'invalid configuration: tokenUrl is not a URL');
  }
  if (url.username !== '' || url.password !== '') {
    throw new InvalidConfigError(
      { provider: 'token' },
      'invalid configuration: tokenUrl must not contain credentials (user:password@)',
    );
  }
  if (typeof options.clientId !== 'string' || options.clientId === '') {
    throw new InvalidConfigError({ provider: 'token' }, 'invalid configuration: clientId is required');
  }
  const clashing = Object.keys(options.parameters ?? {}).filter((name) => RESERVED.has(name));
  if (clashing.length > 0) {
    throw new InvalidConfigError(
      { provider: 'token' },
      `invalid configuration: parameters cannot set ${clashing.join(', ')}`,
    );
  }
  const scope = Array.isArray(options.scope)
    ? options.scope.join(' ')
    : (options.scope as string | undefined);
  const authentication = options.authentication ?? 'basic';
  const secret = new CredentialSource(options.clientSecret);

  return {
    kind: 'oauth2 client credentials',
    refreshable: true,
    async issue(request): Promise<IssuedToken> {
      const context: RequestContext = { provider: request.provider, operation: 'auth' };
      const credential = await secret.credential(context, request.signal);
      const form = new URLSearchParams({ grant_type: 'client_credentials' });
      if (scope !== undefined && scope !== '') form.set('scope', scope);
      for (const [name, value] of Object.entries(options.parameters ?? {})) form.set(name, value);
      const headers: Record<string, string> = {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      };
      if (authentication === 'basic') {
        const pair = `${formEncode(options.clientId)}:${formEncode(credential.token)}`;
        headers.authorization = `Basic ${Buffer.from(pair).toString('base64')}`;
      } else {
        form.set('client_id', options.clientId);
        form.set('client_secret', credential.token);
      }
      const { clock } = request;
      const startedAt = request.now;
      const answer = await sendRequest({
        url,
        method: 'POST',
        headers,
        body: form.toString(),
        signal: request.signal,
        timeoutMs: options.timeoutMs ?? 10_000,
        maxBytes: options.maxBytes ?? 65_536,
        clock,
        dispatcher: options.dispatcher,
        context,
      });
      const body = parseJson(answer.body);
      if (answer.status !== 200) {
        const error = refusal(answer, body, context, clock.now());
        // A refused client secret is read again next time: it may have been replaced meanwhile.
        if (error.code === 'ACCESS_DENIED') secret.refused(credential.generation);
        throw error;
      }
      const token = field(body, 'access_token');
      const type = field(body, 'token_type');
      if (
        typeof token !== 'string' ||
        token === '' ||
        typeof type !== 'string' ||
        type.toLowerCase() !== 'bearer'
      ) {
        throw new ProviderUnavailableError(
          { ...context, status: answer.status },
          `the token endpoint's answer holds no bearer access_token (provider "${request.provider}")`,
        );
      }
      const expiresIn = Number(field(body, 'expires_in'));
      const known = field(body, 'expires_in') !== undefined && Number.isFinite(expiresIn) && expiresIn > 0;
      return { value: token, expiresAt: known ? startedAt + expiresIn * 1000 : undefined };
    },
    close: () => secret.close(),
  };
}

function refusal(
  answer: { status: number; headers: Headers },
  body: unknown,
  context: RequestContext,
  now: number,
): SecretError {
  const code = field(body, 'error');
  const suffix = `(HTTP ${answer.status}, provider "${context.provider}")`;
  if ((answer.status === 400 || answer.status === 401) && typeof code === 'string') {
    if (REFUSALS.has(code))
      return new AccessDeniedError(
        { ...context, status: answer.status },
        `access denied: the token endpoint refused the client (${code}) ${suffix}`,
      );
    if (MISCONFIGURED.has(code))
      return new InvalidConfigError(
        { ...context, status: answer.status },
        `invalid configuration: the token endpoint refused the request (${code}) ${suffix}`,
      );
  }
  if (answer.status === 400) {
    return new ProviderUnavailableError(
      { ...context, status: 400 },
      `the token endpoint answered 400 without an RFC 6749 error code ${suffix}`,
    );
  }
  return statusError(answer, context, now, 'the token request');
}

/** The body as JSON, or `undefined`: a parser's message quotes the input, so none is kept. */
function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    return undefined;
  }
}

function field(body: unknown, name: string): unknown {
  return typeof body === 'object' && body !== null && !Array.isArray(body)
    ? (body as Record<string, unknown>)[name]
    : undefined;
}
