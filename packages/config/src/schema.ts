import { readFileSync } from 'node:fs';

// The published schema.json is the only description of the file: this module validates by
// interpreting it, so editors and the validator cannot disagree. It understands the keywords
// the schema uses (and refuses to run on one it does not know, so a schema edit cannot be
// silently ignored).

/** A JSON Schema node, as far as this interpreter reads it. */
export interface SchemaNode {
  readonly $ref?: string;
  readonly type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: boolean | SchemaNode;
  readonly items?: SchemaNode;
  readonly minItems?: number;
  readonly enum?: readonly unknown[];
  readonly const?: unknown;
  readonly oneOf?: readonly SchemaNode[];
  readonly minimum?: number;
  readonly maximum?: number;
  readonly exclusiveMinimum?: number;
  readonly minLength?: number;
  readonly pattern?: string;
  readonly description?: string;
  readonly title?: string;
  readonly $schema?: string;
  readonly $id?: string;
  readonly $defs?: Readonly<Record<string, SchemaNode>>;
}

const KNOWN_KEYWORDS = new Set([
  '$ref',
  'type',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'minItems',
  'enum',
  'const',
  'oneOf',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'minLength',
  'pattern',
  'description',
  'title',
  '$schema',
  '$id',
  '$defs',
]);

/** Why a field was refused. */
export type IssueCode =
  | 'SCHEMA'
  | 'UNKNOWN_FIELD'
  | 'LITERAL_SECRET'
  | 'DUPLICATE_NAME'
  | 'UNRESOLVED_REFERENCE'
  | 'FILE_MODE'
  | 'UNREADABLE'
  | 'PARSE'
  | 'SHADOWED_ENV'
  | 'MISSING_PACKAGE';

/** One problem of a configuration, at a field path; the message never quotes a value. */
export interface ConfigIssue {
  /** Field path, e.g. `providers[2].auth.token`; empty for the file itself. */
  readonly path: string;
  readonly code: IssueCode;
  readonly message: string;
}

/** The reference to secret-bearing fields: a literal there is refused as {@link IssueCode} `LITERAL_SECRET`. */
export const SECRET_REF = '#/$defs/secretRef';

let loaded: SchemaNode | undefined;

/** The JSON Schema of the configuration file (the one published as `schema.json`). */
export function configSchema(): SchemaNode {
  if (loaded === undefined) {
    // One level below the package root in both src/ and dist/.
    const parsed = JSON.parse(readFileSync(new URL('../schema.json', import.meta.url), 'utf8')) as SchemaNode;
    checkKeywords(parsed, '#');
    loaded = parsed;
  }
  return loaded;
}

function checkKeywords(node: unknown, at: string): void {
  if (typeof node !== 'object' || node === null) return;
  for (const [keyword, child] of Object.entries(node)) {
    if (!KNOWN_KEYWORDS.has(keyword))
      throw new Error(`schema keyword "${keyword}" at ${at} is not supported`);
    if (keyword === 'properties' || keyword === '$defs') {
      for (const [name, sub] of Object.entries(child as object))
        checkKeywords(sub, `${at}/${keyword}/${name}`);
    } else if (keyword === 'oneOf') {
      (child as unknown[]).forEach((sub, i) => {
        checkKeywords(sub, `${at}/oneOf/${i}`);
      });
    } else if (keyword === 'items' || (keyword === 'additionalProperties' && typeof child === 'object')) {
      checkKeywords(child, `${at}/${keyword}`);
    }
  }
}

/** Renders a path as users write it in code: `providers[2].auth.token`. */
export function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out;
}

/** Validates `value` against the configuration schema (or `node` of it); returns every issue found. */
export function validateAgainstSchema(value: unknown, node: SchemaNode = configSchema()): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  walk(configSchema(), node, value, [], issues);
  return issues;
}

function resolve(root: SchemaNode, ref: string): SchemaNode {
  const name = /^#\/\$defs\/(.+)$/.exec(ref)?.[1];
  const target = name === undefined ? undefined : root.$defs?.[name];
  if (target === undefined) throw new Error(`schema reference ${ref} does not resolve`);
  return target;
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function typeMatches(type: NonNullable<SchemaNode['type']>, value: unknown): boolean {
  const kind = kindOf(value);
  return kind === type || (type === 'number' && kind === 'integer');
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function walk(
  root: SchemaNode,
  node: SchemaNode,
  value: unknown,
  path: (string | number)[],
  issues: ConfigIssue[],
): void {
  const add = (code: IssueCode, message: string) => issues.push({ path: formatPath(path), code, message });
  if (node.$ref !== undefined) {
    if (node.$ref === SECRET_REF && !isRecord(value)) {
      add(
        'LITERAL_SECRET',
        'takes a reference, not a value: { "env": NAME }, { "file": PATH } or { "provider": NAME, "key": KEY }',
      );
      return;
    }
    walk(root, resolve(root, node.$ref), value, path, issues);
    return;
  }
  if (node.oneOf !== undefined) {
    walkOneOf(root, node.oneOf, value, path, issues);
    return;
  }
  if ('const' in node && value !== node.const) {
    add('SCHEMA', `must be ${JSON.stringify(node.const)}`);
    return;
  }
  if (node.enum !== undefined && !node.enum.includes(value)) {
    add('SCHEMA', `must be one of ${node.enum.map((v) => JSON.stringify(v)).join(', ')}`);
    return;
  }
  if (node.type !== undefined && !typeMatches(node.type, value)) {
    add('SCHEMA', `must be ${node.type === 'array' || node.type === 'object' ? 'an' : 'a'} ${node.type}`);
    return;
  }
  if (typeof value === 'string') {
    if (node.minLength !== undefined && value.length < node.minLength) add('SCHEMA', 'must not be empty');
    if (node.pattern !== undefined && !new RegExp(node.pattern, 'u').test(value)) {
      add('SCHEMA', `must match ${node.pattern}`);
    }
  }
  if (typeof value === 'number') {
    if (node.minimum !== undefined && value < node.minimum) add('SCHEMA', `must be at least ${node.minimum}`);
    if (node.maximum !== undefined && value > node.maximum) add('SCHEMA', `must be at most ${node.maximum}`);
    if (node.exclusiveMinimum !== undefined && value <= node.exclusiveMinimum) {
      add('SCHEMA', `must be more than ${node.exclusiveMinimum}`);
    }
  }
  if (Array.isArray(value)) {
    if (node.minItems !== undefined && value.length < node.minItems) {
      add('SCHEMA', `must have at least ${node.minItems} item${node.minItems === 1 ? '' : 's'}`);
    }
    if (node.items !== undefined) {
      const items = node.items;
      value.forEach((item, i) => {
        walk(root, items, item, [...path, i], issues);
      });
    }
  }
  if (isRecord(value)) {
    for (const name of node.required ?? []) {
      if (!(name in value))
        issues.push({ path: formatPath([...path, name]), code: 'SCHEMA', message: 'is required' });
    }
    for (const [name, child] of Object.entries(value)) {
      const declared = node.properties?.[name];
      if (declared !== undefined) walk(root, declared, child, [...path, name], issues);
      else if (node.additionalProperties === false) {
        issues.push({
          path: formatPath([...path, name]),
          code: 'UNKNOWN_FIELD',
          message: 'is not a known field',
        });
      } else if (typeof node.additionalProperties === 'object') {
        walk(root, node.additionalProperties, child, [...path, name], issues);
      }
    }
  }
}

/**
 * `oneOf` with a readable answer: object branches told apart by a `const` property (`type`,
 * `method`) are chosen by it, and otherwise by which branch's required fields are present, so
 * an error speaks of the branch the user meant instead of listing every branch's complaints.
 */
function walkOneOf(
  root: SchemaNode,
  branches: readonly SchemaNode[],
  value: unknown,
  path: (string | number)[],
  issues: ConfigIssue[],
): void {
  const resolved = branches.map((branch) =>
    branch.$ref === undefined ? branch : resolve(root, branch.$ref),
  );
  const attempts = branches.map((branch) => {
    const found: ConfigIssue[] = [];
    walk(root, branch, value, path, found);
    return found;
  });
  if (attempts.some((found) => found.length === 0)) return;
  if (isRecord(value)) {
    const discriminator = discriminatorOf(resolved);
    if (discriminator !== undefined) {
      const index = resolved.findIndex((b) => b.properties?.[discriminator]?.const === value[discriminator]);
      if (index >= 0) {
        issues.push(...(attempts[index] ?? []));
        return;
      }
      const allowed = resolved.map((b) => JSON.stringify(b.properties?.[discriminator]?.const)).join(', ');
      issues.push({
        path: formatPath([...path, discriminator]),
        code: 'SCHEMA',
        message: discriminator in value ? `must be one of ${allowed}` : `is required (one of ${allowed})`,
      });
      return;
    }
    const byRequired = resolved.findIndex((b) => (b.required ?? []).some((name) => name in value));
    if (byRequired >= 0) {
      issues.push(...(attempts[byRequired] ?? []));
      return;
    }
  }
  const fewest = attempts.reduce((best, found) => (found.length < best.length ? found : best));
  issues.push(...fewest);
}

function discriminatorOf(branches: readonly SchemaNode[]): string | undefined {
  const first = branches[0];
  if (first?.properties === undefined) return undefined;
  for (const [name, property] of Object.entries(first.properties)) {
    if (!('const' in property)) continue;
    if (
      branches.every((b) => b.properties?.[name] !== undefined && 'const' in (b.properties[name] as object))
    ) {
      return name;
    }
  }
  return undefined;
}

/**
 * Dotted paths of the secret-bearing fields of each provider type (`vault` -> `auth.token`,
 * `auth.roleId`, ...), read from the schema: every field whose schema is the secret reference.
 */
export function secretFields(): ReadonlyMap<string, readonly string[]> {
  const root = configSchema();
  const out = new Map<string, string[]>();
  for (const branch of root.$defs?.provider?.oneOf ?? []) {
    const def = branch.$ref === undefined ? branch : resolve(root, branch.$ref);
    const type = def.properties?.type?.const;
    if (typeof type !== 'string') continue;
    const paths = new Set<string>();
    collectSecretPaths(root, def, [], paths);
    out.set(type, [...paths]);
  }
  return out;
}

function collectSecretPaths(root: SchemaNode, node: SchemaNode, path: string[], out: Set<string>): void {
  // The schema has no recursive definitions, so a plain descent ends.
  if (node.$ref === SECRET_REF) {
    out.add(path.join('.'));
    return;
  }
  const target = node.$ref === undefined ? node : resolve(root, node.$ref);
  for (const branch of target.oneOf ?? []) collectSecretPaths(root, branch, path, out);
  for (const [name, child] of Object.entries(target.properties ?? {})) {
    collectSecretPaths(root, child, [...path, name], out);
  }
}
