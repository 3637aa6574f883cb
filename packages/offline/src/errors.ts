import { SecretError, type SecretErrorDetails } from '@secret-provider/core';

/**
 * The backend is unavailable and the offline fallback holds `key`, but stored too long ago
 * (beyond `maxAge`, or beyond the caller's `maxAge`) or past the value's own expiry. No value is
 * served. Code `UNAVAILABLE` (retryable: the backend may come back), so that chains and callers
 * treat it as the outage it is; the backend's failure is the `cause`.
 */
export class FallbackTooOldError extends SecretError {
  /** When the backend last gave the stored value. */
  readonly storedAt: Date;
  /** The age limit that refused it, in ms (`undefined` when the value's expiry did). */
  readonly maxAge: number | undefined;
  /** The value's own expiry, when that refused it. */
  readonly expiresAt: Date | undefined;

  constructor(
    details: SecretErrorDetails,
    facts: { storedAt: Date; maxAge?: number | undefined; expiresAt?: Date | undefined },
  ) {
    const why =
      facts.maxAge === undefined
        ? `it expired at ${facts.expiresAt?.toISOString()}`
        : `it was stored at ${facts.storedAt.toISOString()}, more than ${facts.maxAge} ms ago`;
    super(
      'UNAVAILABLE',
      `the backend is unavailable and the offline fallback of "${details.key ?? ''}" is too old to serve: ${why} (provider "${details.provider ?? ''}")`,
      details,
    );
    this.name = 'FallbackTooOldError';
    this.storedAt = facts.storedAt;
    this.maxAge = facts.maxAge;
    this.expiresAt = facts.expiresAt;
  }
}

/** Why an offline fallback file could not be used. */
export type FallbackUnreadableReason =
  /** Not a file of this format (another file at the path, or truncated below its header). */
  | 'format'
  /** A format version this release does not read (written by a newer one). */
  | 'version'
  /** Authentication failed: the file was altered, or the key is not the one it was written with. */
  | 'authentication'
  /** The key could not be had (its source failed or gave no valid key). */
  | 'key';

const EXPLANATIONS: Record<FallbackUnreadableReason, string> = {
  format: 'it is not an offline fallback file',
  version: 'its format version is not supported by this release',
  authentication:
    'authentication failed: the file was altered, or the key is not the one it was written with',
  key: 'its key could not be obtained',
};

/**
 * The offline fallback file cannot be used (see {@link FallbackUnreadableReason}); nothing of it
 * is served. Code `UNAVAILABLE`: it is reported when the backend is unavailable too (the backend's
 * failure is then the `cause`), or as an `error` event while the backend answers, which it goes on
 * serving; the next write replaces the file.
 */
export class FallbackUnreadableError extends SecretError {
  readonly reason: FallbackUnreadableReason;
  /** The fallback file. */
  readonly path: string;

  constructor(details: SecretErrorDetails, reason: FallbackUnreadableReason, path: string) {
    super(
      'UNAVAILABLE',
      `the offline fallback file "${path}" cannot be used: ${EXPLANATIONS[reason]} (provider "${details.provider ?? ''}")`,
      details,
    );
    this.name = 'FallbackUnreadableError';
    this.reason = reason;
    this.path = path;
  }
}
