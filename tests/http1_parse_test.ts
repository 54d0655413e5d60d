import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { HandshakeError } from "../src/errors.ts";
import {
  DEFAULT_HEAD_LIMITS,
  type HeadLimits,
  HeadParser,
  parseRequestHead,
  parseResponseHead,
} from "../src/http1_parse.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a string byte for byte (latin1), so tests can write any byte. */
function bytes(text: string): Uint8Array {
  return Uint8Array.from(text, (char) => char.charCodeAt(0));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** An assert.throws matcher for a HandshakeError with this status. */
function refused(status: number, message?: RegExp) {
  return (error: unknown) => {
    assert.ok(
      error instanceof HandshakeError,
      `not a HandshakeError: ${error}`,
    );
    assert.equal(error.status, status, error.message);
    if (message) assert.match(error.message, message);
    return true;
  };
}

/** A small deterministic PRNG (mulberry32), so fuzz failures reproduce. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const REQUEST = "GET /chat?room=1 HTTP/1.1\r\n" +
  "Host: example.com\r\n" +
  "Upgrade: websocket\r\n" +
  "Connection: Upgrade\r\n" +
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
  "Sec-WebSocket-Version: 13\r\n" +
  "\r\n";
// A masked text frame "Hi" and the start of another frame.
const FRAMES = new Uint8Array([
  0x81,
  0x82,
  1,
  2,
  3,
  4,
  0x49,
  0x6b,
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x88,
]);

describe("DEFAULT_HEAD_LIMITS", () => {
  test("DEFAULT_HEAD_LIMITS is 64 KiB, an 8192-byte request line and field lines, 128 fields, frozen", () => {
    assert.deepEqual({ ...DEFAULT_HEAD_LIMITS }, {
      maxHeadSize: 65536,
      maxRequestLineLength: 8192,
      maxLineLength: 8192,
      maxHeaderCount: 128,
    });
    assert.ok(Object.isFrozen(DEFAULT_HEAD_LIMITS));
  });
});

describe("HeadParser", () => {
  test("HeadParser returns the whole head and the bytes after it from one chunk", () => {
    const input = concat(encoder.encode(REQUEST), FRAMES);
    const result = new HeadParser().push(input);
    assert.ok(result);
    assert.equal(decoder.decode(result.head), REQUEST);
    assert.deepEqual(result.rest, FRAMES);
  });

  test("a head a HeadParser read is checked again when parsed within other limits", () => {
    const text = "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nX-B: 2\r\n\r\n";
    const { head } = new HeadParser().push(encoder.encode(text))!;
    // Within the limits it was read with (the defaults), it parses.
    assert.equal(parseRequestHead(head).headers.get("x-b"), "2");
    // Tighter ones refuse it, as they would have refused it when read.
    assert.throws(
      () => parseRequestHead(head, { maxHeaderCount: 2 }),
      (error) => error instanceof HandshakeError && error.status === 431,
    );
    // "Host: abc" is 9 bytes: read within 9, refused within 8.
    const tight = new HeadParser({ maxLineLength: 9 }).push(
      encoder.encode("GET / HTTP/1.1\r\nHost: abc\r\n\r\n"),
    )!;
    assert.throws(
      () => parseRequestHead(tight.head, { maxLineLength: 8 }),
      (error) => error instanceof HandshakeError && error.status === 431,
    );
    assert.equal(
      parseRequestHead(tight.head, { maxLineLength: 9 }).headers.get("host"),
      "abc",
    );
  });

  test("HeadParser returns an empty rest when the chunk ends with the head", () => {
    const result = new HeadParser().push(encoder.encode(REQUEST));
    assert.ok(result);
    assert.equal(result.rest.length, 0);
    assert.equal(decoder.decode(result.head), REQUEST);
  });

  test("HeadParser fed one byte at a time returns the head at the last LF", () => {
    const head = encoder.encode(REQUEST);
    const parser = new HeadParser();
    for (let i = 0; i < head.length - 1; i++) {
      assert.equal(parser.push(head.subarray(i, i + 1)), null);
    }
    const result = parser.push(head.subarray(head.length - 1));
    assert.ok(result);
    assert.deepEqual(result.head, head);
    assert.equal(result.rest.length, 0);
  });

  test("HeadParser split at every offset preserves head and rest exactly", () => {
    const input = concat(encoder.encode(REQUEST), FRAMES);
    for (let cut = 0; cut <= input.length; cut++) {
      const parser = new HeadParser();
      const first = parser.push(input.subarray(0, cut));
      const result = first ?? parser.push(input.subarray(cut));
      assert.ok(result, `cut at ${cut}`);
      assert.deepEqual(
        concat(result.head, result.rest),
        first ? input.subarray(0, cut) : input,
      );
      assert.equal(decoder.decode(result.head), REQUEST, `cut at ${cut}`);
      if (!first) assert.deepEqual(result.rest, FRAMES, `cut at ${cut}`);
    }
  });

  test("HeadParser split into three chunks at every pair of offsets finds the same head", () => {
    const input = concat(
      encoder.encode("GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
      FRAMES,
    );
    for (let a = 0; a <= input.length; a++) {
      for (let b = a; b <= input.length; b++) {
        const parser = new HeadParser();
        let result = null;
        const chunks = [
          input.subarray(0, a),
          input.subarray(a, b),
          input.subarray(b),
        ];
        let leftover: Uint8Array = new Uint8Array(0);
        for (const chunk of chunks) {
          if (result) {
            leftover = concat(leftover, chunk);
            continue;
          }
          result = parser.push(chunk);
        }
        assert.ok(result, `cuts at ${a}, ${b}`);
        assert.deepEqual(concat(result.head, result.rest, leftover), input);
        assert.equal(result.head.length, 27);
      }
    }
  });

  test("HeadParser returns copies that do not alias the caller's chunks", () => {
    const input = concat(encoder.encode(REQUEST), FRAMES);
    const parser = new HeadParser();
    const first = input.slice(0, 10);
    assert.equal(parser.push(first), null);
    first.fill(0);
    const second = input.slice(10);
    const result = parser.push(second);
    assert.ok(result);
    second.fill(0);
    assert.equal(decoder.decode(result.head), REQUEST);
    assert.deepEqual(result.rest, FRAMES);
  });

  test("HeadParser ignores empty chunks", () => {
    const parser = new HeadParser();
    assert.equal(parser.push(new Uint8Array(0)), null);
    assert.ok(parser.push(encoder.encode(REQUEST)));
  });

  test("HeadParser stops at a bare LF LF, which parseRequestHead then refuses with 400", () => {
    const parser = new HeadParser();
    const result = parser.push(
      encoder.encode("GET / HTTP/1.1\nHost: a\n\nrest"),
    );
    assert.ok(result);
    assert.equal(decoder.decode(result.head), "GET / HTTP/1.1\nHost: a\n\n");
    assert.equal(decoder.decode(result.rest), "rest");
    assert.throws(() => parseRequestHead(result.head), refused(400, /Bare LF/));
  });

  test("HeadParser stops at CRLF followed by a bare LF", () => {
    const result = new HeadParser().push(
      encoder.encode("GET / HTTP/1.1\r\nHost: a\r\n\nx"),
    );
    assert.ok(result);
    assert.equal(decoder.decode(result.rest), "x");
  });

  test("HeadParser does not end the head at a lone CR line without LF", () => {
    const parser = new HeadParser();
    assert.equal(parser.push(encoder.encode("GET / HTTP/1.1\r\n\r")), null);
    const result = parser.push(encoder.encode("\n"));
    assert.ok(result);
    assert.equal(result.head.length, 18);
  });

  test("HeadParser throws 431 as soon as the head exceeds maxHeadSize", () => {
    const parser = new HeadParser({ maxHeadSize: 100 });
    const line = encoder.encode("X-A: aaaaaaaa\r\n"); // 15 bytes
    let pushed = 0;
    assert.throws(() => {
      for (;;) {
        for (const byte of line) {
          parser.push(new Uint8Array([byte]));
          pushed++;
        }
      }
    }, refused(431, /exceeds 100 bytes/));
    assert.equal(pushed, 100, "threw on byte 101");
  });

  test("HeadParser accepts a head of exactly maxHeadSize bytes", () => {
    const head = encoder.encode("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert.ok(new HeadParser({ maxHeadSize: head.length }).push(head));
    assert.throws(
      () => new HeadParser({ maxHeadSize: head.length - 1 }).push(head),
      refused(431),
    );
  });

  test("HeadParser rejects a big chunk without a terminator at once, without buffering it", () => {
    const parser = new HeadParser({ maxHeadSize: 1000 });
    assert.throws(
      () => parser.push(new Uint8Array(1_000_000).fill(0x61)),
      refused(431),
    );
  });

  test("HeadParser throws 431 when a line exceeds maxLineLength, not counting CRLF", () => {
    const ok = new HeadParser({ maxLineLength: 10 });
    assert.ok(ok.push(encoder.encode("GET / HTTP\r\nX: 1234567\r\n\r\n")));
    const long = new HeadParser({ maxLineLength: 10 });
    assert.throws(
      () => long.push(encoder.encode("GET / HTTP\r\nX: 12345678\r\n\r\n")),
      refused(431, /line 2 exceeds 10 bytes/),
    );
  });

  test("HeadParser throws 431 for a long field line before its end arrives", () => {
    const parser = new HeadParser({ maxLineLength: 10 });
    assert.equal(parser.push(encoder.encode("GET / HTTP\r\n0123456789")), null);
    // An eleventh byte that may be the CR of CRLF does not count yet…
    assert.equal(parser.push(encoder.encode("\r")), null);
    // …but anything else does.
    const other = new HeadParser({ maxLineLength: 10 });
    assert.throws(
      () => other.push(encoder.encode("GET / HTTP\r\n0123456789x")),
      refused(431, /line 2 exceeds 10 bytes/),
    );
  });

  test("HeadParser throws 414 for a long request line before its end arrives", () => {
    const parser = new HeadParser({ maxRequestLineLength: 10 });
    assert.equal(parser.push(encoder.encode("0123456789\r")), null);
    const other = new HeadParser({ maxRequestLineLength: 10 });
    assert.throws(
      () => other.push(encoder.encode("0123456789x")),
      refused(414, /start line exceeds 10 bytes/),
    );
  });

  test("HeadParser throws 431 for more than maxHeaderCount field lines", () => {
    const fields = (n: number) =>
      encoder.encode(
        "GET / HTTP/1.1\r\n" + "X-A: 1\r\n".repeat(n) + "\r\n",
      );
    assert.ok(new HeadParser({ maxHeaderCount: 3 }).push(fields(3)));
    assert.throws(
      () => new HeadParser({ maxHeaderCount: 3 }).push(fields(4)),
      refused(431, /more than 3 header fields/),
    );
  });

  test("HeadParser throws TypeError when pushed to after it finished", () => {
    const parser = new HeadParser();
    assert.ok(parser.push(encoder.encode(REQUEST)));
    assert.throws(() => parser.push(encoder.encode(REQUEST)), TypeError);
    const failed = new HeadParser({ maxHeadSize: 4 });
    assert.throws(() => failed.push(encoder.encode(REQUEST)), HandshakeError);
    assert.throws(() => failed.push(encoder.encode(REQUEST)), TypeError);
  });

  test("HeadParser refuses limits that are not positive integers with RangeError", () => {
    assert.throws(() => new HeadParser({ maxHeadSize: 0 }), RangeError);
    assert.throws(() => new HeadParser({ maxLineLength: -1 }), RangeError);
    assert.throws(() => new HeadParser({ maxHeaderCount: 1.5 }), RangeError);
    assert.throws(() => new HeadParser({ maxHeadSize: NaN }), RangeError);
  });

  test("HeadParser fed a 64 KiB head one byte at a time stays linear", () => {
    const head = encoder.encode(
      "GET / HTTP/1.1\r\n" +
        `X-Pad: ${"a".repeat(8000)}\r\n`.repeat(8) +
        "\r\n",
    );
    assert.ok(head.length < DEFAULT_HEAD_LIMITS.maxHeadSize);
    const parser = new HeadParser();
    const start = performance.now();
    let result = null;
    for (let i = 0; i < head.length && !result; i++) {
      result = parser.push(head.subarray(i, i + 1));
    }
    const elapsed = performance.now() - start;
    assert.ok(result);
    assert.deepEqual(result.head, head);
    // Quadratic rescanning would take seconds here; linear takes milliseconds.
    assert.ok(elapsed < 3000, `took ${elapsed} ms`);
  });
});

/** How feeding a head ended: the head, or the refusal and the byte that drew it. */
type Outcome =
  | { accepted: Uint8Array }
  | { status: number; message: string; at: number };

/**
 * Feeds `input` to a new parser in chunks ending at `cuts` (and at its end).
 * `at` is the index of the last byte of the chunk that was refused, so with a
 * cut after every byte it is the byte that crossed the limit.
 */
function feed(
  input: Uint8Array,
  limits: Partial<HeadLimits>,
  cuts: readonly number[],
): Outcome {
  const parser = new HeadParser(limits);
  let from = 0;
  for (const end of [...cuts, input.length]) {
    if (end <= from) continue;
    try {
      const result = parser.push(input.subarray(from, end));
      if (result) return { accepted: result.head };
    } catch (error) {
      assert.ok(error instanceof HandshakeError, `${error}`);
      return { status: error.status, message: error.message, at: end - 1 };
    }
    from = end;
  }
  assert.fail("the head never ended");
}

/** Every cut point: one byte per chunk. */
const everyByte = (input: Uint8Array) =>
  Array.from({ length: input.length }, (_, i) => i + 1);

/** A limit, and heads exactly at it and one byte over it. */
interface LimitCase {
  limit: string;
  limits: Partial<HeadLimits>;
  /** A head exactly at the limit. */
  at: string;
  /**
   * The same head one byte over (for `maxHeaderCount`, one field over):
   * refused with `status` on byte `crossing`.
   */
  over: string;
  status: number;
  message: RegExp;
  crossing: number;
}

const SMALL: Partial<HeadLimits> = {
  maxRequestLineLength: 20,
  maxLineLength: 12,
  maxHeaderCount: 3,
  maxHeadSize: 50,
};

const limitCases = (): LimitCase[] => {
  const requestLine = (length: number) =>
    `GET /${"a".repeat(length - 14)} HTTP/1.1`;
  const field = (length: number) => `X-P: ${"p".repeat(length - 5)}`;
  const head = (...lines: string[]) => lines.join("\r\n") + "\r\n\r\n";
  const fields = (n: number, length: number) =>
    Array.from({ length: n }, () => field(length));
  /** A head of `size` bytes in as few field lines of at most `lineMax` as fit. */
  const sized = (size: number, lineMax: number) => {
    const budget = size - "GET / HTTP/1.1\r\n\r\n".length; // field lines
    const count = Math.ceil(budget / (lineMax + 2));
    const lines = Array.from(
      { length: count },
      (_, i) =>
        field(Math.floor(budget / count) + (i < budget % count ? 1 : 0) - 2),
    );
    return head("GET / HTTP/1.1", ...lines);
  };
  const cases: LimitCase[] = [];
  for (
    const [name, limits] of [
      ["small limits", SMALL],
      ["the default limits", DEFAULT_HEAD_LIMITS],
    ] as const
  ) {
    const { maxRequestLineLength, maxLineLength, maxHeaderCount } = {
      ...DEFAULT_HEAD_LIMITS,
      ...limits,
    };
    const maxHeadSize = limits.maxHeadSize!;
    cases.push({
      limit: `maxRequestLineLength (${name})`,
      limits,
      at: head(requestLine(maxRequestLineLength), "Host: a"),
      over: head(requestLine(maxRequestLineLength + 1), "Host: a"),
      status: 414,
      message: new RegExp(`start line exceeds ${maxRequestLineLength} bytes`),
      crossing: maxRequestLineLength,
    });
    cases.push({
      limit: `maxLineLength (${name})`,
      limits,
      at: head("GET / HTTP/1.1", "Host: a", field(maxLineLength)),
      over: head("GET / HTTP/1.1", "Host: a", field(maxLineLength + 1)),
      status: 431,
      message: new RegExp(`line 3 exceeds ${maxLineLength} bytes`),
      crossing: "GET / HTTP/1.1\r\nHost: a\r\n".length + maxLineLength,
    });
    cases.push({
      limit: `maxHeaderCount (${name})`,
      limits,
      at: head("GET / HTTP/1.1", ...fields(maxHeaderCount, 6)),
      over: head("GET / HTTP/1.1", ...fields(maxHeaderCount + 1, 6)),
      status: 431,
      message: new RegExp(`more than ${maxHeaderCount} header fields`),
      // The first byte of the field line past the limit.
      crossing: "GET / HTTP/1.1\r\n".length + maxHeaderCount * 8,
    });
    cases.push({
      limit: `maxHeadSize (${name})`,
      limits,
      at: sized(maxHeadSize, maxLineLength),
      over: sized(maxHeadSize + 1, maxLineLength),
      status: 431,
      message: new RegExp(`head exceeds ${maxHeadSize} bytes`),
      crossing: maxHeadSize,
    });
  }
  return cases;
};

describe("head limits: exactly at each limit, and one byte over", () => {
  for (const c of limitCases()) {
    const at = bytes(c.at);
    const over = bytes(c.over);

    test(`HeadParser accepts a head exactly at ${c.limit}, whole and byte by byte`, () => {
      if (!c.limit.startsWith("maxHeaderCount")) {
        assert.equal(over.length, at.length + 1, "the cases differ by a byte");
      }
      for (const cuts of [[], everyByte(at)]) {
        const outcome = feed(at, c.limits, cuts);
        assert.ok("accepted" in outcome, JSON.stringify(outcome));
        assert.deepEqual(outcome.accepted, at);
      }
    });

    test(`HeadParser refuses one byte over ${c.limit} with ${c.status} on the byte that crosses it`, () => {
      const whole = feed(over, c.limits, []);
      assert.ok("status" in whole);
      assert.equal(whole.status, c.status);
      assert.match(whole.message, c.message);
      // Byte by byte: refused on the crossing byte, not at the line's end,
      // so nothing past the limit is ever buffered.
      assert.deepEqual(feed(over, c.limits, everyByte(over)), {
        status: c.status,
        message: whole.message,
        at: c.crossing,
      });
    });

    test(`parseRequestHead applies ${c.limit} as HeadParser does; parseResponseHead with status 0`, () => {
      assert.equal(parseRequestHead(at, c.limits).version, "HTTP/1.1");
      assert.throws(
        () => parseRequestHead(over, c.limits),
        refused(c.status, c.message),
      );
      const response = (text: string) =>
        bytes(
          text.replace(/^[^\r]*/, (line) =>
            `HTTP/1.1 101 ${"S".repeat(line.length - 13)}`),
        );
      assert.equal(parseResponseHead(response(c.at), c.limits).status, 101);
      assert.throws(
        () => parseResponseHead(response(c.over), c.limits),
        refused(0, c.message),
      );
    });
  }

  test("HeadParser gives the same outcome for heads at and over the small limits split anywhere in two", () => {
    for (const c of limitCases().filter((c) => c.limits === SMALL)) {
      for (const input of [bytes(c.at), bytes(c.over)]) {
        const whole = feed(input, c.limits, []);
        for (let cut = 0; cut <= input.length; cut++) {
          const split = feed(input, c.limits, [cut]);
          if ("accepted" in whole) {
            assert.deepEqual(split, whole, `${c.limit}, cut at ${cut}`);
          } else {
            assert.ok("status" in split, `${c.limit}, cut at ${cut}`);
            assert.equal(split.status, whole.status, `${c.limit}, cut ${cut}`);
            assert.equal(split.message, whole.message);
          }
        }
      }
    }
  });

  test("HeadParser refuses with the limit the bytes cross first, whatever the chunking", () => {
    // 70 000 bytes of request line in one chunk cross maxRequestLineLength
    // (at byte 8192) long before maxHeadSize (at byte 65536): 414.
    const longLine = bytes(`GET /${"a".repeat(70_000)}`);
    assert.throws(() => new HeadParser().push(longLine), refused(414));
    // A 40-byte request line under a 30-byte head limit: the head's, 431.
    const limits = { maxHeadSize: 30, maxRequestLineLength: 8192 };
    const line = bytes(`GET /${"a".repeat(35)}`);
    assert.throws(() => new HeadParser(limits).push(line), refused(431));
    // Line and head limits crossed by the same request line: the line's
    // limit comes first at byte 10, the head's at byte 20.
    const both = { maxHeadSize: 20, maxRequestLineLength: 10 };
    assert.throws(() => new HeadParser(both).push(line), refused(414));
    assert.deepEqual(feed(line, both, everyByte(line)), {
      status: 414,
      message: "HTTP start line exceeds 10 bytes",
      at: 10,
    });
  });

  test("HeadParser lets only the end of the head follow maxHeaderCount fields", () => {
    const limits = { maxHeaderCount: 1 };
    const head = "GET / HTTP/1.1\r\nA: 1\r\n";
    assert.ok(new HeadParser(limits).push(bytes(`${head}\r\n`)));
    assert.ok(new HeadParser(limits).push(bytes(`${head}\n`)));
    const parser = new HeadParser(limits);
    assert.equal(parser.push(bytes(`${head}\r`)), null, "CR of the end");
    assert.throws(() => parser.push(bytes("B")), refused(431));
    assert.throws(
      () => new HeadParser(limits).push(bytes(`${head}\r\r`)),
      refused(431, /more than 1 header fields/),
    );
  });
});

describe("parseRequestHead", () => {
  test("parseRequestHead reads the request line and header fields", () => {
    const head = parseRequestHead(encoder.encode(REQUEST));
    assert.equal(head.method, "GET");
    assert.equal(head.target, "/chat?room=1");
    assert.equal(head.version, "HTTP/1.1");
    assert.equal(head.headers.get("host"), "example.com");
    assert.equal(head.headers.get("sec-websocket-version"), "13");
  });

  test("parseRequestHead accepts a head without its final empty line", () => {
    const head = parseRequestHead(encoder.encode("GET / HTTP/1.1\r\nHost: a"));
    assert.equal(head.headers.get("host"), "a");
    assert.equal(
      parseRequestHead(encoder.encode("GET / HTTP/1.1\r\n")).target,
      "/",
    );
  });

  test("parseRequestHead trims optional whitespace around values", () => {
    const head = parseRequestHead(
      encoder.encode(
        "GET / HTTP/1.1\r\nX-A: \t a b \t\r\nX-B:c\r\nX-C:\r\n\r\n",
      ),
    );
    assert.equal(head.headers.get("x-a"), "a b");
    assert.equal(head.headers.get("x-b"), "c");
    assert.equal(head.headers.get("x-c"), "");
  });

  test("parseRequestHead comma-joins repeated ordinary fields", () => {
    const head = parseRequestHead(
      encoder.encode("GET / HTTP/1.1\r\nX-A: 1\r\nx-a: 2\r\n\r\n"),
    );
    assert.equal(head.headers.get("x-a"), "1, 2");
  });

  test("parseRequestHead keeps obs-text (bytes 0x80-0xFF) in values as latin1", () => {
    const head = parseRequestHead(
      bytes("GET / HTTP/1.1\r\nX-A: caf\xe9\r\n\r\n"),
    );
    assert.equal(head.headers.get("x-a"), "caf\xe9");
  });

  for (const name of ["Host", "Sec-WebSocket-Key", "sec-websocket-version"]) {
    test(`parseRequestHead refuses a repeated ${name} with 400`, () => {
      const text =
        `GET / HTTP/1.1\r\n${name}: a\r\n${name.toUpperCase()}: a\r\n\r\n`;
      assert.throws(
        () => parseRequestHead(encoder.encode(text)),
        refused(400, /appears more than once/),
      );
    });
  }

  test("parseRequestHead refuses an HTTP major version other than 1 with 505", () => {
    for (const version of ["HTTP/2.0", "HTTP/0.9", "HTTP/3.0"]) {
      assert.throws(
        () => parseRequestHead(encoder.encode(`GET / ${version}\r\n\r\n`)),
        refused(505, /Unsupported HTTP version/),
      );
    }
  });

  test("parseRequestHead passes HTTP/1.0 to validateClientRequest to judge", () => {
    assert.equal(
      parseRequestHead(encoder.encode("GET / HTTP/1.0\r\n\r\n")).version,
      "HTTP/1.0",
    );
  });

  const malformed: [string, string, RegExp][] = [
    ["an empty request line", "\r\n", /Empty request line/],
    [
      "a request line with two spaces",
      "GET  / HTTP/1.1\r\n\r\n",
      /Malformed request line/,
    ],
    [
      "a request line without version",
      "GET /\r\n\r\n",
      /Malformed request line/,
    ],
    [
      "a request line with a trailing space",
      "GET / HTTP/1.1 \r\n\r\n",
      /Malformed request line/,
    ],
    [
      "a lowercase protocol name",
      "GET / http/1.1\r\n\r\n",
      /Malformed HTTP version/,
    ],
    [
      "a version without minor",
      "GET / HTTP/1\r\n\r\n",
      /Malformed HTTP version/,
    ],
    [
      "a method that is not a token",
      "G(T / HTTP/1.1\r\n\r\n",
      /Malformed request method/,
    ],
    [
      "a non-ASCII target",
      "GET /caf\xe9 HTTP/1.1\r\n\r\n",
      /Malformed request target/,
    ],
    [
      "a control character in the target",
      "GET /\x01 HTTP/1.1\r\n\r\n",
      /Malformed request target/,
    ],
    [
      "obsolete line folding",
      "GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n",
      /Obsolete line folding/,
    ],
    [
      "whitespace before the first field",
      "GET / HTTP/1.1\r\n\tX-A: a\r\n\r\n",
      /Obsolete line folding/,
    ],
    [
      "whitespace between name and colon",
      "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
      /whitespace \(0x20\) before the colon/,
    ],
    ["a space inside a name", "GET / HTTP/1.1\r\nX A: a\r\n\r\n", /whitespace/],
    [
      "NUL in a name",
      "GET / HTTP/1.1\r\nX\x00A: a\r\n\r\n",
      /control character 0x00/,
    ],
    [
      "non-ASCII in a name",
      "GET / HTTP/1.1\r\nX-\xe9: a\r\n\r\n",
      /non-ASCII character 0xE9/,
    ],
    [
      "a separator in a name",
      "GET / HTTP/1.1\r\nX(A): a\r\n\r\n",
      /character "\("/,
    ],
    ["an empty name", "GET / HTTP/1.1\r\n: a\r\n\r\n", /empty field name/],
    ["a line without colon", "GET / HTTP/1.1\r\nX-A a\r\n\r\n", /no colon/],
    [
      "NUL in a value",
      "GET / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n",
      /control character 0x00/,
    ],
    [
      "DEL in a value",
      "GET / HTTP/1.1\r\nX-A: a\x7fb\r\n\r\n",
      /control character 0x7F/,
    ],
    [
      "a bare CR in a value",
      "GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n",
      /Bare CR in line 2/,
    ],
    [
      "a bare LF between fields",
      "GET / HTTP/1.1\r\nX-A: a\nX-B: b\r\n\r\n",
      /Bare LF in line 2/,
    ],
    [
      "an empty line inside the head",
      "GET / HTTP/1.1\r\n\r\nX-A: a\r\n\r\n",
      /Empty line 2/,
    ],
  ];
  for (const [what, text, message] of malformed) {
    test(`parseRequestHead refuses ${what} with 400`, () => {
      assert.throws(() => parseRequestHead(bytes(text)), refused(400, message));
    });
  }

  test("parseRequestHead refuses more than maxHeaderCount fields with 431", () => {
    const text = "GET / HTTP/1.1\r\n" + "X-A: 1\r\n".repeat(5) + "\r\n";
    assert.ok(parseRequestHead(encoder.encode(text), { maxHeaderCount: 5 }));
    assert.throws(
      () => parseRequestHead(encoder.encode(text), { maxHeaderCount: 4 }),
      refused(431, /more than 4 header fields/),
    );
  });

  test("parseRequestHead refuses a line longer than maxLineLength with 431", () => {
    const text = `GET / HTTP/1.1\r\nX-A: ${"a".repeat(100)}\r\n\r\n`;
    assert.ok(parseRequestHead(encoder.encode(text), { maxLineLength: 105 }));
    assert.throws(
      () => parseRequestHead(encoder.encode(text), { maxLineLength: 104 }),
      refused(431, /line 2 exceeds 104 bytes/),
    );
  });

  test("parseRequestHead refuses a head larger than maxHeadSize with 431", () => {
    const head = encoder.encode(REQUEST);
    assert.ok(parseRequestHead(head, { maxHeadSize: head.length }));
    assert.throws(
      () => parseRequestHead(head, { maxHeadSize: head.length - 1 }),
      refused(431),
    );
  });
  test("parseRequestHead trims long runs of inner spaces in linear time", () => {
    // A regex like /[ \t]+$/ backtracks quadratically here: seconds, not ms.
    const line = `X-A: a${" ".repeat(8000)}b\r\n`;
    const head = encoder.encode(`GET / HTTP/1.1\r\n${line.repeat(8)}\r\n`);
    const start = performance.now();
    const parsed = parseRequestHead(head);
    const elapsed = performance.now() - start;
    assert.equal(parsed.headers.get("x-a")!.length, 8 * 8002 + 7 * 2);
    assert.ok(elapsed < 200, `took ${elapsed} ms`);
  });
});

describe("parseResponseHead", () => {
  test("parseResponseHead reads the status line and header fields", () => {
    const head = parseResponseHead(
      encoder.encode(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
      ),
    );
    assert.equal(head.version, "HTTP/1.1");
    assert.equal(head.status, 101);
    assert.equal(head.statusText, "Switching Protocols");
    assert.equal(head.headers.get("connection"), "Upgrade");
  });

  test("parseResponseHead accepts an empty reason phrase, with or without its space", () => {
    assert.equal(
      parseResponseHead(encoder.encode("HTTP/1.1 101 \r\n\r\n")).statusText,
      "",
    );
    assert.equal(
      parseResponseHead(encoder.encode("HTTP/1.1 404\r\n\r\n")).status,
      404,
    );
  });

  test("parseResponseHead accepts HTTP/1.0 responses", () => {
    assert.equal(
      parseResponseHead(encoder.encode("HTTP/1.0 403 Forbidden\r\n\r\n"))
        .status,
      403,
    );
  });

  const invalid: [string, string][] = [
    ["garbage", "SSH-2.0-OpenSSH_9.6\r\n\r\n"],
    ["a missing status", "HTTP/1.1\r\n\r\n"],
    ["a two-digit status", "HTTP/1.1 99 Odd\r\n\r\n"],
    ["a four-digit status", "HTTP/1.1 1010 Odd\r\n\r\n"],
    ["a status above 599", "HTTP/1.1 600 Odd\r\n\r\n"],
    ["HTTP/2", "HTTP/2.0 101 Switching Protocols\r\n\r\n"],
    ["a control character in the reason", "HTTP/1.1 101 Switching\x01\r\n\r\n"],
    [
      "obsolete line folding",
      "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n x\r\n\r\n",
    ],
    [
      "whitespace before a colon",
      "HTTP/1.1 101 OK\r\nUpgrade : websocket\r\n\r\n",
    ],
    [
      "a repeated Sec-WebSocket-Accept",
      "HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: a\r\nSec-WebSocket-Accept: a\r\n\r\n",
    ],
    [
      "a repeated Sec-WebSocket-Protocol",
      "HTTP/1.1 101 OK\r\nSec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol: b\r\n\r\n",
    ],
    ["bare LF line ends", "HTTP/1.1 101 OK\nUpgrade: websocket\n\n"],
  ];
  for (const [what, text] of invalid) {
    test(`parseResponseHead refuses ${what} with status 0`, () => {
      assert.throws(
        () => parseResponseHead(bytes(text)),
        refused(0, /^Invalid HTTP response: /),
      );
    });
  }

  test("parseResponseHead reports exceeded limits with status 0", () => {
    const head = encoder.encode("HTTP/1.1 101 OK\r\nA: 1\r\nB: 2\r\n\r\n");
    assert.throws(
      () => parseResponseHead(head, { maxHeaderCount: 1 }),
      refused(0),
    );
    assert.throws(
      () => parseResponseHead(head, { maxLineLength: 3 }),
      refused(0, /^Invalid HTTP response: HTTP head line 2 exceeds 3 bytes$/),
    );
    assert.throws(
      () => parseResponseHead(head, { maxRequestLineLength: 14 }),
      refused(0, /^Invalid HTTP response: HTTP start line exceeds 14 bytes$/),
    );
    assert.ok(
      parseResponseHead(head, { maxRequestLineLength: 15, maxLineLength: 4 }),
    );
    assert.throws(
      () => parseResponseHead(head, { maxHeadSize: 10 }),
      refused(0),
    );
  });
});

describe("garbage", () => {
  test("HeadParser, parseRequestHead and parseResponseHead throw nothing but HandshakeError on random bytes", () => {
    const random = prng(6455);
    const alphabet = bytes('GET HTTP/1.1 :\r\n\t\x00\x7f\xff,;="\\aZ0');
    for (let round = 0; round < 2000; round++) {
      const length = Math.floor(random() * 200);
      const input = new Uint8Array(length);
      for (let i = 0; i < length; i++) {
        input[i] = random() < 0.7
          ? alphabet[Math.floor(random() * alphabet.length)]!
          : Math.floor(random() * 256);
      }
      const only = (fn: () => unknown) => {
        try {
          fn();
        } catch (error) {
          assert.ok(
            error instanceof HandshakeError,
            `round ${round}: ${error}`,
          );
        }
      };
      only(() => parseRequestHead(input));
      only(() => parseResponseHead(input));
      only(() => {
        const parser = new HeadParser({
          maxHeadSize: 150,
          maxRequestLineLength: 40,
          maxLineLength: 60,
          maxHeaderCount: 8,
        });
        for (let i = 0; i < input.length; i += 7) {
          if (parser.push(input.subarray(i, i + 7))) break;
        }
      });
    }
  });

  test("parseRequestHead throws nothing but HandshakeError on a valid head with random bytes changed", () => {
    const random = prng(9112);
    const valid = encoder.encode(REQUEST);
    for (let round = 0; round < 3000; round++) {
      const input = valid.slice();
      const changes = 1 + Math.floor(random() * 3);
      for (let i = 0; i < changes; i++) {
        input[Math.floor(random() * input.length)] = Math.floor(random() * 256);
      }
      try {
        parseRequestHead(input);
      } catch (error) {
        assert.ok(error instanceof HandshakeError, `round ${round}: ${error}`);
      }
    }
  });
});

describe("parsed heads' headers", () => {
  const HEAD = "GET /chat HTTP/1.1\r\nHost: example.com\r\nX-Tag: a\r\n" +
    "Upgrade: websocket\r\nx-tag: b\r\nSet-Cookie: s=1\r\nSet-Cookie: t=2\r\n\r\n";

  test("parseRequestHead's headers hold every field, as a Headers built from the lines would", () => {
    const head = parseRequestHead(encoder.encode(HEAD));
    const expected = new Headers([
      ["Host", "example.com"],
      ["X-Tag", "a"],
      ["Upgrade", "websocket"],
      ["x-tag", "b"],
      ["Set-Cookie", "s=1"],
      ["Set-Cookie", "t=2"],
    ]);
    assert.ok(head.headers instanceof Headers);
    assert.deepEqual([...head.headers], [...expected]);
    assert.equal(head.headers.get("X-TAG"), "a, b");
    assert.deepEqual(head.headers.getSetCookie(), ["s=1", "t=2"]);
    assert.equal(head.headers, head.headers, "made once");
  });

  test("parseRequestHead's headers is an ordinary property: spread, assigned, listed", () => {
    const head = parseRequestHead(encoder.encode(HEAD));
    assert.deepEqual(Object.keys(head), [
      "method",
      "target",
      "version",
      "headers",
    ]);
    const copy = { ...head };
    assert.equal(copy.headers.get("host"), "example.com");
    assert.equal(copy.headers, head.headers);
    const other = parseRequestHead(encoder.encode(HEAD));
    const replacement = new Headers({ host: "other.example" });
    other.headers = replacement;
    assert.equal(other.headers, replacement);
    const changed = parseRequestHead(encoder.encode(HEAD));
    changed.headers.set("host", "changed.example");
    assert.equal(changed.headers.get("host"), "changed.example");
  });

  test("parseResponseHead's headers hold every field, made when read", () => {
    const head = parseResponseHead(
      encoder.encode(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nX-A: 1\r\nx-a: 2\r\n\r\n",
      ),
    );
    assert.equal(head.status, 101);
    assert.equal(head.headers.get("upgrade"), "websocket");
    assert.equal(head.headers.get("x-a"), "1, 2");
    assert.deepEqual({ ...head }.headers, head.headers);
  });

  test("HeadParser returns an empty rest when nothing follows the head, and a copy otherwise", () => {
    const chunk = encoder.encode("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    const alone = new HeadParser().push(chunk);
    assert.ok(alone);
    assert.equal(alone.rest.length, 0);
    const withFrame = concat(chunk, new Uint8Array([0x81, 0x00]));
    const result = new HeadParser().push(withFrame);
    assert.ok(result);
    assert.deepEqual(result.rest, new Uint8Array([0x81, 0x00]));
    withFrame[withFrame.length - 1] = 0xff;
    assert.deepEqual(result.rest, new Uint8Array([0x81, 0x00]), "a copy");
  });
});
