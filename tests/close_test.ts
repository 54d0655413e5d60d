import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  CloseCode,
  decodeClosePayload,
  DEFAULT_CLOSE_REASONS,
  encodeClosePayload,
  isValidCloseCode,
  MAX_CLOSE_REASON_BYTES,
} from "../src/close.ts";
import { ProtocolError } from "../src/errors.ts";
import { assertBytes, hex } from "./_frames.ts";

const encoder = new TextEncoder();

/** RFC 6455 §7.4: the codes that may be in a close frame. */
function mayBeOnTheWire(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999);
}

function protocolError(closeCode: number) {
  return (error: unknown) => {
    assert.ok(error instanceof ProtocolError, `not a ProtocolError: ${error}`);
    assert.equal(error.closeCode, closeCode, error.message);
    return true;
  };
}

function codeBytes(code: number): Uint8Array {
  return new Uint8Array([code >>> 8, code & 0xff]);
}

const INVALID_CODES = [
  0,
  1,
  999,
  1004,
  1005,
  1006,
  1015,
  1016,
  1999,
  2000,
  2999,
  5000,
  65535,
];

describe("isValidCloseCode", () => {
  test("isValidCloseCode is true exactly for 1000-1003, 1007-1014 and 3000-4999, over 0..5000", () => {
    for (let code = 0; code <= 5000; code++) {
      assert.equal(isValidCloseCode(code), mayBeOnTheWire(code), `${code}`);
    }
  });

  test("isValidCloseCode is false for codes above 5000", () => {
    for (const code of [5001, 9999, 65535]) {
      assert.equal(isValidCloseCode(code), false);
    }
  });

  test("isValidCloseCode is false for 1005, 1006 and 1015, which are for reporting only", () => {
    for (const code of [1005, 1006, 1015]) {
      assert.equal(isValidCloseCode(code), false);
    }
  });
});

describe("encodeClosePayload", () => {
  test("encodeClosePayload writes the code in network byte order, then the reason", () => {
    assertBytes(encodeClosePayload(1000, "ok"), hex("03 e8 6f 6b"));
    assertBytes(encodeClosePayload(1001), hex("03 e9"));
    assertBytes(encodeClosePayload(4999, ""), hex("13 87"));
    assertBytes(encodeClosePayload(3000, "é"), hex("0b b8 c3 a9"));
  });

  test("encodeClosePayload without a code gives an empty payload", () => {
    assert.equal(encodeClosePayload(undefined).length, 0);
    assert.equal(encodeClosePayload(undefined, "").length, 0);
  });

  test("encodeClosePayload accepts every code that may be sent", () => {
    for (let code = 0; code <= 5000; code++) {
      if (!mayBeOnTheWire(code)) continue;
      assertBytes(encodeClosePayload(code), codeBytes(code), `${code}`);
    }
  });

  test("encodeClosePayload accepts a reason of 123 bytes and refuses 124 with a RangeError", () => {
    assert.equal(MAX_CLOSE_REASON_BYTES, 123);
    const payload = encodeClosePayload(1000, "a".repeat(123));
    assert.equal(payload.length, 125);
    assert.throws(() => encodeClosePayload(1000, "a".repeat(124)), RangeError);
  });

  test("encodeClosePayload counts a reason's length in UTF-8 bytes, not characters", () => {
    // "é" is 2 bytes: 61 of them are 122 bytes, 62 are 124.
    assert.equal(encodeClosePayload(1000, "é".repeat(61)).length, 124);
    assert.throws(() => encodeClosePayload(1000, "é".repeat(62)), RangeError);
    // "€" is 3 bytes: 41 of them are 123 bytes, 42 are 126.
    assert.equal(encodeClosePayload(1000, "€".repeat(41)).length, 125);
    assert.throws(() => encodeClosePayload(1000, "€".repeat(42)), RangeError);
    // "😀" is 2 UTF-16 code units, 4 bytes: 30 of them plus 3 ASCII are 123.
    assert.equal(encodeClosePayload(1000, "😀".repeat(30) + "abc").length, 125);
    assert.throws(
      () => encodeClosePayload(1000, "😀".repeat(30) + "abcd"),
      RangeError,
    );
  });

  test("encodeClosePayload refuses codes that may not be sent with a RangeError", () => {
    for (const code of [...INVALID_CODES, -1, 1000.5, NaN, Infinity]) {
      assert.throws(() => encodeClosePayload(code), RangeError, `${code}`);
      assert.throws(() => encodeClosePayload(code, "x"), RangeError, `${code}`);
    }
  });

  test("encodeClosePayload refuses a reason without a code with a TypeError", () => {
    assert.throws(() => encodeClosePayload(undefined, "bye"), TypeError);
  });
});

describe("decodeClosePayload", () => {
  test("decodeClosePayload reads an empty payload as 1005, no reason", () => {
    assert.deepEqual(decodeClosePayload(new Uint8Array(0)), {
      code: 1005,
      reason: "",
    });
    assert.equal(CloseCode.NoStatusReceived, 1005);
  });

  test("decodeClosePayload rejects a 1-byte payload with 1002", () => {
    for (const byte of [0x00, 0x03, 0xe8]) {
      assert.throws(
        () => decodeClosePayload(new Uint8Array([byte])),
        protocolError(1002),
      );
    }
  });

  test("decodeClosePayload reads a code and a reason", () => {
    assert.deepEqual(decodeClosePayload(hex("03 e8")), {
      code: 1000,
      reason: "",
    });
    assert.deepEqual(decodeClosePayload(hex("0f a0 62 79 65")), {
      code: 4000,
      reason: "bye",
    });
    const reason = "κόσμε ".repeat(10).slice(0, 41) + "😀";
    assert.deepEqual(
      decodeClosePayload(
        Uint8Array.from([...codeBytes(3000), ...encoder.encode(reason)]),
      ),
      { code: 3000, reason },
    );
  });

  test("decodeClosePayload accepts every code that may be received", () => {
    for (let code = 0; code <= 5000; code++) {
      if (!mayBeOnTheWire(code)) continue;
      assert.deepEqual(decodeClosePayload(codeBytes(code)), {
        code,
        reason: "",
      });
    }
  });

  for (const code of INVALID_CODES) {
    test(`decodeClosePayload rejects the code ${code} with 1002`, () => {
      assert.throws(
        () => decodeClosePayload(codeBytes(code)),
        protocolError(1002),
      );
      assert.throws(
        () => decodeClosePayload(Uint8Array.from([...codeBytes(code), 0x61])),
        protocolError(1002),
      );
    });
  }

  test("decodeClosePayload rejects every code that may not be on the wire, 0..5000 and a sample above, with 1002", () => {
    const codes: number[] = [];
    for (let code = 0; code <= 5000; code++) codes.push(code);
    for (let code = 5001; code <= 0xffff; code += 97) codes.push(code);
    codes.push(0xfffe, 0xffff);
    for (const code of codes) {
      if (mayBeOnTheWire(code)) continue;
      let closeCode = 0;
      try {
        decodeClosePayload(codeBytes(code));
      } catch (error) {
        if (error instanceof ProtocolError) closeCode = error.closeCode;
      }
      if (closeCode !== 1002) assert.fail(`${code}: got ${closeCode}`);
    }
  });

  test("decodeClosePayload rejects a reason that is not UTF-8 with 1007", () => {
    for (
      const reason of [
        "ff",
        "c0 80",
        "ed a0 80",
        "62 79 65 e2 82",
        "80",
        "f4 90 80 80",
      ]
    ) {
      assert.throws(
        () => decodeClosePayload(hex(`03 e8 ${reason}`)),
        protocolError(1007),
        reason,
      );
    }
  });

  test("decodeClosePayload keeps a BOM at the start of the reason", () => {
    assert.deepEqual(decodeClosePayload(hex("03 e8 ef bb bf 61")), {
      code: 1000,
      reason: "\ufeffa",
    });
  });

  test("decodeClosePayload reads back what encodeClosePayload wrote", () => {
    for (
      const [code, reason] of [[1000, ""], [1011, "oops"], [
        4321,
        "é€😀",
      ]] as const
    ) {
      assert.deepEqual(decodeClosePayload(encodeClosePayload(code, reason)), {
        code,
        reason,
      });
    }
  });
});

describe("DEFAULT_CLOSE_REASONS and CloseCode", () => {
  test("DEFAULT_CLOSE_REASONS names every code of RFC 6455 §7.4.1 and the registry", () => {
    assert.deepEqual(DEFAULT_CLOSE_REASONS, {
      1000: "Normal closure",
      1001: "Going away",
      1002: "Protocol error",
      1003: "Unsupported data",
      1005: "No status received",
      1006: "Abnormal closure",
      1007: "Invalid payload data",
      1008: "Policy violation",
      1009: "Message too big",
      1010: "Mandatory extension",
      1011: "Internal error",
      1012: "Service restart",
      1013: "Try again later",
      1014: "Bad gateway",
      1015: "TLS handshake failure",
    });
  });

  test("DEFAULT_CLOSE_REASONS fit in a close frame", () => {
    for (const [code, reason] of Object.entries(DEFAULT_CLOSE_REASONS)) {
      assert.ok(encoder.encode(reason).length <= MAX_CLOSE_REASON_BYTES, code);
    }
  });

  test("CloseCode has a default reason for every code", () => {
    for (const code of Object.values(CloseCode)) {
      assert.equal(typeof DEFAULT_CLOSE_REASONS[code], "string", `${code}`);
    }
    assert.equal(CloseCode.Normal, 1000);
    assert.equal(CloseCode.ProtocolError, 1002);
    assert.equal(CloseCode.InvalidPayload, 1007);
    assert.equal(CloseCode.MessageTooBig, 1009);
  });
});
