/**
 * Frames on the wire, for the fuzzer, written from RFC 6455 §5.2 and
 * independent of `src/frame.ts`: a writer that can break every rule of the
 * header (any bits, any length encoding, lengths that lie), and a strict
 * reader for what our side sends, which must break none.
 *
 * @module
 */
import { concatAll } from "../_frames.ts";

/** Opcodes (RFC 6455 §5.2). */
export const OP = {
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const;

/** A frame as the fuzzer writes it: every field free. */
export interface WireFrame {
  fin: boolean;
  /** RSV1–3 as a 3-bit number (RSV1 = 4). */
  rsv: number;
  /** 0–15. */
  opcode: number;
  /** The masking key, or `null` for an unmasked frame. */
  mask: Uint8Array | null;
  /** The payload, unmasked. */
  payload: Uint8Array;
  /**
   * How the length is written: `minimal` (the rule), or forced into the
   * 16-bit or 64-bit form (non-minimal when the length is small).
   */
  lengthForm?: "minimal" | "16" | "64";
  /**
   * The length the header announces, when it lies about the payload: a
   * number, or a bigint for 64-bit values (top bit set, over 2^53).
   */
  announced?: number | bigint;
}

/** A data or control frame with a valid header. */
export function frame(
  opcode: number,
  payload: Uint8Array,
  mask: Uint8Array | null,
  fin = true,
): WireFrame {
  return { fin, rsv: 0, opcode, mask, payload };
}

/** The bytes of one frame, header and (masked) payload. */
export function writeFrame(f: WireFrame): Uint8Array {
  const announced = f.announced ?? f.payload.length;
  const big = BigInt(announced);
  const form = f.lengthForm ?? "minimal";
  let lengthBytes: number[];
  let len7: number;
  if (form === "64" || (form === "minimal" && big > 0xffffn)) {
    len7 = 127;
    lengthBytes = [];
    for (let shift = 56n; shift >= 0n; shift -= 8n) {
      lengthBytes.push(Number((big >> shift) & 0xffn));
    }
  } else if (form === "16" || (form === "minimal" && big > 125n)) {
    len7 = 126;
    lengthBytes = [Number((big >> 8n) & 0xffn), Number(big & 0xffn)];
  } else {
    len7 = Number(big);
    lengthBytes = [];
  }
  const header = [
    (f.fin ? 0x80 : 0) | ((f.rsv & 7) << 4) | (f.opcode & 0x0f),
    (f.mask ? 0x80 : 0) | len7,
    ...lengthBytes,
    ...(f.mask ? f.mask : []),
  ];
  const out = new Uint8Array(header.length + f.payload.length);
  out.set(header);
  out.set(f.payload, header.length);
  if (f.mask) {
    for (let i = 0; i < f.payload.length; i++) {
      out[header.length + i]! ^= f.mask[i & 3]!;
    }
  }
  return out;
}

/** The bytes of frames, one after the other. */
export function writeFrames(frames: readonly WireFrame[]): Uint8Array {
  return concatAll(frames.map(writeFrame));
}

/** A frame our side sent, as the strict reader saw it. */
export interface ReadFrame {
  fin: boolean;
  opcode: number;
  /** The payload, unmasked. */
  payload: Uint8Array;
}

/**
 * Reads every frame our side sent, strictly: no RSV bits, known opcodes,
 * control frames whole and at most 125 bytes, the shortest length encoding,
 * and masked exactly when our side is the client (RFC 6455 §5.1–§5.5).
 * Stops at the first frame that breaks a rule (`error`) or is cut short
 * (`truncated`).
 */
export function readFrames(
  bytes: Uint8Array,
  masked: boolean,
): { frames: ReadFrame[]; error: string | null; truncated: boolean } {
  const frames: ReadFrame[] = [];
  let pos = 0;
  const stop = (error: string | null, truncated = false) => ({
    frames,
    error,
    truncated,
  });
  while (pos < bytes.length) {
    if (bytes.length - pos < 2) return stop(null, true);
    const b0 = bytes[pos]!;
    const b1 = bytes[pos + 1]!;
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    const isMasked = (b1 & 0x80) !== 0;
    const len7 = b1 & 0x7f;
    const extra = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
    const headerSize = 2 + extra + (isMasked ? 4 : 0);
    if (bytes.length - pos < headerSize) return stop(null, true);
    if ((b0 & 0x70) !== 0) return stop(`frame at ${pos} has RSV bits set`);
    if (![0, 1, 2, 8, 9, 10].includes(opcode)) {
      return stop(`frame at ${pos} has reserved opcode ${opcode}`);
    }
    if (isMasked !== masked) {
      return stop(
        `frame at ${pos} is ${isMasked ? "masked" : "unmasked"}, but our ${
          masked ? "client" : "server"
        } must ${masked ? "" : "not "}mask`,
      );
    }
    let length = len7;
    if (len7 === 126) {
      length = (bytes[pos + 2]! << 8) | bytes[pos + 3]!;
      if (length < 126) return stop(`frame at ${pos}: non-minimal length`);
    } else if (len7 === 127) {
      const high = new DataView(bytes.buffer, bytes.byteOffset + pos + 2, 8)
        .getBigUint64(0);
      if (high >= 1n << 53n) return stop(`frame at ${pos}: absurd length`);
      length = Number(high);
      if (length < 0x10000) return stop(`frame at ${pos}: non-minimal length`);
    }
    if (opcode >= 8 && (!fin || length > 125)) {
      return stop(`control frame at ${pos} is fragmented or over 125 bytes`);
    }
    if (bytes.length - pos - headerSize < length) return stop(null, true);
    const payload = bytes.slice(
      pos + headerSize,
      pos + headerSize + length,
    );
    if (isMasked) {
      const key = bytes.subarray(pos + headerSize - 4, pos + headerSize);
      for (let i = 0; i < payload.length; i++) payload[i]! ^= key[i & 3]!;
    }
    frames.push({ fin, opcode, payload });
    pos += headerSize + length;
  }
  return stop(null);
}
