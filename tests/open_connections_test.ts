/**
 * `OpenConnections`, the live set of open connections a server keeps as
 * `server.connections`: it keeps a `Set`'s promises while connections close
 * under an iteration. In memory with `takeover`, and over real sockets with
 * `serve` and `connect`, on whichever runtime runs it.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "../src/client.ts";
import type { WebSocketConnection } from "../src/connection.ts";
import { OpenConnections } from "../src/open_connections.ts";
import { takeover } from "../src/takeover.ts";
import { runtimeName } from "../src/runtime.ts";
import { serve } from "../src/server.ts";
import { bounded, within } from "./_wait.ts";

const HOST = "127.0.0.1";

/** `count` client/server pairs over in-memory pipes; clients kept in `open`. */
function pairs(count: number, open: OpenConnections) {
  const clients: WebSocketConnection[] = [];
  const servers: WebSocketConnection[] = [];
  for (let i = 0; i < count; i++) {
    const up = new TransformStream<Uint8Array, Uint8Array>();
    const down = new TransformStream<Uint8Array, Uint8Array>();
    clients.push(takeover(
      { readable: down.readable, writable: up.writable },
      { role: "client", openIn: open },
    ));
    servers.push(takeover(
      { readable: up.readable, writable: down.writable },
      { role: "server", keepalive: false },
    ));
  }
  return { clients, servers };
}

describe("OpenConnections", () => {
  test(
    "OpenConnections: closing each connection while iterating visits every one",
    bounded(async () => {
      const open = new OpenConnections();
      const { clients, servers } = pairs(5, open);
      assert.equal(open.size, 5);
      const visited: WebSocketConnection[] = [];
      for (const connection of open) {
        visited.push(connection);
        await connection.close();
      }
      assert.deepEqual(visited, clients);
      assert.equal(open.size, 0);
      await Promise.all(servers.map((server) => server.closed));
    }),
  );

  test(
    "OpenConnections: forEach, values, keys and entries all survive closes on the way",
    bounded(async () => {
      for (
        const walk of [
          async (
            open: OpenConnections,
            each: (c: WebSocketConnection) => Promise<unknown>,
          ) => {
            const waits: Promise<unknown>[] = [];
            open.forEach((c) => waits.push(each(c)));
            await Promise.all(waits);
          },
          async (
            open: OpenConnections,
            each: (c: WebSocketConnection) => Promise<unknown>,
          ) => {
            for (const c of open.values()) await each(c);
          },
          async (
            open: OpenConnections,
            each: (c: WebSocketConnection) => Promise<unknown>,
          ) => {
            for (const c of open.keys()) await each(c);
          },
          async (
            open: OpenConnections,
            each: (c: WebSocketConnection) => Promise<unknown>,
          ) => {
            for (const [c, same] of open.entries()) {
              assert.equal(c, same);
              await each(c);
            }
          },
        ]
      ) {
        const open = new OpenConnections();
        const { clients, servers } = pairs(4, open);
        const visited: WebSocketConnection[] = [];
        await walk(open, (c) => {
          visited.push(c);
          return c.close();
        });
        assert.deepEqual(visited, clients);
        assert.equal(open.size, 0);
        await Promise.all(servers.map((server) => server.closed));
      }
    }),
  );

  test(
    "OpenConnections: a connection that ends before it is reached is not visited, the rest are",
    bounded(async () => {
      const open = new OpenConnections();
      const { clients, servers } = pairs(4, open);
      const visited: WebSocketConnection[] = [];
      for (const connection of open) {
        visited.push(connection);
        // The first visit closes the third connection too.
        if (visited.length === 1) {
          await Promise.all([connection.close(), clients[2]!.close()]);
        } else await connection.close();
      }
      assert.deepEqual(visited, [clients[0], clients[1], clients[3]]);
      await Promise.all(servers.map((server) => server.closed));
    }),
  );
});

describe(`server.connections over ${runtimeName()} sockets`, () => {
  test(
    "server.connections: closing each connection while iterating closes all five",
    bounded(async () => {
      const server = await serve(
        { hostname: HOST, port: 0, onError: () => {} },
        async (connection) => {
          for await (const _ of connection) { /* until closed */ }
        },
      );
      const clients: WebSocketConnection[] = [];
      try {
        for (let i = 0; i < 5; i++) {
          clients.push(
            await within(5_000, connect(`ws://${HOST}:${server.addr.port}/`)),
          );
        }
        // The server's side of each is open once the first message went
        // through; a round of pings makes sure all five are in.
        await Promise.all(clients.map((client) => client.ping()));
        assert.equal(server.connections.size, 5);
        let visited = 0;
        for (const connection of server.connections) {
          visited++;
          await connection.close();
        }
        assert.equal(visited, 5);
        assert.equal(server.connections.size, 0);
        const ends = await within(
          5_000,
          Promise.all(clients.map((client) => client.closed)),
        );
        for (const end of ends) assert.equal(end.wasClean, true);
      } finally {
        await Promise.all(clients.map((client) => client.close()));
        await server.close();
      }
    }),
  );
});
