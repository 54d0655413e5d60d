/**
 * The plain masking reference the fast kernel in `src/mask.ts` is checked
 * against: one byte at a time, straight from RFC 6455 §5.3 ("j = i MOD 4,
 * transformed-octet-i = original-octet-i XOR masking-key-octet-j"), with no
 * word views, unrolling or alignment to get wrong.
 *
 * @module
 */

/**
 * Returns a masked copy of `data`, as if `data` began at byte `offset` of the
 * payload; `data` is not changed.
 *
 * @param data The bytes to mask.
 * @param key The 4-byte masking key.
 * @param offset Where `data` starts within the payload.
 * @returns The masked bytes, in a new buffer.
 */
export function referenceMask(
  data: Uint8Array,
  key: Uint8Array,
  offset = 0,
): Uint8Array {
  const out = data.slice();
  for (let i = 0; i < out.length; i++) out[i]! ^= key[(offset + i) % 4]!;
  return out;
}
