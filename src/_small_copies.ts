/**
 * The copies of small binary messages that the protocol hands out, several
 * to a buffer when one received chunk holds several. Private: not
 * re-exported by `mod.ts`.
 *
 * A small message is copied out of the chunk it arrived in, so that it does
 * not pin the chunk (a read of up to 512 KiB). One new `Uint8Array` a
 * message is cheap on Bun (about 0.06 µs for 32 bytes) but not on Deno
 * 2.9, where a small typed array costs what a new `ArrayBuffer` does:
 * about 1.2 µs for 32 bytes, against 0.05 µs to copy into a view of a
 * buffer already made (bench/README.md, "Small messages on Deno: one
 * buffer a read"). So when a chunk holds more whole small binary messages
 * after the one being copied, one buffer is made for all of them (up to
 * {@link BATCH_LIMIT} bytes) and each copy is a view into it.
 *
 * What a view shares its buffer with: other binary messages of the same
 * chunk, so of the same connection, sent by the same peer, and nothing
 * else; a buffer is never kept past the chunk, so an idle connection holds
 * none. A message kept alone keeps at most {@link BATCH_LIMIT} bytes alive.
 *
 * The chunk being received is module state, set by {@link enterChunk} and
 * {@link leaveChunk} around the synchronous decoding of one chunk (a
 * protocol has no field to spare: see protocol.ts); a receive nested in a
 * handler restores the outer chunk, whose later messages then start a new
 * buffer.
 *
 * @module
 */

/** Below this many bytes, a message handed out is a copy (see protocol.ts). */
export const SMALL_MESSAGE = 4096;

/** The most bytes one shared buffer holds: what one kept message can pin. */
export const BATCH_LIMIT = 16 * 1024;

let chunk: Uint8Array | null = null;
let batch: Uint8Array | null = null;
let batchAt = 0;

/**
 * Starts the decoding of `bytes`: the small messages copied until
 * {@link leaveChunk} may share buffers.
 *
 * @returns The chunk of an outer receive, for {@link leaveChunk}.
 */
export function enterChunk(bytes: Uint8Array): Uint8Array | null {
  const outer = chunk;
  chunk = bytes;
  batch = null;
  batchAt = 0;
  return outer;
}

/** Ends the decoding begun by {@link enterChunk}. */
export function leaveChunk(outer: Uint8Array | null): void {
  chunk = outer;
  batch = null;
  batchAt = 0;
}

/**
 * A copy of `view` (fewer than {@link SMALL_MESSAGE} bytes, unmasked), in a
 * buffer of its own or in one shared with the binary messages after it in
 * the same chunk.
 */
export function copySmall(view: Uint8Array): Uint8Array {
  const length = view.length;
  const current = batch;
  if (current !== null && batchAt + length <= current.length) {
    const copy = current.subarray(batchAt, batchAt + length);
    copy.set(view);
    batchAt += length;
    return copy;
  }
  const bytes = chunk;
  if (bytes === null || view.buffer !== bytes.buffer) return view.slice();
  const end = view.byteOffset + length - bytes.byteOffset;
  if (view.byteOffset < bytes.byteOffset || end > bytes.length) {
    return view.slice();
  }
  const ahead = smallBinaryAhead(bytes, end);
  if (ahead === 0) return view.slice();
  const fresh = new Uint8Array(Math.min(length + ahead, BATCH_LIMIT));
  fresh.set(view);
  batch = fresh;
  batchAt = length;
  return fresh.subarray(0, length);
}

/**
 * The payload bytes of the whole, unfragmented, plain binary messages of
 * fewer than {@link SMALL_MESSAGE} bytes in `bytes` from `at`: frame after
 * frame while they are complete in `bytes`, passing over text and ping or
 * pong frames (which need no copy), up to the first other frame. Headers
 * only are read; a frame the decoder will refuse at most wastes room.
 */
export function smallBinaryAhead(bytes: Uint8Array, at: number): number {
  const end = bytes.length;
  let total = 0;
  while (at + 2 <= end && total < BATCH_LIMIT) {
    const b0 = bytes[at]!;
    const b1 = bytes[at + 1]!;
    let length = b1 & 0x7f;
    let header = (b1 & 0x80) !== 0 ? 6 : 2;
    if (length === 127) break;
    if (length === 126) {
      if (at + 4 > end) break;
      length = (bytes[at + 2]! << 8) | bytes[at + 3]!;
      header += 2;
    }
    if (at + header + length > end) break;
    if (b0 === 0x82) { // FIN, no RSV bit, binary
      if (length >= SMALL_MESSAGE) break;
      total += length;
    } else if (b0 !== 0x81 && b0 !== 0x89 && b0 !== 0x8a) break; // text, ping, pong
    at += header + length;
  }
  return total;
}
