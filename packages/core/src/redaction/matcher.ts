/**
 * Finds every occurrence of thousands of patterns in one pass over a text, in time that barely
 * depends on how many patterns there are.
 *
 * Every pattern is at least `minLength` (m) UTF-16 code units long. Split m as q + k - 1: any
 * occurrence of a pattern covers at least k consecutive positions where a q-gram of it starts,
 * so one of them is a multiple of k. The scan therefore looks only at the q-gram at every k-th
 * position of the text (a sampling filter in the family of Wu-Manber and sampled q-gram
 * indexes) and tests it against a bitmap of the q-grams each pattern has at offsets 0..k-1.
 * With m = 8 that is one 4-character probe per 5 characters of text. To make a probe one load,
 * the text is copied into a byte buffer (the low byte of each code unit, a native copy) and
 * read four bytes at a time; the filter may let through a q-gram whose code units differ above
 * the low byte, never the reverse. A hit yields candidate start positions, each verified
 * exactly by walking a hashed trie whose levels consume m characters at a time, so
 * verification costs the length of the text compared, not the number of patterns, even when
 * thousands of patterns share a long prefix (JWT headers, `sk_live_`).
 *
 * Adding a pattern is incremental (a few hash insertions). Removing one is cheap in the trie;
 * the q-gram filter is rebuilt lazily on the next scan after removals.
 *
 * This beats an Aho-Corasick automaton here because log text rarely matches: the automaton
 * touches every character and its tables, which for thousands of patterns with encodings run
 * to millions of states, do not stay in cache; this filter touches a fifth of the positions and
 * a bitmap of a few kilobytes to a few hundred.
 */
export class PatternMatcher {
  readonly #minLength: number;
  readonly #q: number;
  readonly #k: number;
  /** Keeps the low `8 * q` bits of a four-byte read. */
  readonly #qMask: number;
  /** Distinct patterns registered (they live in the trie). */
  #count = 0;
  /** Pattern -> registrations beyond the first, for the rare pattern two values share. */
  readonly #extraRefs = new Map<string, number>();
  /** Patterns a JSON document never holds verbatim (they contain `"`, `\` or control characters). */
  readonly #jsonUnsafe = new Set<string>();
  /** Root of the verification trie: hash of a pattern's first m characters -> pattern or node. */
  readonly #root = new Map<number, Slot>();
  /**
   * The q-grams, in an open-addressing table of one word each: the top 24 bits of the
   * q-gram's multiplicative hash, and in the low 8 bits the mask of offsets (0..k-1) at which
   * some pattern has it (never 0, so 0 means empty). Q-grams that agree on 24 bits share an
   * entry and their offsets: more candidates to verify, never a missed one.
   */
  #gramKeys = new Int32Array(INITIAL_GRAM_SLOTS);
  #gramShift = 32 - Math.log2(INITIAL_GRAM_SLOTS);
  #gramCount = 0;
  /** One bit per q-gram hash prefix: the filter the scan reads first. */
  #bits = new Int32Array((INITIAL_GRAM_SLOTS / 2) * (BITS_PER_GRAM / 32));
  #bitShift = 32 - Math.log2((INITIAL_GRAM_SLOTS / 2) * BITS_PER_GRAM);
  #gramsStale = false;
  #maxLength = 0;
  #maxLengthStale = false;
  #lineBreakPatterns = 0;
  /** Where the text is copied for four-byte reads; grows up to one block. */
  #scratch = Buffer.alloc(1024 + 8);
  #view = new DataView(this.#scratch.buffer, this.#scratch.byteOffset, this.#scratch.byteLength);

  constructor(minLength: number) {
    if (!Number.isInteger(minLength) || minLength < 1)
      throw new RangeError('minLength must be a positive integer');
    this.#minLength = minLength;
    this.#q = Math.min(4, Math.ceil(minLength / 2));
    // At most 8 offsets, so a mask fits in a byte and a hit tries few starts.
    this.#k = Math.min(8, minLength - this.#q + 1);
    this.#qMask = this.#q === 4 ? -1 : (1 << (8 * this.#q)) - 1;
  }

  get size(): number {
    return this.#count;
  }

  /** The longest registered pattern (0 when empty). */
  get maxLength(): number {
    if (this.#maxLengthStale) {
      let max = 0;
      for (const pattern of this.#patterns()) if (pattern.length > max) max = pattern.length;
      this.#maxLength = max;
      this.#maxLengthStale = false;
    }
    return this.#maxLength;
  }

  /** Whether some pattern holds a line break (then a match can span lines). */
  get spansLines(): boolean {
    return this.#lineBreakPatterns > 0;
  }

  /**
   * Registers a pattern (counted: add twice, remove twice). Shorter than `minLength`: ignored.
   * @param verbatimOnly the pattern holds characters JSON escapes (`"`, `\\`, controls), so a
   *   JSON document holds it only in its escaped form, which is registered on its own.
   */
  add(pattern: string, verbatimOnly = false): void {
    if (pattern.length < this.#minLength) return;
    const inserted = this.#insertTrie(pattern);
    if (inserted === DUPLICATE) {
      this.#extraRefs.set(pattern, (this.#extraRefs.get(pattern) ?? 0) + 1);
      return;
    }
    this.#count++;
    if (pattern.length > this.#maxLength) this.#maxLength = pattern.length;
    if (verbatimOnly) {
      this.#jsonUnsafe.add(pattern);
      if (pattern.includes('\n') || pattern.includes('\r')) this.#lineBreakPatterns++;
    }
    // A pattern with the same first characters as another (a base64 form and its trimmed
    // prefix) has the same q-grams at the sampled offsets: nothing to index.
    if (!this.#gramsStale && inserted !== SHARES_GRAMS) this.#indexGrams(pattern);
  }

  /** Unregisters one count of a pattern. */
  remove(pattern: string): void {
    const extra = this.#extraRefs.get(pattern);
    if (extra !== undefined) {
      if (extra > 1) this.#extraRefs.set(pattern, extra - 1);
      else this.#extraRefs.delete(pattern);
      return;
    }
    if (!this.#removeTrie(pattern)) return;
    this.#count--;
    if (this.#jsonUnsafe.delete(pattern) && (pattern.includes('\n') || pattern.includes('\r'))) {
      this.#lineBreakPatterns--;
    }
    if (pattern.length === this.#maxLength) this.#maxLengthStale = true;
    // A q-gram may be shared with other patterns: rebuild the filter before the next scan.
    this.#gramsStale = true;
  }

  clear(): void {
    this.#count = 0;
    this.#extraRefs.clear();
    this.#jsonUnsafe.clear();
    this.#root.clear();
    this.#resetGrams();
    this.#gramsStale = false;
    this.#maxLength = 0;
    this.#maxLengthStale = false;
    this.#lineBreakPatterns = 0;
  }

  /**
   * The stretches of `text` covered by occurrences, as a flat list of `[start, end)` pairs in
   * order, overlapping and nested occurrences merged (so the longest match wins and overlapping
   * values are masked as one); `undefined` when nothing matches. With `json`, patterns that a
   * JSON document can only hold escaped are skipped, so masking never cuts an escape sequence.
   */
  scan(text: string, json = false): number[] | undefined {
    const n = text.length;
    if (n < this.#minLength || this.#count === 0) return undefined;
    if (this.#gramsStale) this.#rebuildGrams();
    const k = this.#k;
    const q = this.#q;
    // Blocks of whole strides, so the sampled positions stay multiples of k across blocks.
    const block = k * Math.floor(BLOCK_SIZE / k);
    let found: number[] | undefined;
    for (let base = 0; base + q <= n; base += block) {
      const length = Math.min(n - base, block + q - 1);
      found = this.#scanBlock(text, base, length, json, found);
    }
    return found;
  }

  #scanBlock(
    text: string,
    base: number,
    length: number,
    json: boolean,
    found: number[] | undefined,
  ): number[] | undefined {
    if (this.#scratch.length < length + 8) {
      this.#scratch = Buffer.alloc(Math.min(BLOCK_SIZE, 2 ** Math.ceil(Math.log2(length))) + 16);
      this.#view = new DataView(this.#scratch.buffer, this.#scratch.byteOffset, this.#scratch.byteLength);
    }
    // Latin-1 keeps the low byte of every code unit: one native copy, then one load per probe.
    this.#scratch.write(length === text.length ? text : text.slice(base, base + length), 0, length, 'latin1');
    const view = this.#view;
    const bits = this.#bits;
    const bitShift = this.#bitShift;
    const keys = this.#gramKeys;
    const gramShift = this.#gramShift;
    const gramMask = keys.length - 1;
    const qMask = this.#qMask;
    const k = this.#k;
    const last = length - this.#q;
    let end = found === undefined ? -1 : (found[found.length - 1] ?? -1);
    for (let i = 0; i <= last; i += k) {
      const h = Math.imul(view.getInt32(i, true) & qMask, GOLDEN);
      const bit = h >>> bitShift;
      if (((bits[bit >>> 5] as number) & (1 << (bit & 31))) === 0) continue;
      const tag = h & TAG_MASK;
      let slot = h >>> gramShift;
      let offsets = 0;
      for (let stored = keys[slot] as number; stored !== 0; stored = keys[slot] as number) {
        if ((stored & TAG_MASK) === tag) {
          offsets = stored & 0xff;
          break;
        }
        slot = (slot + 1) & gramMask;
      }
      if (offsets === 0) continue;
      const p = base + i;
      // Highest offset first, so candidate starts come in increasing order.
      for (let j = k - 1; j >= 0; j--) {
        if ((offsets & (1 << j)) === 0) continue;
        const start = p - j;
        if (start < 0) continue;
        const matched = this.#longestAt(text, start, json);
        if (matched === 0) continue;
        if (found === undefined) {
          found = [start, start + matched];
          end = start + matched;
        } else if (start < end) {
          if (start + matched > end) {
            end = start + matched;
            found[found.length - 1] = end;
          }
        } else {
          found.push(start, start + matched);
          end = start + matched;
        }
      }
    }
    return found;
  }

  /** Length of the longest pattern starting at `start` (0 when none). */
  #longestAt(text: string, start: number, json: boolean): number {
    const m = this.#minLength;
    const n = text.length;
    let best = 0;
    let level: Map<number, Slot> = this.#root;
    let depth = 0;
    while (start + depth + m <= n) {
      const slot = level.get(hashRange(text, start + depth, m));
      if (slot === undefined) break;
      if (typeof slot === 'string') {
        if (slot.length > best && text.startsWith(slot, start) && !(json && this.#jsonUnsafe.has(slot))) {
          best = slot.length;
        }
        break;
      }
      for (const item of slot.items) {
        if (item.length > best && text.startsWith(item, start) && !(json && this.#jsonUnsafe.has(item))) {
          best = item.length;
        }
      }
      if (slot.children === undefined) break;
      level = slot.children;
      depth = slot.depth;
    }
    return best;
  }

  /** Adds a pattern to the trie: {@link INSERTED}, {@link SHARES_GRAMS} or {@link DUPLICATE}. */
  #insertTrie(pattern: string): number {
    const m = this.#minLength;
    let level = this.#root;
    let depth = 0;
    let result = INSERTED;
    for (;;) {
      const h = hashRange(pattern, depth, m);
      let slot = level.get(h);
      if (slot === undefined) {
        level.set(h, pattern);
        return result;
      }
      if (depth === 0) {
        const other = typeof slot === 'string' ? slot : slot.items[0];
        if (other !== undefined && this.#sameGramSpan(pattern, other)) result = SHARES_GRAMS;
      }
      if (typeof slot === 'string') {
        if (slot === pattern) return DUPLICATE;
        slot = { depth: depth + m, items: [slot], children: undefined };
        level.set(h, slot);
      }
      if (slot.children === undefined || pattern.length < slot.depth + m) {
        if (slot.items.includes(pattern)) return DUPLICATE;
        slot.items.push(pattern);
        if (slot.children === undefined && slot.items.length > BURST_SIZE) this.#burst(slot);
        return result;
      }
      level = slot.children;
      depth = slot.depth;
    }
  }

  /** Whether two patterns agree on the characters the sampled q-grams are taken from. */
  #sameGramSpan(a: string, b: string): boolean {
    const span = this.#k + this.#q - 1;
    for (let i = 0; i < span; i++) if (a.charCodeAt(i) !== b.charCodeAt(i)) return false;
    return true;
  }

  /** Moves the patterns of a crowded node that are long enough one level down. */
  #burst(node: TrieNode): void {
    const m = this.#minLength;
    const children = new Map<number, Slot>();
    const kept: string[] = [];
    for (const item of node.items) {
      if (item.length < node.depth + m) {
        kept.push(item);
        continue;
      }
      const h = hashRange(item, node.depth, m);
      const slot = children.get(h);
      if (slot === undefined) children.set(h, item);
      else if (typeof slot === 'string')
        children.set(h, { depth: node.depth + m, items: [slot, item], children: undefined });
      else slot.items.push(item);
    }
    node.items = kept;
    node.children = children;
    for (const slot of children.values()) {
      if (typeof slot !== 'string' && slot.items.length > BURST_SIZE) this.#burst(slot);
    }
  }

  /** Removes a pattern from the trie; `false` when it was not there. */
  #removeTrie(pattern: string): boolean {
    const m = this.#minLength;
    let level = this.#root;
    let depth = 0;
    for (;;) {
      const h = hashRange(pattern, depth, m);
      const slot = level.get(h);
      if (slot === undefined) return false;
      if (typeof slot === 'string') {
        if (slot !== pattern) return false;
        level.delete(h);
        return true;
      }
      const at = slot.items.indexOf(pattern);
      if (at !== -1) {
        slot.items.splice(at, 1);
        if (slot.items.length === 0 && (slot.children === undefined || slot.children.size === 0))
          level.delete(h);
        return true;
      }
      if (slot.children === undefined) return false;
      level = slot.children;
      depth = slot.depth;
    }
  }

  /** Every distinct pattern, from the trie. */
  *#patterns(): Generator<string> {
    const stack: Array<Map<number, Slot>> = [this.#root];
    for (let level = stack.pop(); level !== undefined; level = stack.pop()) {
      for (const slot of level.values()) {
        if (typeof slot === 'string') yield slot;
        else {
          yield* slot.items;
          if (slot.children !== undefined) stack.push(slot.children);
        }
      }
    }
  }

  #indexGrams(pattern: string): void {
    const q = this.#q;
    const k = this.#k;
    // Room for k more q-grams first, so the loop below can keep the tables in locals.
    if ((this.#gramCount + k) * 2 > this.#gramKeys.length) this.#grow();
    const keys = this.#gramKeys;
    const bits = this.#bits;
    const mask = keys.length - 1;
    const gramShift = this.#gramShift;
    const bitShift = this.#bitShift;
    // The low bytes of the first k + q - 1 code units, rolled four at a time.
    let x = 0;
    for (let i = 0; i < q - 1; i++) x |= (pattern.charCodeAt(i) & 0xff) << (8 * i);
    const top = 8 * (q - 1);
    const qMask = this.#qMask;
    for (let j = 0; j < k; j++) {
      x = ((x >>> (j === 0 ? 0 : 8)) | ((pattern.charCodeAt(j + q - 1) & 0xff) << top)) & qMask;
      const h = Math.imul(x, GOLDEN);
      const tag = h & TAG_MASK;
      let slot = h >>> gramShift;
      let stored = keys[slot] as number;
      while (stored !== 0 && (stored & TAG_MASK) !== tag) {
        slot = (slot + 1) & mask;
        stored = keys[slot] as number;
      }
      if (stored !== 0) {
        keys[slot] = stored | (1 << j);
        continue;
      }
      keys[slot] = tag | (1 << j);
      this.#gramCount++;
      const bit = h >>> bitShift;
      bits[bit >>> 5] = (bits[bit >>> 5] as number) | (1 << (bit & 31));
    }
  }

  #grow(): void {
    const oldKeys = this.#gramKeys;
    // Four times larger at once (at least FIRST_GROWTH_SLOTS): few rebuilds while thousands
    // of values are added.
    const size = Math.max(oldKeys.length * 4, FIRST_GROWTH_SLOTS);
    const count = this.#gramCount;
    this.#allocateGrams(size, (size / 2) * BITS_PER_GRAM);
    this.#gramCount = count;
    const keys = this.#gramKeys;
    const bits = this.#bits;
    const mask = size - 1;
    const gramShift = this.#gramShift;
    const bitShift = this.#bitShift;
    // An indexed loop: this runs rarely, so often before the optimizing compiler has seen it.
    for (let old = 0; old < oldKeys.length; old++) {
      const stored = oldKeys[old] as number;
      if (stored === 0) continue;
      // The tag keeps the top 24 bits of the hash, which is all that chooses slots and bits.
      let slot = stored >>> gramShift;
      while (keys[slot] !== 0) slot = (slot + 1) & mask;
      keys[slot] = stored;
      const bit = stored >>> bitShift;
      bits[bit >>> 5] = (bits[bit >>> 5] as number) | (1 << (bit & 31));
    }
  }

  #allocateGrams(size: number, bitCount: number): void {
    this.#gramKeys = new Int32Array(size);
    this.#gramShift = 32 - Math.log2(size);
    this.#gramCount = 0;
    // Capped so that slots and bits come from the 24 bits an entry keeps.
    const bitsUsed = Math.min(bitCount, 2 ** 24);
    this.#bits = new Int32Array(bitsUsed >>> 5);
    this.#bitShift = 32 - Math.log2(bitsUsed);
  }

  #resetGrams(): void {
    this.#allocateGrams(INITIAL_GRAM_SLOTS, (INITIAL_GRAM_SLOTS / 2) * BITS_PER_GRAM);
  }

  #rebuildGrams(): void {
    this.#resetGrams();
    this.#gramsStale = false;
    for (const pattern of this.#patterns()) this.#indexGrams(pattern);
  }
}

interface TrieNode {
  /** Characters matched (by hash) on the way to this node. */
  readonly depth: number;
  /** Patterns to compare here: all of them until the node bursts, then those too short to go on. */
  items: string[];
  children: Map<number, Slot> | undefined;
}

/** A lone pattern, or a node when several patterns share a hash path. */
type Slot = string | TrieNode;

const BURST_SIZE = 8;
const DUPLICATE = 0;
const INSERTED = 1;
const SHARES_GRAMS = 2;
/** A redactor with a few values keeps small tables (a few kilobytes)... */
const INITIAL_GRAM_SLOTS = 1 << 10;
/** ...and one that outgrows them goes straight to room for about 1,600 values with encodings. */
const FIRST_GROWTH_SLOTS = 1 << 16;
/** The hash bits a q-gram entry keeps (the low byte holds its offsets). */
const TAG_MASK = ~0xff;
const BITS_PER_GRAM = 32;
/** Characters copied and probed at a time. */
const BLOCK_SIZE = 64 * 1024;
const GOLDEN = 0x9e3779b1 | 0;
const MIX = 0x85ebca6b | 0;
const HASH_MASK = 0x3fffffff;

/**
 * Hash of `length` UTF-16 code units of `text` from `start`, from the low byte of each, four
 * per round (the trie compares whole strings after, so dropping high bytes only adds rare
 * collisions), kept to 30 bits so that V8 stores it as a small integer (fast map keys).
 */
function hashRange(text: string, start: number, length: number): number {
  let h = 0;
  const end = start + length;
  for (let i = start; i < end; i += 4) {
    let word = text.charCodeAt(i) & 0xff;
    if (i + 1 < end) word |= (text.charCodeAt(i + 1) & 0xff) << 8;
    if (i + 2 < end) word |= (text.charCodeAt(i + 2) & 0xff) << 16;
    if (i + 3 < end) word |= (text.charCodeAt(i + 3) & 0xff) << 24;
    h = Math.imul(h ^ word, GOLDEN);
    h ^= h >>> 15;
  }
  h = Math.imul(h, MIX);
  return (h ^ (h >>> 13)) & HASH_MASK;
}
