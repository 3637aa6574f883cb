// The one `.env` reader against `dotenv.parse`, its reference, over randomized files; and the
// editor (the file provider's set and delete on a .env file) against a model, checked by
// `dotenv.parse` of the file after every operation.
//
// Defaults keep the run inside the suite's time budget; DOTENV_FUZZ_SEED replays a run and
// DOTENV_FUZZ_SCALE multiplies its size.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import { isSecretError } from '@secret-provider/core';
import { FileProvider } from '@secret-provider/file';
import { parseDotenv, readDotenv } from '@secret-provider/file/dotenv';
import { tempDir } from '@secret-provider/testing';
import dotenv from 'dotenv';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';

const SEED = Number(process.env.DOTENV_FUZZ_SEED ?? 20_260_101);
const SCALE = Math.max(1, Number(process.env.DOTENV_FUZZ_SCALE ?? 1));

/**
 * `dotenv.parse` as a map. dotenv fills a plain object, where `__proto__=x` sets nothing; our
 * reader keeps it as a key. To compare that key too, the text is read by dotenv with the name
 * spelled differently (the grammar does not tell the spellings apart), then spelled back.
 */
const SENTINEL = '__sp_proto__';
function reference(text: string): Map<string, string> {
  const parsed = dotenv.parse(text.replaceAll('__proto__', SENTINEL));
  return new Map(
    Object.entries(parsed).map(([key, value]) => [
      key.replaceAll(SENTINEL, '__proto__'),
      value.replaceAll(SENTINEL, '__proto__'),
    ]),
  );
}

const KEYS = [
  'A',
  'B',
  'DB_URL',
  'a.b',
  'x-y',
  '_k9',
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
];
// Characters that matter to the grammar, plus some that do not.
const CHARS = [
  'a',
  'Z',
  '0',
  ' ',
  '\t',
  '#',
  "'",
  '"',
  '`',
  '\\',
  'n',
  'r',
  '=',
  ':',
  '$',
  '{',
  '}',
  'é',
  '✓',
];
const text = (max: number) => fc.array(fc.constantFrom(...CHARS), { maxLength: max }).map((c) => c.join(''));
const blanks = fc.constantFrom('', ' ', '  ', '\t', ' \t ');
const key = fc.constantFrom(...KEYS);

/** A value spelled in every way dotenv users write one (the newline stands for a line break). */
const valuePart = fc.oneof(
  text(12),
  text(10).map((v) => `'${v}'`),
  text(10).map((v) => `"${v}"`),
  text(10).map((v) => `\`${v}\``),
  fc.tuple(text(6), text(6)).map(([a, b]) => `"${a}\\n${b}\\r"`),
  fc.tuple(fc.constantFrom("'", '"', '`'), text(6), text(6)).map(([q, a, b]) => `${q}${a}\n${b}${q}`),
  fc.tuple(fc.constantFrom("'", '"', '`'), text(8)).map(([q, a]) => `${q}${a}`),
  text(8).map((v) => `${v}#${v}`),
);

const line = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .tuple(fc.boolean(), key, fc.stringMatching(/^[\w./:@-]{0,12}$/))
      .map(([exported, k, v]) => `${exported ? 'export ' : ''}${k}=${v}`),
  },
  {
    weight: 6,
    arbitrary: fc
      .tuple(
        blanks,
        fc.boolean(),
        key,
        blanks,
        fc.constantFrom('=', ': ', ':'),
        blanks,
        valuePart,
        blanks,
        fc.option(text(8)),
      )
      .map(
        ([lead, exported, k, before, sep, after, value, trail, comment]) =>
          `${lead}${exported ? 'export ' : ''}${k}${before}${sep}${after}${value}${trail}${comment === null ? '' : `#${comment}`}`,
      ),
  },
  { weight: 2, arbitrary: fc.tuple(blanks, text(20)).map(([lead, c]) => `${lead}#${c}`) },
  { weight: 2, arbitrary: blanks },
  // Lines that are not definitions: dotenv skips them (or, at times, reads them into a neighbour).
  { weight: 2, arbitrary: text(20) },
  { weight: 1, arbitrary: fc.tuple(key, text(6)).map(([k, v]) => `${k} ${v}`) },
  { weight: 1, arbitrary: text(6).map((v) => `=${v}`) },
);

/** A file: lines joined by one kind of line break, or mixed ones; sometimes with a BOM. */
const file = fc
  .tuple(
    fc.array(line, { minLength: 4, maxLength: 40 }),
    fc.constantFrom('\n', '\r\n', 'mixed'),
    fc.boolean(),
    fc.boolean(),
  )
  .chain(([lines, eol, bom, final]) =>
    (eol === 'mixed'
      ? fc.array(fc.constantFrom('\n', '\r\n', '\r'), { minLength: lines.length, maxLength: lines.length })
      : fc.constant(lines.map(() => eol))
    ).map((breaks) => {
      const body = lines.map((l, i) => (i < lines.length - 1 || final ? l + breaks[i] : l)).join('');
      const source = `${bom ? '\uFEFF' : ''}${body}`;
      return { text: source, lines: source.split(/\r\n|\r|\n/).length };
    }),
  );

const figures: string[] = [];
afterAll(() => {
  for (const figure of figures) console.log(figure);
});

describe('the .env reader agrees with dotenv.parse', () => {
  it(`on every line of randomized files (seed ${SEED})`, () => {
    let files = 0;
    let lines = 0;
    let definitions = 0;
    let nodeDisagrees = 0;
    fc.assert(
      fc.property(file, ({ text: source, lines: count }) => {
        files++;
        lines += count;
        const ours = parseDotenv(source);
        definitions += readDotenv(source).length;
        expect(Object.fromEntries(ours)).toEqual(Object.fromEntries(reference(source)));
        // Node's reader, for the record (not a requirement: see the figure printed).
        const node = new Map(Object.entries(parseEnv(source)));
        const withoutProto = new Map([...ours].filter(([k]) => k !== '__proto__'));
        if (JSON.stringify([...node].sort()) !== JSON.stringify([...withoutProto].sort())) nodeDisagrees++;
      }),
      { seed: SEED, numRuns: 2_000 * SCALE },
    );
    figures.push(
      `.env agreement (seed ${SEED}): ${files} files, ${lines} lines, ${definitions} definitions read, 0 disagreements with dotenv.parse; util.parseEnv differed on ${nodeDisagrees} files`,
    );
    expect(lines).toBeGreaterThanOrEqual(10_000);
  });

  it('on the cases the issue names', () => {
    for (const source of [
      'PASSWORD=pa#ss\n',
      'PASSWORD="pa#ss"\n',
      'bad line\nGOOD=1\n',
      '__proto__=x\nconstructor=y\ntoString=z\nhasOwnProperty=w\n',
      'A=1\r\nB="two\r\nlines"\r\n',
      "export A='x' # c\n#only\n\n   \nA=later\n",
    ]) {
      expect(Object.fromEntries(parseDotenv(source)), JSON.stringify(source)).toEqual(
        Object.fromEntries(reference(source)),
      );
    }
    expect(parseDotenv('__proto__=x\n').get('__proto__')).toBe('x');
  });
});

/** Comment lines of `source` (outside every definition, quoted values included): edits keep them. */
function commentLines(source: string): string[] {
  const spans = readDotenv(source);
  const found: string[] = [];
  for (const match of source.matchAll(/[^\r\n]*(?:\r\n|\r|\n|$)/g)) {
    const from = match.index;
    const to = from + match[0].length;
    const content = match[0].replace(/[\r\n]+$/, '');
    if (content === '' || !/^\s*#/.test(content)) continue;
    if (spans.some((d) => d.start < to && d.end > from)) continue;
    found.push(content);
  }
  return found;
}

const VALUE_CHARS = [...CHARS, '\n', '\r', 'x'];
const anyValue = fc.oneof(
  fc.array(fc.constantFrom(...VALUE_CHARS), { maxLength: 12 }).map((c) => c.join('')),
  fc.string({ maxLength: 8 }),
);
const operation = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(fc.constant('set' as const), key, anyValue) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('delete' as const), key, fc.constant('')) },
);

describe('editing a .env file through the provider', () => {
  it(`keeps dotenv.parse of the file equal to the model after every set and delete (seed ${SEED})`, async () => {
    const { dir, remove } = tempDir('dotenv-edit-');
    let runs = 0;
    let operations = 0;
    let refused = 0;
    let untouchedLines = 0;
    try {
      await fc.assert(
        fc.asyncProperty(file, fc.array(operation, { minLength: 1, maxLength: 8 }), async (start, ops) => {
          runs++;
          const path = join(dir, `${runs}.env`);
          writeFileSync(path, start.text, { mode: 0o600 });
          const model = reference(start.text);
          const comments = commentLines(start.text);
          const provider = new FileProvider({ path, checkPermissions: false });
          try {
            for (const [kind, name, value] of ops) {
              operations++;
              const before = readFileSync(path, 'utf8');
              try {
                if (kind === 'set') {
                  await provider.set(name, value);
                  model.set(name, value);
                } else {
                  await provider.delete(name);
                  model.delete(name);
                }
              } catch (error) {
                if (kind === 'delete' && isSecretError(error, 'NOT_FOUND')) {
                  expect(model.has(name)).toBe(false);
                } else {
                  // What .env cannot carry is refused, typed, and the file is left alone.
                  expect(isSecretError(error, 'INVALID_VALUE'), String(error)).toBe(true);
                  refused++;
                }
                expect(readFileSync(path, 'utf8')).toBe(before);
              }
              const after = readFileSync(path, 'utf8');
              expect(Object.fromEntries(reference(after))).toEqual(Object.fromEntries(model));
              if (model.has(name)) expect((await provider.get(name)).reveal()).toBe(model.get(name));
            }
            const final = readFileSync(path, 'utf8');
            for (const comment of comments) expect(final).toContain(comment);
            untouchedLines += comments.length;
          } finally {
            await provider.close();
          }
        }),
        { seed: SEED, numRuns: 400 * SCALE },
      );
    } finally {
      remove();
    }
    figures.push(
      `.env edit round-trip (seed ${SEED}): ${runs} files, ${operations} set/delete operations, ${refused} refused with INVALID_VALUE, ${untouchedLines} comment lines kept; dotenv.parse equalled the model after every operation`,
    );
    expect(operations).toBeGreaterThan(runs);
  }, 120_000);
});
