import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ProtocolError } from "../src/errors.ts";
import {
  encodeFrame,
  type Frame,
  FrameDecoder,
  type FrameDecoderOptions,
  frameHeaderSize,
  Opcode,
  writeFrameHeader,
} from "../src/frame.ts";
import {
  assertBytes,
  assertDecodeRejects,
  concat,
  type DecodedFrame,
  decodeEveryWay,
  hex,
  pick,
  prng,
  randomBytes,
  randomInt,
  toHex,
} from "./_frames.ts";

const encoder = new TextEncoder();
const KEY = hex("37 fa 21 3d");
const HELLO = encoder.encode("Hello");

/** `length` bytes of a recognisable pattern. */
function pattern(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 7 + (i >>> 8)) & 0xff;
  return out;
}

/** The frame a decoder should report for `frame` sent with or without a mask. */
function decoded(frame: Frame, masked: boolean): DecodedFrame {
  return {
    fin: frame.fin,
    rsv: frame.rsv,
    opcode: frame.opcode,
    masked,
    length: frame.payload.length,
    payload: frame.payload,
  };
}

/** Asserts that every way of decoding `input` gives exactly `expected`. */
function assertDecodes(
  input: Uint8Array,
  options: FrameDecoderOptions,
  expected: DecodedFrame[],
): void {
  const result = decodeEveryWay(input, options);
  assert.equal(result.error, null, result.error?.message);
  assert.equal(result.partial, null);
  assert.equal(result.idle, true);
  assert.equal(result.frames.length, expected.length, "frame count");
  for (let i = 0; i < expected.length; i++) {
    const { payload, ...header } = result.frames[i]!;
    const { payload: expectedPayload, ...expectedHeader } = expected[i]!;
    assert.deepEqual(header, expectedHeader, `frame ${i}`);
    assertBytes(payload, expectedPayload, `frame ${i}`);
  }
}

interface Example {
  name: string;
  bytes: Uint8Array;
  frames: Frame[];
  key: Uint8Array | null;
}

// RFC 6455 §5.7, plus the masked pong's bytes from the same section.
const EXAMPLES: Example[] = [
  {
    name: "a single-frame unmasked text message",
    bytes: hex("81 05 48 65 6c 6c 6f"),
    frames: [{ fin: true, rsv: 0, opcode: Opcode.Text, payload: HELLO }],
    key: null,
  },
  {
    name: "a single-frame masked text message",
    bytes: hex("81 85 37 fa 21 3d 7f 9f 4d 51 58"),
    frames: [{ fin: true, rsv: 0, opcode: Opcode.Text, payload: HELLO }],
    key: KEY,
  },
  {
    name: 'a fragmented unmasked text message ("Hel" + "lo")',
    bytes: hex("01 03 48 65 6c  80 02 6c 6f"),
    frames: [
      {
        fin: false,
        rsv: 0,
        opcode: Opcode.Text,
        payload: encoder.encode("Hel"),
      },
      {
        fin: true,
        rsv: 0,
        opcode: Opcode.Continuation,
        payload: encoder.encode("lo"),
      },
    ],
    key: null,
  },
  {
    name: "an unmasked ping",
    bytes: hex("89 05 48 65 6c 6c 6f"),
    frames: [{ fin: true, rsv: 0, opcode: Opcode.Ping, payload: HELLO }],
    key: null,
  },
  {
    name: "a masked pong",
    bytes: hex("8a 85 37 fa 21 3d 7f 9f 4d 51 58"),
    frames: [{ fin: true, rsv: 0, opcode: Opcode.Pong, payload: HELLO }],
    key: KEY,
  },
  {
    name: "256 bytes of binary in one unmasked frame",
    bytes: concat(hex("82 7e 01 00"), pattern(256)),
    frames: [{
      fin: true,
      rsv: 0,
      opcode: Opcode.Binary,
      payload: pattern(256),
    }],
    key: null,
  },
  {
    name: "64 KiB of binary in one unmasked frame",
    bytes: concat(hex("82 7f 00 00 00 00 00 01 00 00"), pattern(65536)),
    frames: [{
      fin: true,
      rsv: 0,
      opcode: Opcode.Binary,
      payload: pattern(65536),
    }],
    key: null,
  },
];

describe("RFC 6455 §5.7 examples", () => {
  for (const example of EXAMPLES) {
    test(
      `encodeFrame encodes ${example.name} as ${
        toHex(example.bytes.subarray(0, 10))
      } …`,
      () => {
        const bytes = concat(
          ...example.frames.map((frame) => encodeFrame(frame, example.key)),
        );
        assertBytes(bytes, example.bytes);
      },
    );

    test(`FrameDecoder decodes ${example.name}, split every way`, () => {
      const masked = example.key !== null;
      const expected = example.frames.map((frame) => decoded(frame, masked));
      assertDecodes(example.bytes, {}, expected);
      // As the role that must receive it: a server for masked, a client for unmasked.
      assertDecodes(example.bytes, { masked }, expected);
    });
  }

  test("FrameDecoder decodes several frames in one chunk, a ping between fragments", () => {
    const input = hex(
      "01 03 48 65 6c  89 05 48 65 6c 6c 6f  8a 00  80 02 6c 6f  88 02 03 e8",
    );
    assertDecodes(input, { masked: false }, [
      decoded({
        fin: false,
        rsv: 0,
        opcode: Opcode.Text,
        payload: encoder.encode("Hel"),
      }, false),
      decoded(
        { fin: true, rsv: 0, opcode: Opcode.Ping, payload: HELLO },
        false,
      ),
      decoded({
        fin: true,
        rsv: 0,
        opcode: Opcode.Pong,
        payload: new Uint8Array(0),
      }, false),
      decoded({
        fin: true,
        rsv: 0,
        opcode: Opcode.Continuation,
        payload: encoder.encode("lo"),
      }, false),
      decoded({
        fin: true,
        rsv: 0,
        opcode: Opcode.Close,
        payload: hex("03 e8"),
      }, false),
    ]);
  });
});

// Header bytes for a binary frame of each boundary length, unmasked.
const BOUNDARIES: [number, string][] = [
  [0, "82 00"],
  [1, "82 01"],
  [125, "82 7d"],
  [126, "82 7e 00 7e"],
  [127, "82 7e 00 7f"],
  [65535, "82 7e ff ff"],
  [65536, "82 7f 00 00 00 00 00 01 00 00"],
  [65537, "82 7f 00 00 00 00 00 01 00 01"],
];

describe("boundary lengths", () => {
  for (const [length, header] of BOUNDARIES) {
    for (const masked of [false, true]) {
      const expectedHeader = hex(header);
      if (masked) expectedHeader[1]! |= 0x80;
      const fullHeader = masked ? concat(expectedHeader, KEY) : expectedHeader;
      const what = `a ${length}-byte ${masked ? "masked" : "unmasked"} frame`;

      test(`encodeFrame writes the header ${toHex(fullHeader)} for ${what}`, () => {
        const payload = pattern(length);
        const bytes = encodeFrame(
          { fin: true, rsv: 0, opcode: Opcode.Binary, payload },
          masked ? KEY : null,
        );
        assert.equal(bytes.length, fullHeader.length + length);
        assertBytes(bytes.subarray(0, fullHeader.length), fullHeader);
        assert.equal(frameHeaderSize(length, masked), fullHeader.length);
      });

      test(`FrameDecoder decodes ${what}, split every way`, () => {
        const frame: Frame = {
          fin: true,
          rsv: 0,
          opcode: Opcode.Binary,
          payload: pattern(length),
        };
        const bytes = encodeFrame(frame, masked ? KEY : null);
        assertDecodes(bytes, { masked }, [decoded(frame, masked)]);
      });
    }
  }

  test("FrameDecoder reads a 64-bit length of 2^32 + 5 from the header alone", () => {
    for (const masked of [false, true]) {
      const header = masked
        ? hex("82 ff 00 00 00 01 00 00 00 05 37 fa 21 3d")
        : hex("82 7f 00 00 00 01 00 00 00 05");
      const result = decodeEveryWay(header, { masked });
      assert.equal(result.error, null);
      assert.deepEqual(result.frames, []);
      // The sink saw frameStart with the whole length, and no frameEnd.
      assert.deepEqual(result.partial, {
        fin: true,
        rsv: 0,
        opcode: Opcode.Binary,
        masked,
        length: 2 ** 32 + 5,
      });
      assert.equal(result.idle, false);
    }
  });

  test("FrameDecoder accepts the largest safe 64-bit length, 2^53 - 1", () => {
    const result = decodeEveryWay(hex("82 7f 00 1f ff ff ff ff ff ff"));
    assert.equal(result.error, null);
    assert.equal(result.partial?.length, Number.MAX_SAFE_INTEGER);
  });

  test("FrameDecoder rejects a 64-bit length of 2^53 with 1009", () => {
    assertDecodeRejects(
      hex("82 7f 00 20 00 00 00 00 00 00"),
      {},
      1009,
      /2\^53/,
    );
  });

  test("writeFrameHeader writes a 64-bit length of 2^32 + 5", () => {
    const header = new Uint8Array(14);
    assert.equal(
      writeFrameHeader(header, 0, true, 0, Opcode.Binary, 2 ** 32 + 5, KEY),
      14,
    );
    assertBytes(header, hex("82 ff 00 00 00 01 00 00 00 05 37 fa 21 3d"));
    assert.equal(frameHeaderSize(2 ** 32 + 5, false), 10);
    assert.equal(frameHeaderSize(2 ** 32 + 5, true), 14);
  });

  test("writeFrameHeader writes the largest safe length, 2^53 - 1", () => {
    const header = new Uint8Array(10);
    writeFrameHeader(
      header,
      0,
      true,
      0,
      Opcode.Binary,
      Number.MAX_SAFE_INTEGER,
      null,
    );
    assertBytes(header, hex("82 7f 00 1f ff ff ff ff ff ff"));
  });
});

/** A random frame: data or control, any RSV, lengths around the boundaries. */
function randomFrame(random: () => number, maxLength: number): Frame {
  const opcode = pick(random, [0, 1, 2, 0, 1, 2, 8, 9, 10]);
  const control = opcode >= 8;
  const length = control ? randomInt(random, 0, 125) : Math.min(
    maxLength,
    random() < 0.5
      ? randomInt(random, 0, 300)
      : pick(random, [0, 1, 124, 125, 126, 127, 128, 255, 256, 1000]),
  );
  return {
    fin: control || random() < 0.7,
    rsv: randomInt(random, 0, 7),
    opcode,
    payload: randomBytes(random, length),
  };
}

describe("seeded random round trips", () => {
  for (const masked of [false, true]) {
    const how = masked ? "masked" : "unmasked";

    test(`encodeFrame then FrameDecoder gives back 150 random ${how} frames, split every way`, () => {
      const random = prng(masked ? 0x5eed1 : 0x5eed2);
      for (let i = 0; i < 150; i++) {
        const frame = randomFrame(random, 1100);
        const key = masked ? randomBytes(random, 4) : null;
        const bytes = encodeFrame(frame, key);
        assertDecodes(bytes, { masked, allowedRsv: 7 }, [
          decoded(frame, masked),
        ]);
      }
    });

    test(`encodeFrame then FrameDecoder gives back large random ${how} frames`, () => {
      const random = prng(masked ? 0x1a46e1 : 0x1a46e2);
      for (
        const length of [
          randomInt(random, 126, 65535),
          randomInt(random, 65537, 100_000),
        ]
      ) {
        const frame: Frame = {
          fin: random() < 0.5,
          rsv: 0,
          opcode: pick(random, [0, 1, 2]),
          payload: randomBytes(random, length),
        };
        const bytes = encodeFrame(
          frame,
          masked ? randomBytes(random, 4) : null,
        );
        assertDecodes(bytes, { masked }, [decoded(frame, masked)]);
      }
    });

    test(`FrameDecoder decodes runs of 2 to 8 random ${how} frames in one chunk, split every way`, () => {
      const random = prng(masked ? 0xc4a1 : 0xc4a2);
      for (let run = 0; run < 40; run++) {
        const frames: Frame[] = [];
        const parts: Uint8Array[] = [];
        for (let i = randomInt(random, 2, 8); i > 0; i--) {
          const frame = randomFrame(random, 40);
          frames.push(frame);
          parts.push(
            encodeFrame(frame, masked ? randomBytes(random, 4) : null),
          );
        }
        assertDecodes(
          concat(...parts),
          { masked, allowedRsv: 7 },
          frames.map((frame) => decoded(frame, masked)),
        );
      }
    });
  }
});

describe("FrameDecoder rejections", () => {
  const RSV_BITS: [string, number][] = [["RSV1", 4], ["RSV2", 2], [
    "RSV3",
    1,
  ]];
  for (const [name, bit] of RSV_BITS) {
    const input = concat(hex("81 05"), HELLO);
    input[0]! |= bit << 4;

    test(`FrameDecoder rejects ${name} without allowedRsv with 1002`, () => {
      assertDecodeRejects(input.subarray(0, 2), {}, 1002, /Reserved bits/);
      // With frames before it, those are decoded first.
      const frames = assertDecodeRejects(
        concat(hex("81 05"), HELLO, input.subarray(0, 2)),
        {},
        1002,
      );
      assert.equal(frames.length, 1);
      const other = 7 & ~bit;
      assertDecodeRejects(input.subarray(0, 2), { allowedRsv: other }, 1002);
    });

    test(`FrameDecoder accepts ${name} when allowedRsv allows it`, () => {
      assertDecodes(input, { allowedRsv: bit }, [
        decoded(
          { fin: true, rsv: bit, opcode: Opcode.Text, payload: HELLO },
          false,
        ),
      ]);
      assertDecodes(input, { allowedRsv: 7 }, [
        decoded(
          { fin: true, rsv: bit, opcode: Opcode.Text, payload: HELLO },
          false,
        ),
      ]);
    });
  }

  for (const opcode of [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]) {
    test(`FrameDecoder rejects reserved opcode ${opcode} with 1002`, () => {
      for (const fin of [0x80, 0]) {
        assertDecodeRejects(
          new Uint8Array([fin | opcode, 0x00]),
          {},
          1002,
          new RegExp(`Reserved opcode ${opcode}`),
        );
        assertDecodeRejects(
          concat(
            hex("81 05"),
            HELLO,
            new Uint8Array([fin | opcode, 0x85]),
            KEY,
          ),
          { masked: null, allowedRsv: 7 },
          1002,
        );
      }
    });
  }

  const CONTROL: [string, number][] = [["ping", 9], ["pong", 10], [
    "close",
    8,
  ]];
  for (const [name, opcode] of CONTROL) {
    test(`FrameDecoder rejects a ${name} frame with length 126 with 1002`, () => {
      const b0 = 0x80 | opcode;
      assertDecodeRejects(
        new Uint8Array([b0, 0x7e, 0x00, 0x7e]),
        {},
        1002,
        /over 125/,
      );
      assertDecodeRejects(
        new Uint8Array([b0, 0xfe, 0x00, 0x7e, ...KEY]),
        { masked: true },
        1002,
      );
      assertDecodeRejects(
        new Uint8Array([b0, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]),
        {},
        1002,
      );
      // 125 bytes is the most a control frame may carry.
      const payload = pattern(125);
      assertDecodes(concat(new Uint8Array([b0, 0x7d]), payload), {}, [
        decoded({ fin: true, rsv: 0, opcode: opcode, payload }, false),
      ]);
    });

    test(`FrameDecoder rejects a fragmented ${name} frame with 1002`, () => {
      assertDecodeRejects(
        new Uint8Array([opcode, 0x00]),
        {},
        1002,
        /Fragmented control/,
      );
      assertDecodeRejects(
        new Uint8Array([opcode, 0x82, ...KEY]),
        { masked: true },
        1002,
      );
    });
  }

  test("FrameDecoder rejects a masked frame when masked is false (client) with 1002", () => {
    assertDecodeRejects(
      hex("81 85 37 fa 21 3d"),
      { masked: false },
      1002,
      /Masked frame from a server/,
    );
    assertDecodeRejects(
      hex("82 fe 01 00 37 fa 21 3d"),
      { masked: false },
      1002,
    );
  });

  test("FrameDecoder rejects an unmasked frame when masked is true (server) with 1002", () => {
    assertDecodeRejects(
      hex("81 05"),
      { masked: true },
      1002,
      /Unmasked frame from a client/,
    );
    assertDecodeRejects(hex("89 00"), { masked: true }, 1002);
    assertDecodeRejects(
      hex("82 7f 00 00 00 00 00 01 00 00"),
      { masked: true },
      1002,
    );
  });

  test("FrameDecoder accepts masked and unmasked frames when masked is null (the default)", () => {
    const input = hex("81 05 48 65 6c 6c 6f  81 85 37 fa 21 3d 7f 9f 4d 51 58");
    for (const options of [{}, { masked: null }]) {
      assertDecodes(input, options, [
        decoded(
          { fin: true, rsv: 0, opcode: Opcode.Text, payload: HELLO },
          false,
        ),
        decoded(
          { fin: true, rsv: 0, opcode: Opcode.Text, payload: HELLO },
          true,
        ),
      ]);
    }
  });

  test("FrameDecoder rejects a 64-bit length with the top bit set with 1002", () => {
    assertDecodeRejects(
      hex("82 7f 80 00 00 00 00 00 00 00"),
      {},
      1002,
      /top bit/,
    );
    assertDecodeRejects(hex("82 7f ff ff ff ff ff ff ff ff"), {}, 1002);
    assertDecodeRejects(
      hex("82 ff 80 00 00 00 00 01 00 00 37 fa 21 3d"),
      { masked: true },
      1002,
    );
  });

  test("FrameDecoder rejects a non-minimal 16-bit length with 1002", () => {
    for (const length of ["00 00", "00 01", "00 7d"]) {
      assertDecodeRejects(
        hex(`82 7e ${length}`),
        {},
        1002,
        /not minimally encoded/,
      );
      assertDecodeRejects(hex(`82 fe ${length} 37 fa 21 3d`), {}, 1002);
    }
    // 126 is the least length the 16-bit form may carry.
    const result = decodeEveryWay(hex("82 7e 00 7e"));
    assert.equal(result.error, null);
    assert.equal(result.partial?.length, 126);
  });

  test("FrameDecoder rejects a non-minimal 64-bit length with 1002", () => {
    for (
      const length of [
        "00 00 00 00 00 00 00 00",
        "00 00 00 00 00 00 00 7d",
        "00 00 00 00 00 00 00 7e",
        "00 00 00 00 00 00 ff ff",
      ]
    ) {
      assertDecodeRejects(
        hex(`82 7f ${length}`),
        {},
        1002,
        /not minimally encoded/,
      );
    }
    // 65536 is the least length the 64-bit form may carry.
    const result = decodeEveryWay(hex("82 7f 00 00 00 00 00 01 00 00"));
    assert.equal(result.error, null);
    assert.equal(result.partial?.length, 65536);
  });

  test("FrameDecoder errors are ProtocolErrors", () => {
    const decoder = new FrameDecoder({
      frameStart() {},
      framePayload() {},
      frameEnd() {},
    });
    assert.throws(
      () => decoder.push(hex("83 00")),
      (error: unknown) =>
        error instanceof ProtocolError && error.closeCode === 1002 &&
        error.code === "WS_ERR_PROTOCOL",
    );
  });
});

describe("FrameDecoder internals visible to a sink", () => {
  test("FrameDecoder.idle is true only between frames", () => {
    const decoder = new FrameDecoder({
      frameStart() {},
      framePayload() {},
      frameEnd() {},
    }, { masked: true });
    const input = hex("81 85 37 fa 21 3d 7f 9f 4d 51 58  89 80 01 02 03 04");
    assert.equal(decoder.idle, true);
    decoder.push(input.subarray(0, 1));
    assert.equal(decoder.idle, false, "half a header");
    decoder.push(input.subarray(1, 6));
    assert.equal(decoder.idle, false, "header, no payload");
    decoder.push(input.subarray(6, 9));
    assert.equal(decoder.idle, false, "part of the payload");
    decoder.push(input.subarray(9, 11));
    assert.equal(decoder.idle, true, "whole frame");
    decoder.push(input.subarray(11));
    assert.equal(decoder.idle, true, "an empty frame ends with its header");
  });

  test("FrameDecoder passes payloads as views of the chunk, unmasked in place", () => {
    const pieces: Uint8Array[] = [];
    const decoder = new FrameDecoder({
      frameStart() {},
      framePayload(chunk) {
        pieces.push(chunk);
      },
      frameEnd() {},
    });
    const chunk = hex("81 85 37 fa 21 3d 7f 9f 4d 51 58  82 02 aa bb");
    decoder.push(chunk);
    assert.equal(pieces.length, 2);
    assert.equal(pieces[0]!.buffer, chunk.buffer);
    assert.equal(pieces[0]!.byteOffset, 6);
    assert.equal(pieces[1]!.buffer, chunk.buffer);
    assert.equal(pieces[1]!.byteOffset, 13);
    assertBytes(chunk.subarray(6, 11), HELLO);
  });

  test("FrameDecoder sends payload pieces as they arrive, before the frame ends", () => {
    const events: string[] = [];
    const decoder = new FrameDecoder({
      frameStart: (header) => events.push(`start ${header.length}`),
      framePayload: (chunk) => events.push(`payload ${toHex(chunk)}`),
      frameEnd: () => events.push("end"),
    });
    decoder.push(hex("82 04 01"));
    assert.deepEqual(events, ["start 4", "payload 01"]);
    decoder.push(hex("02 03"));
    assert.deepEqual(events, ["start 4", "payload 01", "payload 02 03"]);
    decoder.push(hex("04 82"));
    assert.deepEqual(events, [
      "start 4",
      "payload 01",
      "payload 02 03",
      "payload 04",
      "end",
    ]);
  });
});

describe("frameHeaderSize", () => {
  const SIZES: [number, number][] = [
    [0, 2],
    [125, 2],
    [126, 4],
    [65535, 4],
    [65536, 10],
    [2 ** 32, 10],
    [Number.MAX_SAFE_INTEGER, 10],
  ];
  for (const [length, size] of SIZES) {
    test(
      `frameHeaderSize(${length}) is ${size} unmasked and ${size + 4} masked`,
      () => {
        assert.equal(frameHeaderSize(length, false), size);
        assert.equal(frameHeaderSize(length, true), size + 4);
      },
    );
  }
});

describe("writeFrameHeader", () => {
  const CASES: {
    args: [boolean, number, number, number, Uint8Array | null];
    bytes: string;
  }[] = [
    { args: [true, 0, Opcode.Ping, 0, null], bytes: "89 00" },
    { args: [false, 0, Opcode.Text, 3, null], bytes: "01 03" },
    { args: [true, 4, Opcode.Binary, 125, null], bytes: "c2 7d" },
    { args: [false, 7, Opcode.Continuation, 0, null], bytes: "70 00" },
    { args: [true, 0, Opcode.Text, 5, KEY], bytes: "81 85 37 fa 21 3d" },
    { args: [true, 0, Opcode.Binary, 126, null], bytes: "82 7e 00 7e" },
    {
      args: [true, 1, Opcode.Binary, 65535, KEY],
      bytes: "92 fe ff ff 37 fa 21 3d",
    },
    {
      args: [true, 0, Opcode.Binary, 65536, null],
      bytes: "82 7f 00 00 00 00 00 01 00 00",
    },
    {
      args: [false, 2, Opcode.Binary, 0x12345678, KEY],
      bytes: "22 ff 00 00 00 00 12 34 56 78 37 fa 21 3d",
    },
  ];
  for (const { args, bytes } of CASES) {
    test(`writeFrameHeader writes ${bytes} at an offset, touching nothing else`, () => {
      const expected = hex(bytes);
      const target = new Uint8Array(expected.length + 10).fill(0xee);
      const size = writeFrameHeader(target, 5, ...args);
      assert.equal(size, expected.length);
      assert.equal(size, frameHeaderSize(args[3], args[4] !== null));
      assertBytes(target.subarray(5, 5 + size), expected);
      assert.ok(target.subarray(0, 5).every((b) => b === 0xee));
      assert.ok(target.subarray(5 + size).every((b) => b === 0xee));
    });
  }
});

describe("encodeFrame", () => {
  test("encodeFrame leaves its input payload unchanged when masking", () => {
    const random = prng(77);
    for (const length of [0, 1, 5, 16, 125, 126, 1000, 70000]) {
      const payload = randomBytes(random, length);
      const original = payload.slice();
      const bytes = encodeFrame(
        { fin: true, rsv: 0, opcode: Opcode.Binary, payload },
        KEY,
      );
      assertBytes(payload, original, `length ${length}`);
      const header = frameHeaderSize(length, true);
      const body = bytes.subarray(header);
      for (let i = 0; i < length; i++) {
        assert.equal(body[i], original[i]! ^ KEY[i & 3]!);
      }
    }
  });

  test("encodeFrame without a key (or with null) writes the payload as is", () => {
    const frame: Frame = {
      fin: true,
      rsv: 0,
      opcode: Opcode.Text,
      payload: HELLO,
    };
    assertBytes(encodeFrame(frame), hex("81 05 48 65 6c 6c 6f"));
    assertBytes(encodeFrame(frame, null), hex("81 05 48 65 6c 6c 6f"));
  });

  test("encodeFrame masks an empty payload: header and key only", () => {
    assertBytes(
      encodeFrame(
        { fin: true, rsv: 0, opcode: Opcode.Close, payload: new Uint8Array(0) },
        KEY,
      ),
      hex("88 80 37 fa 21 3d"),
    );
  });
});
