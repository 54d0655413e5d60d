import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { applyMask, randomMaskSource } from "../src/mask.ts";
import { assertBytes, hex, prng, randomBytes, toHex } from "./_frames.ts";
import { referenceMask } from "./_mask_reference.ts";

const KEY = hex("37 fa 21 3d");
const GUARD = 0x5a;

/**
 * Masks `length` random bytes placed `align` bytes into a guarded buffer
 * with `applyMask(view, key, offset)`, and checks the result against the
 * reference and that no byte outside the view changed.
 */
function checkMask(
  random: () => number,
  length: number,
  align: number,
  offset: number,
  key: Uint8Array,
): void {
  const buffer = new Uint8Array(align + length + 11).fill(GUARD);
  const view = buffer.subarray(align, align + length);
  view.set(randomBytes(random, length));
  const expected = referenceMask(view, key, offset);
  applyMask(view, key, offset);
  const label = `length ${length}, align ${align}, offset ${offset}`;
  assertBytes(view, expected, label);
  for (let i = 0; i < align; i++) assert.equal(buffer[i], GUARD, label);
  for (let i = align + length; i < buffer.length; i++) {
    assert.equal(buffer[i], GUARD, `${label}: wrote past the view`);
  }
}

describe("applyMask", () => {
  test('applyMask masks "Hello" as in RFC 6455 §5.7', () => {
    const data = new TextEncoder().encode("Hello");
    applyMask(data, KEY);
    assert.equal(toHex(data), "7f 9f 4d 51 58");
    applyMask(data, KEY);
    assert.equal(new TextDecoder().decode(data), "Hello");
  });

  test("applyMask equals the reference for lengths 0..300 at every view alignment and key offset", () => {
    // 0..300 crosses the switch from the byte loop to the word loop (128
    // bytes), every unrolled-loop remainder, and every head and tail size.
    const random = prng(0x3a5c);
    for (let length = 0; length <= 300; length++) {
      for (let align = 0; align < 8; align++) {
        for (let offset = 0; offset < 4; offset++) {
          checkMask(random, length, align, offset, randomBytes(random, 4));
        }
      }
    }
  });

  test("applyMask equals the reference for large lengths at every view alignment and key offset", () => {
    const random = prng(0x3a5d);
    for (const length of [1000, 4096, 4099, 65535, 65536, 65537, 100_003]) {
      for (let align = 0; align < 8; align++) {
        for (let offset = 0; offset < 4; offset++) {
          checkMask(random, length, align, offset, randomBytes(random, 4));
        }
      }
    }
  });

  test("applyMask equals the reference with keys whose bytes have the top bit set", () => {
    // A word with its top bit set is negative in the Int32Array view.
    const random = prng(0x3a62);
    for (
      const key of ["ff ff ff ff", "80 00 00 00", "00 00 00 80", "7f ff 80 01"]
    ) {
      for (const length of [5, 127, 128, 129, 1024, 65536]) {
        for (let offset = 0; offset < 4; offset++) {
          checkMask(random, length, offset + 1, offset, hex(key));
        }
      }
    }
  });

  test("applyMask works on views of a buffer whose size is not a multiple of 4", () => {
    const random = prng(0x3a5e);
    for (let size = 16; size < 40; size++) {
      const buffer = new ArrayBuffer(size);
      for (let align = 0; align < 4; align++) {
        const view = new Uint8Array(buffer, align);
        view.set(randomBytes(random, view.length));
        const expected = referenceMask(view, KEY, align);
        applyMask(view, KEY, align);
        assertBytes(view, expected, `size ${size}, align ${align}`);
      }
    }
  });

  test("applyMask only uses offset modulo 4", () => {
    const random = prng(0x3a5f);
    for (const length of [7, 64]) {
      const data = randomBytes(random, length);
      for (const offset of [4, 5, 1001, 2 ** 31 + 3, 2 ** 40 + 2]) {
        const view = data.slice();
        applyMask(view, KEY, offset);
        assertBytes(view, referenceMask(data, KEY, offset % 4), `${offset}`);
      }
    }
  });

  test("applyMask chunk by chunk, with running offsets, equals masking the whole", () => {
    const random = prng(0x3a60);
    for (const length of [0, 1, 3, 15, 16, 17, 33, 80, 257, 1000]) {
      const data = randomBytes(random, length);
      const whole = referenceMask(data, KEY);
      // Every split in two.
      for (let split = 0; split <= length; split++) {
        const copy = data.slice();
        applyMask(copy.subarray(0, split), KEY, 0);
        applyMask(copy.subarray(split), KEY, split);
        assertBytes(copy, whole, `length ${length}, split at ${split}`);
      }
      // Random runs of chunks, in separate buffers as a socket would give them.
      for (let run = 0; run < 20; run++) {
        const out: number[] = [];
        let at = 0;
        while (at < length) {
          const size = Math.min(length - at, 1 + Math.floor(random() * 40));
          const chunk = data.slice(at, at + size);
          applyMask(chunk, KEY, at);
          out.push(...chunk);
          at += size;
        }
        assertBytes(
          Uint8Array.from(out),
          whole,
          `length ${length}, run ${run}`,
        );
      }
    }
  });

  test("applyMask twice gives the original back", () => {
    const random = prng(0x3a61);
    for (const length of [0, 5, 16, 1023]) {
      const data = randomBytes(random, length);
      const copy = data.slice(1);
      applyMask(copy, KEY, 3);
      applyMask(copy, KEY, 3);
      assertBytes(copy, data.subarray(1));
    }
  });
});

describe("randomMaskSource", () => {
  test("randomMaskSource gives 4-byte keys that vary, across pool refills", () => {
    const next = randomMaskSource();
    const seen = new Set<string>();
    const keys: Uint8Array[] = [];
    // 4096-byte pool: 1024 keys each; 3000 keys cross two refills.
    for (let i = 0; i < 3000; i++) {
      const key = next();
      assert.ok(key instanceof Uint8Array);
      assert.equal(key.length, 4);
      keys.push(key);
      seen.add(toHex(key));
    }
    // 3000 draws from 2^32 keys: a repeat has probability about 0.001.
    assert.ok(seen.size >= 2998, `only ${seen.size} distinct keys`);
    // Each byte position takes many values.
    for (let b = 0; b < 4; b++) {
      assert.ok(new Set(keys.map((key) => key[b])).size > 200, `byte ${b}`);
    }
  });

  test("randomMaskSource keys are independent copies", () => {
    const next = randomMaskSource();
    const first = next();
    const saved = first.slice();
    const second = next();
    second.fill(0);
    assertBytes(first, saved);
    first.fill(0xff);
    assert.notEqual(toHex(next()), "ff ff ff ff");
  });

  test("randomMaskSource sources are independent of each other", () => {
    const a = randomMaskSource();
    const b = randomMaskSource();
    const fromA = Array.from({ length: 8 }, () => toHex(a())).join();
    const fromB = Array.from({ length: 8 }, () => toHex(b())).join();
    assert.notEqual(fromA, fromB);
  });
});
