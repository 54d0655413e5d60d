/**
 * SHA-1 (FIPS 180-4 §6.1; RFC 3174), synchronous and in plain TypeScript,
 * for the opening handshake's `Sec-WebSocket-Accept` (RFC 6455 §4.2.2).
 * Private: not re-exported by `mod.ts`.
 *
 * Web Crypto has SHA-1, but only as a promise: an async op per handshake,
 * which cost 8 to 11% of a Deno server's CPU time under a handshake load.
 * The accept key hashes 60 bytes (a 24-character key and the 36-character
 * GUID), two blocks, which this does in under a microsecond with no await
 * (`bench/sha1_bench.ts` compares the two). SHA-1's weaknesses do not matter
 * here: RFC 6455 uses it only to show that the server understood the
 * handshake, not for security.
 *
 * The names follow FIPS 180-4: the message schedule `W`, the working
 * variables `a` to `e`, the constants `K`, the hash value `H`. Arithmetic is
 * on int32 (`| 0` after each sum), which is what a 32-bit word mod 2^32
 * needs and what JIT compilers keep in registers.
 *
 * @module
 */

// FIPS 180-4 §4.2.1: the constants K, one for each 20 rounds.
const K0 = 0x5a827999;
const K1 = 0x6ed9eba1;
const K2 = 0x8f1bbcdc | 0;
const K3 = 0xca62c1d6 | 0;

// The message schedule W (FIPS 180-4 §6.1.2 step 1) and the hash value H,
// reused by every call so hashing allocates nothing but (by default) the
// digest. Safe because `sha1` is synchronous: no two calls interleave.
const W = new Int32Array(80);
const H = new Int32Array(5);

// The last one or two blocks: the bytes left over after the whole blocks,
// then the padding (FIPS 180-4 §5.1.1).
const TAIL = new Uint8Array(128);

/**
 * Computes the SHA-1 digest of `bytes` (FIPS 180-4 §6.1.2).
 *
 * @param bytes The message, of any length.
 * @param digest Where to write the digest: 20 bytes, new ones by default. A
 * caller hashing often can pass the same array each time, since allocating
 * even a small `Uint8Array` costs about as much as hashing a block on Deno.
 * @returns `digest`, holding the 20-byte digest.
 * @throws {RangeError} If `digest` is not 20 bytes long.
 *
 * @example The "abc" test vector of FIPS 180-4 and RFC 3174
 * ```ts
 * import { sha1 } from "./sha1.ts";
 * import assert from "node:assert/strict";
 *
 * const digest = sha1(new TextEncoder().encode("abc"));
 * assert.equal(
 *   Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join(""),
 *   "a9993e364706816aba3e25717850c26c9cd0d89d",
 * );
 * ```
 */
export function sha1(
  bytes: Uint8Array,
  digest: Uint8Array = new Uint8Array(20),
): Uint8Array {
  if (digest.length !== 20) {
    throw new RangeError(
      `Cannot write a SHA-1 digest into ${digest.length} bytes: it takes 20`,
    );
  }
  // FIPS 180-4 §5.3.1: the initial hash value.
  H[0] = 0x67452301;
  H[1] = 0xefcdab89 | 0;
  H[2] = 0x98badcfe | 0;
  H[3] = 0x10325476;
  H[4] = 0xc3d2e1f0 | 0;

  const length = bytes.length;
  const whole = length - (length & 63);
  for (let offset = 0; offset < whole; offset += 64) {
    compress(bytes, offset);
  }

  // FIPS 180-4 §5.1.1: append the bit "1", then zeros up to 56 bytes mod 64,
  // then the message length in bits as a 64-bit big-endian integer.
  const rest = length - whole;
  for (let i = 0; i < rest; i++) TAIL[i] = bytes[whole + i]!;
  TAIL[rest] = 0x80;
  const tailLength = rest < 56 ? 64 : 128;
  TAIL.fill(0, rest + 1, tailLength - 8);
  // The bit length, as two 32-bit words: `length / 2^29` is `length * 8 /
  // 2^32`, and `length * 8` is exact for any length an array can have.
  const bitsHigh = Math.floor(length / 0x20000000);
  const bitsLow = (length * 8) >>> 0;
  writeWord(TAIL, tailLength - 8, bitsHigh);
  writeWord(TAIL, tailLength - 4, bitsLow);
  compress(TAIL, 0);
  if (tailLength === 128) compress(TAIL, 64);

  for (let i = 0; i < 5; i++) writeWord(digest, i * 4, H[i]!);
  return digest;
}

/**
 * Hashes the 64-byte block at `offset` of `block` into `H` (FIPS 180-4
 * §6.1.2 steps 1 to 4).
 */
function compress(block: Uint8Array, offset: number): void {
  // Step 1: the message schedule. The first 16 words are the block, read
  // big-endian; each later one is ROTL^1 of four earlier ones XORed.
  for (let t = 0, i = offset; t < 16; t++, i += 4) {
    W[t] = (block[i]! << 24) | (block[i + 1]! << 16) | (block[i + 2]! << 8) |
      block[i + 3]!;
  }
  for (let t = 16; t < 80; t++) {
    const x = W[t - 3]! ^ W[t - 8]! ^ W[t - 14]! ^ W[t - 16]!;
    W[t] = (x << 1) | (x >>> 31);
  }

  // Step 2: the working variables.
  let a = H[0]!;
  let b = H[1]!;
  let c = H[2]!;
  let d = H[3]!;
  let e = H[4]!;

  // Step 3: 80 rounds, T = ROTL^5(a) + f_t(b, c, d) + e + K_t + W_t, in four
  // runs of 20, one for each function f_t (FIPS 180-4 §4.1.1).
  let t = 0;
  for (; t < 20; t++) {
    // Ch(b, c, d)
    const f = (b & c) | (~b & d);
    const temp = (((a << 5) | (a >>> 27)) + f + e + K0 + W[t]!) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = temp;
  }
  for (; t < 40; t++) {
    // Parity(b, c, d)
    const f = b ^ c ^ d;
    const temp = (((a << 5) | (a >>> 27)) + f + e + K1 + W[t]!) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = temp;
  }
  for (; t < 60; t++) {
    // Maj(b, c, d)
    const f = (b & c) | (b & d) | (c & d);
    const temp = (((a << 5) | (a >>> 27)) + f + e + K2 + W[t]!) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = temp;
  }
  for (; t < 80; t++) {
    // Parity(b, c, d)
    const f = b ^ c ^ d;
    const temp = (((a << 5) | (a >>> 27)) + f + e + K3 + W[t]!) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = temp;
  }

  // Step 4: the intermediate hash value.
  H[0] = (H[0]! + a) | 0;
  H[1] = (H[1]! + b) | 0;
  H[2] = (H[2]! + c) | 0;
  H[3] = (H[3]! + d) | 0;
  H[4] = (H[4]! + e) | 0;
}

/** Writes the 32-bit `word` big-endian at `offset` of `bytes`. */
function writeWord(bytes: Uint8Array, offset: number, word: number): void {
  bytes[offset] = word >>> 24;
  bytes[offset + 1] = word >>> 16;
  bytes[offset + 2] = word >>> 8;
  bytes[offset + 3] = word;
}
