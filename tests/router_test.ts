/**
 * `Router` over real sockets on 127.0.0.1: path and subprotocol globs,
 * most specific first, 404 and the subprotocol answers, params, per-route
 * onUpgrade, with our client and a python `websockets` client.
 */
import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "../src/client.ts";
import { HandshakeError } from "../src/errors.ts";
import { Router } from "../src/router.ts";
import { serve, type WebSocketServer } from "../src/server.ts";
import { bounded } from "./_wait.ts";
import { PYTHON_PEER_MISSING, runPythonPeer } from "./_python_peer.ts";

const servers: WebSocketServer<unknown>[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

/** A route handler that sends its name, protocol and params, then closes. */
const says = (name: string) =>
async (
  connection: {
    send(m: string): Promise<void>;
    protocol: string;
    close(): Promise<unknown>;
  },
  request: { params: string[] },
) => {
  await connection.send(
    JSON.stringify([name, connection.protocol, request.params]),
  );
  await connection.close();
};

async function start<Data>(router: Router<Data>) {
  const server = await serve(
    { hostname: "127.0.0.1", port: 0, onUpgrade: router.onUpgrade },
    router.handler,
  );
  servers.push(server as WebSocketServer<unknown>);
  return `ws://127.0.0.1:${server.addr.port}`;
}

async function ask(url: string, protocols: string[] = []): Promise<unknown> {
  const client = await connect(url, { protocols });
  const got: unknown[] = [];
  for await (const message of client) got.push(JSON.parse(message as string));
  return got[0];
}

function refusedWith(status: number) {
  return (error: unknown) =>
    error instanceof HandshakeError && error.status === status;
}

describe("Router", () => {
  test(
    "the most specific path glob wins, whatever the order of registration",
    bounded(async () => {
      const url = await start(
        new Router()
          .route("*", says("any"))
          .route("/chat/*", says("chat"))
          .route("/chat/lobby", says("lobby"))
          .route("/chat/?obby", says("?obby")),
      );
      assert.deepEqual(await ask(`${url}/chat/lobby`), ["lobby", "", []]);
      assert.deepEqual(await ask(`${url}/chat/hobby`), ["?obby", "", ["h"]]);
      assert.deepEqual(await ask(`${url}/chat/x/y`), ["chat", "", ["x/y"]]);
      assert.deepEqual(await ask(`${url}/else?q=1`), ["any", "", ["/else"]]);
    }),
  );

  test(
    "an unrouted path gets 404 and no handler runs",
    bounded(async () => {
      const url = await start(new Router().route("/a", says("a")));
      await assert.rejects(connect(`${url}/b`), refusedWith(404));
    }),
  );

  test(
    "subprotocol globs: the client's preference among what the route speaks",
    bounded(async () => {
      const url = await start(
        new Router()
          .route("/chat", says("v*"), { protocol: "chat.v*" })
          .route("/chat", says("v1"), { protocol: "chat.v1" })
          .route("/chat", says("plain")),
      );
      assert.deepEqual(await ask(`${url}/chat`, ["chat.v1", "chat.v2"]), [
        "v1",
        "chat.v1",
        [],
      ]);
      // The most specific route first, even over the client's preference.
      assert.deepEqual(await ask(`${url}/chat`, ["x", "chat.v3", "chat.v1"]), [
        "v1",
        "chat.v1",
        [],
      ]);
      assert.deepEqual(await ask(`${url}/chat`, ["x", "chat.v3", "chat.v4"]), [
        "v*",
        "chat.v3",
        [],
      ]);
      // Offers no route speaks, with a route that speaks none: accepted
      // without Sec-WebSocket-Protocol (RFC 6455 §4.2.2); the client
      // decides (ours goes on, as the RFC allows; browsers fail it).
      assert.deepEqual(await ask(`${url}/chat`, ["mqtt"]), ["plain", "", []]);
      assert.deepEqual(await ask(`${url}/chat`), ["plain", "", []]);
    }),
  );

  test(
    "a path whose routes all need a subprotocol refuses other offers with 400",
    bounded(async () => {
      const url = await start(
        new Router().route("/mqtt", says("mqtt"), { protocol: "mqtt" }),
      );
      await assert.rejects(
        connect(`${url}/mqtt`, { protocols: ["chat"] }),
        refusedWith(400),
      );
      await assert.rejects(connect(`${url}/mqtt`), refusedWith(400));
      assert.deepEqual(await ask(`${url}/mqtt`, ["chat", "mqtt"]), [
        "mqtt",
        "mqtt",
        [],
      ]);
    }),
  );

  test(
    "a route's onUpgrade sees params, refuses, or attaches typed data",
    bounded(async () => {
      const router = new Router<{ room: string }>().route(
        "/rooms/*",
        async (connection) => {
          await connection.send(JSON.stringify(connection.data.room));
          await connection.close();
        },
        {
          onUpgrade: (request) =>
            request.params[0] === "secret"
              ? new Response("no", { status: 403 })
              : { data: { room: request.params[0]! } },
        },
      );
      const url = await start(router);
      assert.equal(await ask(`${url}/rooms/red`), "red");
      await assert.rejects(connect(`${url}/rooms/secret`), refusedWith(403));
    }),
  );

  test(
    "match() answers without a request; bad routes throw TypeError",
    () => {
      const router = new Router().route("/a/*", () => {}, { protocol: "p" });
      assert.deepEqual(router.match("/a/1", ["q", "p"]), {
        path: "/a/*",
        protocol: "p",
        params: ["1"],
      });
      assert.deepEqual(router.match("/a/1", []), { status: 400 });
      assert.deepEqual(router.match("/b", ["p"]), { status: 404 });
      assert.throws(
        () => router.route(1 as unknown as string, () => {}),
        TypeError,
      );
      assert.throws(() => router.route("/x", null as never), TypeError);
      assert.throws(
        () =>
          router.route("/x", () => {}, { protocol: 2 as unknown as string }),
        TypeError,
      );
    },
  );

  test(
    "the handler alone (no onUpgrade) routes, and closes 1008 what it cannot",
    bounded(async () => {
      const router = new Router().route("/a", says("a"));
      const server = await serve(
        { hostname: "127.0.0.1", port: 0 },
        router.handler,
      );
      servers.push(server);
      const url = `ws://127.0.0.1:${server.addr.port}`;
      assert.deepEqual(await ask(`${url}/a`), ["a", "", []]);
      const client = await connect(`${url}/b`);
      const closed = await client.closed;
      assert.equal(closed.closeCode, 1008);
    }),
  );

  test(
    "a python websockets client is routed by path and subprotocol",
    { skip: PYTHON_PEER_MISSING ?? false },
    bounded(async () => {
      const url = await start(
        new Router()
          .route("/rooms/*", says("rooms"), { protocol: "chat.*" })
          .route("/echo", async (connection) => {
            for await (const m of connection) await connection.send(m);
          }),
      );
      const routed = await runPythonPeer({
        url: `${url}/rooms/blue`,
        protocols: ["chat.v2"],
        receive: 1,
        wait_close: true,
      });
      assert.deepEqual(routed.slice(0, 2), [
        { open: "chat.v2" },
        { text: JSON.stringify(["rooms", "chat.v2", ["blue"]]) },
      ]);
      assert.deepEqual(
        await runPythonPeer({ url: `${url}/nope` }),
        [{ refused: 404 }],
      );
      assert.deepEqual(
        await runPythonPeer({ url: `${url}/rooms/x`, protocols: ["mqtt"] }),
        [{ refused: 400 }],
      );
    }, 20_000),
  );
});
