/** The encodings of a secret value a redactor masks besides the value itself. */
export type RedactionEncoding = 'base64' | 'base64url' | 'url' | 'json';

/** Every encoding, the default of a redactor. */
export const ALL_ENCODINGS: readonly RedactionEncoding[] = Object.freeze([
  'base64',
  'base64url',
  'url',
  'json',
]);

// Characters JSON.stringify escapes inside a string (and surrogates, which it escapes when lone).
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what JSON escapes
const JSON_SPECIAL = /["\\\u0000-\u001f]|[\ud800-\udfff]/;
const HEX = '0123456789ABCDEF';

const URL_RESERVED = 1;
const JSON_ESCAPED = 2;
const NON_ASCII = 4;
// Characters no URL encoding touches: a value made only of these is its own URL-encoded form.
const URL_RESERVED_CHAR = /[^A-Za-z0-9\-._~]/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: any character beyond ASCII
const NON_ASCII_CHAR = /[^\u0000-\u007f]/;

/**
 * What the value holds that its encodings change. Most values hold none of it, which one
 * native regular expression test answers.
 */
function classify(value: string): number {
  if (!URL_RESERVED_CHAR.test(value)) return 0;
  let flags = URL_RESERVED;
  if (JSON_SPECIAL.test(value)) flags |= JSON_ESCAPED;
  if (NON_ASCII_CHAR.test(value)) flags |= NON_ASCII;
  return flags;
}

/**
 * The strings to mask for one value. The first `verbatimOnly` of them hold characters JSON
 * escapes, so a JSON document never holds them as they are (their escaped forms follow).
 */
export interface ValueForms {
  readonly forms: string[];
  readonly verbatimOnly: number;
}

/**
 * The strings to mask for one text value: the value, each line of a multi-line value, and the
 * requested encodings. Forms shorter than `minLength` are left out (they would mask unrelated
 * text); the caller has already checked the value itself.
 */
export function textForms(
  value: string,
  encodings: ReadonlySet<RedactionEncoding>,
  minLength: number,
): ValueForms {
  const flags = classify(value);
  const forms: string[] = [];
  let verbatimOnly = 0;
  if ((flags & JSON_ESCAPED) !== 0) {
    // Verbatim-only forms first.
    const raw = [value];
    // Line-oriented loggers print a multi-line value (a PEM key) one line at a time.
    if (value.includes('\n') || value.includes('\r')) raw.push(...value.split(/\r?\n|\r/));
    for (const form of raw) if (JSON_SPECIAL.test(form)) push(forms, form, minLength);
    verbatimOnly = forms.length;
    for (const form of raw) if (!JSON_SPECIAL.test(form)) push(forms, form, minLength);
    if (encodings.has('json')) {
      const once = JSON.stringify(value).slice(1, -1);
      push(forms, once, minLength);
      // A JSON document logged as a string field of another JSON document is escaped twice.
      push(forms, JSON.stringify(once).slice(1, -1), minLength);
    }
  } else {
    forms.push(value);
  }
  if (encodings.has('url') && (flags & URL_RESERVED) !== 0) {
    const component = percentEncode(value, keepInComponent);
    if (component !== undefined) {
      push(forms, component, minLength);
      // application/x-www-form-urlencoded (URLSearchParams, HTML forms).
      push(forms, percentEncode(value, keepInForm)?.replace(/%20/g, '+') ?? component, minLength);
      // The WHATWG userinfo set: how `new URL()` prints a password in `href`.
      push(forms, percentEncode(value, keepInUserinfo) ?? component, minLength);
    }
  }
  if (encodings.has('base64') || encodings.has('base64url')) {
    addBase64Forms(
      forms,
      (flags & NON_ASCII) === 0 ? value : Buffer.from(value, 'utf8'),
      encodings,
      minLength,
    );
  }
  return { forms, verbatimOnly };
}

/**
 * The strings to mask for a binary value: its UTF-8 text when it decodes cleanly, its hex and
 * its base64 forms.
 */
export function bytesForms(
  bytes: Uint8Array,
  encodings: ReadonlySet<RedactionEncoding>,
  minLength: number,
): ValueForms {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = decodeUtf8(buffer);
  const { forms, verbatimOnly } =
    text === undefined ? { forms: [], verbatimOnly: 0 } : textForms(text, encodings, minLength);
  const hex = buffer.toString('hex');
  push(forms, hex, minLength);
  push(forms, hex.toUpperCase(), minLength);
  if (encodings.has('base64') || encodings.has('base64url'))
    addBase64Forms(forms, buffer, encodings, minLength);
  return { forms, verbatimOnly };
}

function push(forms: string[], form: string, minLength: number): void {
  if (form.length >= minLength && !forms.includes(form)) forms.push(form);
}

const fatalDecoder = new TextDecoder('utf-8', { fatal: true });
/** Reused for encoding: values are short, and an allocation per value is most of the cost. */
let scratch = Buffer.alloc(256);

function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return fatalDecoder.decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * Base64 of the bytes as a whole (padded, and unpadded as base64url usually is), and
 * the runs of base64 characters the bytes produce wherever they sit inside a larger encoded
 * payload: at each of the three alignments, without the characters that also depend on the
 * neighbouring bytes (an `Authorization: Basic` header encodes `user:password`, so the password
 * alone lands at any alignment).
 */
function addBase64Forms(
  forms: string[],
  bytes: Uint8Array | string,
  encodings: ReadonlySet<RedactionEncoding>,
  minLength: number,
): void {
  const n = bytes.length;
  // The three alignments side by side, each segment a whole number of 3-byte groups so that
  // their encodings do not interact: one native encoding call instead of three.
  const segment = 3 * Math.ceil((n + 2) / 3);
  const total = 3 * segment;
  if (scratch.length < total) scratch = Buffer.alloc(2 ** Math.ceil(Math.log2(total)));
  const buffer = scratch;
  for (let shift = 0; shift < 3; shift++) {
    const at = shift * segment;
    // Zero bytes around the value (the neighbours whose bits the trimming removes).
    for (let i = at; i < at + shift; i++) buffer[i] = 0;
    for (let i = at + shift + n; i < at + segment; i++) buffer[i] = 0;
    // An ASCII string is its own UTF-8: copy its codes rather than encode it.
    if (typeof bytes === 'string') for (let i = 0; i < n; i++) buffer[at + shift + i] = bytes.charCodeAt(i);
    else buffer.set(bytes, at + shift);
  }
  const encoded = buffer.toString('base64', 0, total);
  const segmentChars = (segment / 3) * 4;
  const standard = encodings.has('base64');
  const url = encodings.has('base64url') && (encoded.includes('+') || encoded.includes('/'));
  for (let shift = 0; shift < 3; shift++) {
    const from = shift * segmentChars;
    const totalBits = 8 * (shift + n);
    // Characters wholly inside the value's bits: those before `first` mix in the preceding
    // bytes, those from `last` on mix in the following ones.
    const first = Math.ceil((8 * shift) / 6);
    const last = Math.floor(totalBits / 6);
    const inner = encoded.slice(from + first, from + last);
    // The whole value, unpadded: its last character holds the value's final bits.
    const whole = shift === 0 ? encoded.slice(from, from + Math.ceil(totalBits / 6)) : undefined;
    if (standard || !url) {
      if (whole !== undefined) {
        push(forms, whole, minLength);
        if (n % 3 !== 0) push(forms, whole + (n % 3 === 1 ? '==' : '='), minLength);
      }
      push(forms, inner, minLength);
    }
    if (url) {
      if (whole !== undefined) push(forms, toBase64Url(whole), minLength);
      push(forms, toBase64Url(inner), minLength);
    }
  }
}

function toBase64Url(base64: string): string {
  return base64.includes('+') || base64.includes('/')
    ? base64.replace(/\+/g, '-').replace(/\//g, '_')
    : base64;
}

function keepInComponent(code: number): boolean {
  // encodeURIComponent leaves A-Z a-z 0-9 - _ . ! ~ * ' ( )
  return isAlphanumeric(code) || "-_.!~*'()".includes(String.fromCharCode(code));
}

function keepInForm(code: number): boolean {
  // The application/x-www-form-urlencoded set leaves A-Z a-z 0-9 * - . _ (space becomes +).
  return isAlphanumeric(code) || '*-._'.includes(String.fromCharCode(code));
}

function keepInUserinfo(code: number): boolean {
  // Printable ASCII minus the WHATWG userinfo percent-encode set.
  return code > 0x20 && code < 0x7f && !' "#<>?`{}/:;=@[\\]^|'.includes(String.fromCharCode(code));
}

function isAlphanumeric(code: number): boolean {
  return (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a);
}

/** Percent-encodes the UTF-8 bytes of characters `keep` rejects; `undefined` for lone surrogates. */
function percentEncode(value: string, keep: (code: number) => boolean): string | undefined {
  let out = '';
  for (const char of value) {
    const code = char.codePointAt(0) ?? 0;
    if (code < 0x80 && keep(code)) {
      out += char;
      continue;
    }
    if (code >= 0xd800 && code <= 0xdfff) return undefined;
    for (const byte of Buffer.from(char, 'utf8')) out += `%${HEX[byte >> 4]}${HEX[byte & 15]}`;
  }
  return out;
}
