/**
 * A small `.env` parser and editor. Parse failures name a line and a reason, never the text:
 * the text is a secret.
 *
 * Syntax (a superset of what most `.env` tools write):
 * - `KEY=value`, `export KEY=value` and `KEY: value`; keys are letters, digits, `_`, `.` and `-`.
 * - Blank lines and lines starting with `#` are ignored; an unquoted value ends at ` #` (a `#`
 *   after whitespace starts a comment, so `pa#ss` stays whole) and is trimmed.
 * - `'single'` and `` `backtick` `` values are literal; `"double"` values understand `\n`, `\r`,
 *   `\t`, `\\` and `\"`. Quoted values may span lines.
 * - A later definition of a key wins, as in `dotenv`.
 */

/** Where a key's definition sits in the text, so the editor can replace it in place. */
interface Definition {
  readonly key: string;
  readonly value: string;
  /** First and last line (0-based, inclusive) of the definition. */
  readonly startLine: number;
  readonly endLine: number;
  readonly exported: boolean;
}

/** A parse failure: a line number and a reason, no content. */
export class DotenvSyntaxError extends Error {
  readonly line: number;
  constructor(line: number, reason: string) {
    super(`line ${line}: ${reason}`);
    this.name = 'DotenvSyntaxError';
    this.line = line;
  }
}

const KEY_PATTERN = /^[A-Za-z0-9_.-]+$/;
const LINE_START = /^\s*(export\s+)?([A-Za-z0-9_.-]+)\s*(?:=|:(?=\s))[ \t]*/;

/** Whether `key` can be written to a `.env` file. */
export function isDotenvKey(key: string): boolean {
  return KEY_PATTERN.test(key);
}

function parseDefinitions(text: string): Definition[] {
  const source = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const lines = source.split('\n').map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  const definitions: Definition[] = [];
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index] as string;
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const start = LINE_START.exec(line);
    if (start === null) throw new DotenvSyntaxError(index + 1, 'expected KEY=VALUE');
    const exported = start[1] !== undefined;
    const key = start[2] as string;
    const rest = line.slice(start[0].length);
    const quote = rest[0];
    if (quote !== '"' && quote !== "'" && quote !== '`') {
      definitions.push({ key, value: unquoted(rest), startLine: index, endLine: index, exported });
      continue;
    }
    // A quoted value: scan for the closing quote, across lines if needed.
    let value = '';
    let lineIndex = index;
    let cursor = 1;
    let current = rest;
    let closed = false;
    while (!closed) {
      while (cursor < current.length) {
        const char = current[cursor] as string;
        if (quote === '"' && char === '\\' && cursor + 1 < current.length) {
          value += unescapeChar(current[cursor + 1] as string);
          cursor += 2;
          continue;
        }
        if (char === quote) {
          closed = true;
          cursor++;
          break;
        }
        value += char;
        cursor++;
      }
      if (closed) break;
      lineIndex++;
      if (lineIndex >= lines.length) throw new DotenvSyntaxError(index + 1, 'unterminated quoted value');
      value += '\n';
      current = lines[lineIndex] as string;
      cursor = 0;
    }
    const after = current.slice(cursor).trim();
    if (after !== '' && !after.startsWith('#')) {
      throw new DotenvSyntaxError(lineIndex + 1, 'unexpected text after a quoted value');
    }
    definitions.push({ key, value, startLine: index, endLine: lineIndex, exported });
    index = lineIndex;
  }
  return definitions;
}

function unquoted(rest: string): string {
  const comment = /(^|[ \t])#/.exec(rest);
  return (comment === null ? rest : rest.slice(0, comment.index)).trim();
}

function unescapeChar(char: string): string {
  switch (char) {
    case 'n':
      return '\n';
    case 'r':
      return '\r';
    case 't':
      return '\t';
    case '"':
    case '\\':
      return char;
    default:
      // Unknown escapes stay as written, as most `.env` readers do.
      return `\\${char}`;
  }
}

/**
 * Parses `.env` text into key -> value (a later definition wins).
 * @throws {DotenvSyntaxError} with a line number and no content.
 */
export function parseDotenv(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const definition of parseDefinitions(text)) values.set(definition.key, definition.value);
  return values;
}

/**
 * Writes a value so that {@link parseDotenv} (and, for values without newlines, common `.env`
 * readers such as `dotenv`) reads it back unchanged.
 */
export function formatDotenvValue(value: string): string {
  if (/^[A-Za-z0-9_./:@+,=%^~-]*$/.test(value)) return value;
  // Single quotes are literal everywhere; avoid them only where a reader could misread the end.
  if (!/['\n\r]/.test(value) && !value.endsWith('\\')) return `'${value}'`;
  return `"${value.replace(/[\\"\n\r\t]/g, (char) => ({ '\\': '\\\\', '"': '\\"', '\n': '\\n', '\r': '\\r', '\t': '\\t' })[char] as string)}"`;
}

/**
 * Returns `text` with `key` set to `value`: the last definition is replaced in place (keeping an
 * `export` prefix), earlier ones are removed, or a line is appended. Other lines stay as written.
 * @throws {DotenvSyntaxError} when `text` does not parse (nothing is rewritten then).
 */
export function setDotenvValue(text: string, key: string, value: string): string {
  return edit(text, key, value);
}

/** Returns `text` without any definition of `key`, or `undefined` when it had none. */
export function deleteDotenvValue(text: string, key: string): string | undefined {
  const result = edit(text, key, undefined);
  return result === text ? undefined : result;
}

function edit(text: string, key: string, value: string | undefined): string {
  const definitions = parseDefinitions(text).filter((d) => d.key === key);
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const bom = text.startsWith('\uFEFF') ? '\uFEFF' : '';
  const lines = (bom ? text.slice(1) : text)
    .split('\n')
    .map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  const last = definitions.at(-1);
  if (last === undefined) {
    if (value === undefined) return text;
    if (lines.length > 0 && lines.at(-1) === '') lines.pop();
    lines.push(`${key}=${formatDotenvValue(value)}`);
    return `${bom}${lines.join(eol)}${eol}`;
  }
  const drop = new Set<number>();
  for (const definition of definitions) {
    for (let line = definition.startLine; line <= definition.endLine; line++) drop.add(line);
  }
  const out: string[] = [];
  lines.forEach((line, index) => {
    if (index === last.startLine && value !== undefined) {
      out.push(`${last.exported ? 'export ' : ''}${key}=${formatDotenvValue(value)}`);
    } else if (!drop.has(index)) {
      out.push(line);
    }
  });
  return `${bom}${out.join(eol)}`;
}
