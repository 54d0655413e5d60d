/**
 * Incremental, fail-fast UTF-8 decoding of text messages (RFC 6455 §8.1).
 *
 * A text message may arrive in many frames and each frame in many chunks;
 * RFC 6455 §8.1 says that when "an endpoint is to interpret a byte stream as
 * UTF-8 but finds that the byte stream is not, in fact, a valid UTF-8 stream,
 * that endpoint MUST _Fail the WebSocket Connection_". We fail in the chunk
 * that holds the first bad byte, not at the end of the message: a truncated
 * surrogate or overlong prefix is refused before its sequence completes.
 *
 * How, and why this way (numbers from `bench/codec.ts`):
 *
 * - Whole runs of complete sequences go to the runtime's **lossy**
 *   `TextDecoder`. It replaces every invalid sequence with U+FFFD (WHATWG
 *   Encoding §4.1), so a result without U+FFFD proves the bytes valid; a
 *   result with one is decoded again by a fatal decoder, which either throws
 *   or confirms a real U+FFFD in the text. On Deno this is several times
 *   faster than the fatal decoder alone (about 8× on 64 KiB of ASCII, 2× on
 *   other text and on short messages); on Bun it is within 10% of it.
 * - A chunk that ends inside a sequence keeps those 1 to 3 bytes here, after
 *   checking they can still begin a valid sequence (Unicode Table 3-7: the
 *   second byte's range depends on the lead byte), and finishes the sequence
 *   from the next chunk. No streaming `TextDecoder`: Bun's is several times
 *   slower than its whole-buffer decoder on non-ASCII text.
 *
 * The tests check all of this against a plain reference validator, with
 * every input split at every byte.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";

const lossyDecoder = new TextDecoder("utf-8", { ignoreBOM: true });
const fatalDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Decodes bytes that hold only whole sequences; throws 1007 if invalid. */
function decodeWhole(bytes: Uint8Array): string {
  const text = lossyDecoder.decode(bytes);
  if (!text.includes("\ufffd")) return text;
  try {
    return fatalDecoder.decode(bytes);
  } catch {
    throw new ProtocolError("Invalid UTF-8 in a text message", 1007);
  }
}

/**
 * The length of the sequence a lead byte starts: 2 to 4, or 1 for ASCII and
 * for bytes that cannot lead (which `decodeWhole` then rejects).
 */
function sequenceLength(lead: number): number {
  if (lead < 0xc2) return 1;
  if (lead < 0xe0) return 2;
  if (lead < 0xf0) return 3;
  if (lead < 0xf5) return 4;
  return 1;
}

/** Whether `byte` may follow `lead` (Unicode Table 3-7's second-byte ranges). */
function isSecondByte(lead: number, byte: number): boolean {
  switch (lead) {
    case 0xe0: // no overlong 3-byte forms
      return byte >= 0xa0 && byte <= 0xbf;
    case 0xed: // no surrogates, U+D800..U+DFFF
      return byte >= 0x80 && byte <= 0x9f;
    case 0xf0: // no overlong 4-byte forms
      return byte >= 0x90 && byte <= 0xbf;
    case 0xf4: // nothing above U+10FFFF
      return byte >= 0x80 && byte <= 0x8f;
    default:
      return (byte & 0xc0) === 0x80;
  }
}

/**
 * Decodes one text message at a time from UTF-8 chunks, failing with a
 * `ProtocolError` (close code 1007) on the first invalid byte.
 *
 * @example Decoding a message that arrives in pieces
 * ```ts
 * import { Utf8Decoder } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const decoder = new Utf8Decoder();
 * decoder.push(new Uint8Array([0xce, 0xba, 0xe1])); // "κ" and part of "ό"
 * decoder.push(new Uint8Array([0xbd, 0xb9]));
 * assert.equal(decoder.end(), "κό");
 *
 * // A UTF-16 surrogate (ED A0 …) fails as soon as its second byte arrives.
 * assert.throws(() => decoder.push(new Uint8Array([0x61, 0xed, 0xa0])));
 * ```
 */
export class Utf8Decoder {
  #text = "";
  /** The start of a sequence the last chunk ended inside. */
  readonly #partial = new Uint8Array(4);
  /** How many bytes of `#partial` are filled; 0 between sequences. */
  #partialLength = 0;

  /**
   * Decodes the next chunk of the message.
   *
   * @param bytes The next bytes of the message.
   * @throws {ProtocolError} with close code 1007 on the first invalid byte.
   */
  push(bytes: Uint8Array): void {
    try {
      const n = bytes.length;
      const start = this.#partialLength === 0 ? 0 : this.#finishPartial(bytes);
      if (this.#partialLength !== 0) return; // `bytes` ended inside it again
      const end = n - this.#keepIncompleteEnd(bytes, start);
      if (start === 0 && end === n) this.#text += decodeWhole(bytes);
      else if (start < end) {
        this.#text += decodeWhole(bytes.subarray(start, end));
      }
    } catch (error) {
      this.reset();
      throw error;
    }
  }

  /**
   * Ends the message and returns its text; the decoder is then ready for the
   * next message.
   *
   * @returns The whole message.
   * @throws {ProtocolError} with close code 1007 if the message ends inside a
   * UTF-8 sequence.
   */
  end(): string {
    if (this.#partialLength !== 0) {
      this.reset();
      throw new ProtocolError(
        "Text message ends inside a UTF-8 sequence",
        1007,
      );
    }
    const text = this.#text;
    this.#text = "";
    return text;
  }

  /** Drops any partial message. */
  reset(): void {
    this.#text = "";
    this.#partialLength = 0;
  }

  /**
   * Continues the sequence held in `#partial` with the first bytes of
   * `bytes`, checking each, and appends its character once complete.
   * Returns how many bytes of `bytes` it used.
   */
  #finishPartial(bytes: Uint8Array): number {
    const partial = this.#partial;
    const lead = partial[0]!;
    const length = sequenceLength(lead);
    const used = Math.min(length - this.#partialLength, bytes.length);
    for (let i = 0; i < used; i++) {
      const byte = bytes[i]!;
      const ok = this.#partialLength === 1
        ? isSecondByte(lead, byte)
        : (byte & 0xc0) === 0x80;
      if (!ok) throw new ProtocolError("Invalid UTF-8 in a text message", 1007);
      partial[this.#partialLength++] = byte;
    }
    if (this.#partialLength === length) {
      // Checked above, so this is a scalar value: no surrogate, no overlong.
      let codePoint = lead & (0x7f >> length);
      for (let i = 1; i < length; i++) {
        codePoint = (codePoint << 6) | (partial[i]! & 0x3f);
      }
      this.#text += String.fromCodePoint(codePoint);
      this.#partialLength = 0;
    }
    return used;
  }

  /**
   * Finds a sequence that `bytes` (from `start`) ends inside, checks that it
   * can still become valid, and keeps it in `#partial`. Returns its length,
   * 0 if `bytes` ends between sequences.
   */
  #keepIncompleteEnd(bytes: Uint8Array, start: number): number {
    const n = bytes.length;
    // An incomplete sequence is at most 3 bytes: a lead and continuations.
    for (let i = n - 1; i >= start && i >= n - 3; i--) {
      const lead = bytes[i]!;
      if ((lead & 0xc0) === 0x80) continue;
      const kept = n - i;
      if (kept >= sequenceLength(lead)) return 0;
      if (kept > 1 && !isSecondByte(lead, bytes[i + 1]!)) {
        throw new ProtocolError("Invalid UTF-8 in a text message", 1007);
      }
      for (let k = 0; k < kept; k++) this.#partial[k] = bytes[i + k]!;
      this.#partialLength = kept;
      return kept;
    }
    return 0;
  }
}

/**
 * Decodes a complete text message in one call: the fast path for a message
 * that arrived in one frame.
 *
 * @param bytes The whole message.
 * @returns The text.
 * @throws {ProtocolError} with close code 1007 if it is not valid UTF-8.
 *
 * @example
 * ```ts
 * import { decodeUtf8 } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * assert.equal(decodeUtf8(new Uint8Array([0x68, 0x69])), "hi");
 * assert.throws(() => decodeUtf8(new Uint8Array([0xff])));
 * ```
 */
export function decodeUtf8(bytes: Uint8Array): string {
  return decodeWhole(bytes);
}
