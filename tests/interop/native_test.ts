/**
 * wsstream against the running runtime's OWN WebSocket, over real sockets
 * on 127.0.0.1: our client with the native server, our server with the
 * native client.
 *
 *     deno test -A tests/interop/
 *     bun test ./tests/interop/
 *
 * On Deno the native side is `Deno.serve` + `Deno.upgradeWebSocket` and the
 * global `WebSocket`; on Bun, `Bun.serve` and the global `WebSocket`. Every
 * difference between them that a test has to allow for is a flag below.
 */
import assert from "node:assert/strict";
import { connect, type WebSocketConnection } from "../../mod.ts";
import {
  type Defer,
  interopTest,
  IS_DENO,
  RUNTIME,
  within,
} from "./_harness.ts";
import {
  assertSamePayload,
  chunksOf,
  FRAGMENTED,
  MESSAGES,
} from "./_messages.ts";
import { nativeEchoServer, openNativeClient } from "./_native.ts";
import { messageReader, ourServer } from "./_ours.ts";
import { assertClose } from "../_close.ts";

/** Our client to `url`, closed when the test ends. */
async function ourClient(
  defer: Defer,
  url: string,
  protocols: string[] = [],
): Promise<WebSocketConnection> {
  const connection = await connect(url, { protocols, handshakeTimeout: 5_000 });
  defer(() => connection.close());
  return connection;
}

// ---- the differences between the runtimes' native sides ----

/**
 * When the application selects no subprotocol from those a client offers,
 * Bun 1.4's server answers with the FIRST one offered anyway; Deno's answers
 * without one, as RFC 6455 §4.2.2 has it: "If the server does not wish to
 * agree to one of the suggested subprotocols, it MUST NOT send back a
 * |Sec-WebSocket-Protocol| header field in its response." Our client must
 * accept either answer: the one Bun picks was offered.
 */
const NATIVE_SERVER_PICKS_FIRST_OFFERED = !IS_DENO;

/**
 * A client that offered subprotocols and got a 101 without one: Bun 1.4's
 * client fails the connection ("Missing client protocol", close event 1006),
 * as Chrome does; Deno's opens with `protocol` "", as the WHATWG WebSocket
 * standard and RFC 6455 §4.1 allow (only a protocol that was NOT offered
 * must fail it). So a server that speaks none of a Bun client's protocols
 * cannot talk to it at all.
 */
const NATIVE_CLIENT_REQUIRES_A_PROTOCOL = !IS_DENO;

// ---- our client, the native server ----

const client = `${RUNTIME}: our client with the native server`;

interopTest(
  `${client}: every kind of message echoes back unchanged`,
  async (defer) => {
    const native = await nativeEchoServer();
    defer(() => native.close());
    const connection = await ourClient(defer, native.url);
    const messages = messageReader(connection);
    for (const [name, message] of MESSAGES) {
      await connection.send(message);
      assertSamePayload(await messages.next(name), message, name);
    }
  },
);

interopTest(
  `${client}: a message we send in fragments arrives whole`,
  async (defer) => {
    const native = await nativeEchoServer();
    defer(() => native.close());
    const connection = await ourClient(defer, native.url);
    const messages = messageReader(connection);
    for (const { name, chunks, type, whole } of FRAGMENTED) {
      await connection.send(chunksOf(chunks), type ? { type } : {});
      assertSamePayload(await messages.next(name), whole, name);
    }
  },
);

interopTest(
  `${client}: the server selects a subprotocol we offered`,
  async (defer) => {
    const native = await nativeEchoServer({
      // A server that speaks only chat.v1, whatever the client prefers.
      select: (offered) => offered.find((p) => p === "chat.v1"),
    });
    defer(() => native.close());
    const connection = await ourClient(defer, native.url, [
      "chat.v2",
      "chat.v1",
    ]);
    const peer = await native.peers.next();
    assert.deepEqual(peer.offered, ["chat.v2", "chat.v1"]);
    assert.equal(connection.protocol, "chat.v1");
    assert.equal(connection.info.protocol, "chat.v1");
  },
);

interopTest(
  `${client}: a server that selects no subprotocol`,
  async (defer) => {
    const native = await nativeEchoServer();
    defer(() => native.close());
    const connection = await ourClient(defer, native.url, [
      "chat.v2",
      "chat.v1",
    ]);
    const peer = await native.peers.next();
    assert.equal(peer.selected, "");
    assert.equal(
      connection.protocol,
      NATIVE_SERVER_PICKS_FIRST_OFFERED ? "chat.v2" : "",
    );
    // The connection works either way.
    const messages = messageReader(connection);
    await connection.send("still echoing");
    assertSamePayload(await messages.next("echo"), "still echoing", "echo");
  },
);

interopTest(
  `${client}: ping resolves with the round trip (the server auto-pongs)`,
  async (defer) => {
    const native = await nativeEchoServer();
    defer(() => native.close());
    const connection = await ourClient(defer, native.url);
    const rtts = await Promise.all([
      connection.ping(),
      connection.ping("with a payload ✓"),
    ]);
    for (const rtt of rtts) {
      assert.ok(Number.isFinite(rtt) && rtt >= 0, `round trip ${rtt}`);
    }
    // Pings do not disturb messages.
    const messages = messageReader(connection);
    await connection.send("after the pings");
    assertSamePayload(await messages.next("echo"), "after the pings", "echo");
  },
);

interopTest(
  `${client}: our close's code and reason reach the server`,
  async (defer) => {
    const native = await nativeEchoServer();
    defer(() => native.close());
    const connection = await ourClient(defer, native.url);
    const peer = await native.peers.next();
    const info = await connection.close({ closeCode: 4000, reason: "done ✓" });
    assertClose(info, { closeCode: 4000, reason: "done ✓", wasClean: true });
    assert.deepEqual(
      await within(5_000, peer.closed, "the native close event"),
      { code: 4000, reason: "done ✓" },
    );
  },
);

interopTest(
  `${client}: the server's close's code and reason reach us`,
  async (defer) => {
    const native = await nativeEchoServer();
    defer(() => native.close());
    const connection = await ourClient(defer, native.url);
    const peer = await native.peers.next();
    const messages = messageReader(connection);
    peer.close(4001, "server says bye");
    await messages.end("the end of our readable");
    assertClose(
      await within(5_000, connection.closed, "our closed"),
      { closeCode: 4001, reason: "server says bye", wasClean: true },
    );
    assert.equal((await peer.closed).code, 4001);
  },
);

// ---- the native client, our server ----

const server = `${RUNTIME}: the native client with our server`;

interopTest(
  `${server}: every kind of message the client sends echoes back`,
  async (defer) => {
    const { url, accepted } = await ourServer(defer);
    const native = await openNativeClient(url);
    defer(() => native.close());
    const { connection } = await accepted.next();
    // Our end echoes.
    const echoing = (async () => {
      for await (const message of connection.readable) {
        await connection.send(message);
      }
    })();
    for (const [name, message] of MESSAGES) {
      native.socket.send(message);
      assertSamePayload(await native.messages.next(5_000, name), message, name);
    }
    await native.close(1000);
    await within(5_000, echoing, "the end of our echo loop");
  },
);

interopTest(
  `${server}: every kind of message we send, in one frame or in fragments, echoes back`,
  async (defer) => {
    const { url, accepted } = await ourServer(defer);
    const native = await openNativeClient(url, [], { echo: true });
    defer(() => native.close());
    const { connection } = await accepted.next();
    const messages = messageReader(connection);
    for (const [name, message] of MESSAGES) {
      await connection.send(message);
      assertSamePayload(await messages.next(name), message, name);
    }
    for (const { name, chunks, type, whole } of FRAGMENTED) {
      await connection.send(chunksOf(chunks), type ? { type } : {});
      assertSamePayload(await messages.next(name), whole, name);
    }
  },
);

interopTest(
  `${server}: ping resolves with the round trip (the client auto-pongs)`,
  async (defer) => {
    const { url, accepted } = await ourServer(defer);
    const native = await openNativeClient(url);
    defer(() => native.close());
    const { connection } = await accepted.next();
    const rtt = await within(
      5_000,
      connection.ping("are you there"),
      "the pong",
    );
    assert.ok(Number.isFinite(rtt) && rtt >= 0, `round trip ${rtt}`);
  },
);

interopTest(
  `${server}: the subprotocol is the client's first choice we speak`,
  async (defer) => {
    const { url, accepted } = await ourServer(defer, {
      protocols: ["chat.v1", "chat.v2", "chat.v3"],
    });
    const native = await openNativeClient(url, [
      "chat.v4",
      "chat.v3",
      "chat.v1",
    ]);
    defer(() => native.close());
    const { connection, request } = await accepted.next();
    assert.deepEqual(request.protocols, ["chat.v4", "chat.v3", "chat.v1"]);
    assert.equal(connection.protocol, "chat.v3");
    assert.equal(native.socket.protocol, "chat.v3");
  },
);

interopTest(
  `${server}: a client offering only subprotocols we do not speak`,
  async (defer) => {
    const { url, accepted } = await ourServer(defer, {
      protocols: ["chat.v1"],
    });
    const opening = openNativeClient(url, ["mqtt", "graphql-ws"]);
    opening.catch(() => {}); // it may fail before it is awaited below
    // Our handshake accepts it without a subprotocol either way (RFC 6455
    // §4.2.2: none of them is one we speak).
    const { connection, request } = await accepted.next();
    assert.deepEqual(request.protocols, ["mqtt", "graphql-ws"]);
    assert.equal(connection.protocol, "");
    if (NATIVE_CLIENT_REQUIRES_A_PROTOCOL) {
      await assert.rejects(opening, /failed/);
      const info = await within(5_000, connection.closed, "our closed");
      assert.equal(info.wasClean, false);
    } else {
      const native = await opening;
      defer(() => native.close());
      assert.equal(native.socket.protocol, "");
    }
  },
);

interopTest(
  `${server}: our close's code and reason reach the client`,
  async (defer) => {
    const { url, accepted } = await ourServer(defer);
    const native = await openNativeClient(url);
    defer(() => native.close());
    const { connection } = await accepted.next();
    const [ours, theirs] = await Promise.all([
      connection.close({ closeCode: 4002, reason: "server closing ✓" }),
      within(5_000, native.closed, "the native close event"),
    ]);
    assertClose(ours, {
      closeCode: 4002,
      reason: "server closing ✓",
      wasClean: true,
    });
    assertClose(theirs, {
      code: 4002,
      reason: "server closing ✓",
      wasClean: true,
    });
  },
);

interopTest(
  `${server}: the client's close's code and reason reach us`,
  async (defer) => {
    const { url, accepted } = await ourServer(defer);
    const native = await openNativeClient(url);
    defer(() => native.close());
    const { connection } = await accepted.next();
    const messages = messageReader(connection);
    const theirs = await native.close(4003, "client leaving ✓");
    await messages.end("the end of our readable");
    assertClose(await within(5_000, connection.closed, "our closed"), {
      closeCode: 4003,
      reason: "client leaving ✓",
      wasClean: true,
    });
    // The client's own close event reports the close frame it RECEIVED (the
    // WHATWG "connection close code/reason"): our echo. RFC 6455 §5.5.1 has
    // the echo "typically echoing the status code it received"; ours carries
    // the code, and the reason is ours to echo or not.
    assert.equal(theirs.code, 4003);
    assert.equal(theirs.wasClean, true);
    assert.ok(
      theirs.reason === "" || theirs.reason === "client leaving ✓",
      `the echo's reason: ${JSON.stringify(theirs.reason)}`,
    );
  },
);

interopTest(
  `${server}: the handler sees the client's path and query`,
  async (defer) => {
    const { url, accepted } = await ourServer(defer);
    const native = await openNativeClient(
      `${url}/rooms/42?user=ana&note=a%20b`,
    );
    defer(() => native.close());
    const { connection, request } = await accepted.next();
    assert.equal(request.path, "/rooms/42");
    assert.equal(request.query, "user=ana&note=a%20b");
    assert.equal(connection.info.path, "/rooms/42?user=ana&note=a%20b");
  },
);
