/**
 * Load and no-loss: many clients send numbered messages of random sizes
 * (every frame-length boundary, up to 256 KiB; text and binary; whole,
 * fragmented and streamed, through `send()` and `writable`) to an echo
 * server, and every echo must come back once, in order, intact (see
 * `_numbered_messages.ts`). Then the close: every message written before
 * `close()` arrives before the close frame, and writes after it reject with
 * a `ConnectionClosedError` that says the connection is closing or closed.
 *
 *     deno test -A tests/reliability/load_test.ts
 *     bun test ./tests/reliability/load_test.ts
 *
 * Real sockets on 127.0.0.1 (port 0) with `serve()` and `connect()`, and the
 * in-memory pipe of `tests/_pipe.ts` for a larger count. Every test is
 * bounded in time and closes all it opened, even when it fails.
 */
import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "../../src/client.ts";
import type { CloseInfo, WebSocketConnection } from "../../src/connection.ts";
import { takeover, type TakeoverOptions } from "../../src/takeover.ts";
import { ConnectionClosedError } from "../../src/errors.ts";
import type { Message } from "../../src/protocol.ts";
import { runtimeName } from "../../src/runtime.ts";
import { serve, type WebSocketServer } from "../../src/server.ts";
import { pipe } from "../_pipe.ts";
import {
  BOUNDARY_SIZES,
  EchoChecker,
  echoSession,
  HEADER_SIZE,
  MessageSource,
  type NumberedMessage,
  SEND_WAYS,
  sendNumbered,
} from "./_numbered_messages.ts";
import { slowTest } from "./_slow.ts";
import { assertClose } from "../_close.ts";

const HOST = "127.0.0.1";
const SEED = 0x5eed;
/** How the end that did not start the close sees a clean close(). */
const CLEAN_1000: CloseInfo = {
  closeCode: 1000,
  reason: "Normal closure",
  wasClean: true,
  sent: { closeCode: 1000, reason: "" }, // the echo
  received: { closeCode: 1000, reason: "Normal closure" },
};
/** Short enough that a failed test's cleanup does not wait long. */
const CLOSE_TIMEOUT = 2_000;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    await Promise.resolve(cleanup()).catch(() => {});
  }
});

/** Starts closing a connection and stops reading it: cleanup after a failure. */
function drop(connection: WebSocketConnection): void {
  connection.readable.cancel().catch(() => {});
  connection.close().catch(() => {});
}

/** An echo server that records anything going wrong in a handler. */
async function echoServer(): Promise<
  { server: WebSocketServer; errors: unknown[] }
> {
  const errors: unknown[] = [];
  const server = await serve({
    hostname: HOST,
    port: 0,
    closeTimeout: CLOSE_TIMEOUT,
    onError: (error) => errors.push(error),
  }, async (connection) => {
    try {
      for await (const message of connection.readable) {
        await connection.send(message);
      }
    } catch (error) {
      errors.push(error);
    }
  });
  cleanups.push(() => server.close());
  return { server, errors };
}

/** Runs {@link echoSession} with a fresh checker, which it returns. */
async function runEchoClient(
  connection: WebSocketConnection,
  source: MessageSource,
  count: number,
  window: number,
): Promise<EchoChecker> {
  const checker = new EchoChecker(source.clientId);
  await echoSession(connection, source, checker, count, window);
  assert.equal(checker.messages, count);
  assert.equal(checker.outstanding, 0);
  return checker;
}

/** Asserts `promise` rejects with a ConnectionClosedError naming `state`. */
async function rejectsClosed(
  promise: Promise<unknown>,
  state: "closing" | "closed",
  what: string,
): Promise<void> {
  await assert.rejects(promise, (error) => {
    assert.ok(
      error instanceof ConnectionClosedError,
      `${what}: not a ConnectionClosedError: ${error}`,
    );
    assert.match(
      error.message,
      new RegExp(`^Cannot send on a ${state} connection: close code 1000$`),
      `${what}: ${error.message}`,
    );
    assert.equal(error.closeCode, 1000, what);
    return true;
  });
}

describe(`load and no-loss (${runtimeName()})`, () => {
  test("EchoChecker catches a lost, repeated, misrouted, retyped or corrupted echo", () => {
    const take = (source: MessageSource, n: number) =>
      Array.from({ length: n }, () => source.next());
    const asSent = (message: NumberedMessage): Message =>
      message.record.kind === "text"
        ? new TextDecoder().decode(message.bytes)
        : message.bytes.slice();
    const checking = (...messages: NumberedMessage[]) => {
      const checker = new EchoChecker(3);
      for (const message of messages) checker.expect(message.record);
      return checker;
    };
    // The first 16: the boundary sizes as text (0-7), then binary (8-15).
    const mine = take(new MessageSource(3, SEED), 16);
    const theirs = take(new MessageSource(4, SEED), 16);
    const [empty, one, text125] = [mine[0]!, mine[1]!, mine[2]!];
    const binary = mine[13]!; // 65536 bytes

    const all = checking(...mine);
    for (const message of mine) all.check(asSent(message));
    assert.equal(all.messages, 16);
    assert.throws(() => all.check(asSent(empty)), /a duplicate/);

    assert.throws(
      () => checking(empty, one).check(asSent(one)),
      /echo of 1 bytes/,
    );
    assert.throws(
      () => checking(text125).check(asSent(theirs[2]!)),
      /header .*misrouted/,
    );
    assert.throws(
      () => checking(text125).check(text125.bytes.slice()),
      /echoed as binary/,
    );
    // A short message (no header) and a long one, with their last bit flipped.
    for (const message of [mine[9]!, binary]) {
      const corrupted = message.bytes.slice();
      corrupted[corrupted.length - 1]! ^= 0x01;
      assert.throws(() => checking(message).check(corrupted), /corrupted/);
    }
    const text = asSent(text125) as string;
    // One ASCII character of the body changed: the same size, another sum.
    let at = text.length - 1;
    while (text.charCodeAt(at) >= 0x80) at--;
    assert.ok(at >= HEADER_SIZE);
    const changed = text.slice(0, at) + (text[at] === "a" ? "b" : "a") +
      text.slice(at + 1);
    assert.throws(() => checking(text125).check(changed), /corrupted/);
    const bent = binary.bytes.slice();
    bent[40_000]! ^= 0x80;
    assert.throws(() => checking(binary).check(bent), /checksum .*corrupted/);
  });

  slowTest(
    "32 clients x 200 numbered messages (0 B to 256 KiB, every way of sending) are each echoed once, in order, intact",
    40_000,
    async () => {
      const CLIENTS = 32;
      const MESSAGES = 200;
      const { server, errors } = await echoServer();
      const url = `ws://${HOST}:${server.addr.port}/`;
      const clients = await Promise.all(
        Array.from({ length: CLIENTS }, async () => {
          const client = await connect(url, { closeTimeout: CLOSE_TIMEOUT });
          cleanups.push(() => drop(client));
          return client;
        }),
      );
      const checkers = await Promise.all(
        clients.map((client, id) =>
          runEchoClient(client, new MessageSource(id, SEED), MESSAGES, 4)
        ),
      );
      let echoed = 0;
      for (const checker of checkers) {
        assert.equal(checker.messages, MESSAGES);
        echoed += checker.bytes;
      }
      // The sequences did cover what they are meant to.
      const sizes = new Set<number>();
      const ways = new Set<string>();
      let big = 0;
      let splitCharacters = 0;
      const survey = new MessageSource(0, SEED);
      for (let i = 0; i < MESSAGES; i++) {
        const { record, way, cuts, bytes } = survey.next();
        sizes.add(record.size);
        ways.add(way);
        if (record.size > 128 * 1024) big++;
        // Text fragments that end inside a multi-byte character.
        if (
          record.kind === "text" && (way === "fragments" || way === "stream")
        ) {
          if (cuts.some((cut) => (bytes[cut]! & 0xc0) === 0x80)) {
            splitCharacters++;
          }
        }
      }
      for (const size of BOUNDARY_SIZES) assert.ok(sizes.has(size), `${size}`);
      assert.deepEqual([...ways].sort(), [...SEND_WAYS].sort());
      assert.ok(big > 0, "no message over 128 KiB");
      assert.ok(splitCharacters > 0, "no character split between fragments");
      assert.deepEqual(errors, []);
      assert.equal(server.connections.size, 0);
      console.log(
        `  ${CLIENTS} clients x ${MESSAGES} messages: ${
          (echoed / 2 ** 20).toFixed(1)
        } MiB echoed`,
      );
    },
  );

  slowTest(
    "4 pairs x 2,000 numbered messages (0 B to 64 KiB and the boundaries) over the in-memory pipe are each echoed once, in order, intact",
    40_000,
    async () => {
      const PAIRS = 4;
      const MESSAGES = 2_000;
      const options: Partial<TakeoverOptions> = {
        closeTimeout: CLOSE_TIMEOUT,
        keepalive: false,
      };
      const errors: unknown[] = [];
      const runs = Array.from({ length: PAIRS }, async (_, id) => {
        const [a, b] = pipe();
        const client = takeover(a, { ...options, role: "client" });
        const server = takeover(b, { ...options, role: "server" });
        cleanups.push(() => drop(client), () => drop(server));
        const echoing = (async () => {
          try {
            for await (const message of server.readable) {
              await server.send(message);
            }
          } catch (error) {
            errors.push(error);
          }
        })();
        const checker = await runEchoClient(
          client,
          new MessageSource(100 + id, SEED, { maxSize: 64 * 1024 }),
          MESSAGES,
          8,
        );
        await echoing;
        assert.deepEqual(await server.closed, CLEAN_1000);
        return checker.messages;
      });
      assert.deepEqual(
        await Promise.all(runs),
        new Array(PAIRS).fill(MESSAGES),
      );
      assert.deepEqual(errors, []);
    },
  );

  for (const sender of ["client", "server"] as const) {
    const receiver = sender === "client" ? "server" : "client";
    slowTest(
      `${sender}: 300 messages written by send() and writable before close() all arrive before the close frame; writes after it reject with ConnectionClosedError`,
      20_000,
      async () => {
        const MESSAGES = 300;
        const accepted = Promise.withResolvers<WebSocketConnection>();
        const server = await serve(
          { hostname: HOST, port: 0, closeTimeout: CLOSE_TIMEOUT },
          (connection) => accepted.resolve(connection),
        );
        cleanups.push(() => server.close());
        const client = await connect(`ws://${HOST}:${server.addr.port}/`, {
          closeTimeout: CLOSE_TIMEOUT,
        });
        cleanups.push(() => drop(client));
        const serverSide = await accepted.promise;
        const [from, to] = sender === "client"
          ? [client, serverSide]
          : [serverSide, client];

        // Write everything, then close at once: nothing is awaited.
        const source = new MessageSource(7, SEED, { maxSize: 128 * 1024 });
        const checker = new EchoChecker(source.clientId);
        const writer = from.writable.getWriter();
        const writes: Promise<unknown>[] = [];
        for (let i = 0; i < MESSAGES; i++) {
          const message = source.next();
          checker.expect(message.record);
          writes.push(sendNumbered(from, writer, message));
        }
        const closing = from.close();

        // The other side reads every message, then the end of the stream:
        // a message after the close frame would be dropped, and missed.
        const receiving = (async () => {
          for await (const message of to.readable) checker.check(message);
        })();
        receiving.catch(() => {}); // awaited below

        // The closing side refuses new writes, both ways. (A write to
        // `writable` settles in its turn, after the writes before it, so
        // only once the other side reads.)
        await rejectsClosed(from.send("late"), "closing", `${sender} send()`);
        await rejectsClosed(
          writer.write("late"),
          "closing",
          `${sender} writable`,
        );

        await receiving;
        assert.equal(checker.messages, MESSAGES);
        assert.equal(checker.outstanding, 0);
        await Promise.all(writes);
        assert.deepEqual(await to.closed, CLEAN_1000);
        assertClose(await closing, {
          closeCode: 1000,
          reason: "",
          wasClean: true,
        });

        // Once closed, both sides refuse writes, saying so.
        await rejectsClosed(from.send("later"), "closed", `${sender} send()`);
        await rejectsClosed(to.send("late"), "closed", `${receiver} send()`);
        await rejectsClosed(
          to.writable.getWriter().write("late"),
          "closed",
          `${receiver} writable`,
        );
      },
    );
  }
});
