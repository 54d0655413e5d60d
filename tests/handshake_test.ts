import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { HandshakeError } from "../src/errors.ts";
import {
  computeAccept,
  generateKey,
  WEBSOCKET_GUID,
} from "../src/handshake.ts";
import {
  buildClientRequest,
  validateServerResponse,
} from "../src/handshake_client.ts";
import { selectSubprotocol } from "../src/handshake_headers.ts";
import {
  buildServerResponse,
  refusalResponse,
  validateClientRequest,
} from "../src/handshake_server.ts";
import {
  HeadParser,
  parseRequestHead,
  parseResponseHead,
} from "../src/http1_parse.ts";
import { writeRequestHead } from "../src/http1_write.ts";
import { ACCEPT, KEY, NONE, refused, request } from "./_handshake.ts";

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
