// What Key Vault (or whatever answers in its place: a proxy, a captive portal, a broken
// gateway) sends is checked before it is believed. An answer that cannot be understood is an
// outage, never "missing" and never an empty secret. Nothing from the answer is quoted: the
// error names the kind of problem only.
import type { SecretClientOptions } from '@azure/keyvault-secrets';
import { KEY_VAULT_NAME_PATTERN } from './names.js';

/** What was wrong with an answer. */
export type AnswerProblem =
  | 'not-json'
  | 'no-value'
  | 'shape'
  | 'id'
  | 'property-types'
  | 'other-secret'
  | 'foreign-next-link'
  | 'foreign-request'
  | 'unreadable';

const PROBLEMS: Readonly<Record<AnswerProblem, string>> = {
  'not-json': 'the body is not JSON',
  'no-value': 'a secret without a value',
  shape: 'not the shape Key Vault answers with',
  id: 'an id that does not parse',
  'property-types': 'properties of the wrong type',
  'other-secret': 'an answer about another secret',
  'foreign-next-link': 'a next page on another host',
  'foreign-request': 'a request to another host was refused',
  unreadable: 'the Azure SDK could not read it',
};

const ANSWER_BRAND = Symbol.for('secret-provider.azure.answer');

/**
 * An answer this adapter will not believe, thrown by {@link keyVaultAnswerPolicy} and by the
 * provider's own checks. The provider reports it as `UNAVAILABLE` (see `mapKeyVaultError`), with
 * {@link problem} in words and nothing of the answer.
 */
export class KeyVaultAnswerError extends Error {
  readonly problem: AnswerProblem;

  constructor(problem: AnswerProblem) {
    super(`Key Vault answer not understood: ${PROBLEMS[problem]}`);
    this.name = 'KeyVaultAnswerError';
    this.problem = problem;
  }

  /** The problem in words, for messages. */
  get description(): string {
    return PROBLEMS[this.problem];
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return (
      typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[ANSWER_BRAND] === true
    );
  }
}
Object.defineProperty(KeyVaultAnswerError.prototype, ANSWER_BRAND, { value: true });

type PipelinePolicy = NonNullable<SecretClientOptions['additionalPolicies']>[number]['policy'];

const VERSION = /^[0-9a-f]{32}$/i;

/** What a request's answer must hold, by method and path. */
type Expected =
  | { readonly kind: 'page'; readonly versions: 'none' | 'required' | 'any' }
  | { readonly kind: 'bundle'; readonly name: string; readonly version?: string; readonly value: boolean }
  | { readonly kind: 'json' };

/**
 * A pipeline policy that refuses requests to any origin but the vault's (a `nextLink` elsewhere
 * never leaves), and checks every successful answer before the SDK reads it: JSON, the shape of
 * a secret or a page, ids that parse, properties of the right types, a value where one must be.
 * A failure rejects with an error the provider reports as `UNAVAILABLE`. The provider adds it to
 * every client it creates; add it to your own `client` with
 * `additionalPolicies: [{ policy: keyVaultAnswerPolicy(vaultUrl), position: 'perCall' }]`.
 */
export function keyVaultAnswerPolicy(vaultUrl: string): PipelinePolicy {
  const origin = new URL(vaultUrl).origin;
  return {
    name: 'secretProviderKeyVaultAnswers',
    async sendRequest(request, next) {
      const url = new URL(request.url);
      if (url.origin !== origin) throw new KeyVaultAnswerError('foreign-request');
      const response = await next(request);
      if (response.status >= 200 && response.status < 300 && response.status !== 204) {
        checkAnswer(expectedOf(request.method, url), response.bodyAsText ?? undefined, origin);
      }
      return response;
    },
  };
}

function expectedOf(method: string, url: URL): Expected {
  const [collection, name, third, ...rest] = url.pathname
    .split('/')
    .slice(1)
    .map((part) => decodeURIComponent(part));
  if (rest.length > 0) return { kind: 'json' };
  const named = name !== undefined && name !== '';
  if (collection === 'secrets') {
    if (!named) return method === 'GET' ? { kind: 'page', versions: 'none' } : { kind: 'json' };
    if (third === 'versions')
      return method === 'GET' ? { kind: 'page', versions: 'required' } : { kind: 'json' };
    if (third === undefined || third === '') {
      if (method === 'GET') return { kind: 'bundle', name, value: true };
      if (method === 'PUT' || method === 'DELETE') return { kind: 'bundle', name, value: false };
    } else if (VERSION.test(third)) {
      if (method === 'GET') return { kind: 'bundle', name, version: third, value: true };
      if (method === 'PATCH') return { kind: 'bundle', name, version: third, value: false };
    }
  } else if (collection === 'deletedsecrets') {
    if (!named) return method === 'GET' ? { kind: 'page', versions: 'any' } : { kind: 'json' };
    if ((third === undefined && method === 'GET') || (third === 'recover' && method === 'POST')) {
      return { kind: 'bundle', name, value: false };
    }
  }
  return { kind: 'json' };
}

function checkAnswer(expected: Expected, text: string | undefined, origin: string): void {
  if ((text === undefined || text === '') && expected.kind === 'json') return;
  let body: unknown;
  try {
    body = JSON.parse(text ?? '');
  } catch {
    throw new KeyVaultAnswerError('not-json');
  }
  if (expected.kind === 'json') return;
  if (!isRecord(body)) throw new KeyVaultAnswerError('shape');
  if (expected.kind === 'bundle') {
    const id = checkItem(body);
    if (id.name.toLowerCase() !== expected.name.toLowerCase()) throw new KeyVaultAnswerError('other-secret');
    if (expected.version !== undefined && id.version?.toLowerCase() !== expected.version.toLowerCase()) {
      throw new KeyVaultAnswerError('other-secret');
    }
    if (expected.value && typeof body.value !== 'string') throw new KeyVaultAnswerError('no-value');
    return;
  }
  if (!Array.isArray(body.value)) throw new KeyVaultAnswerError('shape');
  const next = body.nextLink;
  if (next !== undefined && next !== null) {
    if (typeof next !== 'string') throw new KeyVaultAnswerError('shape');
    let nextOrigin: string;
    try {
      nextOrigin = new URL(next).origin;
    } catch {
      throw new KeyVaultAnswerError('shape');
    }
    if (nextOrigin !== origin) throw new KeyVaultAnswerError('foreign-next-link');
  }
  for (const item of body.value) {
    if (!isRecord(item)) throw new KeyVaultAnswerError('shape');
    const { version } = checkItem(item);
    if (expected.versions === 'required' && version === undefined) throw new KeyVaultAnswerError('id');
    if (expected.versions === 'none' && version !== undefined) throw new KeyVaultAnswerError('id');
  }
}

/** Checks a secret bundle or list item; returns its parsed id. */
function checkItem(item: Record<string, unknown>): { name: string; version: string | undefined } {
  const id = parseId(item.id);
  const attributes = item.attributes;
  if (attributes !== undefined) {
    if (!isRecord(attributes)) throw new KeyVaultAnswerError('property-types');
    if (!optional(attributes.enabled, 'boolean') || !optional(attributes.recoveryLevel, 'string')) {
      throw new KeyVaultAnswerError('property-types');
    }
    for (const field of ['nbf', 'exp', 'created', 'updated', 'recoverableDays']) {
      const stamp = attributes[field];
      if (stamp !== undefined && !(typeof stamp === 'number' && Number.isFinite(stamp))) {
        throw new KeyVaultAnswerError('property-types');
      }
    }
  }
  if (
    !optional(item.contentType, 'string') ||
    !optional(item.managed, 'boolean') ||
    !optional(item.kid, 'string')
  ) {
    throw new KeyVaultAnswerError('property-types');
  }
  const tags = item.tags;
  if (tags !== undefined && !(isRecord(tags) && Object.values(tags).every((t) => typeof t === 'string'))) {
    throw new KeyVaultAnswerError('property-types');
  }
  if (item.recoveryId !== undefined) parseId(item.recoveryId);
  return id;
}

/** `https://{host}/secrets/{name}[/{32-hex version}]` (or `deletedsecrets`), as Key Vault builds ids. */
function parseId(id: unknown): { name: string; version: string | undefined } {
  if (typeof id !== 'string') throw new KeyVaultAnswerError('id');
  let url: URL;
  try {
    url = new URL(id);
  } catch {
    throw new KeyVaultAnswerError('id');
  }
  const [collection, name, version, ...rest] = url.pathname.split('/').slice(1);
  if (
    (url.protocol !== 'https:' && url.protocol !== 'http:') ||
    (collection !== 'secrets' && collection !== 'deletedsecrets') ||
    name === undefined ||
    !KEY_VAULT_NAME_PATTERN.test(name) ||
    (version !== undefined && !VERSION.test(version)) ||
    rest.length > 0
  ) {
    throw new KeyVaultAnswerError('id');
  }
  return { name, version };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optional(value: unknown, type: 'string' | 'boolean'): boolean {
  return value === undefined || typeof value === type;
}
