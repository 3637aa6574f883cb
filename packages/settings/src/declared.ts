import { discoverShape, type PlannedField } from './fields.js';

/**
 * What the settings' definition declares, as a tree: the names that may be shown. The keys of a
 * secret JSON document, the number of its entries and their positions are part of the secret;
 * the field names the schema and the routing declare are not.
 *
 * - `object`: a node whose declared children are the only keys that may be named;
 * - `collection`: an array, record or map; its keys and size come from the input, but its
 *   elements may have a declared shape;
 * - `undefined`: nothing below may be named.
 */
export type Declared =
  | { readonly kind: 'object'; readonly children: ReadonlyMap<string, Declared> }
  | { readonly kind: 'collection'; readonly element: Declared }
  | undefined;

/** Placeholder of a name or position that came from the input. */
const UNDECLARED = '*';

const MAX_DEPTH = 16;

/** The declared tree of a settings object: its routed fields, and inside each what its schema declares. */
export function declaredTree(fields: readonly PlannedField[]): Declared {
  const root = new Map<string, Declared>();
  for (const field of fields) {
    let children = root;
    field.path.forEach((segment, i) => {
      if (i === field.path.length - 1) {
        children.set(segment, ofSchema(field.schema, 0));
        return;
      }
      const existing = children.get(segment);
      const node =
        existing?.kind === 'object'
          ? existing
          : { kind: 'object' as const, children: new Map<string, Declared>() };
      children.set(segment, node);
      children = node.children as Map<string, Declared>;
    });
  }
  return { kind: 'object', children: root };
}

function ofSchema(schema: unknown, depth: number): Declared {
  if (schema === undefined || depth > MAX_DEPTH) return undefined;
  const shape = discoverShape(schema);
  if (shape === undefined) return undefined;
  if (shape.kind === 'document') return { kind: 'collection', element: ofSchema(shape.element, depth + 1) };
  const children = new Map<string, Declared>();
  for (const [name, entry] of Object.entries(shape.entries)) children.set(name, ofSchema(entry, depth + 1));
  return { kind: 'object', children };
}

/**
 * The path of an issue as it may be shown: declared names are kept, a key or position inside a
 * collection becomes {@link UNDECLARED}, and the path ends with one {@link UNDECLARED} where it
 * leaves what is declared (so that neither names nor depth of undeclared content show).
 */
export function publicPath(path: readonly string[], tree: Declared): string[] {
  const shown: string[] = [];
  let node = tree;
  for (const segment of path) {
    if (node?.kind === 'object' && node.children.has(segment)) {
      shown.push(segment);
      node = node.children.get(segment);
    } else if (node?.kind === 'collection') {
      shown.push(UNDECLARED);
      node = node.element;
    } else {
      shown.push(UNDECLARED);
      break;
    }
  }
  return shown;
}
