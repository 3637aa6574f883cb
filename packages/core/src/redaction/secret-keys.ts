/**
 * Says which keys of a provider hold secrets, for the values a redactor learns from providers
 * (`attach`, `learnFrom`, `wrap`): `true` the key is a secret (its value is masked whatever it
 * looks like, and a value too short to mask is reported), `false` it is not (its value is not
 * masked), `undefined` the value decides (masked unless it plainly is configuration; see
 * {@link defaultSecretKeys}). Whatever it answers, a password inside a URL value
 * (`postgres://app:password@db/app`) is masked.
 */
export type SecretKeyPredicate = (key: string, provider: string) => boolean | undefined;

/**
 * Words that make a key a secret for {@link defaultSecretKeys}: it is one when its name, lower-cased
 * with everything but letters and digits dropped, contains one of them (`DB_PASSWORD`,
 * `apiKey`, `x-auth-token`, `SENTRY_DSN`, `TLS_PRIVATE_KEY`, `SESSION_SECRET`...). Words that
 * name settings as often as secrets (`auth`, `session`, `cert`, `private`) are not in the list:
 * keys with only those are decided by their value.
 */
export const DEFAULT_SECRET_KEY_WORDS: readonly string[] = Object.freeze([
  'pass',
  'pwd',
  'secret',
  'token',
  'key',
  'credential',
  'salt',
  'dsn',
  'signature',
  'webhook',
  'jwt',
  'bearer',
  'authorization',
  'sessionid',
  'connectionstring',
  'connstr',
]);

/**
 * Environment variables that a shell or runtime sets and that are never secrets, though some
 * contain a secret word (`PWD` is the working directory): {@link defaultSecretKeys} answers
 * `false` for them, so attaching a redactor to the environment does not mask every path.
 */
export const NON_SECRET_ENVIRONMENT_KEYS: ReadonlySet<string> = new Set([
  'PATH',
  'HOME',
  'PWD',
  'OLDPWD',
  'SHELL',
  'USER',
  'LOGNAME',
  'HOSTNAME',
  'LANG',
  'TERM',
  'TZ',
  'TMPDIR',
  'NODE_ENV',
  'HOST',
  'PORT',
]);

const SECRET_WORDS = new RegExp(DEFAULT_SECRET_KEY_WORDS.join('|'));

/**
 * The redactor's default {@link SecretKeyPredicate}: `true` for keys whose name contains one of
 * {@link DEFAULT_SECRET_KEY_WORDS}, `false` for the shell's own variables in
 * {@link NON_SECRET_ENVIRONMENT_KEYS}, `undefined` (the value decides) for every other key. For
 * those, a value is masked unless it is one of these shapes of configuration:
 *
 * - a URL without a password (`http://localhost:8080`, `https://api.example.com/v1`), unless a
 *   query parameter has a secret word in its name (`?access_token=...`);
 * - a host name or address, with or without a port (`localhost`, `db.internal:5432`,
 *   `10.0.0.7`, `[::1]:8080`); lower-case DNS names with at least one dot;
 * - a file system path (`/var/lib/app`, `./config`, `C:\app`) whose parts are words, not
 *   random text;
 * - a single lower-case word (`production`, `postgres`).
 *
 * What it leaves unmasked on purpose, then: configuration of those shapes under keys without a
 * secret word, and values shorter than the redactor's `minLength` under such keys (without a
 * warning). What it does not know: a secret under a name without a secret word that has one of
 * those shapes (a webhook URL under `SLACK_URL`, a lower-case word as a password under `DB`).
 * Name such keys with a {@link SecretKeyPredicate} of your own.
 */
export function defaultSecretKeys(key: string, _provider?: string): boolean | undefined {
  if (NON_SECRET_ENVIRONMENT_KEYS.has(key)) return false;
  return SECRET_WORDS.test(normalize(key)) ? true : undefined;
}

function normalize(key: string): string {
  return key.toLowerCase().replace(/[^a-z0-9]/g, '');
}

// Each pattern matches in one pass (no part of the text can be matched two ways), so a long
// value costs linear time.
const HOST_NAME = /^(?:localhost|[a-z0-9-]+(?:\.[a-z0-9-]+)+)(?::\d{1,5})?$/;
const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?$/;
const IPV6 = /^\[[0-9a-f:.]+\](?::\d{1,5})?$|^[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}$/i;
/** Longest host name (or address with a port) the shapes above are tried on. */
const MAX_HOST_LENGTH = 260;
// Parts of a path: words of lower-case letters, digits and . _ - @ ~ + (a capital first, as in
// `/Users`); random text (mixed case, base64) does not fit.
const PATH_PART = '(?:[A-Z][a-z0-9._@~+-]*|[a-z0-9._@~+-]*)';
const ONE_PATH = `(?:~|\\.{1,2}|[A-Za-z]:)?[\\\\/]${PATH_PART}(?:[\\\\/]${PATH_PART})*`;
const PATH = new RegExp(`^${ONE_PATH}(?::${ONE_PATH})*$`);
const WORD = /^[a-z]+$/;
const URL_START = /^[a-z][a-z0-9+.-]*:\/\//i;

/** Whether `value` plainly is configuration (see {@link defaultSecretKeys}): not masked under keys the predicate is unsure of. */
export function looksLikeConfiguration(value: string): boolean {
  if (WORD.test(value)) return true;
  if (value.length <= MAX_HOST_LENGTH && (HOST_NAME.test(value) || IPV4.test(value) || IPV6.test(value)))
    return true;
  if (URL_START.test(value)) {
    const url = parseUrl(value);
    if (url === undefined || url.password !== '') return false;
    for (const name of url.searchParams.keys()) if (SECRET_WORDS.test(normalize(name))) return false;
    return true;
  }
  return PATH.test(value);
}

/** The password inside a URL value (`scheme://user:password@host`), decoded, if it has one. */
export function urlPassword(value: string): string | undefined {
  if (!URL_START.test(value) || !value.includes('@')) return undefined;
  const password = parseUrl(value)?.password;
  if (password === undefined || password === '') return undefined;
  try {
    return decodeURIComponent(password);
  } catch {
    return password;
  }
}

function parseUrl(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}
