import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { generateKey } from "../src/handshake.ts";
import {
  buildClientRequest,
  validateServerResponse,
} from "../src/handshake_client.ts";
import type { ExtensionOffer } from "../src/handshake_headers.ts";
import { KEY, NONE, refused, response } from "./_handshake.ts";

describe("buildClientRequest", () => {
  test("buildClientRequest builds RFC 6455 §4.1's request", () => {
    const head = buildClientRequest({
      url: new URL("ws://example.com/chat?room=1"),
      key: KEY,
    });
    assert.equal(head.method, "GET");
    assert.equal(head.target, "/chat?room=1");
    assert.equal(head.version, "HTTP/1.1");
    assert.deepEqual(Object.fromEntries(head.headers), {
      host: "example.com",
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-key": KEY,
      "sec-websocket-version": "13",
    });
  });

  test("buildClientRequest targets / when the URL has no path", () => {
    assert.equal(
      buildClientRequest({ url: new URL("ws://example.com"), key: KEY }).target,
      "/",
    );
    assert.equal(
      buildClientRequest({ url: new URL("ws://example.com?a=1"), key: KEY })
        .target,
      "/?a=1",
    );
  });

  test("buildClientRequest leaves default ports out of Host", () => {
    const host = (url: string) =>
      buildClientRequest({ url: new URL(url), key: KEY }).headers.get("host");
    assert.equal(host("ws://example.com:80/"), "example.com");
    assert.equal(host("wss://example.com:443/"), "example.com");
    assert.equal(host("http://example.com:80/"), "example.com");
    assert.equal(host("https://example.com:443/"), "example.com");
  });

  test("buildClientRequest keeps non-default ports in Host", () => {
    const host = (url: string) =>
      buildClientRequest({ url: new URL(url), key: KEY }).headers.get("host");
    assert.equal(host("ws://example.com:443/"), "example.com:443");
    assert.equal(host("wss://example.com:80/"), "example.com:80");
    assert.equal(host("ws://127.0.0.1:9001/"), "127.0.0.1:9001");
  });

  test("buildClientRequest brackets IPv6 literals in Host", () => {
    const host = (url: string) =>
      buildClientRequest({ url: new URL(url), key: KEY }).headers.get("host");
    assert.equal(host("ws://[::1]/"), "[::1]");
    assert.equal(host("ws://[::1]:8080/"), "[::1]:8080");
    assert.equal(host("wss://[2001:db8::1]:443/"), "[2001:db8::1]");
  });

  test("buildClientRequest sends protocols and extensions only when there are some", () => {
    const none = buildClientRequest({
      url: new URL("ws://a/"),
      key: KEY,
      protocols: [],
      extensions: [],
    });
    assert.equal(none.headers.has("sec-websocket-protocol"), false);
    assert.equal(none.headers.has("sec-websocket-extensions"), false);
    const some = buildClientRequest({
      url: new URL("ws://a/"),
      key: KEY,
      protocols: ["v2", "v1"],
      extensions: [{
        name: "permessage-deflate",
        params: { client_max_window_bits: true },
      }],
    });
    assert.equal(some.headers.get("sec-websocket-protocol"), "v2, v1");
    assert.equal(
      some.headers.get("sec-websocket-extensions"),
      "permessage-deflate; client_max_window_bits",
    );
  });

  test("buildClientRequest adds user headers and lets them replace Host", () => {
    const head = buildClientRequest({
      url: new URL("ws://127.0.0.1:8080/"),
      key: KEY,
      headers: {
        authorization: "Bearer x",
        origin: "https://example.com",
        host: "example.com",
      },
    });
    assert.equal(head.headers.get("authorization"), "Bearer x");
    assert.equal(head.headers.get("origin"), "https://example.com");
    assert.equal(head.headers.get("host"), "example.com");
  });

  for (
    const name of [
      "Upgrade",
      "Connection",
      "Sec-WebSocket-Key",
      "Sec-WebSocket-Version",
      "Sec-WebSocket-Extensions",
      "Sec-WebSocket-Accept",
    ]
  ) {
    test(`buildClientRequest refuses ${name} in headers with TypeError naming it`, () => {
      assert.throws(
        () =>
          buildClientRequest({
            url: new URL("ws://a/"),
            key: KEY,
            headers: { [name.toLowerCase()]: "x" },
          }),
        (error: unknown) =>
          error instanceof TypeError && error.message.includes(name),
      );
    });
  }

  test("buildClientRequest refuses Sec-WebSocket-Protocol in headers, pointing to protocols", () => {
    assert.throws(
      () =>
        buildClientRequest({
          url: new URL("ws://a/"),
          key: KEY,
          headers: { "Sec-WebSocket-Protocol": "chat" },
        }),
      (error: unknown) =>
        error instanceof TypeError &&
        error.message.includes("protocols option"),
    );
  });

  test("buildClientRequest refuses a header value with CRLF (injection) with TypeError", () => {
    assert.throws(
      () =>
        buildClientRequest({
          url: new URL("ws://a/"),
          key: KEY,
          headers: { "x-a": "1\r\nX-B: 2" },
        }),
      TypeError,
    );
  });

  test("buildClientRequest refuses subprotocols that are not tokens or are repeated with TypeError", () => {
    for (const protocols of [["a b"], [""], ["a,b"], ["chat", "chat"]]) {
      assert.throws(
        () =>
          buildClientRequest({ url: new URL("ws://a/"), key: KEY, protocols }),
        TypeError,
      );
    }
  });

  test("buildClientRequest refuses other schemes, fragments, credentials and bad keys with TypeError", () => {
    const bad: ClientCase[] = [
      { url: new URL("ftp://a/"), key: KEY },
      { url: new URL("ws://a/#frag"), key: KEY },
      { url: new URL("ws://a/#"), key: KEY },
      { url: new URL("ws://user:pass@a/"), key: KEY },
      { url: new URL("ws://a/"), key: "short" },
      { url: new URL("ws://a/"), key: "dGhlIHNhbXBsZSBub25jZQ" },
    ];
    for (const options of bad) {
      assert.throws(
        () => buildClientRequest(options),
        TypeError,
        options.url.href + " " + options.key,
      );
    }
  });
});

type ClientCase = { url: URL; key: string };

describe("validateServerResponse", () => {
  test('validateServerResponse accepts a valid 101 and returns no protocol as ""', async () => {
    assert.deepEqual(await validateServerResponse(response(), NONE), {
      protocol: "",
      extensions: [],
    });
  });

  test("validateServerResponse refuses a non-101 status with that status and the server's headers", async () => {
    const head = response({ "www-authenticate": "Bearer" }, 401);
    head.statusText = "Unauthorized";
    await assert.rejects(
      validateServerResponse(head, NONE),
      refused(401, /refused the WebSocket upgrade with 401 Unauthorized/, {
        "www-authenticate": "Bearer",
      }),
    );
    await assert.rejects(
      validateServerResponse(response({}, 200), NONE),
      refused(200),
    );
  });

  test("validateServerResponse matches Upgrade and Connection case-insensitively as token lists", async () => {
    const head = response({
      upgrade: "WebSocket",
      connection: "keep-alive, UPGRADE",
    });
    assert.deepEqual(await validateServerResponse(head, NONE), {
      protocol: "",
      extensions: [],
    });
  });

  test("validateServerResponse refuses a missing or wrong Upgrade", async () => {
    await assert.rejects(
      validateServerResponse(response({ upgrade: null }), NONE),
      refused(101, /Upgrade is missing/),
    );
    await assert.rejects(
      validateServerResponse(response({ upgrade: "h2c" }), NONE),
      refused(101, /Upgrade is h2c/),
    );
  });

  test("validateServerResponse refuses a Connection without upgrade", async () => {
    await assert.rejects(
      validateServerResponse(response({ connection: null }), NONE),
      refused(101, /Connection is missing/),
    );
    await assert.rejects(
      validateServerResponse(response({ connection: "keep-alive" }), NONE),
      refused(101, /Connection is keep-alive/),
    );
  });

  test("validateServerResponse refuses a missing or wrong Sec-WebSocket-Accept", async () => {
    await assert.rejects(
      validateServerResponse(response({ "sec-websocket-accept": null }), NONE),
      refused(101, /Sec-WebSocket-Accept is missing/),
    );
    await assert.rejects(
      validateServerResponse(
        response({ "sec-websocket-accept": "AAAA" }),
        NONE,
      ),
      refused(
        101,
        /Sec-WebSocket-Accept is AAAA, expected s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/,
      ),
    );
    await assert.rejects(
      validateServerResponse(response(), { ...NONE, key: generateKey() }),
      refused(101, /Sec-WebSocket-Accept/),
    );
  });

  test("validateServerResponse returns the subprotocol the server chose among those offered", async () => {
    const result = await validateServerResponse(
      response({ "sec-websocket-protocol": "v1" }),
      { ...NONE, protocols: ["v2", "v1"] },
    );
    assert.equal(result.protocol, "v1");
  });

  test("validateServerResponse accepts no subprotocol even when some were offered", async () => {
    const result = await validateServerResponse(response(), {
      ...NONE,
      protocols: ["v2"],
    });
    assert.equal(result.protocol, "");
  });

  test("validateServerResponse refuses a subprotocol the client did not offer", async () => {
    await assert.rejects(
      validateServerResponse(response({ "sec-websocket-protocol": "v3" }), {
        ...NONE,
        protocols: ["v2", "v1"],
      }),
      refused(
        101,
        /subprotocol v3, which the client did not offer \(offered: v2, v1\)/,
      ),
    );
    await assert.rejects(
      validateServerResponse(response({ "sec-websocket-protocol": "V1" }), {
        ...NONE,
        protocols: ["v1"],
      }),
      refused(101),
    );
  });

  test("validateServerResponse refuses a subprotocol when none was offered", async () => {
    await assert.rejects(
      validateServerResponse(
        response({ "sec-websocket-protocol": "chat" }),
        NONE,
      ),
      refused(101, /subprotocol chat, but the client offered none/),
    );
  });

  test("validateServerResponse refuses two subprotocols joined into one value", async () => {
    await assert.rejects(
      validateServerResponse(response({ "sec-websocket-protocol": "v1, v2" }), {
        ...NONE,
        protocols: ["v1", "v2"],
      }),
      refused(101),
    );
  });

  test("validateServerResponse returns the extensions accepted among those offered", async () => {
    const offered: ExtensionOffer[] = [{
      name: "permessage-deflate",
      params: { client_max_window_bits: true },
    }];
    const result = await validateServerResponse(
      response({
        "sec-websocket-extensions":
          "permessage-deflate; client_max_window_bits=12",
      }),
      { ...NONE, extensions: offered },
    );
    assert.deepEqual(result.extensions, [
      { name: "permessage-deflate", params: { client_max_window_bits: "12" } },
    ]);
  });

  test("validateServerResponse refuses an extension the client did not offer", async () => {
    await assert.rejects(
      validateServerResponse(
        response({ "sec-websocket-extensions": "permessage-deflate" }),
        NONE,
      ),
      refused(
        101,
        /extension permessage-deflate, which the client did not offer/,
      ),
    );
  });

  test("validateServerResponse refuses a malformed Sec-WebSocket-Extensions with the response's status", async () => {
    await assert.rejects(
      validateServerResponse(
        response({ "sec-websocket-extensions": 'permessage-deflate; x="a' }),
        { ...NONE, extensions: [{ name: "permessage-deflate", params: {} }] },
      ),
      refused(101, /^Invalid 101 response: Malformed Sec-WebSocket-Extensions/),
    );
  });
});
