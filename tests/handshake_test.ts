import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { HandshakeError } from "../src/errors.ts";
import {
  buildClientRequest,
  buildServerResponse,
  computeAccept,
  type ExtensionOffer,
  formatExtensions,
  generateKey,
  hasToken,
  isWebSocketRequest,
  parseExtensions,
  parseProtocols,
  refusalResponse,
  selectSubprotocol,
  validateClientRequest,
  validateServerResponse,
  WEBSOCKET_GUID,
} from "../src/handshake.ts";
import {
  HeadParser,
  parseRequestHead,
  parseResponseHead,
  type RequestHead,
  type ResponseHead,
  writeRequestHead,
} from "../src/http1.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

// RFC 6455 §1.3's sample.
const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/** An assert.throws / assert.rejects matcher for a HandshakeError. */
function refused(
  status: number,
  message?: RegExp,
  headers: Record<string, string> = {},
) {
  return (error: unknown) => {
    assert.ok(
      error instanceof HandshakeError,
      `not a HandshakeError: ${error}`,
    );
    assert.equal(error.status, status, error.message);
    if (message) assert.match(error.message, message);
    for (const [name, value] of Object.entries(headers)) {
      assert.equal(error.headers.get(name), value, `header ${name}`);
    }
    return true;
  };
}

/** A valid client request head, with fields replaced (`null` removes one). */
function request(
  fields: Record<string, string | null> = {},
  line: Partial<Omit<RequestHead, "headers">> = {},
): RequestHead {
  const headers = new Headers({
    host: "example.com",
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-key": KEY,
    "sec-websocket-version": "13",
  });
  for (const [name, value] of Object.entries(fields)) {
    if (value === null) headers.delete(name);
    else headers.set(name, value);
  }
  return { method: "GET", target: "/", version: "HTTP/1.1", ...line, headers };
}

/** A valid 101 response head for KEY, with fields replaced (`null` removes one). */
function response(
  fields: Record<string, string | null> = {},
  status = 101,
): ResponseHead {
  const headers = new Headers({
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-accept": ACCEPT,
  });
  for (const [name, value] of Object.entries(fields)) {
    if (value === null) headers.delete(name);
    else headers.set(name, value);
  }
  return { version: "HTTP/1.1", status, statusText: "", headers };
}

const NONE = { key: KEY, protocols: [], extensions: [] };

describe("computeAccept", () => {
  test("computeAccept gives RFC 6455's sample accept for its sample key", async () => {
    assert.equal(await computeAccept(KEY), ACCEPT);
  });

  test("WEBSOCKET_GUID is RFC 6455's GUID", () => {
    assert.equal(WEBSOCKET_GUID, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
  });
});

describe("generateKey", () => {
  test("generateKey base64-encodes 16 bytes from the given source", () => {
    const key = generateKey((bytes) => bytes.map((_, i) => i));
    assert.equal(key, "AAECAwQFBgcICQoLDA0ODw==");
    assert.deepEqual(
      Uint8Array.from(atob(key), (c) => c.charCodeAt(0)),
      Uint8Array.from({ length: 16 }, (_, i) => i),
    );
  });

  test("generateKey uses crypto.getRandomValues by default, a new key each time", () => {
    const keys = new Set(Array.from({ length: 50 }, () => generateKey()));
    assert.equal(keys.size, 50);
    for (const key of keys) assert.match(key, /^[A-Za-z0-9+/]{22}==$/);
  });

  test("generateKey refuses a source that returns other than 16 bytes with RangeError", () => {
    assert.throws(() => generateKey(() => new Uint8Array(8)), RangeError);
  });
});

describe("hasToken", () => {
  test("hasToken matches list elements case-insensitively", () => {
    assert.equal(hasToken("Upgrade", "upgrade"), true);
    assert.equal(hasToken("keep-alive, Upgrade", "upgrade"), true);
    assert.equal(hasToken("keep-alive,\tUPGRADE ", "Upgrade"), true);
    assert.equal(hasToken("WebSocket", "websocket"), true);
  });

  test("hasToken does not match parts of elements, empty values or null", () => {
    assert.equal(hasToken("upgrade-insecure-requests", "upgrade"), false);
    assert.equal(hasToken("keep-alive upgrade", "upgrade"), false);
    assert.equal(hasToken("websocket/13", "websocket"), false);
    assert.equal(hasToken("", "upgrade"), false);
    assert.equal(hasToken(null, "upgrade"), false);
  });
  test("hasToken and parseProtocols stay linear on long runs of inner spaces", () => {
    const value = `a${" ".repeat(60000)}b, upgrade`;
    const start = performance.now();
    assert.equal(hasToken(value, "upgrade"), true);
    assert.throws(() => parseProtocols(value), HandshakeError);
    const elapsed = performance.now() - start;
    assert.ok(elapsed < 200, `took ${elapsed} ms`);
  });
});

describe("parseExtensions", () => {
  test("parseExtensions returns [] for an absent or empty header", () => {
    assert.deepEqual(parseExtensions(null), []);
    assert.deepEqual(parseExtensions(""), []);
    assert.deepEqual(parseExtensions(" , ,"), []);
  });

  test("parseExtensions reads names, bare params and token values", () => {
    assert.deepEqual(
      parseExtensions(
        "permessage-deflate; client_max_window_bits; server_max_window_bits=10",
      ),
      [{
        name: "permessage-deflate",
        params: { client_max_window_bits: true, server_max_window_bits: "10" },
      }],
    );
  });

  test("parseExtensions unquotes quoted values and their backslash escapes", () => {
    assert.deepEqual(parseExtensions('x; a="10"; b="1\\0"; c="\\a\\b"'), [
      { name: "x", params: { a: "10", b: "10", c: "ab" } },
    ]);
  });

  test("parseExtensions keeps several offers, of the same extension too, in order", () => {
    assert.deepEqual(
      parseExtensions(
        "permessage-deflate; client_no_context_takeover, permessage-deflate, x-other",
      ),
      [
        {
          name: "permessage-deflate",
          params: { client_no_context_takeover: true },
        },
        { name: "permessage-deflate", params: {} },
        { name: "x-other", params: {} },
      ],
    );
  });

  test("parseExtensions allows whitespace around tokens and separators, and empty elements", () => {
    assert.deepEqual(parseExtensions(" , a ;\tb = 1 ; c , ,b ,"), [
      { name: "a", params: { b: "1", c: true } },
      { name: "b", params: {} },
    ]);
  });

  test("parseExtensions keeps the order of params", () => {
    const [offer] = parseExtensions("x; z=1; a; m=2");
    assert.deepEqual(Object.keys(offer!.params), ["z", "a", "m"]);
  });

  test("parseExtensions stores a param named __proto__ as a plain property", () => {
    const [offer] = parseExtensions("x; __proto__=1");
    assert.equal(Object.getPrototypeOf(offer!.params), Object.prototype);
    assert.deepEqual(Object.entries(offer!.params), [["__proto__", "1"]]);
  });

  const malformed: [string, string, RegExp][] = [
    ["a leading semicolon", "; a", /expected an extension name/],
    ["a missing param name", "x; ", /expected a parameter name for x/],
    ["a missing value", "x; a=", /expected a value for a/],
    ["a value with a separator", "x; a=b=c", /expected "," or ";"/],
    ["a space inside a name", "x y", /expected "," or ";"/],
    ["a non-token name", "x(1)", /expected "," or ";"/],
    ["an unterminated quoted-string", 'x; a="10', /unterminated quoted-string/],
    ["an escape at the end", 'x; a="1\\', /unterminated quoted-string/],
    [
      "a quoted value that is not a token",
      'x; a="1 0"',
      /not a token once unquoted/,
    ],
    ["an empty quoted value", 'x; a=""', /not a token once unquoted/],
    [
      "a control character in a quoted-string",
      'x; a="1\x010"',
      /control character/,
    ],
    ["a repeated param", "x; a; a=1", /parameter a of x is repeated/],
    ["a non-ASCII name", "d\xe9flate", /expected "," or ";"/],
  ];
  for (const [what, value, message] of malformed) {
    test(`parseExtensions refuses ${what} with 400`, () => {
      assert.throws(
        () => parseExtensions(value),
        refused(
          400,
          new RegExp(`^Malformed Sec-WebSocket-Extensions .*${message.source}`),
        ),
      );
    });
  }
});

describe("formatExtensions", () => {
  test("formatExtensions writes offers that parseExtensions reads back", () => {
    const offers: ExtensionOffer[] = [
      {
        name: "permessage-deflate",
        params: { client_max_window_bits: true, server_max_window_bits: "10" },
      },
      { name: "permessage-deflate", params: {} },
    ];
    const value = formatExtensions(offers);
    assert.equal(
      value,
      "permessage-deflate; client_max_window_bits; server_max_window_bits=10, permessage-deflate",
    );
    assert.deepEqual(parseExtensions(value), offers);
    assert.equal(formatExtensions([]), "");
  });

  test("formatExtensions refuses names and values that are not tokens with TypeError", () => {
    assert.throws(
      () => formatExtensions([{ name: "a b", params: {} }]),
      TypeError,
    );
    assert.throws(
      () => formatExtensions([{ name: "x", params: { "a=": true } }]),
      TypeError,
    );
    assert.throws(
      () => formatExtensions([{ name: "x", params: { a: "1 0" } }]),
      TypeError,
    );
    assert.throws(
      () => formatExtensions([{ name: "x", params: { a: "" } }]),
      TypeError,
    );
    assert.throws(
      () => formatExtensions([{ name: "x", params: { a: "1\r\nX: y" } }]),
      TypeError,
    );
  });
});

describe("parseProtocols", () => {
  test("parseProtocols splits a comma-separated list, trimming whitespace, skipping empties", () => {
    assert.deepEqual(parseProtocols(null), []);
    assert.deepEqual(parseProtocols(""), []);
    assert.deepEqual(parseProtocols("chat"), ["chat"]);
    assert.deepEqual(parseProtocols(" v2.chat ,\tv1.chat,, "), [
      "v2.chat",
      "v1.chat",
    ]);
  });

  test("parseProtocols refuses a name that is not a token with 400", () => {
    for (const value of ["a b", "a, b/c", 'a, "b"', "caf\xe9"]) {
      assert.throws(
        () => parseProtocols(value),
        refused(400, /Malformed Sec-WebSocket-Protocol: .* is not a token/),
      );
    }
  });

  test("parseProtocols stays linear on thousands of names", () => {
    const names = Array.from({ length: 30000 }, (_, i) => `p${i}`);
    const start = performance.now();
    assert.equal(parseProtocols(names.join(",")).length, 30000);
    const elapsed = performance.now() - start;
    assert.ok(elapsed < 500, `took ${elapsed} ms`);
  });

  test("parseProtocols refuses a repeated name with 400, comparing case-sensitively", () => {
    assert.throws(
      () => parseProtocols("chat, chat"),
      refused(400, /chat is listed twice/),
    );
    assert.deepEqual(parseProtocols("chat, Chat"), ["chat", "Chat"]);
  });
});

describe("selectSubprotocol", () => {
  test("selectSubprotocol picks by the client's order of preference, not the server's", () => {
    assert.equal(selectSubprotocol(["v3", "v2", "v1"], ["v1", "v2"]), "v2");
    assert.equal(selectSubprotocol(["v1", "v2"], ["v2", "v1"]), "v1");
  });

  test("selectSubprotocol returns null when nothing is shared", () => {
    assert.equal(selectSubprotocol(["v3"], ["v1"]), null);
    assert.equal(selectSubprotocol([], ["v1"]), null);
    assert.equal(selectSubprotocol(["v1"], []), null);
    assert.equal(selectSubprotocol(["Chat"], ["chat"]), null);
  });
});

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

describe("validateClientRequest", () => {
  test("validateClientRequest accepts a valid request and splits path and query", () => {
    const upgrade = validateClientRequest(
      request({}, { target: "/chat/room?id=1&x=%20" }),
    );
    assert.equal(upgrade.method, "GET");
    assert.equal(upgrade.target, "/chat/room?id=1&x=%20");
    assert.equal(upgrade.path, "/chat/room");
    assert.equal(upgrade.query, "id=1&x=%20");
    assert.equal(upgrade.key, KEY);
    assert.deepEqual(upgrade.protocols, []);
    assert.deepEqual(upgrade.extensions, []);
    assert.equal(validateClientRequest(request()).query, "");
  });

  test("validateClientRequest accepts an absolute-form target (RFC 6455 §4.2.1)", () => {
    const upgrade = validateClientRequest(
      request({}, { target: "ws://example.com/chat?a=1" }),
    );
    assert.equal(upgrade.path, "/chat");
    assert.equal(upgrade.query, "a=1");
    assert.equal(
      validateClientRequest(request({}, { target: "http://example.com" })).path,
      "/",
    );
  });

  test("validateClientRequest refuses an asterisk or authority-form target with 400", () => {
    for (const target of ["*", "example.com:80", "mailto:a@b"]) {
      assert.throws(
        () => validateClientRequest(request({}, { target })),
        refused(400, /Invalid request target/),
      );
    }
  });

  test("validateClientRequest matches Upgrade and Connection case-insensitively as token lists", () => {
    assert.ok(
      validateClientRequest(
        request({ upgrade: "WebSocket", connection: "keep-alive, Upgrade" }),
      ),
    );
    assert.ok(
      validateClientRequest(
        request({ upgrade: "h2c, WEBSOCKET", connection: "UPGRADE" }),
      ),
    );
  });

  test("validateClientRequest reads offered subprotocols and extensions", () => {
    const upgrade = validateClientRequest(request({
      "sec-websocket-protocol": "v2, v1",
      "sec-websocket-extensions":
        "permessage-deflate; client_max_window_bits, permessage-deflate",
    }));
    assert.deepEqual(upgrade.protocols, ["v2", "v1"]);
    assert.deepEqual(upgrade.extensions, [
      { name: "permessage-deflate", params: { client_max_window_bits: true } },
      { name: "permessage-deflate", params: {} },
    ]);
  });

  test("validateClientRequest refuses a non-GET method with 405 and Allow: GET", () => {
    for (const method of ["POST", "get", "HEAD"]) {
      assert.throws(
        () => validateClientRequest(request({}, { method })),
        refused(405, /not allowed for a WebSocket handshake; use GET/, {
          allow: "GET",
        }),
      );
    }
  });

  test("validateClientRequest refuses HTTP/1.0 and non-1.x versions with 505", () => {
    for (const version of ["HTTP/1.0", "HTTP/2.0", "HTTP/0.9", "junk"]) {
      assert.throws(
        () => validateClientRequest(request({}, { version })),
        refused(505, /needs HTTP\/1.1/),
      );
    }
    assert.ok(validateClientRequest(request({}, { version: "HTTP/1.2" })));
  });

  test("validateClientRequest refuses a missing or empty Host with 400", () => {
    assert.throws(
      () => validateClientRequest(request({ host: null })),
      refused(400, /Missing Host/),
    );
    assert.throws(
      () => validateClientRequest(request({ host: "" })),
      refused(400, /Empty Host/),
    );
  });

  test("validateClientRequest refuses a repeated Host with 400, from the wire or from joined Headers", () => {
    const wire = "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n";
    assert.throws(
      () => parseRequestHead(encoder.encode(wire)),
      refused(400, /Host appears more than once/),
    );
    const head = request();
    head.headers.append("host", "evil.example");
    assert.throws(
      () => validateClientRequest(head),
      refused(400, /Host header appears more than once/),
    );
  });

  test("validateClientRequest refuses a request without websocket in Upgrade with 426 and Upgrade: websocket", () => {
    assert.throws(
      () => validateClientRequest(request({ upgrade: null })),
      refused(426, /Not a WebSocket request: the Upgrade header is missing/, {
        upgrade: "websocket",
      }),
    );
    assert.throws(
      () => validateClientRequest(request({ upgrade: "h2c" })),
      refused(426, /Not a WebSocket request: Upgrade is h2c/, {
        upgrade: "websocket",
        connection: "Upgrade",
      }),
    );
  });

  test("validateClientRequest refuses a Connection without upgrade with 400", () => {
    assert.throws(
      () => validateClientRequest(request({ connection: null })),
      refused(400, /Missing Connection/),
    );
    assert.throws(
      () => validateClientRequest(request({ connection: "keep-alive" })),
      refused(400, /Connection is keep-alive; it must include Upgrade/),
    );
  });

  test("validateClientRequest refuses version 8 with 426 and Sec-WebSocket-Version: 13", () => {
    assert.throws(
      () => validateClientRequest(request({ "sec-websocket-version": "8" })),
      refused(
        426,
        /^Unsupported Sec-WebSocket-Version: 8; this server speaks 13$/,
        {
          "sec-websocket-version": "13",
          upgrade: "websocket",
        },
      ),
    );
  });

  test("validateClientRequest refuses a missing Sec-WebSocket-Version with 426 and Sec-WebSocket-Version: 13", () => {
    assert.throws(
      () => validateClientRequest(request({ "sec-websocket-version": null })),
      refused(426, /Missing Sec-WebSocket-Version/, {
        "sec-websocket-version": "13",
      }),
    );
  });

  test("validateClientRequest refuses a missing Sec-WebSocket-Key with 400", () => {
    assert.throws(
      () => validateClientRequest(request({ "sec-websocket-key": null })),
      refused(400, /Missing Sec-WebSocket-Key/),
    );
  });

  test("validateClientRequest refuses a repeated Sec-WebSocket-Key with 400", () => {
    const head = request();
    head.headers.append("sec-websocket-key", "AAAAAAAAAAAAAAAAAAAAAA==");
    assert.throws(
      () => validateClientRequest(head),
      refused(400, /Sec-WebSocket-Key header appears more than once/),
    );
  });

  test("validateClientRequest refuses a key that is not base64 of 16 bytes with 400", () => {
    for (
      const key of [
        "dGhlIHNhbXBsZSBub25jZQ", // no padding
        "dGhlIHNhbXBsZSBub25jZQ==x",
        "dGhlIHNhbXBsZSBub25jZSE=", // 17 bytes
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", // 24 bytes
        "dGhlIHNhbXBsZSBub25jZ!==",
        "",
      ]
    ) {
      assert.throws(
        () => validateClientRequest(request({ "sec-websocket-key": key })),
        refused(400, /Sec-WebSocket-Key/),
        key,
      );
    }
  });

  test("validateClientRequest refuses malformed Sec-WebSocket-Protocol and Sec-WebSocket-Extensions with 400", () => {
    assert.throws(
      () => validateClientRequest(request({ "sec-websocket-protocol": "a b" })),
      refused(400, /Malformed Sec-WebSocket-Protocol/),
    );
    assert.throws(
      () =>
        validateClientRequest(request({ "sec-websocket-protocol": "a, a" })),
      refused(400, /listed twice/),
    );
    assert.throws(
      () =>
        validateClientRequest(
          request({ "sec-websocket-extensions": "permessage-deflate;" }),
        ),
      refused(400, /Malformed Sec-WebSocket-Extensions/),
    );
  });

  test("validateClientRequest checks the method before the Upgrade header", () => {
    assert.throws(
      () =>
        validateClientRequest(request({ upgrade: null }, { method: "POST" })),
      refused(405),
    );
  });
});

describe("isWebSocketRequest", () => {
  test("isWebSocketRequest is true when Upgrade holds websocket, in any case", () => {
    assert.equal(isWebSocketRequest(request()), true);
    assert.equal(
      isWebSocketRequest(request({ upgrade: "h2c, WebSocket" })),
      true,
    );
  });

  test("isWebSocketRequest is false for plain HTTP requests", () => {
    assert.equal(isWebSocketRequest(request({ upgrade: null })), false);
    assert.equal(isWebSocketRequest(request({ upgrade: "h2c" })), false);
  });
});

describe("buildServerResponse", () => {
  test("buildServerResponse writes the 101 with RFC 6455's sample accept", async () => {
    const text = decoder.decode(
      await buildServerResponse(validateClientRequest(request()), {}),
    );
    assert.equal(
      text,
      "HTTP/1.1 101 Switching Protocols\r\n" +
        "Connection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${ACCEPT}\r\n` +
        "Upgrade: websocket\r\n" +
        "\r\n",
    );
  });

  test("buildServerResponse adds the chosen subprotocol, extensions and extra headers", async () => {
    const upgrade = validateClientRequest(request({
      "sec-websocket-protocol": "v2, v1",
      "sec-websocket-extensions": "permessage-deflate",
    }));
    const head = parseResponseHead(
      await buildServerResponse(upgrade, {
        protocol: "v1",
        extensions: [{
          name: "permessage-deflate",
          params: { server_no_context_takeover: true },
        }],
        headers: { "set-cookie": "a=b" },
      }),
    );
    assert.equal(head.headers.get("sec-websocket-protocol"), "v1");
    assert.equal(
      head.headers.get("sec-websocket-extensions"),
      "permessage-deflate; server_no_context_takeover",
    );
    assert.equal(head.headers.get("set-cookie"), "a=b");
  });

  test("buildServerResponse refuses a subprotocol or extension the client did not offer with TypeError", async () => {
    const upgrade = validateClientRequest(
      request({ "sec-websocket-protocol": "v1" }),
    );
    await assert.rejects(
      buildServerResponse(upgrade, { protocol: "v2" }),
      TypeError,
    );
    await assert.rejects(
      buildServerResponse(upgrade, {
        extensions: [{ name: "permessage-deflate", params: {} }],
      }),
      TypeError,
    );
  });

  test("buildServerResponse refuses headers that the handshake sets with TypeError", async () => {
    const upgrade = validateClientRequest(
      request({ "sec-websocket-protocol": "v1" }),
    );
    for (
      const name of [
        "Upgrade",
        "Connection",
        "Sec-WebSocket-Accept",
        "Sec-WebSocket-Extensions",
      ]
    ) {
      await assert.rejects(
        buildServerResponse(upgrade, { headers: { [name]: "x" } }),
        (error: unknown) =>
          error instanceof TypeError && error.message.includes(name),
      );
    }
    await assert.rejects(
      buildServerResponse(upgrade, {
        headers: { "sec-websocket-protocol": "v1" },
      }),
      (error: unknown) =>
        error instanceof TypeError && error.message.includes("protocol option"),
    );
  });
});

describe("refusalResponse", () => {
  /** Parses a refusal back into its head and body. */
  function read(bytes: Uint8Array) {
    const result = new HeadParser().push(bytes);
    assert.ok(result);
    return {
      head: parseResponseHead(result.head),
      body: decoder.decode(result.rest),
    };
  }

  test("refusalResponse writes 405 with Allow, Connection: close and the reason phrase, not the message", () => {
    let error: HandshakeError | undefined;
    try {
      validateClientRequest(request({}, { method: "POST" }));
    } catch (caught) {
      error = caught as HandshakeError;
    }
    assert.ok(error);
    const { head, body } = read(refusalResponse(error));
    assert.equal(head.status, 405);
    assert.equal(head.statusText, "Method Not Allowed");
    assert.equal(head.headers.get("allow"), "GET");
    assert.equal(head.headers.get("connection"), "close");
    assert.equal(head.headers.get("content-type"), "text/plain; charset=utf-8");
    assert.equal(body, "Method Not Allowed");
    assert.equal(
      Number(head.headers.get("content-length")),
      encoder.encode(body).length,
    );
  });

  test("refusalResponse writes 426 with Upgrade: websocket, Sec-WebSocket-Version: 13 and Connection: Upgrade, close", () => {
    const error = new HandshakeError(
      "Unsupported Sec-WebSocket-Version: 8; this server speaks 13",
      426,
      {
        headers: {
          upgrade: "websocket",
          connection: "Upgrade",
          "sec-websocket-version": "13",
        },
      },
    );
    const { head, body } = read(refusalResponse(error));
    assert.equal(head.statusText, "Upgrade Required");
    assert.equal(head.headers.get("upgrade"), "websocket");
    assert.equal(head.headers.get("sec-websocket-version"), "13");
    assert.equal(head.headers.get("connection"), "Upgrade, close");
    assert.equal(body, "Upgrade Required");
  });

  test("refusalResponse uses the standard reason phrase for 400, 431 and 505", () => {
    const phrases: [number, string][] = [
      [400, "Bad Request"],
      [431, "Request Header Fields Too Large"],
      [505, "HTTP Version Not Supported"],
      [499, ""],
    ];
    for (const [status, phrase] of phrases) {
      assert.equal(
        read(refusalResponse(new HandshakeError("no", status))).head.statusText,
        phrase,
      );
    }
  });

  test("refusalResponse writes a non-ASCII body as UTF-8 with the right length", () => {
    const { head, body } = read(
      refusalResponse(
        new HandshakeError("internal", 403, { body: "Nicht erlaubt: ü" }),
      ),
    );
    assert.equal(body, "Nicht erlaubt: ü");
    assert.equal(head.headers.get("content-length"), "17");
    assert.equal(head.headers.get("content-type"), "text/plain; charset=utf-8");
  });

  test("refusalResponse sends the error's body and headers, never its message", () => {
    const error = new HandshakeError("secret detail", 401, {
      headers: { "WWW-Authenticate": "Basic", "Content-Length": "999" },
      body: "log in",
    });
    const bytes = refusalResponse(error);
    const { head, body } = read(bytes);
    assert.equal(head.status, 401);
    assert.equal(head.statusText, "Unauthorized");
    assert.equal(head.headers.get("www-authenticate"), "Basic");
    assert.equal(head.headers.get("content-length"), "6");
    assert.equal(body, "log in");
    assert.ok(!decoder.decode(bytes).includes("secret"));
  });

  test("refusalResponse keeps the error's Content-Type for its body, writes text/plain for the default one", () => {
    const json = read(refusalResponse(
      new HandshakeError("no", 403, {
        headers: { "content-type": "application/json" },
        body: '{"error":"banned"}',
      }),
    ));
    assert.equal(json.head.headers.get("content-type"), "application/json");
    assert.equal(json.body, '{"error":"banned"}');
    const neutral = read(refusalResponse(
      new HandshakeError("no", 403, {
        headers: { "content-type": "application/json" },
      }),
    ));
    assert.equal(
      neutral.head.headers.get("content-type"),
      "text/plain; charset=utf-8",
    );
    assert.equal(neutral.body, "Forbidden");
  });

  test("refusalResponse sends no body for a status without a reason phrase", () => {
    const { head, body } = read(
      refusalResponse(new HandshakeError("no", 499)),
    );
    assert.equal(body, "");
    assert.equal(head.headers.get("content-length"), "0");
  });

  test("refusalResponse refuses a status that is not 4xx or 5xx with RangeError", () => {
    for (const status of [0, 101, 200, 600]) {
      assert.throws(
        () => refusalResponse(new HandshakeError("no", status)),
        RangeError,
      );
    }
  });
});

describe("client and server together", () => {
  test("a client request goes through the server and its response through the client", async () => {
    const key = generateKey();
    const clientHead = buildClientRequest({
      url: new URL("ws://localhost:8080/echo?x=1"),
      key,
      protocols: ["v2", "v1"],
      extensions: [{
        name: "permessage-deflate",
        params: { client_max_window_bits: true },
      }],
      headers: { origin: "http://localhost" },
    });
    // Over the wire, with the first client frame in the same chunk.
    const frame = new Uint8Array([0x81, 0x80, 1, 2, 3, 4]);
    const wire = new Uint8Array([...writeRequestHead(clientHead), ...frame]);
    const received = new HeadParser().push(wire);
    assert.ok(received);
    assert.deepEqual(received.rest, frame);

    const upgrade = validateClientRequest(parseRequestHead(received.head));
    assert.equal(upgrade.path, "/echo");
    assert.equal(upgrade.headers.get("host"), "localhost:8080");
    assert.equal(upgrade.headers.get("origin"), "http://localhost");
    const protocol = selectSubprotocol(upgrade.protocols, ["v1", "v2"]);
    assert.equal(protocol, "v2");
    const reply = await buildServerResponse(upgrade, {
      protocol: protocol!,
      extensions: [{ name: "permessage-deflate", params: {} }],
    });

    const answered = new HeadParser().push(reply);
    assert.ok(answered);
    const result = await validateServerResponse(
      parseResponseHead(answered.head),
      {
        key,
        protocols: ["v2", "v1"],
        extensions: [{
          name: "permessage-deflate",
          params: { client_max_window_bits: true },
        }],
      },
    );
    assert.deepEqual(result, {
      protocol: "v2",
      extensions: [{ name: "permessage-deflate", params: {} }],
    });
  });

  test("a server refusal reaches the client as a HandshakeError with the refusal's status", async () => {
    const head = request({ "sec-websocket-version": "8" });
    let refusal: Uint8Array | undefined;
    try {
      validateClientRequest(head);
    } catch (error) {
      refusal = refusalResponse(error as HandshakeError);
    }
    assert.ok(refusal);
    const answered = new HeadParser().push(refusal);
    assert.ok(answered);
    await assert.rejects(
      validateServerResponse(parseResponseHead(answered.head), NONE),
      refused(426, /426 Upgrade Required/, { "sec-websocket-version": "13" }),
    );
  });
});

describe("garbage", () => {
  test("parseExtensions and parseProtocols throw nothing but HandshakeError on random strings", () => {
    let seed = 4;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x80000000;
    };
    const alphabet = 'ab;=," \\\t\x00\xe9-_';
    for (let round = 0; round < 5000; round++) {
      let value = "";
      const length = Math.floor(random() * 30);
      for (let i = 0; i < length; i++) {
        value += alphabet[Math.floor(random() * alphabet.length)];
      }
      for (const parse of [parseExtensions, parseProtocols]) {
        try {
          parse(value);
        } catch (error) {
          assert.ok(
            error instanceof HandshakeError,
            `${JSON.stringify(value)}: ${error}`,
          );
        }
      }
    }
  });

  test("parseExtensions output always formats and parses back to itself", () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x80000000;
    };
    const alphabet = 'ab;=," \\';
    let parsed = 0;
    for (let round = 0; round < 5000; round++) {
      let value = "";
      const length = Math.floor(random() * 24);
      for (let i = 0; i < length; i++) {
        value += alphabet[Math.floor(random() * alphabet.length)];
      }
      let offers: ExtensionOffer[];
      try {
        offers = parseExtensions(value);
      } catch {
        continue;
      }
      parsed++;
      assert.deepEqual(
        parseExtensions(formatExtensions(offers)),
        offers,
        JSON.stringify(value),
      );
    }
    assert.ok(parsed > 100);
  });
});

describe("handshake over parsed heads", () => {
  const REQUEST = "GET /chat?room=1 HTTP/1.1\r\nHost: example.com\r\n" +
    "Upgrade: websocket\r\nConnection: Upgrade\r\n" +
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat.v2\r\n" +
    "Sec-WebSocket-Protocol: chat.v1\r\nX-User: ann\r\n\r\n";
  const parse = () => parseRequestHead(new TextEncoder().encode(REQUEST));

  test("validateClientRequest's headers are the head's, read before or after", () => {
    const first = parse();
    const request = validateClientRequest(first);
    // Repeated fields are joined, as a Headers joins them.
    assert.deepEqual(request.protocols, ["chat.v2", "chat.v1"]);
    assert.equal(request.headers.get("x-user"), "ann");
    assert.equal(request.headers, first.headers);
    const second = parse();
    const headers = second.headers;
    assert.equal(validateClientRequest(second).headers, headers);
    assert.equal({ ...request }.headers.get("host"), "example.com");
  });

  test("validateClientRequest and isWebSocketRequest see headers assigned or changed after parsing", () => {
    const replaced = parse();
    replaced.headers = new Headers(replaced.headers);
    replaced.headers.set("sec-websocket-version", "8");
    assert.throws(
      () => validateClientRequest(replaced),
      (error) => error instanceof HandshakeError && error.status === 426,
    );
    const changed = parse();
    changed.headers.delete("upgrade");
    assert.equal(isWebSocketRequest(changed), false);
    assert.equal(isWebSocketRequest(parse()), true);
  });

  test("buildServerResponse writes the same bytes without extra fields as with an empty Headers", async () => {
    const request = validateClientRequest(parse());
    for (const protocol of [undefined, "chat.v1"]) {
      const general = await buildServerResponse(request, {
        ...(protocol === undefined ? {} : { protocol }),
        headers: new Headers(),
      });
      for (const headers of [undefined, {}, []]) {
        const direct = await buildServerResponse(request, {
          ...(protocol === undefined ? {} : { protocol }),
          ...(headers === undefined ? {} : { headers }),
        });
        assert.equal(
          decoder.decode(direct),
          decoder.decode(general),
          `protocol ${protocol}, headers ${JSON.stringify(headers)}`,
        );
      }
    }
    const text = decoder.decode(
      await buildServerResponse(request, { protocol: "chat.v1" }),
    );
    assert.equal(
      text,
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" +
        "Sec-WebSocket-Protocol: chat.v1\r\nUpgrade: websocket\r\n\r\n",
    );
  });

  test("buildServerResponse still refuses a subprotocol that could inject a line, without extra fields", async () => {
    const request = {
      ...validateClientRequest(parse()),
      protocols: ["x\r\nX-Evil: 1"],
    };
    await assert.rejects(
      buildServerResponse(request, { protocol: "x\r\nX-Evil: 1" }),
      TypeError,
    );
    // Extra fields from a Map (an iterable, not a record) are kept.
    const text = decoder.decode(
      await buildServerResponse(validateClientRequest(parse()), {
        headers: new Map([["x-room", "lobby"]]) as unknown as HeadersInit,
      }),
    );
    assert.ok(text.includes("X-Room: lobby\r\n"), text);
  });
});
