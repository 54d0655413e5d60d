/**
 * The stream codec: frame streams round-trip every boundary length split at
 * every offset; the message streams keep the protocol's rules (1002, 1007
 * mid-fragment, 1009), answer pings, echo closes, and take bytes only as
 * fast as they are read; and one connection over real sockets, our own
 * `serve()` against a client built from these streams and the handshake
 * module.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  FrameDecoderStream,
  type FrameDecoderStreamOptions,
  FrameEncoderStream,
  MessageStreams,
} from "../src/codec_streams.ts";
import { ConnectionClosedError, ProtocolError } from "../src/errors.ts";
import { encodeFrame, type Frame, Opcode } from "../src/frame.ts";
import { generateKey } from "../src/handshake.ts";
import {
  buildClientRequest,
  validateServerResponse,
} from "../src/handshake_client.ts";
import { HeadParser, parseResponseHead } from "../src/http1_parse.ts";
import { writeRequestHead } from "../src/http1_write.ts";
import type { Message, Role } from "../src/protocol.ts";
import { currentRuntime, runtimeName } from "../src/runtime.ts";
import { serve } from "../src/server.ts";
import {
  chunkings,
  concatAll,
  cut,
  hex,
  OUR_KEY,
  ourFrame,
  peerFrame,
  splitOffsets,
} from "./_frames.ts";
import { bounded, sleep, within } from "./_wait.ts";

const encoder = new TextEncoder();
const BOUNDARY_LENGTHS = [0, 125, 126, 127, 65535, 65536];

/** `length` bytes of a recognisable pattern. */
function pattern(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 7 + (i >>> 8)) & 0xff;
  return out;
}

/** Everything a stream gives, with its error (null when it ended cleanly). */
async function drain<T>(
  readable: ReadableStream<T>,
): Promise<{ chunks: T[]; error: unknown }> {
  const chunks: T[] = [];
  const reader = readable.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return { chunks, error: null };
      chunks.push(value);
    }
  } catch (error) {
    return { chunks, error };
  }
}

/** Encodes `frames` through a {@link FrameEncoderStream} of `role`. */
async function encodeAll(frames: Frame[], role: Role): Promise<Uint8Array> {
  const { chunks, error } = await drain(
    ReadableStream.from(frames).pipeThrough(
      new FrameEncoderStream({ role, maskSource: () => OUR_KEY.slice() }),
    ),
  );
  assert.equal(error, null);
  assert.equal(chunks.length, frames.length, "one chunk per frame");
  return concatAll(chunks);
}

/** Decodes the chunks through a {@link FrameDecoderStream}. */
function decodeAll(
  chunks: Uint8Array[],
  options: FrameDecoderStreamOptions,
): Promise<{ chunks: Frame[]; error: unknown }> {
  return drain(
    ReadableStream.from(chunks).pipeThrough(new FrameDecoderStream(options)),
  );
}

/** The peer of `role`. */
const other = (role: Role): Role => role === "client" ? "server" : "client";

const frame = (
  opcode: number,
  payload: Uint8Array,
  fin = true,
): Frame => ({ fin, rsv: 0, opcode, payload });

/**
 * Asserts that `promise` rejects as a connection's iteration does after a
 * protocol failure: a ConnectionClosedError carrying `closeCode`, its cause
 * the ProtocolError.
 */
async function rejectsWith(
  promise: Promise<unknown>,
  closeCode: number,
): Promise<void> {
  await assert.rejects(
    within(2_000, promise),
    (error) =>
      error instanceof ConnectionClosedError &&
      error.closeCode === closeCode && !error.wasClean &&
      error.cause instanceof ProtocolError &&
      error.cause.closeCode === closeCode,
  );
}

/**
 * A {@link MessageStreams} of `role` with a reader on each readable and a
 * writer on each writable: `peer` writes the peer's bytes, `sent` reads ours.
 */
function streams(role: Role, options: { maxMessageSize?: number } = {}) {
  const ws = new MessageStreams({
    role,
    maskSource: () => OUR_KEY.slice(),
    ...options,
  });
  return {
    ws,
    peer: ws.incoming.writable.getWriter(),
    messages: ws.incoming.readable.getReader(),
    app: ws.outgoing.writable.getWriter(),
    sent: ws.outgoing.readable.getReader(),
  };
}

/** The next chunk, asserting there is one. */
async function next<T>(reader: ReadableStreamDefaultReader<T>): Promise<T> {
  const { value, done } = await within(2_000, reader.read());
  assert.equal(done, false, "the stream ended instead");
  return value!;
}

/** Asserts that the reader's stream has ended cleanly. */
async function ended(reader: ReadableStreamDefaultReader<unknown>) {
  assert.deepEqual(await within(2_000, reader.read()), {
    value: undefined,
    done: true,
  });
}

/** A readable of endless chunks that counts its pulls, until `stop` is set. */
function counted(chunk: () => Uint8Array) {
  const source = { pulls: 0, stop: false };
  const readable = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (source.stop) return controller.close();
      source.pulls++;
      controller.enqueue(chunk());
    },
  }, { highWaterMark: 0 });
  return { source, readable };
}

/** Settles the streams' promise chains and a few macrotasks. */
const settle = () => sleep(20);

describe("FrameEncoderStream and FrameDecoderStream", () => {
  for (const role of ["client", "server"] as const) {
    test(
      `a ${role}'s frames of every boundary length round-trip, split at every offset`,
      async () => {
        for (const length of BOUNDARY_LENGTHS) {
          const frames = [frame(Opcode.Binary, pattern(length))];
          const bytes = await encodeAll(frames, role);
          assert.equal(
            bytes[1]! >= 0x80,
            role === "client",
            "masked by a client",
          );
          const ways = length < 1000 ? chunkings(bytes.length) : [
            { name: "whole", cuts: [] },
            ...splitOffsets(bytes.length).map((p) => ({
              name: `split at ${p}`,
              cuts: [p],
            })),
          ];
          for (const { name, cuts } of ways) {
            const chunks = cut(bytes, cuts).map(({ chunk }) => chunk);
            const { chunks: decoded, error } = await decodeAll(chunks, {
              role: other(role),
            });
            assert.equal(error, null, `${length} bytes, ${name}`);
            assert.deepEqual(decoded, frames, `${length} bytes, ${name}`);
          }
        }
      },
    );
  }

  test("a run of frames of every kind round-trips at every split and byte by byte", async () => {
    const frames = [
      frame(Opcode.Text, encoder.encode("Hel"), false),
      frame(Opcode.Ping, encoder.encode("ping")),
      frame(Opcode.Continuation, encoder.encode("lo")),
      ...[0, 125, 126, 127].map((n) => frame(Opcode.Binary, pattern(n))),
      { fin: true, rsv: 4, opcode: Opcode.Binary, payload: pattern(3) },
      frame(Opcode.Close, hex("03 e8")),
    ];
    const bytes = await encodeAll(frames, "client");
    for (const { name, cuts } of chunkings(bytes.length)) {
      const chunks = cut(bytes, cuts).map(({ chunk }) => chunk);
      const result = await decodeAll(chunks, { role: "server", allowedRsv: 4 });
      assert.equal(result.error, null, name);
      assert.deepEqual(result.chunks, frames, name);
    }
  });

  test("FrameEncoderStream writes the RFC's masked Hello, and a server's frames unmasked", async () => {
    const hello = frame(Opcode.Text, encoder.encode("Hello"));
    assert.deepEqual(
      await encodeAll([hello], "client"),
      hex("81 85 37 fa 21 3d 7f 9f 4d 51 58"),
    );
    assert.deepEqual(
      await encodeAll([hello], "server"),
      hex("81 05 48 65 6c 6c 6f"),
    );
  });

  test("FrameDecoderStream fails with 1002 on masking wrong for its role", async () => {
    const unmasked = encodeFrame(frame(Opcode.Text, encoder.encode("hi")));
    const masked = encodeFrame(
      frame(Opcode.Text, encoder.encode("hi")),
      OUR_KEY,
    );
    for (
      const [role, bytes] of [["server", unmasked], ["client", masked]] as const
    ) {
      const { chunks, error } = await decodeAll([bytes.slice()], { role });
      assert.deepEqual(chunks, []);
      assert.ok(error instanceof ProtocolError, `${role}: ${error}`);
      assert.equal(error.closeCode, 1002);
    }
  });

  test("FrameDecoderStream fails with 1009 on the header of a frame over maxPayloadSize", async () => {
    // Only the header: the limit is enforced before any payload arrives.
    const header = encodeFrame(frame(Opcode.Binary, pattern(11))).subarray(
      0,
      2,
    );
    const { error } = await decodeAll([header.slice()], {
      role: "client",
      maxPayloadSize: 10,
    });
    assert.ok(error instanceof ProtocolError);
    assert.equal(error.closeCode, 1009);
    const fits = await decodeAll([
      encodeFrame(frame(Opcode.Binary, pattern(10))),
    ], {
      role: "client",
      maxPayloadSize: 10,
    });
    assert.equal(fits.error, null);
  });

  test("FrameDecoderStream fails with 1006 when the bytes end inside a frame", async () => {
    const bytes = encodeFrame(frame(Opcode.Binary, pattern(5)));
    const { chunks, error } = await decodeAll([bytes.subarray(0, 4)], {
      role: "client",
    });
    assert.deepEqual(chunks, []);
    assert.ok(error instanceof ConnectionClosedError);
    assert.equal(error.closeCode, 1006);
  });

  test("the frame streams refuse bad arguments", async () => {
    assert.throws(
      () => new FrameDecoderStream({ role: "Server" as Role }),
      TypeError,
    );
    assert.throws(
      () => new FrameDecoderStream({ role: "server", maxPayloadSize: 0 }),
      RangeError,
    );
    assert.throws(
      () => new FrameEncoderStream({ role: "client", maskSource: 4 as never }),
      TypeError,
    );
    for (
      const [bad, type] of [
        [{ ...frame(16, pattern(1)) }, RangeError],
        [{ ...frame(1, pattern(1)), rsv: 8 }, RangeError],
        [{ ...frame(1, pattern(1)), payload: "x" }, TypeError],
      ] as const
    ) {
      const { error } = await drain(
        ReadableStream.from([bad as Frame]).pipeThrough(
          new FrameEncoderStream({ role: "server" }),
        ),
      );
      assert.ok(error instanceof type, String(error));
    }
    const shortKey = await drain(
      ReadableStream.from([frame(1, pattern(1))]).pipeThrough(
        new FrameEncoderStream({
          role: "client",
          maskSource: () => new Uint8Array(3),
        }),
      ),
    );
    assert.ok(shortKey.error instanceof RangeError);
  });

  test(
    "FrameDecoderStream stops pulling its source while its reader does not read",
    bounded(async () => {
      const one = encodeFrame(frame(Opcode.Binary, pattern(4)));
      const { source, readable } = counted(() => one.slice());
      const frames = readable.pipeThrough(
        new FrameDecoderStream({ role: "client" }),
      ).getReader();
      await settle();
      const stalled = source.pulls;
      assert.ok(stalled <= 4, `pulled ${stalled} chunks with no reader`);
      await settle();
      assert.equal(source.pulls, stalled, "went on pulling");
      await next(frames);
      await settle();
      assert.ok(source.pulls <= stalled + 2, "one read, a bounded pull");
      await frames.cancel();
    }),
  );
});

describe("MessageStreams", () => {
  test("fails with 1002 on an unmasked frame to a server, and sends the close frame", async () => {
    const { ws, peer, messages, sent } = streams("server");
    void peer.write(ourFrame("server", Opcode.Text, "hi")); // unmasked
    await rejectsWith(messages.read(), 1002);
    assert.deepEqual(await next(sent), hex("88 02 03 ea"));
    await ended(sent);
    assert.deepEqual(await ws.closed, {
      closeCode: 1002,
      reason: "Unmasked frame from a client",
      wasClean: false,
    });
  });

  test("fails with 1007 on bad UTF-8 in a first fragment, before the message ends", async () => {
    const { ws, peer, messages, sent } = streams("client");
    // "κ" then 0xff, in a text fragment with more to come (fin clear).
    void peer.write(peerFrame("client", Opcode.Text, hex("ce ba ff"), false));
    await rejectsWith(messages.read(), 1007);
    assert.deepEqual(
      await next(sent),
      encodeFrame(frame(Opcode.Close, hex("03 ef")), OUR_KEY),
    );
    assert.equal((await ws.closed).closeCode, 1007);
  });

  test("fails with 1007 on bad UTF-8 in a continuation, split from its start", async () => {
    const { peer, messages } = streams("server");
    void peer.write(peerFrame("server", Opcode.Text, "ok", false));
    // The first byte of a 3-byte sequence, then a byte that cannot follow it.
    const bad = peerFrame("server", Opcode.Continuation, hex("e2 28"), false);
    void peer.write(bad.subarray(0, bad.length - 1));
    void peer.write(bad.subarray(bad.length - 1));
    await rejectsWith(messages.read(), 1007);
  });

  test("fails with 1009 as soon as a frame's header takes a message over maxMessageSize", async () => {
    const { ws, peer, messages, sent } = streams("server", {
      maxMessageSize: 10,
    });
    void peer.write(peerFrame("server", Opcode.Binary, pattern(6), false));
    // The continuation's header alone: 6 + 5 > 10.
    void peer.write(
      peerFrame("server", Opcode.Continuation, pattern(5)).subarray(0, 6),
    );
    await rejectsWith(messages.read(), 1009);
    assert.deepEqual(await next(sent), hex("88 02 03 f1"));
    assert.equal((await ws.closed).closeCode, 1009);
  });

  test("messages that came before a violation are read before the error", async () => {
    const { peer, messages } = streams("server");
    void peer.write(
      concatAll([
        peerFrame("server", Opcode.Text, "first"),
        peerFrame("server", Opcode.Binary, hex("01 02")),
        peerFrame("server", 3), // a reserved opcode
      ]),
    );
    assert.equal(await next(messages), "first");
    assert.deepEqual(await next(messages), hex("01 02"));
    await rejectsWith(messages.read(), 1002);
  });

  for (const role of ["client", "server"] as const) {
    test(`a ${role} answers a ping between fragments with a pong, in order`, async () => {
      const { peer, messages, app, sent } = streams(role);
      void peer.write(peerFrame(role, Opcode.Text, "Hel", false));
      void peer.write(peerFrame(role, Opcode.Ping, "are you there"));
      assert.deepEqual(
        await next(sent),
        ourFrame(role, Opcode.Pong, "are you there"),
      );
      void peer.write(peerFrame(role, Opcode.Continuation, "lo"));
      assert.equal(await next(messages), "Hello");
      void app.write(new Uint8Array([1, 2, 3]));
      assert.deepEqual(
        await next(sent),
        ourFrame(role, Opcode.Binary, new Uint8Array([1, 2, 3])),
      );
    });

    test(`a ${role} echoes the peer's close, and both streams end`, async () => {
      const { ws, peer, messages, app, sent } = streams(role);
      void peer.write(
        peerFrame(
          role,
          Opcode.Close,
          concatAll([hex("03 e9"), encoder.encode("bye")]),
        ),
      );
      assert.deepEqual(
        await next(sent),
        ourFrame(role, Opcode.Close, hex("03 e9")),
      );
      await ended(sent);
      await ended(messages);
      assert.deepEqual(await ws.closed, {
        closeCode: 1001,
        reason: "bye",
        wasClean: true,
      });
      await assert.rejects(
        app.write("too late"),
        (error) => error instanceof ConnectionClosedError,
      );
      // What the peer still sends is taken and dropped.
      await within(2_000, peer.write(peerFrame(role, Opcode.Text, "after")));
      await within(2_000, peer.close());
    });
  }

  test("closing the writable sends a close frame after the messages written before it", async () => {
    const { ws, peer, messages, app, sent } = streams("server");
    void app.write("last");
    void app.close();
    assert.deepEqual(await next(sent), ourFrame("server", Opcode.Text, "last"));
    assert.deepEqual(
      await next(sent),
      ourFrame(
        "server",
        Opcode.Close,
        concatAll([hex("03 e8"), encoder.encode("Normal closure")]),
      ),
    );
    await ended(sent);
    // Messages still come until the peer's close frame.
    void peer.write(peerFrame("server", Opcode.Text, "in flight"));
    assert.equal(await next(messages), "in flight");
    void peer.write(peerFrame("server", Opcode.Close, hex("03 e8")));
    await ended(messages);
    assert.deepEqual(await ws.closed, {
      closeCode: 1000,
      reason: "",
      wasClean: true,
    });
  });

  test("close() sends its code and reason at once and refuses a code that may not be sent", async () => {
    const { ws, sent } = streams("server");
    assert.throws(() => ws.close(1006), RangeError);
    ws.close(4000, "bye");
    assert.deepEqual(
      await next(sent),
      ourFrame(
        "server",
        Opcode.Close,
        concatAll([hex("0f a0"), encoder.encode("bye")]),
      ),
    );
    await ended(sent);
    ws.close(); // a second close does nothing
  });

  test("cancelling the messages closes with 1000 and drops messages until the peer's close", async () => {
    const { ws, peer, messages, sent } = streams("client");
    await messages.cancel();
    assert.deepEqual(
      await next(sent),
      ourFrame(
        "client",
        Opcode.Close,
        concatAll([hex("03 e8"), encoder.encode("Normal closure")]),
      ),
    );
    await within(
      2_000,
      peer.write(peerFrame("client", Opcode.Text, "dropped")),
    );
    await within(
      2_000,
      peer.write(peerFrame("client", Opcode.Close, hex("03 e8"))),
    );
    assert.equal((await ws.closed).wasClean, true);
  });

  test("the bytes ending without a close handshake error the messages with 1006", async () => {
    const { ws, peer, messages, sent } = streams("server");
    void peer.write(peerFrame("server", Opcode.Text, "partial", false));
    void peer.close();
    await assert.rejects(
      within(2_000, messages.read()),
      (error) =>
        error instanceof ConnectionClosedError && error.closeCode === 1006,
    );
    await ended(sent);
    assert.deepEqual(await ws.closed, {
      closeCode: 1006,
      reason: "",
      wasClean: false,
    });
  });

  test("head: bytes read past the handshake are decoded first", async () => {
    const ws = new MessageStreams({
      role: "client",
      head: concatAll([
        peerFrame("client", Opcode.Text, "one"),
        peerFrame("client", Opcode.Text, "tw", false),
      ]),
    });
    const writer = ws.incoming.writable.getWriter();
    void writer.write(peerFrame("client", Opcode.Continuation, "o"));
    const messages = ws.incoming.readable.getReader();
    assert.equal(await next(messages), "one");
    assert.equal(await next(messages), "two");
  });

  test("writes of anything but a string or bytes are refused", async () => {
    const { app } = streams("server");
    await assert.rejects(app.write(42 as unknown as Message), TypeError);
    assert.throws(
      () => new MessageStreams({ role: "server", head: [] as never }),
      TypeError,
    );
    assert.throws(
      () => new MessageStreams({ role: "server", maxMessageSize: -1 }),
      RangeError,
    );
    assert.throws(
      () => new MessageStreams({ role: "peer" as Role }),
      TypeError,
    );
  });

  test(
    "incoming stops pulling its source once its queue is full and nobody reads",
    bounded(async () => {
      const one = peerFrame("server", Opcode.Text, "tick");
      const { source, readable } = counted(() => one.slice());
      const ws = new MessageStreams({ role: "server", highWaterMark: 2 });
      const piped = readable.pipeTo(ws.incoming.writable);
      const messages = ws.incoming.readable.getReader();
      await settle();
      const stalled = source.pulls;
      assert.ok(stalled <= 6, `pulled ${stalled} chunks with no reader`);
      await settle();
      assert.equal(source.pulls, stalled, "went on pulling");
      assert.equal(await next(messages), "tick");
      await settle();
      assert.ok(source.pulls <= stalled + 2, "one read, a bounded pull");
      source.stop = true;
      await messages.cancel();
      await piped;
      await drain(ws.outgoing.readable);
    }),
  );

  test(
    "incoming stops pulling while the pongs it owes are not taken",
    bounded(async () => {
      const ping = peerFrame("server", Opcode.Ping, pattern(125));
      const { source, readable } = counted(() => ping.slice());
      const ws = new MessageStreams({ role: "server" });
      const piped = readable.pipeTo(ws.incoming.writable);
      await settle();
      // 64 KiB of pongs fit; then reading stops.
      const stalled = source.pulls;
      assert.ok(stalled <= 64 * 1024 / 127 + 4, `pulled ${stalled} pings`);
      await settle();
      assert.equal(source.pulls, stalled, "went on pulling");
      source.stop = true;
      const pongs = await drain(ws.outgoing.readable);
      assert.equal(pongs.chunks.length, stalled, "a pong for every ping");
      await piped;
    }),
  );

  test(
    "a write waits while 64 KiB are queued for the peer",
    bounded(async () => {
      const { app, sent } = streams("server");
      let written = 0;
      for (let i = 0; i < 4; i++) {
        void app.write(new Uint8Array(32 * 1024)).then(() => written++);
      }
      await settle();
      assert.ok(written <= 2, `${written} writes of 32 KiB done`);
      for (let i = 0; i < 4; i++) await next(sent);
      await settle();
      assert.equal(written, 4);
    }),
  );
});

describe(`MessageStreams over ${runtimeName()} sockets, against serve()`, () => {
  test(
    "a client from the handshake module and MessageStreams talks to our server",
    bounded(async () => {
      const server = await serve(
        { hostname: "127.0.0.1", port: 0 },
        async (connection) => {
          try {
            for await (const message of connection.readable) {
              await connection.send(message);
            }
          } catch {
            // ended uncleanly: nothing to echo to
          }
        },
      );
      try {
        const transport = await currentRuntime().connect({
          hostname: "127.0.0.1",
          port: server.addr.port,
        });
        // The opening handshake, by hand.
        const key = generateKey();
        const url = new URL(`ws://127.0.0.1:${server.addr.port}/codec`);
        const writer = transport.writable.getWriter();
        await writer.write(writeRequestHead(buildClientRequest({ url, key })));
        writer.releaseLock();
        const reader = transport.readable.getReader();
        const parser = new HeadParser();
        let response: { head: Uint8Array; rest: Uint8Array } | null = null;
        while (response === null) {
          const { value, done } = await reader.read();
          assert.equal(done, false, "the server closed during the handshake");
          response = parser.push(value!);
        }
        reader.releaseLock();
        assert.deepEqual(
          await validateServerResponse(parseResponseHead(response.head), {
            key,
            protocols: [],
            extensions: [],
          }),
          { protocol: "", extensions: [] },
        );

        // Then messages, through the streams.
        const ws = new MessageStreams({ role: "client", head: response.rest });
        const received = transport.readable.pipeTo(ws.incoming.writable);
        const sent = ws.outgoing.readable.pipeTo(transport.writable);
        const messages = ws.incoming.readable.getReader();
        const app = ws.outgoing.writable.getWriter();
        const big = pattern(70_000);
        await app.write("hello");
        await app.write(big);
        assert.equal(await next(messages), "hello");
        assert.deepEqual(await next(messages), big);
        await app.close();
        await ended(messages);
        assert.deepEqual(await ws.closed, {
          closeCode: 1000,
          reason: "",
          wasClean: true,
        });
        await Promise.all([sent, received]);
      } finally {
        await server.close();
      }
    }, 10_000),
  );
});
