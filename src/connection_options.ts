/**
 * What shapes a connection: the options `connect`, `serve` and `takeover`
 * share, and the settings they resolve to. A server resolves its options
 * once and every one of its connections refers to the same frozen
 * {@link ConnectionSettings}: idle connections hold no copy of their own.
 *
 * @module
 */

import { randomMaskSource } from "./mask.ts";
import { type PayloadBuffers, plainPayloadBuffers } from "./payload_buffers.ts";
import type { Address } from "./address.ts";
import type { ExtensionOffer } from "./handshake_headers.ts";
import {
  DEFAULT_MAX_FRAGMENTS,
  DEFAULT_MAX_MESSAGE_SIZE,
  type ProtocolOptions,
  type Role,
} from "./protocol.ts";

/** Default for {@link ConnectionOptions.closeTimeout}: 10 s. */
export const DEFAULT_CLOSE_TIMEOUT = 10_000;
/** Default for {@link ConnectionOptions.highWaterMark}: 16 messages. */
export const DEFAULT_HIGH_WATER_MARK = 16;
/** A server's keepalive unless told otherwise: a ping every 30 s. */
export const SERVER_KEEPALIVE: KeepaliveSettings = Object.freeze({
  interval: 30_000,
  timeout: 30_000,
});

/** Keepalive's settings, `timeout` filled in. */
export interface KeepaliveSettings {
  /** Milliseconds between pings. */
  readonly interval: number;
  /** Milliseconds to wait for the pong. */
  readonly timeout: number;
}

/**
 * Keepalive: ping every `interval` ms; if no pong comes within `timeout` ms,
 * drop the connection (reported locally as 1006).
 *
 * @example
 * ```ts
 * import type { KeepaliveOptions } from "@wsstream/wsstream";
 * const keepalive: KeepaliveOptions = { interval: 30_000, timeout: 30_000 };
 * ```
 */
export interface KeepaliveOptions {
  /** Milliseconds between pings. */
  interval: number;
  /** Milliseconds to wait for the pong (default: `interval`). */
  timeout?: number | undefined;
}

/**
 * Options that shape a connection, shared by `takeover`, `connect` and
 * `serve`.
 *
 * @example
 * ```ts
 * import type { ConnectionOptions } from "@wsstream/wsstream";
 * const options: ConnectionOptions = {
 *   maxMessageSize: 1 << 20,
 *   keepalive: { interval: 10_000 },
 *   onPing: (payload) => console.log("ping", payload),
 * };
 * ```
 */
export interface ConnectionOptions {
  /** The largest message accepted, in bytes (default 16 MiB); larger fail with 1009. */
  maxMessageSize?: number | undefined;
  /** The most frames one message may come in (default 131 072). */
  maxFragments?: number | undefined;
  /**
   * Ping the peer every `interval` ms and drop it when no pong comes within
   * `timeout`. `false` turns it off. Default: on at 30 s for servers, off for
   * clients (as in tcllib's websocket).
   */
  keepalive?: KeepaliveOptions | false | undefined;
  /**
   * How long to wait for the close handshake to finish after sending or
   * receiving a close frame, in ms, before dropping the socket (default 10 000).
   */
  closeTimeout?: number | undefined;
  /** How many received messages to queue before reading pauses (default 16). */
  highWaterMark?: number | undefined;
  /** Called with each ping received (it has already been answered). */
  onPing?: ((payload: Uint8Array) => void) | undefined;
  /** Called with each pong received. */
  onPong?: ((payload: Uint8Array) => void) | undefined;
  /** Where client masking keys come from; for tests. */
  maskSource?: (() => Uint8Array) | undefined;
}

/**
 * {@link ConnectionOptions} resolved, checked and frozen: what a connection
 * reads its limits and hooks from. One object serves every connection of a
 * server (or of one `connect` or `takeover` call); it is also the options
 * of each connection's {@link Protocol}.
 */
export interface ConnectionSettings extends ProtocolOptions {
  readonly role: Role;
  readonly maxMessageSize: number;
  readonly maxFragments: number;
  readonly maskSource: (() => Uint8Array) | undefined;
  readonly buffers: PayloadBuffers;
  readonly highWaterMark: number;
  readonly closeTimeout: number;
  /** Keepalive's settings, with `timeout` filled in, or `null` for none. */
  readonly keepalive: KeepaliveSettings | null;
  readonly onPing: ((payload: Uint8Array) => void) | undefined;
  readonly onPong: ((payload: Uint8Array) => void) | undefined;
}

/**
 * Checks `options` and resolves them for connections in `role`: a
 * `RangeError` or `TypeError` names the first bad one. The result is frozen
 * and copies what it keeps, so changing `options` later changes nothing.
 *
 * @param options The caller's options.
 * @param role Our end of the connections.
 * @param buffers How payload copies are made (the runtime's).
 * @returns The settings.
 */
export function connectionSettings(
  options: ConnectionOptions,
  role: Role,
  buffers: PayloadBuffers = plainPayloadBuffers,
): ConnectionSettings {
  if (role !== "client" && role !== "server") {
    throw new TypeError(
      `Invalid role ${JSON.stringify(role)}: use "client" or "server"`,
    );
  }
  checkPositive("maxMessageSize", options.maxMessageSize);
  checkPositive("maxFragments", options.maxFragments);
  checkPositive("closeTimeout", options.closeTimeout);
  checkPositive("highWaterMark", options.highWaterMark);
  checkFunction("onPing", options.onPing);
  checkFunction("onPong", options.onPong);
  checkFunction("maskSource", options.maskSource);
  const keepalive = options.keepalive ??
    (role === "server" ? SERVER_KEEPALIVE : false);
  if (keepalive !== false) {
    if (keepalive === null || typeof keepalive !== "object") {
      throw new TypeError(
        "keepalive must be { interval, timeout? } or false",
      );
    }
    if (keepalive.interval === undefined) {
      throw new RangeError("keepalive.interval is required");
    }
    checkPositive("keepalive.interval", keepalive.interval);
    checkPositive("keepalive.timeout", keepalive.timeout);
  }
  return Object.freeze({
    role,
    maxMessageSize: options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
    maxFragments: options.maxFragments ?? DEFAULT_MAX_FRAGMENTS,
    // One pool of random keys for all the connections of these settings.
    maskSource: role === "client"
      ? options.maskSource ?? randomMaskSource()
      : undefined,
    buffers,
    highWaterMark: options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK,
    closeTimeout: options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT,
    // A copy: the caller's object changed later must not change the pings.
    keepalive: keepalive === false
      ? null
      : keepalive === SERVER_KEEPALIVE
      ? SERVER_KEEPALIVE
      : Object.freeze({
        interval: keepalive.interval,
        timeout: keepalive.timeout ?? keepalive.interval,
      }),
    onPing: options.onPing,
    onPong: options.onPong,
  });
}

function checkPositive(name: string, value: number | undefined): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(`${name} must be a positive number, got ${value}`);
  }
}

function checkFunction(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== "function") {
    throw new TypeError(`${name} must be a function, got ${typeof value}`);
  }
}

/**
 * What can be sent: a string (text), bytes (binary), or a stream or async
 * iterable of chunks, sent as one fragmented message without buffering it
 * whole (strings make it a text message, bytes a binary one).
 *
 * @example
 * ```ts
 * import type { Sendable } from "@wsstream/wsstream";
 * const messages: Sendable[] = ["hi", new Uint8Array([1]), ReadableStream.from(["a", "b"])];
 * ```
 */
export type Sendable =
  | string
  | ArrayBuffer
  | ArrayBufferView
  | ReadableStream<Uint8Array | string>
  | AsyncIterable<Uint8Array | string>;

/**
 * Options for `WebSocketConnection.send` and
 * `WebSocketConnection.openMessage`.
 *
 * @example
 * ```ts
 * import type { SendOptions } from "@wsstream/wsstream";
 * const asText: SendOptions = { type: "text" };
 * ```
 */
export interface SendOptions {
  /** Send bytes as text (they must be UTF-8), or a string as binary (its UTF-8). */
  type?: "text" | "binary" | undefined;
  /**
   * `false` sends this message as it is, even when an agreed extension
   * such as permessage-deflate would compress it (already compressed data,
   * or a secret next to attacker-chosen text: see CRIME/BREACH).
   */
  compress?: boolean | undefined;
}

/**
 * What `close()` takes: the close code and reason, named as WHATWG's
 * `WebSocketStream.close()` names them.
 *
 * @example
 * ```ts
 * import type { CloseOptions } from "@wsstream/wsstream";
 * const options: CloseOptions = { closeCode: 4000, reason: "done" };
 * ```
 */
export interface CloseOptions {
  /** The close code (default 1000). */
  closeCode?: number | undefined;
  /** The reason (default: the code's standard reason); at most 123 bytes of UTF-8. */
  reason?: string | undefined;
}

/**
 * What a connection is told of its handshake, with the options that shape
 * it: what `WebSocketConnection`'s constructor takes (`takeover`'s
 * options, less where to keep it).
 *
 * @example
 * ```ts
 * import type { ConnectionSetup } from "@wsstream/wsstream";
 * const setup: ConnectionSetup = { role: "server", protocol: "chat", path: "/chat" };
 * ```
 */
export interface ConnectionSetup extends ConnectionOptions {
  /** Our end: `client` masks what it sends, `server` expects masked frames. */
  role: Role;
  /** Bytes already read past the handshake: the first frames. */
  head?: Uint8Array | undefined;
  /** The subprotocol agreed in the handshake ("" for none). */
  protocol?: string | undefined;
  /** The extensions agreed in the handshake. */
  extensions?: ExtensionOffer[] | undefined;
  /** The request path (and query) of the handshake. */
  path?: string | undefined;
}

/**
 * A snapshot of a connection's state and counters.
 *
 * @example
 * ```ts
 * import type { ConnectionInfo } from "@wsstream/wsstream";
 * function describe(info: ConnectionInfo): string {
 *   return `${info.role} ${info.state} ${info.remoteAddr?.hostname}:${info.remoteAddr?.port}`;
 * }
 * ```
 */
export interface ConnectionInfo {
  /** `client` or `server`. */
  role: Role;
  /** Where the connection stands. */
  state: ConnectionState;
  /**
   * Our address, if on a socket. On Bun it is read from the socket the
   * first time it is asked for (a system call each), and kept; first asked
   * for once the socket has closed, it is `null`.
   */
  localAddr: Address | null;
  /** The peer's address, if on a socket; on Bun, read as `localAddr` is. */
  remoteAddr: Address | null;
  /** The agreed subprotocol ("" for none). */
  protocol: string;
  /** The agreed extensions. */
  extensions: ExtensionOffer[];
  /** The request path and query of the handshake. */
  path: string;
  /** Bytes received, frame headers included. */
  bytesReceived: number;
  /** Bytes sent, frame headers included. */
  bytesSent: number;
  /** Whole messages received. */
  messagesReceived: number;
  /** Whole messages sent. */
  messagesSent: number;
}

/** Throws a TypeError unless `type` is a message type (or not given). */
export function checkType(type: unknown): void {
  if (type !== undefined && type !== "text" && type !== "binary") {
    throw new TypeError(
      `Invalid message type ${JSON.stringify(type)}: use "text" or "binary"`,
    );
  }
}

/**
 * The connection's life: `open` (messages flow both ways), `closing` (a
 * close frame was sent or received; the close handshake is under way),
 * `closed`. A connection exists only once its opening handshake is done, so
 * there is no `connecting`.
 *
 * @example
 * ```ts
 * import type { ConnectionState } from "@wsstream/wsstream";
 * const state: ConnectionState = "open";
 * ```
 */
export type ConnectionState = "open" | "closing" | "closed";
