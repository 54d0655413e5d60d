/**
 * Buffers for payload copies: copying without the slow path of Bun's
 * memmove, and reusing a frame's buffer once its bytes are on the socket
 * ({@link reusableBufferFor}, below).
 *
 * Bun's `Uint8Array.prototype.set` copies with glibc's `memmove`,
 * which from about 2 KiB up uses `rep movsb`. On AMD Zen CPUs that runs 10 to
 * 15 times slower (about 1.5 GB/s instead of 20 to 40) when the target lies
 * 1 to 15 bytes past the source, modulo the 16 that both buffers are aligned
 * to: exactly what framing does, copying a payload that starts a buffer to
 * just past a frame header. (Measured on an AMD EPYC with glibc 2.36; with
 * `GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=1000000000` the slow
 * cases go away, which names the cause.) Deno's V8 copies at full speed
 * either way, and `slice()` (whose target lies before its source) is fast on
 * both.
 *
 * So, on Bun: a buffer made to receive a copy is offset so that the copy is
 * aligned alike ({@link bufferFor}). A message assembled from its parts gets
 * a buffer placed for its second part; the parts after it then lie alike as
 * well when the reads between them are multiples of 16 bytes, as Bun's full
 * 512 KiB reads are (16 MiB echoed on Bun: 0.74x to 0.91-0.94x Bun native). A large
 * copy that still is not aligned alike ({@link copyInto}) goes in 2 KiB steps,
 * under the threshold, at about 10 GB/s whatever the alignment.
 *
 * Such a buffer is also left unzeroed on Bun (`Buffer.allocUnsafeSlow`), as
 * its caller writes every byte of it: zeroing 64 KiB there costs about as
 * much as copying it (3 µs against 1 µs a buffer, measured on Bun 1.4.5).
 *
 * @module
 */

/** Whether copies need the care above: on JavaScriptCore (Bun). */
const CAREFUL = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
/** Bun's unzeroed, unpooled allocation (a `Uint8Array`). */
const allocUnzeroed = CAREFUL
  ? (globalThis as unknown as {
    Buffer: { allocUnsafeSlow(size: number): Uint8Array };
  }).Buffer.allocUnsafeSlow
  : (size: number) => new Uint8Array(size);
/** Copies from this size up may take memmove's `rep movsb` path. */
const LARGE = 4096;
/** A copy in steps of this size stays under it. */
const STEP = 2048;

/**
 * A new buffer of `size` bytes, into which `source` will be copied at `at`
 * and the caller writes all the other bytes: on Bun, an unzeroed view into a
 * buffer up to 15 bytes larger (those bytes, before the view, zeroed), placed
 * so that the copy is aligned alike. Always a plain `Uint8Array` (never Bun's
 * `Buffer`).
 */
export function bufferFor(
  size: number,
  at: number,
  source: Uint8Array,
): Uint8Array {
  if (!CAREFUL || source.length < LARGE) return new Uint8Array(size);
  const pad = (source.byteOffset - at) & 15;
  // A plain Uint8Array, not Bun's Buffer: messages are made here too. Their
  // `buffer` shows the pad, so it is zeroed: it must not show old bytes
  // (another connection's, say) to code that reads past the view.
  const buffer = allocUnzeroed(pad + size);
  buffer.fill(0, 0, pad);
  return new Uint8Array(buffer.buffer, buffer.byteOffset + pad, size);
}

/** Copies `source` into `target` at `at` (like `target.set(source, at)`). */
export function copyInto(
  target: Uint8Array,
  at: number,
  source: Uint8Array,
): void {
  const length = source.length;
  if (
    !CAREFUL || length < LARGE ||
    ((target.byteOffset + at - source.byteOffset) & 15) === 0
  ) {
    target.set(source, at);
    return;
  }
  for (let from = 0; from < length; from += STEP) {
    const to = Math.min(length, from + STEP);
    target.set(source.subarray(from, to), at + from);
  }
}

/**
 * What our connection's `send` (a `ProtocolHandler`'s) returns when the
 * bytes it was given are already copied onto the socket: their buffer may
 * then be given back. Internal: a handler a user writes cannot return it by
 * accident, as it could `true` (Node's `socket.write` returns `true` for
 * bytes it still holds).
 */
export const BYTES_TAKEN: unique symbol = Symbol("bytes taken");

/**
 * A buffer given back by its last user ({@link giveBack}): the next large
 * frame is built in it rather than in a new one. On Bun, a frame is written
 * to the socket at once, mostly whole, and a new buffer per 64 KiB frame
 * cost more than the copy into it (the pages are fresh each time): reusing
 * one took the allocation and most of the copy (together 27 %) out of our
 * client's profile at 64 KiB. One buffer serves every connection, as a
 * frame built in it is on the socket before anything else runs.
 */
let spare: ArrayBuffer | null = null;
/** Buffers up to this size are kept for reuse; larger ones are let go. */
const SPARE_LIMIT = 1024 * 1024;

/**
 * Like {@link bufferFor}, from the buffer last given back when that is
 * large enough. Give the result back with {@link giveBack} once its bytes
 * are copied out, or do not.
 */
export function reusableBufferFor(
  size: number,
  at: number,
  source: Uint8Array,
): Uint8Array {
  const buffer = spare;
  if (buffer !== null) {
    const pad = CAREFUL ? (source.byteOffset - at) & 15 : 0;
    if (buffer.byteLength >= pad + size) {
      spare = null;
      return new Uint8Array(buffer, pad, size);
    }
  }
  return bufferFor(size, at, source);
}

/**
 * Gives back a buffer of {@link reusableBufferFor} whose bytes nothing
 * refers to any more (they were copied onto the socket): the next call may
 * return it.
 */
export function giveBack(bytes: Uint8Array): void {
  if (bytes.buffer.byteLength <= SPARE_LIMIT) {
    spare = bytes.buffer as ArrayBuffer;
  }
}
