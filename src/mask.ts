/**
 * The masking kernel (RFC 6455 §5.3): XOR a payload with a 4-byte key.
 *
 * It runs over every byte a client sends and a server receives, so it works a
 * 32-bit word at a time on the aligned middle of the buffer and byte by byte
 * only on the unaligned ends. A plain byte-at-a-time reference lives in
 * `tests/mask_test.ts`, which checks this one against it.
 *
 * @module
 */

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Below this many bytes the word loop's set-up costs more than it saves. */
const WORD_THRESHOLD = 16;

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
 * import { applyMask } from "@wsstream/wsstream";
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
  const k0 = key[offset & 3]!;
  const k1 = key[(offset + 1) & 3]!;
  const k2 = key[(offset + 2) & 3]!;
  const k3 = key[(offset + 3) & 3]!;
  if (n < WORD_THRESHOLD) {
    for (let i = 0; i < n; i++) {
      data[i]! ^= (i & 3) === 0
        ? k0
        : (i & 3) === 1
        ? k1
        : (i & 3) === 2
        ? k2
        : k3;
    }
    return;
  }
  // Bytes until the view is 4-byte aligned, so the middle can be a Uint32Array.
  const head = (4 - (data.byteOffset & 3)) & 3;
  for (let i = 0; i < head; i++) {
    data[i]! ^= i === 0 ? k0 : i === 1 ? k1 : k2;
  }
  const words = (n - head) >>> 2;
  // The word loop starts `head` bytes in, so rotate the key by `head`.
  const r0 = key[(offset + head) & 3]!;
  const r1 = key[(offset + head + 1) & 3]!;
  const r2 = key[(offset + head + 2) & 3]!;
  const r3 = key[(offset + head + 3) & 3]!;
  const word = LITTLE_ENDIAN
    ? (r0 | (r1 << 8) | (r2 << 16) | (r3 << 24))
    : ((r0 << 24) | (r1 << 16) | (r2 << 8) | r3);
  const view = new Uint32Array(data.buffer, data.byteOffset + head, words);
  let j = 0;
  for (const end = words - 3; j < end; j += 4) {
    view[j]! ^= word;
    view[j + 1]! ^= word;
    view[j + 2]! ^= word;
    view[j + 3]! ^= word;
  }
  for (; j < words; j++) view[j]! ^= word;
  for (let i = head + words * 4; i < n; i++) {
    data[i]! ^= key[(offset + i) & 3]!;
  }
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
 * import { randomMaskSource } from "@wsstream/wsstream";
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
