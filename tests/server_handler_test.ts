/**
 * How a `serve()` handler ends, over real sockets on whichever runtime runs
 * it: a handler that ends because its connection closed (cleanly or not)
 * ends quietly; only real exceptions from application code reach `onError`
 * and close a connection still open with 1011.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "../src/client.ts";
import type { WebSocketConnection } from "../src/connection.ts";
import { ConnectionClosedError } from "../src/errors.ts";
import { currentRuntime, runtimeName } from "../src/runtime.ts";
import { type ConnectionHandler, serve } from "../src/server.ts";
import { bounded, sleep, within } from "./_wait.ts";

const HOST = "127.0.0.1";

/** Our server with `handler`, its errors and the ends of its handlers. */
async function server(handler: ConnectionHandler) {
  const errors: unknown[] = [];
  const ends: Promise<unknown>[] = [];
  const connections: WebSocketConnection[] = [];
  const server = await serve({
    hostname: HOST,
    port: 0,
    onError: (error) => errors.push(error),
  }, (connection, request) => {
    connections.push(connection);
    const end = Promise.resolve(handler(connection, request));
    ends.push(end.catch(() => {}));
    return end;
  });
  return { server, errors, ends, connections };
}

/** A WebSocket handshake by hand; then the socket is dropped, no close frame. */
async function vanishAfterHandshake(port: number): Promise<void> {
  const transport = await currentRuntime().connect({ hostname: HOST, port });
  const writer = transport.writable.getWriter();
  const reader = transport.readable.getReader();
  await writer.write(new TextEncoder().encode(
    `GET / HTTP/1.1\r\nHost: ${HOST}:${port}\r\nUpgrade: websocket\r\n` +
      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
      "Sec-WebSocket-Version: 13\r\n\r\n",
  ));
  let head = "";
  while (!head.includes("\r\n\r\n")) {
    const { value, done } = await within(3_000, reader.read());
    if (done) throw new Error("the server closed before answering");
    head += String.fromCharCode(...value);
  }
  assert.match(head, /^HTTP\/1\.1 101 /);
  transport.close();
}

/** The README's quick-start handler: echo until the connection ends. */
const echo: ConnectionHandler = async (connection) => {
  for await (const message of connection.readable) {
    await connection.send(message);
  }
};

describe(`serve() handlers over ${runtimeName()} sockets`, () => {
  test(
    "a handler iterating readable ends quietly when its peer vanishes without a close frame",
    bounded(async () => {
      const { server: s, errors, ends, connections } = await server(echo);
      try {
        await vanishAfterHandshake(s.addr.port);
        const [connection] = connections;
        assert.ok(connection);
        const info = await within(3_000, connection.closed);
        assert.equal(info.closeCode, 1006);
        await within(3_000, Promise.all(ends));
        await sleep(20);
        assert.deepEqual(errors, []);
      } finally {
        await s.close();
      }
    }),
  );

  test(
    "a handler iterating the connection ends quietly too, and one that sends after the peer left",
    bounded(async () => {
      const { server: s, errors, ends, connections } = await server(
        async (connection) => {
          for await (const _ of connection) { /* until it ends */ }
          await connection.send("too late"); // rejects: the connection is closed
        },
      );
      try {
        await vanishAfterHandshake(s.addr.port);
        await within(3_000, connections[0]!.closed);
        await within(3_000, Promise.all(ends));
        await sleep(20);
        assert.deepEqual(errors, []);
      } finally {
        await s.close();
      }
    }),
  );

  test(
    "a handler ending on a clean close from the client reports nothing",
    bounded(async () => {
      const { server: s, errors, ends } = await server(echo);
      try {
        const client = await connect(`ws://${HOST}:${s.addr.port}/`);
        await client.send("hi");
        for await (const message of client) {
          assert.equal(message, "hi");
          break;
        }
        assert.equal((await client.closed).wasClean, true);
        await within(3_000, Promise.all(ends));
        assert.deepEqual(errors, []);
      } finally {
        await s.close();
      }
    }),
  );

  test(
    "a handler's own exception goes to onError and closes its open connection with 1011",
    bounded(async () => {
      const bug = new Error("a bug in the handler");
      const { server: s, errors } = await server(() => {
        throw bug;
      });
      try {
        const client = await connect(`ws://${HOST}:${s.addr.port}/`);
        const info = await within(3_000, client.closed);
        assert.equal(info.closeCode, 1011);
        assert.deepEqual(errors, [bug]);
      } finally {
        await s.close();
      }
    }),
  );

  for (const over of ["the connection", "readable"] as const) {
    const source = (connection: WebSocketConnection) =>
      over === "readable" ? connection.readable : connection;

    test(
      `a handler throwing inside for await over ${over} closes with 1011, not the loop's 1000`,
      bounded(async () => {
        const bug = new Error("a bug in the loop");
        const { server: s, errors } = await server(async (connection) => {
          for await (const _ of source(connection)) throw bug;
        });
        try {
          const client = await connect(`ws://${HOST}:${s.addr.port}/`);
          await client.send("hi");
          const info = await within(3_000, client.closed);
          assert.equal(info.closeCode, 1011);
          assert.deepEqual(errors, [bug]);
        } finally {
          await s.close();
        }
      }),
    );

    test(
      `a handler breaking out of for await over ${over} still closes with 1000`,
      bounded(async () => {
        const { server: s, errors, ends } = await server(
          async (connection) => {
            for await (const _ of source(connection)) break;
          },
        );
        try {
          const client = await connect(`ws://${HOST}:${s.addr.port}/`);
          await client.send("hi");
          const info = await within(3_000, client.closed);
          assert.deepEqual(
            [info.closeCode, info.wasClean, info.received?.closeCode],
            [1000, true, 1000],
          );
          await within(3_000, Promise.all(ends));
          assert.deepEqual(errors, []);
        } finally {
          await s.close();
        }
      }),
    );
  }

  test(
    "a ConnectionClosedError from another connection, thrown while this one is open, is reported",
    bounded(async () => {
      const stranger = new ConnectionClosedError(
        "Cannot send on a closed connection: close code 1000",
        { closeCode: 1000, reason: "", wasClean: true },
      );
      const { server: s, errors } = await server(() => {
        throw stranger;
      });
      try {
        const client = await connect(`ws://${HOST}:${s.addr.port}/`);
        const info = await within(3_000, client.closed);
        assert.equal(info.closeCode, 1011);
        assert.deepEqual(errors, [stranger]);
      } finally {
        await s.close();
      }
    }),
  );
});
