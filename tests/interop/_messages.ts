/**
 * The messages the interop suite sends each way, and how to compare what
 * comes back.
 */
import assert from "node:assert/strict";

const encoder = new TextEncoder();

/** A received message in one shape for both sides: text or bytes. */
export type Payload = string | Uint8Array;

/** A 1 MiB pattern in which a lost, repeated or moved 64 KiB block shows. */
function pattern(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 7 + (i >>> 16) * 13) & 255;
  return bytes;
}

/** Every kind of whole message, each sent and expected back unchanged. */
export const MESSAGES: readonly (readonly [string, Payload])[] = [
  ["text", "Hello, WebSocket"],
  ["binary", Uint8Array.of(0, 1, 2, 127, 128, 253, 254, 255)],
  ["empty text", ""],
  ["empty binary", new Uint8Array(0)],
  ["1 MiB binary", pattern(1024 * 1024)],
  ["multi-byte UTF-8 text", "héllo wörld — ✓ 日本語 🎉 𝄞"],
];

const SPLIT = encoder.encode("split ✓ here");
const MID_CHAR = SPLIT.indexOf(0xe2) + 1; // inside the 3 bytes of ✓

/**
 * Messages we send in fragments (`send(asyncIterable)`), with what the peer
 * must receive whole. `type` forces bytes to go as text.
 */
export const FRAGMENTED: readonly {
  name: string;
  chunks: readonly Payload[];
  type?: "text";
  whole: Payload;
}[] = [
  {
    name: "fragmented text",
    chunks: ["frag", "mented ", "", "tëxt"],
    whole: "fragmented tëxt",
  },
  {
    name: "fragmented binary",
    chunks: [Uint8Array.of(1, 2), new Uint8Array(0), Uint8Array.of(3, 4, 5)],
    whole: Uint8Array.of(1, 2, 3, 4, 5),
  },
  {
    // A fragment boundary inside a character: legal, RFC 6455 §5.6 checks
    // UTF-8 on the whole message only.
    name: "text split inside a UTF-8 character",
    chunks: [SPLIT.subarray(0, MID_CHAR), SPLIT.subarray(MID_CHAR)],
    type: "text",
    whole: "split ✓ here",
  },
];

/** The chunks as an async iterable, yielded one turn apart. */
export async function* chunksOf(
  chunks: readonly Payload[],
): AsyncIterable<Payload> {
  for (const chunk of chunks) {
    await Promise.resolve();
    yield chunk;
  }
}

/** Normalises what a native `WebSocket` delivers (`arraybuffer` binaryType). */
export function fromNative(data: unknown): Payload {
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) {
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  throw new TypeError(
    `Unexpected message data: ${Object.prototype.toString.call(data)}`,
  );
}

/** Asserts `actual` is `expected`: same type (text or binary), same content. */
export function assertSamePayload(
  actual: unknown,
  expected: Payload,
  what: string,
): void {
  if (typeof expected === "string") {
    assert.equal(typeof actual, "string", `${what}: expected text`);
    assert.equal(actual, expected, `${what}: text differs`);
    return;
  }
  assert.ok(
    actual instanceof Uint8Array,
    `${what}: expected binary, got ${typeof actual}`,
  );
  assert.equal(actual.length, expected.length, `${what}: length differs`);
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) {
      assert.fail(`${what}: byte ${i} is ${actual[i]}, not ${expected[i]}`);
    }
  }
}
