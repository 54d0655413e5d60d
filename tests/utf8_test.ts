import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ProtocolError } from "../src/errors.ts";
import { decodeUtf8, Utf8Decoder } from "../src/utf8.ts";
import {
  type Chunking,
  chunkings,
  cut,
  hex,
  pick,
  prng,
  randomInt,
  toHex,
} from "./_frames.ts";

const encoder = new TextEncoder();

interface Verdict {
  /** Whether the bytes are well-formed UTF-8. */
  valid: boolean;
  /**
   * Where a streaming decoder must fail: the offset of the first byte that
   * no well-formed sequence can continue with, or the length when the bytes
   * end inside a sequence; -1 when valid.
   */
  failAt: number;
  /** The decoded text, when valid. */
  text: string;
}

/**
 * A plain reference validator and decoder, straight from the Unicode
 * Standard's Table 3-7 (well-formed UTF-8 byte sequences): for each lead
 * byte, the range its second byte must fall in; later bytes are 80..BF.
 */
function reference(bytes: Uint8Array): Verdict {
  const codePoints: number[] = [];
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i]!;
    if (lead <= 0x7f) {
      codePoints.push(lead);
      i++;
      continue;
    }
    let trail: number; // continuation bytes after the lead
    let low = 0x80; // range of the second byte
    let high = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) trail = 1;
    else if (lead === 0xe0) [trail, low] = [2, 0xa0];
    else if ((lead >= 0xe1 && lead <= 0xec) || lead === 0xee || lead === 0xef) {
      trail = 2;
    } else if (lead === 0xed) [trail, high] = [2, 0x9f];
    else if (lead === 0xf0) [trail, low] = [3, 0x90];
    else if (lead >= 0xf1 && lead <= 0xf3) trail = 3;
    else if (lead === 0xf4) [trail, high] = [3, 0x8f];
    else return { valid: false, failAt: i, text: "" }; // 80..C1, F5..FF
    let codePoint = lead & (0x3f >> trail);
    for (let k = 1; k <= trail; k++) {
      if (i + k >= bytes.length) {
        return { valid: false, failAt: bytes.length, text: "" };
      }
      const byte = bytes[i + k]!;
      const [min, max] = k === 1 ? [low, high] : [0x80, 0xbf];
      if (byte < min || byte > max) {
        return { valid: false, failAt: i + k, text: "" };
      }
      codePoint = (codePoint << 6) | (byte & 0x3f);
    }
    codePoints.push(codePoint);
    i += trail + 1;
  }
  let text = "";
  for (let at = 0; at < codePoints.length; at += 4096) {
    text += String.fromCodePoint(...codePoints.slice(at, at + 4096));
  }
  return { valid: true, failAt: -1, text };
}

function isUtf8Error(error: unknown): boolean {
  assert.ok(error instanceof ProtocolError, `not a ProtocolError: ${error}`);
  assert.equal(error.closeCode, 1007);
  return true;
}

/** What feeding `bytes`, cut as given, to `decoder` gave. */
function feed(
  decoder: Utf8Decoder,
  bytes: Uint8Array,
  cuts: readonly number[],
): { text: string } | { failedIn: [number, number] } | { failedAtEnd: true } {
  for (const { start, chunk } of cut(bytes, cuts)) {
    try {
      decoder.push(chunk);
    } catch (error) {
      isUtf8Error(error);
      return { failedIn: [start, start + chunk.length] };
    }
  }
  try {
    return { text: decoder.end() };
  } catch (error) {
    isUtf8Error(error);
    return { failedAtEnd: true };
  }
}

/**
 * Checks `decodeUtf8` and `Utf8Decoder` against the reference on `bytes`:
 * the decoder fed each of `ways` (by default whole, split in two at every
 * offset, and byte by byte). On invalid bytes the decoder must throw while
 * being fed the chunk holding the first impossible byte, not earlier and not
 * later, or at `end()` when the bytes stop inside a sequence.
 */
function check(
  bytes: Uint8Array,
  ways: Chunking[] = chunkings(bytes.length),
): Verdict {
  const decoder = new Utf8Decoder(); // one for all ways: it is reusable
  const expected = reference(bytes);
  const label = toHex(bytes.subarray(0, 40));
  if (expected.valid) {
    assert.equal(decodeUtf8(bytes), expected.text, label);
  } else {
    assert.throws(() => decodeUtf8(bytes), isUtf8Error, label);
  }
  for (const { name, cuts } of ways) {
    const result = feed(decoder, bytes, cuts);
    const where = `${label} (${name})`;
    if (expected.valid) {
      assert.deepEqual(result, { text: expected.text }, where);
    } else if (expected.failAt === bytes.length) {
      assert.deepEqual(result, { failedAtEnd: true }, where);
    } else {
      assert.ok("failedIn" in result, `${where}: did not fail in a push`);
      const [start, end] = result.failedIn;
      assert.ok(
        start <= expected.failAt && expected.failAt < end,
        `${where}: failed in [${start}, ${end}), not at byte ${expected.failAt}`,
      );
    }
  }
  return expected;
}

const KOSME = "κόσμε";
const KOSME_BYTES = hex("ce ba e1 bd b9 cf 83 ce bc ce b5");

const VALID: [string, string][] = [
  ['"κόσμε" (Autobahn 6.2)', "ce ba e1 bd b9 cf 83 ce bc ce b5"],
  ["U+0000", "00"],
  ["U+007F", "7f"],
  ["U+0080", "c2 80"],
  ["U+07FF", "df bf"],
  ["U+0800", "e0 a0 80"],
  ["U+D7FF, below the surrogates", "ed 9f bf"],
  ["U+E000, above the surrogates", "ee 80 80"],
  ["U+FFFD", "ef bf bd"],
  ["U+FFFE, a noncharacter", "ef bf be"],
  ["U+FFFF", "ef bf bf"],
  ["U+10000", "f0 90 80 80"],
  ["U+1F600", "f0 9f 98 80"],
  ["U+FFFFF", "f3 bf bf bf"],
  ["U+100000", "f4 80 80 80"],
  ["U+10FFFF", "f4 8f bf bf"],
  ["an empty string", ""],
  ["ASCII", "48 65 6c 6c 6f 2c 20 77 6f 72 6c 64"],
  ["every length in a row", "41 c2 80 e0 a0 80 f0 90 80 80 df bf ef bf bf"],
];

const INVALID: [string, string][] = [
  ["a lone continuation byte 80", "80"],
  ["a lone continuation byte BF", "bf"],
  ["continuation bytes after text", "61 80 bf"],
  ["the overlong C0 80 (NUL)", "c0 80"],
  ["the overlong C0 AF ('/')", "c0 af"],
  ["the overlong C1 BF", "c1 bf"],
  ["the overlong E0 80 80", "e0 80 80"],
  ["the overlong E0 9F BF", "e0 9f bf"],
  ["the overlong F0 80 80 80", "f0 80 80 80"],
  ["the overlong F0 8F BF BF", "f0 8f bf bf"],
  ["the surrogate ED A0 80 (U+D800)", "ed a0 80"],
  ["the surrogate ED AF BF (U+DBFF)", "ed af bf"],
  ["the surrogate ED B0 80 (U+DC00)", "ed b0 80"],
  ["the surrogate ED BF BF (U+DFFF)", "ed bf bf"],
  ["a surrogate pair ED A0 80 ED B0 80", "ed a0 80 ed b0 80"],
  ["F4 90 80 80, above U+10FFFF", "f4 90 80 80"],
  ["F7 BF BF BF", "f7 bf bf bf"],
  ["a 5-byte sequence F8 88 80 80 80", "f8 88 80 80 80"],
  ["a 6-byte sequence FC 84 80 80 80 80", "fc 84 80 80 80 80"],
  ["FE", "fe"],
  ["FF", "ff"],
  ["FE FE FF FF", "fe fe ff ff"],
  ["a 2-byte lead then a space", "c3 20"],
  ["a 3-byte lead then a space", "e1 20"],
  ["a 3-byte sequence cut short by ASCII", "e1 80 41"],
  ["a 4-byte sequence cut short by ASCII", "f0 90 80 41"],
  ["a truncated 2-byte sequence at the end", "61 c2"],
  ["a truncated 3-byte sequence at the end", "61 e0 a0"],
  ["a truncated 3-byte sequence (1 byte) at the end", "e1"],
  ["a truncated 4-byte sequence at the end", "61 f0 90 80"],
  ["a truncated U+10FFFF at the end", "f4 8f bf"],
  [
    '"κόσμε" + ED A0 80 + "edited" (Autobahn 6.3)',
    "ce ba e1 bd b9 cf 83 ce bc ce b5 ed a0 80 65 64 69 74 65 64",
  ],
  [
    '"κόσμε" + F4 90 80 80 + "edited" (Autobahn 6.4)',
    "ce ba e1 bd b9 cf 83 ce bc ce b5 f4 90 80 80 65 64 69 74 65 64",
  ],
  [
    "incomplete sequences in a row (Autobahn 6.15)",
    "c0 e0 80 f0 80 80 f8 80 80 80 fc 80 80 80 80 df ef bf f7 bf bf fb bf bf bf fd bf bf bf bf",
  ],
];

describe("Utf8Decoder and decodeUtf8 against a Table 3-7 reference", () => {
  for (const [name, bytes] of VALID) {
    test(`Utf8Decoder and decodeUtf8 accept ${name}, fed whole, split and byte by byte`, () => {
      const verdict = check(hex(bytes));
      assert.equal(verdict.valid, true, "the reference disagrees");
    });
  }

  for (const [name, bytes] of INVALID) {
    test(`Utf8Decoder and decodeUtf8 reject ${name} with 1007, at the first impossible byte`, () => {
      const verdict = check(hex(bytes));
      assert.equal(verdict.valid, false, "the reference disagrees");
    });
  }

  test("Utf8Decoder and decodeUtf8 accept every prefix of a valid text only at sequence ends (Autobahn 6.6)", () => {
    const text = hex(`${toHex(KOSME_BYTES)} f0 9f 98 80 ef bf bf 24`);
    for (let n = 0; n <= text.length; n++) check(text.subarray(0, n));
  });

  // Every edge of a second-byte range in Table 3-7, and a byte either side.
  const SECONDS = [
    0x00,
    0x41,
    0x7f,
    0x80,
    0x81,
    0x8e,
    0x8f,
    0x90,
    0x91,
    0x9e,
    0x9f,
    0xa0,
    0xa1,
    0xbe,
    0xbf,
    0xc0,
    0xc1,
    0xc2,
    0xdf,
    0xe0,
    0xef,
    0xf0,
    0xf4,
    0xff,
  ];

  test("Utf8Decoder and decodeUtf8 agree with the reference on every non-ASCII byte followed by each range edge", () => {
    // 3072 cases, checked without assert() per case (slow on Deno).
    const decoder = new Utf8Decoder();
    const bytes = new Uint8Array(4);
    for (let lead = 0x80; lead < 0x100; lead++) {
      for (const second of SECONDS) {
        bytes.set([lead, second, 0x80, 0x80]);
        const expected = reference(bytes);
        let whole: number;
        try {
          decodeUtf8(bytes);
          whole = -1;
        } catch (error) {
          whole = error instanceof ProtocolError ? error.closeCode : 0;
        }
        let failAt = -1;
        for (let i = 0; i <= bytes.length && failAt < 0; i++) {
          try {
            if (i < bytes.length) decoder.push(bytes.subarray(i, i + 1));
            else decoder.end();
          } catch (error) {
            failAt = error instanceof ProtocolError && error.closeCode === 1007
              ? i
              : -2;
          }
        }
        if (
          whole !== (expected.valid ? -1 : 1007) || failAt !== expected.failAt
        ) {
          assert.fail(
            `${
              toHex(bytes)
            }: decodeUtf8 gave ${whole}, Utf8Decoder failed at ${failAt}, the reference at ${expected.failAt}`,
          );
        }
      }
    }
  });

  test('Utf8Decoder fed "κόσμε" + ED A0 80 + "edited" byte by byte throws exactly when A0 is pushed', () => {
    const bytes = concatText(KOSME, "ed a0 80", "edited");
    const decoder = new Utf8Decoder();
    for (let i = 0; i < bytes.length; i++) {
      const push = () => decoder.push(bytes.subarray(i, i + 1));
      if (i < 11) {
        push();
      } else {
        assert.equal(bytes[i], 0xa0);
        assert.throws(push, (error: unknown) => {
          assert.ok(error instanceof ProtocolError);
          assert.equal(error.closeCode, 1007);
          assert.equal(error.code, "WS_ERR_PROTOCOL");
          return true;
        });
        return;
      }
    }
    assert.fail("never threw");
  });

  test("Utf8Decoder fails on a surrogate's second byte even when both arrive in one chunk with more after", () => {
    const decoder = new Utf8Decoder();
    decoder.push(KOSME_BYTES);
    assert.throws(() => decoder.push(hex("ed a0")), isUtf8Error);
  });
});

/** Joins text and hex parts into bytes. */
function concatText(text: string, bytes: string, after: string): Uint8Array {
  return Uint8Array.from([
    ...encoder.encode(text),
    ...hex(bytes),
    ...encoder.encode(after),
  ]);
}

describe("Utf8Decoder and decodeUtf8 details", () => {
  test("Utf8Decoder and decodeUtf8 keep a byte order mark (EF BB BF)", () => {
    const bytes = hex("ef bb bf 61 ef bb bf");
    assert.equal(decodeUtf8(bytes), "\ufeffa\ufeff");
    check(bytes);
    const decoder = new Utf8Decoder();
    decoder.push(hex("ef bb"));
    decoder.push(hex("bf"));
    assert.equal(decoder.end(), "\ufeff");
    // A second message on the same decoder keeps its BOM too.
    decoder.push(hex("ef bb bf 62"));
    assert.equal(decoder.end(), "\ufeffb");
  });

  test("Utf8Decoder.end throws 1007 on a truncated sequence", () => {
    for (const bytes of ["c2", "e0 a0", "f0 90 80", "61 62 f4"]) {
      const decoder = new Utf8Decoder();
      decoder.push(hex(bytes));
      assert.throws(() => decoder.end(), isUtf8Error, bytes);
    }
  });

  test("Utf8Decoder.end returns an empty string for an empty message", () => {
    const decoder = new Utf8Decoder();
    assert.equal(decoder.end(), "");
    decoder.push(new Uint8Array(0));
    assert.equal(decoder.end(), "");
  });

  test("Utf8Decoder is reusable after end(), a failed end(), a failed push() and reset()", () => {
    const decoder = new Utf8Decoder();
    decoder.push(encoder.encode("first"));
    assert.equal(decoder.end(), "first");
    decoder.push(encoder.encode("second"));
    assert.equal(decoder.end(), "second", "after end()");

    decoder.push(hex("61 e2 82"));
    assert.throws(() => decoder.end(), isUtf8Error);
    // The partial E2 82 is gone: its last byte alone is a lone continuation.
    assert.throws(() => decoder.push(hex("ac")), isUtf8Error);
    decoder.push(encoder.encode("€"));
    assert.equal(decoder.end(), "€", "after a failed end()");

    decoder.push(encoder.encode("abc"));
    assert.throws(() => decoder.push(hex("ff")), isUtf8Error);
    decoder.push(encoder.encode("def"));
    assert.equal(decoder.end(), "def", "after a failed push()");

    decoder.push(hex("61 e2 82"));
    decoder.reset();
    assert.throws(() => decoder.push(hex("ac")), isUtf8Error, "kept E2 82");
    decoder.push(hex("62"));
    decoder.reset();
    decoder.push(encoder.encode("κόσμε"));
    assert.equal(decoder.end(), KOSME, "after reset()");
  });

  test("Utf8Decoder and decodeUtf8 decode long multilingual text exactly", () => {
    const text = "Hello, κόσμε! Привет, мир! こんにちは世界 🌍🚀 ".repeat(2000);
    const bytes = encoder.encode(text);
    assert.equal(decodeUtf8(bytes), text);
    const decoder = new Utf8Decoder();
    for (let at = 0; at < bytes.length; at += 1000) {
      decoder.push(bytes.subarray(at, at + 1000));
    }
    assert.equal(decoder.end(), text);
  });

  test("Utf8Decoder and decodeUtf8 keep a real U+FFFD (EF BF BD) and still reject bad bytes next to one", () => {
    // U+FFFD is also what a lossy decoder puts in place of bad bytes; a text
    // that really holds one must come out whole, and one with bad bytes too
    // must still fail.
    const text = "a\ufffdb κόσμε \ufffd";
    const bytes = encoder.encode(text);
    assert.equal(decodeUtf8(bytes), text);
    check(bytes);
    check(hex("ef bf bd ff"));
    check(hex("ef bf bd ed a0 80 ef bf bd"));
    check(hex("c0 af ef bf bd"));
  });

  test("Utf8Decoder decodes text cut into chunks of 1 to 9 bytes, sequences spanning several chunks", () => {
    const text = "a κόσμε ｗ 🌍🚀 \u{10ffff}\u{10000}\u0800\u07ff\u0080 z"
      .repeat(20);
    const bytes = encoder.encode(text);
    const decoder = new Utf8Decoder();
    for (let size = 1; size <= 9; size++) {
      for (let at = 0; at < bytes.length; at += size) {
        decoder.push(bytes.subarray(at, at + size));
      }
      assert.equal(decoder.end(), text, `chunks of ${size}`);
    }
  });
});

/** A byte biased towards what makes UTF-8 interesting. */
function fuzzByte(random: () => number): number[] {
  const r = random();
  if (r < 0.15) return [randomInt(random, 0x00, 0x7f)];
  if (r < 0.45) return [randomInt(random, 0x80, 0xbf)];
  if (r < 0.55) return [randomInt(random, 0xc0, 0xdf)];
  if (r < 0.68) return [pick(random, [0xe0, 0xed, 0xef, 0xe1, 0xec, 0xee])];
  if (r < 0.78) return [pick(random, [0xf0, 0xf4, 0xf1, 0xf3])];
  if (r < 0.82) return [randomInt(random, 0xf5, 0xff)];
  // A whole valid character, so valid strings are common.
  const codePoint = pick(random, [
    randomInt(random, 0x80, 0x7ff),
    randomInt(random, 0x800, 0xd7ff),
    randomInt(random, 0xe000, 0xffff),
    randomInt(random, 0x10000, 0x10ffff),
  ]);
  return [...encoder.encode(String.fromCodePoint(codePoint))];
}

describe("Utf8Decoder and decodeUtf8 seeded fuzz", () => {
  test("Utf8Decoder and decodeUtf8 agree with the reference on 3000 random byte strings, whole, byte by byte and in random chunks", () => {
    const random = prng(0x07f8);
    let valid = 0;
    let failAtEnd = 0;
    for (let i = 0; i < 3000; i++) {
      const bytes: number[] = [];
      const length = randomInt(random, 0, 20);
      while (bytes.length < length) bytes.push(...fuzzByte(random));
      const all = chunkings(bytes.length);
      const cuts: number[] = [];
      for (let p = 1; p < bytes.length; p++) if (random() < 0.3) cuts.push(p);
      const verdict = check(Uint8Array.from(bytes), [
        all[0]!,
        all.at(-1)!,
        all[1 + randomInt(random, 0, bytes.length)]!,
        { name: `cut at ${cuts}`, cuts },
      ]);
      if (verdict.valid) valid++;
      else if (verdict.failAt === bytes.length) failAtEnd++;
    }
    // The fuzz must exercise every outcome, not just rejections.
    assert.ok(valid > 300, `only ${valid} valid strings`);
    assert.ok(failAtEnd > 100, `only ${failAtEnd} truncated strings`);
  });
});
