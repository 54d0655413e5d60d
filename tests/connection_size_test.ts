/**
 * The size of an idle connection, held where it was measured: a Bun
 * server's idle connections are mostly these objects, and a connection of
 * 18 fields or fewer sits in JavaScriptCore's 160-byte size class rather
 * than 224 (see `RareState` in src/connection.ts). Bun only: V8 has no
 * equivalent of `bun:jsc`'s shallow size, so on Deno the test is skipped
 * (and says so).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "../src/client.ts";
import type { WebSocketConnection } from "../src/connection.ts";
import { takeover } from "../src/takeover.ts";
import { runtimeName } from "../src/runtime.ts";
import { serve } from "../src/server.ts";
import { Protocol } from "../src/protocol.ts";
import { bunTransports } from "../src/transports/bun.ts";
import type { Transport } from "../src/transport.ts";

const onBun = runtimeName() === "bun";
/** The size class an idle connection must stay in, in bytes. */
const CONNECTION_LIMIT = 160;
/**
 * The size class a Bun socket's channel must stay in: 12 fields at most
 * (see `RareSocketState` in src/transports/bun.ts).
 */
const BUN_CHANNEL_LIMIT = 112;
/** And a connection's protocol: 12 fields at most (see `#bits` in src/protocol.ts). */
const PROTOCOL_LIMIT = 112;

/** `bun:jsc`'s shallow size of an object, in bytes. */
async function shallowSizeOf(): Promise<(value: object) => number> {
  const jsc = "bun:jsc"; // not a static import: Deno cannot resolve it
  const { estimateShallowMemoryUsageOf } = await import(jsc);
  return estimateShallowMemoryUsageOf;
}

test(
  "an idle connection is 160 bytes on Bun, over a pipe and over a socket, either end",
  { skip: onBun ? false : "needs bun:jsc's shallow sizes (Bun only)" },
  async () => {
    const sizeOf = await shallowSizeOf();
    const up = new TransformStream<Uint8Array, Uint8Array>();
    const down = new TransformStream<Uint8Array, Uint8Array>();
    const client = takeover(
      { readable: down.readable, writable: up.writable },
      { role: "client" },
    );
    const server = takeover(
      { readable: up.readable, writable: down.writable },
      { role: "server" },
    );
    assert.ok(
      sizeOf(client) <= CONNECTION_LIMIT,
      `a client over a pipe is ${sizeOf(client)} bytes`,
    );
    assert.ok(
      sizeOf(server) <= CONNECTION_LIMIT,
      `a server over a pipe is ${sizeOf(server)} bytes`,
    );
    await Promise.all([client.close(), server.closed]);

    const accepted: WebSocketConnection[] = [];
    const ws = await serve(
      { hostname: "127.0.0.1", port: 0 },
      (connection) => void accepted.push(connection),
    );
    try {
      const socket = await connect(`ws://127.0.0.1:${ws.addr.port}/chat`, {
        protocols: ["chat"],
      });
      await socket.ping(); // the server's side is in `accepted` by then
      const [ours] = accepted;
      assert.ok(ours);
      assert.ok(
        sizeOf(ours) <= CONNECTION_LIMIT,
        `a server connection over a socket is ${sizeOf(ours)} bytes`,
      );
      assert.ok(
        sizeOf(socket) <= CONNECTION_LIMIT,
        `a client connection over a socket is ${sizeOf(socket)} bytes`,
      );
      await socket.close();
    } finally {
      await ws.close();
    }
  },
);

test(
  "a Bun socket's channel is 112 bytes, accepted or connected, before and after its addresses are read",
  { skip: onBun ? false : "needs bun:jsc's shallow sizes (Bun only)" },
  async () => {
    const sizeOf = await shallowSizeOf();
    const accepted = Promise.withResolvers<Transport>();
    const listener = await bunTransports.listen(
      { hostname: "127.0.0.1", port: 0 },
      accepted.resolve,
    );
    try {
      const connected = await bunTransports.connect({
        hostname: "127.0.0.1",
        port: listener.addr.port,
      });
      const server = await accepted.promise;
      for (
        const [end, transport] of [["accepted", server], [
          "connected",
          connected,
        ]] as const
      ) {
        assert.ok(
          sizeOf(transport) <= BUN_CHANNEL_LIMIT,
          `a channel ${end} is ${sizeOf(transport)} bytes`,
        );
      }
      // The addresses, once read, are kept out of line.
      assert.equal(server.remoteAddr?.port, connected.localAddr?.port);
      assert.equal(connected.remoteAddr?.port, listener.addr.port);
      assert.ok(sizeOf(server) <= BUN_CHANNEL_LIMIT);
      assert.ok(sizeOf(connected) <= BUN_CHANNEL_LIMIT);
      connected.close();
      server.close();
    } finally {
      listener.close();
    }
  },
);

test(
  "a protocol is 112 bytes on Bun, either role, before and after messages and a close",
  { skip: onBun ? false : "needs bun:jsc's shallow sizes (Bun only)" },
  async () => {
    const sizeOf = await shallowSizeOf();
    for (const role of ["server", "client"] as const) {
      const sent: Uint8Array[] = [];
      const protocol = new Protocol({ role }, {
        send: (bytes) => void sent.push(bytes),
        message: () => {},
        ping: () => {},
        pong: () => {},
        close: () => {},
      });
      assert.ok(
        sizeOf(protocol) <= PROTOCOL_LIMIT,
        `a ${role}'s protocol is ${sizeOf(protocol)} bytes`,
      );
      protocol.sendFragment("a", false);
      protocol.sendFragment("b", true);
      protocol.close(1000);
      assert.equal(protocol.state, "closing");
      assert.equal(protocol.role, role);
      assert.ok(sizeOf(protocol) <= PROTOCOL_LIMIT);
    }
  },
);
