import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { HandshakeError } from "../src/errors.ts";
import {
  buildServerResponse,
  isWebSocketRequest,
  refusalResponse,
  validateClientRequest,
} from "../src/handshake_server.ts";
import {
  HeadParser,
  parseRequestHead,
  parseResponseHead,
} from "../src/http1_parse.ts";
import { ACCEPT, KEY, refused, request } from "./_handshake.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

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
