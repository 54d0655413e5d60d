import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ConnectionClosedError, ProtocolError } from "../src/errors.ts";
import { PayloadBuffers } from "../src/payload_buffers.ts";
import { frameHeaderSize, Opcode } from "../src/frame.ts";
import {
  BYTES_COPIED,
  type Message,
  Protocol,
  type ProtocolOptions,
  type Role,
} from "../src/protocol.ts";
import {
  assertBytes,
  concat,
  equalBytes,
  hex,
  makeProtocol,
  ourFrame,
  peerFrame,
  pick,
  prng,
  randomBytes,
  randomInt,
  receiveEveryWay,
  type ReceiveResult,
  Recorder,
  toHex,
} from "./_frames.ts";

const ROLES: Role[] = ["client", "server"];
const encoder = new TextEncoder();
const HELLO = encoder.encode("Hello");
type Options = Partial<Omit<ProtocolOptions, "role">>;

function codeBytes(code: number, reason = ""): Uint8Array {
  return concat(
    new Uint8Array([code >>> 8, code & 0xff]),
    encoder.encode(reason),
  );
}

/** The size of the header of a frame the peer of `role` sends. */
function peerHeaderSize(role: Role, length: number): number {
  return frameHeaderSize(length, role === "server");
}

/** Asserts that every way of receiving `input` works and gives `log`. */
function expectLog(
  role: Role,
  input: Uint8Array,
  log: ReceiveResult["log"],
  options: Options = {},
): ReceiveResult {
  const result = receiveEveryWay(role, input, options);
  assert.equal(result.error, null, result.error?.message);
  assert.deepEqual(result.log, log);
  return result;
}

/**
 * Asserts that every way of receiving `input` fails with `closeCode`, thrown
 * in the chunk holding byte `at` (by default the last), after sending a close
 * frame with that code; returns what was reported.
 */
function expectFailure(
  role: Role,
  input: Uint8Array,
  closeCode: number,
  options: Options = {},
  at = input.length - 1,
): ReceiveResult {
  const result = receiveEveryWay(role, input, options);
  assert.ok(result.error !== null, "did not fail");
  assert.ok(result.error instanceof ProtocolError);
  assert.equal(result.error.closeCode, closeCode, result.error.message);
  assert.equal(result.errorByte, at, "failed at the wrong byte");
  assert.equal(result.state, "closed");
  assert.equal(result.closeSent, true);
  assert.equal(result.closeReceived, false);
  assert.deepEqual(result.log.at(-1), [
    "send",
    ourFrame(role, Opcode.Close, codeBytes(closeCode)),
  ]);
  assert.equal(
    result.log.filter((event) => event[0] === "send" && event[1][0] === 0x88)
      .length,
    1,
    "sent more than one close frame",
  );
  return result;
}

function isClosedError(error: unknown): boolean {
  assert.ok(
    error instanceof ConnectionClosedError,
    `not a ConnectionClosedError: ${error}`,
  );
  return true;
}

/** Asserts that every way of sending on `protocol` throws ConnectionClosedError and sends nothing. */
function assertCannotSend(protocol: Protocol, recorder: Recorder): void {
  const before = recorder.sends.length;
  assert.throws(() => protocol.sendMessage("x"), isClosedError);
  assert.throws(() => protocol.sendMessage(new Uint8Array(1)), isClosedError);
  assert.throws(() => protocol.sendFragment("x", false), isClosedError);
  assert.throws(() => protocol.ping(), isClosedError);
  assert.throws(() => protocol.pong(HELLO), isClosedError);
  assert.equal(recorder.sends.length, before, "sent something");
}

for (const role of ROLES) {
  const peer = (
    opcode: number,
    payload: Uint8Array | string = new Uint8Array(0),
    fin = true,
  ) => peerFrame(role, opcode, payload, fin);
  const ours = (
    opcode: number,
    payload: Uint8Array | string = new Uint8Array(0),
    fin = true,
  ) => ourFrame(role, opcode, payload, fin);

  describe(`Protocol as a ${role}: receiving messages`, () => {
    test(`Protocol.receive delivers a text message (${role})`, () => {
      const result = expectLog(role, peer(Opcode.Text, "Hello"), [
        ["message", "Hello"],
      ]);
      assert.equal(result.state, "open");
    });

    test(`Protocol.receive delivers a binary message (${role})`, () => {
      expectLog(role, peer(Opcode.Binary, hex("00 01 fe ff")), [
        ["message", hex("00 01 fe ff")],
      ]);
    });

    test(`Protocol.receive delivers an empty text message as "" (${role})`, () => {
      expectLog(role, peer(Opcode.Text), [["message", ""]]);
    });

    test(`Protocol.receive delivers an empty binary message as empty bytes (${role})`, () => {
      expectLog(role, peer(Opcode.Binary), [["message", new Uint8Array(0)]]);
    });

    test(`Protocol.receive assembles a fragmented text message (${role})`, () => {
      const input = concat(
        peer(Opcode.Text, "Hel", false),
        peer(Opcode.Continuation, "", false),
        peer(Opcode.Continuation, "l", false),
        peer(Opcode.Continuation, "o", true),
      );
      expectLog(role, input, [["message", "Hello"]]);
    });

    test(`Protocol.receive assembles a fragmented binary message (${role})`, () => {
      const input = concat(
        peer(Opcode.Binary, hex("01 02"), false),
        peer(Opcode.Continuation, hex("03"), false),
        peer(Opcode.Continuation, "", false),
        peer(Opcode.Continuation, hex("04 05"), true),
      );
      expectLog(role, input, [["message", hex("01 02 03 04 05")]]);
    });

    test(`Protocol.receive assembles a fragmented message of empty fragments (${role})`, () => {
      const input = concat(
        peer(Opcode.Text, "", false),
        peer(Opcode.Continuation, "", true),
        peer(Opcode.Binary, "", false),
        peer(Opcode.Continuation, "", true),
      );
      expectLog(role, input, [["message", ""], ["message", new Uint8Array(0)]]);
    });

    test(`Protocol.receive assembles text whose characters are split across fragments (${role})`, () => {
      // "aκb😀": κ is CE BA, 😀 is F0 9F 98 80.
      const input = concat(
        peer(Opcode.Text, hex("61 ce"), false),
        peer(Opcode.Continuation, hex("ba 62 f0"), false),
        peer(Opcode.Continuation, hex("9f 98"), false),
        peer(Opcode.Continuation, hex("80"), true),
      );
      expectLog(role, input, [["message", "aκb😀"]]);
    });

    test(`Protocol.receive delivers several messages from one chunk in order (${role})`, () => {
      const input = concat(
        peer(Opcode.Text, "one"),
        peer(Opcode.Binary, hex("02")),
        peer(Opcode.Text, "κόσμε"),
        peer(Opcode.Text, "", false),
        peer(Opcode.Continuation, "four"),
      );
      expectLog(role, input, [
        ["message", "one"],
        ["message", hex("02")],
        ["message", "κόσμε"],
        ["message", "four"],
      ]);
    });

    test(`Protocol.receive delivers large text and binary messages (${role})`, () => {
      const text = "Grüße, κόσμε 😀 ".repeat(2700); // 67 500 bytes: a 64-bit length
      const binary = randomBytes(prng(5), 66_000);
      expectLog(role, peer(Opcode.Text, text), [["message", text]]);
      expectLog(role, peer(Opcode.Binary, binary), [["message", binary]]);
    });

    test(`Protocol.receive delivers binary messages that do not change when later bytes arrive (${role})`, () => {
      const { protocol, recorder } = makeProtocol(role);
      const chunk = concat(
        peer(Opcode.Binary, hex("01 02 03")),
        peer(Opcode.Binary, hex("04")),
      );
      protocol.receive(chunk);
      const first = recorder.events()[0]![1] as Uint8Array;
      protocol.receive(peer(Opcode.Binary, hex("05 06 07")));
      assertBytes(first, hex("01 02 03"));
    });
    test(`Protocol.receive hands on a binary message uncopied only when it is at least 4 KiB and an eighth of its chunk (${role})`, () => {
      // A view keeps its whole buffer alive: a small message, or one small
      // next to the chunk it came in, is copied out of the chunk.
      for (
        const [size, others, copied] of [
          [4_095, 0, true], // small: always copied
          [4_096, 0, false],
          [8_000, 6, false], // 7 messages in a chunk: over an eighth each
          [8_000, 7, true], // 8, with their headers: a little under
        ] as const
      ) {
        const { protocol, recorder } = makeProtocol(role);
        const payload = randomBytes(prng(size), size);
        const filler = peer(Opcode.Binary, new Uint8Array(size));
        const chunk = concat(
          peer(Opcode.Binary, payload),
          ...Array.from({ length: others }, () => filler),
        );
        protocol.receive(chunk);
        const message = recorder.events()[0]![1] as Uint8Array;
        assertBytes(message, payload);
        assert.equal(
          message.buffer !== chunk.buffer,
          copied,
          `${size} B with ${others} more: copied ${copied}`,
        );
        if (copied) assert.equal(message.buffer.byteLength, size);
      }
    });

    test(`Protocol.receive assembles a message from parts at any alignment; with aligned buffers (Bun's) the second part copies aligned alike (${role})`, () => {
      const payload = randomBytes(prng(9), 20_000);
      const frame = peer(Opcode.Binary, payload);
      for (const aligned of [false, true]) {
        for (const cut of [100, 5_000, 8_191]) {
          for (let offset = 0; offset < 16; offset++) {
            const { protocol, recorder } = makeProtocol(role, {
              buffers: aligned ? new PayloadBuffers({ aligned }) : undefined,
            });
            protocol.receive(frame.slice(0, cut));
            // The rest, `offset` bytes into a buffer of its own.
            const rest = new Uint8Array(offset + frame.length - cut);
            rest.set(frame.subarray(cut), offset);
            const second = rest.subarray(offset);
            protocol.receive(second);
            const message = recorder.events()[0]![1] as Uint8Array;
            assertBytes(message, payload);
            if (aligned) {
              const first = cut - peerHeaderSize(role, payload.length);
              assert.equal(
                (message.byteOffset + first - second.byteOffset) & 15,
                0,
                `cut at ${cut}, second part at offset ${offset}`,
              );
            }
          }
        }
      }
    });
  });

  describe(`Protocol as a ${role}: pings and pongs`, () => {
    test(`Protocol answers a ping with a pong carrying the same payload (${role})`, () => {
      expectLog(role, peer(Opcode.Ping, HELLO), [
        ["send", ours(Opcode.Pong, HELLO)],
        ["ping", HELLO],
      ]);
      expectLog(role, peer(Opcode.Ping), [
        ["send", ours(Opcode.Pong)],
        ["ping", new Uint8Array(0)],
      ]);
      const big = randomBytes(prng(125), 125);
      expectLog(role, peer(Opcode.Ping, big), [
        ["send", ours(Opcode.Pong, big)],
        ["ping", big],
      ]);
    });

    test(`Protocol answers a ping between fragments, and the message still arrives whole (${role})`, () => {
      const input = concat(
        peer(Opcode.Text, "Hel", false),
        peer(Opcode.Ping, "ping!"),
        peer(Opcode.Continuation, "l", false),
        peer(Opcode.Pong, "pong!"),
        peer(Opcode.Continuation, "o", true),
      );
      expectLog(role, input, [
        ["send", ours(Opcode.Pong, "ping!")],
        ["ping", encoder.encode("ping!")],
        ["pong", encoder.encode("pong!")],
        ["message", "Hello"],
      ]);
    });

    test(`Protocol reports a pong and sends nothing (${role})`, () => {
      expectLog(role, peer(Opcode.Pong, HELLO), [["pong", HELLO]]);
    });

    test(`Protocol.ping and Protocol.pong send control frames of up to 125 bytes (${role})`, () => {
      const { protocol, recorder } = makeProtocol(role);
      protocol.ping(HELLO);
      protocol.pong();
      const max = new Uint8Array(125).fill(7);
      protocol.ping(max);
      protocol.pong(max);
      assert.deepEqual(recorder.sends, [
        ours(Opcode.Ping, HELLO),
        ours(Opcode.Pong),
        ours(Opcode.Ping, max),
        ours(Opcode.Pong, max),
      ]);
      assertBytes(HELLO, encoder.encode("Hello"), "ping payload changed");
    });

    test(`Protocol.ping and Protocol.pong refuse more than 125 bytes with a RangeError (${role})`, () => {
      const { protocol, recorder } = makeProtocol(role);
      assert.throws(() => protocol.ping(new Uint8Array(126)), RangeError);
      assert.throws(() => protocol.pong(new Uint8Array(126)), RangeError);
      assert.throws(() => protocol.ping(new Uint8Array(70_000)), RangeError);
      assert.equal(recorder.sends.length, 0);
      assert.equal(protocol.state, "open");
    });
  });

  describe(`Protocol as a ${role}: the close handshake`, () => {
    test(`Protocol echoes the peer's close with the same code, and is closed (${role})`, () => {
      const result = expectLog(
        role,
        peer(Opcode.Close, codeBytes(1001, "bye")),
        [
          ["send", ours(Opcode.Close, codeBytes(1001))],
          ["close", 1001, "bye"],
        ],
      );
      assert.equal(result.state, "closed");
      assert.equal(result.closeReceived, true);
      assert.equal(result.closeSent, true);
    });

    test(`Protocol echoes an empty close with an empty close, reported as 1005 (${role})`, () => {
      expectLog(role, peer(Opcode.Close), [
        ["send", ours(Opcode.Close)],
        ["close", 1005, ""],
      ]);
    });

    test(`Protocol ignores every byte after the peer's close, even invalid ones (${role})`, () => {
      const input = concat(
        peer(Opcode.Close, codeBytes(1000)),
        peer(Opcode.Text, "after"),
        peer(Opcode.Ping, "after"),
        peer(Opcode.Continuation, "no message to continue"),
        hex("ff ff ff ff"),
      );
      const result = expectLog(role, input, [
        ["send", ours(Opcode.Close, codeBytes(1000))],
        ["close", 1000, ""],
      ]);
      assert.equal(result.state, "closed");
    });

    test(`Protocol ignores the rest of a message that was in progress when the close arrived (${role})`, () => {
      const input = concat(
        peer(Opcode.Text, "unfinished", false),
        peer(Opcode.Close, codeBytes(1001)),
        peer(Opcode.Continuation, "end"),
      );
      expectLog(role, input, [
        ["send", ours(Opcode.Close, codeBytes(1001))],
        ["close", 1001, ""],
      ]);
    });

    test(`Protocol.close sends "Normal closure" by default, then waits for the peer's close (${role})`, () => {
      const { protocol, recorder } = makeProtocol(role);
      assert.equal(protocol.close(1000), true);
      const payload = codeBytes(1000, "Normal closure");
      if (role === "server") {
        assert.equal(
          toHex(recorder.sends[0]!),
          "88 10 03 e8 4e 6f 72 6d 61 6c 20 63 6c 6f 73 75 72 65",
        );
      }
      assert.deepEqual(recorder.sends, [ours(Opcode.Close, payload)]);
      assert.equal(protocol.state, "closing");
      assert.equal(protocol.closeSent, true);
      assert.equal(protocol.closeReceived, false);

      // Messages still arrive while closing.
      protocol.receive(peer(Opcode.Text, "late"));
      protocol.receive(peer(Opcode.Close, codeBytes(1000, "ok")));
      assert.deepEqual(recorder.events(), [
        ["message", "late"],
        ["close", 1000, "ok"],
      ]);
      assert.equal(recorder.sends.length, 1, "sent a second close frame");
      assert.equal(protocol.state, "closed");
      assert.equal(protocol.closeReceived, true);
      assert.equal(protocol.receiveEof(), true);
    });

    test(`Protocol.close uses the given reason, the code's default, or none without a code (${role})`, () => {
      const cases: [number | undefined, string | undefined, Uint8Array][] = [
        [4000, "custom", codeBytes(4000, "custom")],
        [1001, undefined, codeBytes(1001, "Going away")],
        [1000, "", codeBytes(1000)],
        [3000, undefined, codeBytes(3000)],
        [undefined, undefined, new Uint8Array(0)],
      ];
      for (const [code, reason, payload] of cases) {
        const { protocol, recorder } = makeProtocol(role);
        assert.equal(protocol.close(code, reason), true);
        assert.deepEqual(recorder.sends, [ours(Opcode.Close, payload)]);
      }
    });

    test(`Protocol.close twice sends one close frame (${role})`, () => {
      const { protocol, recorder } = makeProtocol(role);
      assert.equal(protocol.close(1000), true);
      assert.equal(protocol.close(1001), false);
      assert.equal(protocol.close(), false);
      assert.equal(recorder.sends.length, 1);
    });

    test(`Protocol.close after the peer's close sends nothing (${role})`, () => {
      const { protocol, recorder } = makeProtocol(role);
      protocol.receive(peer(Opcode.Close, codeBytes(1000)));
      recorder.clear();
      assert.equal(protocol.close(1000), false);
      assert.equal(recorder.sends.length, 0);
    });

    test(`Protocol.close refuses invalid codes and long reasons with a RangeError, sending nothing (${role})`, () => {
      const { protocol, recorder } = makeProtocol(role);
      for (const code of [999, 1005, 1006, 1015, 2000, 5000]) {
        assert.throws(() => protocol.close(code), RangeError, `${code}`);
      }
      assert.throws(() => protocol.close(1000, "x".repeat(124)), RangeError);
      assert.throws(() => protocol.close(undefined, "why"), TypeError);
      assert.equal(recorder.sends.length, 0);
      assert.equal(protocol.state, "open");
      assert.equal(protocol.close(1000, "x".repeat(123)), true);
    });

    test(`Protocol does not answer a ping once its close is sent, but reports it (${role})`, () => {
      const { protocol, recorder } = makeProtocol(role);
      protocol.close(1000);
      recorder.clear();
      protocol.receive(peer(Opcode.Ping, HELLO));
      assert.deepEqual(recorder.log, [["ping", HELLO]]);
    });

    test(`Protocol sends throw ConnectionClosedError after close(), the peer's close, a failure and EOF (${role})`, () => {
      const closing = makeProtocol(role);
      closing.protocol.close(1000);
      assertCannotSend(closing.protocol, closing.recorder);

      const closed = makeProtocol(role);
      closed.protocol.receive(peer(Opcode.Close, codeBytes(1000)));
      assert.equal(closed.protocol.state, "closed");
      assertCannotSend(closed.protocol, closed.recorder);

      const failed = makeProtocol(role);
      assert.throws(() =>
        failed.protocol.receive(peer(Opcode.Continuation, "x"))
      );
      // Until fail() the application may still answer earlier messages.
      failed.protocol.sendMessage("answer");
      failed.protocol.fail();
      failed.recorder.clear();
      assertCannotSend(failed.protocol, failed.recorder);

      const ended = makeProtocol(role);
      ended.protocol.receiveEof();
      assertCannotSend(ended.protocol, ended.recorder);
    });

    test(`Protocol.receiveEof is clean only after the peer's close (${role})`, () => {
      const fresh = makeProtocol(role).protocol;
      assert.equal(fresh.receiveEof(), false);
      assert.equal(fresh.state, "closed");

      const midMessage = makeProtocol(role).protocol;
      midMessage.receive(peer(Opcode.Text, "half", false));
      assert.equal(midMessage.receiveEof(), false);

      const closing = makeProtocol(role).protocol;
      closing.close(1000);
      assert.equal(closing.receiveEof(), false, "our close alone is not clean");
      assert.equal(closing.state, "closed");

      const peerClosed = makeProtocol(role).protocol;
      peerClosed.receive(peer(Opcode.Close, codeBytes(1000)));
      assert.equal(peerClosed.receiveEof(), true);

      const handshake = makeProtocol(role).protocol;
      handshake.close(1000);
      handshake.receive(peer(Opcode.Close, codeBytes(1000)));
      assert.equal(handshake.receiveEof(), true);
    });
  });

  describe(`Protocol as a ${role}: failing the connection`, () => {
    const headerEnd = (length: number, before = 0) =>
      before + peerHeaderSize(role, length) - 1;

    test(`Protocol fails a continuation frame without a message with 1002 (${role})`, () => {
      const input = peer(Opcode.Continuation, "lo");
      const result = expectFailure(role, input, 1002, {}, headerEnd(2));
      assert.match(result.error!.message, /Continuation/);
      assert.equal(result.log.length, 1);
    });

    test(`Protocol fails a new data frame inside a fragmented message with 1002 (${role})`, () => {
      for (const opcode of [Opcode.Text, Opcode.Binary]) {
        const first = peer(Opcode.Text, "Hel", false);
        const input = concat(first, peer(opcode, "lo"));
        const result = expectFailure(
          role,
          input,
          1002,
          {},
          headerEnd(2, first.length),
        );
        assert.equal(result.log.length, 1, "reported a message");
      }
    });

    test(`Protocol fails invalid UTF-8 in a single-frame text message with 1007, at the bad byte (${role})`, () => {
      const payload = hex("61 62 ff 63 64");
      const input = peer(Opcode.Text, payload);
      expectFailure(role, input, 1007, {}, headerEnd(5) + 3);
      // A surrogate: it fails at its second byte.
      const surrogate = peer(Opcode.Text, hex("61 ed a0 80 62"));
      expectFailure(role, surrogate, 1007, {}, headerEnd(5) + 3);
    });

    test(`Protocol fails invalid UTF-8 at the fragment that makes it invalid, not at the message end (${role})`, () => {
      const first = peer(Opcode.Text, "κόσμε", false); // valid
      const second = peer(Opcode.Continuation, hex("65 ed"), false); // valid so far
      const third = peer(Opcode.Continuation, hex("a0 80 65"), false); // A0: invalid
      const last = peer(Opcode.Continuation, "edited", true);
      const input = concat(first, second, third, last);
      const badByte = first.length + second.length + peerHeaderSize(role, 3);
      assert.equal(input[badByte]! ^ (role === "server" ? 0xa1 : 0), 0xa0);
      const result = expectFailure(role, input, 1007, {}, badByte);
      assert.equal(result.log.length, 1, "reported something before failing");

      // Step by step: nothing before the third fragment's payload, then the throw.
      const { protocol, recorder } = makeProtocol(role);
      const copy = input.slice();
      protocol.receive(copy.subarray(0, badByte));
      assert.deepEqual(recorder.log, []);
      assert.throws(
        () => protocol.receive(copy.subarray(badByte, badByte + 1)),
        (error: unknown) =>
          error instanceof ProtocolError && error.closeCode === 1007,
      );
      // The close frame waits for fail(), then carries the error's code.
      assert.deepEqual(recorder.log, []);
      protocol.fail();
      assert.deepEqual(recorder.log, [
        ["send", ours(Opcode.Close, codeBytes(1007))],
      ]);
    });

    test(`Protocol fails invalid UTF-8 arriving in a partial chunk of an unfinished frame (${role})`, () => {
      // One frame, fed up to and including the surrogate's A0.
      const payload = concat(
        encoder.encode("κόσμε"),
        hex("ed a0 80"),
        encoder.encode("edited"),
      );
      const input = peer(Opcode.Text, payload);
      const badByte = peerHeaderSize(role, payload.length) + 11;
      expectFailure(role, input, 1007, {}, badByte);
      const { protocol, recorder } = makeProtocol(role);
      const copy = input.slice();
      protocol.receive(copy.subarray(0, badByte));
      assert.throws(
        () => protocol.receive(copy.subarray(badByte, badByte + 2)),
        (error: unknown) =>
          error instanceof ProtocolError && error.closeCode === 1007,
      );
      assert.equal(recorder.events().length, 0);
    });

    test(`Protocol fails a text message ending inside a character with 1007 (${role})`, () => {
      const input = concat(
        peer(Opcode.Text, hex("61 ce"), false),
        peer(Opcode.Continuation, hex("ba e2 82"), true),
      );
      expectFailure(role, input, 1007);
      expectFailure(role, peer(Opcode.Text, hex("61 f0 9f 98")), 1007);
    });

    test(`Protocol fails a close frame with a 1-byte payload with 1002 (${role})`, () => {
      expectFailure(role, peer(Opcode.Close, hex("03")), 1002);
    });

    test(`Protocol fails a close frame with an invalid code with 1002 (${role})`, () => {
      for (
        const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]
      ) {
        expectFailure(role, peer(Opcode.Close, codeBytes(code)), 1002);
      }
    });

    test(`Protocol fails a close frame whose reason is not UTF-8 with 1007 (${role})`, () => {
      expectFailure(role, peer(Opcode.Close, hex("03 e8 62 79 ff")), 1007);
      expectFailure(role, peer(Opcode.Close, hex("03 e8 ed a0 80")), 1007);
    });

    test(`Protocol fails frames the decoder refuses with 1002 (${role})`, () => {
      // RSV1 without an extension.
      const rsv = peer(Opcode.Text, "x");
      rsv[0]! |= 0x40;
      expectFailure(role, rsv, 1002, {}, headerEnd(1));
      // A reserved opcode.
      const reserved = peer(Opcode.Text, "x");
      reserved[0] = 0x83;
      expectFailure(role, reserved, 1002, {}, headerEnd(1));
      // A fragmented ping.
      expectFailure(
        role,
        peer(Opcode.Ping, "x", false),
        1002,
        {},
        headerEnd(1),
      );
      // The wrong masking for our role.
      const wrong = peerFrame(
        role === "server" ? "client" : "server",
        Opcode.Text,
        "x",
      );
      expectFailure(role, wrong, 1002, {}, role === "server" ? 1 : 5);
    });

    test(`Protocol accepts RSV bits when allowedRsv allows them (${role})`, () => {
      const rsv = peer(Opcode.Binary, hex("01"));
      rsv[0]! |= 0x40;
      expectLog(role, rsv, [["message", hex("01")]], { allowedRsv: 4 });
    });

    test(`Protocol fails a frame over maxMessageSize with 1009 from its header alone (${role})`, () => {
      for (const opcode of [Opcode.Text, Opcode.Binary]) {
        // Only the header of a 101-byte frame: the limit is checked before any payload.
        const header = peer(opcode, new Uint8Array(101).fill(0x61))
          .subarray(0, peerHeaderSize(role, 101));
        expectFailure(role, header, 1009, { maxMessageSize: 100 });
        // A 64-bit length far past the limit, header only.
        const huge = role === "server"
          ? hex("82 ff 00 00 00 01 00 00 00 00 a1 b2 c3 d4")
          : hex("82 7f 00 00 00 01 00 00 00 00");
        expectFailure(role, huge, 1009);
        // Exactly at the limit is fine.
        expectLog(
          role,
          peer(opcode, new Uint8Array(100).fill(0x61)),
          [[
            "message",
            opcode === Opcode.Text
              ? "a".repeat(100)
              : new Uint8Array(100).fill(0x61),
          ]],
          { maxMessageSize: 100 },
        );
      }
    });

    test(`Protocol fails a message over maxMessageSize across fragments with 1009 (${role})`, () => {
      const first = peer(Opcode.Binary, new Uint8Array(60), false);
      const ping = peer(Opcode.Ping, new Uint8Array(125));
      const over = peer(Opcode.Continuation, new Uint8Array(41), true);
      const input = concat(first, ping, over);
      const result = expectFailure(
        role,
        input,
        1009,
        { maxMessageSize: 100 },
        first.length + ping.length + peerHeaderSize(role, 41) - 1,
      );
      assert.equal(result.log.length, 3, "pong, ping, close");
      const fits = concat(
        first,
        ping,
        peer(Opcode.Continuation, new Uint8Array(40)),
      );
      expectLog(role, fits, [
        ["send", ours(Opcode.Pong, new Uint8Array(125))],
        ["ping", new Uint8Array(125)],
        ["message", new Uint8Array(100)],
      ], { maxMessageSize: 100 });
    });

    test(`Protocol fails a message in more than maxFragments frames with 1009 (${role})`, () => {
      const three = concat(
        peer(Opcode.Text, "a", false),
        peer(Opcode.Continuation, "b", false),
        peer(Opcode.Ping, ""),
        peer(Opcode.Continuation, "c", true),
      );
      expectLog(role, three, [
        ["send", ours(Opcode.Pong)],
        ["ping", new Uint8Array(0)],
        ["message", "abc"],
      ], { maxFragments: 3 });
      const four = concat(
        peer(Opcode.Text, "a", false),
        peer(Opcode.Continuation, "b", false),
        peer(Opcode.Continuation, "c", false),
      );
      const input = concat(four, peer(Opcode.Continuation, "d", true));
      expectFailure(
        role,
        input,
        1009,
        { maxFragments: 3 },
        four.length + peerHeaderSize(role, 1) - 1,
      );
    });

    test(`Protocol sends no second close frame when it fails while closing (${role})`, () => {
      const { protocol, recorder } = makeProtocol(role);
      protocol.close(1000);
      assert.throws(
        () => protocol.receive(peer(Opcode.Continuation, "x")),
        (error: unknown) =>
          error instanceof ProtocolError && error.closeCode === 1002,
      );
      protocol.fail();
      assert.equal(recorder.sends.length, 1);
      assert.equal(protocol.state, "closed");
      assert.equal(protocol.failure?.closeCode, 1002);
    });

    test(`Protocol ignores everything received after a failure (${role})`, () => {
      const { protocol, recorder } = makeProtocol(role);
      assert.throws(() => protocol.receive(peer(Opcode.Close, hex("03"))));
      recorder.clear();
      protocol.receive(peer(Opcode.Text, "after"));
      protocol.receive(hex("ff ff"));
      assert.deepEqual(recorder.log, []);
      assert.equal(protocol.receiveEof(), false);
    });
  });

  describe(`Protocol as a ${role}: sending`, () => {
    test(`Protocol.sendMessage frames text and binary (${role})`, () => {
      const { protocol, recorder } = makeProtocol(role);
      protocol.sendMessage("Hello");
      protocol.sendMessage(hex("01 02"));
      protocol.sendMessage("");
      protocol.sendMessage(new Uint8Array(0));
      assert.deepEqual(recorder.sends, [
        ours(Opcode.Text, "Hello"),
        ours(Opcode.Binary, hex("01 02")),
        ours(Opcode.Text, ""),
        ours(Opcode.Binary, ""),
      ]);
      if (role === "client") {
        // RFC 6455 §5.7: a masked "Hello".
        assert.equal(
          toHex(recorder.sends[0]!),
          "81 85 37 fa 21 3d 7f 9f 4d 51 58",
        );
      } else {
        assert.equal(toHex(recorder.sends[0]!), "81 05 48 65 6c 6c 6f");
      }
    });

    test(`Protocol.sendMessage never changes the bytes it is given (${role})`, () => {
      const { protocol } = makeProtocol(role);
      for (const length of [0, 5, 125, 126, 16_383, 16_384, 70_000]) {
        const payload = randomBytes(prng(length), length);
        const copy = payload.slice();
        protocol.sendMessage(payload);
        protocol.sendFragment(payload, false);
        protocol.sendFragment(payload, true);
        assertBytes(payload, copy, `length ${length}`);
      }
    });

    test(`Protocol.sendFragment sends a first opcode, then continuations, FIN on the last (${role})`, () => {
      const { protocol, recorder } = makeProtocol(role);
      protocol.sendFragment("He", false);
      protocol.sendFragment("l", false);
      protocol.ping(HELLO); // control frames may go between fragments
      protocol.sendFragment("lo", true);
      protocol.sendFragment(hex("01"), false);
      protocol.sendFragment(hex("02"), true);
      protocol.sendFragment(hex("03"), true);
      protocol.sendFragment(hex("ce"), false, "text");
      protocol.sendFragment(hex("ba"), true, "text");
      assert.deepEqual(recorder.sends, [
        ours(Opcode.Text, "He", false),
        ours(Opcode.Continuation, "l", false),
        ours(Opcode.Ping, HELLO),
        ours(Opcode.Continuation, "lo", true),
        ours(Opcode.Binary, hex("01"), false),
        ours(Opcode.Continuation, hex("02"), true),
        ours(Opcode.Binary, hex("03"), true),
        ours(Opcode.Text, hex("ce"), false),
        ours(Opcode.Continuation, hex("ba"), true),
      ]);
    });

    test(`Protocol.sendFragment refuses a fragment of the other type with a TypeError (${role})`, () => {
      const { protocol, recorder } = makeProtocol(role);
      protocol.sendFragment("text", false);
      assert.throws(() => protocol.sendFragment(hex("01"), true), TypeError);
      assert.throws(
        () => protocol.sendFragment("x", true, "binary"),
        TypeError,
      );
      protocol.sendFragment(" more", true);
      protocol.sendFragment(hex("01"), false);
      assert.throws(() => protocol.sendFragment("x", true), TypeError);
      protocol.sendFragment(hex("02"), true);
      assert.deepEqual(recorder.sends, [
        ours(Opcode.Text, "text", false),
        ours(Opcode.Continuation, " more", true),
        ours(Opcode.Binary, hex("01"), false),
        ours(Opcode.Continuation, hex("02"), true),
      ]);
    });

    test(`Protocol.sendMessage during a fragmented send throws a TypeError (${role})`, () => {
      const { protocol, recorder } = makeProtocol(role);
      protocol.sendFragment("a", false);
      assert.throws(() => protocol.sendMessage("b"), TypeError);
      assert.throws(() => protocol.sendMessage(hex("01")), TypeError);
      protocol.sendFragment("c", true);
      protocol.sendMessage("d");
      assert.equal(recorder.sends.length, 3);
    });
  });
}

describe("Protocol: text encoding", () => {
  const STRINGS: [string, string][] = [
    ["an empty string", ""],
    ["ASCII", "Hello"],
    ["Greek", "κόσμε"],
    ["an emoji", "😀"],
    ["a BOM", "\ufeffBOM"],
    ["mixed scripts", "Grüße, мир, 世界, 😀!"],
    ["42 ASCII characters (room for 126, header for 42)", "a".repeat(42)],
    ["125 bytes of 2-byte characters + 1", "é".repeat(62) + "a"],
    ["126 bytes of 3-byte characters", "€".repeat(42)],
    ["65535 bytes", "€".repeat(21845)],
    ["65536 bytes", "€".repeat(21845) + "a"],
    [
      "30 000 ASCII characters (room for 64-bit, header for 16-bit)",
      "a".repeat(30_000),
    ],
    ["40 000 2-byte characters", "é".repeat(40_000)],
    ["65 536 ASCII characters", "a".repeat(65_536)],
    ["65 537 ASCII characters (over the inline limit)", "a".repeat(65_537)],
    ["100 000 mixed characters", "aé€😀".repeat(20_000)],
  ];
  for (const [name, text] of STRINGS) {
    test(`Protocol.sendMessage sends ${name} as its exact UTF-8 bytes, both ways`, () => {
      const bytes = encoder.encode(text);
      for (const role of ROLES) {
        const { protocol, recorder } = makeProtocol(role);
        protocol.sendMessage(text);
        const sent = recorder.sent();
        assertBytes(sent, ourFrame(role, Opcode.Text, bytes), role);
        const other = makeProtocol(role === "client" ? "server" : "client");
        other.protocol.receive(sent);
        assert.deepEqual(other.recorder.log, [["message", text]]);
      }
    });
  }

  test("Protocol.sendMessage round-trips random strings of every length from 0 to 300", () => {
    const random = prng(0x7e47);
    const chars = ["a", "~", "é", "ß", "€", "世", "😀", "\u0000", "\ufffd"];
    for (let length = 0; length <= 300; length++) {
      let text = "";
      while (text.length < length) text += pick(random, chars);
      const client = makeProtocol("client");
      const server = makeProtocol("server");
      client.protocol.sendMessage(text);
      server.protocol.receive(client.recorder.sent());
      server.protocol.sendMessage(text);
      client.protocol.receive(server.recorder.sent());
      assert.deepEqual(server.recorder.events(), [["message", text]]);
      assert.deepEqual(client.recorder.events(), [["message", text]]);
    }
  });
});

describe("Protocol: zero-copy sending", () => {
  test("Protocol as a server sends a binary message of 256 KiB or more as header, then the very same payload", () => {
    for (const length of [262_144, 300_000, 1 << 20]) {
      const { protocol, recorder } = makeProtocol("server");
      const payload = randomBytes(prng(length), length);
      protocol.sendMessage(payload);
      assert.equal(recorder.sends.length, 2);
      assertBytes(
        recorder.sends[0]!,
        ourFrame("server", Opcode.Binary, payload).subarray(
          0,
          frameHeaderSize(length, false),
        ),
      );
      assert.equal(recorder.sends[1], payload, "the payload was copied");

      protocol.sendFragment(payload, false);
      protocol.sendFragment(payload, true);
      assert.equal(recorder.sends.length, 6);
      assert.equal(recorder.sends[3], payload);
      assert.equal(recorder.sends[5], payload);
    }
  });

  test("Protocol as a server sends a binary message under 256 KiB in one send, header and payload joined", () => {
    // A header on its own would be a TCP segment of its own.
    for (const length of [16_384, 65_536, 262_143]) {
      const { protocol, recorder } = makeProtocol("server");
      const payload = randomBytes(prng(length), length);
      protocol.sendMessage(payload);
      assert.equal(recorder.sends.length, 1);
      assertBytes(
        recorder.sends[0]!,
        ourFrame("server", Opcode.Binary, payload),
      );
    }
  });

  test("Protocol as a client always sends one masked copy", () => {
    const { protocol, recorder } = makeProtocol("client");
    const payload = new Uint8Array(70_000).fill(1);
    protocol.sendMessage(payload);
    assert.equal(recorder.sends.length, 1);
    assert.notEqual(recorder.sends[0], payload);
    assertBytes(recorder.sends[0]!, ourFrame("client", Opcode.Binary, payload));
    assert.ok(payload.every((b) => b === 1));
  });
});

describe("Protocol: reusing frame buffers", () => {
  /**
   * A handler that copies what it is sent (into `log`), and says (as our
   * connection does) that its buffer may be reused. `frames[i]` are the
   * buffers sent for the i-th message.
   */
  class CopyingHandler extends Recorder {
    readonly frames: ArrayBuffer[][] = [];
    constructor(readonly giveBack: boolean) {
      super();
    }
    override send(bytes: Uint8Array): typeof BYTES_COPIED | undefined {
      super.send(bytes);
      this.frames.at(-1)!.push(bytes.buffer as ArrayBuffer);
      return this.giveBack ? BYTES_COPIED : undefined;
    }
    /** Everything sent, from the copies made when it was sent. */
    copied(): Uint8Array {
      return concat(
        ...this.log.flatMap((event) =>
          event[0] === "send" ? [event[1] as Uint8Array] : []
        ),
      );
    }
  }

  /** Sends each payload, a frame buffer list per message. */
  function sendAll(
    protocol: Protocol,
    handler: CopyingHandler,
    payloads: Uint8Array[],
  ): void {
    for (const payload of payloads) {
      handler.frames.push([]);
      protocol.sendMessage(payload);
    }
  }

  for (const role of ROLES) {
    test(`Protocol builds a frame of 16 KiB to 1 MiB in the buffer of the last one when the handler gave it back, and every frame is right when sent (${role})`, () => {
      const handler = new CopyingHandler(true);
      const protocol = new Protocol(
        { role, maskSource: () => new Uint8Array([1, 2, 3, 4]) },
        handler,
      );
      // The buffer of the first is large enough for the next two; a frame
      // over 1 MiB gets one of its own and is not kept.
      const sizes = [65_536, 65_536, 20_000, 1_100_000, 65_536];
      const payloads = sizes.map((size, i) => randomBytes(prng(i + 1), size));
      sendAll(protocol, handler, payloads);
      const first = handler.frames[0]![0]!;
      assert.equal(handler.frames[1]![0], first);
      assert.equal(handler.frames[2]![0], first);
      assert.ok(!handler.frames[3]!.includes(first));
      assert.equal(handler.frames[4]![0], first);
      const peer = makeProtocol(role === "client" ? "server" : "client");
      peer.protocol.receive(handler.copied());
      assert.deepEqual(
        peer.recorder.events(),
        payloads.map((payload) => ["message", payload]),
      );
      payloads.forEach((payload, i) =>
        assertBytes(payload, randomBytes(prng(i + 1), payload.length))
      );
    });
  }

  test("Protocol builds every frame in a buffer of its own when a handler returns anything else, even true", () => {
    const frames: ArrayBuffer[] = [];
    const protocol = new Protocol({ role: "client" }, {
      message: () => {},
      ping: () => {},
      pong: () => {},
      close: () => {},
      // As `(bytes) => nodeSocket.write(bytes)` would: true, bytes kept.
      send: ((bytes: Uint8Array) =>
        frames.push(bytes.buffer as ArrayBuffer) > 0) as unknown as (
          bytes: Uint8Array,
        ) => void,
    });
    for (let i = 0; i < 3; i++) protocol.sendMessage(new Uint8Array(65_536));
    assert.equal(new Set(frames).size, 3);
  });

  test("Protocol builds every frame in a buffer of its own when the handler keeps them, or when they are under 16 KiB", () => {
    const keeping = new CopyingHandler(false);
    const protocol = new Protocol({ role: "client" }, keeping);
    sendAll(protocol, keeping, [1, 2, 3].map(() => new Uint8Array(65_536)));
    assert.equal(new Set(keeping.frames.flat()).size, 3);

    const giving = new CopyingHandler(true);
    const small = new Protocol({ role: "client" }, giving);
    sendAll(small, giving, [1, 2, 3].map(() => new Uint8Array(16_383)));
    assert.equal(new Set(giving.frames.flat()).size, 3);
  });
});

describe("Protocol: client and server end to end", () => {
  /** A random message: text or binary, sizes crossing 125/126/65535/65536. */
  function randomMessage(random: () => number): Message {
    const r = random();
    const size = r < 0.6
      ? randomInt(random, 0, 300)
      : r < 0.9
      ? pick(random, [0, 1, 124, 125, 126, 127, 1000, 16_383, 16_384])
      : pick(random, [
        65_534,
        65_535,
        65_536,
        65_537,
        randomInt(random, 60_000, 80_000),
      ]);
    if (random() < 0.5) return randomBytes(random, size);
    if (random() < 0.5) return "x".repeat(size); // exact byte sizes
    const chars = ["a", "b", " ", "é", "€", "😀", "κ", "\ufeff"];
    let text = "";
    while (text.length < size / 2) text += pick(random, chars);
    return text;
  }

  test("a client and a server Protocol exchange 500 random messages, fragmented, with pings, through randomly split bytes", () => {
    const random = prng(0x500e2e);
    const ends = {
      client: new Recorder(),
      server: new Recorder(),
    };
    const protocols = {
      client: new Protocol({ role: "client" }, ends.client),
      server: new Protocol({ role: "server" }, ends.server),
    };
    const sentMessages: Record<Role, Message[]> = { client: [], server: [] };
    const sentPings: Record<Role, Uint8Array[]> = { client: [], server: [] };
    const delivered: Record<Role, Message[]> = { client: [], server: [] };
    const ponged: Record<Role, Uint8Array[]> = { client: [], server: [] };
    const other = (role: Role): Role => role === "client" ? "server" : "client";

    /** Moves what `from` sent to the other end, in random pieces. */
    const pump = (from: Role) => {
      const bytes = ends[from].sent();
      ends[from].sends.length = 0;
      const limit = pick(random, [7, 100, 1500, 16_384, Infinity]);
      let at = 0;
      while (at < bytes.length) {
        const size = Math.min(
          bytes.length - at,
          randomInt(random, 1, Math.min(limit, bytes.length)),
        );
        protocols[other(from)].receive(bytes.subarray(at, at + size));
        at += size;
      }
    };
    /** Collects what each end reported, then forgets its log. */
    const collect = () => {
      for (const role of ROLES) {
        for (const event of ends[role].log) {
          if (event[0] === "message") delivered[role].push(event[1]);
          if (event[0] === "pong") ponged[role].push(event[1]);
          assert.notEqual(event[0], "close");
        }
        ends[role].log.length = 0;
      }
    };
    const maybePing = (role: Role) => {
      if (random() < 0.15) {
        const payload = randomBytes(random, randomInt(random, 0, 125));
        protocols[role].ping(payload);
        sentPings[role].push(payload);
      }
    };
    const maybePump = () => {
      for (const role of ROLES) if (random() < 0.3) pump(role);
      collect();
    };

    let fragmented = 0;
    let large = 0;
    for (let i = 0; i < 500; i++) {
      const from: Role = random() < 0.5 ? "client" : "server";
      const protocol = protocols[from];
      const message = randomMessage(random);
      sentMessages[from].push(message);
      if (message.length > 65_535) large++;
      maybePing(from);
      if (random() < 0.6) {
        protocol.sendMessage(message);
      } else {
        fragmented++;
        // Fragment the bytes at random points (text inside characters too).
        const type = typeof message === "string" ? "text" : "binary";
        const bytes = typeof message === "string"
          ? encoder.encode(message)
          : message;
        const cuts = [0];
        for (let n = randomInt(random, 0, 5); n > 0; n--) {
          cuts.push(randomInt(random, 0, bytes.length));
        }
        cuts.sort((a, b) => a - b);
        cuts.push(bytes.length);
        for (let k = 1; k < cuts.length; k++) {
          protocol.sendFragment(
            bytes.subarray(cuts[k - 1], cuts[k]),
            k === cuts.length - 1,
            type,
          );
          maybePing(from);
          maybePump();
        }
      }
      maybePump();
    }
    for (let round = 0; round < 3; round++) {
      pump("client");
      pump("server");
      collect();
    }

    for (const role of ROLES) {
      const received = delivered[other(role)];
      const sent = sentMessages[role];
      assert.equal(
        received.length,
        sent.length,
        `${role} → ${other(role)}: count`,
      );
      for (let i = 0; i < sent.length; i++) {
        const expected = sent[i]!;
        const actual = received[i]!;
        const label = `${role} → ${other(role)}: message ${i}`;
        if (typeof expected === "string") {
          assert.equal(typeof actual, "string", label);
          if (actual !== expected) assert.fail(`${label} differs`);
        } else {
          assert.ok(actual instanceof Uint8Array, label);
          assert.ok(equalBytes(actual, expected), `${label} differs`);
        }
      }
      assert.equal(
        ponged[role].length,
        sentPings[role].length,
        `${role}: pongs`,
      );
      for (let i = 0; i < sentPings[role].length; i++) {
        assertBytes(
          ponged[role][i]!,
          sentPings[role][i]!,
          `${role}: pong ${i}`,
        );
      }
    }
    // The run covers what it claims to.
    assert.ok(sentPings.client.length > 20 && sentPings.server.length > 20);
    assert.ok(fragmented > 100, `only ${fragmented} fragmented messages`);
    assert.ok(large > 10, `only ${large} messages over 65535`);

    // The close handshake, client first.
    assert.equal(protocols.client.close(1000), true);
    pump("client");
    assert.deepEqual(ends.server.events(), [["close", 1000, "Normal closure"]]);
    assert.equal(protocols.server.state, "closed");
    pump("server");
    assert.deepEqual(ends.client.events(), [["close", 1000, ""]]);
    assert.equal(protocols.client.state, "closed");
    assert.equal(protocols.client.receiveEof(), true);
    assert.equal(protocols.server.receiveEof(), true);
  });
});

describe("Protocol: assembling a large message in place", () => {
  /**
   * Feeds `wire` as a socket reading into `receiveBuffer()` does: each read
   * goes into the offered view when there is one, else into a buffer of
   * `readSize` bytes. Returns the views read into the protocol's buffer.
   */
  function readLikeDeno(
    protocol: Protocol,
    wire: Uint8Array,
    readSize: number,
  ): Uint8Array[] {
    const direct: Uint8Array[] = [];
    let at = 0;
    while (at < wire.length) {
      const target = protocol.receiveBuffer();
      const buffer = target ?? new Uint8Array(readSize);
      const n = Math.min(buffer.length, wire.length - at, readSize * 3);
      buffer.set(wire.subarray(at, at + n));
      at += n;
      const view = buffer.subarray(0, n);
      if (target !== null) direct.push(view);
      protocol.receive(view);
    }
    return direct;
  }

  for (const role of ROLES) {
    test(`Protocol as a ${role} offers the rest of a large binary message's buffer to read into, and delivers that buffer`, () => {
      const { protocol, recorder } = makeProtocol(role);
      const payload = randomBytes(prng(7), 1_000_003);
      const wire = concat(
        peerFrame(role, Opcode.Binary, payload),
        peerFrame(role, Opcode.Text, "after"),
      );
      assert.equal(protocol.receiveBuffer(), null, "nothing before a header");
      const direct = readLikeDeno(protocol, wire, 4096);
      assert.ok(direct.length > 0, "the rest was read in place");
      const events = recorder.events();
      assert.equal(events.length, 2);
      const message = events[0]![1] as Uint8Array;
      assertBytes(message, payload);
      assert.equal(events[1]![1], "after");
      // The message is the very buffer read into, not a copy of it.
      for (const view of direct) assert.equal(view.buffer, message.buffer);
      assert.equal(protocol.receiveBuffer(), null, "nothing between frames");
    });

    test(`Protocol as a ${role} assembles a large binary message the same when given other buffers than it offered, or some of each`, () => {
      for (const seed of [1, 2, 3, 4, 5, 6]) {
        const { protocol, recorder } = makeProtocol(role);
        const payload = randomBytes(prng(seed), 300_001);
        const wire = concat(
          peerFrame(role, Opcode.Binary, payload),
          peerFrame(role, Opcode.Binary, payload.subarray(0, 3)),
        );
        const random = prng(seed + 100);
        let at = 0, offered = 0, used = 0;
        while (at < wire.length) {
          const target = protocol.receiveBuffer();
          const n = Math.min(
            randomInt(random, 1, 70_000),
            wire.length - at,
            target?.length ?? Infinity,
          );
          // Seed 1: never the offered view; the others: some of the time.
          let view: Uint8Array = wire.slice(at, at + n);
          if (target !== null) {
            offered++;
            if (seed > 1 && random() < 0.5) {
              target.set(view);
              view = target.subarray(0, n);
              used++;
            }
          }
          protocol.receive(view);
          at += n;
        }
        assert.ok(offered > 0);
        if (seed > 2) assert.ok(used > 0);
        const events = recorder.events();
        assert.equal(events.length, 2);
        assertBytes(events[0]![1] as Uint8Array, payload);
        assertBytes(events[1]![1] as Uint8Array, payload.subarray(0, 3));
      }
    });
  }

  test("Protocol offers no buffer for text, fragments, an extension's message, a control frame or a small rest", () => {
    const cases: [string, Uint8Array, Options?][] = [
      ["text", peerFrame("server", Opcode.Text, "x".repeat(300_000))],
      [
        "a fragment",
        peerFrame("server", Opcode.Binary, new Uint8Array(300_000), false),
      ],
      [
        "a rest under 64 KiB",
        peerFrame("server", Opcode.Binary, new Uint8Array(65_000)),
      ],
    ];
    for (const [name, frame] of cases) {
      const { protocol } = makeProtocol("server");
      protocol.receive(frame.subarray(0, 20));
      assert.equal(protocol.receiveBuffer(), null, name);
    }
    // RSV1 on a binary frame, as permessage-deflate sets it, to a handler
    // that takes an extension's messages.
    const recorder = new (class extends Recorder {
      extensionMessage(): void {}
    })();
    const protocol = new Protocol(
      { role: "server", allowedRsv: 4 },
      recorder,
    );
    const compressed = peerFrame(
      "server",
      Opcode.Binary,
      new Uint8Array(300_000),
    );
    compressed[0]! |= 0x40;
    protocol.receive(compressed.subarray(0, 20));
    assert.equal(protocol.receiveBuffer(), null, "an extension's message");
  });
});
