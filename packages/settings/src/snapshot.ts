import { inspect } from 'node:util';
import { REDACTED } from '@secret-provider/core';
import type { Declared } from './declared.js';
import { isRecord } from './fields.js';

function isPlain(value: unknown): value is Record<string, unknown> {
  if (!isRecord(value)) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/**
 * The shape of a value as it may be shown: declared field names, with every value replaced by the
 * redacted label. Collections (arrays, records) and anything undeclared show as one label: their
 * keys and sizes come from the secret.
 */
function redactedShape(value: unknown, node: Declared, depth: number): unknown {
  if (depth > 16 || node?.kind !== 'object' || !isPlain(value)) return REDACTED;
  const shape: Record<string, unknown> = {};
  for (const [key, child] of node.children) {
    if (Object.hasOwn(value, key)) shape[key] = redactedShape(value[key], child, depth + 1);
  }
  return shape;
}

function label(shape: unknown): string {
  if (isRecord(shape)) {
    const entries = Object.entries(shape).map(([key, value]) => `${key}: ${label(value)}`);
    return entries.length === 0 ? '{}' : `{ ${entries.join(', ')} }`;
  }
  return String(shape);
}

/**
 * Freezes plain objects and arrays of a validated output in place and gives each one `toJSON`
 * and `util.inspect` views that show the declared field names (see {@link Declared}) with
 * {@link REDACTED} for every value, so that logging the settings object (or a part of it) prints
 * no value and nothing else taken from a secret. Class instances the schema produced (`Secret`,
 * `Date`, `URL`) are left as they are.
 */
export function seal<T>(value: T, name: string, declared: Declared): T {
  sealNode(value, name, declared, 0, new WeakSet());
  return value;
}

function sealNode(value: unknown, name: string, node: Declared, depth: number, seen: WeakSet<object>): void {
  if (!(Array.isArray(value) || isPlain(value)) || seen.has(value) || Object.isFrozen(value)) return;
  seen.add(value);
  for (const key of Object.keys(value)) {
    const child =
      node?.kind === 'object'
        ? node.children.get(key)
        : node?.kind === 'collection'
          ? node.element
          : undefined;
    sealNode((value as Record<string, unknown>)[key], name, child, depth + 1, seen);
  }
  const prefix = depth === 0 ? `Settings(${name}) ` : '';
  // A field that is itself called `toJSON` keeps its value; the inspect view still redacts.
  if (!Object.hasOwn(value, 'toJSON')) {
    Object.defineProperty(value, 'toJSON', { value: () => redactedShape(value, node, 0), enumerable: false });
  }
  Object.defineProperty(value, inspect.custom, {
    value: () => `${prefix}${label(redactedShape(value, node, 0))}`,
    enumerable: false,
  });
  Object.freeze(value);
}

/** The value at a path, or `undefined` where the path does not exist. */
export function getPath(value: unknown, path: readonly string[]): unknown {
  let current = value;
  for (const segment of path) {
    if (!isRecord(current)) return undefined;
    current = current[segment];
  }
  return current;
}

/** Sets a value at a path, creating plain objects on the way. */
export function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let current = target;
  for (const segment of path.slice(0, -1)) {
    const next = current[segment];
    if (isPlain(next)) current = next;
    else {
      const created: Record<string, unknown> = {};
      current[segment] = created;
      current = created;
    }
  }
  const last = path[path.length - 1];
  if (last !== undefined) current[last] = value;
}

/** Whether `path` is `prefix` or lies below it. */
export function startsWith(path: readonly string[], prefix: readonly string[]): boolean {
  return prefix.length <= path.length && prefix.every((segment, i) => path[i] === segment);
}
