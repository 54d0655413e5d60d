/**
 * What the library's other modules reach inside a connection for: its link
 * in an `OpenConnections`, the drop of its socket (a server's shutdown),
 * and pub/sub's frames encoded once for many connections. The connection
 * gives these through its static block (`connectionInternals`); here they
 * have their names and their rules.
 *
 * @module
 */

import type { ByteStream } from "./byte_channel.ts";
import {
  connectionInternals,
  type ConnectionSetup,
  type OpenLink,
  WebSocketConnection,
} from "./connection.ts";
import type { ConnectionSettings } from "./connection_options.ts";

export type { OpenLink } from "./connection.ts";

/**
 * A connection's link in an `OpenConnections` (its events object, which a
 * list can hold without a node of its own), or `null` once it is over.
 * Internal to open_connections.ts.
 */
export function connectionLink(
  connection: WebSocketConnection,
): OpenLink | null {
  return connectionInternals.link(connection);
}

/**
 * Closes a connection's socket at once, without a close handshake (or
 * cutting the one under way short): its `closed` reports 1006. Internal: a
 * server's shutdown deadline.
 */
export function dropConnection(connection: WebSocketConnection): void {
  connectionInternals.drop(connection);
}

/**
 * Sends a frame encoded once for many connections (`PubSub.publish`)
 * through the connection's ordered send path: after every send before it,
 * corked with the rest, never while a fragmented message is going out, and
 * only while the connection may still send (a close frame not yet sent or
 * received). Returns `null` when this connection cannot take shared bytes: a
 * client masks every frame with its own key (RFC 6455 §5.3), and an agreed
 * extension (permessage-deflate) transforms each message with the
 * connection's own context; the caller then sends the message itself.
 * Internal to pubsub.ts.
 */
export function sendEncoded(
  connection: WebSocketConnection,
  frame: Uint8Array,
): Promise<void> | null {
  return connectionInternals.sendEncoded(connection, frame);
}

/**
 * The bytes a connection has taken and not yet written to its socket
 * (corked, and buffered by its transport): how far behind its peer is.
 * Internal to pubsub.ts.
 */
export function pendingBytes(connection: WebSocketConnection): number {
  return connectionInternals.pendingBytes(connection);
}

/**
 * A connection whose settings are already resolved: how `serve` makes each
 * of its connections share one settings object. Internal.
 */
export function openConnection(
  stream: ByteStream,
  options: ConnectionSetup,
  settings: ConnectionSettings,
): WebSocketConnection {
  connectionInternals.preset(settings);
  try {
    return new WebSocketConnection(stream, options);
  } finally {
    connectionInternals.preset(null);
  }
}
