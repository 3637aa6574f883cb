import { InvalidConfigError } from '@secret-provider/core';

/** How variable names become secret keys, as {@link EnvProviderOptions} describe it. */
export interface SelectionOptions {
  readonly prefix?: string | undefined;
  readonly stripPrefix?: boolean | undefined;
  readonly allow?: readonly string[] | undefined;
  readonly map?: ((name: string) => string | undefined) | undefined;
  readonly all?: boolean | undefined;
}

/**
 * The compiled selection: `toKey` turns a variable name into a key (or rejects it), `toName`
 * does the reverse where it can be computed without listing the environment.
 */
export interface Selection {
  /** Whether the user chose what is exposed, so that listing is allowed. */
  readonly listable: boolean;
  /** Whether `toName` is exact; false with a `map` function, which only goes one way. */
  readonly reversible: boolean;
  toKey(name: string): string | undefined;
  toName(key: string): string | undefined;
}

export function compileSelection(options: SelectionOptions, provider: string): Selection {
  const { prefix, allow, map, all } = options;
  const strip = options.stripPrefix ?? true;
  const invalid = (message: string) =>
    new InvalidConfigError({ provider }, `invalid configuration: ${message}`);
  if (prefix !== undefined && (typeof prefix !== 'string' || prefix.length === 0)) {
    throw invalid('prefix must be a non-empty string');
  }
  if (allow !== undefined && (!Array.isArray(allow) || allow.some((k) => typeof k !== 'string'))) {
    throw invalid('allow must be an array of strings');
  }
  if (map !== undefined && typeof map !== 'function') throw invalid('map must be a function');
  if (all === true && (prefix !== undefined || allow !== undefined || map !== undefined)) {
    throw invalid('all: true selects every variable and cannot be combined with prefix, allow or map');
  }
  const allowed = allow === undefined ? undefined : new Set(allow);
  const selected = prefix !== undefined || allowed !== undefined || map !== undefined;

  // A mapping function is user code called with names only; its results are memoized because
  // the watch calls it for every variable at every poll.
  const memo = new Map<string, string | undefined>();
  const mapped = (name: string): string | undefined => {
    if (map === undefined) return name;
    if (memo.has(name)) return memo.get(name);
    const key = map(name);
    const result = typeof key === 'string' && key.length > 0 ? key : undefined;
    if (memo.size < 10_000) memo.set(name, result);
    return result;
  };

  const names = new Map<string, string>();
  return {
    listable: all === true || selected,
    reversible: map === undefined,
    toKey(name) {
      let base = name;
      if (prefix !== undefined) {
        if (!name.startsWith(prefix)) return undefined;
        if (strip) base = name.slice(prefix.length);
        if (base.length === 0) return undefined;
      }
      const key = mapped(base);
      if (key === undefined) return undefined;
      if (allowed !== undefined && !allowed.has(key)) return undefined;
      return key;
    },
    toName(key) {
      if (map !== undefined) return undefined;
      if (allowed !== undefined && !allowed.has(key)) return undefined;
      if (prefix === undefined) return key;
      if (!strip) return key.startsWith(prefix) && key.length > prefix.length ? key : undefined;
      // Names are looked up on every read: keep the joined string rather than join it each time.
      let name = names.get(key);
      if (name === undefined) {
        name = internalize(prefix + key);
        if (names.size >= 10_000) names.clear();
        names.set(key, name);
      }
      return name;
    },
  };
}

/**
 * The engine's canonical copy of a string. Looking up a property by a freshly built string that
 * names no property anywhere costs a string-table search on every lookup; a string that was
 * once used as a key is canonical and skips it (a miss is the common case in a chain).
 */
function internalize(text: string): string {
  return Object.keys({ [text]: true })[0] ?? text;
}
