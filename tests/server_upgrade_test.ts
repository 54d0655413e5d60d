/**
 * Typed deferred upgrades (`onUpgrade`'s `data`, refusals by `Response`)
 * over real sockets on 127.0.0.1, with our client and a python
 * `websockets` client as peers.
 */
import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "../src/client.ts";
import type { WebSocketConnection } from "../src/connection.ts";
import { HandshakeError } from "../src/errors.ts";
import { serve, type WebSocketServer } from "../src/server.ts";
import { bounded } from "./_wait.ts";
import { PYTHON_PEER_MISSING, runPythonPeer } from "./_python_peer.ts";

const servers: WebSocketServer<unknown>[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

describe("serve's typed deferred upgrade", () => {
  test(
    "data from an awaited onUpgrade reaches the handler as connection.data",
    bounded(async () => {
      const seen: string[] = [];
      const server = await serve({
        hostname: "127.0.0.1",
        port: 0,
        onUpgrade: async (request) => {
          await new Promise((resolve) => setTimeout(resolve, 10)); // a lookup
          return {
            data: { user: new URLSearchParams(request.query).get("u") ?? "" },
            headers: { "X-User": "seen" },
          };
        },
      }, async (connection) => {
        // No cast: `user` is a string by inference from onUpgrade.
        const user: string = connection.data.user;
        seen.push(user);
        await connection.send(`hi ${user}`);
        await connection.close();
      });
      servers.push(server);
      const client = await connect(`ws://127.0.0.1:${server.addr.port}/?u=ann`);
      const got: unknown[] = [];
      for await (const message of client) got.push(message);
      assert.deepEqual(got, ["hi ann"]);
      assert.deepEqual(seen, ["ann"]);
    }),
  );

  test(
    "an explicit Data type makes data required in an acceptance",
    () => {
      const options = {
        onUpgrade: (): { protocol: string } => ({ protocol: "x" }),
      };
      const handler = (connection: WebSocketConnection<{ user: string }>) => {
        connection.data.user.toUpperCase();
      };
      // Type-level only: serve is not called.
      // @ts-expect-error: an acceptance without data when Data is required
      const call = () => serve<{ user: string }>(options, handler);
      assert.equal(typeof call, "function");
    },
  );

  test(
    "a Response from onUpgrade refuses with its status, headers and body",
    bounded(async () => {
      const server = await serve({
        hostname: "127.0.0.1",
        port: 0,
        onUpgrade: () =>
          new Response("Log in first", {
            status: 401,
            headers: { "WWW-Authenticate": "Basic" },
          }),
      }, () => assert.fail("handler called for a refused upgrade"));
      servers.push(server);
      await assert.rejects(
        connect(`ws://127.0.0.1:${server.addr.port}/`),
        (error) => {
          assert.ok(error instanceof HandshakeError);
          assert.equal(error.status, 401);
          assert.equal(error.headers.get("www-authenticate"), "Basic");
          assert.equal(error.body, "Log in first");
          return true;
        },
      );
    }),
  );

  test(
    "a Response under 400 from onUpgrade is a bug: 500 and onError",
    bounded(async () => {
      const errors: unknown[] = [];
      const server = await serve({
        hostname: "127.0.0.1",
        port: 0,
        onUpgrade: () => new Response(null, { status: 204 }),
        onError: (error) => errors.push(error),
      }, () => {});
      servers.push(server);
      await assert.rejects(
        connect(`ws://127.0.0.1:${server.addr.port}/`),
        (error) => error instanceof HandshakeError && error.status === 500,
      );
      assert.equal(errors.length, 1);
      assert.ok(errors[0] instanceof TypeError);
    }),
  );

  test(
    "a python websockets client gets the data-driven greeting, and the refusal's status",
    { skip: PYTHON_PEER_MISSING ?? false },
    bounded(async () => {
      const server = await serve({
        hostname: "127.0.0.1",
        port: 0,
        onUpgrade: (request) => {
          const token = request.headers.get("x-token");
          if (token === null) return new Response("no", { status: 403 });
          return { data: { token } };
        },
      }, async (connection) => {
        await connection.send(connection.data.token);
        await connection.close({ closeCode: 4001, reason: "bye" });
      });
      servers.push(server);
      const url = `ws://127.0.0.1:${server.addr.port}/`;
      const ok = await runPythonPeer({
        url,
        headers: { "X-Token": "t0k" },
        receive: 1,
        wait_close: true,
      });
      assert.deepEqual(ok.slice(1), [
        { text: "t0k" },
        { closed: 4001, reason: "bye" },
      ]);
      assert.deepEqual(await runPythonPeer({ url }), [{ refused: 403 }]);
    }, 15_000),
  );
});
