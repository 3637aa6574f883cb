/**
 * The product's one `.env` reader and editor, shared by the file and env providers.
 *
 * Reading follows `dotenv.parse` line for line (and so Node's `util.parseEnv`): the same line
 * grammar, the same quote removal and the same `\n`/`\r` expansion in double quotes, so that a
 * file means the same thing to every reader. In brief: `KEY=value`, `export KEY=value` and
 * `KEY: value`; an unquoted value ends at the first `#` (`A=pa#ss` is `pa`) and is trimmed;
 * `'single'` and `` `backtick` `` values are literal, `"double"` ones expand `\n` and `\r`;
 * quoted values may span lines; lines that are not definitions are skipped; a later definition
 * of a key wins. One difference, on purpose: keys are entries of a `Map`, so `__proto__=x` is a
 * key like any other instead of vanishing into an object's prototype.
 *
 * Editing keeps every other line as written (comments, blank lines, order, line endings) and
 * checks its own work: the edited text is read again, and an edit is written only if every
 * other key reads as before and the edited key reads back exactly. A value that no quoting can
 * carry through this grammar is refused with {@link DotenvValueError}.
 *
 * @packageDocumentation
 */

/**
 * dotenv's line grammar (lib/main.js of dotenv 17), with capture groups added around `export`
 * and the separator so that edits know where a definition's parts are. Groups do not change
 * what matches.
 */
const LINE =
  /(?:^|^)\s*(export\s+)?([\w.-]+)(\s*=\s*?|:\s+?)(\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|\s*`(?:\\`|[^`])*`|[^#\r\n]+)?\s*(?:#.*)?(?:$|$)/dgm;

const KEY_PATTERN = /^[\w.-]+$/;

/** One definition of a `.env` text, with where it sits (offsets into the text as given). */
export interface DotenvDefinition {
  readonly key: string;
  readonly value: string;
  readonly exported: boolean;
  /** Offset of `export` (when exported) or of the key. */
  readonly start: number;
  /** Offset just after the value (or after the `=` when there is none), trailing blanks excluded. */
  readonly end: number;
}

/**
 * Kept for compatibility: the reader skips lines it does not understand, as dotenv does, and
 * never throws this.
 * @deprecated `.env` text is read as `dotenv.parse` reads it; nothing is a syntax error.
 */
export class DotenvSyntaxError extends Error {
  readonly line: number;
  constructor(line: number, reason: string) {
    super(`line ${line}: ${reason}`);
    this.name = 'DotenvSyntaxError';
    this.line = line;
  }
}

/** A value that `.env` syntax cannot carry, or an edit that would change other keys. No content. */
export class DotenvValueError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'DotenvValueError';
  }
}

/** Whether `key` can be written to (and read from) a `.env` file. */
export function isDotenvKey(key: string): boolean {
  return KEY_PATTERN.test(key);
}

/** Every definition in `text`, in order (a key defined twice appears twice). */
export function readDotenv(text: string): DotenvDefinition[] {
  const lines = text.replace(/\r\n?/g, '\n');
  const original = offsetMap(text);
  const definitions: DotenvDefinition[] = [];
  for (const match of lines.matchAll(LINE)) {
    const indices = match.indices as RegExpIndicesArray;
    const key = match[2] as string;
    const raw = match[4];
    let value = (raw ?? '').trim();
    const maybeQuote = value[0];
    value = value.replace(/^(['"`])([\s\S]*)\1$/gm, '$2');
    if (maybeQuote === '"') {
      value = value.replace(/\\n/g, '\n');
      value = value.replace(/\\r/g, '\r');
    }
    const start = (indices[1] ?? indices[2] ?? [0])[0];
    const end =
      raw === undefined
        ? (indices[3] as [number, number])[1]
        : (indices[4] as [number, number])[1] - (raw.length - raw.trimEnd().length);
    definitions.push({
      key,
      value,
      exported: match[1] !== undefined,
      start: original(start),
      end: original(end),
    });
  }
  return definitions;
}

/** Key -> value of `.env` text, as `dotenv.parse` reads it (a later definition wins). */
export function parseDotenv(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const { key, value } of readDotenv(text)) values.set(key, value);
  return values;
}

/**
 * Maps offsets of the text with line breaks normalised (`\r\n` and `\r` to `\n`, as dotenv
 * does) back to offsets of the text as given.
 */
function offsetMap(text: string): (offset: number) => number {
  if (!text.includes('\r\n')) return (offset) => offset;
  // Normalised offsets at which a `\r\n` pair became one `\n`.
  const pairs: number[] = [];
  let removed = 0;
  for (let index = text.indexOf('\r\n'); index !== -1; index = text.indexOf('\r\n', index + 2)) {
    pairs.push(index - removed);
    removed++;
  }
  return (offset) => {
    let low = 0;
    let high = pairs.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if ((pairs[middle] as number) < offset) low = middle + 1;
      else high = middle;
    }
    return offset + low;
  };
}

/** The spellings of `value` to try, most readable first. Each is checked by reading it back. */
function spellings(value: string): string[] {
  const found: string[] = [];
  if (/^[\w./:@+,=%^~-]+$/.test(value)) found.push(value);
  const literal = !value.endsWith('\\') && !value.includes('\r');
  if (literal && !value.includes("'") && !value.includes('\n')) found.push(`'${value}'`);
  // Double quotes expand `\n` and `\r` and nothing else: a value holding those two-character
  // sequences, or a quote, cannot be spelled this way.
  if (!/["]|\\[nr]/.test(value) && !value.endsWith('\\')) {
    found.push(`"${value.replace(/\n/g, '\\n').replace(/\r/g, '\\r')}"`);
  }
  if (literal && !value.includes("'")) found.push(`'${value}'`);
  if (literal && !value.includes('`')) found.push(`\`${value}\``);
  if (value !== '' && !/[#\r\n]/.test(value) && value.trim() === value && !/^['"`]/.test(value)) {
    found.push(value);
  }
  return [...new Set(found)];
}

/**
 * A spelling of `value` for a `KEY=` line that reads back exactly on its own.
 * @throws {DotenvValueError} when no spelling can carry the value (for example a carriage return
 *   together with a double quote).
 */
export function formatDotenvValue(value: string): string {
  for (const spelling of spellings(value)) {
    if (parseDotenv(`K=${spelling}\n`).get('K') === value) return spelling;
  }
  throw unrepresentable();
}

function unrepresentable(): DotenvValueError {
  return new DotenvValueError(
    'the value cannot be written to a .env file: no quoting reads it back exactly (a carriage return together with a double quote, or with a literal "\\n" or "\\r", or leading or trailing blanks together with every kind of quote)',
  );
}

/**
 * Returns `text` with `key` set to `value`. The last definition of the key is replaced where it
 * stands (keeping `export`), earlier ones are removed, or a line is added at the end; every
 * other line stays as written.
 * @throws {DotenvValueError} when the value cannot be written so that it reads back exactly and
 *   every other key keeps its value.
 */
export function setDotenvValue(text: string, key: string, value: string): string {
  const definitions = readDotenv(text);
  const expected = parseDotenv(text);
  expected.set(key, value);
  const own = definitions.filter((d) => d.key === key);
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const candidates: Array<(spelling: string) => string> = [];
  const last = own.at(-1);
  if (last !== undefined) {
    candidates.push((spelling) =>
      splice(text, [
        ...own.slice(0, -1).map((d) => removal(text, d)),
        { from: last.start, to: last.end, insert: `${last.exported ? 'export ' : ''}${key}=${spelling}` },
      ]),
    );
  }
  // Where the definition's surroundings would misread the new text: drop it, add it at the end
  // (after a blank line if the last line would take it in).
  const without =
    own.length === 0
      ? text
      : splice(
          text,
          own.map((d) => removal(text, d)),
        );
  const ending = without === '' || /[\r\n]$/.test(without) ? '' : eol;
  candidates.push((spelling) => `${without}${ending}${key}=${spelling}${eol}`);
  candidates.push((spelling) => `${without}${ending}${eol}${key}=${spelling}${eol}`);
  const spelled = spellings(value);
  for (const candidate of candidates) {
    for (const spelling of spelled) {
      const next = candidate(spelling);
      if (sameValues(parseDotenv(next), expected)) return next;
    }
  }
  if (spelled.every((spelling) => parseDotenv(`K=${spelling}\n`).get('K') !== value)) throw unrepresentable();
  throw new DotenvValueError(
    'the file cannot take this definition without other keys reading differently (an unterminated quote elsewhere in the file); edit the file by hand',
  );
}

/**
 * Returns `text` without any definition of `key` (their lines removed, with a comment on the
 * same line), or `undefined` when it had none.
 * @throws {DotenvValueError} when removing the definition would change how other keys read.
 */
export function deleteDotenvValue(text: string, key: string): string | undefined {
  const own = readDotenv(text).filter((d) => d.key === key);
  if (own.length === 0) return undefined;
  const expected = parseDotenv(text);
  expected.delete(key);
  const removed = splice(
    text,
    own.map((d) => removal(text, d)),
  );
  if (sameValues(parseDotenv(removed), expected)) return removed;
  // An empty comment holds the place: nothing can read into it.
  const blanked = splice(
    text,
    own.map((d) => ({ from: d.start, to: d.end, insert: '#' })),
  );
  if (sameValues(parseDotenv(blanked), expected)) return blanked;
  throw new DotenvValueError(
    'removing this definition would change how other keys in the file read (an unterminated quote elsewhere in the file); edit the file by hand',
  );
}

interface Edit {
  readonly from: number;
  readonly to: number;
  readonly insert: string;
}

/** The edit that removes a definition: its whole lines, plus a comment after it on its last line. */
function removal(text: string, definition: DotenvDefinition): Edit {
  const lineStart =
    Math.max(text.lastIndexOf('\n', definition.start - 1), text.lastIndexOf('\r', definition.start - 1)) + 1;
  const rest = /^[^\S\r\n]*(?:#[^\r\n]*)?(\r\n|\r|\n|$)/.exec(text.slice(definition.end));
  const to = rest === null ? definition.end : definition.end + rest[0].length;
  return { from: lineStart, to, insert: '' };
}

/** Applies non-overlapping edits (given in text order). */
function splice(text: string, edits: readonly Edit[]): string {
  let out = '';
  let at = 0;
  for (const edit of [...edits].sort((a, b) => a.from - b.from)) {
    out += text.slice(at, edit.from) + edit.insert;
    at = Math.max(at, edit.to);
  }
  return out + text.slice(at);
}

function sameValues(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [key, value] of a) if (b.get(key) !== value) return false;
  return true;
}
