/**
 * `serve()` over real sockets on 127.0.0.1, on whichever runtime runs it:
 *
 *     deno test -A tests/server_test.ts
 *     bun test ./tests/server_test.ts
 *
 * The clients are `connect()` (the twin suite is `client_test.ts`), `fetch`
 * for plain HTTP, and raw TCP sockets that send requests by hand to play
 * clients that are malformed, slow, silent or deaf to a close. Every test
 * closes what it opened (see `defer`) and is bounded in time.
 *
 * `deno task test` runs it with Deno's sanitizers on (tests/_node_test_on_deno.ts);
 * for a plain `deno test` or `bun test`, and in any case,
 * the suite does their work itself: every socket, server and timer is closed
 * or cleared by the end of its test (it also passes as `Deno.test`s with
 * `sanitizeOps` and `sanitizeResources` on).
 */
import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "../src/client.ts";
import type { CloseInfo, WebSocketConnection } from "../src/connection.ts";
import { HandshakeError } from "../src/errors.ts";
import { encodeFrame, Opcode } from "../src/frame.ts";
import { computeAccept } from "../src/handshake.ts";
import type { Message } from "../src/protocol.ts";
import { currentRuntime, runtimeName } from "../src/runtime.ts";
import {
  type ConnectionHandler,
  serve,
  type ServeOptions,
  type ServerRequest,
} from "../src/server.ts";
import type { Transport } from "../src/transport.ts";
import { bounded, sleep, timed, within } from "./_wait.ts";
import { assertClose } from "./_close.ts";

const rt = currentRuntime();
const HOST = "127.0.0.1";
const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const encoder = new TextEncoder();
// Not TextDecoder("latin1"): the Encoding Standard makes that windows-1252,
// which maps 0x80-0x9f elsewhere. One byte, one char, both ways.
const latin1 = {
  decode: (bytes: Uint8Array) => String.fromCharCode(...bytes),
};

// ---- bounded waiting, and closing all a test opened ----

const cleanups: (() => unknown)[] = [];

/** Registers `thing` to be cleaned up after the test, even a failed one. */
function defer<T>(thing: T, cleanup: (thing: T) => unknown): T {
  cleanups.push(() => cleanup(thing));
  return thing;
}

/** Asserts `ms` is within [low, high). */
function about(ms: number, low: number, high: number, what: string): void {
  assert.ok(ms >= low && ms < high, `${what} after ${Math.round(ms)} ms`);
}

// ---- servers and WebSocket clients ----

/** Echoes every message until the connection ends. */
const echo: ConnectionHandler = async (connection) => {
  try {
    for await (const message of connection.readable) {
      await connection.send(message);
    }
  } catch {
    // Ended uncleanly: nothing left to echo to.
  }
};

/** `serve()` on a free port of 127.0.0.1, recording what it sees. */
async function wsServer(
  options: Partial<ServeOptions> = {},
  handler: ConnectionHandler = echo,
) {
  const requests: ServerRequest[] = [];
  const connections: WebSocketConnection[] = [];
  const errors: unknown[] = [];
  const server = defer(
    await serve({
      hostname: HOST,
      port: 0,
      onError: (error) => errors.push(error),
      ...options,
    }, (connection, request) => {
      requests.push(request);
      connections.push(connection);
      return handler(connection, request);
    }),
    (server) => server.close(),
  );
  const { port } = server.addr;
  return {
    server,
    port,
    url: `ws://${HOST}:${port}`,
    requests,
    connections,
    errors,
  };
}

/** Connects with `connect()` and closes the connection after the test. */
async function open(url: string, options: Parameters<typeof connect>[1] = {}) {
  return defer(
    await within(5_000, connect(url, options)),
    (connection) => connection.close(),
  );
}

/** The next message, within a bound. */
async function nextMessage(connection: WebSocketConnection): Promise<Message> {
  const reader = connection.readable.getReader();
  try {
    const { value, done } = await within(5_000, reader.read());
    assert.equal(done, false, "the connection ended instead");
    return value!;
  } finally {
    reader.releaseLock();
  }
}

/** Sends `text` and expects it echoed back. */
async function roundTrip(connection: WebSocketConnection, text: string) {
  await connection.send(text);
  assert.equal(await nextMessage(connection), text);
}

// ---- raw clients ----

/** A raw TCP connection to `port`, closed after the test. */
async function rawClient(port: number) {
  const transport: Transport = defer(
    await rt.connect({ hostname: HOST, port }),
    (transport) => transport.close(),
  );
  const reader = transport.readable.getReader();
  const writer = transport.writable.getWriter();
  const send = (bytes: string | Uint8Array) =>
    writer.write(typeof bytes === "string" ? toBytes(bytes) : bytes);
  return { transport, reader, writer, send };
}

/** A string's chars as bytes (latin1), so tests can send any byte. */
function toBytes(text: string): Uint8Array {
  return Uint8Array.from(text, (char) => char.charCodeAt(0));
}

/** Reads everything until the server closes; a reset ends it too. */
async function readAll(
  reader: ReadableStreamDefaultReader<Uint8Array>,
): Promise<string> {
  let text = "";
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      text += latin1.decode(value);
    }
  } catch {
    // A reset after the response: what came is what counts.
  }
  return text;
}

interface RawResponse {
  status: number;
  headers: Headers;
  body: string;
}

/** Parses a whole HTTP/1.1 response as received. */
function parseResponse(text: string): RawResponse {
  const end = text.indexOf("\r\n\r\n");
  assert.ok(end >= 0, `no complete response head in ${JSON.stringify(text)}`);
  const [statusLine = "", ...lines] = text.slice(0, end).split("\r\n");
  const match = /^HTTP\/1\.1 (\d{3}) /.exec(statusLine);
  assert.ok(match, `bad status line ${JSON.stringify(statusLine)}`);
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers.append(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return { status: Number(match[1]), headers, body: text.slice(end + 4) };
}

/** Sends `request` on a new raw socket; reads the response to the server's close. */
async function exchange(
  port: number,
  request: string | Uint8Array,
): Promise<RawResponse> {
  const { reader, send } = await rawClient(port);
  await send(request);
  return parseResponse(await within(3_000, readAll(reader)));
}

/** A handshake request; `headers` adds, replaces, or (with null) removes fields. */
function upgradeRequest(
  options: {
    method?: string;
    target?: string;
    headers?: Record<string, string | null>;
  } = {},
): string {
  const fields: Record<string, string | null> = {
    Host: "localhost",
    Upgrade: "websocket",
    Connection: "Upgrade",
    "Sec-WebSocket-Key": KEY,
    "Sec-WebSocket-Version": "13",
    ...options.headers,
  };
  let head = `${options.method ?? "GET"} ${options.target ?? "/"} HTTP/1.1\r\n`;
  for (const [name, value] of Object.entries(fields)) {
    if (value !== null) head += `${name}: ${value}\r\n`;
  }
  return head + "\r\n";
}

/** A frame as a raw client decoded it. */
interface RawFrame {
  opcode: number;
  payload: Uint8Array;
}

/**
 * A raw WebSocket client: a hand-written handshake, then unmasked frames
 * decoded by hand (payloads under 64 KiB) and masked frames sent.
 */
async function rawWebSocket(
  port: number,
  headers: Record<string, string> = {},
) {
  const { transport, reader, send } = await rawClient(port);
  await send(upgradeRequest({ headers }));
  let buffer = new Uint8Array(0);
  const more = async () => {
    const { value, done } = await reader.read();
    if (done) throw new Error("the server closed the connection");
    const joined = new Uint8Array(buffer.length + value.length);
    joined.set(buffer);
    joined.set(value, buffer.length);
    buffer = joined;
  };
  let end: number;
  while ((end = latin1.decode(buffer).indexOf("\r\n\r\n")) < 0) await more();
  const response = parseResponse(latin1.decode(buffer.subarray(0, end + 4)));
  buffer = buffer.slice(end + 4);
  const nextFrame = async (): Promise<RawFrame> => {
    while (true) {
      if (buffer.length >= 2) {
        const length = buffer[1]! & 0x7f;
        const [size, at] = length === 126
          ? [(buffer[2]! << 8) | buffer[3]!, 4]
          : [length, 2];
        if (length !== 127 && buffer.length >= at + size) {
          const frame = {
            opcode: buffer[0]! & 0x0f,
            payload: buffer.slice(at, at + size),
          };
          buffer = buffer.slice(at + size);
          return frame;
        }
      }
      await more();
    }
  };
  const mask = new Uint8Array([0x12, 0x34, 0x56, 0x78]);
  const sendFrame = (opcode: number, payload: Uint8Array) =>
    send(encodeFrame({ fin: true, rsv: 0, opcode, payload }, mask));
  return { transport, reader, response, nextFrame, sendFrame };
}

/** Resolves once the socket's readable ends or fails: the server is gone. */
async function ended(reader: ReadableStreamDefaultReader<Uint8Array>) {
  try {
    while (!(await reader.read()).done) { /* discard */ }
  } catch {
    // A reset ends it too.
  }
}

/** Whether `hostname` can be bound here (IPv6 may be off in a container). */
async function canListen(hostname: string): Promise<boolean> {
  try {
    (await rt.listen({ hostname, port: 0 }, (t) => t.close())).close();
    return true;
  } catch {
    return false;
  }
}
const ipv6 = await canListen("::1");

const decodeClose = (payload: Uint8Array) => ({
  code: (payload[0]! << 8) | payload[1]!,
  reason: new TextDecoder().decode(payload.subarray(2)),
});

describe(`serve() over ${runtimeName()} sockets`, () => {
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await within(5_000, Promise.resolve(cleanup()));
      } catch {
        // Best effort: the test has already failed or passed.
      }
    }
    await sleep(10); // let close callbacks settle
  });

  // ---- accepting ----

  test(
    "serve binds a free port for port 0 and gives the handler the connection and request",
    bounded(async () => {
      const { server, port, url, requests, connections } = await wsServer();
      assert.notEqual(port, 0);
      assert.deepEqual(server.addr, { hostname: HOST, port });
      const client = await open(`${url}/room?id=7`);
      await roundTrip(client, "hello");
      const [request] = requests;
      const [connection] = connections;
      assert.ok(request && connection);
      assert.equal(request.method, "GET");
      assert.equal(request.path, "/room");
      assert.equal(request.query, "id=7");
      assert.equal(request.key.length, 24);
      assert.deepEqual(request.remoteAddr, client.info.localAddr);
      assert.deepEqual(connection.info.remoteAddr, client.info.localAddr);
      assert.deepEqual(connection.info.localAddr, { hostname: HOST, port });
      assert.equal(connection.info.role, "server");
      assert.equal(connection.info.state, "open");
      assert.equal(connection.info.path, "/room?id=7");
      assert.equal(server.connections.size, 1);
      assert.ok(server.connections.has(connection));
    }),
  );

  test(
    "serve answers a plain GET with 426 and Upgrade: websocket",
    bounded(async () => {
      const { port, requests } = await wsServer();
      const response = await fetch(`http://${HOST}:${port}/`);
      const body = await response.text();
      assert.equal(response.status, 426);
      assert.equal(response.headers.get("upgrade"), "websocket");
      assert.match(body, /Upgrade/);
      assert.equal(requests.length, 0);
    }),
  );

  test(
    "serve passes plain HTTP requests to fallback and serves its Response",
    bounded(async () => {
      const seen: Request[] = [];
      const { port, url, errors } = await wsServer({
        fallback: (request) => {
          seen.push(request);
          return new Response("hello from fallback", {
            status: 202,
            statusText: "Accepted",
            headers: { "X-Fallback": "yes", "Content-Type": "text/plain" },
          });
        },
      });
      const response = await fetch(`http://${HOST}:${port}/hello?x=1`, {
        headers: { "X-Test": "1" },
      });
      assert.equal(response.status, 202);
      assert.equal(response.headers.get("x-fallback"), "yes");
      assert.equal(response.headers.get("content-type"), "text/plain");
      assert.equal(await response.text(), "hello from fallback");
      assert.equal(seen[0]?.url, `http://${HOST}:${port}/hello?x=1`);
      assert.equal(seen[0]?.method, "GET");
      assert.equal(seen[0]?.headers.get("x-test"), "1");
      // WebSocket requests still upgrade.
      await roundTrip(await open(url), "not for fallback");
      assert.deepEqual(errors, []);
    }),
  );

  test(
    "serve answers 400 when fallback cannot be given a Request, 500 when it throws",
    bounded(async () => {
      const failure = new Error("fallback failed on purpose");
      let calls = 0;
      const { port, errors } = await wsServer({
        fallback: () => {
          if (++calls === 1) throw failure;
          return new Response("fine");
        },
      });
      // A Host that is no URL authority: the client's fault.
      const badHost = await exchange(
        port,
        "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
      );
      assert.equal(badHost.status, 400);
      assert.equal(calls, 0);
      assert.deepEqual(errors, []);
      const thrown = await exchange(
        port,
        "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
      );
      assert.equal(thrown.status, 500);
      assert.deepEqual(errors, [failure]);
    }),
  );

  test(
    "serve checks its arguments at the call, before listening",
    () => {
      const handler = () => {};
      const base = { hostname: HOST, port: 0 };
      assert.throws(
        () => serve(base, undefined as unknown as ConnectionHandler),
        TypeError,
      );
      assert.throws(() => serve({ ...base, cert: "pem" }, handler), TypeError);
      assert.throws(() => serve({ ...base, key: "pem" }, handler), TypeError);
      for (const handshakeTimeout of [0, -5, NaN, Infinity]) {
        assert.throws(
          () => serve({ ...base, handshakeTimeout }, handler),
          RangeError,
        );
      }
      for (const port of [-1, 65536, 1.5]) {
        assert.throws(() => serve({ ...base, port }, handler), RangeError);
      }
      for (
        const options of [
          { maxMessageSize: -1 },
          { keepalive: { interval: 0 } },
          { maxFragments: 0 },
        ]
      ) {
        assert.throws(
          () => serve({ ...base, ...options }, handler),
          RangeError,
        );
      }
    },
  );

  test(
    "serve gives fallback a URL with the bracketed IPv6 address when Host is missing",
    { skip: ipv6 ? false : "::1 cannot be bound here (no IPv6 loopback)" },
    bounded(async () => {
      const seen: string[] = [];
      const server = defer(
        await serve({
          hostname: "::1",
          port: 0,
          fallback: (request) => {
            seen.push(request.url);
            return new Response("ok");
          },
        }, () => {}),
        (server) => server.close(),
      );
      const { port } = server.addr;
      const transport = defer(
        await rt.connect({ hostname: "::1", port }),
        (transport) => transport.close(),
      );
      const writer = transport.writable.getWriter();
      await writer.write(toBytes("GET /old HTTP/1.0\r\n\r\n")); // no Host
      const response = parseResponse(
        await within(3_000, readAll(transport.readable.getReader())),
      );
      assert.equal(response.status, 200);
      assert.equal(response.body, "ok");
      assert.deepEqual(seen, [`http://[::1]:${port}/old`]);
    }),
  );

  // ---- refusing bad requests ----

  test(
    "serve refuses Sec-WebSocket-Version 8 with 426 and Sec-WebSocket-Version: 13",
    bounded(async () => {
      const { port, requests } = await wsServer();
      const response = await exchange(
        port,
        upgradeRequest({ headers: { "Sec-WebSocket-Version": "8" } }),
      );
      assert.equal(response.status, 426);
      assert.equal(response.headers.get("sec-websocket-version"), "13");
      assert.equal(response.headers.get("connection"), "Upgrade, close");
      assert.equal(requests.length, 0);
    }),
  );

  test(
    "serve refuses an upgrade without Sec-WebSocket-Key with 400",
    bounded(async () => {
      const { port } = await wsServer();
      const response = await exchange(
        port,
        upgradeRequest({ headers: { "Sec-WebSocket-Key": null } }),
      );
      assert.equal(response.status, 400);
      assert.equal(response.body, "Bad Request"); // not what was wrong
    }),
  );

  test(
    "serve refuses a POST upgrade with 405 and Allow: GET",
    bounded(async () => {
      const { port } = await wsServer();
      const response = await exchange(
        port,
        upgradeRequest({ method: "POST" }),
      );
      assert.equal(response.status, 405);
      assert.equal(response.headers.get("allow"), "GET");
    }),
  );

  test(
    "serve answers garbage with 400, closes that connection, and keeps serving",
    bounded(async () => {
      const { url, port, errors } = await wsServer();
      for (
        const garbage of [
          "this is not HTTP\r\n\r\n",
          "\x00\xff\x13\x37 binary\r\n\r\n",
          "GET / HTTP/1.1\nHost: bare-lf\n\n",
        ]
      ) {
        const response = await exchange(port, toBytes(garbage));
        assert.equal(response.status, 400, JSON.stringify(garbage));
        assert.equal(response.headers.get("connection"), "close");
      }
      await roundTrip(await open(url), "still serving");
      assert.deepEqual(errors, []);
    }),
  );

  test(
    "serve refuses a head over headLimits with 431",
    bounded(async () => {
      const { port, url } = await wsServer({
        headLimits: { maxHeadSize: 1024, maxHeaderCount: 10 },
      });
      const big = await exchange(
        port,
        upgradeRequest({ headers: { "X-Padding": "p".repeat(2_000) } }),
      );
      assert.equal(big.status, 431);
      const fields: Record<string, string> = {};
      for (let i = 0; i < 11; i++) fields[`X-Field-${i}`] = "x";
      const many = await exchange(port, upgradeRequest({ headers: fields }));
      assert.equal(many.status, 431);
      // Within the limits, the same server accepts.
      await roundTrip(await open(url), "small enough");
    }),
  );

  test(
    "serve answers a slowloris client with 408 and closes it at handshakeTimeout",
    bounded(async () => {
      const { port } = await wsServer({ handshakeTimeout: 300 });
      const { reader, send } = await rawClient(port);
      const request = toBytes(upgradeRequest());
      let stop = false;
      const dripping = (async () => {
        // One byte every 50 ms: the 150-odd bytes would take seconds.
        for (let at = 0; at < request.length && !stop; at++) {
          await send(request.subarray(at, at + 1));
          await sleep(50);
        }
      })().catch(() => {}); // the server hung up on us
      let text = "";
      const elapsed = await timed(async () => {
        text = await within(3_000, readAll(reader));
      });
      stop = true;
      await dripping;
      about(elapsed, 250, 1_000, "closed");
      const response = parseResponse(text);
      assert.equal(response.status, 408);
      assert.equal(response.body, "Request Timeout");
    }),
  );

  test(
    "serve closes a client that sends nothing at handshakeTimeout",
    bounded(async () => {
      const { port } = await wsServer({ handshakeTimeout: 300 });
      const { reader } = await rawClient(port);
      let text = "";
      const elapsed = await timed(async () => {
        text = await within(3_000, readAll(reader));
      });
      about(elapsed, 250, 1_000, "closed");
      assert.equal(parseResponse(text).status, 408);
    }),
  );

  test(
    "serve times each handshake from its own start, and a head in time is not cut off",
    bounded(async () => {
      const { port, url } = await wsServer({ handshakeTimeout: 300 });
      const start = performance.now();
      const first = await rawClient(port);
      await sleep(150);
      const second = await rawClient(port);
      // A third client completes its handshake while the other two wait,
      // and keeps its connection past their deadlines.
      const client = await open(url);
      const ends = await Promise.all(
        [first, second].map(async ({ reader }) => {
          const text = await within(3_000, readAll(reader));
          return { at: performance.now() - start, text };
        }),
      );
      assert.deepEqual(ends.map(({ text }) => parseResponse(text).status), [
        408,
        408,
      ]);
      about(ends[0]!.at, 250, 1_000, "first closed");
      assert.ok(
        ends[1]!.at - ends[0]!.at >= 100,
        `second closed ${ends[1]!.at - ends[0]!.at} ms after the first`,
      );
      await roundTrip(client, "still open");
    }),
  );

  test(
    "serve gives the handler and onUpgrade every request header",
    bounded(async () => {
      const seen: Headers[] = [];
      const { url, port, requests } = await wsServer({
        onUpgrade: (request) => {
          seen.push(request.headers);
        },
      });
      const client = await open(url, {
        headers: { "X-User": "ann", "X-Tags": "a" },
      });
      await roundTrip(client, "headers");
      const [request] = requests;
      assert.ok(request?.headers instanceof Headers);
      assert.equal(request.headers, seen[0], "the same Headers in both");
      assert.equal(request.headers.get("x-user"), "ann");
      assert.equal(request.headers.get("upgrade"), "websocket");
      assert.equal(request.headers.get("host"), `${HOST}:${port}`);
      assert.equal({ ...request }.headers.get("x-tags"), "a");
    }),
  );

  // ---- onUpgrade ----

  test(
    "request.remoteAddr: the client's address, read when asked for, then a plain property",
    bounded(async () => {
      const seen: unknown[] = [];
      const { url, requests, connections } = await wsServer(
        {},
        (connection, request) => {
          // Asked for while open: the client's address, the same each time.
          const first = request.remoteAddr;
          seen.push(first, request.remoteAddr, { ...request }.remoteAddr);
          seen.push(connection.info.remoteAddr);
          return echo(connection, request);
        },
      );
      const client = await connect(url);
      await client.send("hi");
      for await (const _ of client) break;
      const local = client.info.localAddr;
      assert.ok(local !== null && local.port > 0);
      assert.equal(seen[0], seen[1]);
      assert.deepEqual(seen, [local, local, local, local]);
      // Kept once read, after the close too; and assignable.
      const request = requests[0]!;
      await connections[0]!.closed;
      assert.deepEqual(request.remoteAddr, local);
      assert.ok(Object.keys(request).includes("remoteAddr"));
      request.remoteAddr = null;
      assert.equal(request.remoteAddr, null);
    }),
  );

  test(
    "serve refuses with 403 when onUpgrade returns false",
    bounded(async () => {
      const seen: ServerRequest[] = [];
      const { url, requests } = await wsServer({
        onUpgrade: (request) => {
          seen.push(request);
          return false;
        },
      });
      await assert.rejects(
        connect(`${url}/private?token=no`),
        (error) => error instanceof HandshakeError && error.status === 403,
      );
      assert.equal(seen[0]?.path, "/private");
      assert.equal(seen[0]?.query, "token=no");
      assert.equal(seen[0]?.remoteAddr?.hostname, HOST);
      assert.equal(requests.length, 0, "the handler was called");
    }),
  );

  test(
    "a refused request keeps its remoteAddr after its socket has closed",
    bounded(async () => {
      const seen: ServerRequest[] = [];
      const { url, server } = await wsServer({
        onUpgrade: (request) => {
          seen.push(request); // kept, not read
          return false;
        },
      });
      await assert.rejects(
        connect(url),
        (error) => error instanceof HandshakeError && error.status === 403,
      );
      // The refusal has ended, its socket closed, once the server has closed:
      // only then is the address asked for (on Bun it is read lazily).
      await server.close();
      assert.equal(seen[0]?.remoteAddr?.hostname, HOST);
      assert.ok((seen[0]?.remoteAddr?.port ?? 0) > 0);
    }),
  );

  test(
    "serve refuses with the status and headers of a HandshakeError onUpgrade throws",
    bounded(async () => {
      const { url, port, errors } = await wsServer({
        onUpgrade: () => {
          throw new HandshakeError("Who are you?", 401, {
            headers: { "WWW-Authenticate": 'Bearer realm="chat"' },
          });
        },
      });
      await assert.rejects(connect(url), (error) => {
        assert.ok(error instanceof HandshakeError);
        assert.equal(error.status, 401);
        assert.equal(
          error.headers.get("www-authenticate"),
          'Bearer realm="chat"',
        );
        assert.equal(error.body, "Unauthorized"); // not the message
        return true;
      });
      const raw = await exchange(port, upgradeRequest());
      assert.equal(raw.status, 401);
      assert.equal(raw.headers.get("www-authenticate"), 'Bearer realm="chat"');
      assert.deepEqual(errors, [], "a refusal is not an error");
    }),
  );

  test(
    "serve sends the protocol and headers onUpgrade returns in the 101",
    bounded(async () => {
      const { url, port, connections } = await wsServer({
        protocols: ["chat.v2", "chat.v1"],
        onUpgrade: () => ({
          protocol: "chat.v1",
          headers: { "X-Room": "lobby", "Set-Cookie": "seat=12" },
        }),
      });
      const raw = await rawWebSocket(port, {
        "Sec-WebSocket-Protocol": "chat.v2, chat.v1",
      });
      assert.equal(raw.response.status, 101);
      assert.equal(raw.response.headers.get("x-room"), "lobby");
      assert.equal(raw.response.headers.get("set-cookie"), "seat=12");
      assert.equal(
        raw.response.headers.get("sec-websocket-protocol"),
        "chat.v1",
      );
      assert.equal(
        raw.response.headers.get("sec-websocket-accept"),
        await computeAccept(KEY),
      );
      const client = await open(url, { protocols: ["chat.v2", "chat.v1"] });
      assert.equal(client.protocol, "chat.v1");
      assert.equal(connections[1]?.protocol, "chat.v1");
      await roundTrip(client, "in the lobby");
    }),
  );

  test(
    "serve waits for an async onUpgrade",
    bounded(async () => {
      let settled = false;
      const { url, requests } = await wsServer({
        protocols: ["a", "b"],
        onUpgrade: async (request) => {
          await sleep(50);
          settled = true;
          return request.headers.get("x-user") === "ann" ? {} : false;
        },
      });
      const client = await open(url, {
        protocols: ["b", "a"],
        headers: { "X-User": "ann" },
      });
      assert.ok(settled);
      assert.equal(client.protocol, "b", "the protocols option still applies");
      await roundTrip(client, "async");
      await assert.rejects(
        connect(url, { headers: { "X-User": "bob" } }),
        (error) => error instanceof HandshakeError && error.status === 403,
      );
      assert.equal(requests.length, 1);
    }),
  );

  test(
    "serve answers 500 and calls onError when onUpgrade throws a plain Error",
    bounded(async () => {
      const failure = new Error("onUpgrade failed on purpose");
      const { url, errors, requests } = await wsServer({
        onUpgrade: () => {
          throw failure;
        },
      });
      await assert.rejects(
        connect(url),
        (error) => error instanceof HandshakeError && error.status === 500,
      );
      assert.deepEqual(errors, [failure]);
      assert.equal(requests.length, 0);
    }),
  );

  test(
    "serve answers 500 and calls onError when onUpgrade picks a protocol not offered",
    bounded(async () => {
      const { url, errors } = await wsServer({
        onUpgrade: () => ({ protocol: "never-offered" }),
      });
      await assert.rejects(
        connect(url, { protocols: ["chat"] }),
        (error) => error instanceof HandshakeError && error.status === 500,
      );
      assert.equal(errors.length, 1);
      assert.ok(errors[0] instanceof TypeError);
    }),
  );

  // ---- the handler ----

  test(
    "serve closes the connection with 1011 and calls onError when the handler throws",
    bounded(async () => {
      const failure = new Error("handler failed on purpose");
      const { url, errors } = await wsServer({}, async (connection) => {
        const message = await nextMessage(connection);
        if (message === "fail") throw failure;
      });
      const client = await open(url);
      await client.send("fail");
      const closed = await within(2_000, client.closed);
      assert.equal(closed.closeCode, 1011);
      assert.equal(closed.wasClean, true);
      assert.deepEqual(errors, [failure]);
    }),
  );

  test(
    "serve closes with 1011 when the handler throws synchronously",
    bounded(async () => {
      const failure = new Error("thrown at once on purpose");
      const { url, errors } = await wsServer({}, () => {
        throw failure;
      });
      const client = await open(url);
      assert.equal((await within(2_000, client.closed)).closeCode, 1011);
      assert.deepEqual(errors, [failure]);
    }),
  );

  // ---- keepalive ----

  test(
    "serve with keepalive { interval: 50 } pings its clients",
    bounded(async () => {
      const { port } = await wsServer({ keepalive: { interval: 50 } });
      const raw = await rawWebSocket(port);
      assert.equal(raw.response.status, 101);
      const elapsed = await timed(async () => {
        const frame = await within(1_000, raw.nextFrame());
        assert.equal(frame.opcode, Opcode.Ping);
        await raw.sendFrame(Opcode.Pong, frame.payload);
      });
      about(elapsed, 0, 1_000, "pinged");
      // Answered: the next ping comes too, the connection is alive.
      assert.equal((await within(1_000, raw.nextFrame())).opcode, Opcode.Ping);
    }),
  );

  // ---- closing the server ----

  test(
    "server.close() closes every connection with 1001 after their close handshakes",
    bounded(async () => {
      const { server, url, port, connections } = await wsServer();
      const clients = [await open(url), await open(url)];
      for (const client of clients) await roundTrip(client, "before");
      assert.equal(server.connections.size, 2);
      const serverSide: (CloseInfo | null)[] = [null, null];
      connections.forEach((connection, i) => {
        connection.closed.then((info) => (serverSide[i] = info));
      });
      let finished = false;
      server.finished.then(() => (finished = true));
      assert.equal(finished, false);
      const closing = server.close();
      assert.equal(server.close(), closing, "close() twice is one close");
      await within(2_000, closing);
      // Resolved after the close handshakes: both ends clean, code 1001.
      for (const info of serverSide) {
        assert.equal(info?.closeCode, 1001);
        assert.equal(info?.wasClean, true);
      }
      for (const client of clients) {
        const info = await within(2_000, client.closed);
        assert.equal(info.closeCode, 1001);
        assert.equal(info.wasClean, true);
      }
      await within(1_000, server.finished);
      assert.equal(finished, true);
      assert.equal(server.connections.size, 0);
      // The listener is gone: new connections are refused.
      await assert.rejects(within(2_000, connect(`ws://${HOST}:${port}`)));
    }),
  );

  test(
    "server.close() takes a code and reason",
    bounded(async () => {
      const { server, url } = await wsServer();
      const client = await open(url);
      await server.close({ closeCode: 4000, reason: "maintenance" });
      assertClose(await within(2_000, client.closed), {
        closeCode: 4000,
        reason: "maintenance",
        wasClean: true,
      });
    }),
  );

  test(
    "server.close() resolves at closeTimeout when a client never answers the close",
    bounded(async () => {
      const { server, port } = await wsServer({
        closeTimeout: 300,
        keepalive: false,
      });
      const raw = await rawWebSocket(port);
      assert.equal(raw.response.status, 101);
      await sleep(20); // the handler is running
      assert.equal(server.connections.size, 1);
      const closing = server.close();
      // The close frame comes at once; the raw client never answers it.
      const frame = await within(1_000, raw.nextFrame());
      assert.equal(frame.opcode, Opcode.Close);
      assert.equal(decodeClose(frame.payload).code, 1001);
      const elapsed = await timed(() => within(3_000, closing));
      about(elapsed, 200, 1_500, "close() resolved");
      assert.equal(server.connections.size, 0);
      await within(1_000, ended(raw.reader)); // and the socket is dropped
    }),
  );

  test(
    "server.close() drops handshakes under way without waiting for them",
    bounded(async () => {
      const { server, port } = await wsServer({ handshakeTimeout: 5_000 });
      const { reader, send } = await rawClient(port);
      await send("GET / HTTP/1.1\r\n"); // and no more
      await sleep(20);
      const elapsed = await timed(() => within(2_000, server.close()));
      about(elapsed, 0, 500, "close() resolved");
      await within(1_000, ended(reader));
    }),
  );

  test(
    "server.find() returns the connection whose peer has that port",
    bounded(async () => {
      const { server, url, connections } = await wsServer();
      const first = await open(url);
      const second = await open(url);
      await roundTrip(first, "1");
      await roundTrip(second, "2");
      const port = (client: WebSocketConnection) => client.info.localAddr!.port;
      const mine = server.find({ port: port(second) });
      assert.equal(mine.length, 1);
      assert.equal(mine[0], connections[1]);
      assert.deepEqual(
        server.find({ hostname: HOST, port: port(first) }),
        [connections[0]],
      );
      assert.equal(server.find({ hostname: HOST }).length, 2);
      assert.deepEqual(server.find({ hostname: "10.9.8.7" }), []);
      // A closed connection is no longer found.
      await first.close();
      await within(1_000, connections[0]!.closed);
      assert.deepEqual(server.find({ port: port(first) }), []);
    }),
  );

  test(
    "serve delivers frames sent in the same write as the handshake",
    bounded(async () => {
      const { port } = await wsServer();
      const { reader, send } = await rawClient(port);
      const early = encodeFrame({
        fin: true,
        rsv: 0,
        opcode: Opcode.Text,
        payload: encoder.encode("early"),
      }, new Uint8Array([1, 2, 3, 4]));
      await send(new Uint8Array([...toBytes(upgradeRequest()), ...early]));
      // The 101, then the echo of "early".
      let text = "";
      while (!text.endsWith("\x81\x05early")) {
        const { value, done } = await within(2_000, reader.read());
        assert.ok(!done, `closed after ${JSON.stringify(text)}`);
        text += latin1.decode(value);
      }
      assert.match(text, /^HTTP\/1\.1 101 /);
      assert.equal(text.indexOf("\r\n\r\n") + 4, text.length - 7);
    }),
  );
});
