/**
 * Buffers for payload copies, injected into the protocol: a runtime whose
 * copies need care (Bun) gives its own, the core names no runtime. They also
 * reuse a frame's buffer once its bytes are on the socket
 * ({@link PayloadBuffers.reusableFor}).
 *
 * Why Bun needs care: its `Uint8Array.prototype.set` copies with glibc's
 * `memmove`, which from about 2 KiB up uses `rep movsb`. On AMD Zen CPUs that
 * runs 10 to 15 times slower (about 1.5 GB/s instead of 20 to 40) when the
 * target lies 1 to 15 bytes past the source, modulo the 16 that both buffers
 * are aligned to: exactly what framing does, copying a payload that starts a
 * buffer to just past a frame header. (Measured on an AMD EPYC with glibc
 * 2.36; with `GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=1000000000`
 * the slow cases go away, which names the cause.) Deno's V8 copies at full
 * speed either way, and `slice()` (whose target lies before its source) is
 * fast on both.
 *
 * So, with care (`aligned`): a buffer made to receive a copy is offset so
 * that the copy is aligned alike ({@link PayloadBuffers.for}). A message
 * assembled from its parts gets a buffer placed for its second part; the
 * parts after it then lie alike as well when the reads between them are
 * multiples of 16 bytes, as Bun's full 512 KiB reads are (16 MiB echoed on
 * Bun: 0.74x to 0.91-0.94x Bun native). A large copy that still is not
 * aligned alike ({@link PayloadBuffers.copyInto}) goes in 2 KiB steps, under
 * the threshold, at about 10 GB/s whatever the alignment.
 *
 * Such a buffer is also left unzeroed on Bun (`Buffer.allocUnsafeSlow`, given
 * as `allocate`), as its caller writes every byte of it: zeroing 64 KiB there
 * costs about as much as copying it (3 µs against 1 µs a buffer, measured on
 * Bun 1.4.5).
 *
 * Small buffers: a new small `Uint8Array` costs about 1.2 µs on Deno 2.9
 * (what a new `ArrayBuffer` costs), against 0.05 µs for a view into a
 * buffer already made (bench/README.md, "Small messages on Deno: one buffer
 * a read"). With `shareSmallBuffers` (Deno's transports' buffers), the
 * small binary messages of one received chunk share a buffer (see
 * _small_copies.ts), and small frames to send are views carved in turn from
 * a block shared by all the protocols using these buffers
 * ({@link PayloadBuffers.smallFrame}). Without it (the default, and Bun's),
 * each is a `Uint8Array` of its own: Bun makes small typed arrays in its
 * heap for about 0.06 µs, and views cost it more (a protocol echoing 32-byte
 * messages ran at a quarter of its speed on Bun with them).
 *
 * @module
 */

/** Copies from this size up may take memmove's `rep movsb` path. */
const LARGE = 4096;
/** A copy in steps of this size stays under it. */
const STEP = 2048;
/** Buffers up to this size are kept for reuse; larger ones are let go. */
const SPARE_LIMIT = 1024 * 1024;
/** From this size up, the parts a message was joined from are released. */
const RELEASE_FROM = 1024 * 1024;
/**
 * Frames under this size may be carved from a shared block
 * ({@link PayloadBuffers.smallFrame}).
 */
export const SMALL_FRAME = 2048;
/** The size of the blocks small frames are carved from. */
const FRAME_BLOCK = 16 * 1024;

/**
 * How a runtime's payload copies are made: plain (`new Uint8Array` and
 * `set()`), or aligned alike with unzeroed buffers where the runtime's copy
 * is slow otherwise. A runtime's transports name theirs
 * (`RuntimeTransports.payloadBuffers`); the protocol takes them as
 * `ProtocolOptions.buffers`.
 *
 * @example A buffer placed for a copy, aligned alike
 * ```ts
 * import { PayloadBuffers } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const buffers = new PayloadBuffers({ aligned: true });
 * const payload = new Uint8Array(8192).subarray(3); // starts 3 bytes in
 * const frame = buffers.for(4 + payload.length, 4, payload);
 * buffers.copyInto(frame, 4, payload);
 * // The copy's source and target sit alike modulo 16.
 * assert.equal((frame.byteOffset + 4 - payload.byteOffset) & 15, 0);
 * ```
 */
export class PayloadBuffers {
  /** Whether copies are placed aligned alike (see the module doc). */
  readonly aligned: boolean;
  /**
   * Whether the small binary messages of one received chunk are copied into
   * one buffer they share, and small frames carved from a shared block,
   * rather than each made in a buffer of its own (see the module doc).
   */
  readonly shareSmallBuffers: boolean;
  /** The block small frames are carved from (see {@link smallFrame}). */
  #block: Uint8Array | null = null;
  #blockAt = 0;
  readonly #allocate: (size: number) => Uint8Array;
  /**
   * A buffer given back by its last user ({@link giveBack}): the next large
   * frame is built in it rather than in a new one. On Bun, a frame is
   * written to the socket at once, mostly whole, and a new buffer per 64 KiB
   * frame cost more than the copy into it (the pages are fresh each time):
   * reusing one took the allocation and most of the copy (together 27 %)
   * out of our client's profile at 64 KiB. One buffer serves every
   * connection of the runtime, as a frame built in it is on the socket
   * before anything else runs.
   */
  #spare: ArrayBuffer | null = null;
  readonly #release: ((part: Uint8Array) => void) | null;

  /**
   * Makes a kind of payload buffers.
   *
   * @param options `aligned` to place large copies aligned alike;
   * `allocate`, a source of buffers the caller fills whole (may be
   * unzeroed; plain `Uint8Array`s or subclasses); `release`, told of each
   * part but the last once a message of 1 MiB or more is joined from them
   * ({@link join}): it may let a part's memory go at once when the part is
   * a whole buffer the runtime read into, which nothing else sees;
   * `shareSmallBuffers` (default `false`), whether small binary messages of
   * one chunk share a buffer and small frames are carved from a shared
   * block.
   */
  constructor(
    options: {
      aligned?: boolean;
      allocate?: (size: number) => Uint8Array;
      release?: (part: Uint8Array) => void;
      shareSmallBuffers?: boolean;
    } = {},
  ) {
    this.aligned = options.aligned ?? false;
    this.shareSmallBuffers = options.shareSmallBuffers ?? false;
    this.#allocate = options.allocate ?? ((size) => new Uint8Array(size));
    this.#release = options.release ?? null;
  }

  /**
   * Joins a message's parts into one new buffer of `size` bytes, the sum of
   * their lengths. For a message of 1 MiB or more, every part but the last
   * then goes to `release`, where the runtime has one: on Bun, the
   * transport's reads are fresh buffers of its own, and letting each go as
   * soon as its bytes are copied out (rather than when the garbage
   * collector gets to it) lets the next reads reuse its memory instead of
   * faulting in new pages (see src/transports/bun.ts). The last part is
   * never released: the protocol is still reading the buffer it lies in.
   *
   * @example
   * ```ts
   * import { PayloadBuffers } from "@wsstream/wsstream/codec";
   * import assert from "node:assert/strict";
   *
   * const buffers = new PayloadBuffers();
   * const joined = buffers.join([new Uint8Array([1, 2]), new Uint8Array([3])], 3);
   * assert.deepEqual(joined, new Uint8Array([1, 2, 3]));
   * ```
   */
  join(parts: Uint8Array[], size: number): Uint8Array {
    if (parts.length < 2) {
      return parts.length === 1 ? parts[0]!.slice() : new Uint8Array(size);
    }
    // Placed for the second part: on Bun, every part after it then copies
    // aligned alike too, as long as the reads between are whole multiples of
    // 16 bytes (Bun's full reads are 512 KiB).
    const out = this.for(size, parts[0]!.length, parts[1]!);
    let at = 0;
    for (const part of parts) {
      this.copyInto(out, at, part);
      at += part.length;
    }
    const release = this.#release;
    if (release !== null && size >= RELEASE_FROM) {
      for (let i = 0; i < parts.length - 1; i++) release(parts[i]!);
    }
    return out;
  }

  /**
   * A buffer for a frame of `size` bytes, under {@link SMALL_FRAME}, that
   * the caller fills whole and then only reads. With `shareSmallBuffers`, a
   * view carved from a block that the frames made after it share (any
   * protocol's: use the view's bytes, never its `buffer`); its bytes are
   * never handed out again. Else a new `Uint8Array`.
   *
   * @example
   * ```ts
   * import { PayloadBuffers } from "@wsstream/wsstream/codec";
   * import assert from "node:assert/strict";
   *
   * const buffers = new PayloadBuffers({ shareSmallBuffers: true });
   * const a = buffers.smallFrame(34);
   * const b = buffers.smallFrame(34);
   * assert.equal(a.length, 34);
   * assert.equal(a.buffer, b.buffer); // one block, two frames
   * assert.notEqual(a.byteOffset, b.byteOffset);
   * ```
   */
  smallFrame(size: number): Uint8Array {
    if (!this.shareSmallBuffers) return new Uint8Array(size);
    let block = this.#block;
    let at = this.#blockAt;
    if (block === null || at + size > block.length) {
      block = this.#block = new Uint8Array(FRAME_BLOCK);
      at = 0;
    }
    this.#blockAt = at + size;
    return block.subarray(at, at + size);
  }

  /**
   * A new buffer of `size` bytes, into which `source` will be copied at
   * `at` and the caller writes all the other bytes. Aligned: an unzeroed
   * view into a buffer up to 15 bytes larger (those bytes, before the view,
   * zeroed), placed so that the copy is aligned alike. Always a plain
   * `Uint8Array` (never Bun's `Buffer`).
   */
  for(size: number, at: number, source: Uint8Array): Uint8Array {
    if (!this.aligned || source.length < LARGE) return new Uint8Array(size);
    const pad = (source.byteOffset - at) & 15;
    // A plain Uint8Array, not Bun's Buffer: messages are made here too.
    // Their `buffer` shows the pad, so it is zeroed: it must not show old
    // bytes (another connection's, say) to code that reads past the view.
    const buffer = this.#allocate(pad + size);
    buffer.fill(0, 0, pad);
    return new Uint8Array(buffer.buffer, buffer.byteOffset + pad, size);
  }

  /** Copies `source` into `target` at `at` (like `target.set(source, at)`). */
  copyInto(target: Uint8Array, at: number, source: Uint8Array): void {
    const length = source.length;
    if (
      !this.aligned || length < LARGE ||
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
   * Like {@link for}, from the buffer last given back when that is large
   * enough. Give the result back with {@link giveBack} once its bytes are
   * copied out, or do not.
   */
  reusableFor(size: number, at: number, source: Uint8Array): Uint8Array {
    const buffer = this.#spare;
    if (buffer !== null) {
      const pad = this.aligned ? (source.byteOffset - at) & 15 : 0;
      if (buffer.byteLength >= pad + size) {
        this.#spare = null;
        return new Uint8Array(buffer, pad, size);
      }
    }
    return this.for(size, at, source);
  }

  /**
   * Gives back a buffer of {@link reusableFor} whose bytes nothing refers to
   * any more (they were copied onto the socket): the next call may return
   * it.
   */
  giveBack(bytes: Uint8Array): void {
    if (bytes.buffer.byteLength <= SPARE_LIMIT) {
      this.#spare = bytes.buffer as ArrayBuffer;
    }
  }
}

/**
 * Plain buffers: where the runtime copies at full speed at any alignment
 * (Deno's V8). The protocol's default.
 *
 * @example
 * ```ts
 * import { plainPayloadBuffers } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * assert.equal(plainPayloadBuffers.aligned, false);
 * ```
 */
export const plainPayloadBuffers: PayloadBuffers = new PayloadBuffers();
