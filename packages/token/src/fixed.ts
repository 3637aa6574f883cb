import { InvalidConfigError, Secret } from '@secret-provider/core';
import type { TokenIssuer } from './issuer.js';

/**
 * One token given by the user (an API key, a personal access token). It works as any other, but
 * cannot be refreshed: the source warns so (`TOKEN_NOT_REFRESHABLE`) when it is first used, and
 * a server's refusal of it rejects with `ACCESS_DENIED` instead of being retried.
 */
export function fixedToken(token: string | Secret<string>): TokenIssuer {
  const held = Secret.isSecret(token) ? (token as Secret<string>) : new Secret(token);
  if (typeof held.reveal() !== 'string' || held.reveal() === '') {
    throw new InvalidConfigError({ provider: 'token' }, 'invalid configuration: the fixed token is empty');
  }
  return {
    kind: 'fixed token',
    refreshable: false,
    issue: async () => ({ value: held.reveal(), expiresAt: undefined }),
  };
}
