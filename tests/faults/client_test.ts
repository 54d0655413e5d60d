/**
 * Faults against OUR CLIENT over real sockets: `connect()` with short
 * deadlines, and raw TCP servers that vanish mid-handshake, mid-frame and
 * mid-close, reset the connection, go silent, or never answer (or never end)
 * a close.
 *
 *     deno test -A --import-map tests/_deno_import_map.json tests/faults/
 *     bun test ./tests/faults/
 *
 * Each test checks that `connect()` rejects with a typed error or the
 * connection ends promptly, that the client closes its socket itself
 * (recorded by a `TransportLog`), and that `closed` reports the right code
 * and `wasClean`, exactly.
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import { connect, type ConnectOptions } from "../../src/client.ts";
import type { WebSocketConnection } from "../../src/connection.ts";
import { ConnectionClosedError, HandshakeError } from "../../src/errors.ts";
import { Opcode } from "../../src/frame.ts";
import { runtimeName } from "../../src/runtime.ts";
import type { Transport } from "../../src/transport.ts";
import { closeOf } from "../_pipe.ts";
import { within } from "../_wait.ts";
import {
  acceptHandshake,
  between,
  CLOSE_TIMEOUT,
  closedWithin,
  type Defer,
  elapsed,
  encoder,
  faultTest,
  HANDSHAKE_TIMEOUT,
  KEEPALIVE,
  PROMPT,
  type RawEnd,
  rawServer,
  readHttpHead,
  settle,
  TransportLog,
} from "./_faults.ts";
import { assertClose } from "../_close.ts";

/**
 * `connect()` to `url` with the short deadlines and a recording transport;
 * the connection is closed after the test.
 */
async function client(
  defer: Defer,
  url: string,
  options: ConnectOptions = {},
): Promise<{ connection: WebSocketConnection; log: TransportLog }> {
  const log = new TransportLog();
  const connection = await within(
    PROMPT,
    connect(url, {
      handshakeTimeout: HANDSHAKE_TIMEOUT,
      closeTimeout: CLOSE_TIMEOUT,
      transport: log.runtime,
      ...options,
    }),
  );
  defer(() => connection.close());
  return { connection, log };
}

/**
 * A raw server that does the handshake by hand and hands the raw end to
 * `script`; `ends` resolves with each raw end.
 */
async function rawWebSocketServer(
  defer: Defer,
  script: (end: RawEnd) => Promise<unknown> | unknown = () => {},
) {
  const ends: RawEnd[] = [];
  const first = Promise.withResolvers<RawEnd>();
  const { url } = await rawServer(defer, async (transport) => {
    const end = await acceptHandshake(transport);
    ends.push(end);
    first.resolve(end);
    await script(end);
  });
  return { url, end: () => within(PROMPT, first.promise), ends };
}

/** How a server vanishes: a FIN (it may still read) or closing the socket. */
const VANISH = {
  "sends a FIN": (end: RawEnd) => end.peer.end(),
  "closes its socket": (end: RawEnd) => end.transport.close(),
} as const;

/** The same, before the handshake is done: on the bare socket. */
const VANISH_RAW = {
  "sends a FIN": (transport: Transport) => transport.writable.close(),
  "closes its socket": (transport: Transport) => transport.close(),
} as const;

/** Frames cut short, as a server sends them (unmasked). */
const CUT_FRAMES = {
  "mid-frame-header": (end: RawEnd) =>
    end.peer.frame(Opcode.Text, new Uint8Array(300)).subarray(0, 3),
  "mid-payload": (end: RawEnd) =>
    end.peer.frame(Opcode.Binary, new Uint8Array(100)).subarray(0, 2 + 10),
  "mid-close (a close frame with half its code)": (end: RawEnd) =>
    end.peer.frame(Opcode.Close, new Uint8Array([0x03, 0xe8])).subarray(
      0,
      2 + 1,
    ),
} as const;

/** The server's response to the handshake, cut after `length` bytes. */
const CUT_RESPONSES = {
  "before answering": 0,
  "mid-status-line": "HTTP/1.1 101 Swi".length,
  "mid-header": "HTTP/1.1 101 Switching Protocols\r\nUpgr".length,
  "before the final empty line":
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n".length,
} as const;

describe(`faults against connect() on ${runtimeName()}`, () => {
  // ---- the server vanishes mid-handshake ----

  for (const [where, length] of Object.entries(CUT_RESPONSES)) {
    for (const [how, vanish] of Object.entries(VANISH_RAW)) {
      faultTest(
        `connect rejects with HandshakeError status 0 when the server ${how} ${where}`,
        async (defer) => {
          const { url } = await rawServer(defer, async (transport) => {
            const reader = transport.readable.getReader();
            await readHttpHead(reader);
            reader.releaseLock();
            const writer = transport.writable.getWriter();
            const response = encoder.encode(
              "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n",
            );
            if (length > 0) await writer.write(response.subarray(0, length));
            writer.releaseLock();
            await settle();
            await vanish(transport);
          });
          const log = new TransportLog();
          const took = await elapsed(() =>
            assert.rejects(
              connect(url, {
                handshakeTimeout: 5_000, // not what ends it
                transport: log.runtime,
              }),
              (error) => {
                assert.ok(error instanceof HandshakeError, `${error}`);
                assert.equal(error.status, 0, error.message);
                return true;
              },
            )
          );
          between(took, 0, PROMPT, "rejected");
          assert.ok((await log.nth(0)).isClosed, "the socket is closed");
        },
      );
    }
  }

  // ---- the server vanishes mid-frame ----

  for (const [where, cutFrame] of Object.entries(CUT_FRAMES)) {
    for (const [how, vanish] of Object.entries(VANISH)) {
      faultTest(
        `connect's connection reports 1006 when the server ${how} ${where}`,
        async (defer) => {
          const { url, end } = await rawWebSocketServer(defer);
          const { connection, log } = await client(defer, url);
          const raw = await end();
          await raw.peer.write(cutFrame(raw));
          await settle();
          assert.equal(connection.info.state, "open", "waiting for the rest");
          const reading = connection.readable.getReader().read();
          reading.catch(() => {});
          const took = await elapsed(async () => {
            await vanish(raw);
            assertClose(await closedWithin(connection), {
              closeCode: 1006,
              wasClean: false,
            });
          });
          between(took, 0, PROMPT, "closed");
          await assert.rejects(reading, ConnectionClosedError);
          await within(PROMPT, (await log.nth(0)).closed);
          // No close frame for a dead socket; the FIN's sender still reads.
          if (how === "sends a FIN") {
            assert.deepEqual(await within(PROMPT, raw.peer.rest()), []);
          }
        },
      );
    }
  }

  // ---- a reset ----

  faultTest(
    "connect's connection reports 1006 when the server resets it under a send",
    async (defer) => {
      // A kernel reset: the raw server closes with our 4 MiB unread (see
      // "closing a socket with unread bytes resets the connection").
      const { url, end } = await rawWebSocketServer(defer);
      const { connection, log } = await client(defer, url);
      const raw = await end();
      const sending = connection.send(new Uint8Array(4 << 20));
      sending.catch(() => {});
      await settle(100);
      const took = await elapsed(async () => {
        raw.transport.close();
        assertClose(await closedWithin(connection), {
          closeCode: 1006,
          wasClean: false,
        });
      });
      between(took, 0, PROMPT, "closed");
      // The send may have been handed to the socket before the reset; the
      // next one is refused.
      await within(PROMPT, sending).catch(() => {});
      await assert.rejects(connection.send("after"), ConnectionClosedError);
      await within(PROMPT, (await log.nth(0)).closed);
    },
  );

  // ---- failing while the server still writes ----

  faultTest(
    "connect's connection, failing, reads on until the server ends TCP: a server still writing gets the 1002, then a FIN, not a reset",
    async (defer) => {
      // Closing a socket with bytes unread sends a reset (see the reset test
      // of the server faults), and a reset can cost the other end the close
      // frame it has not read yet. So a failing connection reads on,
      // discarding, until the server closes (RFC 6455 §7.1.1) or
      // closeTimeout.
      const { url, end } = await rawWebSocketServer(defer);
      const { connection, log } = await client(defer, url);
      const raw = await end();
      // A server's frame must not be masked (RFC 6455 §5.1).
      await raw.peer.write(raw.peer.frame(Opcode.Text, "hi", { mask: true }));
      assertClose(await closedWithin(connection), {
        closeCode: 1002,
        wasClean: false,
      });
      // The server, not reading yet, writes on after the bad frame.
      for (let i = 0; i < 20; i++) {
        await settle(5);
        await raw.peer.write(raw.peer.frame(Opcode.Ping, "still here"));
      }
      const socket = await log.nth(0);
      assert.equal(socket.isClosed, false, "waits for the server's end");
      assert.equal(closeOf(await raw.peer.expect()).code, 1002);
      assert.equal(await within(PROMPT, raw.peer.next()), null, "a FIN");
      await raw.peer.end();
      await within(PROMPT, socket.closed);
    },
  );

  faultTest(
    "connect's connection, failing, closes TCP itself at closeTimeout when the server never ends it",
    async (defer) => {
      const { url, end } = await rawWebSocketServer(defer);
      const { connection, log } = await client(defer, url);
      const raw = await end();
      const start = performance.now();
      await raw.peer.write(raw.peer.frame(Opcode.Text, "hi", { mask: true }));
      assertClose(await closedWithin(connection), {
        closeCode: 1002,
        wasClean: false,
      });
      const closedAt = await within(
        CLOSE_TIMEOUT + PROMPT,
        (await log.nth(0)).closed,
      );
      between(
        closedAt - start,
        CLOSE_TIMEOUT - 50,
        CLOSE_TIMEOUT + 700,
        "dropped",
      );
      const frames = await within(PROMPT, raw.peer.rest());
      assert.deepEqual(frames.map((frame) => closeOf(frame).code), [1002]);
    },
  );

  // ---- a half-open server ----

  faultTest(
    "connect's keepalive drops a server that neither reads nor writes within interval + timeout, 1006",
    async (defer) => {
      const { url, end } = await rawWebSocketServer(defer);
      const start = performance.now();
      const { connection, log } = await client(defer, url, {
        keepalive: KEEPALIVE,
      });
      assertClose(await closedWithin(connection, 3_000), {
        closeCode: 1006,
        wasClean: false,
      });
      const limit = KEEPALIVE.interval + KEEPALIVE.timeout;
      between(performance.now() - start, limit - 50, limit + 600, "dropped");
      await within(PROMPT, (await log.nth(0)).closed);
      // The silent server was sent one ping, then the end; no close frame.
      const frames = await within(PROMPT, (await end()).peer.rest());
      assert.deepEqual(frames.map((frame) => frame.opcode), [Opcode.Ping]);
      assert.ok(frames.every((frame) => frame.masked), "a client masks");
    },
  );

  // ---- a server that never answers our close, or never ends TCP ----

  faultTest(
    "connect's connection drops a server that never answers its close at closeTimeout, 1006",
    async (defer) => {
      const { url, end } = await rawWebSocketServer(defer);
      const { connection, log } = await client(defer, url);
      const took = await elapsed(async () => {
        assertClose(await connection.close({ closeCode: 4002 }), {
          closeCode: 1006,
          reason: "Close handshake timed out",
          wasClean: false,
        });
      });
      between(took, CLOSE_TIMEOUT - 50, CLOSE_TIMEOUT + 700, "dropped");
      await within(PROMPT, (await log.nth(0)).closed);
      const frames = await within(PROMPT, (await end()).peer.rest());
      assert.deepEqual(frames.map(closeOf), [{ code: 4002, reason: "" }]);
    },
  );

  faultTest(
    "connect's connection closes TCP itself at closeTimeout when the server answers the close but keeps TCP open: clean",
    async (defer) => {
      // RFC 6455 §7.1.1: the client "SHOULD wait for the server to close
      // the connection but MAY close the connection at any time after
      // sending and receiving a Close message, e.g., if it has not received
      // a TCP Close from the server in a reasonable time period". §7.1.4:
      // "If the TCP connection was closed after the WebSocket closing
      // handshake was completed, the WebSocket connection is said to have
      // been closed _cleanly_", and §7.1.5 makes the code that of the close
      // frame received. So: the server's code, wasClean true, not 1006.
      const { url, end } = await rawWebSocketServer(defer, async (raw) => {
        const frame = await raw.peer.expect();
        assert.equal(frame.opcode, Opcode.Close);
        await raw.peer.sendClose(closeOf(frame).code, "see you");
        // …and keeps the TCP connection open.
      });
      const { connection, log } = await client(defer, url);
      const took = await elapsed(async () => {
        assertClose(await connection.close({ closeCode: 4003 }), {
          closeCode: 4003,
          reason: "see you",
          wasClean: true,
        });
      });
      between(took, CLOSE_TIMEOUT - 50, CLOSE_TIMEOUT + 700, "closed");
      await within(PROMPT, (await log.nth(0)).closed);
      assert.deepEqual(await within(PROMPT, (await end()).peer.rest()), []);
    },
  );
});
