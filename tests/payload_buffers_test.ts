/**
 * The payload buffers of `src/payload_buffers.ts`, plain and aligned: the
 * same bytes as `set()` for every alignment and size around the thresholds,
 * buffers from `for()` placed so the copy is aligned alike (when aligned),
 * and the reuse of a buffer given back. Both kinds are tested on every
 * runtime; the runtime decides only which one its transports inject.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { PayloadBuffers, plainPayloadBuffers } from "../src/payload_buffers.ts";

/** Unzeroed where the runtime has it, as Bun's transport gives it. */
const allocate = (size: number): Uint8Array => {
  const bytes = new Uint8Array(size);
  bytes.fill(0xa5); // stands for old memory: the caller must write it all
  return bytes;
};
const KINDS = [
  ["plain", plainPayloadBuffers],
  ["aligned", new PayloadBuffers({ aligned: true, allocate })],
] as const;
const SIZES = [0, 1, 15, 2047, 2048, 2049, 4095, 4096, 4097, 6150, 65536];

/** `length` bytes from a buffer with `offset` bytes before them. */
function source(length: number, offset: number): Uint8Array {
  const buffer = new Uint8Array(offset + length);
  for (let i = 0; i < buffer.length; i++) buffer[i] = (i * 131 + 7) & 0xff;
  return buffer.subarray(offset);
}

for (const [kind, buffers] of KINDS) {
  describe(`${kind} PayloadBuffers.copyInto`, () => {
    test("copies what set() copies, for every source and target offset mod 16 and sizes around 2 and 4 KiB", () => {
      for (const length of SIZES) {
        for (let from = 0; from < 16; from++) {
          const bytes = source(length, from);
          for (let at = 0; at < 16; at++) {
            const expected = new Uint8Array(length + 32).fill(0xee);
            expected.set(bytes, at);
            const actual = new Uint8Array(length + 32).fill(0xee);
            buffers.copyInto(actual, at, bytes);
            assert.deepEqual(
              actual,
              expected,
              `${length} bytes ${from} → ${at}`,
            );
          }
        }
      }
    });

    test("into a view: the target's own offset counts", () => {
      const bytes = source(10_000, 3);
      const backing = new Uint8Array(10_100);
      const view = backing.subarray(7);
      buffers.copyInto(view, 5, bytes);
      assert.deepEqual(backing.subarray(12, 10_012), bytes);
      assert.equal(backing[11], 0);
      assert.equal(backing[10_012], 0);
    });
  });

  describe(`${kind} PayloadBuffers.for`, () => {
    test("is of the size asked for; aligned, a large copy into it is aligned alike", () => {
      const aligned = buffers.aligned;
      for (const length of SIZES) {
        for (let from = 0; from < 16; from++) {
          const bytes = source(length, from);
          for (const at of [2, 4, 6, 8, 10, 14]) {
            const buffer = buffers.for(at + length, at, bytes);
            assert.equal(buffer.length, at + length);
            assert.equal(Object.getPrototypeOf(buffer), Uint8Array.prototype);
            // Its caller writes every byte; only the small ones are zeroed.
            if (!aligned || length < 4096) {
              assert.ok(buffer.every((byte) => byte === 0));
            }
            // Bytes before the view (its pad) are zeroed, never old memory.
            assert.ok(
              new Uint8Array(buffer.buffer, 0, buffer.byteOffset).every((b) =>
                b === 0
              ),
            );
            const offset = (buffer.byteOffset + at - bytes.byteOffset) % 16;
            if (aligned && length >= 4096) {
              assert.equal((offset + 16) % 16, 0, `${from} → ${at}`);
              assert.ok(buffer.buffer.byteLength - buffer.length < 16);
            } else {
              assert.equal(buffer.byteOffset, 0);
            }
          }
        }
      }
    });
  });

  describe(`${kind} PayloadBuffers.reusableFor and giveBack`, () => {
    test("the buffer given back serves the next call that fits, once; one over 1 MiB is not kept", () => {
      const aligned = buffers.aligned;
      const reusableBufferFor = buffers.reusableFor.bind(buffers);
      const giveBack = buffers.giveBack.bind(buffers);
      const bytes = source(70_000, 3);
      reusableBufferFor(1, 0, bytes); // takes what other tests gave back
      const first = reusableBufferFor(70_008, 8, bytes);
      giveBack(first);
      const second = reusableBufferFor(65_544, 8, bytes);
      assert.equal(second.buffer, first.buffer);
      assert.equal(second.length, 65_544);
      assert.equal(Object.getPrototypeOf(second), Uint8Array.prototype);
      if (aligned) {
        assert.equal((second.byteOffset + 8 - bytes.byteOffset) & 15, 0);
      }
      // Taken: the next call gets a new buffer, until this one is given back.
      assert.notEqual(reusableBufferFor(100, 8, bytes).buffer, first.buffer);
      giveBack(second);
      // Too small for this one: a new buffer, and the spare stays.
      assert.notEqual(reusableBufferFor(80_000, 8, bytes).buffer, first.buffer);
      assert.equal(reusableBufferFor(100, 8, bytes).buffer, first.buffer);
      // Over 1 MiB: not kept.
      const large = reusableBufferFor(1_100_000, 8, bytes);
      giveBack(large);
      assert.notEqual(reusableBufferFor(100, 8, bytes).buffer, large.buffer);
    });
  });
}

describe("PayloadBuffers.join", () => {
  /** Parts of the given sizes, each its own whole buffer, numbered bytes. */
  function parts(sizes: number[]): Uint8Array[] {
    let n = 0;
    return sizes.map((size) => {
      const part = new Uint8Array(size);
      for (let i = 0; i < size; i++) part[i] = (n++ * 131 + 7) & 0xff;
      return part;
    });
  }
  function joinedByHand(from: Uint8Array[]): Uint8Array {
    const out = new Uint8Array(from.reduce((sum, p) => sum + p.length, 0));
    let at = 0;
    for (const part of from) out.set(part, (at += part.length) - part.length);
    return out;
  }

  for (const [kind, buffers] of KINDS) {
    test(`${kind}: the parts in order, in a new buffer, from none to past 1 MiB`, () => {
      for (
        const sizes of [[], [5], [3, 4], [4096, 1, 70_000], [
          524_274,
          524_288,
          3,
        ]]
      ) {
        const from = parts(sizes);
        const size = sizes.reduce((sum, n) => sum + n, 0);
        const joined = buffers.join(from, size);
        assert.deepEqual(joined, joinedByHand(from));
        assert.equal(Object.getPrototypeOf(joined), Uint8Array.prototype);
        for (const part of from) assert.notEqual(joined.buffer, part.buffer);
      }
    });
  }

  test("release is told of every part but the last, and only from 1 MiB", () => {
    const released: Uint8Array[] = [];
    const buffers = new PayloadBuffers({
      aligned: true,
      allocate,
      release: (part) => released.push(part),
    });
    const small = parts([600_000, 448_575]); // 1 MiB less one byte
    buffers.join(small, 1_048_575);
    assert.equal(released.length, 0);
    const large = parts([500_000, 524_288, 524_288, 10]);
    const expected = joinedByHand(large);
    // Released parts may be gone at once: the join must not need them after.
    const detaching = new PayloadBuffers({
      aligned: true,
      allocate,
      release: (part) => {
        released.push(part);
        part.fill(0);
      },
    });
    assert.deepEqual(detaching.join(large, 1_548_586), expected);
    assert.deepEqual(released, large.slice(0, 3));
    assert.equal(large[3]![0], expected[1_548_576]); // the last one untouched
  });
});
