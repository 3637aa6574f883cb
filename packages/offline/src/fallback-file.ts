// The fallback file: a versioned header, then every stored entry (names and values alike) as one
// AES-256-GCM ciphertext authenticated together with the header.
//
//   offset  size  field
//   0       4     magic "SPOF"
//   4       1     format version (1)
//   5       1     key derivation: 0 the key as given, 1 HKDF-SHA256 of it with the salt
//   6       16    salt (zeros without derivation)
//   22      12    IV, fresh and random for every write
//   34      n     ciphertext of the JSON record, padded with spaces to a multiple of 1 KiB
//   34+n    16    GCM tag
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { FallbackUnreadableReason } from './errors.js';

const MAGIC = Buffer.from('SPOF', 'latin1');
export const FORMAT_VERSION = 1;
const SALT_BYTES = 16;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = MAGIC.length + 2 + SALT_BYTES + IV_BYTES;
/** The plaintext is padded to this, so the file's size tells little about the values' lengths. */
const PAD_TO = 1024;
const HKDF_INFO = Buffer.from('secret-provider offline fallback v1', 'latin1');
export const KEY_BYTES = 32;

/** How the file key comes from the key material. */
export type KeyDerivation = 'none' | 'hkdf-sha256';
const DERIVATION_IDS: Record<KeyDerivation, number> = { none: 0, 'hkdf-sha256': 1 };

/** One key's last good value, as the backend gave it. Times are epoch ms. */
export interface StoredEntry {
  readonly value: string;
  readonly storedAt: number;
  readonly version?: string | undefined;
  readonly updatedAt?: number | undefined;
  readonly expiresAt?: number | undefined;
}

/** A decoding failure; carries no part of the file. */
export class DecodeFailure extends Error {
  constructor(readonly reason: FallbackUnreadableReason) {
    super(reason);
  }
}

function fileKey(material: Buffer, derivation: KeyDerivation, salt: Buffer): Buffer {
  return derivation === 'none'
    ? material
    : Buffer.from(hkdfSync('sha256', material, salt, HKDF_INFO, KEY_BYTES));
}

/** The file's bytes for `entries`, under a fresh IV (and a fresh salt when deriving). */
export function encodeFallback(
  entries: ReadonlyMap<string, StoredEntry>,
  material: Buffer,
  derivation: KeyDerivation,
): Buffer {
  const record = {
    entries: [...entries].map(([key, entry]) => ({
      k: key,
      v: entry.value,
      t: entry.storedAt,
      ...(entry.version === undefined ? {} : { ver: entry.version }),
      ...(entry.updatedAt === undefined ? {} : { upd: entry.updatedAt }),
      ...(entry.expiresAt === undefined ? {} : { exp: entry.expiresAt }),
    })),
  };
  const json = Buffer.from(JSON.stringify(record), 'utf8');
  const plaintext = Buffer.alloc(Math.ceil((json.length + 1) / PAD_TO) * PAD_TO, 0x20);
  json.copy(plaintext);
  json.fill(0);
  const salt = derivation === 'none' ? Buffer.alloc(SALT_BYTES) : randomBytes(SALT_BYTES);
  const iv = randomBytes(IV_BYTES);
  const header = Buffer.concat([MAGIC, Buffer.from([FORMAT_VERSION, DERIVATION_IDS[derivation]]), salt, iv]);
  const key = fileKey(material, derivation, salt);
  try {
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(header);
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([header, body, cipher.getAuthTag()]);
  } finally {
    plaintext.fill(0);
    if (key !== material) key.fill(0);
  }
}

/**
 * The entries of a fallback file. Nothing is returned unless the whole file authenticates.
 * @throws {DecodeFailure} for a file of another format or version, or one that fails authentication.
 */
export function decodeFallback(bytes: Buffer, material: Buffer): Map<string, StoredEntry> {
  if (bytes.length < HEADER_BYTES + TAG_BYTES || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new DecodeFailure('format');
  }
  const version = bytes[MAGIC.length];
  const derivationId = bytes[MAGIC.length + 1];
  const derivation = (Object.keys(DERIVATION_IDS) as KeyDerivation[]).find(
    (name) => DERIVATION_IDS[name] === derivationId,
  );
  if (version !== FORMAT_VERSION || derivation === undefined) throw new DecodeFailure('version');
  const header = bytes.subarray(0, HEADER_BYTES);
  const salt = header.subarray(MAGIC.length + 2, MAGIC.length + 2 + SALT_BYTES);
  const iv = header.subarray(HEADER_BYTES - IV_BYTES);
  const key = fileKey(material, derivation, salt);
  let plaintext: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAAD(header);
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    plaintext = Buffer.concat([
      decipher.update(bytes.subarray(HEADER_BYTES, bytes.length - TAG_BYTES)),
      decipher.final(),
    ]);
  } catch {
    throw new DecodeFailure('authentication');
  } finally {
    if (key !== material) key.fill(0);
  }
  try {
    return parseRecord(plaintext.toString('utf8'));
  } finally {
    plaintext.fill(0);
  }
}

function parseRecord(text: string): Map<string, StoredEntry> {
  let record: unknown;
  try {
    record = JSON.parse(text);
  } catch {
    // V8's message would quote the plaintext: nothing of it is kept.
    throw new DecodeFailure('format');
  }
  const list = (record as { entries?: unknown } | null)?.entries;
  if (!Array.isArray(list)) throw new DecodeFailure('format');
  const entries = new Map<string, StoredEntry>();
  for (const item of list as Array<Record<string, unknown>>) {
    const { k, v, t, ver, upd, exp } = item ?? {};
    if (typeof k !== 'string' || typeof v !== 'string' || !isTime(t)) throw new DecodeFailure('format');
    entries.set(k, {
      value: v,
      storedAt: t,
      ...(typeof ver === 'string' ? { version: ver } : {}),
      ...(isTime(upd) ? { updatedAt: upd } : {}),
      ...(isTime(exp) ? { expiresAt: exp } : {}),
    });
  }
  return entries;
}

function isTime(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}
