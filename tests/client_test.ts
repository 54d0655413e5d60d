/**
 * `connect()` over real sockets on 127.0.0.1, on whichever runtime runs it:
 *
 *     deno test -A tests/client_test.ts
 *     bun test ./tests/client_test.ts
 *
 * The servers are `serve()` (the twin suite is `server_test.ts`) or raw TCP
 * listeners that answer by hand, byte for byte, to play servers that refuse,
 * lie, stall or hang up. Every test closes what it opened (see `defer`) and
 * is bounded in time.
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
import { encodeClosePayload } from "../src/close.ts";
import type { WebSocketConnection } from "../src/connection.ts";
import { HandshakeError, TimeoutError } from "../src/errors.ts";
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
import type {
  ConnectTransportOptions,
  RuntimeTransports,
  Transport,
} from "../src/transport.ts";
import { cert, key } from "./_certs.ts";
import { bounded, sleep, timed, within } from "./_wait.ts";
import { assertClose } from "./_close.ts";

const rt = currentRuntime();
const HOST = "127.0.0.1";
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

// ---- servers ----

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

/** `serve()` on a free port of 127.0.0.1, recording requests and errors. */
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

/** A plain TCP listener that plays the server by hand with `answer`. */
async function rawServer(
  answer: (transport: Transport) => unknown = () => {},
) {
  const accepted: Transport[] = [];
  const listener = defer(
    await rt.listen({ hostname: HOST, port: 0 }, (transport) => {
      accepted.push(defer(transport, (transport) => transport.close()));
      (async () => await answer(transport))().catch(() => {});
    }),
    (listener) => listener.close(),
  );
  const { port } = listener.addr;
  return { port, url: `ws://${HOST}:${port}/`, accepted };
}

/** Reads a request head off a raw socket; returns it and its key. */
async function readRequest(
  reader: ReadableStreamDefaultReader<Uint8Array>,
): Promise<{ head: string; key: string }> {
  let head = "";
  while (!head.includes("\r\n\r\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the client hung up mid-request");
    head += latin1.decode(value);
  }
  const key = /^sec-websocket-key:[ \t]*(\S+)/im.exec(head)?.[1] ?? "";
  return { head, key };
}

/** Resolves once the socket's readable ends or fails: the peer is gone. */
async function ended(reader: ReadableStreamDefaultReader<Uint8Array>) {
  try {
    while (!(await reader.read()).done) { /* discard */ }
  } catch {
    // A reset ends it too.
  }
}

/**
 * Reads the request off a raw socket and answers with a correct 101 and
 * `frames`, in one write; returns the socket's reader.
 */
async function upgradeWith(transport: Transport, ...frames: Uint8Array[]) {
  const reader = transport.readable.getReader();
  const { key } = await readRequest(reader);
  await transport.writable.getWriter().write(
    concat(encoder.encode(await switching(key)), ...frames),
  );
  return reader;
}

/** A correct 101 for `key`. */
async function switching(key: string, extra = ""): Promise<string> {
  return "HTTP/1.1 101 Switching Protocols\r\n" +
    "Upgrade: websocket\r\nConnection: Upgrade\r\n" +
    `Sec-WebSocket-Accept: ${await computeAccept(key)}\r\n${extra}\r\n`;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return bytes;
}

/** An unmasked (server-to-client) frame. */
function frame(opcode: number, payload: Uint8Array): Uint8Array {
  return encodeFrame({ fin: true, rsv: 0, opcode, payload });
}

/** Connects with `connect()` and closes the connection after the test. */
async function open(
  url: string | URL,
  options: Parameters<typeof connect>[1] = {},
) {
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

/** A `RuntimeTransports` that records what `connect()` asks of it and fails. */
function fakeTransport() {
  const calls: ConnectTransportOptions[] = [];
  const refusal = new Error("fake transport: no network in this test");
  const transport: RuntimeTransports = {
    name: "fake",
    connect(options) {
      calls.push(options);
      return Promise.reject(refusal);
    },
    listen() {
      return Promise.reject(new Error("fake transport: not for listening"));
    },
  };
  return { transport, calls, refusal };
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

const isHandshakeError = (status: number) => (error: unknown) => {
  assert.ok(error instanceof HandshakeError, `not a HandshakeError: ${error}`);
  assert.equal(error.status, status, error.message);
  return true;
};

describe(`connect() over ${runtimeName()} sockets`, () => {
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

  // ---- URLs ----

  test(
    "connect sends the URL's path and query as the request target",
    bounded(async () => {
      const { url, requests, connections } = await wsServer();
      const client = await open(`${url}/chat/room%201?user=ann&x=1`);
      await roundTrip(client, "hi");
      const [request] = requests;
      assert.ok(request);
      assert.equal(request.path, "/chat/room%201");
      assert.equal(request.query, "user=ann&x=1");
      assert.equal(connections[0]?.info.path, "/chat/room%201?user=ann&x=1");
      assert.equal(client.info.path, "/chat/room%201?user=ann&x=1");
      assert.equal(request.headers.get("host"), url.slice("ws://".length));
    }),
  );

  test(
    "connect takes an http: URL as ws:, and a URL object",
    bounded(async () => {
      const { port, requests } = await wsServer();
      const client = await open(`http://${HOST}:${port}/plain?q=1`);
      await roundTrip(client, "over http:");
      const other = await open(
        new URL(`ws://${HOST}:${port}/object`),
      );
      await roundTrip(other, "from a URL object");
      assert.deepEqual(requests.map((r) => r.path), ["/plain", "/object"]);
      assert.equal(requests[0]?.query, "q=1");
    }),
  );

  test(
    "connect throws TypeError before any I/O for an invalid URL, another scheme or a fragment",
    () => {
      const { transport, calls } = fakeTransport();
      for (
        const url of [
          "not a url",
          "ws://",
          "ftp://example.test/",
          "file:///tmp/socket",
          "ws://example.test/chat#top",
          "ws://example.test/#",
          "ws://user:secret@example.test/", // credentials are never sent
          new URL("wss://example.test/a#b"),
        ]
      ) {
        assert.throws(
          () => connect(url, { transport }),
          TypeError,
          `for ${String(url)}`,
        );
      }
      assert.equal(calls.length, 0, "the transport was asked to connect");
    },
  );

  test(
    "connect picks port 80 for ws:, 443 with TLS for wss:, and unbrackets IPv6",
    bounded(async () => {
      const { transport, calls, refusal } = fakeTransport();
      const fails = (url: string, options = {}) =>
        assert.rejects(connect(url, { ...options, transport }), refusal);
      await fails("ws://example.test/");
      await fails("wss://example.test/");
      await fails("ws://[::1]:9/");
      await fails("http://example.test/");
      await fails("https://example.test:8443/", { tls: { caCerts: [cert] } });
      await fails("ws://example.test:443/");
      const seen = calls.map(({ hostname, port, tls }) => ({
        hostname,
        port,
        tls,
      }));
      assert.deepEqual(seen, [
        { hostname: "example.test", port: 80, tls: undefined },
        { hostname: "example.test", port: 443, tls: {} },
        { hostname: "::1", port: 9, tls: undefined },
        { hostname: "example.test", port: 80, tls: undefined },
        { hostname: "example.test", port: 8443, tls: { caCerts: [cert] } },
        { hostname: "example.test", port: 443, tls: undefined },
      ]);
      for (const call of calls) assert.ok(call.signal instanceof AbortSignal);
    }),
  );

  test(
    "connect over IPv6 to [::1]",
    { skip: ipv6 ? false : "::1 cannot be bound here (no IPv6 loopback)" },
    bounded(async () => {
      const { port, requests, connections } = await wsServer({
        hostname: "::1",
      });
      const client = await open(`ws://[::1]:${port}/six`);
      await roundTrip(client, "over IPv6");
      assert.equal(requests[0]?.path, "/six");
      assert.equal(requests[0]?.headers.get("host"), `[::1]:${port}`);
      assert.equal(requests[0]?.remoteAddr?.hostname, "::1");
      assert.deepEqual(client.info.remoteAddr, { hostname: "::1", port });
      assert.deepEqual(
        connections[0]?.info.remoteAddr,
        client.info.localAddr,
      );
    }),
  );

  test(
    "connect throws RangeError at the call for a non-positive handshakeTimeout or connection limit",
    () => {
      const { transport, calls } = fakeTransport();
      for (const handshakeTimeout of [0, -1, NaN, Infinity]) {
        assert.throws(
          () => connect("ws://example.test/", { transport, handshakeTimeout }),
          RangeError,
        );
      }
      // The connection's own options are checked before any I/O too.
      for (
        const options of [
          { maxMessageSize: 0 },
          { closeTimeout: -1 },
          { highWaterMark: NaN },
          { keepalive: { interval: 0 } },
        ]
      ) {
        assert.throws(
          () => connect("ws://example.test/", { transport, ...options }),
          RangeError,
          JSON.stringify(options),
        );
      }
      assert.equal(calls.length, 0);
    },
  );

  // ---- headers and subprotocols ----

  test(
    "connect sends extra headers to the server",
    bounded(async () => {
      const { url, requests } = await wsServer();
      const client = await open(url, {
        headers: {
          Authorization: "Bearer t0ken",
          Origin: "https://app.example",
          "X-Trace": "abc-123",
        },
      });
      await roundTrip(client, "with headers");
      const headers = requests[0]?.headers;
      assert.equal(headers?.get("authorization"), "Bearer t0ken");
      assert.equal(headers?.get("origin"), "https://app.example");
      assert.equal(headers?.get("x-trace"), "abc-123");
      assert.equal(headers?.get("sec-websocket-version"), "13");
    }),
  );

  test(
    "connect throws TypeError for headers the handshake sets itself",
    () => {
      const { transport, calls } = fakeTransport();
      for (
        const headers of [
          { "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==" },
          { Upgrade: "h2c" },
          { Connection: "keep-alive" },
          { "Sec-WebSocket-Version": "8" },
          { "Sec-WebSocket-Protocol": "chat" },
        ]
      ) {
        assert.throws(
          () => connect("ws://example.test/", { transport, headers }),
          TypeError,
          JSON.stringify(headers),
        );
      }
      assert.equal(calls.length, 0);
    },
  );

  test(
    "connect offers subprotocols in order; the server picks by the client's preference",
    bounded(async () => {
      const { url, requests, connections } = await wsServer({
        protocols: ["chat.v1", "chat.v2"],
      });
      const client = await open(url, { protocols: ["chat.v2", "chat.v1"] });
      await roundTrip(client, "v2");
      assert.deepEqual(requests[0]?.protocols, ["chat.v2", "chat.v1"]);
      assert.equal(
        requests[0]?.headers.get("sec-websocket-protocol"),
        "chat.v2, chat.v1",
      );
      assert.equal(client.protocol, "chat.v2");
      assert.equal(client.info.protocol, "chat.v2");
      assert.equal(connections[0]?.protocol, "chat.v2");
    }),
  );

  test(
    'connect takes a single subprotocol as a string; none shared means ""',
    bounded(async () => {
      const { url, requests } = await wsServer({
        protocols: ["chat.v1", "chat.v2"],
      });
      const one = await open(url, { protocols: "chat.v1" });
      assert.equal(one.protocol, "chat.v1");
      assert.deepEqual(requests[0]?.protocols, ["chat.v1"]);
      const none = await open(url, { protocols: ["mqtt"] });
      assert.equal(none.protocol, "");
      await roundTrip(none, "no subprotocol");
    }),
  );

  // ---- refusals and broken servers ----

  test(
    "connect reports a refusal by onUpgrade with its status and body",
    bounded(async () => {
      const thrown = await wsServer({
        onUpgrade: () => {
          throw new HandshakeError("go away", 403, {
            headers: { "X-Reason": "banned" },
          });
        },
      });
      await assert.rejects(connect(thrown.url), (error) => {
        isHandshakeError(403)(error);
        const { body, headers } = error as HandshakeError;
        assert.equal(body, "Forbidden"); // not the message
        assert.equal(headers.get("x-reason"), "banned");
        return true;
      });
      const refused = await wsServer({ onUpgrade: () => false });
      await assert.rejects(connect(refused.url), (error) => {
        isHandshakeError(403)(error);
        assert.equal((error as HandshakeError).body, "Forbidden");
        return true;
      });
      assert.equal(thrown.requests.length + refused.requests.length, 0);
    }),
  );

  test(
    "connect reports a raw 404 with its body (Content-Length, or up to the close)",
    bounded(async () => {
      for (const sized of [true, false]) {
        const body = "No such room: lobby";
        const { url } = await rawServer(async (transport) => {
          await readRequest(transport.readable.getReader());
          const writer = transport.writable.getWriter();
          await writer.write(encoder.encode(
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n" +
              (sized ? `Content-Length: ${body.length}\r\n` : "") +
              `\r\n${body}`,
          ));
          if (!sized) await writer.close();
        });
        await assert.rejects(connect(url), (error) => {
          isHandshakeError(404)(error);
          const { body: got, headers } = error as HandshakeError;
          assert.equal(got, body);
          assert.equal(headers.get("content-type"), "text/plain");
          return true;
        });
      }
    }),
  );

  test(
    "connect reports garbage instead of HTTP as HandshakeError status 0",
    bounded(async () => {
      const garbage = [
        "SSH-2.0-OpenSSH_9.6\r\n\r\n", // a blank line: parsed and refused
        "HTTP/2.0 101 Nope\r\n\r\n",
        "\x00\x01\x02 binary \xff\r\n\r\n",
      ];
      for (const text of garbage) {
        const { url } = await rawServer(async (transport) => {
          await readRequest(transport.readable.getReader());
          const writer = transport.writable.getWriter();
          await writer.write(
            Uint8Array.from(text, (char) => char.charCodeAt(0)),
          );
        });
        await assert.rejects(connect(url), isHandshakeError(0));
      }
      // No blank line, then the end of the stream.
      const { url } = await rawServer(async (transport) => {
        await readRequest(transport.readable.getReader());
        const writer = transport.writable.getWriter();
        await writer.write(encoder.encode("SSH-2.0-OpenSSH_9.6\r\n"));
        await writer.close();
      });
      await assert.rejects(connect(url), isHandshakeError(0));
    }),
  );

  test(
    "connect fails a 101 with a wrong Sec-WebSocket-Accept and closes the socket",
    bounded(async () => {
      let closed: Promise<void> | undefined;
      const { url } = await rawServer(async (transport) => {
        const reader = transport.readable.getReader();
        await readRequest(reader);
        const writer = transport.writable.getWriter();
        // The accept value of another key (RFC 6455's sample).
        await writer.write(
          encoder.encode(await switching("dGhlIHNhbXBsZSBub25jZQ==")),
        );
        closed = ended(reader);
      });
      await assert.rejects(connect(url), (error) => {
        assert.ok(error instanceof HandshakeError);
        assert.match(error.message, /Sec-WebSocket-Accept/);
        return true;
      });
      assert.ok(closed);
      await within(2_000, closed);
    }),
  );

  test(
    "connect fails a 101 that picks a subprotocol the client did not offer",
    bounded(async () => {
      const { url } = await rawServer(async (transport) => {
        const { key } = await readRequest(transport.readable.getReader());
        const writer = transport.writable.getWriter();
        await writer.write(
          encoder.encode(
            await switching(key, "Sec-WebSocket-Protocol: other\r\n"),
          ),
        );
      });
      await assert.rejects(
        connect(url, { protocols: ["chat"] }),
        (error) =>
          error instanceof HandshakeError && /other/.test(error.message),
      );
    }),
  );

  test(
    "connect times out with TimeoutError at handshakeTimeout and closes the socket",
    bounded(async () => {
      let closed: Promise<void> | undefined;
      const { url } = await rawServer(async (transport) => {
        const reader = transport.readable.getReader();
        await readRequest(reader); // and never answer
        closed = ended(reader);
      });
      const elapsed = await timed(() =>
        assert.rejects(connect(url, { handshakeTimeout: 200 }), TimeoutError)
      );
      assert.ok(elapsed >= 190, `timed out after ${elapsed} ms`);
      assert.ok(elapsed < 1_500, `timed out after ${elapsed} ms`);
      assert.ok(closed, "the request never arrived");
      await within(2_000, closed);
    }),
  );

  test(
    "connect's handshakeTimeout and signal also bound the transport's connect",
    bounded(async () => {
      // A transport that connects until its signal says stop, as a TCP
      // connect to a black-holed address does.
      const calls: ConnectTransportOptions[] = [];
      const transport: RuntimeTransports = {
        name: "stuck",
        connect(options) {
          calls.push(options);
          return new Promise((_, reject) => {
            const signal = options.signal!;
            signal.addEventListener("abort", () => reject(signal.reason));
          });
        },
        listen: () => Promise.reject(new Error("not for listening")),
      };
      const elapsed = await timed(() =>
        assert.rejects(
          connect("ws://example.test/", { transport, handshakeTimeout: 200 }),
          TimeoutError,
        )
      );
      assert.ok(elapsed >= 190 && elapsed < 1_500, `after ${elapsed} ms`);
      const controller = new AbortController();
      const reason = new Error("aborted by the test");
      const connecting = connect("ws://example.test/", {
        transport,
        signal: controller.signal,
      });
      await sleep(20);
      controller.abort(reason);
      await assert.rejects(connecting, (error) => error === reason);
      assert.equal(calls.length, 2);
    }),
  );

  test(
    "connect with an already-aborted signal rejects with its reason and opens nothing",
    bounded(async () => {
      const { url, accepted } = await rawServer();
      const reason = new Error("aborted by the test");
      await assert.rejects(
        connect(url, { signal: AbortSignal.abort(reason) }),
        (error) => error === reason,
      );
      await sleep(100);
      assert.equal(accepted.length, 0, "a TCP connection was opened");
    }),
  );

  test(
    "connect aborted during the handshake rejects with the reason and closes the socket",
    bounded(async () => {
      const controller = new AbortController();
      const reason = new Error("aborted by the test");
      let closed: Promise<void> | undefined;
      const { url } = await rawServer(async (transport) => {
        const reader = transport.readable.getReader();
        await readRequest(reader);
        closed = ended(reader);
        controller.abort(reason);
      });
      await assert.rejects(
        connect(url, { signal: controller.signal }),
        (error) => error === reason,
      );
      assert.ok(closed);
      await within(2_000, closed);
    }),
  );

  test(
    "connect's signal has no effect once connected",
    bounded(async () => {
      const { url } = await wsServer();
      const controller = new AbortController();
      const client = await open(url, { signal: controller.signal });
      controller.abort(new Error("too late"));
      await roundTrip(client, "still open");
      assert.equal(client.info.state, "open");
    }),
  );

  test(
    "connect reports a server that hangs up at once as HandshakeError status 0",
    bounded(async () => {
      // Closing before the request arrives may make the kernel answer it
      // with a reset instead of an end of stream: both are status 0. Several
      // rounds, to meet both.
      for (let round = 0; round < 5; round++) {
        const { url } = await rawServer((transport) => transport.close());
        await assert.rejects(connect(url), isHandshakeError(0));
      }
      // Hanging up after reading the request: a clean end of stream.
      const { url } = await rawServer(async (transport) => {
        await readRequest(transport.readable.getReader());
        transport.close();
      });
      await assert.rejects(connect(url), isHandshakeError(0));
    }),
  );

  test(
    "connect reports a server that resets the connection as HandshakeError status 0",
    bounded(async () => {
      // Closing a socket with unread bytes resets it (RFC 2525 §2.17). On
      // Bun a cancelled readable stops reading, so the request stays unread;
      // Deno has a read under way already, so the client may see a plain end
      // of stream instead: status 0 either way.
      for (let round = 0; round < 3; round++) {
        const { url } = await rawServer(async (transport) => {
          await transport.readable.cancel();
          await sleep(50);
          transport.close();
        });
        await assert.rejects(connect(url), isHandshakeError(0));
      }
    }),
  );

  test(
    "connect reports a response head over headLimits as HandshakeError status 0",
    bounded(async () => {
      const { url } = await rawServer(async (transport) => {
        const { key } = await readRequest(transport.readable.getReader());
        const writer = transport.writable.getWriter();
        await writer.write(encoder.encode(
          await switching(key, `X-Padding: ${"p".repeat(600)}\r\n`),
        ));
      });
      await assert.rejects(
        connect(url, { headLimits: { maxHeadSize: 512 } }),
        isHandshakeError(0),
      );
      // The same response is fine under the default limits.
      const { url: again } = await rawServer(async (transport) => {
        const { key } = await readRequest(transport.readable.getReader());
        const writer = transport.writable.getWriter();
        await writer.write(encoder.encode(
          await switching(key, `X-Padding: ${"p".repeat(600)}\r\n`),
        ));
      });
      // This raw server never answers a close: keep its wait short.
      const client = await open(again, { closeTimeout: 100 });
      assert.equal(client.info.state, "open");
    }),
  );

  test(
    "connect delivers frames sent in the same write as the 101",
    bounded(async () => {
      const { url } = await rawServer(async (transport) => {
        const reader = await upgradeWith(
          transport,
          frame(Opcode.Text, encoder.encode("first")),
          frame(Opcode.Binary, new Uint8Array([1, 2, 3])),
          frame(Opcode.Close, encodeClosePayload(1000, "done")),
        );
        // The client echoes the close; then the server closes TCP (§7.1.1).
        await reader.read();
        transport.close();
      });
      const client = await open(url);
      const messages: Message[] = [];
      for await (const message of client.readable) messages.push(message);
      assert.deepEqual(messages, ["first", new Uint8Array([1, 2, 3])]);
      assertClose(await within(2_000, client.closed), {
        closeCode: 1000,
        reason: "done",
        wasClean: true,
      });
    }),
  );

  test(
    "connect learns of a reset from a failed write when it is not reading: closed says 1006",
    bounded(async () => {
      let hangUp!: () => void;
      const hungUp = new Promise<void>((resolve) => (hangUp = resolve));
      const { url } = await rawServer(async (transport) => {
        await upgradeWith(
          transport,
          frame(Opcode.Text, encoder.encode("one")),
          frame(Opcode.Text, encoder.encode("two")),
        );
        // Reads nothing more; closing with unread bytes sends a reset.
        await hungUp;
        transport.close();
      });
      // Two messages fill an inbox of one: the client stops reading, so
      // only its writes can tell it the peer is gone.
      const client = await open(url, { highWaterMark: 1, keepalive: false });
      await sleep(50);
      // More than the kernel buffers of both ends take from a peer that
      // does not read: part of it is still queued when the reset comes.
      const sending = client.send(new Uint8Array(32 * 1024 * 1024));
      sending.catch(() => {});
      await sleep(50);
      hangUp();
      const info = await within(3_000, client.closed);
      assert.equal(info.closeCode, 1006);
      assert.equal(info.wasClean, false);
    }),
  );

  // ---- large messages ----

  test(
    "connect sends 200 different 64 KiB messages at once to a server that reads slowly, and each arrives intact",
    bounded(async () => {
      // 12.5 MiB is more than the kernel takes at once, so the socket takes
      // frames in parts: a frame's buffer must not be built over again (see
      // reusableBufferFor) while part of it waits to be written.
      const COUNT = 200;
      const SIZE = 65_536;
      const byte = (i: number, j: number) => (i * 7 + j * 31 + (j >> 8)) & 255;
      const wrong: string[] = [];
      let received = 0;
      const { url } = await wsServer({}, async (connection) => {
        for await (const message of connection) {
          const i = received++;
          assert.ok(message instanceof Uint8Array);
          if (message.length !== SIZE) wrong.push(`${i}: ${message.length} B`);
          for (let j = 0; j < message.length; j++) {
            if (message[j] !== byte(i, j)) {
              wrong.push(`${i}: byte ${j}`);
              break;
            }
          }
          if (i % 16 === 0) await sleep(5);
          if (received === COUNT) await connection.send("all");
        }
      });
      const client = await open(url);
      const sends = Array.from({ length: COUNT }, (_, i) => {
        const payload = new Uint8Array(SIZE);
        for (let j = 0; j < SIZE; j++) payload[j] = byte(i, j);
        return client.send(payload);
      });
      await within(20_000, Promise.all(sends));
      assert.equal(await nextMessage(client), "all");
      assert.deepEqual(wrong, []);
      assert.equal(received, COUNT);
    }),
  );

  // ---- TLS ----

  test(
    "connect over wss: echoes with the test CA trusted, 5 MiB messages too",
    bounded(async () => {
      const { port, requests } = await wsServer({ cert, key });
      const client = await open(`wss://${HOST}:${port}/secure`, {
        tls: { caCerts: [cert] },
      });
      await roundTrip(client, "over TLS");
      await roundTrip(client, "x".repeat(70_000));
      // Large binary messages, each joined from many reads on both ends
      // (on Bun, reads released as they are joined): every byte intact.
      for (let round = 0; round < 3; round++) {
        const large = new Uint8Array(5 * 1024 * 1024 + 7);
        for (let i = 0; i < large.length; i++) {
          large[i] = (i * 31 + round) & 255;
        }
        await client.send(large);
        assert.deepEqual(await nextMessage(client), large);
      }
      assert.equal(requests[0]?.path, "/secure");
    }),
  );

  test(
    "connect over wss: rejects a certificate it does not trust, without hanging",
    bounded(async () => {
      const { port, errors } = await wsServer({ cert, key });
      for (const tls of [{ serverName: "localhost" }, { caCerts: [] }]) {
        await assert.rejects(
          within(3_000, connect(`wss://${HOST}:${port}/`, { tls })),
          (error) =>
            !(error instanceof Error && /timed out/.test(error.message)),
          JSON.stringify(tls),
        );
      }
      // The server is unharmed.
      const client = await open(`wss://${HOST}:${port}/`, {
        tls: { caCerts: [cert] },
      });
      await roundTrip(client, "after a bad client");
      // A client's failed TLS handshake is not a server error.
      await sleep(50);
      assert.deepEqual(errors, []);
    }),
  );

  test(
    "connect over wss: without tls options, rejects a certificate it does not trust",
    bounded(async () => {
      const { port } = await wsServer({ cert, key });
      await assert.rejects(
        within(3_000, connect(`wss://${HOST}:${port}/`)),
        (error) => !(error instanceof Error && /timed out/.test(error.message)),
      );
    }),
  );
});
