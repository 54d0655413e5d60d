/**
 * What both ends of the opening handshake check alike: the form of
 * `Sec-WebSocket-Key`, the URL schemes a WebSocket is reached by, and the
 * header fields the handshake sets itself, which user headers may not.
 * Private: not re-exported by `mod.ts`; shared by `handshake_client.ts` and
 * `handshake_server.ts`.
 *
 * @module
 */

import { canonical } from "./_http_syntax.ts";

// 16 bytes of base64: 22 characters, then "==".
export const KEY = /^[A-Za-z0-9+/]{22}==$/;
/** The schemes of a WebSocket URL, or of an absolute request target. */
export const CLIENT_SCHEMES = new Set(["ws:", "wss:", "http:", "https:"]);

// Fields the handshake sets itself on either side; letting user headers
// replace them would break (or forge) the negotiation.
const OWNED = [
  "upgrade",
  "connection",
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-extensions",
  "sec-websocket-accept",
];

/** Throws if user headers try to set a field the handshake itself sets. */
export function refuseOwned(headers: Headers, side: "client" | "server"): void {
  if (headers.has("sec-websocket-protocol")) {
    throw new TypeError(
      side === "client"
        ? "Cannot set Sec-WebSocket-Protocol in headers: use the protocols option"
        : "Cannot set Sec-WebSocket-Protocol in headers: use the protocol option",
    );
  }
  for (const name of OWNED) {
    if (headers.has(name)) {
      throw new TypeError(
        `Cannot set ${
          canonical(name)
        } in headers: the handshake sets it itself`,
      );
    }
  }
}
