/**
 * A network address: where a socket is bound and whom it is connected to.
 * The bottom of the channel layer, imported by the byte channel and the
 * transport interfaces alike.
 *
 * @module
 */

/**
 * A network address.
 *
 * @example
 * ```ts
 * import type { Address } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 *
 * const addr: Address = { hostname: "127.0.0.1", port: 9001 };
 * assert.equal(`${addr.hostname}:${addr.port}`, "127.0.0.1:9001");
 * ```
 */
export interface Address {
  /** The IP address (IPv6 without brackets) or host name. */
  hostname: string;
  /** The TCP port. */
  port: number;
}
