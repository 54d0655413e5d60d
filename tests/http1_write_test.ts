import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseRequestHead, parseResponseHead } from "../src/http1_parse.ts";
import {
  reasonPhrase,
  writeRequestHead,
  writeResponse,
  writeResponseHead,
} from "../src/http1_write.ts";

const decoder = new TextDecoder();

describe("writeRequestHead", () => {
  test("writeRequestHead writes CRLF lines, conventional names and a final empty line", () => {
    const bytes = writeRequestHead({
      method: "GET",
      target: "/chat",
      version: "HTTP/1.1",
      headers: new Headers({
        host: "example.com",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "x-custom-thing": "1",
      }),
    });
    assert.equal(
      decoder.decode(bytes),
      "GET /chat HTTP/1.1\r\n" +
        "Host: example.com\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
        "X-Custom-Thing: 1\r\n" +
        "\r\n",
    );
  });

  test("writeRequestHead writes a field named like an Object property as itself", () => {
    const headers = new Headers([["constructor", "1"], ["__proto__", "2"]]);
    const text = decoder.decode(
      writeRequestHead({
        method: "GET",
        target: "/",
        version: "HTTP/1.1",
        headers,
      }),
    );
    assert.equal(
      text,
      "GET / HTTP/1.1\r\n__proto__: 2\r\nConstructor: 1\r\n\r\n",
    );
  });

  test("writeRequestHead output parses back to the same head", () => {
    const headers = new Headers({ host: "a", "x-a": "b c" });
    const head = {
      method: "GET",
      target: "/?q=1",
      version: "HTTP/1.1",
      headers,
    };
    const parsed = parseRequestHead(writeRequestHead(head));
    assert.equal(parsed.target, "/?q=1");
    assert.deepEqual([...parsed.headers], [...headers]);
  });

  test("writeRequestHead refuses a header value with CR, LF or NUL (header injection)", () => {
    for (const value of ["a\r\nX-Injected: 1", "a\nb", "a\rb", "a\x00b"]) {
      // Headers itself refuses these, so smuggle them in through a look-alike.
      const headers = new Map([["x-a", value]]) as unknown as Headers;
      assert.throws(
        () =>
          writeRequestHead({
            method: "GET",
            target: "/",
            version: "HTTP/1.1",
            headers,
          }),
        TypeError,
      );
    }
  });

  test("writeRequestHead refuses a header name that is not a token", () => {
    const headers = new Map([["x-a\r\nx-b", "1"]]) as unknown as Headers;
    assert.throws(
      () =>
        writeRequestHead({
          method: "GET",
          target: "/",
          version: "HTTP/1.1",
          headers,
        }),
      TypeError,
    );
  });

  test("writeRequestHead refuses a target with spaces or CRLF, a bad method or version", () => {
    const headers = new Headers();
    for (const target of ["/a b", "/\r\nX: 1", ""]) {
      assert.throws(
        () =>
          writeRequestHead({
            method: "GET",
            target,
            version: "HTTP/1.1",
            headers,
          }),
        TypeError,
      );
    }
    assert.throws(
      () =>
        writeRequestHead({
          method: "GE T",
          target: "/",
          version: "HTTP/1.1",
          headers,
        }),
      TypeError,
    );
    assert.throws(
      () =>
        writeRequestHead({
          method: "GET",
          target: "/",
          version: "HTTP/1.1\r\n",
          headers,
        }),
      TypeError,
    );
  });
});

describe("writeResponseHead", () => {
  test("writeResponseHead writes the status line and fields", () => {
    const bytes = writeResponseHead({
      version: "HTTP/1.1",
      status: 101,
      statusText: "Switching Protocols",
      headers: new Headers({ upgrade: "websocket", connection: "Upgrade" }),
    });
    assert.equal(
      decoder.decode(bytes),
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    );
    const parsed = parseResponseHead(bytes);
    assert.equal(parsed.statusText, "Switching Protocols");
  });

  test("writeResponseHead keeps the space before an empty reason phrase", () => {
    const bytes = writeResponseHead({
      version: "HTTP/1.1",
      status: 204,
      statusText: "",
      headers: new Headers(),
    });
    assert.equal(decoder.decode(bytes), "HTTP/1.1 204 \r\n\r\n");
  });

  test("writeResponseHead refuses a reason phrase with CRLF (injection) with TypeError", () => {
    assert.throws(
      () =>
        writeResponseHead({
          version: "HTTP/1.1",
          status: 200,
          statusText: "OK\r\nSet-Cookie: a=b",
          headers: new Headers(),
        }),
      TypeError,
    );
  });

  test("writeResponseHead refuses a status outside 100-599 with RangeError", () => {
    for (const status of [99, 600, 200.5, NaN]) {
      assert.throws(
        () =>
          writeResponseHead({
            version: "HTTP/1.1",
            status,
            statusText: "",
            headers: new Headers(),
          }),
        RangeError,
      );
    }
  });
});

describe("writeResponse", () => {
  test("writeResponse adds Content-Length, Content-Type and Connection: close for a body", () => {
    const text = decoder.decode(
      writeResponse(400, "Bad Request", { "x-a": "1" }, "Bad key\n"),
    );
    assert.equal(
      text,
      "HTTP/1.1 400 Bad Request\r\n" +
        "Connection: close\r\n" +
        "Content-Length: 8\r\n" +
        "Content-Type: text/plain; charset=utf-8\r\n" +
        "X-A: 1\r\n" +
        "\r\n" +
        "Bad key\n",
    );
  });

  test("writeResponse without a body sends Content-Length: 0 and no Content-Type", () => {
    const text = decoder.decode(writeResponse(204, "No Content", {}));
    assert.equal(
      text,
      "HTTP/1.1 204 No Content\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    );
  });

  test("writeResponse counts the body's UTF-8 bytes and keeps a given Content-Type", () => {
    const text = decoder.decode(
      writeResponse(200, "OK", {
        "content-type": "text/html",
        "content-length": "999",
      }, "héllo"),
    );
    assert.ok(text.includes("Content-Length: 6\r\n"));
    assert.ok(text.includes("Content-Type: text/html\r\n"));
  });

  test("writeResponse adds close to an existing Connection list", () => {
    const upgrade = decoder.decode(
      writeResponse(426, "Upgrade Required", { connection: "Upgrade" }),
    );
    assert.ok(upgrade.includes("Connection: Upgrade, close\r\n"));
    const already = decoder.decode(
      writeResponse(400, "Bad Request", { connection: "Close" }),
    );
    assert.ok(already.includes("Connection: Close\r\n"));
  });

  test("writeResponse refuses an injected reason phrase with TypeError", () => {
    assert.throws(() => writeResponse(400, "Bad\r\nX: 1", {}), TypeError);
  });
});

describe("reasonPhrase", () => {
  test('reasonPhrase gives RFC 9110\'s phrases, and "" for a code without one', () => {
    const phrases: [number, string][] = [
      [200, "OK"],
      [204, "No Content"],
      [304, "Not Modified"],
      [413, "Content Too Large"],
      [426, "Upgrade Required"],
      [431, "Request Header Fields Too Large"],
      [501, "Not Implemented"],
      [299, ""],
      [999, ""],
    ];
    for (const [status, phrase] of phrases) {
      assert.equal(reasonPhrase(status), phrase, String(status));
    }
  });
});
