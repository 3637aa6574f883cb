// The leak scanner of the suite. It does not reuse core's redaction walker on purpose: a test
// oracle that shared the mechanism of the code under test would be blind wherever that code is.
// It also looks where a logger-oriented walker need not: non-enumerable and symbol-keyed own
// properties, own getters, property names, and the encodings a value is commonly carried in.

import { inspect } from 'node:util';
import { Secret } from '@secret-provider/core';

/** A secret value the suite wrote, with a label to name it in failures (never the value). */
export interface Needle {
  readonly label: string;
  readonly forms: readonly string[];
}

/** The forms of `value` a leak is searched for: itself, its random part, common encodings. */
export function needleFor(label: string, value: string, randomPart: string): Needle {
  const bytes = Buffer.from(value, 'utf8');
  return {
    label,
    forms: [
      value,
      randomPart,
      bytes.toString('base64').replace(/=+$/, ''),
      bytes.toString('base64url'),
      bytes.toString('hex'),
      encodeURIComponent(value),
    ],
  };
}

const MAX_NODES = 200_000;
const MAX_DEPTH = 64;

/**
 * Where in `root` a needle appears (`"<label> at <path>"`), or `undefined`. Looks through the
 * printed forms of `root` (`String`, `JSON.stringify`, `util.inspect` with hidden properties)
 * and walks its structure: own properties of every kind, getters included, Map and Set entries,
 * bytes as text. A {@link Secret} is opaque except for what it prints.
 */
export function findLeak(root: unknown, needles: readonly Needle[], rootName = 'it'): string | undefined {
  if (needles.length === 0) return undefined;
  const inText = (text: string): Needle | undefined =>
    needles.find((needle) => needle.forms.some((form) => form.length > 0 && text.includes(form)));

  for (const [form, print] of PRINTERS) {
    let text: string | undefined;
    try {
      text = print(root);
    } catch {
      text = undefined;
    }
    const found = text === undefined ? undefined : inText(text);
    if (found !== undefined) return `${found.label} in ${form}(${rootName})`;
  }

  const seen = new Set<object>();
  let nodes = 0;
  const visit = (value: unknown, path: string, depth: number): string | undefined => {
    if (++nodes > MAX_NODES || depth > MAX_DEPTH) return undefined;
    switch (typeof value) {
      case 'string': {
        const found = inText(value);
        return found === undefined ? undefined : `${found.label} at ${path}`;
      }
      case 'number':
      case 'bigint':
        return visit(String(value), path, depth);
      case 'symbol':
        return visit(value.description ?? '', path, depth);
      case 'object':
      case 'function':
        break;
      default:
        return undefined;
    }
    if (value === null || seen.has(value)) return undefined;
    seen.add(value);
    if (Secret.isSecret(value)) {
      // Its value is out of reach by design; what it prints and any own field (metadata) is not.
      const printed = visitPrinted(value, path);
      if (printed !== undefined) return printed;
    }
    if (ArrayBuffer.isView(value))
      return visit(
        Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('latin1'),
        path,
        depth,
      );
    if (value instanceof ArrayBuffer) return visit(Buffer.from(value).toString('latin1'), path, depth);
    if (value instanceof Map) {
      let i = 0;
      for (const [k, v] of value) {
        const found = visit(k, `${path}.<key ${i}>`, depth + 1) ?? visit(v, `${path}.get(${i})`, depth + 1);
        if (found !== undefined) return found;
        i++;
      }
    } else if (value instanceof Set) {
      let i = 0;
      for (const v of value) {
        const found = visit(v, `${path}.<item ${i++}>`, depth + 1);
        if (found !== undefined) return found;
      }
    }
    // Functions are code, not data: only their own properties are looked at.
    for (const name of Reflect.ownKeys(value)) {
      if (typeof value === 'function' && (name === 'prototype' || name === 'name' || name === 'length'))
        continue;
      const label = typeof name === 'symbol' ? `[${String(name)}]` : name;
      const inName = visit(name, `${path}.<name of ${label}>`, depth + 1);
      if (inName !== undefined) return inName;
      const descriptor: PropertyDescriptor | undefined = Reflect.getOwnPropertyDescriptor(value, name);
      if (descriptor === undefined) continue;
      let item: unknown;
      if ('value' in descriptor) item = descriptor.value;
      else {
        try {
          item = descriptor.get?.call(value);
        } catch {
          continue;
        }
      }
      const found = visit(item, `${path}.${label}`, depth + 1);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  const visitPrinted = (value: object, path: string): string | undefined => {
    for (const [form, print] of PRINTERS) {
      let text: string | undefined;
      try {
        text = print(value);
      } catch {
        text = undefined;
      }
      const found = text === undefined ? undefined : inText(text);
      if (found !== undefined) return `${found.label} in ${form}(${path})`;
    }
    return undefined;
  };
  return visit(root, rootName, 0);
}

const PRINTERS: ReadonlyArray<readonly [string, (value: unknown) => string | undefined]> = [
  ['String', (value) => String(value)],
  ['JSON.stringify', (value) => JSON.stringify(value)],
  [
    'util.inspect',
    (value) => inspect(value, { depth: Number.POSITIVE_INFINITY, showHidden: true, getters: true }),
  ],
  ['stack', (value) => (value instanceof Error ? value.stack : undefined)],
];
