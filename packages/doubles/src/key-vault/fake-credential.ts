import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import { ALL_PERMISSIONS, type KeyVaultDouble, type KeyVaultPermission } from './key-vault-double.js';

/**
 * A `TokenCredential` that gets its tokens from a {@link KeyVaultDouble} instead of Entra ID.
 * It counts calls and remembers the scopes asked for, so tests can check the challenge flow.
 */
export class FakeCredential implements TokenCredential {
  readonly #double: KeyVaultDouble;
  readonly #permissions: readonly KeyVaultPermission[];
  readonly #lifetimeMs: number;
  /** Scopes of every `getToken` call, in order. */
  readonly scopes: string[][] = [];
  /** Tokens handed out, so leak scans can look for them. */
  readonly issued: string[] = [];
  /** When set, `getToken` rejects with this (a credential that cannot authenticate). */
  failWith: Error | undefined;

  constructor(
    double: KeyVaultDouble,
    options: { permissions?: readonly KeyVaultPermission[]; lifetimeMs?: number } = {},
  ) {
    this.#double = double;
    this.#permissions = options.permissions ?? ALL_PERMISSIONS;
    this.#lifetimeMs = options.lifetimeMs ?? 3_600_000;
  }

  get calls(): number {
    return this.scopes.length;
  }

  async getToken(scopes: string | string[], _options?: GetTokenOptions): Promise<AccessToken | null> {
    this.scopes.push(Array.isArray(scopes) ? [...scopes] : [scopes]);
    if (this.failWith !== undefined) throw this.failWith;
    const expiresOnTimestamp = Date.now() + this.#lifetimeMs;
    const token = this.#double.issueToken(this.#permissions, expiresOnTimestamp);
    this.issued.push(token);
    return { token, expiresOnTimestamp, tokenType: 'Bearer' };
  }

  /** Makes the double reject every token handed out so far. */
  revokeAll(): void {
    for (const token of this.issued) this.#double.revokeToken(token);
  }
}
