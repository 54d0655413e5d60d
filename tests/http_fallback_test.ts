/**
 * The server's HTTP side over real sockets on 127.0.0.1: `fallback` as a
 * small HTTP/1.1 server (bodies both ways as bytes, persistent connections,
 * RFC 9112's framing refusals) and the bodies of the server's refusals.
 *
 *     deno test -A tests/http_fallback_test.ts
 *     bun test ./tests/http_fallback_test.ts
 *
 * Clients are `fetch` where it fits, and raw TCP sockets (the runtime's own
 * transport, on either runtime) that read responses one at a time, so that
 * several on one connection can be told apart. Every test closes what it
 * opened and is bounded in time.
 */
import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "../src/client.ts";
import { HandshakeError } from "../src/errors.ts";
import { encodeFrame, Opcode } from "../src/frame.ts";
import { currentRuntime, runtimeName } from "../src/runtime.ts";
import { serve, type ServeOptions } from "../src/server.ts";
import type { Transport } from "../src/transport.ts";
import { bounded, sleep, within } from "./_wait.ts";

const rt = currentRuntime();
const HOST = "127.0.0.1";
const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** One byte, one char, both ways. */
const latin1 = (bytes: Uint8Array) => {
  let text = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    text += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return text;
};
const toBytes = (text: string) =>
  Uint8Array.from(text, (char) => char.charCodeAt(0));

// ---- closing all a test opened ----

const cleanups: (() => unknown)[] = [];

function defer<T>(thing: T, cleanup: (thing: T) => unknown): T {
  cleanups.push(() => cleanup(thing));
  return thing;
}

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    await within(5_000, Promise.resolve().then(cleanup)).catch(() => {});
  }
});

/** `serve()` on a free port with a fallback, recording `onError`. */
async function httpServer(
  fallback: ServeOptions["fallback"],
  options: Partial<ServeOptions> = {},
) {
  const errors: unknown[] = [];
  const server = defer(
    await serve({
      hostname: HOST,
      port: 0,
      fallback,
      onError: (error) => errors.push(error),
      ...options,
    }, async (connection) => {
      try {
        for await (const message of connection.readable) {
          await connection.send(message);
        }
      } catch {
        // Ended uncleanly.
      }
    }),
    (server) => server.close(),
  );
  const { port } = server.addr;
  return { server, port, base: `http://${HOST}:${port}`, errors };
}

// ---- a raw client that reads one response at a time ----

interface RawResponse {
  status: number;
  statusLine: string;
  headers: Headers;
  body: Uint8Array;
  /** The body's framing as sent: Content-Length, chunked, or to the close. */
  framing: "length" | "chunked" | "close" | "none";
}

/** A raw TCP client on `port`, closed after the test. */
async function rawClient(port: number) {
  const transport: Transport = defer(
    await rt.connect({ hostname: HOST, port }),
    (transport) => transport.close(),
  );
  const reader = transport.readable.getReader();
  const writer = transport.writable.getWriter();
  let buffer = new Uint8Array(0);
  let ended = false;

  /** Reads more bytes into the buffer; false at the end (or a reset). */
  const more = async (): Promise<boolean> => {
    if (ended) return false;
    let result: ReadableStreamReadResult<Uint8Array> | null;
    try {
      result = await reader.read();
    } catch {
      result = null; // a reset: the end too
    }
    if (result === null || result.done) {
      ended = true;
      return false;
    }
    const joined = new Uint8Array(buffer.length + result.value.length);
    joined.set(buffer);
    joined.set(result.value, buffer.length);
    buffer = joined;
    return true;
  };
  const take = (count: number) => {
    const bytes = buffer.slice(0, count);
    buffer = buffer.slice(count);
    return bytes;
  };
  /** A line without its CRLF. */
  const line = async (): Promise<string> => {
    while (true) {
      const at = buffer.indexOf(0x0a);
      if (at !== -1) return latin1(take(at + 1)).replace(/\r\n$/, "");
      if (!await more()) throw new Error("the connection ended in a line");
    }
  };
  const bytes = async (count: number): Promise<Uint8Array> => {
    while (buffer.length < count) {
      if (!await more()) throw new Error("the connection ended in a body");
    }
    return take(count);
  };

  return {
    /** The next `count` bytes, whatever they are. */
    read: (count: number) => within(3_000, bytes(count)),
    send: (data: string | Uint8Array) =>
      writer.write(typeof data === "string" ? toBytes(data) : data),
    /** The next response; `head` says whether it has no body (HEAD). */
    async response(options: { head?: boolean } = {}): Promise<RawResponse> {
      const statusLine = await within(3_000, line());
      const match = /^HTTP\/1\.1 (\d{3})(?: |$)/.exec(statusLine);
      assert.ok(match, `bad status line ${JSON.stringify(statusLine)}`);
      const status = Number(match[1]);
      const headers = new Headers();
      for (let field; (field = await line()) !== "";) {
        const colon = field.indexOf(":");
        headers.append(field.slice(0, colon), field.slice(colon + 1).trim());
      }
      if (options.head || status === 204 || status === 304) {
        return {
          status,
          statusLine,
          headers,
          body: new Uint8Array(0),
          framing: "none",
        };
      }
      if (headers.has("transfer-encoding")) {
        assert.equal(headers.get("transfer-encoding"), "chunked");
        const parts: number[] = [];
        while (true) {
          const size = parseInt(await within(3_000, line()), 16);
          if (size === 0) break;
          parts.push(...await within(3_000, bytes(size)));
          assert.equal(await line(), "");
        }
        assert.equal(await line(), "", "no trailers, and the final CRLF");
        return {
          status,
          statusLine,
          headers,
          body: Uint8Array.from(parts),
          framing: "chunked",
        };
      }
      const length = headers.get("content-length");
      if (length !== null) {
        return {
          status,
          statusLine,
          headers,
          body: await within(3_000, bytes(Number(length))),
          framing: "length",
        };
      }
      while (await within(3_000, more()));
      return {
        status,
        statusLine,
        headers,
        body: take(buffer.length),
        framing: "close",
      };
    },
    /** Resolves true once the server closed, with nothing more sent. */
    async closed(): Promise<boolean> {
      while (await within(3_000, more()));
      return buffer.length === 0;
    },
    /** Whether the server is still silent and open after `ms`. */
    async openAfter(ms: number): Promise<boolean> {
      const reading = more();
      const result = await Promise.race([
        reading,
        sleep(ms).then(() => "open"),
      ]);
      if (result !== "open") return false;
      // Leave the read to finish when the socket is closed after the test.
      reading.catch(() => {});
      return true;
    },
  };
}

/** A request head; `fields` are written in order. */
function request(
  method: string,
  target: string,
  fields: Record<string, string> = {},
  version = "HTTP/1.1",
): string {
  let head = `${method} ${target} ${version}\r\nHost: localhost\r\n`;
  for (const [name, value] of Object.entries(fields)) {
    head += `${name}: ${value}\r\n`;
  }
  return head + "\r\n";
}

/** `bytes` in the chunked coding, cut into chunks of varied sizes. */
function chunked(bytes: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  let at = 0;
  for (let n = 0; at < bytes.length; n++) {
    const size = Math.min(bytes.length - at, [1, 700, 4096, 65_536, 9][n % 5]!);
    parts.push(
      toBytes(`${size.toString(16)}${n % 3 === 0 ? ";ext=1" : ""}\r\n`),
    );
    parts.push(bytes.subarray(at, at + size), toBytes("\r\n"));
    at += size;
  }
  parts.push(toBytes("0\r\nX-Trailer: ignored\r\n\r\n"));
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Bytes that show where a slip would land: a counter, not a fill. */
function pattern(length: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 7 + (i >> 8)) & 0xff;
  return bytes;
}

/** Echoes the request's body bytes, with what the handler saw. */
const echoBody = async (request: Request) => {
  const body = new Uint8Array(await request.arrayBuffer());
  return new Response(body, {
    headers: {
      "X-Method": request.method,
      "X-Path": new URL(request.url).pathname,
      "X-Length": String(body.length),
    },
  });
};

describe(`HTTP fallback over ${runtimeName()} sockets`, () => {
  // ---- bodies as bytes ----

  test(
    "fallback sends a binary body of all 256 byte values intact, with Content-Length",
    bounded(async () => {
      const all = Uint8Array.from({ length: 256 }, (_, i) => i);
      const { port, base } = await httpServer(() => new Response(all));
      const response = await fetch(`${base}/bytes`);
      assert.deepEqual(new Uint8Array(await response.arrayBuffer()), all);
      const raw = await rawClient(port);
      await raw.send(request("GET", "/bytes"));
      const answer = await raw.response();
      assert.equal(answer.framing, "length");
      assert.equal(answer.headers.get("content-length"), "256");
      assert.deepEqual(answer.body, all);
    }),
  );

  test(
    "fallback streams a body of unknown length chunked to HTTP/1.1, to the close to HTTP/1.0",
    bounded(async () => {
      const { port } = await httpServer(() => {
        let n = 0;
        return new Response(
          new ReadableStream<Uint8Array>({
            async pull(controller) {
              await sleep(5);
              if (n === 3) return controller.close();
              controller.enqueue(pattern(20_000 * ++n));
            },
          }),
        );
      });
      const expected = [
        ...pattern(20_000),
        ...pattern(40_000),
        ...pattern(60_000),
      ];
      const raw = await rawClient(port);
      await raw.send(request("GET", "/stream"));
      const streamed = await raw.response();
      assert.equal(streamed.framing, "chunked");
      assert.deepEqual([...streamed.body], expected);
      assert.equal(await raw.openAfter(50), true, "kept alive");
      const old = await rawClient(port);
      await old.send(request("GET", "/stream", {}, "HTTP/1.0"));
      const closeDelimited = await old.response();
      assert.equal(closeDelimited.framing, "close");
      assert.equal(closeDelimited.headers.get("connection"), "close");
      assert.deepEqual([...closeDelimited.body], expected);
    }),
  );

  test(
    "fallback gets a 300 KiB Content-Length body intact, by fetch and raw",
    bounded(async () => {
      const { port, base, errors } = await httpServer(echoBody);
      const body = pattern(300 * 1024);
      const response = await fetch(`${base}/upload`, { method: "POST", body });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("x-length"), String(body.length));
      assert.deepEqual(new Uint8Array(await response.arrayBuffer()), body);
      const raw = await rawClient(port);
      await raw.send(
        request("PUT", "/raw", { "Content-Length": String(body.length) }),
      );
      for (let at = 0; at < body.length; at += 50_000) {
        await raw.send(body.subarray(at, at + 50_000));
      }
      const echoed = await raw.response();
      assert.equal(echoed.headers.get("x-method"), "PUT");
      assert.deepEqual(echoed.body, body);
      assert.deepEqual(errors, []);
    }),
  );

  test(
    "fallback gets a 300 KiB chunked body intact, and a request after it on the connection",
    bounded(async () => {
      const { port, errors } = await httpServer(echoBody);
      const body = pattern(300 * 1024);
      const raw = await rawClient(port);
      await raw.send(
        request("POST", "/chunked", { "Transfer-Encoding": "chunked" }),
      );
      const coded = chunked(body);
      for (let at = 0; at < coded.length; at += 33_333) {
        await raw.send(coded.subarray(at, at + 33_333));
      }
      const echoed = await raw.response();
      assert.equal(echoed.status, 200);
      assert.equal(echoed.headers.get("x-length"), String(body.length));
      assert.deepEqual(echoed.body, body);
      await raw.send(request("GET", "/after"));
      const after = await raw.response();
      assert.equal(after.headers.get("x-path"), "/after");
      assert.deepEqual(errors, []);
    }),
  );

  // ---- persistent connections ----

  test(
    "fallback answers two requests on one connection, one after the other and pipelined",
    bounded(async () => {
      let calls = 0;
      const { port } = await httpServer((request) =>
        new Response(`${++calls} ${new URL(request.url).pathname}`)
      );
      const raw = await rawClient(port);
      await raw.send(request("GET", "/one"));
      assert.equal(decoder.decode((await raw.response()).body), "1 /one");
      await raw.send(request("GET", "/two"));
      const second = await raw.response();
      assert.equal(decoder.decode(second.body), "2 /two");
      assert.equal(second.headers.get("connection"), null);
      // Both in one write: the second head is read past the first.
      await raw.send(request("GET", "/three") + request("GET", "/four"));
      assert.equal(decoder.decode((await raw.response()).body), "3 /three");
      assert.equal(decoder.decode((await raw.response()).body), "4 /four");
    }),
  );

  test(
    "fallback closes after a response when the request or the response says Connection: close",
    bounded(async () => {
      const { port } = await httpServer((request) =>
        new URL(request.url).pathname === "/bye"
          ? new Response("bye", { headers: { Connection: "close" } })
          : new Response("ok")
      );
      const asked = await rawClient(port);
      await asked.send(request("GET", "/"));
      assert.equal((await asked.response()).headers.get("connection"), null);
      await asked.send(request("GET", "/", { Connection: "close" }));
      const response = await asked.response();
      assert.equal(response.headers.get("connection"), "close");
      assert.equal(decoder.decode(response.body), "ok");
      assert.equal(await asked.closed(), true);
      const told = await rawClient(port);
      await told.send(request("GET", "/"));
      await told.response();
      await told.send(request("GET", "/bye"));
      assert.equal((await told.response()).headers.get("connection"), "close");
      assert.equal(await told.closed(), true);
    }),
  );

  test(
    "fallback closes an HTTP/1.0 connection, unless it asked for keep-alive",
    bounded(async () => {
      const { port } = await httpServer(() => new Response("ok"));
      const old = await rawClient(port);
      await old.send(request("GET", "/", {}, "HTTP/1.0"));
      const response = await old.response();
      assert.equal(response.headers.get("connection"), "close");
      assert.equal(await old.closed(), true);
      const kept = await rawClient(port);
      await kept.send(
        request("GET", "/", { Connection: "keep-alive" }, "HTTP/1.0"),
      );
      const first = await kept.response();
      assert.equal(first.headers.get("connection"), "keep-alive");
      await kept.send(request("GET", "/", {}, "HTTP/1.0"));
      assert.equal(decoder.decode((await kept.response()).body), "ok");
      assert.equal(await kept.closed(), true);
    }),
  );

  test(
    "fallback closes an idle kept connection quietly at handshakeTimeout, and answers 408 to a head cut short",
    bounded(async () => {
      const { port } = await httpServer(() => new Response("ok"), {
        handshakeTimeout: 300,
      });
      const idle = await rawClient(port);
      await idle.send(request("GET", "/"));
      await idle.response();
      const start = performance.now();
      assert.equal(await idle.closed(), true, "closed with nothing sent");
      const waited = performance.now() - start;
      assert.ok(waited > 200 && waited < 2_000, `closed after ${waited} ms`);
      const slow = await rawClient(port);
      await slow.send(request("GET", "/"));
      await slow.response();
      await slow.send("GET /half HTTP/1.1\r\nHo");
      assert.equal((await slow.response()).status, 408);
      assert.equal(await slow.closed(), true);
    }),
  );

  test(
    "fallback hands a WebSocket upgrade on a kept connection to the server",
    bounded(async () => {
      const { port, server } = await httpServer(() => new Response("plain"));
      const raw = await rawClient(port);
      await raw.send(request("GET", "/"));
      assert.equal(decoder.decode((await raw.response()).body), "plain");
      const frame = encodeFrame({
        fin: true,
        rsv: 0,
        opcode: Opcode.Text,
        payload: encoder.encode("hi"),
      }, new Uint8Array([1, 2, 3, 4]));
      // The upgrade and a frame in one write: the frame is read past the head.
      const upgrade = request("GET", "/ws", {
        Upgrade: "websocket",
        Connection: "Upgrade",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Version": "13",
      });
      await raw.send(new Uint8Array([...toBytes(upgrade), ...frame]));
      const switched = await raw.response({ head: true });
      assert.equal(switched.status, 101);
      assert.equal(
        switched.headers.get("sec-websocket-accept"),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
      );
      // The server echoes the frame: unmasked, opcode text, "hi".
      assert.deepEqual(
        await raw.read(4),
        new Uint8Array([0x81, 0x02, ...encoder.encode("hi")]),
      );
      assert.equal(server.connections.size, 1);
    }),
  );

  // ---- request bodies and framing ----

  test(
    "fallback drains a request body the handler did not read before the next request",
    bounded(async () => {
      const seen: string[] = [];
      const { port } = await httpServer((request) => {
        seen.push(`${request.method} ${new URL(request.url).pathname}`);
        return new Response("ignored your body");
      });
      const raw = await rawClient(port);
      // A body that looks like a request, so a slip would show.
      const sneaky = toBytes(request("GET", "/smuggled"));
      await raw.send(
        request("POST", "/a", { "Content-Length": String(sneaky.length) }),
      );
      await raw.send(sneaky);
      assert.equal((await raw.response()).status, 200);
      await raw.send(
        request("POST", "/b", { "Transfer-Encoding": "chunked" }),
      );
      await raw.send(chunked(sneaky));
      assert.equal((await raw.response()).status, 200);
      await raw.send(request("GET", "/c"));
      assert.equal((await raw.response()).status, 200);
      assert.deepEqual(seen, ["POST /a", "POST /b", "GET /c"]);
    }),
  );

  test(
    "fallback refuses a body over maxBodySize with 413: Content-Length at once, chunked as it grows",
    bounded(async () => {
      let calls = 0;
      const { port, errors } = await httpServer(async (request) => {
        calls++;
        return await echoBody(request);
      }, { maxBodySize: 1000 });
      const big = await rawClient(port);
      await big.send(request("POST", "/", { "Content-Length": "1001" }));
      const refused = await big.response();
      assert.equal(refused.status, 413);
      assert.equal(refused.headers.get("connection"), "close");
      assert.equal(calls, 0);
      const grown = await rawClient(port);
      await grown.send(
        request("POST", "/", { "Transfer-Encoding": "chunked" }),
      );
      await grown.send(chunked(pattern(1500)));
      assert.equal((await grown.response()).status, 413);
      assert.equal(await grown.closed(), true);
      // At the limit, accepted.
      const fits = await rawClient(port);
      await fits.send(request("POST", "/", { "Content-Length": "1000" }));
      await fits.send(pattern(1000));
      assert.deepEqual((await fits.response()).body, pattern(1000));
      assert.deepEqual(errors, [], "a client's body is not a server error");
    }),
  );

  test(
    "fallback refuses framing it cannot trust: 400 for CL with TE, bad CL, bad chunks; 501 for other codings",
    bounded(async () => {
      let calls = 0;
      const { port, errors } = await httpServer(async (request) => {
        calls++;
        return await echoBody(request);
      });
      const cases: [string, string | Uint8Array, number][] = [
        [
          "CL and TE",
          request("POST", "/", {
            "Content-Length": "5",
            "Transfer-Encoding": "chunked",
          }) + "0\r\n\r\n",
          400,
        ],
        [
          "CL not a number",
          request("POST", "/", { "Content-Length": "5x" }),
          400,
        ],
        [
          "CLs differ",
          request("POST", "/", {
            "Content-Length": "5",
            "content-length": "6",
          }),
          400,
        ],
        [
          "TE not ending in chunked",
          request("POST", "/", { "Transfer-Encoding": "gzip" }),
          400,
        ],
        [
          "chunked twice",
          request("POST", "/", { "Transfer-Encoding": "chunked, chunked" }),
          400,
        ],
        [
          "TE in HTTP/1.0",
          request("POST", "/", { "Transfer-Encoding": "chunked" }, "HTTP/1.0"),
          400,
        ],
        [
          "gzip, chunked",
          request("POST", "/", { "Transfer-Encoding": "gzip, chunked" }),
          501,
        ],
      ];
      for (const [what, bytes, status] of cases) {
        const raw = await rawClient(port);
        await raw.send(bytes);
        const response = await raw.response();
        assert.equal(response.status, status, what);
        assert.equal(response.headers.get("connection"), "close", what);
        assert.equal(await raw.closed(), true, what);
      }
      assert.equal(calls, 0);
      // Bad chunk framing is found as the handler reads: still the client's.
      for (
        const body of [
          "zz\r\nhello\r\n0\r\n\r\n",
          "5\r\nhello!!\r\n0\r\n\r\n",
          "5\nhello\r\n0\r\n\r\n",
        ]
      ) {
        const raw = await rawClient(port);
        await raw.send(
          request("POST", "/", { "Transfer-Encoding": "chunked" }) + body,
        );
        assert.equal((await raw.response()).status, 400, JSON.stringify(body));
        assert.equal(await raw.closed(), true);
      }
      assert.deepEqual(errors, [], "the client's mistakes are not onError's");
    }),
  );

  // ---- HEAD, 204, errors ----

  test(
    "fallback sends no body for HEAD or 204, and the next response is read right",
    bounded(async () => {
      const { port } = await httpServer((request) =>
        new URL(request.url).pathname === "/none"
          ? new Response(null, { status: 204 })
          : new Response("a body of 17 byte")
      );
      const raw = await rawClient(port);
      await raw.send(request("HEAD", "/"));
      const head = await raw.response({ head: true });
      assert.equal(head.status, 200);
      await raw.send(request("GET", "/none"));
      const none = await raw.response();
      assert.equal(none.status, 204);
      assert.equal(none.headers.get("content-length"), null);
      await raw.send(request("GET", "/"));
      assert.equal(
        decoder.decode((await raw.response()).body),
        "a body of 17 byte",
      );
      const fetched = await fetch(`http://${HOST}:${port}/`, {
        method: "HEAD",
      });
      assert.equal(fetched.status, 200);
      assert.equal(await fetched.text(), "");
    }),
  );

  test(
    "fallback answers 500 and tells onError when the handler throws, 400 for a Host it cannot use",
    bounded(async () => {
      const failure = new Error("fallback failed on purpose");
      const { port, errors } = await httpServer((request) => {
        if (new URL(request.url).pathname === "/fail") throw failure;
        return new Response("fine");
      });
      const raw = await rawClient(port);
      await raw.send(request("GET", "/"));
      assert.equal((await raw.response()).status, 200);
      await raw.send(request("GET", "/fail"));
      const response = await raw.response();
      assert.equal(response.status, 500);
      assert.equal(decoder.decode(response.body), "Internal Server Error");
      assert.equal(response.headers.get("connection"), "close");
      assert.equal(await raw.closed(), true);
      assert.deepEqual(errors, [failure]);
      const bad = await rawClient(port);
      await bad.send("GET / HTTP/1.1\r\nHost: a b\r\n\r\n");
      assert.equal((await bad.response()).status, 400);
      assert.deepEqual(errors, [failure]);
    }),
  );
});

describe(`serve's refusals over ${runtimeName()} sockets`, () => {
  test(
    "a HandshakeError from onUpgrade is sent with its status, headers and body, never its message",
    bounded(async () => {
      const { url, port, errors } = await (async () => {
        const result = await httpServer(undefined, {
          onUpgrade: () => {
            throw new HandshakeError("secret detail", 401, {
              headers: { "WWW-Authenticate": "Basic" },
              body: "log in",
            });
          },
        });
        return { ...result, url: `ws://${HOST}:${result.port}` };
      })();
      const raw = await rawClient(port);
      await raw.send(request("GET", "/", {
        Upgrade: "websocket",
        Connection: "Upgrade",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Version": "13",
      }));
      const response = await raw.response();
      assert.equal(response.status, 401);
      assert.equal(response.headers.get("www-authenticate"), "Basic");
      assert.equal(decoder.decode(response.body), "log in");
      assert.ok(
        ![...response.headers.values(), decoder.decode(response.body)]
          .some((text) => text.includes("secret")),
      );
      await assert.rejects(connect(url), (error) => {
        assert.ok(error instanceof HandshakeError);
        assert.equal(error.body, "log in");
        return true;
      });
      assert.deepEqual(errors, []);
    }),
  );

  test(
    "a default refusal has a neutral body: the reason phrase, as text/plain",
    bounded(async () => {
      const { port } = await httpServer(undefined);
      const plain = await rawClient(port);
      await plain.send(request("GET", "/"));
      const upgrade = await plain.response();
      assert.equal(upgrade.status, 426);
      assert.equal(decoder.decode(upgrade.body), "Upgrade Required");
      assert.equal(
        upgrade.headers.get("content-type"),
        "text/plain; charset=utf-8",
      );
      const garbage = await rawClient(port);
      await garbage.send("GET / HTTP/1.1\r\nHost : x\r\n\r\n");
      const malformed = await garbage.response();
      assert.equal(malformed.status, 400);
      assert.equal(decoder.decode(malformed.body), "Bad Request");
    }),
  );
});
