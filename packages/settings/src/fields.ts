import { InvalidConfigError, type SecretProvider } from '@secret-provider/core';
import type { FieldFormat, FieldOptions, KeyStyle, NestedFieldOptions } from './types.js';

/** A field after routing: one key of one provider, at one path of the input object. */
export interface PlannedField {
  readonly index: number;
  readonly path: readonly string[];
  /** Dotted path, as errors and watchers name it. */
  readonly name: string;
  readonly key: string;
  /** The provider's name as errors report it. */
  readonly providerName: string;
  readonly provider: SecretProvider | undefined;
  readonly secret: boolean;
  readonly format: FieldFormat;
  readonly skip: boolean;
  readonly hasDefault: boolean;
  readonly defaultValue: unknown;
  /** The field's own schema, where the settings' schema could be discovered (zod, valibot). */
  readonly schema: unknown;
}

/** What can be learned of a sub-schema without running it. */
export type Shape =
  | { readonly kind: 'object'; readonly entries: Readonly<Record<string, unknown>> }
  /** Array, record, tuple, map: its keys or positions come from the input. */
  | { readonly kind: 'document'; readonly element: unknown };

const MAX_UNWRAP = 16;

/**
 * Discovers the shape of a zod (3 or 4) or valibot schema: an object with its entries, a document
 * (array, record, tuple, with the schema of its elements where there is one) or nothing known.
 * Other libraries need their fields listed.
 */
export function discoverShape(schema: unknown): Shape | undefined {
  let current: unknown = schema;
  for (let depth = 0; depth < MAX_UNWRAP; depth++) {
    if (!isRecord(current)) return undefined;
    const zod = (isRecord(current._zod) ? current._zod.def : undefined) ?? current._def;
    if (isRecord(zod)) {
      const type = zod.type ?? zod.typeName;
      if (type === 'object' || type === 'ZodObject') {
        const shape =
          current.shape ?? (typeof zod.shape === 'function' ? (zod.shape as () => unknown)() : zod.shape);
        return isRecord(shape) ? { kind: 'object', entries: shape } : undefined;
      }
      if (['array', 'record', 'tuple', 'map', 'ZodArray', 'ZodRecord', 'ZodTuple'].includes(String(type))) {
        // zod 4 `element` / zod 3 `type` of arrays, `valueType` of records and maps.
        const element = zod.element ?? zod.valueType ?? (type === 'ZodArray' ? zod.type : undefined);
        return { kind: 'document', element };
      }
      // Wrappers (optional, nullable, default, readonly, catch, pipe/effects) around the real shape.
      const inner = zod.innerType ?? (type === 'pipe' ? zod.in : undefined) ?? zod.schema;
      if (inner === undefined) return undefined;
      current = inner;
      continue;
    }
    if (current.kind === 'schema' && typeof current.type === 'string') {
      if (isRecord(current.entries) && current.type.includes('object'))
        return { kind: 'object', entries: current.entries };
      if (
        ['array', 'record', 'tuple', 'loose_tuple', 'strict_tuple', 'tuple_with_rest', 'map'].includes(
          current.type,
        )
      ) {
        return { kind: 'document', element: current.item ?? current.value };
      }
      if (current.wrapped === undefined) return undefined;
      current = current.wrapped;
      continue;
    }
    return undefined;
  }
  return undefined;
}

/** Splits a field name into words at case changes and at anything not a letter or digit. */
function words(segment: string): string[] {
  return segment
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .split(/[^A-Za-z0-9]+/)
    .filter((word) => word.length > 0);
}

/** The key of a field that names none, per {@link KeyStyle}. */
export function deriveKey(
  path: readonly string[],
  style: KeyStyle = 'SCREAMING_SNAKE',
  provider?: string,
): string {
  if (typeof style === 'function') return style(path, provider);
  switch (style) {
    case 'SCREAMING_SNAKE':
      return path.flatMap(words).join('_').toUpperCase();
    case 'kebab':
      return path.flatMap(words).join('-').toLowerCase();
    case 'dot':
      return path.join('.');
  }
}

export interface PlanOptions {
  readonly source: SecretProvider | undefined;
  readonly providers: Readonly<Record<string, SecretProvider>>;
  readonly keyStyle: KeyStyle;
  readonly keyPrefix: string;
}

interface Inherited {
  readonly provider: string | undefined;
  readonly secret: boolean | undefined;
  readonly skip: boolean;
}

/**
 * Children of a chain, if `provider` is one: any provider exposing its children as an array under
 * `providers` or `children` (the chain's shape is duck-typed so this package does not depend on it).
 */
export function childrenOf(provider: SecretProvider | undefined): readonly SecretProvider[] {
  if (provider === undefined) return [];
  const holder = provider as unknown as { providers?: unknown; children?: unknown };
  const list = Array.isArray(holder.providers)
    ? holder.providers
    : Array.isArray(holder.children)
      ? holder.children
      : [];
  return list.filter(
    (child): child is SecretProvider =>
      isRecord(child) && typeof child.get === 'function' && typeof child.name === 'string',
  );
}

/** Resolves a provider name against `providers`, then the source's own name, then its children. */
export function resolveProvider(name: string, options: PlanOptions): SecretProvider | undefined {
  if (Object.hasOwn(options.providers, name)) return options.providers[name];
  if (options.source?.name === name) return options.source;
  return childrenOf(options.source).find((child) => child.name === name);
}

/**
 * Turns the schema's discovered shape and the user's `fields` into one routed field per key.
 * @throws {InvalidConfigError} for unknown provider names, fields routed nowhere, or no field at all.
 */
export function planFields(schema: unknown, fields: unknown, options: PlanOptions): PlannedField[] {
  const planned: PlannedField[] = [];
  const problems: string[] = [];
  const shape = discoverShape(schema);
  walk([], isRecord(fields) ? fields : undefined, shape?.kind === 'object' ? shape.entries : undefined, {
    provider: undefined,
    secret: undefined,
    skip: false,
  });
  if (problems.length > 0) {
    throw new InvalidConfigError({}, `invalid settings routing: ${problems.join('; ')}`);
  }
  if (planned.length === 0) {
    throw new InvalidConfigError(
      {},
      'invalid settings routing: no field found; list the fields in `fields` (their shape can only be discovered from zod and valibot object schemas)',
    );
  }
  return planned;

  function walk(
    path: readonly string[],
    explicit: Readonly<Record<string, unknown>> | undefined,
    discovered: Readonly<Record<string, unknown>> | undefined,
    inherited: Inherited,
  ): void {
    const names = new Set([...Object.keys(discovered ?? {}), ...Object.keys(explicit ?? {})]);
    for (const name of names) {
      const fieldPath = [...path, name];
      const spec = explicit?.[name];
      const subShape = discovered === undefined ? undefined : discoverShape(discovered[name]);
      if (spec !== undefined && typeof spec !== 'string' && !isRecord(spec)) {
        problems.push(`field "${fieldPath.join('.')}": expected a key name or an options object`);
        continue;
      }
      const field = (typeof spec === 'string' ? { key: spec } : (spec ?? {})) as FieldOptions &
        Partial<NestedFieldOptions<unknown>>;
      const nextInherited: Inherited = {
        provider: field.provider ?? inherited.provider,
        secret: field.secret ?? inherited.secret,
        skip: field.skip ?? inherited.skip,
      };
      // A key, a format or a default make the field one document, even where the schema is an object.
      const namesOneKey =
        field.key !== undefined || field.format !== undefined || Object.hasOwn(field, 'default');
      if (field.fields !== undefined || (!namesOneKey && subShape?.kind === 'object')) {
        if (field.fields !== undefined && !isRecord(field.fields)) {
          problems.push(`field "${fieldPath.join('.')}": \`fields\` must be an object`);
          continue;
        }
        walk(
          fieldPath,
          field.fields,
          subShape?.kind === 'object' ? subShape.entries : undefined,
          nextInherited,
        );
        continue;
      }
      addLeaf(fieldPath, field, nextInherited, discovered?.[name]);
    }
  }

  function addLeaf(
    path: readonly string[],
    field: FieldOptions,
    inherited: Inherited,
    schema: unknown,
  ): void {
    const name = path.join('.');
    const shape = schema === undefined ? undefined : discoverShape(schema);
    const providerName = inherited.provider;
    let provider: SecretProvider | undefined;
    if (providerName !== undefined) {
      provider = resolveProvider(providerName, options);
      if (provider === undefined && !inherited.skip) {
        const known = [...Object.keys(options.providers), ...childrenOf(options.source).map((c) => c.name)];
        problems.push(
          `field "${name}": unknown provider "${providerName}"${known.length > 0 ? ` (known: ${known.map((k) => `"${k}"`).join(', ')})` : ''}`,
        );
        return;
      }
    } else {
      provider = options.source;
      if (provider === undefined && !inherited.skip) {
        problems.push(`field "${name}": no \`source\` and no \`provider\` to read it from`);
        return;
      }
    }
    const format = field.format ?? (shape !== undefined ? 'json' : 'text');
    if (format !== 'text' && format !== 'json') {
      problems.push(`field "${name}": unknown format`);
      return;
    }
    const resolvedName = provider?.name ?? providerName ?? 'none';
    planned.push({
      index: planned.length,
      path,
      name,
      key:
        field.key ??
        `${options.keyPrefix}${deriveKey(path, options.keyStyle, providerName ?? provider?.name)}`,
      providerName: resolvedName,
      provider,
      secret: inherited.secret ?? false,
      format,
      skip: inherited.skip,
      hasDefault: Object.hasOwn(field, 'default'),
      defaultValue: field.default,
      schema,
    });
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** The routed (not skipped) fields by the key they are read from, in routing order. */
export function fieldsByKey(fields: readonly PlannedField[]): ReadonlyMap<string, readonly PlannedField[]> {
  const byKey = new Map<string, PlannedField[]>();
  for (const field of fields) {
    if (field.skip) continue;
    const list = byKey.get(field.key) ?? [];
    list.push(field);
    byKey.set(field.key, list);
  }
  return byKey;
}
