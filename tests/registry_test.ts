/**
 * `Registry` over a server's live set on 127.0.0.1: host and port globs,
 * paths, subprotocols, predicates, counts and info, while connections
 * close; a python `websockets` client found and closed through it.
 */
import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "../src/client.ts";
import type { WebSocketConnection } from "../src/connection.ts";
import { Registry } from "../src/registry.ts";
import { serve, type WebSocketServer } from "../src/server.ts";
import { bounded, sleep } from "./_wait.ts";
import { PYTHON_PEER_MISSING, runPythonPeer } from "./_python_peer.ts";

const servers: WebSocketServer<unknown>[] = [];
const clients: WebSocketConnection[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start() {
  const server = await serve({
    hostname: "127.0.0.1",
    port: 0,
    protocols: ["chat"],
    onUpgrade: (request) => ({
      data: { user: new URLSearchParams(request.query).get("u") ?? "" },
    }),
  }, async (connection) => {
    for await (const _ of connection);
  });
  servers.push(server as WebSocketServer<unknown>);
  return { server, url: `ws://127.0.0.1:${server.addr.port}` };
}

async function until(check: () => boolean): Promise<void> {
  while (!check()) await sleep(5);
}

describe("Registry", () => {
  test(
    "finds by host and port globs, path, protocol and predicate; counts and info",
    bounded(async () => {
      const { server, url } = await start();
      const registry = new Registry(server.connections);
      for (
        const [path, protocols] of [["/a?u=ann", ["chat"]], [
          "/b?u=bob",
          [],
        ]] as const
      ) {
        clients.push(
          await connect(`${url}${path}`, { protocols: [...protocols] }),
        );
      }
      await until(() => registry.count() === 2);
      const annPort = clients[0]!.info.localAddr!.port;
      assert.equal(registry.count({ host: "127.0.0.*" }), 2);
      assert.equal(registry.count({ host: "10.*" }), 0);
      assert.equal(registry.find({ port: annPort })[0]?.data.user, "ann");
      assert.equal(registry.count({ port: `${annPort}` }), 1);
      assert.equal(registry.count({ port: "*" }), 2);
      assert.equal(registry.find({ path: "/b*" })[0]?.data.user, "bob");
      assert.equal(registry.count({ protocol: "chat" }), 1);
      assert.equal(registry.count({ protocol: "" }), 1);
      assert.equal(registry.count((c) => c.data.user === "bob"), 1);
      assert.equal(
        registry.count({ host: "127.*", where: (c) => c.data.user === "zed" }),
        0,
      );
      assert.deepEqual(registry.hosts(), new Map([["127.0.0.1", 2]]));
      const info = registry.info({ path: "/a*" });
      assert.equal(info.length, 1);
      assert.equal(info[0]!.remoteAddr?.port, annPort);
      assert.equal(info[0]!.protocol, "chat");
      assert.equal(info[0]!.state, "open");
    }),
  );

  test(
    "closing what it finds, while walking the live set, closes them all",
    bounded(async () => {
      const { server, url } = await start();
      const registry = new Registry(server.connections);
      for (let i = 0; i < 5; i++) clients.push(await connect(url));
      await until(() => registry.count() === 5);
      const closing: Promise<unknown>[] = [];
      for (const connection of server.connections) {
        closing.push(connection.close());
        await sleep(1);
      }
      assert.equal(closing.length, 5);
      await Promise.all(closing);
      assert.equal(registry.count(), 0);
      assert.deepEqual(registry.find({ host: "*" }), []);
    }),
  );

  test("bad queries and sets throw TypeError", () => {
    const registry = new Registry([]);
    assert.throws(() => registry.find(1 as never), TypeError);
    assert.throws(() => registry.find({ host: 1 as never }), TypeError);
    assert.throws(() => registry.find({ where: 1 as never }), TypeError);
    assert.throws(() => new Registry(null as never), TypeError);
  });

  test(
    "a python websockets client is found by path and closed through the registry",
    { skip: PYTHON_PEER_MISSING ?? false },
    bounded(async () => {
      const { server, url } = await start();
      const registry = new Registry(server.connections);
      const peer = runPythonPeer({ url: `${url}/py?u=py`, wait_close: true });
      await until(() => registry.count({ path: "/py*" }) === 1);
      assert.equal(registry.find({ path: "/py*" })[0]!.data.user, "py");
      await registry.find({ path: "/py*" })[0]!.close({ closeCode: 4002 });
      const lines = await peer;
      assert.deepEqual(lines.at(-1), { closed: 4002, reason: "" });
      assert.equal(registry.count(), 0);
    }, 15_000),
  );
});
