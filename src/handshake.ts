/**
 * The opening handshake (RFC 6455 §4): its key and accept value, which both
 * ends compute. The rest of the handshake is in files of its own: the
 * client's side (its request, and its check of the server's response) in
 * `handshake_client.ts`, the server's (its check of the request, and its
 * 101 or its refusal) in `handshake_server.ts`, and the subprotocol and
 * extension header values both sides read and write in
 * `handshake_headers.ts`.
 *
 * Pure: no sockets, no timers, nothing awaited (SHA-1 is `sha1.ts`).
 *
 * @module
 */

import { sha1 } from "./sha1.ts";

/**
 * The GUID appended to the key before hashing (RFC 6455 §1.3): a value
 * "unlikely to be used by network endpoints that do not understand the
 * WebSocket Protocol".
 *
 * @example
 * ```ts
 * import { WEBSOCKET_GUID } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * assert.equal(WEBSOCKET_GUID.length, 36);
 * ```
 */
export const WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/**
 * Makes a `Sec-WebSocket-Key`. RFC 6455 §4.1: "The value of this header field
 * MUST be a nonce consisting of a randomly selected 16-byte value that has
 * been base64-encoded ... The nonce MUST be selected randomly for each
 * connection."
 *
 * @param random Fills the given array with random bytes and returns it;
 * `crypto.getRandomValues` by default. Tests can pass a fixed source.
 * @returns 24 characters of base64.
 * @throws {RangeError} If `random` returns other than 16 bytes.
 *
 * @example A fixed source gives a predictable key
 * ```ts
 * import { generateKey } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * assert.equal(generateKey((bytes) => bytes.fill(0)), "AAAAAAAAAAAAAAAAAAAAAA==");
 * assert.equal(generateKey().length, 24);
 * ```
 */
export function generateKey(
  random: (bytes: Uint8Array) => Uint8Array = (bytes) =>
    crypto.getRandomValues(bytes),
): string {
  const bytes = random(new Uint8Array(16));
  if (bytes.length !== 16) {
    throw new RangeError(
      `The random source returned ${bytes.length} bytes; a key needs 16`,
    );
  }
  return _base64(bytes);
}

/**
 * Computes the `Sec-WebSocket-Accept` value for a key. RFC 6455 §4.2.2: "A
 * |Sec-WebSocket-Accept| header field. The value of this header field is
 * constructed by concatenating /key/ ... with the string
 * "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", taking the SHA-1 hash of this
 * concatenated value to obtain a 20-byte value and base64-encoding".
 *
 * @param key The `Sec-WebSocket-Key`, as sent (not decoded).
 * @returns The base64 of the SHA-1 digest.
 *
 * @example The sample from RFC 6455 §1.3
 * ```ts
 * import { computeAccept } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   await computeAccept("dGhlIHNhbXBsZSBub25jZQ=="),
 *   "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
 * );
 * ```
 */
// deno-lint-ignore require-await
export async function computeAccept(key: string): Promise<string> {
  // Async only to keep its signature; the work is computeAcceptSync's.
  return computeAcceptSync(key);
}

/**
 * Computes the `Sec-WebSocket-Accept` value for a key, synchronously: the
 * same value as {@linkcode computeAccept}, with no await. The key is hashed
 * as the UTF-8 of `key + WEBSOCKET_GUID`, whatever characters it holds
 * (a client may send anything as its key; it is validated separately).
 *
 * @param key The `Sec-WebSocket-Key`, as sent (not decoded).
 * @returns The base64 of the SHA-1 digest.
 *
 * @example The sample from RFC 6455 §1.3
 * ```ts
 * import { computeAcceptSync } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   computeAcceptSync("dGhlIHNhbXBsZSBub25jZQ=="),
 *   "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
 * );
 * ```
 */
export function computeAcceptSync(key: string): string {
  const text = key + WEBSOCKET_GUID;
  let input: Uint8Array | undefined;
  // An ASCII key (every valid one is) is its own UTF-8: copy its code units
  // into a reused buffer rather than have a TextEncoder allocate the bytes
  // (a new Uint8Array, however small, costs about 0.4 µs on Deno).
  if (text.length <= ACCEPT_INPUT.length) {
    input = ACCEPT_INPUT.subarray(0, text.length);
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code > 0x7f) {
        input = undefined;
        break;
      }
      input[i] = code;
    }
  }
  const digest = sha1(input ?? new TextEncoder().encode(text), ACCEPT_DIGEST);
  // Base64 here rather than btoa() of a binary string: a fifth of the time
  // on V8 (0.09 µs against 0.45). 20 bytes are six groups of three, whose
  // four characters each come from 24 bits, and two bytes left over: three
  // characters from 16 bits, and one "=".
  const codes = ACCEPT_CODES;
  let at = 0;
  for (let i = 0; i < 18; i += 3) {
    const bits = (digest[i]! << 16) | (digest[i + 1]! << 8) | digest[i + 2]!;
    codes[at++] = BASE64[bits >>> 18]!;
    codes[at++] = BASE64[(bits >>> 12) & 63]!;
    codes[at++] = BASE64[(bits >>> 6) & 63]!;
    codes[at++] = BASE64[bits & 63]!;
  }
  const bits = (digest[18]! << 8) | digest[19]!;
  codes[at++] = BASE64[bits >>> 10]!;
  codes[at++] = BASE64[(bits >>> 4) & 63]!;
  codes[at++] = BASE64[(bits << 2) & 63]!;
  codes[at] = 0x3d; // "="
  return String.fromCharCode.apply(null, codes);
}

// computeAcceptSync's buffers, reused by every call (it never awaits, so
// calls cannot interleave): the bytes of an ASCII key of up to 220
// characters with the GUID, and the digest.
const ACCEPT_INPUT = new Uint8Array(256);
const ACCEPT_DIGEST = new Uint8Array(20);
/** The character codes of the accept value: 28 characters. */
const ACCEPT_CODES: number[] = new Array(28).fill(0);
/** The character codes of base64's alphabet (RFC 4648 §4), by value. */
const BASE64 = Uint8Array.from(
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
  (char) => char.charCodeAt(0),
);

function _base64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}
