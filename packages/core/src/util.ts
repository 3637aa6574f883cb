import { type Clock, systemClock, type Timer } from './clock.js';
import { InvalidKeyError, InvalidValueError, SecretTimeoutError } from './errors.js';
import { Secret, type SecretValue } from './secret.js';

/** Keys already found free of control characters (a pure property of the string), bounded. */
const cleanKeys = new Set<string>();
const CLEAN_KEYS_MAX = 1_024;

/** Default longest key accepted by {@link validateKey}. */
export const DEFAULT_MAX_KEY_LENGTH = 1024;

/**
 * Rejects keys that cannot name a secret anywhere: non-strings, empty, longer than `maxLength`,
 * or holding NUL or other control characters. Adapters add their own rules on top.
 * @throws {InvalidKeyError}
 */
export function validateKey(key: unknown, provider?: string, maxLength = DEFAULT_MAX_KEY_LENGTH): string {
  if (typeof key !== 'string') {
    throw new InvalidKeyError({ provider }, `invalid key: expected a string, got ${typeof key}`);
  }
  if (key.length === 0) throw new InvalidKeyError({ provider }, 'invalid key: empty');
  if (key.length > maxLength) {
    // The key is not quoted: a caller may have passed a value by mistake.
    throw new InvalidKeyError(
      { provider },
      `invalid key: ${key.length} characters, at most ${maxLength} allowed`,
    );
  }
  // Keys are few and read again and again (a chain checks each key once per layer): a key seen
  // free of control characters is remembered, so the scan runs once per key, not once per call.
  if (cleanKeys.has(key)) return key;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this rejects
  if (/[\u0000-\u001f\u007f]/.test(key)) {
    throw new InvalidKeyError({ provider }, 'invalid key: contains NUL or another control character');
  }
  if (cleanKeys.size >= CLEAN_KEYS_MAX) cleanKeys.clear();
  cleanKeys.add(key);
  return key;
}

/** Accepts a string or a `Secret<string>` and returns the string; anything else is rejected. */
export function valueToString(value: unknown, provider: string, key: string): string {
  if (typeof value === 'string') return value;
  if (Secret.isSecret(value)) {
    const inner: SecretValue = value.reveal();
    if (typeof inner === 'string') return inner;
    return Buffer.from(inner).toString('utf8');
  }
  throw new InvalidValueError({ provider, key }, `invalid value for "${key}": expected a string or a Secret`);
}

let fingerprintKey: Buffer | undefined;

/**
 * A version id for backends that have none (environment, files): an HMAC of the value under a
 * key that lives only in this process. Equal values give equal ids; the id reveals nothing else,
 * even for short values, so it may appear in events.
 */
export function fingerprint(value: string | Uint8Array): string {
  const crypto = process.getBuiltinModule('node:crypto');
  fingerprintKey ??= crypto.randomBytes(32);
  return crypto.createHmac('sha256', fingerprintKey).update(value).digest('base64url').slice(0, 22);
}

/** Rejects with the signal's reason if it is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason;
}

/** Settles with `promise`, or rejects with the signal's reason as soon as it aborts. */
export function raceSignal<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * Runs `task` with a deadline; rejects with a `TIMEOUT` error when it passes. The task gets a
 * signal that aborts at the deadline so it can stop its I/O. The deadline runs on `clock`, so a
 * simulated clock (`ManualClock`) decides when it passes.
 */
export async function withTimeout<T>(
  task: (signal: AbortSignal) => Promise<T>,
  timeoutMs: number,
  details: { provider?: string; key?: string; operation?: 'get' | 'refresh' | 'set' | 'keys' } = {},
  clock: Clock = systemClock,
): Promise<T> {
  const controller = new AbortController();
  const timeoutError = new SecretTimeoutError(
    { ...details },
    `${details.operation ?? 'operation'} timed out after ${timeoutMs} ms${details.provider ? ` (provider "${details.provider}")` : ''}`,
  );
  let timer: Timer | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = clock.setTimer(() => {
      controller.abort(timeoutError);
      reject(timeoutError);
    }, timeoutMs);
  });
  try {
    return await Promise.race([task(controller.signal), deadline]);
  } finally {
    timer?.cancel();
  }
}

/**
 * A duration with random jitter: `base` shortened by up to `fraction` of itself, so a fleet that
 * started together spreads out instead of refreshing in lock-step.
 */
export function jittered(base: number, fraction: number, random: () => number = Math.random): number {
  return base * (1 - fraction * random());
}

/** How many reads `getMany` runs at once where it reads key by key. */
export const DEFAULT_GET_MANY_CONCURRENCY = 8;

/**
 * `task` over every item, at most `limit` at a time, results in the order of `items`. After a
 * failure (or once `signal` aborts) no further task starts; it rejects with the first failure
 * once the tasks already running have settled, so none of them is left unobserved.
 */
export async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<R>,
  signal?: AbortSignal,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      if (signal?.aborted) {
        failure = { error: signal.reason };
        return;
      }
      const index = next++;
      try {
        results[index] = await task(items[index] as T);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  const workers = Math.max(1, Math.min(Math.floor(limit) || 1, items.length));
  await Promise.all(Array.from({ length: workers }, worker));
  if (failure !== undefined) throw failure.error;
  return results;
}

/**
 * The keys of a `getMany` call, each validated by `validate` before any I/O, duplicates
 * dropped (first occurrence kept).
 * @throws {InvalidKeyError} when `keys` is not an array or a key is invalid.
 */
export function uniqueKeys(
  keys: readonly string[],
  provider: string,
  validate: (key: unknown) => string,
): string[] {
  if (!Array.isArray(keys)) {
    throw new InvalidKeyError({ provider }, `invalid keys: expected an array, got ${typeof keys}`);
  }
  const unique = new Set<string>();
  for (const key of keys) unique.add(validate(key));
  return [...unique];
}
