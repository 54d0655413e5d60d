/**
 * A connection's pings awaiting their pong: `ping()`'s payloads, checked
 * and made here, and the promises a matching pong settles. A connection
 * makes its {@link PendingPings} on its first `ping()`, so most hold none.
 *
 * @module
 */

import type { ConnectionClosedError } from "./errors.ts";
import { describe } from "./_connection_streams.ts";

const encoder = new TextEncoder();

interface PendingPing {
  payload: Uint8Array;
  started: number;
  resolve: (rtt: number) => void;
  reject: (error: unknown) => void;
}

/** One connection's pings, oldest first. */
export class PendingPings {
  /** Pings awaiting their pong. */
  #pings: PendingPing[] = [];
  #counter = 0;

  /**
   * The payload of a ping of `data`: by default a unique 8-byte one.
   *
   * @throws {TypeError} for `data` neither a string nor a `Uint8Array`.
   * @throws {RangeError} for a payload over 125 bytes.
   */
  payloadOf(data: Uint8Array | string | undefined): Uint8Array {
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
    return payload;
  }

  /** A ping of `payload` was sent: resolves with its round trip in ms. */
  add(payload: Uint8Array): Promise<number> {
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
