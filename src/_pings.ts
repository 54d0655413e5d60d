/**
 * A connection's pings awaiting their pong: `ping()`'s payloads, checked
 * and made here, and the promises a matching pong settles. A connection
 * makes its {@link PendingPings} on its first `ping()`, so most hold none.
 *
 * @module
 */

import type { ConnectionState } from "./connection_options.ts";
import type { ConnectionClosedError } from "./errors.ts";
import type { Protocol } from "./protocol.ts";
import { describe } from "./_connection_streams.ts";

const encoder = new TextEncoder();

interface PendingPing {
  payload: Uint8Array;
  started: number;
  resolve: (rtt: number) => void;
  reject: (error: unknown) => void;
}

/** What a ping needs of its connection: its events object provides it. */
export interface PingHost {
  readonly state: ConnectionState;
  readonly protocol: Protocol;
  /** The error of an operation the connection cannot do (it is closing). */
  closedError(what: string, cause?: unknown): ConnectionClosedError;
}

/** One connection's pings, oldest first. */
export class PendingPings {
  /** Pings awaiting their pong. */
  #pings: PendingPing[] = [];
  #counter = 0;

  /**
   * Sends a ping of `data` (by default a unique 8-byte payload): resolves
   * with its round trip in ms when its pong comes (`WebSocketConnection`'s
   * `ping()`).
   *
   * @throws {TypeError} for `data` neither a string nor a `Uint8Array`.
   * @throws {RangeError} for a payload over 125 bytes.
   */
  ping(data: Uint8Array | string | undefined, host: PingHost): Promise<number> {
    let payload: Uint8Array;
    if (data === undefined) {
      payload = new Uint8Array(8);
      new DataView(payload.buffer).setFloat64(0, ++this.#counter);
    } else if (typeof data === "string") payload = encoder.encode(data);
    else if (data instanceof Uint8Array) payload = data.slice();
    else {
      throw new TypeError(
        `Cannot ping with ${describe(data)}: expected a string or Uint8Array`,
      );
    }
    if (payload.length > 125) {
      throw new RangeError(
        `Ping payload is ${payload.length} bytes; at most 125 are allowed`,
      );
    }
    // After a transport failure or a timeout the protocol is still "open",
    // so it would send the ping, and its promise would never settle.
    if (host.state !== "open") {
      return Promise.reject(host.closedError("ping"));
    }
    try {
      host.protocol.ping(payload);
    } catch (error) {
      return Promise.reject(host.closedError("ping", error));
    }
    return new Promise((resolve, reject) => {
      this.#pings.push({
        payload,
        started: performance.now(),
        resolve,
        reject,
      });
    });
  }

  /** A pong came: it answers its ping and every earlier one. */
  answered(payload: Uint8Array): void {
    const pings = this.#pings;
    const index = pings.findIndex((ping) => equal(ping.payload, payload));
    if (index >= 0) {
      const now = performance.now();
      for (const ping of pings.splice(0, index + 1)) {
        ping.resolve(now - ping.started);
      }
    }
  }

  /** Fails the pings waiting for their pong, if any, with `error()`. */
  rejectAll(error: () => ConnectionClosedError): void {
    const pings = this.#pings;
    if (pings.length === 0) return;
    const reason = error();
    for (const ping of pings.splice(0)) ping.reject(reason);
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
