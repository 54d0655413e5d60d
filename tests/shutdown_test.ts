/**
 * A server's graceful life over real sockets on 127.0.0.1: `signal`,
 * `close()`'s one overall deadline, handshakes under way, the report; a
 * python `websockets` client as one peer; `examples/echo_server.ts` shut
 * down by a signal.
 */
import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect as tcpConnect, type Socket } from "node:net";
import { connect } from "../src/client.ts";
import { HandshakeError } from "../src/errors.ts";
import { serve, type WebSocketServer } from "../src/server.ts";
import { bounded, sleep, timed } from "./_wait.ts";
import { PYTHON_PEER_MISSING, runPythonPeer } from "./_python_peer.ts";
import { runExample, waitForExit } from "./interop/_process.ts";

const servers: WebSocketServer[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start(options: Parameters<typeof serve>[0] = {}) {
  const server = await serve({
    hostname: "127.0.0.1",
    port: 0,
    ...options,
  }, async (connection) => {
    for await (const message of connection) await connection.send(message);
  });
  servers.push(server);
  return { server, url: `ws://127.0.0.1:${server.addr.port}` };
}

/** A raw TCP peer; resolves once connected. */
function rawPeer(
  port: number,
): Promise<{ socket: Socket; received: () => string }> {
  return new Promise((resolve, reject) => {
    let text = "";
    const socket = tcpConnect(
      port,
      "127.0.0.1",
      () => resolve({ socket, received: () => text }),
    );
    sockets.push(socket);
    socket.on("data", (chunk) => (text += chunk.toString("latin1")));
    socket.on("error", reject);
  });
}

const UPGRADE = (port: number) =>
  `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
  "Sec-WebSocket-Version: 13\r\n\r\n";

describe("serve's graceful life", () => {
  test(
    "aborting the signal sends 1001 to every connection; finished reports them clean",
    bounded(async () => {
      const abort = new AbortController();
      const { server, url } = await start({ signal: abort.signal });
      const clients = await Promise.all([1, 2, 3].map(() => connect(url)));
      while (server.connections.size < 3) await sleep(5);
      abort.abort();
      const report = await server.finished;
      assert.deepEqual(report, {
        connections: 3,
        clean: 3,
        unclean: 0,
        dropped: 0,
        handshakesRefused: 0,
        handshakesDropped: 0,
      });
      for (const client of clients) {
        const { closeCode, wasClean } = await client.closed;
        assert.deepEqual({ closeCode, wasClean }, {
          closeCode: 1001,
          wasClean: true,
        });
      }
      await assert.rejects(connect(url)); // no longer listening
      assert.deepEqual(await server.close(), report); // the same report
    }),
  );

  test(
    "a peer that never answers the close is dropped at the one deadline",
    bounded(async () => {
      const { server, url } = await start({ shutdownTimeout: 300 });
      const client = await connect(url);
      const deaf = await rawPeer(server.addr.port);
      deaf.socket.write(UPGRADE(server.addr.port));
      while (server.connections.size < 2) await sleep(5);
      let report;
      const ms = await timed(async () => (report = await server.close()));
      assert.ok(ms >= 280 && ms < 2_000, `shut down after ${ms} ms`);
      assert.deepEqual(report, {
        connections: 2,
        clean: 1,
        unclean: 0,
        dropped: 1,
        handshakesRefused: 0,
        handshakesDropped: 0,
      });
      assert.equal((await client.closed).closeCode, 1001);
      // The deaf peer got the 101 and the close frame (0x88), then the FIN.
      await new Promise<void>((resolve) => {
        if (deaf.socket.readableEnded) resolve();
        else deaf.socket.once("end", () => resolve());
      });
      assert.ok(deaf.received().startsWith("HTTP/1.1 101"));
      assert.ok(deaf.received().includes("\x88"));
    }),
  );

  test(
    "handshakes under way: not yet sent are dropped, being decided get 503",
    bounded(async () => {
      let entered!: () => void;
      const inHook = new Promise<void>((resolve) => (entered = resolve));
      const { server, url } = await start({
        onUpgrade: async () => {
          entered();
          await sleep(100);
        },
      });
      const silent = await rawPeer(server.addr.port);
      const deciding = connect(url);
      deciding.catch(() => {});
      await inHook;
      const report = await server.close({ timeout: 2_000 });
      await assert.rejects(
        deciding,
        (error) => error instanceof HandshakeError && error.status === 503,
      );
      assert.equal(report.handshakesDropped, 1);
      assert.equal(report.handshakesRefused, 1);
      assert.equal(report.connections, 0);
      await new Promise<void>((resolve) => {
        if (silent.socket.readableEnded) resolve();
        else silent.socket.once("end", () => resolve());
      });
    }),
  );

  test(
    "a signal already aborted shuts down at once",
    bounded(async () => {
      const { server } = await start({ signal: AbortSignal.abort() });
      assert.equal((await server.finished).connections, 0);
    }),
  );

  test("bad shutdown options throw at the call", async () => {
    assert.throws(
      () => serve({ signal: {} as AbortSignal }, () => {}),
      TypeError,
    );
    assert.throws(() => serve({ shutdownTimeout: 0 }, () => {}), RangeError);
    const { server } = await start();
    assert.throws(() => server.close({ timeout: -1 }), RangeError);
    assert.throws(() => server.close({ closeCode: 1005 }), RangeError);
  });

  test(
    "a python websockets client gets 1001 when the signal is aborted",
    { skip: PYTHON_PEER_MISSING ?? false },
    bounded(async () => {
      const abort = new AbortController();
      const { server, url } = await start({ signal: abort.signal });
      const peer = runPythonPeer({ url, wait_close: true });
      while (server.connections.size < 1) await sleep(5);
      abort.abort();
      const lines = await peer;
      assert.deepEqual(lines.at(-1), { closed: 1001, reason: "Going away" });
      assert.equal((await server.finished).clean, 1);
    }, 15_000),
  );

  test(
    "examples/echo_server.ts shuts down on SIGINT and SIGTERM and exits 0",
    bounded(async () => {
      for (const signal of ["SIGINT", "SIGTERM"] as const) {
        const child = runExample("echo_server.ts", {
          HOSTNAME: "127.0.0.1",
          PORT: "0",
          SHUTDOWN_TIMEOUT: "2000",
        });
        try {
          const line = await child.lines.next(15_000, "the first line");
          const url = /(ws:\/\/\S+)$/.exec(line)?.[1];
          assert.ok(url, line);
          const client = await connect(url);
          const deaf = await rawPeer(Number(new URL(url).port));
          deaf.socket.write(UPGRADE(Number(new URL(url).port)));
          await client.send("x");
          for await (const _ of client) break;
          const again = await connect(url);
          child.kill(signal);
          const { closeCode, wasClean } = await again.closed;
          assert.deepEqual({ closeCode, wasClean }, {
            closeCode: 1001,
            wasClean: true,
          });
          const ms = await timed(async () =>
            assert.deepEqual(await waitForExit(child, 8_000), {
              code: 0,
              signal: null,
            })
          );
          assert.ok(ms < 4_000, `exited ${ms} ms after the close`);
          assert.equal(child.stderr(), "");
        } finally {
          child.kill("SIGKILL");
          await waitForExit(child, 5_000);
        }
      }
    }, 40_000),
  );
});
