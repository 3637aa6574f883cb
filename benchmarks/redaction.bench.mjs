// Redaction throughput: our redactor against the two ways services usually mask known values,
// measured in the same process and rounds over the same log text, with outputs checked equal.
//
//   node --expose-gc benchmarks/redaction.bench.mjs [--quick]
//
// Data: about 2 MB of 1 KB JSON log lines; 1% of them hold a secret; secrets are 8-40
// characters, a third of them 8-12. Candidates:
// - ours: `createRedactor({ encodings: [] })`, masking the values as they are (the same job as
//   the baselines), and the default redactor, which also masks base64, base64url, URL and JSON
//   forms of each value (shown for its cost; its output on this data is the same).
// - indexOf: per line, every secret searched with an `indexOf` loop, matches merged, as the
//   GitHub Actions runner's secret masker does.
// - regex: one alternation of the escaped values, longest first, `line.replace(re, mask)`.
// The baselines are slow with many secrets: each round times them over a slice of the lines
// sized to about half a second (figures are MB/s, so the slice size does not bias them).
import { performance } from 'node:perf_hooks';
import { createRedactor, REDACTED } from '@secret-provider/core';
import { compare, median, ratio, report } from './lib/harness.mjs';

const quick = process.argv.includes('--quick');
const COUNTS = [10, 100, 1_000, 10_000];
const ROUNDS = quick ? 3 : 7;
const TARGET_BYTES = 2 * 1024 * 1024;

// ---- data --------------------------------------------------------------------------------------

let seed = 0x5eed;
function random() {
  // mulberry32: the same data on every run.
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (items) => items[Math.floor(random() * items.length)];
const int = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1));

const SECRET_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.';
function makeSecret(index) {
  // A third short (8-12), the rest 13-40.
  const length = index % 3 === 0 ? int(8, 12) : int(13, 40);
  let value = '';
  while (value.length < length) value += SECRET_CHARS[Math.floor(random() * SECRET_CHARS.length)];
  return value;
}
function makeSecrets(count) {
  const set = new Set();
  while (set.size < count) set.add(makeSecret(set.size));
  return [...set];
}

const WORDS =
  'request handled user session cache miss backend upstream connection pool retry timeout order payment invoice account shipment queue worker batch record index query latency'.split(
    ' ',
  );
const PATHS = [
  '/api/v1/orders',
  '/api/v1/users/42',
  '/health',
  '/api/v2/invoices?page=3',
  '/login',
  '/static/app.js',
];
function sentence(words) {
  let text = '';
  for (let i = 0; i < words; i++) text += (i ? ' ' : '') + pick(WORDS);
  return text;
}
/** A pino-style record of about 1 KB; `secret` goes into one field when given. */
function makeRecord(i, secret) {
  const record = {
    level: pick([30, 30, 30, 40, 50]),
    time: 1_700_000_000_000 + i * 37,
    pid: 4242,
    hostname: 'api-7d9f8b6c5-x2x9z',
    reqId: `req-${(i * 7919).toString(36)}`,
    req: {
      method: pick(['GET', 'POST', 'PUT']),
      url: pick(PATHS),
      headers: {
        host: 'api.example.com',
        'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36',
        accept: 'application/json',
      },
      remoteAddress: `10.0.${i % 255}.${(i * 13) % 255}`,
    },
    res: { statusCode: pick([200, 200, 201, 404, 500]), contentLength: int(100, 90_000) },
    responseTime: Math.round(random() * 10_000) / 100,
    msg: sentence(int(8, 16)),
    detail: sentence(int(10, 20)),
    tags: [pick(WORDS), pick(WORDS), pick(WORDS)],
  };
  if (secret !== undefined) record.detail = `${sentence(4)} token=${secret} ${sentence(3)}`;
  let line = JSON.stringify(record);
  // Pad to about 1 KB with a trailing field, as structured loggers add context.
  if (line.length < 1000) {
    record.context = sentence(1);
    while (JSON.stringify(record).length < 1000) record.context += ` ${pick(WORDS)}`;
    line = JSON.stringify(record);
  }
  return { record, line };
}

function makeLog(secrets) {
  const lines = [];
  const records = [];
  let bytes = 0;
  for (let i = 0; bytes < TARGET_BYTES; i++) {
    const secret = i % 100 === 50 ? pick(secrets) : undefined;
    const { line } = makeRecord(i, secret);
    // The record as a logger receives it: built in one go, with flat strings (the generator's
    // piecewise construction would leave slower objects and concatenated strings).
    records.push(JSON.parse(line));
    lines.push(line);
    bytes += line.length + 1;
  }
  return { lines, records, bytes };
}

// ---- baselines ---------------------------------------------------------------------------------

/** GitHub Actions runner style: each secret found with an indexOf loop, replacements merged. */
function makeIndexOfMasker(secrets) {
  return (line) => {
    let found;
    for (const secret of secrets) {
      let at = line.indexOf(secret);
      while (at !== -1) {
        if (found === undefined) found = [];
        found.push([at, at + secret.length]);
        at = line.indexOf(secret, at + 1);
      }
    }
    if (found === undefined) return line;
    found.sort((a, b) => a[0] - b[0]);
    let out = '';
    let last = 0;
    let current = found[0];
    for (let i = 1; i <= found.length; i++) {
      const next = found[i];
      if (next !== undefined && next[0] < current[1]) {
        current = [current[0], Math.max(current[1], next[1])];
        continue;
      }
      out += line.slice(last, current[0]) + REDACTED;
      last = current[1];
      current = next;
    }
    return out + line.slice(last);
  };
}

function makeRegexMasker(secrets) {
  const escaped = [...secrets]
    .sort((a, b) => b.length - a.length)
    .map((s) => s.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&'));
  const re = new RegExp(escaped.join('|'), 'g');
  return (line) => line.replace(re, REDACTED);
}

// ---- measurement -------------------------------------------------------------------------------

function timeOver(fn, lines, count) {
  const start = performance.now();
  let sink = 0;
  for (let i = 0; i < count; i++) sink += fn(lines[i]).length;
  const ms = performance.now() - start;
  if (sink < 0) throw new Error('unreachable');
  return ms;
}

function bytesOf(lines, count) {
  let bytes = 0;
  for (let i = 0; i < count; i++) bytes += lines[i].length;
  return bytes;
}

function checkSame(name, expected, actual, lines, indexes) {
  for (const i of indexes) {
    const a = expected(lines[i]);
    const b = actual(lines[i]);
    if (a !== b) throw new Error(`${name}: output differs on line ${i}`);
  }
}

const rows = [];
const goals = [];
const throughputAt = {};
const secretsAll = makeSecrets(Math.max(...COUNTS) + 1_000);

// ---- cost of adding secrets --------------------------------------------------------------------

{
  const rowsAdd = [];
  for (const [label, base, encodings] of [
    ['1,000 into an empty redactor, values only', 0, []],
    ['1,000 into an empty redactor, with encodings', 0, undefined],
    ['1,000 into one holding 10,000, with encodings', 10_000, undefined],
  ]) {
    const times = [];
    const warmup = 5;
    for (let round = 0; round < warmup + ROUNDS * 2; round++) {
      seed = 0x900 + round;
      const fresh = makeSecrets(1_000);
      const redactor = createRedactor({
        values: secretsAll.slice(0, base),
        ...(encodings ? { encodings } : {}),
      });
      redactor.redact('warm up the redactor');
      globalThis.gc?.();
      const start = performance.now();
      for (const secret of fresh) redactor.add(secret);
      // Any work left for the next scan counts too.
      redactor.redact('the first line logged after adding them');
      const ms = performance.now() - start;
      if (round >= warmup) times.push(ms);
    }
    const ms = median(times);
    rowsAdd.push({ case: label, 'ms (median)': ms.toFixed(3) });
    goals.push([`adding ${label}`, `${ms.toFixed(2)} ms (goal <= 2 ms) ${ms <= 2 ? 'ok' : 'MISSED'}`]);
  }
  report('adding 1,000 secrets', rowsAdd);
}

for (const count of COUNTS) {
  const secrets = secretsAll.slice(0, count);
  seed = 0x10 + count;
  const { lines, bytes } = makeLog(secrets);
  const secretLines = lines.map((line, i) => (line.includes('token=') ? i : -1)).filter((i) => i >= 0);

  const raw = createRedactor({ encodings: [], values: secrets });
  const full = createRedactor({ values: secrets });
  const ours = (line) => raw.redact(line);
  const oursFull = (line) => full.redact(line);
  const indexOf = makeIndexOfMasker(secrets);
  const regex = makeRegexMasker(secrets);

  // Every secret line must come out masked, and identical from all four.
  for (const i of secretLines)
    if (ours(lines[i]) === lines[i]) throw new Error(`line ${i}: secret not masked`);
  checkSame('default encodings', ours, oursFull, lines, lines.keys());

  // Size each baseline's slice from a calibration pass.
  const sliceFor = (fn) => {
    const probe = Math.min(lines.length, 40);
    const ms = Math.max(0.01, timeOver(fn, lines, probe));
    return Math.max(probe, Math.min(lines.length, Math.floor((probe * 500) / ms)));
  };
  const slices = {
    ours: lines.length,
    oursFull: lines.length,
    indexOf: sliceFor(indexOf),
    regex: sliceFor(regex),
  };
  const sliceIndexes = (n) => [...new Set([...Array.from({ length: n }, (_, i) => i), ...secretLines])];
  checkSame('indexOf', ours, indexOf, lines, sliceIndexes(slices.indexOf));
  checkSame('regex', ours, regex, lines, sliceIndexes(slices.regex));

  const candidates = { ours, oursFull, indexOf, regex };
  const samples = { ours: [], oursFull: [], indexOf: [], regex: [] };
  for (let round = 0; round < ROUNDS + 1; round++) {
    for (const [name, fn] of Object.entries(candidates)) {
      globalThis.gc?.();
      const n = slices[name];
      const ms = timeOver(fn, lines, n);
      if (round > 0) samples[name].push(bytesOf(lines, n) / 1e6 / (ms / 1e3));
    }
  }
  const mbps = Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, median(values)]));
  throughputAt[count] = mbps;
  rows.push({
    secrets: count,
    'ours MB/s': mbps.ours.toFixed(1),
    'ours+encodings MB/s': mbps.oursFull.toFixed(1),
    'indexOf MB/s': mbps.indexOf.toFixed(2),
    'regex MB/s': mbps.regex.toFixed(2),
    'ours/indexOf': `${(mbps.ours / mbps.indexOf).toFixed(1)}x`,
    'ours/regex': `${(mbps.ours / mbps.regex).toFixed(1)}x`,
    'ours+enc/regex': `${(mbps.oursFull / mbps.regex).toFixed(1)}x`,
    'data MB': (bytes / 1e6).toFixed(2),
  });
}
report('throughput over ~2 MB of 1 KB JSON lines (medians)', rows);

const regexGoals = { 10: 1, 100: 4, 1000: 100 };
for (const [count, goal] of Object.entries(regexGoals)) {
  const t = throughputAt[count];
  goals.push([`ours vs regex at ${count} secrets`, ratio(t.ours / t.regex, goal, '>=')]);
  goals.push([`ours+encodings vs regex at ${count} secrets`, ratio(t.oursFull / t.regex, goal, '>=')]);
}
goals.push([
  'ours at 1,000 vs at 10 secrets',
  ratio(throughputAt[1_000].ours / throughputAt[10].ours, 0.6, '>='),
]);
goals.push([
  'ours+encodings at 1,000 vs at 10 secrets',
  ratio(throughputAt[1_000].oursFull / throughputAt[10].oursFull, 0.6, '>='),
]);

// ---- per line against JSON.stringify of the same record ----------------------------------------

{
  const secrets = secretsAll.slice(0, 1_000);
  seed = 0x77;
  const { lines, records } = makeLog(secrets);
  const rowsPerLine = [];
  for (const encodings of [[], undefined]) {
    const redactor = createRedactor({ values: secrets, ...(encodings ? { encodings } : {}) });
    // Interleaved per round, so drift on the machine hits both alike.
    const n = lines.length;
    const result = await compare(
      {
        stringify: (i) => JSON.stringify(records[i % n]).length,
        redact: (i) => redactor.redact(lines[i % n]).length,
      },
      { rounds: ROUNDS * 2, iterations: n, warmup: 2 },
    );
    const label = encodings ? 'values only' : 'with encodings';
    const perLine = result.redact / result.stringify;
    rowsPerLine.push({
      redactor: label,
      'JSON.stringify ns/line': result.stringify.toFixed(0),
      'redact ns/line': result.redact.toFixed(0),
      ratio: `${perLine.toFixed(2)}x`,
    });
    goals.push([
      `redact per line vs JSON.stringify of the record (1,000 secrets, ${label})`,
      ratio(perLine, 1.5, '<='),
    ]);
  }
  report('per 1 KB line: redact(line) vs JSON.stringify(record)', rowsPerLine);
}

console.log('\n## goals');
for (const [name, verdict] of goals) console.log(`- ${name}: ${verdict}`);
