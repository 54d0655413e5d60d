/**
 * A connection's `info`: a snapshot of where it stands, its addresses, what
 * was agreed in its handshake and its counters, made when asked for.
 *
 * @module
 */

import type { ByteChannel } from "./byte_channel.ts";
import type { ConnectionInfo, ConnectionState } from "./connection_options.ts";
import type { Protocol } from "./protocol.ts";
import type { RareState } from "./_rare_state.ts";

/** What the snapshot reads of a connection: its events object provides it. */
export interface InfoHost {
  readonly protocol: Protocol;
  readonly state: ConnectionState;
  readonly channel: ByteChannel;
  /** The request path and query of the handshake. */
  readonly path: string;
}

/** The snapshot of a connection, given its counters. */
export function connectionInfo(
  host: InfoHost,
  rare: RareState,
  bytesReceived: number,
  bytesSent: number,
  messagesReceived: number,
  messagesSent: number,
): ConnectionInfo {
  return {
    role: host.protocol.role,
    state: host.state,
    localAddr: host.channel.localAddr,
    remoteAddr: host.channel.remoteAddr,
    protocol: rare.agreedProtocol,
    // Plain copies: an agreed extension's own object stays inside.
    extensions: rare.extensions.map(({ name, params }) => ({
      name,
      params: { ...params },
    })),
    path: host.path,
    bytesReceived,
    bytesSent,
    messagesReceived,
    messagesSent,
  };
}
