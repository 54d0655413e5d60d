/**
 * Incremental, fail-fast UTF-8 decoding of text messages (RFC 6455 §8.1).
 *
 * A text message may arrive in many frames and each frame in many chunks;
 * RFC 6455 §8.1 says that when "an endpoint is to interpret a byte stream as
 * UTF-8 but finds that the byte stream is not, in fact, a valid UTF-8 stream,
 * that endpoint MUST _Fail the WebSocket Connection_". We fail on the first
 * bad byte, not at the end of the message. The work is done by the runtime's
 * fatal, streaming `TextDecoder`, which checks each byte against the allowed
 * range as it goes (WHATWG Encoding §4.1), so a truncated surrogate or
 * overlong prefix is refused before the sequence completes; the tests check
 * this against a plain reference validator, split at every byte.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";

/**
 * Decodes one text message at a time from UTF-8 chunks, failing with a
 * `ProtocolError` (close code 1007) on the first invalid byte.
 *
 * @example Decoding a message that arrives in pieces
 * ```ts
 * import { Utf8Decoder } from "@wsstream/wsstream";
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
  #decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  #text = "";

  /**
   * Decodes the next chunk of the message.
   *
   * @param bytes The next bytes of the message.
   * @throws {ProtocolError} with close code 1007 on the first invalid byte.
   */
  push(bytes: Uint8Array): void {
    try {
      this.#text += this.#decoder.decode(bytes, { stream: true });
    } catch {
      this.reset();
      throw new ProtocolError("Invalid UTF-8 in a text message", 1007);
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
    let text: string;
    try {
      text = this.#text + this.#decoder.decode();
    } catch {
      this.reset();
      throw new ProtocolError(
        "Text message ends inside a UTF-8 sequence",
        1007,
      );
    }
    this.#text = "";
    return text;
  }

  /** Drops any partial message. */
  reset(): void {
    this.#decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
    this.#text = "";
  }
}

const wholeDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

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
 * import { decodeUtf8 } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 *
 * assert.equal(decodeUtf8(new Uint8Array([0x68, 0x69])), "hi");
 * assert.throws(() => decodeUtf8(new Uint8Array([0xff])));
 * ```
 */
export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return wholeDecoder.decode(bytes);
  } catch {
    throw new ProtocolError("Invalid UTF-8 in a text message", 1007);
  }
}
