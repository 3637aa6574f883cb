import { createPrivateKey, type KeyObject, randomUUID, sign } from 'node:crypto';
import { InvalidConfigError } from '@secret-provider/core';
import { type CredentialReference, CredentialSource } from '@secret-provider/http/transport';
import type { IssuedToken, TokenIssuer, TokenRequest } from './issuer.js';

/** JWS algorithms signed through `node:crypto`. */
export type JwtAlgorithm = 'RS256' | 'ES256';

/** Options of {@link jwtIssuer}. */
export interface JwtIssuerOptions {
  /** Where the private key (PEM: PKCS#8, PKCS#1 or SEC1) is held: `{ provider: vault, key: 'svc/signing-key' }`. */
  readonly privateKey: CredentialReference;
  readonly algorithm: JwtAlgorithm;
  /** The `kid` header, naming the key to the verifier. */
  readonly keyId?: string | undefined;
  /**
   * Claims of every token (`iss`, `sub`, `aud`, `scope`, ...). `iat`, `exp` and `jti` are set
   * for each token and cannot be given here.
   */
  readonly claims?: Readonly<Record<string, unknown>> | undefined;
}

const RESERVED = ['iat', 'exp', 'jti'];
const PROVIDER = 'token';

const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/**
 * Tokens signed here (RFC 7519 JWTs, JWS compact form) with a private key that another provider
 * holds. Each token gets `iat`, `exp` (now plus the source's lifetime) and a random `jti`. When
 * the key's provider reports the key rotated, the key is read again and a new token signed.
 * RS256 is RSASSA-PKCS1-v1_5 with SHA-256; ES256 is ECDSA on P-256 with SHA-256, its signature
 * in the JWS form (r || s).
 */
export function jwtIssuer(options: JwtIssuerOptions): TokenIssuer {
  const { algorithm } = options;
  if (algorithm !== 'RS256' && algorithm !== 'ES256') {
    throw new InvalidConfigError(
      { provider: PROVIDER },
      'invalid configuration: algorithm must be RS256 or ES256',
    );
  }
  const reserved = Object.keys(options.claims ?? {}).filter((claim) => RESERVED.includes(claim));
  if (reserved.length > 0) {
    throw new InvalidConfigError(
      { provider: PROVIDER },
      `invalid configuration: the claims ${reserved.join(', ')} are set for each token and cannot be given`,
    );
  }
  const header = encode({
    alg: algorithm,
    typ: 'JWT',
    ...(options.keyId === undefined ? {} : { kid: options.keyId }),
  });
  const claims = { ...options.claims };
  let listener: (() => void) | undefined;
  const credential = new CredentialSource(options.privateKey, { onChange: () => listener?.() });
  // The parsed key is kept per reading of the credential: parsing costs more than signing.
  let parsed: { generation: number; key: KeyObject } | undefined;

  const keyFor = async (request: TokenRequest): Promise<KeyObject> => {
    const read = await credential.credential(
      { provider: request.provider, operation: 'refresh' },
      request.signal,
    );
    if (parsed?.generation === read.generation) return parsed.key;
    const key = parsePrivateKey(read.token, algorithm, request.provider);
    parsed = { generation: read.generation, key };
    return key;
  };

  return {
    kind: `jwt ${algorithm}`,
    refreshable: true,
    onChange(callback) {
      listener = callback;
      credential.watch();
    },
    async issue(request): Promise<IssuedToken> {
      const key = await keyFor(request);
      const iat = Math.floor(request.now / 1000);
      const exp = Math.floor((request.now + request.lifetimeMs) / 1000);
      const input = `${header}.${encode({ ...claims, iat, exp, jti: randomUUID() })}`;
      const signature = sign(
        'sha256',
        Buffer.from(input),
        algorithm === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key,
      );
      return { value: `${input}.${signature.toString('base64url')}`, expiresAt: exp * 1000 };
    },
    close: () => credential.close(),
  };
}

/** The key as a `KeyObject` of the algorithm's type; a refusal says why, never what the text held. */
function parsePrivateKey(text: string, algorithm: JwtAlgorithm, provider: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: text, format: 'pem' });
  } catch {
    // OpenSSL's message is dropped: it is about the text, which is the secret.
    throw new InvalidConfigError(
      { provider, operation: 'refresh' },
      `invalid configuration: the signing key is not a PEM private key (provider "${provider}")`,
    );
  }
  const type = key.asymmetricKeyType;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const fits = algorithm === 'RS256' ? type === 'rsa' : type === 'ec' && curve === 'prime256v1';
  if (!fits) {
    throw new InvalidConfigError(
      { provider, operation: 'refresh' },
      `invalid configuration: ${algorithm} needs ${algorithm === 'RS256' ? 'an RSA key' : 'a P-256 EC key'}, the signing key is ${type ?? 'of another kind'}${curve === undefined ? '' : ` (${curve})`} (provider "${provider}")`,
    );
  }
  return key;
}
