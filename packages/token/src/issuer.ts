import type { Secret } from '@secret-provider/core';
import type { Clock } from '@secret-provider/core/adapter';

/** What a {@link TokenIssuer} is asked for. */
export interface TokenRequest {
  /** The lifetime to ask for, in ms, already clamped into the source's bounds. */
  readonly lifetimeMs: number;
  /** Epoch ms on the source's clock when the request starts. */
  readonly now: number;
  /** The source's clock, for deadlines. */
  readonly clock: Clock;
  /** Aborts when the source closes. */
  readonly signal: AbortSignal;
  /** The source's name, for errors. */
  readonly provider: string;
  /** Why a token is made: the first, one close to its end, one a server refused, one whose inputs changed. */
  readonly reason: 'first' | 'expiring' | 'rejected' | 'changed';
}

/** A token as an issuer made it. */
export interface IssuedToken {
  readonly value: string | Secret<string>;
  /**
   * Epoch ms when it stops being valid. `undefined`: the issuer cannot tell (a fixed token, or a
   * token endpoint that sent no `expires_in`).
   */
  readonly expiresAt: number | undefined;
  /**
   * `false`: the issuer knows this token does not expire (a Vault token with a TTL of 0); it is
   * kept until a server refuses it, instead of being assumed to last the requested lifetime.
   */
  readonly expires?: boolean | undefined;
  /** Whether {@link TokenIssuer.renew} may extend this token. @default true when the issuer can renew */
  readonly renewable?: boolean | undefined;
  /** Epoch ms past which no renewal can extend it (a max TTL); `undefined`: not known. */
  readonly maxExpiresAt?: number | undefined;
}

/** What {@link TokenIssuer.renew} is asked to extend. */
export interface RenewRequest extends Omit<TokenRequest, 'reason'> {
  /** The token to extend in place. */
  readonly token: Secret<string>;
  /** When it expires now. */
  readonly expiresAt: number;
}

/** The outcome of a renewal: the same token with a new end. */
export interface RenewedToken {
  readonly expiresAt: number;
  /**
   * Whether it can be renewed again. When not said, a grant more than a second short of the
   * lifetime asked for means the token reached its ceiling.
   */
  readonly renewable?: boolean | undefined;
  readonly maxExpiresAt?: number | undefined;
}

/**
 * Makes tokens for a {@link TokenSource}: signs them, asks a token endpoint, or hands back one
 * given token. The source decides when; the issuer only makes one when asked. Its errors are
 * `SecretError`s that name no value.
 */
export interface TokenIssuer {
  /** What kind of token this is, for output (`jwt RS256`, `oauth2 client credentials`). */
  readonly kind: string;
  /** Whether asking again can give a new token (a fixed token cannot). */
  readonly refreshable: boolean;
  issue(request: TokenRequest): Promise<IssuedToken>;
  /**
   * Extends the same token in place (Vault's `renew-self`). Resolves `undefined` when the server
   * refuses (max TTL reached, not renewable); an `ACCESS_DENIED` error means the token is gone.
   * Either way the source issues a new token instead (or, for an issuer that cannot make new
   * tokens, keeps this one to its end with a `TOKEN_EXPIRING` warning). Unless the issuer says
   * `renewable`, a grant shorter than asked means the token reached its ceiling: it is not renewed again.
   */
  renew?(request: RenewRequest): Promise<RenewedToken | undefined>;
  /**
   * Registers the function to call when what tokens are made from has changed (a signing key
   * rotated in its provider): tokens already made should be made again. Called once by the source.
   */
  onChange?(listener: () => void): void;
  /** Releases what the issuer holds (a watch on another provider). */
  close?(): Promise<void>;
}
