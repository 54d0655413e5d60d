/**
 * Origin checking: `OriginPolicy`'s rules, and `serve`'s `origins` over
 * real sockets with our client, a python `websockets` client, and
 * `examples/echo_server.ts` reading `ORIGINS`.
 */
import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "../src/client.ts";
import { HandshakeError } from "../src/errors.ts";
import { originAllowed, OriginPolicy } from "../src/origin.ts";
import { serve, type WebSocketServer } from "../src/server.ts";
import { bounded } from "./_wait.ts";
import { PYTHON_PEER_MISSING, runPythonPeer } from "./_python_peer.ts";
import { runExample, waitForExit } from "./interop/_process.ts";

const servers: WebSocketServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

describe("OriginPolicy", () => {
  test("no Origin (not a browser) is allowed", () => {
    assert.ok(new OriginPolicy([]).allows(null, "a.test"));
  });

  test("the same origin is allowed, default ports and case aside", () => {
    const policy = new OriginPolicy([]);
    assert.ok(policy.allows("https://a.test", "a.test"));
    assert.ok(policy.allows("https://a.test", "A.TEST:443"));
    assert.ok(policy.allows("http://a.test:8080", "a.test:8080"));
    assert.ok(!policy.allows("http://a.test", "a.test:8080"));
    assert.ok(!policy.allows("https://b.test", "a.test"));
    assert.ok(!policy.allows("https://a.test", null));
  });

  test("host globs match host[:port], whole-origin globs the origin", () => {
    const policy = new OriginPolicy(["*.example.com", "http://localhost:*"]);
    assert.ok(policy.allows("https://app.example.com", "api.test"));
    assert.ok(policy.allows("HTTPS://APP.EXAMPLE.COM", "api.test"));
    assert.ok(!policy.allows("https://example.com", "api.test"));
    assert.ok(!policy.allows("https://app.example.com:8443", "api.test"));
    assert.ok(policy.allows("http://localhost:5173", "api.test"));
    assert.ok(!policy.allows("https://localhost:5173", "api.test"));
  });

  test("an opaque origin (null) needs a glob that matches it whole", () => {
    assert.ok(!new OriginPolicy(["*.example.com"]).allows("null", "a.test"));
    assert.ok(new OriginPolicy(["null"]).allows("null", "a.test"));
    assert.ok(new OriginPolicy(["*"]).allows("null", "a.test"));
  });

  test("bad origins lists throw TypeError", () => {
    assert.throws(
      () => new OriginPolicy("*" as unknown as string[]),
      TypeError,
    );
    assert.throws(() => new OriginPolicy([1 as unknown as string]), TypeError);
    assert.throws(
      () => serve({ origins: "*" as unknown as string[] }, () => {}),
      TypeError,
    );
  });

  test("originAllowed reads Origin and Host from headers", () => {
    const headers = new Headers({ host: "a.test", origin: "https://b.test" });
    assert.equal(originAllowed(headers, []), false);
    assert.equal(originAllowed(headers, ["b.test"]), true);
  });
});

describe("serve's origins", () => {
  async function start(origins?: readonly string[]) {
    const upgrades: string[] = [];
    const server = await serve({
      hostname: "127.0.0.1",
      port: 0,
      origins,
      onUpgrade: (request) => void upgrades.push(request.path),
    }, async (connection) => {
      for await (const message of connection) await connection.send(message);
    });
    servers.push(server);
    return { url: `ws://127.0.0.1:${server.addr.port}/`, upgrades };
  }

  test(
    "a cross-origin handshake gets 403 before onUpgrade; allowed ones open",
    bounded(async () => {
      const { url, upgrades } = await start(["https://*.example.com"]);
      await assert.rejects(
        connect(url, { headers: { Origin: "https://evil.test" } }),
        (error) => error instanceof HandshakeError && error.status === 403,
      );
      assert.deepEqual(upgrades, []);
      for (
        const headers of [
          { Origin: "https://app.example.com" },
          { Origin: url.replace("ws:", "http:").replace(/\/$/, "") },
          {} as Record<string, string>,
        ]
      ) {
        const client = await connect(url, { headers });
        await client.close();
      }
      assert.equal(upgrades.length, 3);
    }),
  );

  test(
    "without origins, any Origin is accepted (the default: no check)",
    bounded(async () => {
      const { url } = await start();
      const client = await connect(url, {
        headers: { Origin: "https://evil.test" },
      });
      await client.close();
    }),
  );

  test(
    "a python websockets client with a foreign origin gets 403",
    { skip: PYTHON_PEER_MISSING ?? false },
    bounded(async () => {
      const { url } = await start(["*.example.com"]);
      assert.deepEqual(
        await runPythonPeer({ url, origin: "https://evil.test" }),
        [{ refused: 403 }],
      );
      const ok = await runPythonPeer({
        url,
        origin: "https://chat.example.com",
        send: ["hi"],
        receive: 1,
      });
      assert.deepEqual(ok.slice(1, 2), [{ text: "hi" }]);
    }, 15_000),
  );

  test(
    "examples/echo_server.ts reads ORIGINS: 403 for others, echo for those",
    bounded(async () => {
      const child = runExample("echo_server.ts", {
        HOSTNAME: "127.0.0.1",
        PORT: "0",
        ORIGINS: "https://ok.test, *.example.com",
      });
      try {
        const line = await child.lines.next(15_000, "the first line");
        const url = /(ws:\/\/\S+)$/.exec(line)?.[1];
        assert.ok(url, line);
        await assert.rejects(
          connect(url, { headers: { Origin: "https://evil.test" } }),
          (error) => error instanceof HandshakeError && error.status === 403,
        );
        for (const origin of ["https://ok.test", "http://a.example.com"]) {
          const client = await connect(url, { headers: { Origin: origin } });
          await client.send(origin);
          for await (const message of client) {
            assert.equal(message, origin);
            break;
          }
        }
      } finally {
        child.kill("SIGKILL");
        await waitForExit(child, 5_000);
      }
    }, 25_000),
  );
});
