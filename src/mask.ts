/**
 * The masking kernel (RFC 6455 §5.3): XOR a payload with a 4-byte key.
 *
 * It runs over every byte a client sends and a server receives, so it is
 * tuned, and measured on both runtimes with `bench/codec.ts`:
 *
 * - Large payloads go a 32-bit word at a time over an `Int32Array` view of
 *   the aligned middle, eight words an iteration; only the unaligned ends go
 *   byte by byte. `Int32Array`, not `Uint32Array`: a word with its top bit
 *   set is then already the int32 that `^` gives, with nothing to convert;
 *   it measured 15 to 25% faster on both Deno and Bun.
 * - Small payloads go byte by byte, four bytes an iteration with the key
 *   bytes in locals: below `WORD_THRESHOLD` bytes, creating the word view
 *   costs more than the word loop saves.
 *
 * A plain byte-at-a-time reference lives in `tests/_mask_reference.ts`, and
 * `tests/mask_test.ts` checks this kernel against it.
 *
 * @module
 */

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * From this many bytes on, the word loop pays for its view. Measured on
 * lengths from 8 bytes to 64 KiB: the crossover is near 64 bytes on Deno
 * and near 256 on Bun; at 128 each runtime is within a third of its best.
 */
const WORD_THRESHOLD = 128;

/**
 * XORs `data` in place with the 4-byte mask `key`, as if `data` began at
 * byte `offset` of the payload (so a payload can be unmasked chunk by chunk
 * as it arrives). Masking and unmasking are the same operation.
 *
 * @param data The bytes to mask or unmask, changed in place.
 * @param key The 4-byte masking key.
 * @param offset Where `data` starts within the payload (only `offset % 4` matters).
 *
 * @example Masking twice gives the original back
 * ```ts
 * import { applyMask } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const key = new Uint8Array([0x37, 0xfa, 0x21, 0x3d]);
 * const data = new TextEncoder().encode("Hello");
 * applyMask(data, key);
 * // RFC 6455 §5.7: a masked "Hello" is 7f 9f 4d 51 58.
 * assert.deepEqual([...data], [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
 * applyMask(data, key);
 * assert.equal(new TextDecoder().decode(data), "Hello");
 * ```
 */
export function applyMask(
  data: Uint8Array,
  key: Uint8Array,
  offset = 0,
): void {
  const n = data.length;
  if (n < WORD_THRESHOLD) {
    maskBytes(data, 0, n, key, offset);
    return;
  }
  // Bytes until the view is 4-byte aligned, so the middle can be word-sized.
  const head = (4 - (data.byteOffset & 3)) & 3;
  maskBytes(data, 0, head, key, offset);
  const words = (n - head) >>> 2;
  // The word loop starts `head` bytes in, so its key is rotated by `head`.
  const at = offset + head;
  const b0 = key[at & 3]!;
  const b1 = key[(at + 1) & 3]!;
  const b2 = key[(at + 2) & 3]!;
  const b3 = key[(at + 3) & 3]!;
  const word = LITTLE_ENDIAN
    ? b0 | (b1 << 8) | (b2 << 16) | (b3 << 24)
    : (b0 << 24) | (b1 << 16) | (b2 << 8) | b3;
  maskWords(new Int32Array(data.buffer, data.byteOffset + head, words), word);
  const tail = head + words * 4;
  maskBytes(data, tail, n, key, offset + tail);
}

/** XORs `data[start..end)` with `key`, `data[start]` being payload byte `offset`. */
function maskBytes(
  data: Uint8Array,
  start: number,
  end: number,
  key: Uint8Array,
  offset: number,
): void {
  const k0 = key[offset & 3]!;
  const k1 = key[(offset + 1) & 3]!;
  const k2 = key[(offset + 2) & 3]!;
  const k3 = key[(offset + 3) & 3]!;
  let i = start;
  for (const last = end - 3; i < last; i += 4) {
    data[i]! ^= k0;
    data[i + 1]! ^= k1;
    data[i + 2]! ^= k2;
    data[i + 3]! ^= k3;
  }
  if (i < end) data[i++]! ^= k0;
  if (i < end) data[i++]! ^= k1;
  if (i < end) data[i]! ^= k2;
}

/** XORs every element of `view` with `word`, eight at a time. */
function maskWords(view: Int32Array, word: number): void {
  const n = view.length;
  let j = 0;
  for (const last = n - 7; j < last; j += 8) {
    view[j]! ^= word;
    view[j + 1]! ^= word;
    view[j + 2]! ^= word;
    view[j + 3]! ^= word;
    view[j + 4]! ^= word;
    view[j + 5]! ^= word;
    view[j + 6]! ^= word;
    view[j + 7]! ^= word;
  }
  for (; j < n; j++) view[j]! ^= word;
}

/**
 * Makes a source of masking keys: each call returns 4 fresh random bytes.
 * Keys come from `crypto.getRandomValues`, drawn in batches so a small
 * message costs no system call of its own (RFC 6455 §5.3: the key "MUST be
 * derived from a strong source of entropy").
 *
 * @returns A function returning a new 4-byte key on each call.
 *
 * @example
 * ```ts
 * import { randomMaskSource } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const next = randomMaskSource();
 * assert.equal(next().length, 4);
 * ```
 */
export function randomMaskSource(): () => Uint8Array {
  const pool = new Uint8Array(4096);
  let at = pool.length;
  return () => {
    if (at === pool.length) {
      crypto.getRandomValues(pool);
      at = 0;
    }
    const key = pool.slice(at, at + 4);
    at += 4;
    return key;
  };
}
