import { inspect } from 'node:util';
import { REDACTED } from '@secret-provider/core';
import { isRecord } from './fields.js';

function isPlain(value: unknown): value is Record<string, unknown> {
  if (!isRecord(value)) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** The shape of a value with every leaf replaced by the redacted label. */
function redactedShape(value: unknown, depth: number): unknown {
  if (depth > 8) return REDACTED;
  if (Array.isArray(value)) return value.map((item) => redactedShape(item, depth + 1));
  if (isPlain(value)) {
    return Object.fromEntries(Object.keys(value).map((key) => [key, redactedShape(value[key], depth + 1)]));
  }
  return REDACTED;
}

function label(shape: unknown, depth: number): string {
  if (Array.isArray(shape)) return `[ ${shape.map((item) => label(item, depth + 1)).join(', ')} ]`;
  if (isRecord(shape)) {
    const entries = Object.entries(shape).map(([key, value]) => `${key}: ${label(value, depth + 1)}`);
    return entries.length === 0 ? '{}' : `{ ${entries.join(', ')} }`;
  }
  return String(shape);
}

/**
 * Freezes plain objects and arrays of a validated output in place and gives each one `toJSON`
 * and `util.inspect` views that show the field names with {@link REDACTED} for every value, so
 * that logging the settings object (or a part of it) prints no value. Class instances the schema
 * produced (`Secret`, `Date`, `URL`) are left as they are.
 */
export function seal<T>(value: T, name: string): T {
  sealNode(value, name, 0, new WeakSet());
  return value;
}

function sealNode(value: unknown, name: string, depth: number, seen: WeakSet<object>): void {
  if (!(Array.isArray(value) || isPlain(value)) || seen.has(value) || Object.isFrozen(value)) return;
  seen.add(value);
  for (const key of Object.keys(value))
    sealNode((value as Record<string, unknown>)[key], name, depth + 1, seen);
  const prefix = depth === 0 ? `Settings(${name}) ` : '';
  // A field that is itself called `toJSON` keeps its value; the inspect view still redacts.
  if (!Object.hasOwn(value, 'toJSON')) {
    Object.defineProperty(value, 'toJSON', { value: () => redactedShape(value, 0), enumerable: false });
  }
  Object.defineProperty(value, inspect.custom, {
    value: () => `${prefix}${label(redactedShape(value, 0), 0)}`,
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
