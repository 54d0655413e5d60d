import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { sha1 } from "../src/sha1.ts";
import { computeAcceptSync, WEBSOCKET_GUID } from "../src/handshake.ts";
import { prng, randomBytes, randomInt, toHex } from "./_frames.ts";

/** The digest Web Crypto gives, the reference for `sha1`. */
async function webCryptoSha1(bytes: Uint8Array): Promise<Uint8Array> {
  // A copy: digest takes only an ArrayBuffer-backed view, and hashing the
  // copy's exact bytes keeps a view's neighbours out of the reference.
  return new Uint8Array(await crypto.subtle.digest("SHA-1", bytes.slice()));
}

/** `sha1` as hex without spaces, as the test vectors are written. */
function sha1Hex(bytes: Uint8Array): string {
  return toHex(sha1(bytes)).replaceAll(" ", "");
}

/** The accept value as `computeAccept` computed it before `sha1`. */
async function webCryptoAccept(key: string): Promise<string> {
  const digest = await webCryptoSha1(
    new TextEncoder().encode(key + WEBSOCKET_GUID),
  );
  return btoa(String.fromCharCode(...digest));
}

const ascii = (text: string) => new TextEncoder().encode(text);

describe("sha1", () => {
  test("sha1 gives the FIPS 180-4 / RFC 3174 digests of their test vectors", () => {
    assert.equal(
      sha1Hex(ascii("")),
      "da39a3ee5e6b4b0d3255bfef95601890afd80709",
    );
    assert.equal(
      sha1Hex(ascii("abc")),
      "a9993e364706816aba3e25717850c26c9cd0d89d",
    );
    // 448 bits: the padding no longer fits, so it takes a second block.
    assert.equal(
      sha1Hex(
        ascii("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
      ),
      "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
    );
    assert.equal(
      sha1Hex(new Uint8Array(1_000_000).fill(0x61)),
      "34aa973cd4c4daa4f61eeb2bdbad27316534016f",
    );
    // RFC 3174 §7.3, TEST4: "01234567" 80 times, 640 bytes.
    assert.equal(
      sha1Hex(
        ascii(
          "0123456701234567012345670123456701234567012345670123456701234567"
            .repeat(10),
        ),
      ),
      "dea356a2cddd90c7a7ecedc5ebb563934f460452",
    );
  });

  test("sha1 equals Web Crypto's SHA-1 for every length 0..300", async () => {
    // Crosses every padding case: the length fitting in the last block
    // (rest < 56), spilling into another (56..63), whole blocks (64, 128).
    const random = prng(0x5a11);
    for (let length = 0; length <= 300; length++) {
      const bytes = randomBytes(random, length);
      assert.equal(
        toHex(sha1(bytes)),
        toHex(await webCryptoSha1(bytes)),
        `length ${length}`,
      );
    }
  });

  test("sha1 equals Web Crypto's SHA-1 for large inputs", async () => {
    const random = prng(0x5a12);
    for (const length of [4096, 65_599, 100_003, 1 << 20]) {
      const bytes = randomBytes(random, length);
      assert.equal(
        toHex(sha1(bytes)),
        toHex(await webCryptoSha1(bytes)),
        `length ${length}`,
      );
    }
  });

  test("sha1 hashes a view by its own bytes, not its buffer's", async () => {
    const random = prng(0x5a13);
    const buffer = randomBytes(random, 300);
    for (const [start, end] of [[1, 61], [3, 130], [64, 64], [7, 300]]) {
      const view = buffer.subarray(start, end);
      assert.equal(
        toHex(sha1(view)),
        toHex(await webCryptoSha1(view)),
        `bytes ${start}..${end}`,
      );
    }
  });

  test("sha1 writes into the digest array it is given and returns it", () => {
    const digest = new Uint8Array(20).fill(0xee);
    assert.equal(sha1(ascii("abc"), digest), digest);
    assert.equal(
      toHex(digest).replaceAll(" ", ""),
      "a9993e364706816aba3e25717850c26c9cd0d89d",
    );
  });

  test("sha1 refuses a digest array other than 20 bytes with RangeError", () => {
    for (const length of [0, 19, 21]) {
      assert.throws(
        () => sha1(ascii("abc"), new Uint8Array(length)),
        RangeError,
      );
    }
  });

  test("sha1 gives the same digest again: no state leaks between calls", () => {
    const long = new Uint8Array(200).fill(0xff);
    const abc = sha1Hex(ascii("abc"));
    sha1(long);
    assert.equal(sha1Hex(ascii("abc")), abc);
    const digest = sha1(ascii("abc"));
    sha1(long);
    assert.equal(toHex(digest).replaceAll(" ", ""), abc);
  });
});

describe("computeAcceptSync", () => {
  test("computeAcceptSync gives RFC 6455 §1.3's sample accept", () => {
    assert.equal(
      computeAcceptSync("dGhlIHNhbXBsZSBub25jZQ=="),
      "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
    );
  });

  test("computeAcceptSync equals the Web Crypto computation for random valid keys", async () => {
    const random = prng(0x5a14);
    for (let i = 0; i < 200; i++) {
      const key = btoa(String.fromCharCode(...randomBytes(random, 16)));
      assert.equal(computeAcceptSync(key), await webCryptoAccept(key), key);
    }
  });

  test("computeAcceptSync equals the Web Crypto computation for any key, non-ASCII included", async () => {
    // A client may send anything as its key: the UTF-8 of key + GUID is
    // hashed, lone surrogates becoming U+FFFD as TextEncoder makes them.
    const random = prng(0x5a15);
    const fixed = [
      "",
      "é",
      "\u007f\u0080",
      "ключ",
      "鍵🔑",
      "\ud800",
      "a\udc00b",
      // Around the 256 bytes of computeAcceptSync's reused input buffer.
      "x".repeat(219),
      "x".repeat(220),
      "x".repeat(221),
      "x".repeat(1000),
      "x".repeat(219) + "é",
    ];
    const keys = [...fixed];
    for (let i = 0; i < 200; i++) {
      const length = randomInt(random, 0, 80);
      let key = "";
      for (let j = 0; j < length; j++) {
        // Mostly ASCII, with some 2-, 3- and 4-byte characters and surrogates.
        const kind = randomInt(random, 0, 4);
        key += kind === 0
          ? String.fromCodePoint(randomInt(random, 0x10000, 0x10ffff))
          : kind === 1
          ? String.fromCharCode(randomInt(random, 0x80, 0xffff))
          : String.fromCharCode(randomInt(random, 0x20, 0x7e));
      }
      keys.push(key);
    }
    for (const key of keys) {
      assert.equal(
        computeAcceptSync(key),
        await webCryptoAccept(key),
        JSON.stringify(key),
      );
    }
  });
});
