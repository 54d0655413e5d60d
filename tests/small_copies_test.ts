import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Opcode } from "../src/frame.ts";
import {
  PayloadBuffers,
  plainPayloadBuffers,
  SMALL_FRAME,
} from "../src/payload_buffers.ts";
import { bunTransports } from "../src/transports/bun.ts";
import { denoTransports } from "../src/transports/deno.ts";
import { type Message, Protocol, type Role } from "../src/protocol.ts";
import {
  BATCH_LIMIT,
  SMALL_MESSAGE,
  smallBinaryAhead,
} from "../src/_small_copies.ts";
import {
  concat,
  concatAll,
  OUR_KEY,
  ourFrame,
  peerFrame,
  prng,
  randomBytes,
  randomInt,
  receiveEveryWay,
} from "./_frames.ts";

/** Buffers that share small ones, as Deno's transports' do. */
const sharing = () => new PayloadBuffers({ shareSmallBuffers: true });

/** A protocol that keeps every message it is given. */
function keeping(
  role: Role,
  buffers: PayloadBuffers = sharing(),
): { protocol: Protocol; messages: Message[] } {
  const messages: Message[] = [];
  const protocol = new Protocol({ role, buffers }, {
    message: (data) => void messages.push(data),
    ping() {},
    pong() {},
    close() {},
    send() {},
  });
  return { protocol, messages };
}

function bytesOf(message: Message | undefined): Uint8Array {
  assert.ok(message instanceof Uint8Array, "a binary message");
  return message;
}

const ROLES: Role[] = ["server", "client"];

describe("smallBinaryAhead", () => {
  for (const role of ROLES) {
    test(`counts the small binary messages after a point (${role}'s peer)`, () => {
      const input = concat(
        peerFrame(role, Opcode.Binary, new Uint8Array(10)),
        peerFrame(role, Opcode.Text, "hi"),
        peerFrame(role, Opcode.Ping, "p"),
        peerFrame(role, Opcode.Binary, new Uint8Array(200)), // 16-bit length
        peerFrame(role, Opcode.Pong),
        peerFrame(role, Opcode.Binary, new Uint8Array(0)),
      );
      assert.equal(smallBinaryAhead(input, 0), 210);
    });

    test(`stops at a close, a fragment, a large message or a cut frame (${role}'s peer)`, () => {
      const small = peerFrame(role, Opcode.Binary, new Uint8Array(7));
      const stops = [
        peerFrame(role, Opcode.Close),
        peerFrame(role, Opcode.Binary, new Uint8Array(5), false),
        peerFrame(role, Opcode.Continuation, new Uint8Array(5)),
        peerFrame(role, Opcode.Binary, new Uint8Array(SMALL_MESSAGE)),
        peerFrame(role, Opcode.Binary, new Uint8Array(70000)), // 64-bit length
      ];
      for (const stop of stops) {
        const input = concat(small, stop, small);
        assert.equal(smallBinaryAhead(input, 0), 7, `stop ${stop[0]}`);
      }
      const whole = concat(small, small);
      for (let end = small.length; end < whole.length; end++) {
        assert.equal(smallBinaryAhead(whole.subarray(0, end), 0), 7);
      }
      // A frame with an RSV bit (an extension's) is not a plain copy.
      const rsv = small.slice();
      rsv[0] = 0xc2;
      assert.equal(smallBinaryAhead(concat(small, rsv, small), 0), 7);
    });
  }

  test("stops counting at BATCH_LIMIT", () => {
    const frame = peerFrame("client", Opcode.Binary, new Uint8Array(1000));
    const input = concatAll(Array.from({ length: 40 }, () => frame));
    const counted = smallBinaryAhead(input, 0);
    assert.ok(counted >= BATCH_LIMIT && counted < BATCH_LIMIT + 1000);
  });
});

describe("small binary messages of one chunk share a buffer", () => {
  for (const role of ROLES) {
    test(`the messages of one chunk, and no other bytes (${role})`, () => {
      const { protocol, messages } = keeping(role);
      const payloads = [1, 2, 3].map((n) => new Uint8Array(n * 10).fill(n));
      protocol.receive(concatAll([
        peerFrame(role, Opcode.Binary, payloads[0]),
        peerFrame(role, Opcode.Text, "between"),
        peerFrame(role, Opcode.Binary, payloads[1]),
        peerFrame(role, Opcode.Binary, payloads[2]),
      ]));
      assert.equal(messages[1], "between");
      const binary = [messages[0], messages[2], messages[3]].map(bytesOf);
      binary.forEach((message, i) => assert.deepEqual(message, payloads[i]));
      const buffer = binary[0]!.buffer;
      assert.ok(binary.every((message) => message.buffer === buffer));
      assert.equal(buffer.byteLength, 60, "exactly the three payloads");
    });

    test(`a message alone in its chunk gets a buffer of its own (${role})`, () => {
      const { protocol, messages } = keeping(role);
      protocol.receive(peerFrame(role, Opcode.Binary, new Uint8Array(32)));
      protocol.receive(peerFrame(role, Opcode.Binary, new Uint8Array(32)));
      const [a, b] = messages.map(bytesOf);
      assert.equal(a!.buffer.byteLength, 32);
      assert.equal(b!.buffer.byteLength, 32);
      assert.notEqual(a!.buffer, b!.buffer);
    });
  }

  test("no buffer is shared across chunks, nor grows past BATCH_LIMIT", () => {
    const { protocol, messages } = keeping("server");
    const random = prng(7);
    const payloads: Uint8Array[] = [];
    const chunkOf: number[] = [];
    for (let chunk = 0; chunk < 6; chunk++) {
      const frames: Uint8Array[] = [];
      for (let i = 0; i < 300; i++) {
        const payload = randomBytes(random, randomInt(random, 0, 200));
        payloads.push(payload);
        chunkOf.push(chunk);
        frames.push(peerFrame("server", Opcode.Binary, payload));
      }
      protocol.receive(concatAll(frames));
    }
    assert.equal(messages.length, payloads.length);
    const chunksOfBuffer = new Map<ArrayBufferLike, Set<number>>();
    messages.map(bytesOf).forEach((message, i) => {
      assert.deepEqual(message, payloads[i], `message ${i}`);
      assert.ok(message.buffer.byteLength <= BATCH_LIMIT);
      const seen = chunksOfBuffer.get(message.buffer) ?? new Set();
      seen.add(chunkOf[i]!);
      chunksOfBuffer.set(message.buffer, seen);
    });
    for (const seen of chunksOfBuffer.values()) assert.equal(seen.size, 1);
    assert.ok(chunksOfBuffer.size < 60, `${chunksOfBuffer.size} buffers`);
  });

  test("a message kept stays right while later ones fill its buffer", () => {
    const { protocol, messages } = keeping("client");
    const frames = Array.from(
      { length: 50 },
      (_, i) => peerFrame("client", Opcode.Binary, new Uint8Array(20).fill(i)),
    );
    protocol.receive(concatAll(frames));
    messages.map(bytesOf).forEach((message, i) =>
      assert.deepEqual(message, new Uint8Array(20).fill(i))
    );
  });

  test("Deno's transports' buffers share, Bun's and the default do not", () => {
    assert.equal(denoTransports.payloadBuffers?.shareSmallBuffers, true);
    assert.equal(bunTransports.payloadBuffers?.shareSmallBuffers, false);
    assert.equal(plainPayloadBuffers.shareSmallBuffers, false);
    assert.equal(new PayloadBuffers().shareSmallBuffers, false);
  });

  test("with shareSmallBuffers off, each message has its own buffer", () => {
    const buffers = new PayloadBuffers({ shareSmallBuffers: false });
    const { protocol, messages } = keeping("server", buffers);
    protocol.receive(concatAll([
      peerFrame("server", Opcode.Binary, new Uint8Array([1])),
      peerFrame("server", Opcode.Binary, new Uint8Array([2, 3])),
    ]));
    const [a, b] = messages.map(bytesOf);
    assert.deepEqual([a!.buffer.byteLength, b!.buffer.byteLength], [1, 2]);
  });

  test("a receive nested in a handler keeps the two chunks apart", () => {
    const inner = keeping("server");
    const outerMessages: Uint8Array[] = [];
    const innerChunk = concatAll([
      peerFrame("server", Opcode.Binary, new Uint8Array([9, 9])),
      peerFrame("server", Opcode.Binary, new Uint8Array([8, 8])),
    ]);
    const outer = new Protocol({ role: "server", buffers: sharing() }, {
      message(data) {
        outerMessages.push(bytesOf(data));
        if (outerMessages.length === 1) inner.protocol.receive(innerChunk);
      },
      ping() {},
      pong() {},
      close() {},
      send() {},
    });
    outer.receive(
      concatAll(
        [1, 2, 3].map((n) =>
          peerFrame("server", Opcode.Binary, new Uint8Array([n, n, n]))
        ),
      ),
    );
    assert.deepEqual(outerMessages.map((m) => [...m]), [
      [1, 1, 1],
      [2, 2, 2],
      [3, 3, 3],
    ]);
    assert.deepEqual(inner.messages.map((m) => [...bytesOf(m)]), [
      [9, 9],
      [8, 8],
    ]);
    const innerBuffers = new Set(inner.messages.map((m) => bytesOf(m).buffer));
    for (const message of outerMessages) {
      assert.ok(!innerBuffers.has(message.buffer), "shared across chunks");
    }
  });

  test("a violation after counted frames fails with 1002, earlier messages intact", () => {
    const { protocol, messages } = keeping("server");
    const good = peerFrame("server", Opcode.Binary, new Uint8Array(32).fill(5));
    // Unmasked, from a client: counted ahead (a header is all it reads),
    // refused by the decoder.
    const unmasked = peerFrame("client", Opcode.Binary, new Uint8Array(32));
    assert.throws(
      () => protocol.receive(concat(good, unmasked)),
      (error: { closeCode?: number }) => error.closeCode === 1002,
    );
    assert.deepEqual(bytesOf(messages[0]), new Uint8Array(32).fill(5));
    assert.equal(messages.length, 1);
  });
});

describe("sharing changes nothing a protocol reports", () => {
  for (const role of ROLES) {
    test(`mixed frames, every chunking, shared or not (${role})`, () => {
      const random = prng(role === "server" ? 3 : 4);
      const frames: Uint8Array[] = [];
      for (let i = 0; i < 24; i++) {
        const kind = randomInt(random, 0, 5);
        const payload = randomBytes(
          random,
          kind === 4 ? randomInt(random, 4096, 5000) : randomInt(random, 0, 40),
        );
        if (kind === 0) {
          frames.push(peerFrame(role, Opcode.Text, "t".repeat(i)));
        } else if (kind === 1) frames.push(peerFrame(role, Opcode.Ping, "p"));
        else if (kind === 2) {
          frames.push(peerFrame(role, Opcode.Binary, payload, false));
          frames.push(peerFrame(role, Opcode.Continuation, payload));
        } else frames.push(peerFrame(role, Opcode.Binary, payload));
      }
      frames.push(peerFrame(role, Opcode.Close));
      const input = concatAll(frames);
      const shared = receiveEveryWay(role, input, { buffers: sharing() });
      const own = receiveEveryWay(role, input);
      assert.deepEqual(shared.log, own.log);
      assert.equal(shared.state, own.state);
    });
  }
});

describe("small frames are carved from a shared block", () => {
  test("smallFrame: one block, regions that never overlap, a new block when full", () => {
    const buffers = sharing();
    const frames = Array.from({ length: 100 }, (_, i) => {
      const frame = buffers.smallFrame(1 + (i * 37) % (SMALL_FRAME - 1));
      frame.fill(i);
      return frame;
    });
    frames.forEach((frame, i) =>
      assert.ok(frame.every((byte) => byte === i), `frame ${i} overwritten`)
    );
    assert.ok(new Set(frames.map((f) => f.buffer)).size > 1, "one block only");
    assert.equal(frames[0]!.buffer, frames[1]!.buffer);
  });

  test("without shareSmallBuffers, each frame has a buffer of its own", () => {
    const buffers = new PayloadBuffers({ shareSmallBuffers: false });
    const a = buffers.smallFrame(10);
    const b = buffers.smallFrame(10);
    assert.notEqual(a.buffer, b.buffer);
    assert.equal(a.buffer.byteLength, 10);
  });

  for (const role of ["server", "client"] as const) {
    test(`two protocols' frames, all kept, stay right (${role})`, () => {
      const buffers = sharing();
      const sent: Uint8Array[][] = [[], []];
      const protocols = [0, 1].map((n) =>
        new Protocol({ role, buffers, maskSource: () => OUR_KEY.slice() }, {
          message() {},
          ping() {},
          pong() {},
          close() {},
          send: (bytes) => void sent[n]!.push(bytes),
        })
      );
      const expected: Uint8Array[][] = [[], []];
      const random = prng(11);
      for (let i = 0; i < 400; i++) {
        const n = i & 1;
        const size = randomInt(random, 0, 300);
        if (random() < 0.5) {
          const payload = randomBytes(random, size);
          protocols[n]!.sendMessage(payload);
          expected[n]!.push(ourFrame(role, Opcode.Binary, payload));
        } else {
          const text = "x".repeat(size);
          protocols[n]!.sendMessage(text);
          expected[n]!.push(ourFrame(role, Opcode.Text, text));
        }
      }
      protocols[0]!.ping(new Uint8Array([1, 2]));
      expected[0]!.push(ourFrame(role, Opcode.Ping, new Uint8Array([1, 2])));
      for (const n of [0, 1]) {
        assert.equal(sent[n]!.length, expected[n]!.length);
        sent[n]!.forEach((frame, i) =>
          assert.deepEqual(frame, expected[n]![i], `protocol ${n}, frame ${i}`)
        );
      }
      assert.ok(
        new Set(sent[0]!.map((f) => f.buffer)).size < 100,
        "frames share blocks",
      );
    });
  }
});
