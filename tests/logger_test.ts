/**
 * `Logger` and `serve`'s `logger`: levels, children, sinks; the server's
 * life cycle at debug, errors at error, and nothing for ordinary peer
 * behaviour at the default level; a python `websockets` client as a peer.
 */
import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "../src/client.ts";
import { connectionLogger, Logger, type LogRecord } from "../src/logger.ts";
import { serve, type WebSocketServer } from "../src/server.ts";
import { bounded, sleep } from "./_wait.ts";
import { PYTHON_PEER_MISSING, runPythonPeer } from "./_python_peer.ts";

const servers: WebSocketServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

describe("Logger", () => {
  test("tells its level and above; silent tells nothing", () => {
    const records: LogRecord[] = [];
    const logger = new Logger({ level: "info", sink: (r) => records.push(r) });
    logger.debug("d");
    logger.info("i");
    logger.warn("w", { n: 1 });
    logger.error("e");
    assert.deepEqual(records.map((r) => [r.level, r.message, r.fields]), [
      ["info", "i", {}],
      ["warn", "w", { n: 1 }],
      ["error", "e", {}],
    ]);
    logger.level = "silent";
    logger.error("no");
    assert.equal(records.length, 3);
    assert.ok(typeof records[0]!.time === "number");
  });

  test("the default level is error", () => {
    const records: LogRecord[] = [];
    const logger = new Logger({ sink: (r) => records.push(r) });
    logger.warn("w");
    logger.error("e");
    assert.deepEqual(records.map((r) => r.message), ["e"]);
    assert.equal(logger.level, "error");
  });

  test("a child follows its parent's level until its own is set", () => {
    const records: LogRecord[] = [];
    const parent = new Logger({
      level: "warn",
      sink: (r) => records.push(r),
      fields: { server: "s" },
    });
    const child = parent.child({ peer: "p" });
    child.info("no");
    parent.level = "info";
    child.info("yes");
    child.level = "error";
    child.warn("no");
    parent.warn("parent");
    assert.deepEqual(records.map((r) => [r.message, r.fields]), [
      ["yes", { server: "s", peer: "p" }],
      ["parent", { server: "s" }],
    ]);
  });

  test("bad levels and sinks throw TypeError", () => {
    assert.throws(() => new Logger({ level: "loud" as never }), TypeError);
    assert.throws(() => new Logger({ sink: 1 as never }), TypeError);
    assert.throws(() => {
      new Logger().level = "x" as never;
    }, TypeError);
  });
});

describe("serve's logger", () => {
  async function start(level: "debug" | "error", handler = echo) {
    const records: LogRecord[] = [];
    const logger = new Logger({ level, sink: (r) => records.push(r) });
    const server = await serve({
      hostname: "127.0.0.1",
      port: 0,
      logger,
      onUpgrade: (request) => request.path !== "/refuse",
    }, handler);
    servers.push(server);
    return { records, url: `ws://127.0.0.1:${server.addr.port}`, server };
  }
  const echo = async (connection: {
    [Symbol.asyncIterator](): AsyncIterator<string | Uint8Array>;
    send(m: string | Uint8Array): Promise<void>;
  }) => {
    for await (const m of connection as AsyncIterable<string>) {
      await connection.send(m);
    }
  };

  test(
    "at debug: listening, opened and closed with the peer, refusals, shutdown",
    bounded(async () => {
      const { records, url, server } = await start("debug");
      const client = await connect(`${url}/chat`);
      const port = client.info.localAddr!.port;
      await client.close({ closeCode: 4000 });
      await assert.rejects(connect(`${url}/refuse`));
      await sleep(20);
      await server.close();
      servers.length = 0;
      const seen = records.map((r) => [r.level, r.message]);
      assert.deepEqual(seen, [
        ["debug", "Listening"],
        ["debug", "Connection opened"],
        ["debug", "Connection closed"],
        ["debug", "Handshake not accepted"],
        ["debug", "Shutting down"],
        ["debug", "Shut down"],
      ]);
      assert.deepEqual(records[1]!.fields, {
        peer: `127.0.0.1:${port}`,
        path: "/chat",
        protocol: "",
      });
      assert.equal(records[2]!.fields.closeCode, 4000);
      assert.equal(records[3]!.fields.status, 403);
    }),
  );

  test(
    "at the default level: peers refused, gone or clean log nothing; handler errors log at error",
    bounded(async () => {
      const { records, url } = await start("error", async (connection) => {
        for await (const m of connection as AsyncIterable<string>) {
          if (m === "throw") throw new Error("handler bug");
        }
      });
      await assert.rejects(connect(`${url}/refuse`));
      const clean = await connect(url);
      await clean.close();
      const thrower = await connect(url);
      await thrower.send("throw");
      await thrower.closed; // 1000: leaving the loop by a throw closes it
      await sleep(20);
      assert.deepEqual(records.map((r) => [r.level, r.message]), [
        ["error", "Error in a handler or hook"],
      ]);
      assert.equal((records[0]!.fields.error as Error).message, "handler bug");
    }),
  );

  test(
    "connectionLogger: a child per connection, its level set alone",
    bounded(async () => {
      const records: LogRecord[] = [];
      const logger = new Logger({
        level: "error",
        sink: (r) => records.push(r),
      });
      const server = await serve(
        { hostname: "127.0.0.1", port: 0, logger },
        async (connection) => {
          const log = connectionLogger(connection);
          assert.equal(connectionLogger(connection), log);
          log.level = "debug";
          log.debug("mine");
          logger.debug("not the server's");
          await connection.close();
        },
      );
      servers.push(server);
      const client = await connect(`ws://127.0.0.1:${server.addr.port}/x`);
      await client.closed;
      assert.deepEqual(records.map((r) => [r.message, r.fields.path]), [
        ["mine", "/x"],
      ]);
    }),
  );

  test(
    "a python websockets client's visit is logged at debug and not at error",
    { skip: PYTHON_PEER_MISSING ?? false },
    bounded(async () => {
      for (const level of ["debug", "error"] as const) {
        const { records, url } = await start(level);
        const lines = await runPythonPeer({ url, send: ["x"], receive: 1 });
        assert.deepEqual(lines.at(-1), { closed: 1000, reason: "" });
        await sleep(20);
        const messages = records.map((r) => r.message);
        assert.deepEqual(
          messages,
          level === "debug"
            ? ["Listening", "Connection opened", "Connection closed"]
            : [],
        );
      }
    }, 15_000),
  );
});
