/**
 * Tests of `WebSocketConnection` and `takeover` over an in-memory pipe: two
 * connections talking to each other, or one connection and a {@link RawPeer}
 * that writes hand-made frames and reads the raw bytes sent.
 *
 *     deno test -A tests/connection_test.ts
 *     bun test ./tests/connection_test.ts
 *
 * `deno task test` runs it with Deno's sanitizers on (tests/_node_test_on_deno.ts);
 * for a plain `deno test` or `bun test`, and in any case, every test ends
 * what it started itself: both ends' `closed` settle, timers are cleared, and
 * each test is bounded in time.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type {
  CloseInfo,
  Sendable,
  WebSocketConnection,
} from "../src/connection.ts";
import { OpenConnections } from "../src/open_connections.ts";
import { takeover, type TakeoverOptions } from "../src/takeover.ts";
import type { ByteChannel } from "../src/byte_channel.ts";
import { ConnectionClosedError, ProtocolError } from "../src/errors.ts";
import { runScript } from "./reliability/_child.ts";
import { frameHeaderSize, Opcode } from "../src/frame.ts";
import type { Message, Role } from "../src/protocol.ts";
import {
  closeOf,
  pipe,
  type PipeOptions,
  type RawFrame,
  RawPeer,
} from "./_pipe.ts";
import { assertClose } from "./_close.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const ROLES: Role[] = ["client", "server"];
const encoder = new TextEncoder();
const decoder = new TextDecoder();

type Options = Partial<TakeoverOptions>;

// ---- time ----

const sleep = (ms: number) =>
  new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Fails after `ms` instead of hanging; the timer never outlives the call. */
async function within<T>(
  ms: number,
  promise: Promise<T>,
  what = "the operation",
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} took over ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A test body bounded in time (each test is well under 5 s). */
function bounded(body: () => Promise<void>, ms = 4_000): () => Promise<void> {
  return () => within(ms, body(), "the test");
}

/** Whether `promise` settles (either way) within `ms`. */
async function settlesWithin(
  promise: Promise<unknown>,
  ms: number,
): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- bytes ----

function bytes(...values: number[]): Uint8Array<ArrayBuffer> {
  return new Uint8Array(values);
}

/** `size` bytes numbered from `seed`, so that a shifted or mixed-up copy shows. */
function pattern(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (seed + i * 31 + (i >>> 8)) & 0xff;
  return out;
}

/** Byte equality without a megabyte diff in the failure message. */
function assertSameBytes(actual: unknown, expected: Uint8Array, what = "") {
  assert.ok(
    actual instanceof Uint8Array,
    `${what} is not a Uint8Array: ${actual}`,
  );
  assert.equal(actual.length, expected.length, `${what} length`);
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) {
      assert.fail(
        `${what} differs at byte ${i}: ${actual[i]} ≠ ${expected[i]}`,
      );
    }
  }
}

function assertMessage(actual: unknown, expected: Message, what = "") {
  if (typeof expected === "string") assert.equal(actual, expected, what);
  else assertSameBytes(actual, expected, what);
}

const text = (frame: RawFrame) => decoder.decode(frame.payload);

/** What a frame is, compactly: `[opcode, fin, payload as text]`. */
const shape = (frame: RawFrame) => [frame.opcode, frame.fin, text(frame)];

// ---- ends ----

/** Two connections over a pipe; the one in role `role` is `me`. */
function connected(
  role: Role,
  mine: Options = {},
  theirs: Options = {},
  pipeOptions: PipeOptions = {},
): { me: WebSocketConnection; other: WebSocketConnection } {
  const [a, b] = pipe(pipeOptions);
  const me = takeover(a, { role, keepalive: false, ...mine });
  const other = takeover(b, {
    role: role === "client" ? "server" : "client",
    keepalive: false,
    ...theirs,
  });
  return { me, other };
}

/** A connection in role `role` and a raw peer in the other role. */
function withRawPeer(
  role: Role,
  options: Options = {},
  pipeOptions: PipeOptions = {},
): { conn: WebSocketConnection; peer: RawPeer } {
  const [a, b] = pipe(pipeOptions);
  const conn = takeover(a, { role, keepalive: false, ...options });
  const peer = new RawPeer(b, role === "client" ? "server" : "client");
  return { conn, peer };
}

/** Closes `me` and waits for both ends to be closed. */
async function closeBoth(
  me: WebSocketConnection,
  other: WebSocketConnection,
): Promise<[CloseInfo, CloseInfo]> {
  return await within(2_000, Promise.all([me.close(), other.closed]), "close");
}

/**
 * Plays a well-behaved raw peer through a close handshake: reads up to the
 * connection's close frame, echoes its code, ends its side, reads to the end.
 * Returns the frames read before the close frame and the close frame.
 */
async function answerClose(
  conn: WebSocketConnection,
  peer: RawPeer,
): Promise<{ before: RawFrame[]; close: RawFrame; info: CloseInfo }> {
  const before: RawFrame[] = [];
  let frame = await peer.expect();
  while (frame.opcode !== Opcode.Close) {
    before.push(frame);
    frame = await peer.expect();
  }
  const { code } = closeOf(frame);
  await peer.sendClose(code === 1005 ? undefined : code);
  await peer.end();
  await peer.rest();
  const info = await within(2_000, conn.closed, "closed");
  return { before, close: frame, info };
}

/** Closes a connection facing a raw peer, cleanly. */
async function shutdown(
  conn: WebSocketConnection,
  peer: RawPeer,
): Promise<CloseInfo> {
  void conn.close();
  return (await answerClose(conn, peer)).info;
}

/** Reads `count` messages. */
async function readMessages(
  conn: WebSocketConnection,
  count: number,
): Promise<Message[]> {
  const reader = conn.readable.getReader();
  const messages: Message[] = [];
  try {
    while (messages.length < count) {
      const { value, done } = await reader.read();
      if (done) break;
      messages.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return messages;
}

/**
 * A connection of `role` over a stub channel: the members `channel` lacks
 * are filled in (reads that never end, writes taken at once), in place, so
 * the test can still change the object. Keepalive off, closeTimeout 100 ms.
 */
function overStubChannel(
  role: Role,
  channel: Partial<ByteChannel>,
): WebSocketConnection {
  const stub: ByteChannel = {
    read: () => new Promise<never>(() => {}),
    readTo() {},
    write() {},
    bufferedAmount: 0,
    handedOff: false,
    drained: () => Promise.resolve(),
    closeWrite: () => Promise.resolve(),
    close() {},
    tellWriteFailures() {},
    localAddr: null,
    remoteAddr: null,
  };
  for (const [key, value] of Object.entries(stub)) {
    if (!(key in channel)) Object.assign(channel, { [key]: value });
  }
  const { readable, writable } = new TransformStream<Uint8Array>();
  return takeover({ readable, writable, channel: channel as ByteChannel }, {
    role,
    keepalive: false,
    closeTimeout: 100,
  });
}

/** Asserts a promise rejects with a `ConnectionClosedError` matching `pattern`. */
function closedError(pattern?: RegExp, code?: number) {
  return (error: unknown) => {
    assert.ok(
      error instanceof ConnectionClosedError,
      `not a ConnectionClosedError: ${error}`,
    );
    if (pattern) assert.match(error.message, pattern);
    if (code !== undefined) assert.equal(error.closeCode, code);
    return true;
  };
}

/** How the end that called close() sees it: its frame sent, the echo back. */
const CLOSER_1000: CloseInfo = {
  closeCode: 1000,
  reason: "",
  wasClean: true,
  sent: { closeCode: 1000, reason: "Normal closure" },
  received: { closeCode: 1000, reason: "" },
};

/** How the end that did not start the close sees a clean close(). */
const CLEAN_1000: CloseInfo = {
  closeCode: 1000,
  reason: "Normal closure",
  wasClean: true,
  sent: { closeCode: 1000, reason: "" }, // the echo
  received: { closeCode: 1000, reason: "Normal closure" },
};

// ---- messages ----

describe("WebSocketConnection.send and readable", () => {
  for (const role of ROLES) {
    test(
      `${role} sends text, Uint8Array, ArrayBuffer, DataView, empty and 1 MiB messages`,
      bounded(async () => {
        const { me, other } = connected(role);
        const backing = bytes(9, 9, 1, 2, 3, 9);
        const big = pattern(MiB, 7);
        const bigText = "é✓".repeat(MiB / 5);
        const sent: Sendable[] = [
          "héllo wörld ✓",
          bytes(1, 2, 3),
          bytes(4, 5).buffer,
          new DataView(backing.buffer, 2, 3),
          new Uint16Array([0x0201]).subarray(0, 1),
          "",
          new Uint8Array(0),
          new ArrayBuffer(0),
          big,
          bigText,
        ];
        const expected: Message[] = [
          "héllo wörld ✓",
          bytes(1, 2, 3),
          bytes(4, 5),
          bytes(1, 2, 3), // only the view's bytes
          new Uint8Array(new Uint16Array([0x0201]).buffer),
          "",
          new Uint8Array(0),
          new Uint8Array(0),
          big,
          bigText,
        ];
        const sending = (async () => {
          for (const message of sent) await me.send(message);
        })();
        const received = await readMessages(other, expected.length);
        await sending;
        assert.equal(received.length, expected.length);
        expected.forEach((want, i) =>
          assertMessage(received[i], want, `#${i}`)
        );
        assert.deepEqual(await closeBoth(me, other), [
          CLOSER_1000,
          CLEAN_1000,
        ]);
      }),
    );

    test(
      `${role} readable and the connection itself iterate with for await until a clean close`,
      bounded(async () => {
        for (const iterate of ["readable", "connection"] as const) {
          const { me, other } = connected(role);
          const sending = (async () => {
            await other.send("a");
            await other.send(bytes(1, 2));
            await other.send("c");
            await other.close({ closeCode: 4000, reason: "done" });
          })();
          const got: Message[] = [];
          const source = iterate === "readable" ? me.readable : me;
          for await (const message of source) got.push(message);
          await sending;
          assert.deepEqual(got, ["a", bytes(1, 2), "c"], iterate);
          assertClose(await me.closed, {
            closeCode: 4000,
            reason: "done",
            wasClean: true,
          });
        }
      }),
    );

    test(
      `${role} breaking out of for await over readable closes the connection`,
      bounded(async () => {
        const { me, other } = connected(role);
        await other.send("one");
        await other.send("two");
        for await (const message of me.readable) {
          assert.equal(message, "one");
          break;
        }
        assert.deepEqual(await within(1_000, other.closed), CLEAN_1000);
        assert.equal((await me.closed).closeCode, 1000);
      }),
    );

    test(
      `${role} leaving a loop closes at the end of the turn: a close asked for before then wins`,
      bounded(async () => {
        for (const iterate of ["connection", "readable"] as const) {
          const { me, other } = connected(role);
          await other.send("one");
          const source = iterate === "readable" ? me.readable : me;
          for await (const message of source) {
            assert.equal(message, "one");
            break;
          }
          assert.equal(me.state, "open", iterate);
          const info = await within(
            1_000,
            me.close({ closeCode: 4001, reason: "mine" }),
          );
          assert.deepEqual(info.sent, { closeCode: 4001, reason: "mine" });
          assert.equal((await within(1_000, other.closed)).closeCode, 4001);
        }
      }),
    );

    test(
      `${role} writable takes someReadable.pipeTo() and readable pipes to a WritableStream`,
      bounded(async () => {
        const { me, other } = connected(role);
        const got: Message[] = [];
        const sink = other.readable.pipeTo(
          new WritableStream({ write: (message) => void got.push(message) }),
        );
        const source = ReadableStream.from<Sendable>([
          "a",
          bytes(1),
          new DataView(bytes(7, 8).buffer),
          "d",
        ]);
        // Piping closes the writable at the end, which closes the connection.
        await source.pipeTo(me.writable);
        await sink;
        assert.deepEqual(got, ["a", bytes(1), bytes(7, 8), "d"]);
        assertClose(await me.closed, {
          closeCode: 1000,
          reason: "",
          wasClean: true,
        });
        assert.deepEqual(await other.closed, CLEAN_1000);
      }),
    );

    test(
      `${role} keeps the order of send() calls and writable writes interleaved`,
      bounded(async () => {
        const { me, other } = connected(role);
        const writer = me.writable.getWriter();
        // "<n>:" and some padding, so that some writes wait for the pipe.
        const label = (message: Message) =>
          typeof message === "string"
            ? `${message.slice(0, message.indexOf(":"))}/${message.length}`
            : "binary";
        // Right after takeover (the writable not even started), then again
        // once the connection has been running.
        for (const round of [0, 1]) {
          if (round === 1) await me.ping();
          const pending: Promise<void>[] = [];
          const expected: string[] = [];
          for (let i = 0; i < 60; i++) {
            const message = `${i}:${".".repeat(i % 7 === 0 ? 40_000 : i)}`;
            expected.push(message);
            pending.push(
              i % 3 === 0 ? writer.write(message) : me.send(message),
            );
          }
          const received = await readMessages(other, expected.length);
          await Promise.all(pending);
          assert.deepEqual(
            received.map(label),
            expected.map(label),
            `round ${round}`,
          );
        }
        writer.releaseLock();
        await closeBoth(me, other);
      }),
    );

    test(
      `${role} writable sends only the writes it accepts`,
      bounded(async () => {
        // Writes refused after close() are not sent.
        const first = withRawPeer(role);
        const writer = first.conn.writable.getWriter();
        const writes = [writer.write("a"), writer.write("b")];
        const closing = writer.close();
        await assert.rejects(writer.write("refused"), TypeError);
        const { before, close } = await answerClose(first.conn, first.peer);
        await Promise.all([...writes, closing]);
        assert.deepEqual(before.map(shape), [
          [Opcode.Text, true, "a"],
          [Opcode.Text, true, "b"],
        ]);
        assert.equal(closeOf(close).code, 1000);

        // abort() discards the writes still queued (not the one under way)
        // and closes with the reason's code.
        const second = withRawPeer(role);
        const aborted = second.conn.writable.getWriter();
        await aborted.write("started");
        const underWay = aborted.write("under way");
        const queued = aborted.write("queued");
        const aborting = aborted.abort({ closeCode: 4003, reason: "stop" });
        await assert.rejects(queued);
        const end = await answerClose(second.conn, second.peer);
        await Promise.all([underWay, aborting]);
        assert.deepEqual(end.before.map(text), ["started", "under way"]);
        assert.deepEqual(closeOf(end.close), { code: 4003, reason: "stop" });

        // A chunk that cannot be sent errors the writable, not the connection.
        const third = withRawPeer(role);
        const failing = third.conn.writable.getWriter();
        await assert.rejects(
          failing.write(42 as unknown as Sendable),
          TypeError,
        );
        await assert.rejects(failing.write("after"), TypeError);
        await third.conn.send("still open");
        assert.equal(text(await third.peer.expect()), "still open");
        await shutdown(third.conn, third.peer);
      }),
    );
  }

  test(
    "send() refuses what it cannot send with a TypeError, synchronously",
    bounded(async () => {
      const { me, other } = connected("client");
      for (const bad of [42, null, undefined, {}, [1, 2], Symbol("x")]) {
        assert.throws(() => me.send(bad as unknown as Sendable), TypeError);
      }
      await closeBoth(me, other);
    }),
  );
});

// ---- fragments ----

/** An async generator of `chunks`, optionally waiting on `gate` before the last. */
async function* generate<T>(
  chunks: T[],
  gate?: Promise<void>,
  onLast?: () => void,
): AsyncGenerator<T> {
  for (let i = 0; i < chunks.length; i++) {
    if (i === chunks.length - 1 && gate) {
      await gate;
      onLast?.();
    }
    yield chunks[i]!;
  }
}

describe("WebSocketConnection.send fragments", () => {
  for (const role of ROLES) {
    test(
      `${role} openMessage() sends each chunk written as a frame, the last on close()`,
      bounded(async () => {
        const { conn, peer } = withRawPeer(role);
        const text = conn.openMessage().getWriter();
        await text.write("Hel");
        await text.write("lo");
        await text.write(" world");
        const closing = text.close();
        const binary = conn.openMessage({ type: "binary" }).getWriter();
        void binary.write(bytes(1));
        void binary.write(bytes(2));
        void binary.close();
        const frames = [];
        for (let i = 0; i < 5; i++) frames.push(await peer.expect());
        await closing;
        assert.deepEqual(frames.map(shape), [
          [Opcode.Text, false, "Hel"],
          [Opcode.Continuation, false, "lo"],
          [Opcode.Continuation, true, " world"],
          [Opcode.Binary, false, "\x01"],
          [Opcode.Continuation, true, "\x02"],
        ]);
        for (const frame of frames) {
          assert.equal(frame.masked, role === "client");
        }
        assert.equal(conn.info.messagesSent, 2);
        await shutdown(conn, peer);
      }),
    );

    test(
      `${role} openMessage() owns the sends: a send() from another task waits for the message to end`,
      bounded(async () => {
        const { conn, peer } = withRawPeer(role);
        const writer = conn.openMessage().getWriter();
        await writer.write("a");
        // Another task sends while the message is open: it must not join it.
        const other = conn.send("other");
        await writer.write("b");
        await writer.close();
        await other;
        const frames = [];
        for (let i = 0; i < 3; i++) frames.push(await peer.expect());
        assert.deepEqual(frames.map(shape), [
          [Opcode.Text, false, "a"],
          [Opcode.Continuation, true, "b"],
          [Opcode.Text, true, "other"],
        ]);
        await shutdown(conn, peer);
      }),
    );

    test(
      `${role} openMessage() aborted part-way fails the connection with 1011; send() refuses a fin option`,
      bounded(async () => {
        const { conn, peer } = withRawPeer(role);
        assert.throws(
          () => conn.send("x", { fin: false } as never),
          /openMessage/,
        );
        const writer = conn.openMessage().getWriter();
        await writer.write("a");
        await writer.write("b"); // "a" goes out once "b" is there
        assert.deepEqual(shape(await peer.expect()), [Opcode.Text, false, "a"]);
        await writer.abort(new Error("the source failed"));
        const { close, info } = await answerClose(conn, peer);
        assert.equal(closeOf(close).code, 1011);
        assert.deepEqual(info.sent, {
          closeCode: 1011,
          reason: "Error in fragmented message",
        });
        await assert.rejects(conn.send("after"), ConnectionClosedError);
      }),
    );

    test(
      `${role} a message from openMessage() arrives as one message; bytes as text may split a character`,
      bounded(async () => {
        const { me, other } = connected(role);
        const hello = me.openMessage().getWriter();
        for (const part of ["Hel", "lo", ", world"]) await hello.write(part);
        await hello.close();
        const euro = me.openMessage({ type: "text" }).getWriter();
        await euro.write(bytes(0xe2, 0x82));
        await euro.write(bytes(0xac));
        await euro.close();
        await me.send("as binary", { type: "binary" });
        assert.deepEqual(await readMessages(other, 3), [
          "Hello, world",
          "€",
          encoder.encode("as binary"),
        ]);
        await closeBoth(me, other);
      }),
    );

    test(
      `${role} send(ReadableStream) and send(asyncGenerator()) send one message: text from strings, binary from bytes`,
      bounded(async () => {
        const { me, other } = connected(role);
        await me.send(ReadableStream.from(["ab", "cd", "ef"]));
        await me.send(ReadableStream.from([bytes(1), bytes(2, 3), bytes(4)]));
        await me.send(generate(["gh", "", "ij"]));
        await me.send(generate([bytes(5, 6), bytes(7)]));
        await me.send(generate(["one"]));
        await me.send(generate([pattern(300 * KiB, 1), pattern(200 * KiB, 2)]));
        const big = new Uint8Array(500 * KiB);
        big.set(pattern(300 * KiB, 1));
        big.set(pattern(200 * KiB, 2), 300 * KiB);
        const received = await readMessages(other, 6);
        assert.deepEqual(received.slice(0, 5), [
          "abcdef",
          bytes(1, 2, 3, 4),
          "ghij",
          bytes(5, 6, 7),
          "one",
        ]);
        assertSameBytes(received[5], big, "big streamed message");
        await closeBoth(me, other);
      }),
    );

    for (const kind of ["asyncGenerator", "ReadableStream"] as const) {
      test(
        `${role} send(${kind}) streams: the first fragment is on the wire before the last chunk exists`,
        bounded(async () => {
          const { conn, peer } = withRawPeer(role);
          let open!: () => void;
          const gate = new Promise<void>((resolve) => (open = resolve));
          let madeLast = false;
          const chunks = ["one", "two", "three"];
          const source = kind === "asyncGenerator"
            ? generate(chunks, gate, () => (madeLast = true))
            : new ReadableStream<string>({
              async pull(controller) {
                const chunk = chunks.shift()!;
                if (chunks.length === 0) {
                  await gate;
                  madeLast = true;
                  controller.enqueue(chunk);
                  controller.close();
                } else {
                  controller.enqueue(chunk);
                }
              },
            }, { highWaterMark: 0 });
          const sending = conn.send(source);
          const first = await peer.expect();
          assert.deepEqual(shape(first), [Opcode.Text, false, "one"]);
          assert.equal(madeLast, false, "the last chunk was already made");
          assert.equal(await settlesWithin(sending, 20), false);
          open();
          assert.deepEqual(shape(await peer.expect()), [
            Opcode.Continuation,
            false,
            "two",
          ]);
          assert.deepEqual(shape(await peer.expect()), [
            Opcode.Continuation,
            true,
            "three",
          ]);
          await sending;
          assert.equal(conn.info.messagesSent, 1);
          await shutdown(conn, peer);
        }),
      );
    }

    test(
      `${role} send() of an empty stream sends an empty message`,
      bounded(async () => {
        const { me, other } = connected(role);
        await me.send(ReadableStream.from<string>([]));
        await me.send(generate<Uint8Array>([]));
        await me.send(generate<string>([]), { type: "text" });
        assert.deepEqual(await readMessages(other, 3), [
          new Uint8Array(0),
          new Uint8Array(0),
          "",
        ]);
        await closeBoth(me, other);
      }),
    );

    test(
      `${role} send(bytes, { type: "text" }) with invalid UTF-8 throws a TypeError and sends nothing`,
      bounded(async () => {
        const { conn, peer } = withRawPeer(role);
        await assert.rejects(
          conn.send(bytes(0x61, 0xff), { type: "text" }),
          TypeError,
        );
        // A character cut short at the end of the message.
        await assert.rejects(
          conn.send(bytes(0xe2, 0x82), { type: "text" }),
          TypeError,
        );
        await assert.rejects(
          conn.send(generate([bytes(0xc3, 0x28)]), { type: "text" }),
          TypeError,
        );
        await conn.send(bytes(0xc3, 0xa9), { type: "text" });
        assert.deepEqual(shape(await peer.expect()), [Opcode.Text, true, "é"]);
        assert.equal(conn.info.messagesSent, 1);
        await shutdown(conn, peer);
      }),
    );

    test(
      `${role} send() of a stream mixing text and binary chunks throws a TypeError`,
      bounded(async () => {
        const { conn, peer } = withRawPeer(role);
        await assert.rejects(
          conn.send(ReadableStream.from<string | Uint8Array>(["a", bytes(1)])),
          TypeError,
        );
        await assert.rejects(
          conn.send(generate<string | Uint8Array>([bytes(1), "a"])),
          TypeError,
        );
        // Nothing of either went out, and the connection still works.
        await conn.send("next");
        assert.deepEqual(shape(await peer.expect()), [
          Opcode.Text,
          true,
          "next",
        ]);
        await shutdown(conn, peer);
      }),
    );

    test(
      `${role} send() of a stream that fails after a fragment went out closes the connection with 1011`,
      bounded(async () => {
        const { conn, peer } = withRawPeer(role);
        const failing = async function* () {
          yield "a";
          yield "b";
          throw new Error("source failed");
        };
        await assert.rejects(conn.send(failing()), /source failed/);
        await assert.rejects(
          conn.send(generate<string | Uint8Array>(["a", "b", bytes(1)])),
          (error) => error instanceof ConnectionClosedError,
        );
        const { before, close } = await answerClose(conn, peer);
        // The message can never be finished: the peer sees its start, then
        // the close frame.
        assert.deepEqual(before.map(shape), [[Opcode.Text, false, "a"]]);
        assert.equal(closeOf(close).code, 1011);
        assert.equal((await conn.closed).closeCode, 1011);
      }),
    );
  }
});

// ---- ping ----

describe("WebSocketConnection.ping", () => {
  for (const role of ROLES) {
    test(
      `${role} ping() resolves with the round-trip time once the pong arrives`,
      bounded(async () => {
        const { me, other } = connected(role);
        const rtt = await within(1_000, me.ping());
        assert.equal(typeof rtt, "number");
        assert.ok(rtt >= 0, `rtt ${rtt}`);
        const [a, b] = await Promise.all([me.ping(), other.ping()]);
        assert.ok(a >= 0 && b >= 0);
        await closeBoth(me, other);
      }),
    );

    test(
      `${role} ping(payload) sends the payload and waits for the pong that echoes it`,
      bounded(async () => {
        const { conn, peer } = withRawPeer(role);
        const p = conn.ping("hello");
        const frame = await peer.expect();
        assert.deepEqual(shape(frame), [Opcode.Ping, true, "hello"]);
        assert.equal(frame.masked, role === "client");
        await peer.send(Opcode.Pong, "other");
        assert.equal(await settlesWithin(p, 30), false);
        await peer.send(Opcode.Pong, "hello");
        assert.ok((await within(1_000, p)) >= 0);

        const q = conn.ping(bytes(1, 2, 3));
        assert.deepEqual((await peer.expect()).payload, bytes(1, 2, 3));
        await peer.send(Opcode.Pong, bytes(1, 2, 3));
        await within(1_000, q);

        // Without a payload, each ping gets its own, so pongs tell them apart.
        const r1 = conn.ping();
        const r2 = conn.ping();
        const [f1, f2] = [await peer.expect(), await peer.expect()];
        assert.notDeepEqual(f1.payload, f2.payload);
        await peer.send(Opcode.Pong, f1.payload);
        await within(1_000, r1);
        assert.equal(await settlesWithin(r2, 30), false);
        await peer.send(Opcode.Pong, f2.payload);
        await within(1_000, r2);
        await shutdown(conn, peer);
      }),
    );

    test(
      `${role} ping() with a payload over 125 bytes throws a RangeError at the call`,
      bounded(async () => {
        const { conn, peer } = withRawPeer(role);
        assert.throws(() => conn.ping(new Uint8Array(126)), RangeError);
        assert.throws(() => conn.ping("é".repeat(63)), RangeError);
        assert.throws(() => conn.ping(42 as never), TypeError);
        const max = conn.ping(new Uint8Array(125));
        const frame = await peer.expect();
        assert.equal(frame.opcode, Opcode.Ping);
        assert.equal(frame.payload.length, 125);
        await peer.send(Opcode.Pong, frame.payload);
        await within(1_000, max);
        await shutdown(conn, peer);
      }),
    );

    test(
      `${role} a pong answers the ping it echoes and every earlier one`,
      bounded(async () => {
        const { conn, peer } = withRawPeer(role);
        const a = conn.ping("a");
        const b = conn.ping("b");
        const c = conn.ping("c");
        for (let i = 0; i < 3; i++) await peer.expect();
        await peer.send(Opcode.Pong, "b");
        await within(1_000, Promise.all([a, b]));
        assert.equal(await settlesWithin(c, 30), false);
        await peer.send(Opcode.Pong, "c");
        await within(1_000, c);
        await shutdown(conn, peer);
      }),
    );

    test(
      `${role} pending pings reject with ConnectionClosedError when the connection closes`,
      bounded(async () => {
        const { conn, peer } = withRawPeer(role);
        const pending = [conn.ping("x"), conn.ping("y")];
        const rejected = pending.map((p) =>
          assert.rejects(p, closedError(/closed connection/, 1000))
        );
        await shutdown(conn, peer);
        await Promise.all(rejected);

        // And when the transport drops (1006).
        const second = withRawPeer(role);
        const dropped = assert.rejects(
          second.conn.ping(),
          closedError(undefined, 1006),
        );
        await second.peer.expect();
        second.peer.drop();
        await dropped;
        assert.equal((await second.conn.closed).closeCode, 1006);
        // After the end, ping() rejects at once.
        await assert.rejects(second.conn.ping(), ConnectionClosedError);
      }),
    );

    test(
      `${role} answers pings by itself and calls onPing and onPong with the payloads`,
      bounded(async () => {
        const pings: string[] = [];
        const pongs: string[] = [];
        const { conn, peer } = withRawPeer(role, {
          onPing: (payload) => void pings.push(decoder.decode(payload)),
          onPong: (payload) => void pongs.push(decoder.decode(payload)),
        });
        // The application does nothing, not even read.
        await peer.send(Opcode.Ping, "abc");
        const pong = await peer.expect();
        assert.deepEqual(shape(pong), [Opcode.Pong, true, "abc"]);
        assert.equal(pong.masked, role === "client");
        await peer.send(Opcode.Pong, "unsolicited");
        await peer.send(Opcode.Ping, "");
        assert.deepEqual(shape(await peer.expect()), [Opcode.Pong, true, ""]);
        assert.deepEqual(pings, ["abc", ""]);
        assert.deepEqual(pongs, ["unsolicited"]);
        await shutdown(conn, peer);
      }),
    );
  }
});

// ---- keepalive ----

/** Runs `body` while recording the delays of every `setTimeout` it starts. */
function recordTimers<T>(body: () => T): { result: T; delays: number[] } {
  const original = globalThis.setTimeout;
  const delays: number[] = [];
  const spy = (handler: () => void, ms?: number) => {
    delays.push(ms ?? 0);
    return original(handler, ms);
  };
  globalThis.setTimeout = spy as unknown as typeof setTimeout;
  try {
    return { result: body(), delays };
  } finally {
    globalThis.setTimeout = original;
  }
}

/** Answers pings until the close handshake, counting them. */
async function answerPings(peer: RawPeer): Promise<number> {
  let pings = 0;
  for (let frame = await peer.next(); frame; frame = await peer.next()) {
    if (frame.opcode === Opcode.Ping) {
      pings++;
      await peer.send(Opcode.Pong, frame.payload);
    } else if (frame.opcode === Opcode.Close) {
      await peer.sendClose(closeOf(frame).code);
      await peer.end();
    }
  }
  return pings;
}

describe("WebSocketConnection keepalive", () => {
  test(
    "server keepalive is on by default, every 30 s: no ping right away",
    bounded(async () => {
      const [a, b] = pipe();
      const { result: conn, delays } = recordTimers(() =>
        takeover(a, { role: "server" })
      );
      assert.deepEqual(delays, [30_000]);
      const peer = new RawPeer(b, "client");
      const first = peer.next();
      assert.equal(await settlesWithin(first, 100), false, "a frame was sent");
      void conn.close();
      assert.equal(closeOf((await first)!).code, 1000);
      await peer.sendClose(1000);
      await peer.end();
      await peer.rest();
      assert.equal((await conn.closed).wasClean, true);
    }),
  );

  test(
    "client keepalive is off by default",
    bounded(async () => {
      const [a, b] = pipe();
      const { result: conn, delays } = recordTimers(() =>
        takeover(a, { role: "client" })
      );
      assert.deepEqual(delays, []);
      const peer = new RawPeer(b, "server");
      const first = peer.next();
      assert.equal(await settlesWithin(first, 100), false, "a frame was sent");
      void conn.close();
      assert.equal(closeOf((await first)!).code, 1000);
      await peer.sendClose(1000);
      await peer.end();
      assert.equal((await conn.closed).wasClean, true);
    }),
  );

  for (const role of ROLES) {
    test(
      `${role} keepalive { interval: 30, timeout: 30 } stays open while the peer answers`,
      bounded(async () => {
        const { conn, peer } = withRawPeer(role, {
          keepalive: { interval: 30, timeout: 30 },
        });
        const answering = answerPings(peer);
        await sleep(250);
        assert.equal(conn.info.state, "open");
        assert.equal(await settlesWithin(conn.closed, 0), false);
        await conn.close();
        const pings = await answering;
        assert.ok(pings >= 3, `only ${pings} keepalive pings in 250 ms`);
        assertClose(await conn.closed, {
          closeCode: 1000,
          reason: "",
          wasClean: true,
        });
      }),
    );

    test(
      `${role} keepalive drops a peer that never answers: 1006 after about interval + timeout`,
      bounded(async () => {
        // The keepalive timer starts with the connection.
        const start = performance.now();
        const { conn, peer } = withRawPeer(role, {
          keepalive: { interval: 30, timeout: 30 },
        });
        // Read what is sent as it comes: the drop discards what is unread.
        const frames = peer.rest();
        const reading = assert.rejects(
          conn.readable.getReader().read(),
          closedError(undefined, 1006),
        );
        const info = await within(1_000, conn.closed);
        const elapsed = performance.now() - start;
        assertClose(info, {
          closeCode: 1006,
          reason: "Keepalive ping timed out",
          wasClean: false,
        });
        assert.ok(elapsed >= 55, `closed after ${elapsed} ms`);
        await reading;
        assert.deepEqual((await frames).map((f) => f.opcode), [Opcode.Ping]);
        await peer.end();
      }),
    );
  }
});

// ---- close ----

describe("WebSocketConnection keepalive timers", () => {
  test(
    "closed connections leave no keepalive timer: the process exits at once",
    bounded(async () => {
      const child = runScript(
        new URL("./reliability/_keepalive_exit.ts", import.meta.url),
        [],
      );
      try {
        assert.equal(await child.lines.next(10_000, "closed"), "closed");
        assert.equal(await within(5_000, child.exited), 0, child.stderr());
      } finally {
        child.kill();
      }
    }, 20_000),
  );
});

describe("WebSocketConnection.close", () => {
  for (const role of ROLES) {
    test(
      `${role} close({ closeCode: 3001, reason }) reports both close frames: the one sent and the one received`,
      bounded(async () => {
        const { me, other } = connected(role);
        const [mine, theirs] = await Promise.all([
          me.close({ closeCode: 3001, reason: "done" }),
          other.closed,
        ]);
        assert.deepEqual(mine, {
          closeCode: 3001,
          reason: "",
          wasClean: true,
          sent: { closeCode: 3001, reason: "done" },
          received: { closeCode: 3001, reason: "" },
        });
        assert.deepEqual(theirs, {
          closeCode: 3001,
          reason: "done",
          wasClean: true,
          sent: { closeCode: 3001, reason: "" },
          received: { closeCode: 3001, reason: "done" },
        });
        assert.throws(
          () => me.close({ code: 1000 } as never),
          /closeCode/,
          "the old name is refused with a clear error",
        );
      }),
    );

    test(
      `${role} close() sends 1000 "Normal closure" by default`,
      bounded(async () => {
        const { conn, peer } = withRawPeer(role);
        const closing = conn.close();
        const { close, info } = await answerClose(conn, peer);
        assert.deepEqual(closeOf(close), {
          code: 1000,
          reason: "Normal closure",
        });
        assert.equal(close.masked, role === "client");
        assertClose(info, { closeCode: 1000, reason: "", wasClean: true });
        assert.deepEqual(await closing, info);
      }),
    );

    test(
      `${role} close() sends a custom code and reason; closed reports the peer's close frame`,
      bounded(async () => {
        const { conn, peer } = withRawPeer(role);
        void conn.close({ closeCode: 4000, reason: "bye ✓" });
        const frame = await peer.expect();
        assert.deepEqual(closeOf(frame), { code: 4000, reason: "bye ✓" });
        await peer.sendClose(4001, "see you");
        await peer.end();
        assertClose(await conn.closed, {
          closeCode: 4001,
          reason: "see you",
          wasClean: true,
        });
        await peer.rest();
      }),
    );

    test(
      `${role} closed resolves on both ends with the code of the close frame each received`,
      bounded(async () => {
        const { me, other } = connected(role);
        const [mine, theirs] = await within(
          1_000,
          Promise.all([
            me.close({ closeCode: 3001, reason: "done" }),
            other.closed,
          ]),
        );
        // `other` got our frame; we got its echo, which carries the code only.
        assertClose(theirs, {
          closeCode: 3001,
          reason: "done",
          wasClean: true,
        });
        assertClose(mine, { closeCode: 3001, reason: "", wasClean: true });
        assert.equal(me.info.state, "closed");
        assert.equal(other.info.state, "closed");
      }),
    );

    test(
      `${role} openIn holds the connection while it is open; closed, first asked for after the end, still tells how it ended`,
      bounded(async () => {
        const open = new Set<WebSocketConnection>();
        const { me, other } = connected(role, { openIn: open });
        assert.deepEqual([...open], [me]);
        await within(1_000, other.close({ closeCode: 3002, reason: "later" }));
        for (let i = 0; i < 100 && open.size > 0; i++) await sleep(10);
        assert.equal(open.size, 0);
        assert.equal(me.info.state, "closed");
        const closed = me.closed; // made now, after the end
        assert.equal(me.closed, closed);
        assertClose(await within(1_000, closed), {
          closeCode: 3002,
          reason: "later",
          wasClean: true,
        });
      }),
    );

    test(
      `${role} an OpenConnections given as openIn is a live ReadonlySet of the open connections`,
      bounded(async () => {
        const open = new OpenConnections();
        const first = connected(role, { openIn: open });
        const second = connected(role, { openIn: open });
        const [a, b] = [first.me, second.me];
        assert.equal(open.size, 2);
        assert.deepEqual([...open], [a, b]);
        assert.deepEqual([...open.keys()], [a, b]);
        assert.deepEqual([...open.entries()], [[a, a], [b, b]]);
        const seen: unknown[] = [];
        open.forEach(function (this: unknown, value, key, set) {
          seen.push([value, key, set, this]);
        }, "this");
        assert.deepEqual(seen, [[a, a, open, "this"], [b, b, open, "this"]]);
        assert.ok(open.has(a) && open.has(b));
        assert.equal(open.has(first.other), false, "not given openIn");
        assert.equal(open.has({} as WebSocketConnection), false);
        // The ES2025 Set methods, against a plain Set.
        const onlyA = new Set([a]);
        assert.deepEqual([...open.union(new Set([first.other]))], [
          a,
          b,
          first.other,
        ]);
        assert.deepEqual([...open.intersection(onlyA)], [a]);
        assert.deepEqual([...open.difference(onlyA)], [b]);
        assert.deepEqual([...open.symmetricDifference(onlyA)], [b]);
        assert.equal(open.isSubsetOf(new Set([a, b, first.other])), true);
        assert.equal(open.isSupersetOf(onlyA), true);
        assert.equal(open.isDisjointFrom(new Set([first.other])), true);

        await within(1_000, first.other.close({ closeCode: 3002 }));
        for (let i = 0; i < 100 && open.size > 1; i++) await sleep(10);
        assert.deepEqual([...open], [b]);
        assert.equal(open.has(a), false);
        await within(1_000, Promise.all([b.close(), second.other.closed]));
        for (let i = 0; i < 100 && open.size > 0; i++) await sleep(10);
        assert.equal(open.size, 0);
        assert.deepEqual([...open], []);
      }),
    );

    test(
      `${role} a peer close frame without a code is reported as 1005`,
      bounded(async () => {
        const { conn, peer } = withRawPeer(role);
        await peer.sendClose();
        const echo = await peer.expect();
        assert.equal(echo.opcode, Opcode.Close);
        assert.equal(echo.payload.length, 0, "the echo has no code either");
        await peer.end();
        assertClose(await within(1_000, conn.closed), {
          closeCode: 1005,
          reason: "",
          wasClean: true,
        });
        assert.deepEqual(await peer.rest(), []);
      }),
    );

    test(
      `${role} a transport that ends without a close frame gives 1006 and errors readable`,
      bounded(async () => {
        for (const how of ["end", "drop"] as const) {
          const { conn, peer } = withRawPeer(role);
          await peer.send(Opcode.Text, "last words");
          await within(1_000, readMessages(conn, 1));
          const reading = assert.rejects(
            conn.readable.getReader().read(),
            closedError(undefined, 1006),
          );
          if (how === "end") await peer.end();
          else peer.drop();
          assertClose(await within(1_000, conn.closed), {
            closeCode: 1006,
            reason: "",
            wasClean: false,
          }, how);
          await reading;
          await peer.rest();
        }
      }),
    );

    test(
      `${role} iterating the connection itself: a failure rejects the loop, leaving it closes with 1000`,
      bounded(async () => {
        // An end without a close frame rejects a waiting iteration with 1006.
        {
          const { conn, peer } = withRawPeer(role);
          await peer.send(Opcode.Text, "one");
          const iterator = conn[Symbol.asyncIterator]();
          assert.deepEqual(await iterator.next(), {
            done: false,
            value: "one",
          });
          const waiting = assert.rejects(
            iterator.next(),
            closedError(undefined, 1006),
          );
          peer.drop();
          await waiting;
          assert.equal((await within(1_000, conn.closed)).closeCode, 1006);
          await peer.rest();
        }
        // Leaving a loop early closes the connection, like cancelling readable.
        {
          const { me, other } = connected(role);
          await other.send("first");
          await other.send("second");
          for await (const message of me) {
            assert.equal(message, "first");
            break;
          }
          assert.deepEqual(await within(1_000, other.closed), CLEAN_1000);
          assert.equal((await within(1_000, me.closed)).closeCode, 1000);
        }
      }),
    );

    test(
      `${role} iterating keeps order while the queue never runs empty (its front is compacted)`,
      bounded(async () => {
        const { me, other } = connected(role);
        const count = 3000;
        const sending = (async () => {
          for (let i = 0; i < count; i++) void other.send(String(i));
          await other.close();
        })();
        let next = 0;
        for await (const message of me) {
          assert.equal(message, String(next), "message out of order");
          next++;
        }
        assert.equal(next, count);
        await sending;
      }),
    );

    test(
      `${role} messages taken by iterating the connection are not seen again by readable, which gets the rest`,
      bounded(async () => {
        const { me, other } = connected(role);
        for (const message of ["a", "b", "c"]) await other.send(message);
        void other.close();
        const iterator = me[Symbol.asyncIterator]();
        assert.deepEqual(await iterator.next(), { done: false, value: "a" });
        const rest: Message[] = [];
        for await (const message of me.readable) rest.push(message);
        assert.deepEqual(rest, ["b", "c"]);
        assert.deepEqual(await iterator.next(), {
          done: true,
          value: undefined,
        });
        assert.equal((await within(1_000, me.closed)).closeCode, 1000);
      }),
    );

    test(
      `${role} close() throws a RangeError at once for a code or reason that cannot be sent`,
      bounded(async () => {
        const { conn, peer } = withRawPeer(role);
        for (
          const code of [999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 1000.5]
        ) {
          assert.throws(
            () => conn.close({ closeCode: code }),
            RangeError,
            `${code}`,
          );
        }
        assert.throws(
          () => conn.close({ reason: "x".repeat(124) }),
          RangeError,
        );
        assert.throws(() => conn.close({ reason: "é".repeat(62) }), RangeError);
        assert.equal(conn.info.state, "open");
        // 123 bytes fit.
        void conn.close({ closeCode: 4999, reason: "y".repeat(123) });
        const { close } = await answerClose(conn, peer);
        assert.deepEqual(closeOf(close), {
          code: 4999,
          reason: "y".repeat(123),
        });
      }),
    );

    test(
      `${role} close() twice returns the same result`,
      bounded(async () => {
        const { me, other } = connected(role);
        const first = me.close({ closeCode: 4000 });
        const second = me.close({ closeCode: 4001 });
        assert.equal(first, second);
        const [a, b] = await Promise.all([first, second, other.closed]);
        assert.deepEqual(a, b);
        assert.deepEqual(await me.close(), a);
        assert.equal((await other.closed).closeCode, 4000);
      }),
    );

    test(
      `${role} messages sent before close() all go out before the close frame`,
      bounded(async () => {
        const { conn, peer } = withRawPeer(role);
        const sends: Promise<void>[] = [];
        for (let i = 0; i < 100; i++) {
          sends.push(conn.send(i % 2 ? `message ${i}` : pattern(i * 100, i)));
        }
        const closing = conn.close();
        const { before, close } = await answerClose(conn, peer);
        await Promise.all(sends);
        assert.equal(before.length, 100);
        before.forEach((frame, i) => {
          if (i % 2) {
            assert.deepEqual(shape(frame), [Opcode.Text, true, `message ${i}`]);
          } else assertSameBytes(frame.payload, pattern(i * 100, i), `#${i}`);
        });
        assert.equal(closeOf(close).code, 1000);
        assert.equal((await closing).wasClean, true);
      }),
    );

    test(
      `${role} messages sent before close() all arrive before the peer sees the close`,
      bounded(async () => {
        const { me, other } = connected(role);
        for (let i = 0; i < 100; i++) void me.send(`m${i}`);
        void me.close();
        const got: Message[] = [];
        for await (const message of other.readable) got.push(message);
        assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => `m${i}`));
        assert.deepEqual(await other.closed, CLEAN_1000);
        assert.equal((await me.closed).wasClean, true);
      }),
    );

    test(
      `${role} send() after close() rejects with a ConnectionClosedError saying so`,
      bounded(async () => {
        const { me, other } = connected(role);
        const closing = me.close({ closeCode: 4000 });
        await assert.rejects(
          me.send("late"),
          closedError(
            /^Cannot send on a closing connection: close code 4000$/,
            4000,
          ),
        );
        await closing;
        await assert.rejects(
          me.send("later"),
          closedError(
            /^Cannot send on a closed connection: close code 4000$/,
            4000,
          ),
        );
        await assert.rejects(
          me.writable.getWriter().write("x"),
          ConnectionClosedError,
        );
        await other.closed;
      }),
    );

    test(
      `${role} close() against a peer that never answers ends at closeTimeout with 1006`,
      bounded(async () => {
        const { conn, peer } = withRawPeer(role, { closeTimeout: 50 });
        // Read what is sent as it comes: the drop discards what is unread.
        const frames = peer.rest();
        const start = performance.now();
        const info = await within(1_000, conn.close());
        const elapsed = performance.now() - start;
        assertClose(info, {
          closeCode: 1006,
          reason: "Close handshake timed out",
          wasClean: false,
        });
        assert.ok(elapsed >= 45 && elapsed < 900, `closed after ${elapsed} ms`);
        assert.deepEqual((await frames).map((f) => closeOf(f).code), [1000]);
        await peer.end();
      }),
    );

    test(
      `${role} closing writable closes the connection; aborting it closes with the reason's code`,
      bounded(async () => {
        const first = connected(role);
        await first.me.writable.close();
        assert.deepEqual(await first.other.closed, CLEAN_1000);
        assert.equal((await first.me.closed).closeCode, 1000);

        const second = connected(role);
        await second.me.writable.abort({ closeCode: 4002, reason: "aborted" });
        assertClose(await second.other.closed, {
          closeCode: 4002,
          reason: "aborted",
          wasClean: true,
        });
        assert.equal((await second.me.closed).closeCode, 4002);
      }),
    );

    test(
      `${role} readable.cancel() closes the connection`,
      bounded(async () => {
        const { me, other } = connected(role);
        await other.send("unread");
        await me.readable.cancel();
        assert.deepEqual(await within(1_000, other.closed), CLEAN_1000);
        assertClose(await me.closed, {
          closeCode: 1000,
          reason: "",
          wasClean: true,
        });
      }),
    );

    test(
      `${role} close() completes while readable is full and unread`,
      bounded(async () => {
        const { me, other } = connected(role, { highWaterMark: 2 });
        for (let i = 0; i < 10; i++) await other.send(`m${i}`);
        const [mine, theirs] = await closeBoth(me, other);
        assert.equal(mine.wasClean, true);
        assert.equal(theirs.wasClean, true);
        // Everything that arrived before the close is still there to read.
        const got: Message[] = [];
        for await (const message of me.readable) got.push(message);
        assert.deepEqual(got, Array.from({ length: 10 }, (_, i) => `m${i}`));
      }),
    );
  }

  test(
    "server closes the transport right after the close handshake",
    bounded(async () => {
      // The peer closes first: the server echoes, then ends the stream.
      const first = withRawPeer("server");
      await first.peer.sendClose(1001);
      assert.equal(closeOf(await first.peer.expect()).code, 1001);
      assert.equal(await first.peer.next(), null, "no end of stream");
      assertClose(await first.conn.closed, {
        closeCode: 1001,
        reason: "",
        wasClean: true,
      });
      await first.peer.end();

      // The server closes first: once the client's echo is in, it ends the stream.
      const second = withRawPeer("server");
      void second.conn.close();
      assert.equal(closeOf(await second.peer.expect()).code, 1000);
      await second.peer.sendClose(1000);
      assert.equal(await second.peer.next(), null, "no end of stream");
      assert.equal((await second.conn.closed).wasClean, true);
      await second.peer.end();
    }),
  );

  test(
    "client waits for the server to end the stream after the close handshake",
    bounded(async () => {
      for (const first of ["client", "server"] as const) {
        const { conn, peer } = withRawPeer("client");
        if (first === "client") {
          void conn.close();
          assert.equal(closeOf(await peer.expect()).code, 1000);
          await peer.sendClose(1000);
        } else {
          await peer.sendClose(1001);
          assert.equal(closeOf(await peer.expect()).code, 1001);
        }
        assert.equal(await settlesWithin(conn.closed, 50), false, first);
        assert.equal(conn.info.state, "closing");
        await peer.end();
        assert.equal((await within(1_000, conn.closed)).wasClean, true);
        assert.equal(conn.info.state, "closed");
        await peer.rest();
      }
    }),
  );

  test(
    "client whose server never ends the stream gives up at closeTimeout, still clean",
    bounded(async () => {
      const { conn, peer } = withRawPeer("client", { closeTimeout: 50 });
      void conn.close();
      await peer.expect();
      await peer.sendClose(1000);
      assertClose(await within(1_000, conn.closed), {
        closeCode: 1000,
        reason: "",
        wasClean: true,
      });
      await peer.rest();
      await peer.end();
    }),
  );
});

// ---- protocol errors ----

describe("WebSocketConnection protocol errors", () => {
  const cases: {
    name: string;
    code: number;
    options?: Options;
    frame: (peer: RawPeer, role: Role) => Uint8Array;
  }[] = [
    {
      name: "a frame masked the wrong way",
      code: 1002,
      // A server must get masked frames, a client unmasked ones.
      frame: (peer, role) =>
        peer.frame(Opcode.Text, "hi", { mask: role === "client" }),
    },
    {
      name: "invalid UTF-8 in a text message",
      code: 1007,
      frame: (peer) => peer.frame(Opcode.Text, bytes(0x68, 0xc3, 0x28)),
    },
    {
      name: "a message over maxMessageSize",
      code: 1009,
      options: { maxMessageSize: 10 },
      frame: (peer) => peer.frame(Opcode.Binary, new Uint8Array(11)),
    },
  ];
  for (const role of ROLES) {
    for (const { name, code, options, frame } of cases) {
      test(
        `${role} fails the connection on ${name} with ${code}`,
        bounded(async () => {
          const { conn, peer } = withRawPeer(role, options);
          // The application reads on: it gets what came before the bad
          // frame, then a ConnectionClosedError caused by the ProtocolError.
          const received: Message[] = [];
          const reading = assert.rejects(
            async () => {
              for await (const message of conn.readable) received.push(message);
            },
            (error) => {
              assert.ok(error instanceof ConnectionClosedError, `${error}`);
              assert.equal(error.closeCode, code);
              assert.equal(error.wasClean, false);
              assert.ok(error.cause instanceof ProtocolError, `${error.cause}`);
              assert.equal(error.cause.closeCode, code);
              return true;
            },
          );
          await peer.send(Opcode.Text, "fine");
          await peer.write(frame(peer, role));
          const close = await peer.expect();
          assert.equal(closeOf(close).code, code);
          // The connection then ends the stream.
          assert.equal(await peer.next(), null);
          const info = await within(1_000, conn.closed);
          assert.equal(info.closeCode, code);
          assert.equal(info.wasClean, false);
          await reading;
          assert.deepEqual(received, ["fine"]);
          await peer.end();
        }),
      );

      test(
        `${role} fails the connection on ${name} with ${code} even when the application does not read`,
        bounded(async () => {
          const { conn, peer } = withRawPeer(role, {
            ...options,
            closeTimeout: 50,
          });
          await peer.send(Opcode.Text, "unread");
          await peer.write(frame(peer, role));
          // At the latest at closeTimeout.
          const close = await within(1_000, peer.expect());
          assert.equal(closeOf(close).code, code);
          assert.equal(await peer.next(), null);
          const info = await within(1_000, conn.closed);
          assert.equal(info.closeCode, code);
          assert.equal(info.wasClean, false);
          await peer.end();
        }),
      );
    }
  }
});

// ---- takeover ----

describe("takeover", () => {
  for (const role of ROLES) {
    test(
      `${role} takeover delivers the head bytes first`,
      bounded(async () => {
        const [a, b] = pipe();
        const peer = new RawPeer(b, role === "client" ? "server" : "client");
        const third = peer.frame(Opcode.Text, "third");
        const head = new Uint8Array([
          ...peer.frame(Opcode.Text, "first"),
          ...peer.frame(Opcode.Binary, bytes(2)),
          ...third.subarray(0, 3),
        ]);
        const conn = takeover(a, { role, keepalive: false, head });
        await peer.write(third.subarray(3));
        await peer.send(Opcode.Text, "fourth");
        assert.deepEqual(await readMessages(conn, 4), [
          "first",
          bytes(2),
          "third",
          "fourth",
        ]);
        const fourth = 2 + 6 + (role === "server" ? 4 : 0);
        assert.equal(
          conn.info.bytesReceived,
          head.length + third.length - 3 + fourth,
        );
        await shutdown(conn, peer);
      }),
    );
  }

  test("takeover refuses something that is not a byte stream with a TypeError", () => {
    const { readable, writable } = new TransformStream<
      Uint8Array,
      Uint8Array
    >();
    for (
      const bad of [
        null,
        undefined,
        {},
        { readable },
        { writable },
        { readable: writable, writable: readable },
        { readable: "r", writable: "w" },
      ]
    ) {
      assert.throws(
        () => takeover(bad as never, { role: "server" }),
        TypeError,
        JSON.stringify(bad),
      );
    }
    assert.equal(readable.locked, false);
    assert.equal(writable.locked, false);
  });

  test("takeover refuses invalid options", () => {
    const [a] = pipe();
    const bad: [Options, typeof RangeError | typeof TypeError][] = [
      [{ role: "x" as Role }, TypeError],
      [{ role: undefined as unknown as Role }, TypeError],
      [{ maxMessageSize: -1 }, RangeError],
      [{ maxMessageSize: 0 }, RangeError],
      [{ maxFragments: Number.NaN }, RangeError],
      [{ closeTimeout: -5 }, RangeError],
      [{ highWaterMark: Infinity }, RangeError],
      [{ keepalive: { interval: 0 } }, RangeError],
      [{ keepalive: { interval: 10, timeout: -1 } }, RangeError],
    ];
    for (const [options, type] of bad) {
      assert.throws(
        () => takeover(a, { role: "server", ...options }),
        type,
        JSON.stringify(options),
      );
    }
    // Nothing was taken: the stream is still free.
    assert.equal(a.readable.locked, false);
    assert.equal(a.writable.locked, false);
  });
});

// ---- info ----

describe("WebSocketConnection.info", () => {
  for (const role of ROLES) {
    test(
      `${role} info reports the role, the options and the state from open to closing to closed`,
      bounded(async () => {
        const [a, b] = pipe();
        const localAddr = { hostname: "127.0.0.1", port: 8080 };
        const remoteAddr = { hostname: "::1", port: 50000 };
        const extensions = [{ name: "x-test", params: {} }];
        const conn = takeover({ ...a, localAddr, remoteAddr }, {
          role,
          keepalive: false,
          protocol: "chat",
          path: "/room?id=1",
          extensions,
        });
        const peer = new RawPeer(b, role === "client" ? "server" : "client");
        const info = conn.info;
        assert.equal(info.role, role);
        assert.equal(info.state, "open");
        assert.equal(info.protocol, "chat");
        assert.equal(conn.protocol, "chat");
        assert.equal(info.path, "/room?id=1");
        assert.deepEqual(info.extensions, extensions);
        assert.deepEqual(info.localAddr, localAddr);
        assert.deepEqual(info.remoteAddr, remoteAddr);
        void conn.close();
        assert.equal(conn.info.state, "closing");
        await answerClose(conn, peer);
        assert.equal(conn.info.state, "closed");

        const plain = withRawPeer(role);
        assert.deepEqual(
          { ...plain.conn.info },
          {
            role,
            state: "open",
            localAddr: null,
            remoteAddr: null,
            protocol: "",
            extensions: [],
            path: "",
            bytesReceived: 0,
            bytesSent: 0,
            messagesReceived: 0,
            messagesSent: 0,
          },
        );
        await shutdown(plain.conn, plain.peer);
      }),
    );

    test(
      `${role} info counts bytes (headers included) and whole messages exactly`,
      bounded(async () => {
        const { conn, peer } = withRawPeer(role);
        // Frames from a client carry a 4-byte mask key; from a server none.
        const theirMask = role === "server" ? 4 : 0;
        const ourMask = role === "client" ? 4 : 0;
        await peer.send(Opcode.Text, "hello"); // 2 + 5
        await peer.send(Opcode.Binary, bytes(1, 2, 3), { fin: false }); // 2 + 3
        await peer.send(Opcode.Continuation, bytes(4)); // 2 + 1
        await peer.send(Opcode.Ping, "p"); // 2 + 1, answered by a pong: 2 + 1
        assert.deepEqual(shape(await peer.expect()), [Opcode.Pong, true, "p"]);
        assert.deepEqual(await readMessages(conn, 2), [
          "hello",
          bytes(1, 2, 3, 4),
        ]);
        await conn.send("hi"); // 2 + 2
        await conn.send(pattern(300, 0)); // 4 + 300
        const fragments = conn.openMessage().getWriter();
        await fragments.write("a"); // 2 + 1
        await fragments.write("b"); // 2 + 1
        await fragments.close();
        await peer.expect();
        await peer.expect();
        await peer.expect();
        await peer.expect();
        const received = 7 + 5 + 3 + 3 + 4 * theirMask;
        const sent = 3 + 4 + 304 + 3 + 3 + 5 * ourMask;
        assert.deepEqual(
          conn.info,
          {
            role,
            state: "open",
            localAddr: null,
            remoteAddr: null,
            protocol: "",
            extensions: [],
            path: "",
            bytesReceived: received,
            bytesSent: sent,
            messagesReceived: 2,
            messagesSent: 3,
          },
        );
        await shutdown(conn, peer);
        const end = conn.info;
        // Our close frame: 2 + 2 + "Normal closure" (14); the echo: 2 + 2.
        assert.equal(end.bytesSent, sent + 18 + ourMask);
        assert.equal(end.bytesReceived, received + 4 + theirMask);
        assert.equal(end.messagesReceived, 2);
        assert.equal(end.messagesSent, 3);
      }),
    );
  }
});

// ---- backpressure ----

describe("WebSocketConnection backpressure", () => {
  const SIZE = 64 * KiB;
  const PIPE_HWM = 64 * KiB;

  /** Message `i`: its number in the first 4 bytes, then a pattern. */
  function numbered(i: number): Uint8Array {
    const payload = pattern(SIZE, i);
    new DataView(payload.buffer).setUint32(0, i);
    return payload;
  }

  for (const role of ROLES) {
    test(
      `${role} readable that is not read stops a flooding peer with bounded buffering, then delivers everything in order`,
      bounded(async () => {
        const HWM = 8;
        const TOTAL = 64;
        const { conn, peer } = withRawPeer(role, { highWaterMark: HWM }, {
          highWaterMark: PIPE_HWM,
        });
        const frameSize =
          peer.frame(Opcode.Binary, new Uint8Array(SIZE)).length;
        // The bound: HWM messages queued in `readable`, one more being read by
        // the connection, and in each of the pipe's two queues (its writable
        // and readable sides) up to PIPE_HWM bytes plus the frame that
        // crosses the mark: about 830 KiB, where an unchecked peer would
        // write all TOTAL messages (4 MiB) at once.
        const bound = (HWM + 1) * frameSize + 2 * (PIPE_HWM + frameSize);
        let written = 0;
        let count = 0;
        const flooding = (async () => {
          while (count < TOTAL) {
            await peer.writer.ready;
            const frame = peer.frame(Opcode.Binary, numbered(count++));
            written += frame.length;
            peer.writer.write(frame).catch(() => {});
          }
        })();
        await sleep(100);
        const early = written;
        await sleep(100);
        assert.equal(written, early, "the peer kept writing");
        assert.ok(
          written <= bound,
          `the peer wrote ${written} bytes, over the bound of ${bound}`,
        );
        assert.ok(written >= HWM * frameSize, `only ${written} bytes written`);
        assert.ok(
          conn.info.bytesReceived <= (HWM + 1) * frameSize,
          `the connection read ${conn.info.bytesReceived} bytes`,
        );
        assert.equal(
          await settlesWithin(peer.writer.ready, 10),
          false,
          "the peer's writes are not blocked",
        );
        assert.ok(count < TOTAL);

        // Now the application reads: everything arrives, intact and in order.
        const received = await readMessages(conn, TOTAL);
        await flooding;
        assert.equal(received.length, TOTAL);
        received.forEach((message, i) =>
          assertSameBytes(message, numbered(i), `message ${i}`)
        );
        await shutdown(conn, peer);
      }),
    );

    test(
      `${role} send() resolves at once while at most 64 KiB waits to be written, and waits once more does, until the channel drains`,
      bounded(async () => {
        // A channel that takes every write and drains only when told.
        let drain = Promise.withResolvers<void>();
        const writes: number[] = [];
        const channel = {
          write(bytes: Uint8Array) {
            writes.push(bytes.length);
            this.bufferedAmount += bytes.length;
          },
          bufferedAmount: 0,
          drained() {
            return this.bufferedAmount === 0
              ? Promise.resolve()
              : drain.promise;
          },
        };
        const conn = overStubChannel(role, channel);
        // Payloads whose frames are exactly 64 KiB: each is written at once.
        const size = 64 * KiB - frameHeaderSize(60 * KiB, role === "client");
        // 64 KiB on the channel is not more than 64 KiB: this resolves.
        assert.equal(
          await settlesWithin(conn.send(pattern(size, 1)), 20),
          true,
        );
        assert.deepEqual(writes, [64 * KiB]);
        // 128 KiB is: this one waits, and so does the next, however small.
        const second = conn.send(pattern(size, 2));
        assert.equal(await settlesWithin(second, 20), false);
        assert.deepEqual(writes, [64 * KiB, 64 * KiB]);
        const third = conn.send(pattern(1, 3));
        assert.equal(await settlesWithin(third, 20), false);
        // The channel drains: both resolve.
        channel.bufferedAmount = 0;
        drain.resolve();
        drain = Promise.withResolvers<void>();
        assert.equal(
          await settlesWithin(Promise.all([second, third]), 200),
          true,
        );
        // No peer answers the close: it ends at closeTimeout.
        assert.equal((await within(1_000, conn.close())).closeCode, 1006);
      }),
    );

    test(
      `${role} writes a close frame at once, with the frames corked before it, not at the next macrotask`,
      bounded(async () => {
        const writes: Uint8Array[] = [];
        const conn = overStubChannel(role, {
          write: (bytes) => void writes.push(bytes.slice()),
        });
        await conn.send("a"); // corked until the next macrotask
        assert.deepEqual(writes, []);
        const closing = conn.close();
        // Microtasks only: no macrotask can run in between.
        for (let i = 0; i < 50 && writes.length === 0; i++) await null;
        assert.equal(writes.length, 1, "one write, in this macrotask");
        const at = frameHeaderSize(1, role === "client") + 1;
        assert.equal(writes[0]![0], 0x81, "the text frame first");
        assert.equal(writes[0]![at], 0x88, "then the close frame");
        // No peer answers: it ends at closeTimeout.
        assert.equal((await within(1_000, closing)).closeCode, 1006);
      }),
    );

    test(
      `${role} connections flushed together: one whose channel throws fails alone, the others' frames go out`,
      bounded(async () => {
        // A user's ByteChannel whose bufferedAmount throws once the sends
        // are made, so at flush time: the flush of every connection corked
        // in the same turn runs in one batch.
        const written: number[][] = [[], [], []];
        let breaking = false;
        const conns = [false, true, false].map((broken, index) =>
          overStubChannel(role, {
            write(bytes) {
              written[index]!.push(bytes.length);
            },
            get bufferedAmount(): number {
              if (broken && breaking) throw new Error("broken channel");
              return 0;
            },
          })
        );
        // Small sends are corked, and flushed together at the next macrotask.
        for (const conn of conns) await conn.send("hi");
        breaking = true;
        // A send while the channel throws rejects; it does not throw.
        const sending = conns[1]!.send("more");
        assert.ok(sending instanceof Promise);
        await assert.rejects(sending, /broken channel/);
        const broken = conns[1]!;
        const info = await within(1_000, broken.closed);
        assert.equal(info.closeCode, 1006);
        await sleep(20);
        assert.equal(written[0]!.length, 1, "the first connection's frame");
        assert.equal(written[2]!.length, 1, "the last connection's frame");
        for (const conn of [conns[0]!, conns[2]!]) {
          assert.equal(conn.info.state, "open");
          assert.equal((await within(1_000, conn.close())).closeCode, 1006);
        }
      }),
    );

    test(
      `${role} send() stalls against a peer that does not read, with bounded buffering, and resumes when it reads`,
      bounded(async () => {
        const TOTAL = 40;
        const { conn, peer } = withRawPeer(role, {}, {
          highWaterMark: PIPE_HWM,
        });
        const frameSize = SIZE + frameHeaderSize(SIZE, role === "client");
        // The bound: the pipe's two queues, PIPE_HWM bytes each plus the
        // frame that crosses the mark (about 256 KiB, so at most 4 messages
        // of the TOTAL, 2.5 MiB, that an unchecked loop would send at once).
        const bound = 2 * (PIPE_HWM + frameSize);
        let done = 0;
        const sending = (async () => {
          for (let i = 0; i < TOTAL; i++) {
            await conn.send(numbered(i));
            done++;
          }
        })();
        await sleep(100);
        const early = done;
        await sleep(100);
        assert.equal(done, early, "send() kept resolving");
        assert.ok(done < TOTAL);
        assert.ok(
          conn.info.bytesSent <= bound,
          `${conn.info.bytesSent} bytes sent, over the bound of ${bound}`,
        );
        assert.ok(done >= 1, "no send() resolved at all");

        // The peer reads: the sends resume and everything arrives in order.
        for (let i = 0; i < TOTAL; i++) {
          const frame = await peer.expect();
          assert.equal(frame.opcode, Opcode.Binary);
          assertSameBytes(frame.payload, numbered(i), `message ${i}`);
        }
        await sending;
        assert.equal(done, TOTAL);
        await shutdown(conn, peer);
      }),
    );
  }
});
