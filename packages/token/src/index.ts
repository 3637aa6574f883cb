export { createTokenFetch, type TokenFetch, type TokenFetchOptions, type TokenFetchSource } from './fetch.js';
export { fixedToken } from './fixed.js';
export type { IssuedToken, RenewedToken, RenewRequest, TokenIssuer, TokenRequest } from './issuer.js';
export { type JwtAlgorithm, type JwtIssuerOptions, jwtIssuer } from './jwt.js';
export { type ClientCredentialsOptions, clientCredentials } from './oauth2.js';
export {
  type CurrentToken,
  PROVIDER_NAME,
  TokenSource,
  type TokenSourceOptions,
  type TokenSourceStats,
} from './token-source.js';
