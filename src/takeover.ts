/**
 * `takeover()`: run a WebSocket connection over any byte stream whose
 * opening handshake is done (tcllib's `websocket::takeover`).
 *
 * @module
 */

import type { ByteStream } from "./byte_channel.ts";
import { type ConnectionSetup, WebSocketConnection } from "./connection.ts";
import { openConnection } from "./_connection_internals.ts";
import type { ConnectionSettings } from "./connection_options.ts";
import { OpenConnections } from "./open_connections.ts";

/**
 * Everything `takeover` needs to know beyond the byte stream.
 *
 * @example
 * ```ts
 * import type { TakeoverOptions } from "@wsstream/wsstream";
 * const options: TakeoverOptions = { role: "server", protocol: "chat" };
 * ```
 */
export interface TakeoverOptions extends ConnectionSetup {
  /**
   * Where to keep this connection while it is open: it is added now and
   * deleted once closed (how a server keeps its `connections`). An
   * {@link OpenConnections} costs less than a `Set` on a busy server.
   */
  openIn?: Set<WebSocketConnection> | OpenConnections | undefined;
}

/**
 * Runs a WebSocket connection over any byte stream whose opening handshake
 * is already done (tcllib's `websocket::takeover`): a socket, a pipe, a
 * stream from another library. `head` carries any bytes read past the
 * handshake.
 *
 * @param stream The byte stream (`readable` and `writable`, with `close()`
 * and addresses when there is a socket under it).
 * @param options The role, and what the handshake agreed.
 * @returns The connection.
 *
 * @example Two ends over an in-memory pipe
 * ```ts
 * import { takeover } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 *
 * const toServer = new TransformStream<Uint8Array, Uint8Array>();
 * const toClient = new TransformStream<Uint8Array, Uint8Array>();
 * const client = takeover(
 *   { readable: toClient.readable, writable: toServer.writable },
 *   { role: "client" },
 * );
 * const server = takeover(
 *   { readable: toServer.readable, writable: toClient.writable },
 *   { role: "server", keepalive: false },
 * );
 * await client.send("hello");
 * const reader = server.readable.getReader();
 * assert.equal((await reader.read()).value, "hello");
 * reader.releaseLock();
 * const [a, b] = await Promise.all([client.close(), server.closed]);
 * // Each end reports both close frames: ours went with its standard reason,
 * // the server's echo carries the code only.
 * const ours = { closeCode: 1000, reason: "Normal closure" };
 * const echo = { closeCode: 1000, reason: "" };
 * assert.deepEqual(a, { ...echo, wasClean: true, sent: ours, received: echo });
 * assert.deepEqual(b, { ...ours, wasClean: true, sent: echo, received: ours });
 * ```
 */
export function takeover(
  stream: ByteStream,
  options: TakeoverOptions,
): WebSocketConnection {
  // A transport with a channel is used through it: its streams (made on
  // first use) are not touched.
  if (
    !stream?.channel && (
      !(stream?.readable instanceof ReadableStream) ||
      !(stream?.writable instanceof WritableStream)
    )
  ) {
    throw new TypeError(
      "takeover needs a byte stream: { readable: ReadableStream, writable: WritableStream }",
    );
  }
  const connection = new WebSocketConnection(stream, options);
  keepIn(connection, options.openIn);
  return connection;
}

/**
 * Like {@link takeover}, with settings already resolved (how `serve` has
 * all its connections share one settings object): internal.
 */
export function takeoverWith(
  stream: ByteStream,
  options: TakeoverOptions,
  settings: ConnectionSettings,
): WebSocketConnection {
  const connection = openConnection(stream, options, settings);
  keepIn(connection, options.openIn);
  return connection;
}

/** Keeps `connection` in `openIn` while it is open. */
function keepIn(
  connection: WebSocketConnection,
  openIn: TakeoverOptions["openIn"],
): void {
  if (openIn instanceof OpenConnections) {
    OpenConnections.enter(openIn, connection);
  } else if (openIn instanceof Set) {
    // A Set costs a closure and the `closed` promise per connection: an
    // OpenConnections leaves by itself.
    openIn.add(connection);
    void connection.closed.then(() => openIn.delete(connection));
  } else if (openIn !== undefined) {
    throw new TypeError("openIn must be an OpenConnections or a Set");
  }
}
