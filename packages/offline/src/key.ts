import { InvalidConfigError, Secret, type SecretProvider } from '@secret-provider/core';
import { KEY_BYTES, type KeyDerivation } from './fallback-file.js';

/**
 * Where the fallback file's key comes from.
 *
 * - a `Uint8Array` of 32 bytes;
 * - a `Secret`: a `Uint8Array` of 32 bytes, or a string of 32 bytes in hex (64 digits) or base64;
 * - `{ env: 'NAME' }`: an environment variable holding 32 bytes in hex or base64, read at
 *   construction;
 * - `{ provider, key }`: a secret of another provider, in hex or base64, read when the file is
 *   first needed. That provider must not depend on the backend this fallback stands in for (an
 *   `EnvProvider`, a `FileProvider` on a mounted secret).
 *
 * With `keyDerivation: 'hkdf-sha256'` the material is used as bytes (a string as its UTF-8, not
 * decoded), may be longer than 32 bytes but not shorter, and the file key is derived from it
 * with HKDF-SHA256 and a random salt kept in the file's header. HKDF does not slow down guessing:
 * the material must be random (a generated token), never a human password.
 */
export type OfflineFallbackKey =
  | Uint8Array
  | Secret<string>
  | Secret<Uint8Array>
  | { readonly env: string }
  | { readonly provider: SecretProvider; readonly key: string };

interface KeyContext {
  readonly provider: string;
  readonly derivation: KeyDerivation;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** The key material now (a `Buffer`), or the function that fetches it later. */
export function keyMaterialOf(
  source: OfflineFallbackKey,
  context: KeyContext,
): Buffer | ((signal?: AbortSignal) => Promise<Buffer>) {
  if (source instanceof Uint8Array) return checked(Buffer.from(source), 'the key', context);
  if (source instanceof Secret) {
    const value = source.reveal();
    return typeof value === 'string'
      ? fromText(value, 'the key', context)
      : checked(Buffer.from(value), 'the key', context);
  }
  if (typeof source === 'object' && source !== null && 'env' in source && typeof source.env === 'string') {
    const text = context.env[source.env];
    if (text === undefined || text.length === 0) {
      throw new InvalidConfigError(
        { provider: context.provider },
        `the offline fallback key variable "${source.env}" is not set (provider "${context.provider}")`,
      );
    }
    return fromText(text, `the variable "${source.env}"`, context);
  }
  if (
    typeof source === 'object' &&
    source !== null &&
    'provider' in source &&
    typeof source.provider?.get === 'function' &&
    typeof source.key === 'string'
  ) {
    const { provider, key } = source;
    return async (signal) => {
      const secret = await provider.get(key, signal === undefined ? undefined : { signal });
      return fromText(secret.reveal(), `the secret "${key}" of "${provider.name}"`, context);
    };
  }
  throw new InvalidConfigError(
    { provider: context.provider },
    `the offline fallback key must be a Uint8Array, a Secret, { env } or { provider, key } (provider "${context.provider}")`,
  );
}

function fromText(text: string, what: string, context: KeyContext): Buffer {
  if (context.derivation !== 'none') return checked(Buffer.from(text, 'utf8'), what, context);
  const trimmed = text.trim();
  let bytes: Buffer | undefined;
  if (/^[0-9a-fA-F]+$/.test(trimmed) && trimmed.length === KEY_BYTES * 2) bytes = Buffer.from(trimmed, 'hex');
  else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) {
    const decoded = Buffer.from(
      trimmed,
      trimmed.includes('-') || trimmed.includes('_') ? 'base64url' : 'base64',
    );
    if (decoded.length === KEY_BYTES) bytes = decoded;
    else decoded.fill(0);
  }
  if (bytes === undefined) {
    throw new InvalidConfigError(
      { provider: context.provider },
      `${what} must hold a ${KEY_BYTES}-byte offline fallback key as ${KEY_BYTES * 2} hex digits or base64 (provider "${context.provider}")`,
    );
  }
  return bytes;
}

function checked(bytes: Buffer, what: string, context: KeyContext): Buffer {
  const ok = context.derivation === 'none' ? bytes.length === KEY_BYTES : bytes.length >= KEY_BYTES;
  if (!ok) {
    bytes.fill(0);
    throw new InvalidConfigError(
      { provider: context.provider },
      context.derivation === 'none'
        ? `${what} must be a ${KEY_BYTES}-byte offline fallback key (AES-256) (provider "${context.provider}")`
        : `${what} must hold at least ${KEY_BYTES} bytes of key material for HKDF (provider "${context.provider}")`,
    );
  }
  return bytes;
}
