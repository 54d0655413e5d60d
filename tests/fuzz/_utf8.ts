/**
 * UTF-8 for the fuzzer's oracle, written from the Unicode Standard's table
 * of well-formed byte sequences (Table 3-7, RFC 3629 §4) and independent of
 * `src/utf8.ts` and of `TextDecoder`: an incremental checker that fails on
 * the first byte no valid sequence can continue with, and generators of
 * valid text and of every kind of invalid sequence.
 *
 * @module
 */
import type { Random } from "./_random.ts";

/**
 * Checks UTF-8 one byte at a time and collects the code points. A byte is
 * refused as soon as no well-formed sequence can start or continue with it,
 * which is where a fail-fast endpoint must fail (RFC 6455 §8.1).
 */
export class Utf8Checker {
  /** Continuation bytes still owed by the sequence under way. */
  #need = 0;
  /** The range the next continuation byte must be in. */
  #lower = 0x80;
  #upper = 0xbf;
  #codePoint = 0;
  #codePoints: number[] = [];

  /** Feeds one byte; `false` when it makes the text invalid. */
  push(byte: number): boolean {
    if (this.#need === 0) {
      if (byte <= 0x7f) {
        this.#codePoints.push(byte);
        return true;
      }
      this.#lower = 0x80;
      this.#upper = 0xbf;
      if (byte >= 0xc2 && byte <= 0xdf) {
        this.#need = 1;
        this.#codePoint = byte & 0x1f;
      } else if (byte >= 0xe0 && byte <= 0xef) {
        this.#need = 2;
        this.#codePoint = byte & 0x0f;
        if (byte === 0xe0) this.#lower = 0xa0; // no overlongs
        if (byte === 0xed) this.#upper = 0x9f; // no surrogates
      } else if (byte >= 0xf0 && byte <= 0xf4) {
        this.#need = 3;
        this.#codePoint = byte & 0x07;
        if (byte === 0xf0) this.#lower = 0x90; // no overlongs
        if (byte === 0xf4) this.#upper = 0x8f; // nothing past U+10FFFF
      } else {
        return false; // 80–C1 and F5–FF never start a sequence
      }
      return true;
    }
    if (byte < this.#lower || byte > this.#upper) return false;
    this.#lower = 0x80;
    this.#upper = 0xbf;
    this.#codePoint = (this.#codePoint << 6) | (byte & 0x3f);
    if (--this.#need === 0) this.#codePoints.push(this.#codePoint);
    return true;
  }

  /** Feeds bytes; the index of the first invalid one, or -1. */
  pushAll(bytes: Uint8Array): number {
    for (let i = 0; i < bytes.length; i++) {
      if (!this.push(bytes[i]!)) return i;
    }
    return -1;
  }

  /** Whether the text so far ends between sequences. */
  get complete(): boolean {
    return this.#need === 0;
  }

  /** The text so far (only meaningful when {@link complete}). */
  text(): string {
    let out = "";
    const points = this.#codePoints;
    for (let i = 0; i < points.length; i += 4096) {
      out += String.fromCodePoint(...points.slice(i, i + 4096));
    }
    return out;
  }
}

/** The text of `bytes` if they are whole, valid UTF-8; otherwise `null`. */
export function decodeUtf8Strict(bytes: Uint8Array): string | null {
  const checker = new Utf8Checker();
  if (checker.pushAll(bytes) !== -1 || !checker.complete) return null;
  return checker.text();
}

/** The UTF-8 of one code point (no surrogates). */
export function encodeCodePoint(cp: number): number[] {
  if (cp < 0x80) return [cp];
  if (cp < 0x800) return [0xc0 | (cp >> 6), 0x80 | (cp & 0x3f)];
  if (cp < 0x10000) {
    return [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
  }
  return [
    0xf0 | (cp >> 18),
    0x80 | ((cp >> 12) & 0x3f),
    0x80 | ((cp >> 6) & 0x3f),
    0x80 | (cp & 0x3f),
  ];
}

/** Code points at the edges of each sequence length, and specials. */
const EDGE_CODE_POINTS = [
  0x00,
  0x7f,
  0x80,
  0x7ff,
  0x800,
  0xd7ff,
  0xe000,
  0xfeff, // BOM: valid, and must be kept
  0xfffd,
  0xfffe, // non-characters are valid UTF-8
  0xffff,
  0x10000,
  0x1f600,
  0x10fffd,
  0x10ffff,
];

/** One random code point: mostly ASCII, then 2-, 3- and 4-byte ones. */
function randomCodePoint(random: Random): number {
  const kind = random.int(0, 99);
  if (kind < 55) return random.int(0x20, 0x7e);
  if (kind < 65) return random.int(0x00, 0x7f);
  if (kind < 75) return random.int(0x80, 0x7ff);
  if (kind < 85) {
    const cp = random.int(0x800, 0xfffd);
    return cp >= 0xd800 && cp <= 0xdfff ? cp - 0x800 : cp;
  }
  if (kind < 93) return random.int(0x10000, 0x10ffff);
  return random.pick(EDGE_CODE_POINTS);
}

/** Valid UTF-8 of about `size` bytes (never more than `size` + 3). */
export function validUtf8(random: Random, size: number): Uint8Array {
  const out: number[] = [];
  while (out.length < size) {
    // Long payloads: runs of ASCII keep generation cheap.
    if (size > 512 && random.chance(0.9)) {
      const run = Math.min(size - out.length, random.int(1, 256));
      for (let i = 0; i < run; i++) out.push(0x20 + ((i * 7) % 95));
      continue;
    }
    const bytes = encodeCodePoint(randomCodePoint(random));
    if (out.length + bytes.length > size && out.length > 0) break;
    out.push(...bytes);
  }
  return new Uint8Array(out);
}

/**
 * Invalid UTF-8, by kind: each sequence is refused at its last byte by a
 * fail-fast checker (and the truncated ones at the end of the message).
 */
export const INVALID_UTF8: readonly (readonly [string, readonly number[]])[] = [
  ["overlong 2-byte NUL", [0xc0, 0x80]],
  ["overlong 2-byte", [0xc1, 0xbf]],
  ["overlong 3-byte", [0xe0, 0x80, 0x80]],
  ["overlong 3-byte top", [0xe0, 0x9f, 0xbf]],
  ["overlong 4-byte", [0xf0, 0x80, 0x80, 0x80]],
  ["overlong 4-byte top", [0xf0, 0x8f, 0xbf, 0xbf]],
  ["high surrogate", [0xed, 0xa0, 0x80]],
  ["low surrogate", [0xed, 0xbf, 0xbf]],
  ["surrogate pair", [0xed, 0xa0, 0x80, 0xed, 0xb0, 0x80]],
  ["U+110000", [0xf4, 0x90, 0x80, 0x80]],
  ["F5 lead", [0xf5, 0x80, 0x80, 0x80]],
  ["F7 lead", [0xf7, 0xbf, 0xbf, 0xbf]],
  ["5-byte form", [0xf8, 0x88, 0x80, 0x80, 0x80]],
  ["FE", [0xfe]],
  ["FF", [0xff]],
  ["lone continuation", [0x80]],
  ["lone continuation BF", [0xbf]],
  ["2-byte lead then ASCII", [0xc3, 0x41]],
  ["3-byte lead, 1 continuation, then ASCII", [0xe2, 0x82, 0x41]],
  ["4-byte lead, 2 continuations, then ASCII", [0xf0, 0x9f, 0x98, 0x41]],
  ["truncated 2-byte at the end", [0xc3]],
  ["truncated 3-byte at the end", [0xe2, 0x82]],
  ["truncated 4-byte at the end", [0xf0, 0x9f, 0x98]],
];

/** One invalid sequence and its name. */
export function invalidUtf8(
  random: Random,
): { name: string; bytes: Uint8Array } {
  const [name, bytes] = random.pick(INVALID_UTF8);
  return { name, bytes: new Uint8Array(bytes) };
}
