/**
 * One handler and one `Router`, unchanged, under our `serve` and under the
 * running runtime's own server (`Deno.serve` through `denoWebSocket`,
 * `Bun.serve` through `bunWebSocket`), over real sockets on 127.0.0.1,
 * with our client and a python `websockets` client as peers.
 */
import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "../src/client.ts";
import { HandshakeError } from "../src/errors.ts";
import type { PortableHandler } from "../src/adapters/native_connection.ts";
import type { AdapterOptions } from "../src/adapters/_accept.ts";
import { denoWebSocket } from "../src/adapters/deno_serve.ts";
import { bunWebSocket } from "../src/adapters/bun_serve.ts";
import { Router } from "../src/router.ts";
import { serve } from "../src/server.ts";
import { bounded } from "./_wait.ts";
import { PYTHON_PEER_MISSING, runPythonPeer } from "./_python_peer.ts";

const IS_DENO = typeof Deno !== "undefined";
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

type Start = <Data>(
  options: AdapterOptions<Data>,
  handler: PortableHandler<Data>,
) => Promise<string>;

const ours: Start = async (options, handler) => {
  const server = await serve(
    { hostname: "127.0.0.1", port: 0, ...options },
    handler,
  );
  cleanups.push(() => server.close());
  return `ws://127.0.0.1:${server.addr.port}`;
};

const denoNative: Start = (options, handler) => {
  const upgrade = denoWebSocket(options, handler);
  return new Promise((resolve) => {
    const server = Deno.serve(
      {
        hostname: "127.0.0.1",
        port: 0,
        onListen: ({ port }) => resolve(`ws://127.0.0.1:${port}`),
      },
      async (request, info) =>
        (await upgrade(request, info)) ?? new Response("plain HTTP"),
    );
    cleanups.push(() => server.shutdown());
  });
};

interface BunServer {
  port: number;
  stop(closeActive?: boolean): Promise<void>;
}

const bunNative: Start = (options, handler) => {
  const ws = bunWebSocket(options, handler);
  const bun = (globalThis as unknown as {
    Bun: { serve(options: unknown): BunServer };
  }).Bun;
  const server = bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request: Request, server: Parameters<typeof ws.upgrade>[1]) {
      const upgraded = await ws.upgrade(request, server);
      return upgraded === null ? new Response("plain HTTP") : upgraded;
    },
    websocket: ws.websocket,
  });
  cleanups.push(() => server.stop(true));
  return Promise.resolve(`ws://127.0.0.1:${server.port}`);
};

const SERVERS: [string, Start][] = [
  ["our serve", ours],
  IS_DENO ? ["Deno.serve", denoNative] : ["Bun.serve", bunNative],
];

/** The one handler: a greeting from data, then an echo. */
const greetAndEcho: PortableHandler<{ user: string }> = async (
  connection,
  request,
) => {
  await connection.send(
    `hi ${connection.data.user} on ${request.path} (${connection.protocol})`,
  );
  for await (const message of connection) {
    if (message === "throw") throw new Error("handler bug");
    await connection.send(message);
  }
};

const options: AdapterOptions<{ user: string }> = {
  protocols: ["chat"],
  origins: ["*.example.com"],
  onUpgrade: (request) => {
    const user = new URLSearchParams(request.query).get("user");
    return user === null
      ? new Response("who?", { status: 401, headers: { "X-Why": "user" } })
      : { data: { user }, headers: { "X-Hello": "1" } };
  },
  onError: () => {},
};

async function take(connection: AsyncIterable<unknown>, n: number) {
  const got: unknown[] = [];
  if (n === 0) return got;
  for await (const message of connection) {
    got.push(message);
    if (got.length === n) break;
  }
  return got;
}

for (const [name, start] of SERVERS) {
  describe(`the same handler under ${name}`, () => {
    test(
      "data, path, subprotocol, text and binary echo",
      bounded(async () => {
        const url = await start(options, greetAndEcho);
        const client = await connect(`${url}/room?user=ann`, {
          protocols: ["x", "chat"],
        });
        assert.equal(client.protocol, "chat");
        await client.send("text");
        await client.send(new Uint8Array([0, 255]));
        assert.deepEqual(await take(client, 3), [
          "hi ann on /room (chat)",
          "text",
          new Uint8Array([0, 255]),
        ]);
        assert.equal((await client.closed).wasClean, true);
      }),
    );

    test(
      "refusals: onUpgrade's Response, and a foreign origin's 403",
      bounded(async () => {
        const url = await start(options, greetAndEcho);
        await assert.rejects(connect(`${url}/`), (error) => {
          assert.ok(error instanceof HandshakeError);
          assert.equal(error.status, 401);
          assert.equal(error.headers.get("x-why"), "user");
          assert.equal(error.body, "who?");
          return true;
        });
        await assert.rejects(
          connect(`${url}/?user=a`, {
            headers: { Origin: "https://evil.test" },
          }),
          (error) => error instanceof HandshakeError && error.status === 403,
        );
        const ok = await connect(`${url}/?user=a`, {
          headers: { Origin: "https://app.example.com" },
        });
        await take(ok, 1);
      }),
    );

    test(
      "a handler that throws: the peer gets 1011",
      bounded(async () => {
        const url = await start(options, greetAndEcho);
        const client = await connect(`${url}/?user=b`);
        await take(client.readable, 0);
        const reader = client.readable.getReader();
        await reader.read(); // the greeting
        await client.send("throw");
        await reader.read().catch(() => {});
        reader.releaseLock();
        const { closeCode } = await client.closed;
        assert.ok(closeCode === 1011 || closeCode === 1000, `${closeCode}`);
      }),
    );

    test(
      "the same Router: routes, params, subprotocol globs, 404",
      bounded(async () => {
        const router = new Router()
          .route("/rooms/*", async (connection, request) => {
            await connection.send(
              `${request.params[0]}:${connection.protocol}`,
            );
            await connection.close();
          }, { protocol: "chat.*" });
        const url = await start(
          { onUpgrade: router.onUpgrade },
          router.handler as PortableHandler,
        );
        const client = await connect(`${url}/rooms/red`, {
          protocols: ["chat.v1"],
        });
        assert.deepEqual(await take(client, 1), ["red:chat.v1"]);
        await assert.rejects(
          connect(`${url}/else`),
          (error) => error instanceof HandshakeError && error.status === 404,
        );
      }),
    );

    test(
      "a python websockets client: greeting, echo, clean close",
      { skip: PYTHON_PEER_MISSING ?? false },
      bounded(async () => {
        const url = await start(options, greetAndEcho);
        const lines = await runPythonPeer({
          url: `${url}/py?user=py`,
          protocols: ["chat"],
          send: ["one", { binary: [1, 2, 3] }],
          receive: 3,
        });
        assert.deepEqual(lines, [
          { open: "chat" },
          { text: "hi py on /py (chat)" },
          { text: "one" },
          { binary: [1, 2, 3] },
          { closed: 1000, reason: "" },
        ]);
      }, 15_000),
    );
  });
}
