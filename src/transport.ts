/**
 * The transport interface: a duplex byte stream with addresses. Everything
 * above it (handshake, protocol, connection) is the same on every runtime;
 * each runtime fills this interface in one small file under `transports/`.
 *
 * @module
 */

import type { Address } from "./address.ts";
import type { ByteChannel } from "./byte_channel.ts";
import type { PayloadBuffers } from "./payload_buffers.ts";

// Every transport has addresses: its importers (and the runtimes' entry
// points, which re-export this module's types) get the type from here too.
export type { Address } from "./address.ts";
export type {
  ByteChannel,
  ChannelReader,
  WriteFailureListener,
} from "./byte_channel.ts";
export type { PayloadBuffers } from "./payload_buffers.ts";

/**
 * A connected byte stream: what a WebSocket connection runs over.
 *
 * `readable` yields the bytes received, `writable` takes the bytes to send;
 * both carry real backpressure. Closing `writable` half-closes (or closes)
 * the socket; `close()` drops it at once. A transport may also offer the same
 * bytes as a {@link ByteChannel} (`channel`), without streams: the runtime
 * transports do, make their streams only when asked for them, and wsstream's
 * handshake and connection use the channel. Use one or the other.
 *
 * @example A transport over an in-memory pipe
 * ```ts
 * import type { Transport } from "@wsstream/wsstream";
 * const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
 * const transport: Transport = {
 *   readable,
 *   writable,
 *   close() {},
 *   localAddr: null,
 *   remoteAddr: null,
 * };
 * ```
 */
export interface Transport {
  /** Bytes received from the peer. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes to send to the peer. */
  readonly writable: WritableStream<Uint8Array>;
  /** Closes the socket at once, discarding anything unsent. Idempotent. */
  close(): void;
  /**
   * The local address, or `null` when not on a network socket. Bun's are
   * read from the socket when first asked for, and kept: first asked for
   * once the socket has closed, they are `null`.
   */
  readonly localAddr: Address | null;
  /** The peer's address, or `null` when not on a network socket. */
  readonly remoteAddr: Address | null;
  /** The same bytes without streams, when the transport has them. */
  readonly channel?: ByteChannel | undefined;
}

/**
 * TLS settings for a client connection.
 *
 * @example
 * ```ts
 * import type { ClientTlsOptions } from "@wsstream/wsstream";
 * const tls: ClientTlsOptions = { caCerts: ["-----BEGIN CERTIFICATE-----\n…"] };
 * ```
 */
export interface ClientTlsOptions {
  /** Extra CA certificates (PEM) to trust, for self-signed servers. */
  caCerts?: string[];
  /** The name to check the certificate against (defaults to the host). */
  serverName?: string;
}

/**
 * Options for opening a client transport.
 *
 * @example
 * ```ts
 * import type { ConnectTransportOptions } from "@wsstream/wsstream";
 * const options: ConnectTransportOptions = { hostname: "127.0.0.1", port: 9001 };
 * ```
 */
export interface ConnectTransportOptions {
  /** Host name or IP address (IPv6 without brackets). */
  hostname: string;
  /** TCP port. */
  port: number;
  /** Use TLS, with these settings. */
  tls?: ClientTlsOptions | undefined;
  /** Abort the attempt. */
  signal?: AbortSignal | undefined;
}

/**
 * Options for listening.
 *
 * @example
 * ```ts
 * import type { ListenOptions } from "@wsstream/wsstream";
 * const options: ListenOptions = { hostname: "127.0.0.1", port: 0 };
 * ```
 */
export interface ListenOptions {
  /** The address to bind (default `127.0.0.1`... set by the caller). */
  hostname: string;
  /** The port to bind; 0 picks a free one. */
  port: number;
  /** Serve TLS with this certificate chain and key (PEM). */
  tls?: { cert: string; key: string } | undefined;
}

/**
 * A listening socket: calls back with each accepted transport.
 *
 * @example
 * ```ts
 * import type { Listener } from "@wsstream/wsstream";
 * function port(listener: Listener): number {
 *   return listener.addr.port;
 * }
 * ```
 */
export interface Listener {
  /** The bound address; the real port when 0 was asked for. */
  readonly addr: Address;
  /** Stops accepting. Connections already accepted stay open. Idempotent. */
  close(): void;
}

/**
 * What one runtime provides: opening and accepting TCP/TLS transports.
 *
 * @example
 * ```ts
 * import type { RuntimeTransports } from "@wsstream/wsstream";
 * async function open(rt: RuntimeTransports) {
 *   return await rt.connect({ hostname: "127.0.0.1", port: 9001 });
 * }
 * ```
 */
export interface RuntimeTransports {
  /** The runtime's name, e.g. `"deno"` or `"bun"`. */
  readonly name: string;
  /** Opens a TCP (or TLS) connection. */
  connect(options: ConnectTransportOptions): Promise<Transport>;
  /**
   * Listens on TCP (or TLS) and calls `onTransport` with each accepted
   * connection. An exception from `onTransport` must not stop the listener.
   */
  listen(
    options: ListenOptions,
    onTransport: (transport: Transport) => void,
  ): Promise<Listener>;
  /**
   * How payload copies are best made on this runtime, when not plainly
   * (Bun's: aligned alike); connections over its transports use them.
   * Bun's `join` also frees the whole reads of its own transports that it
   * joins into a message of 1 MiB or more (all but the last): a read given
   * to it must not be used after.
   */
  readonly payloadBuffers?: PayloadBuffers | undefined;
}
