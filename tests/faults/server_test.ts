/**
 * Faults against OUR SERVER over real sockets: `serve()` with short
 * deadlines, and raw TCP clients that vanish mid-handshake, mid-frame and
 * mid-close, reset the connection, go silent, drip their handshake, or never
 * answer a close.
 *
 *     deno test -A --import-map tests/_deno_import_map.json tests/faults/
 *     bun test ./tests/faults/
 *
 * Each test checks that the server ends the connection promptly, closes the
 * socket itself (recorded by a `TransportLog`), and reports the right
 * `closed` result, code and `wasClean` exactly.
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import { connect } from "../../src/client.ts";
import type { WebSocketConnection } from "../../src/connection.ts";
import { ConnectionClosedError } from "../../src/errors.ts";
import { Opcode } from "../../src/frame.ts";
import { runtimeName } from "../../src/runtime.ts";
import { serve, type ServeOptions } from "../../src/server.ts";
import type { Transport } from "../../src/transport.ts";
import { closeOf } from "../_pipe.ts";
import { sleep, within } from "../_wait.ts";
import {
  between,
  CLOSE_TIMEOUT,
  closedWithin,
  type Defer,
  elapsed,
  faultTest,
  HANDSHAKE_TIMEOUT,
  HOST,
  KEEPALIVE,
  PROMPT,
  rawClient,
  type RawEnd,
  rawTcp,
  readToEnd,
  rt,
  settle,
  statusOf,
  TransportLog,
  upgradeRequest,
} from "./_faults.ts";
import { assertClose } from "../_close.ts";

/**
 * `serve()` on a free port with the short deadlines and recording
 * transports; the handler reads every message until the connection ends.
 */
async function server(defer: Defer, options: Partial<ServeOptions> = {}) {
  const log = new TransportLog();
  const connections: WebSocketConnection[] = [];
  const accepted: ((connection: WebSocketConnection) => void)[] = [];
  const errors: unknown[] = [];
  const handlerErrors: unknown[] = [];
  const server = await serve({
    hostname: HOST,
    port: 0,
    handshakeTimeout: HANDSHAKE_TIMEOUT,
    closeTimeout: CLOSE_TIMEOUT,
    keepalive: false,
    transport: log.runtime,
    onError: (error) => errors.push(error),
    ...options,
  }, async (connection) => {
    connections.push(connection);
    for (const wake of accepted.splice(0)) wake(connection);
    try {
      for await (const _ of connection.readable) { /* read on */ }
    } catch (error) {
      handlerErrors.push(error);
    }
  });
  defer(() => server.close());
  const { port } = server.addr;
  /** The `index`th connection the handler got, waiting for it within a bound. */
  const connection = async (index = 0): Promise<WebSocketConnection> => {
    while (connections.length <= index) {
      await within(
        PROMPT,
        new Promise<WebSocketConnection>((wake) => accepted.push(wake)),
      );
    }
    return connections[index]!;
  };
  return {
    server,
    port,
    log,
    connections,
    connection,
    errors,
    handlerErrors,
  };
}

/** How a peer vanishes: a FIN (it may still read) or closing the socket. */
const VANISH = {
  "sends a FIN": (end: RawEnd) => end.peer.end(),
  "closes its socket": (end: RawEnd) => end.transport.close(),
} as const;

/** The same before the upgrade: `true` for a FIN, `false` for a close. */
const HANDSHAKE_VANISH = { "sends a FIN": true, "closes its socket": false };

/** Frames cut short, as a client sends them (masked). */
const CUT_FRAMES = {
  "mid-frame-header": (end: RawEnd) =>
    end.peer.frame(Opcode.Text, "hello").subarray(0, 3),
  "mid-payload": (end: RawEnd) =>
    end.peer.frame(Opcode.Binary, new Uint8Array(100)).subarray(0, 2 + 4 + 10),
  "mid-close (a close frame with half its code)": (end: RawEnd) =>
    end.peer.frame(Opcode.Close, new Uint8Array([0x03, 0xe8])).subarray(
      0,
      2 + 4 + 1,
    ),
} as const;

describe(`faults against serve() on ${runtimeName()}`, () => {
  // ---- the peer vanishes mid-handshake ----

  for (const [how, fin] of Object.entries(HANDSHAKE_VANISH)) {
    faultTest(
      `serve frees the socket of a client that ${how} mid-handshake`,
      async (defer) => {
        const { port, log, connections, errors } = await server(defer, {
          handshakeTimeout: 5_000, // not what ends it
        });
        const transport = await rawTcp(port, defer);
        const writer = transport.writable.getWriter();
        const request = upgradeRequest(port, "dGhlIHNhbXBsZSBub25jZQ==");
        await writer.write(request.subarray(0, 40));
        const accepted = await log.nth(0);
        await settle();
        const reader = transport.readable.getReader();
        const took = await elapsed(async () => {
          if (fin) await writer.close();
          else transport.close();
          await within(PROMPT, accepted.closed);
        });
        between(took, 0, PROMPT, "the server closed the socket");
        if (fin) {
          // Still reading: the server says why before closing.
          const response = await within(PROMPT, readToEnd(reader));
          assert.equal(statusOf(response), 400);
        }
        assert.deepEqual(connections, [], "never upgraded");
        assert.deepEqual(errors, [], "a client's fault is no server error");
      },
    );
  }

  // ---- the peer vanishes mid-frame ----

  for (const [where, cutFrame] of Object.entries(CUT_FRAMES)) {
    for (const [how, vanish] of Object.entries(VANISH)) {
      faultTest(
        `serve reports 1006 when a client ${how} ${where}`,
        async (defer) => {
          const { port, log, connection, handlerErrors } = await server(defer);
          const end = await rawClient(port, defer);
          const ours = await connection();
          await end.peer.write(cutFrame(end));
          await settle();
          assert.equal(ours.info.state, "open", "waiting for the rest");
          const took = await elapsed(async () => {
            await vanish(end);
            assertClose(await closedWithin(ours), {
              closeCode: 1006,
              wasClean: false,
            });
          });
          between(took, 0, PROMPT, "closed");
          await within(PROMPT, (await log.nth(0)).closed);
          assert.ok(handlerErrors[0] instanceof ConnectionClosedError);
          // Nothing was sent to the peer: no close frame for a dead socket.
          if (how === "sends a FIN") {
            assert.deepEqual(await end.peer.rest(), []);
          }
        },
      );
    }
  }

  // ---- a reset ----

  faultTest(
    "closing a socket with unread bytes resets the connection: the other end's writes fail",
    async (defer) => {
      // The reset the tests below rely on, checked on the transports alone:
      // after a FIN the other end could still write; after a reset it fails.
      const accepted = Promise.withResolvers<Transport>();
      const listener = await rt.listen(
        { hostname: HOST, port: 0 },
        (transport) => {
          defer(() => transport.close());
          accepted.resolve(transport);
        },
      );
      defer(() => listener.close());
      const sender = await rawTcp(listener.addr.port, defer);
      const receiver = await within(PROMPT, accepted.promise);
      const writer = sender.writable.getWriter();
      const writing = writer.write(new Uint8Array(4 << 20)); // never all read
      writing.catch(() => {});
      await settle(100);
      receiver.close();
      await assert.rejects(
        within(
          PROMPT,
          (async () => {
            await writing;
            for (;;) await writer.write(new Uint8Array(1024));
          })(),
        ),
        (error) => !/timed out/.test(String(error)),
      );
    },
  );

  faultTest(
    "serve reports 1006 when a client resets the connection under a send",
    async (defer) => {
      // Neither runtime can set SO_LINGER 0, so the reset is the kernel's:
      // closing a socket with unread bytes sends RST (RFC 2525 §2.17). The
      // raw client stops reading while the server sends 4 MiB, then closes.
      const { port, log, connection } = await server(defer);
      const end = await rawClient(port, defer);
      const ours = await connection();
      const sending = ours.send(new Uint8Array(4 << 20));
      sending.catch(() => {});
      await settle(100); // the socket buffers fill up, unread
      const took = await elapsed(async () => {
        end.transport.close();
        assertClose(await closedWithin(ours), {
          closeCode: 1006,
          wasClean: false,
        });
      });
      between(took, 0, PROMPT, "closed");
      // The send may have been handed to the socket before the reset; the
      // next one is refused.
      await within(PROMPT, sending).catch(() => {});
      await assert.rejects(ours.send("after"), ConnectionClosedError);
      await within(PROMPT, (await log.nth(0)).closed);
    },
  );

  // ---- failing while the client still writes ----

  faultTest(
    "serve, failing, reads on until the client ends TCP: a client still writing gets the 1002, then a FIN, not a reset",
    async (defer) => {
      // See "closing a socket with unread bytes resets the connection": a
      // reset can cost the client the close frame it has not read yet.
      const { port, log, connection, handlerErrors } = await server(defer);
      const end = await rawClient(port, defer);
      const ours = await connection();
      // A client's frame must be masked (RFC 6455 §5.1).
      await end.peer.write(end.peer.frame(Opcode.Text, "hi", { mask: false }));
      assertClose(await closedWithin(ours), {
        closeCode: 1002,
        wasClean: false,
      });
      // The client, not reading yet, writes on after the bad frame.
      for (let i = 0; i < 20; i++) {
        await settle(5);
        await end.peer.write(end.peer.frame(Opcode.Ping, "still here"));
      }
      const socket = await log.nth(0);
      assert.equal(socket.isClosed, false, "waits for the client's end");
      assert.equal(closeOf(await end.peer.expect()).code, 1002);
      assert.equal(await within(PROMPT, end.peer.next()), null, "a FIN");
      await end.peer.end();
      await within(PROMPT, socket.closed);
      assert.equal(handlerErrors.length, 1);
    },
  );

  faultTest(
    "serve, failing, closes TCP itself at closeTimeout when the client never ends it",
    async (defer) => {
      const { port, log, connection } = await server(defer);
      const end = await rawClient(port, defer);
      const ours = await connection();
      const start = performance.now();
      await end.peer.write(end.peer.frame(Opcode.Text, "hi", { mask: false }));
      assertClose(await closedWithin(ours), {
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
      const frames = await within(PROMPT, end.peer.rest());
      assert.deepEqual(frames.map((frame) => closeOf(frame).code), [1002]);
    },
  );

  // ---- a half-open peer ----

  faultTest(
    "serve's keepalive drops a client that neither reads nor writes within interval + timeout, 1006",
    async (defer) => {
      const { port, log, connection } = await server(defer, {
        keepalive: KEEPALIVE,
      });
      const start = performance.now();
      const end = await rawClient(port, defer);
      const ours = await connection();
      assertClose(await closedWithin(ours, 3_000), {
        closeCode: 1006,
        wasClean: false,
      });
      const limit = KEEPALIVE.interval + KEEPALIVE.timeout;
      between(performance.now() - start, limit - 50, limit + 600, "dropped");
      await within(PROMPT, (await log.nth(0)).closed);
      // What the silent peer was sent: one ping, then the end; no close frame.
      const frames = await within(PROMPT, end.peer.rest());
      assert.deepEqual(frames.map((frame) => frame.opcode), [Opcode.Ping]);
    },
  );

  // ---- slowloris ----

  faultTest(
    "serve answers a handshake dripping a byte every 100 ms with 408 at handshakeTimeout",
    async (defer) => {
      const { port, log, connections } = await server(defer);
      const transport = await rawTcp(port, defer);
      const writer = transport.writable.getWriter();
      const request = upgradeRequest(port, "dGhlIHNhbXBsZSBub25jZQ==");
      let stop = false;
      const dripping = (async () => {
        for (let at = 0; at < request.length && !stop; at++) {
          await writer.write(request.subarray(at, at + 1));
          await sleep(100);
        }
      })().catch(() => {}); // the server hung up on us
      const start = performance.now();
      const response = await within(
        3_000,
        readToEnd(transport.readable.getReader()),
      );
      const took = performance.now() - start;
      stop = true;
      await dripping;
      between(took, HANDSHAKE_TIMEOUT - 50, HANDSHAKE_TIMEOUT + 700, "refused");
      assert.equal(statusOf(response), 408);
      const closedAt = await within(PROMPT, (await log.nth(0)).closed);
      between(closedAt - start, 0, HANDSHAKE_TIMEOUT + 700, "socket closed");
      assert.deepEqual(connections, [], "never upgraded");
    },
  );

  // ---- a peer that never answers our close ----

  faultTest(
    "serve drops a client that never answers its close at closeTimeout, 1006",
    async (defer) => {
      const { port, log, connection } = await server(defer);
      const end = await rawClient(port, defer);
      const ours = await connection();
      const took = await elapsed(async () => {
        assertClose(await ours.close({ closeCode: 4001 }), {
          closeCode: 1006,
          reason: "Close handshake timed out",
          wasClean: false,
        });
      });
      between(took, CLOSE_TIMEOUT - 50, CLOSE_TIMEOUT + 700, "dropped");
      await within(PROMPT, (await log.nth(0)).closed);
      const frames = await within(PROMPT, end.peer.rest());
      assert.deepEqual(frames.map(closeOf), [{ code: 4001, reason: "" }]);
    },
  );

  // ---- the server closes while clients are mid-message ----

  faultTest(
    "server.close() while connect() clients are mid-message: 1001 both ways, clean, finished at once",
    async (defer) => {
      const { server: ws, port, connection } = await server(defer);
      const clients: WebSocketConnection[] = [];
      const ours: WebSocketConnection[] = [];
      for (let i = 0; i < 3; i++) {
        const client = await within(
          PROMPT,
          connect(`ws://${HOST}:${port}/`, { closeTimeout: CLOSE_TIMEOUT }),
        );
        defer(() => client.close());
        clients.push(client);
        ours.push(await connection(i));
        // The first half of a large message, in fragments: never finished.
        const fragments = client.openMessage().getWriter();
        for (let f = 0; f < 5; f++) {
          await fragments.write(new Uint8Array(64 * 1024));
        }
      }
      await settle();
      const took = await elapsed(async () => {
        await within(3_000, ws.close());
        await within(PROMPT, ws.finished);
      });
      // The clients answer the close between their fragments at once.
      between(took, 0, CLOSE_TIMEOUT - 50, "finished");
      for (const [i, client] of clients.entries()) {
        assertClose(await within(PROMPT, client.closed), {
          closeCode: 1001,
          reason: "Going away",
          wasClean: true,
        });
        assertClose(await closedWithin(ours[i]!), {
          closeCode: 1001,
          wasClean: true,
        });
        await assert.rejects(
          client.send(new Uint8Array(1)),
          ConnectionClosedError,
        );
      }
      assert.equal(ws.connections.size, 0);
    },
  );

  faultTest(
    "server.close() while raw clients are mid-frame: 1001 sent, dropped at closeTimeout, finished",
    async (defer) => {
      const { server: ws, port, connection } = await server(defer);
      const ends: RawEnd[] = [];
      const ours: WebSocketConnection[] = [];
      for (let i = 0; i < 3; i++) {
        const end = await rawClient(port, defer);
        ends.push(end);
        ours.push(await connection(i));
        // Half of a 64 KiB binary frame: the server is mid-message.
        const frame = end.peer.frame(Opcode.Binary, new Uint8Array(65536));
        await end.peer.write(frame.subarray(0, 32768));
      }
      await settle();
      const took = await elapsed(async () => {
        await within(3_000, ws.close());
        await within(PROMPT, ws.finished);
      });
      between(took, CLOSE_TIMEOUT - 50, CLOSE_TIMEOUT + 700, "finished");
      for (const [i, end] of ends.entries()) {
        assertClose(await closedWithin(ours[i]!), {
          closeCode: 1006,
          wasClean: false,
        });
        const frames = await within(PROMPT, end.peer.rest());
        assert.deepEqual(frames.map(closeOf), [{
          code: 1001,
          reason: "Going away",
        }]);
      }
      assert.equal(ws.connections.size, 0);
    },
  );
});
