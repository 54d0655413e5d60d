/**
 * `dispatch` over real sockets on 127.0.0.1: text, binary, ping, pong and
 * close to their own handlers, 1003 for a type with none; our client and a
 * python `websockets` client as peers.
 */
import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "../src/client.ts";
import type { CloseInfo } from "../src/connection.ts";
import { dispatch } from "../src/dispatch.ts";
import {
  type ConnectionHandler,
  serve,
  type WebSocketServer,
} from "../src/server.ts";
import { bounded } from "./_wait.ts";
import { PYTHON_PEER_MISSING, runPythonPeer } from "./_python_peer.ts";

const servers: WebSocketServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start(
  handler: ConnectionHandler,
  onError?: (e: unknown) => void,
) {
  const server = await serve(
    { hostname: "127.0.0.1", port: 0, ...(onError ? { onError } : {}) },
    handler,
  );
  servers.push(server);
  return `ws://127.0.0.1:${server.addr.port}`;
}

describe("dispatch", () => {
  test(
    "each kind of frame reaches its handler; close gets the end",
    bounded(async () => {
      const events: unknown[] = [];
      let ended!: (info: CloseInfo) => void;
      const closed = new Promise<CloseInfo>((resolve) => (ended = resolve));
      const url = await start(dispatch({
        open: async (connection, request) => {
          events.push(["open", request?.path]);
          await connection.ping("from server");
        },
        text: async (text, connection) => {
          events.push(["text", text]);
          await connection.send(text);
        },
        binary: async (bytes, connection) => {
          events.push(["binary", [...bytes]]);
          await connection.send(bytes);
        },
        ping: (payload) =>
          events.push(["ping", new TextDecoder().decode(payload)]),
        pong: (payload) =>
          events.push(["pong", new TextDecoder().decode(payload)]),
        close: (info) => ended(info),
      }));
      const client = await connect(`${url}/d`);
      await client.ping("from client");
      await client.send("t");
      await client.send(new Uint8Array([7]));
      const got: unknown[] = [];
      for await (const message of client) {
        got.push(message);
        if (got.length === 2) break;
      }
      assert.deepEqual(got, ["t", new Uint8Array([7])]);
      assert.equal((await closed).closeCode, 1000);
      assert.deepEqual(events.sort(), [
        ["binary", [7]],
        ["open", "/d"],
        ["ping", "from client"],
        ["pong", "from server"],
        ["text", "t"],
      ]);
    }),
  );

  test(
    "a data type without a handler closes with 1003, both ways round",
    bounded(async () => {
      for (
        const [handlers, message] of [
          [{ text: () => {} }, new Uint8Array([1])],
          [{ binary: () => {} }, "text"],
        ] as const
      ) {
        let closeCode = 0;
        const url = await start(
          dispatch({
            ...handlers,
            close: (info) => void (closeCode = info.closeCode),
          }),
        );
        const client = await connect(url);
        await client.send(message);
        for await (const _ of client) assert.fail("nothing comes back");
        assert.equal((await client.closed).closeCode, 1003);
        await new Promise((resolve) => setTimeout(resolve, 20));
        assert.equal(closeCode, 1003);
      }
    }),
  );

  test(
    "a handler that throws: 1011 from serve, onError, and close still called",
    bounded(async () => {
      const errors: unknown[] = [];
      let ended!: (code: number) => void;
      const closeCode = new Promise<number>((resolve) => (ended = resolve));
      const url = await start(
        dispatch({
          text: () => {
            throw new Error("boom");
          },
          close: (info) => ended(info.closeCode),
        }),
        (error) => errors.push(error),
      );
      const client = await connect(url);
      await client.send("x");
      for await (const _ of client) assert.fail("nothing comes back");
      const code = (await client.closed).closeCode;
      assert.equal(code, 1011);
      assert.equal(await closeCode, code);
      assert.equal((errors[0] as Error).message, "boom");
    }),
  );

  test("bad handlers throw TypeError", () => {
    assert.throws(() => dispatch(null as never), TypeError);
    assert.throws(() => dispatch({ text: 1 } as never), TypeError);
  });

  test(
    "a python websockets client sending binary to a text-only server gets 1003",
    { skip: PYTHON_PEER_MISSING ?? false },
    bounded(async () => {
      const url = await start(dispatch({
        text: (text, connection) => connection.send(text.toUpperCase()),
      }));
      const lines = await runPythonPeer({
        url,
        send: ["abc", { binary: [1, 2] }],
        receive: 1,
        wait_close: true,
      });
      assert.deepEqual(lines.slice(1), [
        { text: "ABC" },
        { closed: 1003, reason: "Unsupported data" },
      ]);
    }, 15_000),
  );
});
