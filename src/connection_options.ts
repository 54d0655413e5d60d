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
