/**
 * The extension interface (src/extension.ts) and its hooks in the core:
 * RSV bits accepted only when an agreed extension owns them, only on a
 * message's first frame; messages transformed in order both ways; the
 * offer and answer helpers. The extension used is a toy written here, as a
 * user would write one: "x-xor", which XORs every payload byte and marks
 * the message with RSV2, its decode delayed to prove the ordering.
 *
 *     deno task test tests/extension_test.ts
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  acceptExtensions,
  answerExtensions,
  type ClientExtension,
  type Extension,
  extensionOffers,
  type ExtensionParams,
  isExtension,
  type OutgoingData,
  type ServerExtension,
} from "../src/extension.ts";
import { HandshakeError } from "../src/errors.ts";
import { Opcode } from "../src/frame.ts";
import { type Message, Protocol, type Role } from "../src/protocol.ts";
import { takeover } from "../src/takeover.ts";
import { closeOf, pipe, RawPeer } from "./_pipe.ts";
import { hex, makeProtocol, peerFrame } from "./_frames.ts";
import { bounded, sleep } from "./_wait.ts";
import { ProtocolError } from "../src/errors.ts";

const RSV2 = 2;
const xor = (bytes: Uint8Array) => bytes.map((byte) => byte ^ 0x55);

/** The toy: XOR with 0x55; decoding waits `delay(payload)` ms first. */
function xorExtension(
  delay: (payload: Uint8Array) => number = () => 0,
): ClientExtension & ServerExtension {
  const make = (params: ExtensionParams): Extension => ({
    name: "x-xor",
    params,
    rsv: RSV2,
    encode: (data: OutgoingData) =>
      data.compress === false
        ? { payload: data.payload, rsv: 0 }
        : { payload: xor(data.payload), rsv: RSV2 },
    decode: async (payload: Uint8Array) => {
      const ms = delay(payload);
      if (ms > 0) await sleep(ms);
      return xor(payload);
    },
    close() {},
  });
  return {
    name: "x-xor",
    offers: () => [{ strength: "1" }, {}],
    accept: (params) => {
      if (Object.keys(params).some((key) => key !== "strength")) {
        throw new HandshakeError("x-xor: unknown parameter", 0);
      }
      return make(params);
    },
    answer: (params) => (params.strength === "1" ? make(params) : null),
  };
}

describe("Protocol and RSV bits owned by an extension", () => {
  for (const role of ["client", "server"] as Role[]) {
    test(`Protocol hands a marked message to extensionMessage as received (${role})`, () => {
      const got: [Uint8Array, boolean, number][] = [];
      const messages: Message[] = [];
      const protocol = new Protocol({ role, allowedRsv: RSV2 }, {
        message: (data) => messages.push(data),
        extensionMessage: (payload, text, rsv) =>
          got.push([payload, text, rsv]),
        ping() {},
        pong() {},
        close() {},
        send() {},
      });
      // Text whose payload is not UTF-8 (it is transformed): no 1007 here.
      const first = peerFrame(role, Opcode.Text, hex("ff fe"), false);
      first[0]! |= 0x20;
      protocol.receive(first);
      protocol.receive(peerFrame(role, Opcode.Continuation, hex("fd"), true));
      protocol.receive(peerFrame(role, Opcode.Binary, hex("01"), true));
      assert.deepEqual(got, [[hex("ff fe fd"), true, RSV2]]);
      assert.deepEqual(messages, [hex("01")]);
    });

    test(`Protocol fails an owned RSV bit on a continuation or control frame with 1002 (${role})`, () => {
      for (const opcode of [Opcode.Continuation, Opcode.Ping]) {
        const { protocol } = makeProtocol(role, { allowedRsv: RSV2 });
        if (opcode === Opcode.Continuation) {
          protocol.receive(peerFrame(role, Opcode.Binary, "a", false));
        }
        const frame = peerFrame(role, opcode, "b", true);
        frame[0]! |= 0x20;
        assert.throws(
          () => protocol.receive(frame),
          (error: unknown) =>
            error instanceof ProtocolError && error.closeCode === 1002,
        );
      }
    });

    test(`Protocol fails a bit no extension owns with 1002 (${role})`, () => {
      const { protocol } = makeProtocol(role, { allowedRsv: RSV2 });
      const frame = peerFrame(role, Opcode.Binary, "a", true);
      frame[0]! |= 0x40; // RSV1: not owned
      assert.throws(
        () => protocol.receive(frame),
        (error: unknown) =>
          error instanceof ProtocolError && error.closeCode === 1002,
      );
    });

    test(`Protocol.sendFragment sets the RSV bits asked for (${role})`, () => {
      const { protocol, recorder } = makeProtocol("server");
      protocol.sendFragment(hex("01"), true, "binary", RSV2);
      assert.equal(recorder.sent()[0], 0x80 | 0x20 | Opcode.Binary);
    });
  }
});

describe("extension offers and answers", () => {
  test("extensionOffers lists every offer in order, raw offers as given", () => {
    assert.deepEqual(
      extensionOffers([xorExtension(), { name: "x-raw", params: { a: "1" } }]),
      [
        { name: "x-xor", params: { strength: "1" } },
        { name: "x-xor", params: {} },
        { name: "x-raw", params: { a: "1" } },
      ],
    );
  });

  test("answerExtensions takes the first acceptable offer; acceptExtensions checks it", () => {
    const server = answerExtensions([xorExtension()], [
      { name: "x-xor", params: {} },
      { name: "x-xor", params: { strength: "1" } },
      { name: "x-unknown", params: {} },
    ]);
    assert.deepEqual(server.map((e) => [e.name, e.params]), [
      ["x-xor", { strength: "1" }],
    ]);
    const client = acceptExtensions([xorExtension()], server);
    assert.ok(isExtension(client[0]!));
    assert.throws(
      () =>
        acceptExtensions([xorExtension()], [{
          name: "x-xor",
          params: { bad: true },
        }]),
      HandshakeError,
    );
  });

  test("two extensions owning the same RSV bit cannot both be agreed", () => {
    const other: ServerExtension = {
      name: "x-other",
      answer: (params) => ({
        ...xorExtension().accept({}),
        name: "x-other",
        params,
      }),
    };
    const agreed = answerExtensions([xorExtension(), other], [
      { name: "x-xor", params: { strength: "1" } },
      { name: "x-other", params: {} },
    ]);
    assert.deepEqual(agreed.map((e) => e.name), ["x-xor"]);
    assert.throws(
      () =>
        acceptExtensions(
          [xorExtension(), { ...xorExtension(), name: "x-other" }],
          [{ name: "x-xor", params: {} }, { name: "x-other", params: {} }],
        ),
      /same RSV bits/,
    );
  });
});

describe("an extension on a connection", () => {
  for (const role of ["client", "server"] as Role[]) {
    test(
      `messages are transformed both ways and keep their order (${role})`,
      bounded(async () => {
        // The first message decodes slowly: those behind it must wait for it.
        const slow = (payload: Uint8Array) => (payload.length === 3 ? 50 : 0);
        const ext = xorExtension(slow).answer({ strength: "1" })!;
        const [a, b] = pipe();
        const conn = takeover(a, { role, keepalive: false, extensions: [ext] });
        const peer = new RawPeer(b, role === "client" ? "server" : "client");
        assert.deepEqual(conn.extensions.map((e) => e.name), ["x-xor"]);
        await peer.send(Opcode.Text, xor(new TextEncoder().encode("abc")), {
          rsv: RSV2,
        });
        await peer.send(Opcode.Text, "plain");
        await peer.send(Opcode.Binary, xor(hex("01 02 03 04")), { rsv: RSV2 });
        const got: Message[] = [];
        for await (const message of conn) {
          got.push(message);
          if (got.length === 3) break;
        }
        assert.deepEqual(got, ["abc", "plain", hex("01 02 03 04")]);
        // Out: transformed and marked, unless asked not to be.
        const [c, d] = pipe();
        const sender = takeover(c, {
          role,
          keepalive: false,
          extensions: [xorExtension().answer({ strength: "1" })!],
        });
        const receiver = new RawPeer(
          d,
          role === "client" ? "server" : "client",
        );
        await sender.send("hi");
        await sender.send(hex("0a"), { compress: false });
        await sender.send(ReadableStream.from([hex("01"), hex("02")]));
        const frames = [
          await receiver.expect(),
          await receiver.expect(),
          await receiver.expect(),
          await receiver.expect(),
        ];
        assert.deepEqual(
          frames.map((f) => [f.opcode, f.rsv, [...f.payload]]),
          [
            [Opcode.Text, RSV2, [..."hi"].map((c) => c.charCodeAt(0) ^ 0x55)],
            [Opcode.Binary, 0, [0x0a]],
            [Opcode.Binary, RSV2, [0x01 ^ 0x55]],
            [Opcode.Continuation, 0, [0x02 ^ 0x55]],
          ],
        );
        peer.drop();
        receiver.drop();
        await Promise.all([conn.closed, sender.closed]);
      }),
    );

    test(
      `without an agreed extension its bit fails with 1002 (${role})`,
      bounded(async () => {
        const [a, b] = pipe();
        const conn = takeover(a, {
          role,
          keepalive: false,
          // Agreed by name only (a raw offer): no transforms, no bits.
          extensions: [{ name: "x-xor", params: {} }],
        });
        const peer = new RawPeer(b, role === "client" ? "server" : "client");
        await peer.send(Opcode.Text, "x", { rsv: RSV2 });
        assert.equal(closeOf(await peer.expect()).code, 1002);
        peer.drop();
        await conn.closed;
      }),
    );
  }
});
