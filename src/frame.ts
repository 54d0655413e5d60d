/**
 * The frame codec (RFC 6455 §5.2): encoding frames to bytes, and decoding an
 * incoming byte stream fed in chunks of any size.
 *
 * The decoder checks what can be checked from a frame header alone (RSV bits,
 * opcodes, control frame rules, masking by role, the length encoding) and
 * hands each frame to a {@link FrameSink} as it arrives: the header, then the
 * payload in one or more unmasked views, then its end. Only header bytes are
 * ever buffered across chunks (at most 14); payloads pass straight through as
 * views of the input, unmasked in place. Rules that span frames (fragment
 * order, UTF-8, close payloads, size limits) belong to the protocol.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";
import { applyMask } from "./mask.ts";

/**
 * Frame opcodes (RFC 6455 §5.2, §11.8).
 *
 * @example
 * ```ts
 * import { Opcode } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * assert.equal(Opcode.Ping, 0x9);
 * ```
 */
export const Opcode = {
  /** Continues a fragmented message. */
  Continuation: 0x0,
  /** Starts a text message. */
  Text: 0x1,
  /** Starts a binary message. */
  Binary: 0x2,
  /** Close control frame. */
  Close: 0x8,
  /** Ping control frame. */
  Ping: 0x9,
  /** Pong control frame. */
  Pong: 0xa,
} as const;

/** RSV1, RSV2 and RSV3 as the 3-bit value `rsv` uses (RSV1 is 4). */
export const RSV1 = 4;

/**
 * A whole frame, as given to {@link encodeFrame}.
 *
 * @example
 * ```ts
 * import type { Frame } from "@wsstream/wsstream/codec";
 * const frame: Frame = { fin: true, rsv: 0, opcode: 0x2, payload: new Uint8Array([1, 2]) };
 * ```
 */
export interface Frame {
  /** Whether this is the final fragment of its message. */
  fin: boolean;
  /** The RSV1..RSV3 bits as a number from 0 to 7 (RSV1 = 4, RSV2 = 2, RSV3 = 1). */
  rsv: number;
  /** The opcode, 0 to 15. */
  opcode: number;
  /** The (unmasked) payload. */
  payload: Uint8Array;
}

/**
 * A decoded frame header. The decoder reuses one object for every frame, so
 * copy what you need before `frameStart` returns.
 *
 * @example
 * ```ts
 * import type { FrameHeader } from "@wsstream/wsstream/codec";
 * function isControl(header: FrameHeader): boolean {
 *   return header.opcode >= 8;
 * }
 * ```
 */
export interface FrameHeader {
  /** The FIN bit. */
  fin: boolean;
  /** The RSV bits, 0 to 7 (RSV1 = 4). */
  rsv: number;
  /** The opcode. */
  opcode: number;
  /** Whether the payload was masked. */
  masked: boolean;
  /** The payload length in bytes. */
  length: number;
}

/**
 * Receives decoded frames from a {@link FrameDecoder}, piece by piece. Any
 * method may throw (a `ProtocolError`, typically) to stop decoding.
 *
 * @example Collecting whole frames
 * ```ts
 * import { FrameDecoder, type FrameSink } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const frames: { opcode: number; size: number }[] = [];
 * let size = 0;
 * let opcode = 0;
 * const sink: FrameSink = {
 *   frameStart(header) { opcode = header.opcode; size = 0; },
 *   framePayload(chunk) { size += chunk.length; },
 *   frameEnd() { frames.push({ opcode, size }); },
 * };
 * new FrameDecoder(sink).push(new Uint8Array([0x82, 0x02, 0xaa, 0xbb]));
 * assert.deepEqual(frames, [{ opcode: 2, size: 2 }]);
 * ```
 */
export interface FrameSink {
  /** A frame header arrived and passed the frame-level checks. */
  frameStart(header: FrameHeader): void;
  /**
   * The next piece of the current frame's payload, unmasked. The view points
   * into the chunk given to `push`; it stays valid, but copy it if the
   * chunk's buffer is reused.
   */
  framePayload(chunk: Uint8Array): void;
  /** The current frame is complete. */
  frameEnd(): void;
}

/**
 * Options for a {@link FrameDecoder}.
 *
 * @example
 * ```ts
 * import type { FrameDecoderOptions } from "@wsstream/wsstream/codec";
 * // A server: clients must mask, and no extension is negotiated.
 * const options: FrameDecoderOptions = { masked: true, allowedRsv: 0 };
 * ```
 */
export interface FrameDecoderOptions {
  /**
   * Whether incoming frames must be masked (`true`: we are a server),
   * must not be (`false`: we are a client), or either (`null`, the default:
   * for tools and tests). RFC 6455 §5.1: a server "MUST close the connection
   * upon receiving a frame that is not masked", and a client "MUST close a
   * connection if it detects a masked frame".
   */
  masked?: boolean | null | undefined;
  /** RSV bits a negotiated extension allows (RSV1 = 4); others fail with 1002. */
  allowedRsv?: number | undefined;
}

const MAX_SAFE_HIGH_WORD = 0x1fffff; // 2^53 = 2^21 * 2^32

/** In FrameDecoder's `#checks`: whether masking is checked at all. */
const MASKING_CHECKED = 8;
/** In FrameDecoder's `#checks`: frames must be masked (else, must not be). */
const MASK_REQUIRED = 16;

/**
 * Decodes frames from a byte stream fed in chunks of any size, passing them
 * to a {@link FrameSink}. Payloads are unmasked in place: the decoder owns
 * the chunks it is given. Throws `ProtocolError` (close code 1002) on a frame
 * RFC 6455 does not allow; the decoder must not be used after that.
 *
 * @example Decoding a masked "Hello" (RFC 6455 §5.7) split in two chunks
 * ```ts
 * import { FrameDecoder } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * let text = "";
 * const decoder = new FrameDecoder({
 *   frameStart() {},
 *   framePayload(chunk) { text += new TextDecoder().decode(chunk); },
 *   frameEnd() {},
 * }, { masked: true });
 * decoder.push(new Uint8Array([0x81, 0x85, 0x37, 0xfa]));
 * decoder.push(new Uint8Array([0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]));
 * assert.equal(text, "Hello");
 * ```
 */
export class FrameDecoder {
  readonly #sink: FrameSink;
  /**
   * What headers are checked for, in one number: the RSV bits allowed (the
   * low three bits), whether masking is checked (MASKING_CHECKED) and then
   * whether it is required (MASK_REQUIRED). One field instead of two keeps
   * a decoder in a smaller size class of JavaScriptCore's heap.
   */
  readonly #checks: number;
  /** Header bytes carried over from an earlier chunk (made when needed). */
  #pending: Uint8Array | null = null;
  #pendingLength = 0;
  /** Payload bytes left in the current frame; -1 while reading a header. */
  #remaining = -1;
  /**
   * The current frame's key, reused from frame to frame (no allocation but
   * the first: an idle connection has none).
   */
  #maskBytes: Uint8Array | null = null;
  /** Where the payload read so far ends in the mask; -1: the frame is unmasked. */
  #maskOffset = -1;
  /** The current frame's header, reused from frame to frame (made by the first). */
  #header: FrameHeader | null = null;

  /**
   * Makes a decoder.
   *
   * @param sink Where decoded frames go.
   * @param options Masking and RSV rules.
   */
  constructor(sink: FrameSink, options: FrameDecoderOptions = {}) {
    this.#sink = sink;
    const masked = options.masked;
    this.#checks = ((options.allowedRsv ?? 0) & 7) |
      (masked === undefined || masked === null ? 0 : MASKING_CHECKED) |
      (masked === true ? MASK_REQUIRED : 0);
  }

  /** Whether the decoder is between frames (no partial frame buffered). */
  get idle(): boolean {
    return this.#remaining < 0 && this.#pendingLength === 0;
  }

  /**
   * The payload bytes of the current frame still to come: 0 while reading
   * a header or between frames.
   */
  get payloadRemaining(): number {
    return this.#remaining > 0 ? this.#remaining : 0;
  }

  /**
   * Feeds the next chunk of the byte stream.
   *
   * @param chunk The bytes; unmasked in place.
   * @throws {ProtocolError} when a frame breaks RFC 6455, or whatever the sink throws.
   */
  push(chunk: Uint8Array): void {
    const n = chunk.length;
    let pos = 0;
    while (pos < n) {
      if (this.#remaining < 0) {
        if (this.#pendingLength === 0 && n - pos >= 2) {
          const size = headerSize(chunk[pos + 1]!);
          if (n - pos >= size) {
            this.#parseHeader(chunk, pos);
            pos += size;
          } else {
            (this.#pending ??= new Uint8Array(14)).set(chunk.subarray(pos, n));
            this.#pendingLength = n - pos;
            return;
          }
        } else {
          // Complete a header begun in an earlier chunk, a byte at a time
          // (at most 13 bytes, only at chunk boundaries).
          const pending = this.#pending ??= new Uint8Array(14);
          pending[this.#pendingLength++] = chunk[pos++]!;
          if (this.#pendingLength < 2) continue;
          const size = headerSize(pending[1]!);
          if (this.#pendingLength < size) continue;
          this.#pendingLength = 0;
          this.#parseHeader(pending, 0);
        }
        if (this.#remaining === 0) {
          this.#remaining = -1;
          this.#sink.frameEnd();
        }
        continue;
      }
      const take = Math.min(this.#remaining, n - pos);
      const piece = chunk.subarray(pos, pos + take);
      if (this.#maskOffset >= 0) {
        applyMask(piece, this.#maskBytes!, this.#maskOffset);
        this.#maskOffset += take;
      }
      pos += take;
      this.#remaining -= take;
      this.#sink.framePayload(piece);
      if (this.#remaining === 0) {
        this.#remaining = -1;
        this.#sink.frameEnd();
      }
    }
  }

  /** Parses and checks a complete header at `bytes[at]`, then starts the frame. */
  #parseHeader(bytes: Uint8Array, at: number): void {
    const b0 = bytes[at]!;
    const b1 = bytes[at + 1]!;
    const fin = (b0 & 0x80) !== 0;
    const rsv = (b0 >>> 4) & 7;
    const opcode = b0 & 0x0f;
    const masked = (b1 & 0x80) !== 0;
    let length = b1 & 0x7f;
    let p = at + 2;

    const checks = this.#checks;
    if ((rsv & ~checks & 7) !== 0) {
      throw new ProtocolError(
        `Reserved bits set (RSV ${
          rsv.toString(2).padStart(3, "0")
        }) without a negotiated extension`,
        1002,
      );
    }
    if ((opcode > 2 && opcode < 8) || opcode > 10) {
      throw new ProtocolError(`Reserved opcode ${opcode}`, 1002);
    }
    if (opcode >= 8) {
      // §5.5: "All control frames MUST have a payload length of 125 bytes or
      // less and MUST NOT be fragmented."
      if (!fin) throw new ProtocolError("Fragmented control frame", 1002);
      if (length > 125) {
        throw new ProtocolError("Control frame payload over 125 bytes", 1002);
      }
    }
    if (
      (checks & MASKING_CHECKED) !== 0 &&
      masked !== ((checks & MASK_REQUIRED) !== 0)
    ) {
      throw new ProtocolError(
        masked ? "Masked frame from a server" : "Unmasked frame from a client",
        1002,
      );
    }
    if (length === 126) {
      length = (bytes[p]! << 8) | bytes[p + 1]!;
      p += 2;
      // §5.2: "the minimal number of bytes MUST be used to encode the length".
      if (length < 126) {
        throw new ProtocolError("Payload length not minimally encoded", 1002);
      }
    } else if (length === 127) {
      const high = ((bytes[p]! << 24) | (bytes[p + 1]! << 16) |
        (bytes[p + 2]! << 8) | bytes[p + 3]!) >>> 0;
      const low = ((bytes[p + 4]! << 24) | (bytes[p + 5]! << 16) |
        (bytes[p + 6]! << 8) | bytes[p + 7]!) >>> 0;
      p += 8;
      // §5.2: "the most significant bit MUST be 0".
      if (high > 0x7fffffff) {
        throw new ProtocolError(
          "64-bit payload length with the top bit set",
          1002,
        );
      }
      if (high > MAX_SAFE_HIGH_WORD) {
        throw new ProtocolError("Payload length over 2^53 bytes", 1009);
      }
      length = high * 0x100000000 + low;
      if (length < 0x10000) {
        throw new ProtocolError("Payload length not minimally encoded", 1002);
      }
    }
    if (masked) {
      const key = this.#maskBytes ??= new Uint8Array(4);
      key[0] = bytes[p]!;
      key[1] = bytes[p + 1]!;
      key[2] = bytes[p + 2]!;
      key[3] = bytes[p + 3]!;
      this.#maskOffset = 0;
    } else {
      this.#maskOffset = -1;
    }
    const header = this.#header ??= {
      fin,
      rsv,
      opcode,
      masked,
      length,
    };
    header.fin = fin;
    header.rsv = rsv;
    header.opcode = opcode;
    header.masked = masked;
    header.length = length;
    this.#remaining = length;
    this.#sink.frameStart(header);
  }
}

/** The size of a header, from its second byte. */
function headerSize(b1: number): number {
  const len = b1 & 0x7f;
  return 2 + (len === 126 ? 2 : len === 127 ? 8 : 0) + ((b1 & 0x80) ? 4 : 0);
}

/**
 * The size in bytes of a frame header for a payload of `length` bytes.
 *
 * @param length The payload length.
 * @param masked Whether the frame carries a masking key.
 * @returns 2 to 14.
 *
 * @example
 * ```ts
 * import { frameHeaderSize } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * assert.equal(frameHeaderSize(125, false), 2);
 * assert.equal(frameHeaderSize(126, true), 8);
 * assert.equal(frameHeaderSize(65536, false), 10);
 * ```
 */
export function frameHeaderSize(length: number, masked: boolean): number {
  return (length < 126 ? 2 : length < 0x10000 ? 4 : 10) + (masked ? 4 : 0);
}

/**
 * Writes a frame header into `target` at `at`, using the minimal length
 * encoding, and returns its size. With a `maskKey`, the header says the
 * payload is masked with it (the caller masks the payload).
 *
 * @param target Where to write; needs {@link frameHeaderSize} bytes from `at`.
 * @param at The offset to write at.
 * @param fin The FIN bit.
 * @param rsv The RSV bits, 0 to 7.
 * @param opcode The opcode.
 * @param length The payload length.
 * @param maskKey The 4-byte masking key, or `null` for an unmasked frame.
 * @returns The number of bytes written.
 *
 * @example
 * ```ts
 * import { writeFrameHeader } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const header = new Uint8Array(2);
 * writeFrameHeader(header, 0, true, 0, 0x9, 0, null);
 * assert.deepEqual([...header], [0x89, 0x00]);
 * ```
 */
export function writeFrameHeader(
  target: Uint8Array,
  at: number,
  fin: boolean,
  rsv: number,
  opcode: number,
  length: number,
  maskKey: Uint8Array | null,
): number {
  let p = at;
  target[p++] = (fin ? 0x80 : 0) | (rsv << 4) | opcode;
  const maskBit = maskKey === null ? 0 : 0x80;
  if (length < 126) {
    target[p++] = maskBit | length;
  } else if (length < 0x10000) {
    target[p++] = maskBit | 126;
    target[p++] = length >>> 8;
    target[p++] = length & 0xff;
  } else {
    target[p++] = maskBit | 127;
    const high = Math.floor(length / 0x100000000);
    target[p++] = high >>> 24;
    target[p++] = (high >>> 16) & 0xff;
    target[p++] = (high >>> 8) & 0xff;
    target[p++] = high & 0xff;
    target[p++] = length >>> 24;
    target[p++] = (length >>> 16) & 0xff;
    target[p++] = (length >>> 8) & 0xff;
    target[p++] = length & 0xff;
  }
  if (maskKey !== null) {
    target[p++] = maskKey[0]!;
    target[p++] = maskKey[1]!;
    target[p++] = maskKey[2]!;
    target[p++] = maskKey[3]!;
  }
  return p - at;
}

/**
 * Encodes a whole frame into one new buffer. With a `maskKey`, the payload is
 * copied and masked; the given payload is never changed.
 *
 * @param frame The frame.
 * @param maskKey The 4-byte masking key, or `null`/omitted for an unmasked frame.
 * @returns The frame's bytes.
 *
 * @example A masked "Hello" (RFC 6455 §5.7)
 * ```ts
 * import { encodeFrame } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeFrame(
 *   { fin: true, rsv: 0, opcode: 0x1, payload: new TextEncoder().encode("Hello") },
 *   new Uint8Array([0x37, 0xfa, 0x21, 0x3d]),
 * );
 * assert.deepEqual(
 *   [...bytes],
 *   [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58],
 * );
 * ```
 */
export function encodeFrame(
  frame: Frame,
  maskKey: Uint8Array | null = null,
): Uint8Array {
  const length = frame.payload.length;
  const out = new Uint8Array(
    frameHeaderSize(length, maskKey !== null) + length,
  );
  const size = writeFrameHeader(
    out,
    0,
    frame.fin,
    frame.rsv,
    frame.opcode,
    length,
    maskKey,
  );
  out.set(frame.payload, size);
  if (maskKey !== null && length > 0) applyMask(out.subarray(size), maskKey);
  return out;
}
