import { SecretError } from './errors.js';
import type { SecretMetadata } from './types.js';

/** The label every accidental path shows instead of a secret value. */
export const REDACTED = '[REDACTED]';

/** The values a {@link Secret} can hold: text, or bytes that can be wiped. */
export type SecretValue = string | Uint8Array;

const SECRET_BRAND = Symbol.for('secret-provider.secret');

/** `util.inspect.custom`, without loading `node:util` at import time. */
export const INSPECT_CUSTOM: unique symbol = Symbol.for('nodejs.util.inspect.custom') as never;

let markShared: (secret: Secret<SecretValue>) => void;
/** Makes a secret of a derived value of any type (see {@link Secret.map}); module-private. */
let derive: <U>(value: U, metadata: SecretMetadata | undefined) => Secret<U>;
/** Marks construction by `derive`, which skips the check of the value's type. */
let deriving = false;

/**
 * @internal Marks a secret as owned by a cache and handed to many callers: one caller's
 * `dispose` must not break the others (and a string cannot be wiped anyway).
 */
export function shareSecret<T extends SecretValue>(secret: Secret<T>): Secret<T> {
  markShared(secret);
  return secret;
}

/**
 * A secret value that does not leak by accident.
 *
 * The value lives in a `#private` field that introspection cannot reach. `String()`, template
 * literals, `+`, `JSON.stringify`, `util.inspect`/`console.log`, `util.format`, spreading,
 * `Object.entries`, `structuredClone` and `v8.serialize` all see {@link REDACTED}. The one way to
 * the value is {@link Secret.reveal}, easy to find in a code review with a text search.
 *
 * This prevents accidents, not attackers: code running in the process that holds a `Secret`
 * can call `reveal()`, and JavaScript strings cannot be wiped from memory. `Uint8Array` values
 * are zeroed by {@link Secret.dispose} (also `using` / `Symbol.dispose`).
 *
 * @example
 * ```ts
 * const password = new Secret('hunter2');
 * console.log(`password=${password}`); // password=[REDACTED]
 * connect({ password: password.reveal() });
 * ```
 */
export class Secret<T = string> {
  #value: T | undefined;
  #shared = false;

  static {
    markShared = (secret) => {
      secret.#shared = true;
    };
    derive = <U>(value: U, metadata: SecretMetadata | undefined) => {
      deriving = true;
      try {
        return new Secret<U>(value, metadata);
      } finally {
        deriving = false;
      }
    };
  }

  /**
   * Own enumerable label, so that spreading, `Object.assign`, `Object.entries`,
   * `structuredClone` and `v8.serialize` copy a label rather than nothing or the value.
   */
  readonly redacted: typeof REDACTED = REDACTED;

  /** Version, expiry and lease of the value, when the provider knows them. Never secret. */
  readonly metadata: SecretMetadata | undefined;

  constructor(value: T, metadata?: SecretMetadata) {
    if (!deriving && typeof value !== 'string' && !(value instanceof Uint8Array)) {
      throw new SecretError('INVALID_VALUE', 'a Secret holds a string or a Uint8Array');
    }
    this.#value = value;
    this.metadata = metadata;
  }

  /** True for a {@link Secret} from any copy of this package. */
  static isSecret(value: unknown): value is Secret<SecretValue> {
    return (
      typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[SECRET_BRAND] === true
    );
  }

  /**
   * Compares two values in time that depends on neither value nor their lengths (both sides are
   * hashed first), and reveals neither.
   */
  static equals(a: Secret<SecretValue> | SecretValue, b: Secret<SecretValue> | SecretValue): boolean {
    const left = digest(Secret.isSecret(a) ? a.reveal() : a);
    const right = digest(Secret.isSecret(b) ? b.reveal() : b);
    return process.getBuiltinModule('node:crypto').timingSafeEqual(left, right);
  }

  /**
   * The value. The only way to it; every other path shows {@link REDACTED}.
   * @throws {SecretError} `DISPOSED` after {@link Secret.dispose}.
   */
  reveal(): T {
    if (this.#value === undefined) {
      throw new SecretError('DISPOSED', 'this secret was disposed and its value wiped');
    }
    return this.#value;
  }

  /** Constant-time comparison with another secret or a plain value; see {@link Secret.equals}. */
  equals(other: Secret<SecretValue> | SecretValue): boolean {
    const own: unknown = this.reveal();
    if (typeof own !== 'string' && !(own instanceof Uint8Array)) {
      throw new SecretError(
        'INVALID_VALUE',
        'only a string or bytes secret can be compared in constant time',
      );
    }
    return Secret.equals(own, other);
  }

  /**
   * Derives another secret from this one's value without the value passing through caller code
   * that might log it (for example parsing a JSON document into one field). The result may be of
   * any type (a string, bytes, a parsed object); it is redacted like this one.
   * @throws {SecretError} `INVALID_VALUE` when `transform` throws (its error is kept only as a
   * sanitized cause, since it may quote the value) or returns `undefined` or `null`.
   */
  map<U>(transform: (value: T) => U): Secret<U> {
    let derived: U;
    try {
      derived = transform(this.reveal());
    } catch (error) {
      // The transform saw the value; its error may quote it (`JSON.parse` does).
      throw new SecretError('INVALID_VALUE', 'deriving a value from a secret failed', { cause: error });
    }
    if (derived === undefined || derived === null) {
      throw new SecretError('INVALID_VALUE', 'deriving a value from a secret gave no value');
    }
    return derive(derived, this.metadata);
  }

  /**
   * The value parsed as JSON (bytes as UTF-8), still a secret; `validate` (a schema's `parse`, a
   * type guard that throws) makes it a `U`. The parsed document is never shown: a parse or
   * validation error is `INVALID_VALUE` without the text (`JSON.parse` quotes its input).
   *
   * @example
   * ```ts
   * const db = (await secrets.get('DB')).json((v) => DbCredentials.parse(v)); // Secret<DbCredentials>
   * connect(db.reveal().password);
   * ```
   */
  json<U = unknown>(validate?: (value: unknown) => U): Secret<U> {
    return this.map((value) => {
      const text =
        typeof value === 'string'
          ? value
          : value instanceof Uint8Array
            ? new TextDecoder('utf-8', { fatal: true }).decode(value)
            : undefined;
      if (text === undefined) throw new TypeError('json() reads a string or bytes secret');
      const parsed: unknown = JSON.parse(text);
      return validate === undefined ? (parsed as U) : validate(parsed);
    });
  }

  /** Whether {@link Secret.dispose} has run. */
  get disposed(): boolean {
    return this.#value === undefined;
  }

  /**
   * Zeroes a `Uint8Array` value in place and drops the reference to a string value. Secrets
   * handed out by a cache are shared between callers and stay usable: invalidate the cache to
   * forget them.
   */
  dispose(): void {
    if (this.#shared) return;
    if (this.#value instanceof Uint8Array) this.#value.fill(0);
    // A derived object's strings cannot be wiped; dropping the reference is what is possible.
    this.#value = undefined;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  valueOf(): string {
    return REDACTED;
  }

  [Symbol.toPrimitive](): string {
    return REDACTED;
  }

  [INSPECT_CUSTOM](): string {
    return `Secret(${REDACTED})`;
  }

  get [Symbol.toStringTag](): string {
    return 'Secret';
  }
}

Object.defineProperty(Secret.prototype, SECRET_BRAND, { value: true });

function digest(value: SecretValue): Buffer {
  return process.getBuiltinModule('node:crypto').createHash('sha256').update(value).digest();
}

/** Wraps a plain value in a {@link Secret}; passes a `Secret` through unchanged. */
export function toSecret<T extends SecretValue>(value: T | Secret<T>): Secret<T> {
  return Secret.isSecret(value) ? (value as Secret<T>) : new Secret(value as T);
}
