/**
 * The client's side of the opening handshake (RFC 6455 §4.1): building its
 * request, and checking the server's response as "the client MUST validate"
 * it.
 *
 * Pure: no sockets, no timers (SHA-1 is `sha1.ts`). A refusal or a wrong
 * answer is a {@linkcode HandshakeError} whose `status` is the one the
 * server answered with, and whose `headers` are the response's.
 *
 * @module
 */

import { HandshakeError } from "./errors.ts";
import { computeAccept } from "./handshake.ts";
import {
  type ExtensionOffer,
  formatExtensions,
  hasToken,
  parseExtensions,
} from "./handshake_headers.ts";
import type { RequestHead, ResponseHead } from "./http1_parse.ts";
import { show, TOKEN } from "./_http_syntax.ts";
import { fieldsOf } from "./_header_fields.ts";
import { CLIENT_SCHEMES, KEY, refuseOwned } from "./_handshake_rules.ts";

/**
 * What a client needs to build its handshake request.
 *
 * @example
 * ```ts
 * import { generateKey, type ClientHandshakeOptions } from "@wsstream/wsstream/codec";
 *
 * const options: ClientHandshakeOptions = {
 *   url: new URL("wss://example.com/chat"),
 *   key: generateKey(),
 *   protocols: ["chat.v2"],
 * };
 * ```
 */
export interface ClientHandshakeOptions {
  /** The `ws:`, `wss:`, `http:` or `https:` URL, without a fragment. */
  url: URL;
  /** The `Sec-WebSocket-Key`, from {@linkcode generateKey}. */
  key: string;
  /** Subprotocols to offer, most preferred first. */
  protocols?: string[];
  /** Extensions to offer, in order. */
  extensions?: ExtensionOffer[];
  /**
   * Extra header fields (`Authorization`, `Origin`, `Cookie` …). They may
   * replace `Host`, but not the fields the handshake itself sets.
   */
  headers?: HeadersInit;
}

/**
 * Builds the client's handshake request (RFC 6455 §4.1): `GET` of the URL's
 * path and query over HTTP/1.1 with `Host`, `Upgrade: websocket`,
 * `Connection: Upgrade`, `Sec-WebSocket-Key` and `Sec-WebSocket-Version: 13`,
 * plus `Sec-WebSocket-Protocol` and `Sec-WebSocket-Extensions` when there is
 * something to offer. Write it with {@linkcode writeRequestHead}.
 *
 * `Host` carries the port only when it is not the scheme's default (80 for
 * `ws:`/`http:`, 443 for `wss:`/`https:`), and IPv6 addresses in brackets.
 * User headers are added; a user `Host` replaces the URL's (for connecting
 * to an address while naming a virtual host).
 *
 * @param options The URL, key, offers and extra headers.
 * @returns The request head.
 * @throws {TypeError} If the URL has another scheme, a fragment or
 * credentials; the key is not base64 of 16 bytes; a subprotocol is not a
 * token or is repeated; or `headers` sets a field the handshake owns.
 *
 * @example Building a request
 * ```ts
 * import { buildClientRequest } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const head = buildClientRequest({
 *   url: new URL("ws://[::1]:8080/chat?room=1"),
 *   key: "dGhlIHNhbXBsZSBub25jZQ==",
 *   protocols: ["chat"],
 * });
 * assert.equal(head.target, "/chat?room=1");
 * assert.equal(head.headers.get("host"), "[::1]:8080");
 * assert.equal(head.headers.get("sec-websocket-protocol"), "chat");
 * ```
 */
export function buildClientRequest(
  options: ClientHandshakeOptions,
): RequestHead {
  const { url, key, protocols = [], extensions = [] } = options;
  if (!CLIENT_SCHEMES.has(url.protocol)) {
    throw new TypeError(
      `Cannot open a WebSocket to ${url.protocol} URL: use ws: or wss:`,
    );
  }
  // RFC 6455 §3: "Fragment identifiers are meaningless in the context of
  // WebSocket URIs and MUST NOT be used on these URIs."
  if (url.href.includes("#")) {
    throw new TypeError("A WebSocket URL must not have a fragment");
  }
  if (url.username !== "" || url.password !== "") {
    throw new TypeError(
      "Credentials in a WebSocket URL are not sent: pass an Authorization header in `headers` instead",
    );
  }
  if (!KEY.test(key)) {
    throw new TypeError(
      `Invalid Sec-WebSocket-Key ${show(key)}: must be base64 of 16 bytes`,
    );
  }
  for (const [index, protocol] of protocols.entries()) {
    if (!TOKEN.test(protocol)) {
      throw new TypeError(
        `Invalid subprotocol ${show(protocol)}: not a token`,
      );
    }
    if (protocols.indexOf(protocol) !== index) {
      throw new TypeError(`Subprotocol ${protocol} is listed twice`);
    }
  }
  const headers = new Headers(options.headers);
  refuseOwned(headers, "client");
  // URL.host already leaves out a default port (80 for ws:, 443 for wss:)
  // and brackets IPv6 addresses, as RFC 6455 §4.1 item 4 and RFC 9110 §7.2
  // want for Host.
  if (!headers.has("host")) headers.set("host", url.host);
  headers.set("upgrade", "websocket");
  headers.set("connection", "Upgrade");
  headers.set("sec-websocket-key", key);
  headers.set("sec-websocket-version", "13");
  if (protocols.length > 0) {
    headers.set("sec-websocket-protocol", protocols.join(", "));
  }
  if (extensions.length > 0) {
    headers.set("sec-websocket-extensions", formatExtensions(extensions));
  }
  return {
    method: "GET",
    // A WebSocket URL's path is never empty for these special schemes, but
    // the request-target must not be, so make sure.
    target: (url.pathname || "/") + url.search,
    version: "HTTP/1.1",
    headers,
  };
}

/**
 * Checks the server's response to a client's handshake (RFC 6455 §4.1, "the
 * client MUST validate the server's response as follows"): status 101,
 * `Upgrade: websocket`, `Connection: Upgrade` (token lists,
 * case-insensitive), the right `Sec-WebSocket-Accept`, and no subprotocol or
 * extension the client did not offer.
 *
 * A server may pick no subprotocol even when some were offered; the result
 * is then `""`.
 *
 * @param head The parsed response head.
 * @param options The key sent and what was offered.
 * @returns The subprotocol chosen (`""` for none) and the extensions accepted.
 * @throws {HandshakeError} With the response's status (and its headers) when
 * the server refused or answered wrongly.
 *
 * @example
 * ```ts
 * import { computeAccept, validateServerResponse } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const key = "dGhlIHNhbXBsZSBub25jZQ==";
 * const result = await validateServerResponse(
 *   {
 *     version: "HTTP/1.1",
 *     status: 101,
 *     statusText: "Switching Protocols",
 *     headers: new Headers({
 *       upgrade: "websocket",
 *       connection: "Upgrade",
 *       "sec-websocket-accept": await computeAccept(key),
 *       "sec-websocket-protocol": "chat",
 *     }),
 *   },
 *   { key, protocols: ["chat"], extensions: [] },
 * );
 * assert.deepEqual(result, { protocol: "chat", extensions: [] });
 * ```
 */
export async function validateServerResponse(
  head: ResponseHead,
  options: { key: string; protocols: string[]; extensions: ExtensionOffer[] },
): Promise<{ protocol: string; extensions: ExtensionOffer[] }> {
  const fail = (message: string) =>
    new HandshakeError(message, head.status, { headers: head.headers });
  // §4.1: "If the status code received from the server is not 101, the
  // client handles the response per HTTP procedures."
  if (head.status !== 101) {
    throw fail(
      `Server refused the WebSocket upgrade with ${head.status}${
        head.statusText === "" ? "" : ` ${head.statusText}`
      }`,
    );
  }
  // Looked up without making head.headers, which the caller may never read.
  const headers = fieldsOf(head);
  // §4.1: "If the response lacks an |Upgrade| header field or the |Upgrade|
  // header field contains a value that is not an ASCII case-insensitive
  // match for the value "websocket", the client MUST _Fail the WebSocket
  // Connection_."
  if (!hasToken(headers.get("upgrade"), "websocket")) {
    throw fail(
      `Invalid 101 response: Upgrade is ${
        _showHeader(headers.get("upgrade"))
      }, expected websocket`,
    );
  }
  // §4.1: "If the response lacks a |Connection| header field or the
  // |Connection| header field doesn't contain a token that is an ASCII
  // case-insensitive match for the value "Upgrade", the client MUST _Fail
  // the WebSocket Connection_."
  if (!hasToken(headers.get("connection"), "upgrade")) {
    throw fail(
      `Invalid 101 response: Connection is ${
        _showHeader(headers.get("connection"))
      }, expected Upgrade`,
    );
  }
  // §4.1: "If the response lacks a |Sec-WebSocket-Accept| header field or
  // the |Sec-WebSocket-Accept| contains a value other than the
  // base64-encoded SHA-1 of the concatenation of the |Sec-WebSocket-Key| ...
  // with the string "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" but ignoring any
  // leading and trailing whitespace, the client MUST _Fail the WebSocket
  // Connection_." (Headers has already trimmed the whitespace.)
  const accept = headers.get("sec-websocket-accept");
  const expected = await computeAccept(options.key);
  if (accept !== expected) {
    throw fail(
      accept === null
        ? "Invalid 101 response: Sec-WebSocket-Accept is missing"
        : `Invalid 101 response: Sec-WebSocket-Accept is ${
          show(accept)
        }, expected ${expected}`,
    );
  }
  // §4.1: "If the response includes a |Sec-WebSocket-Protocol| header field
  // and this header field indicates the use of a subprotocol that was not
  // present in the client's handshake ..., the client MUST _Fail the
  // WebSocket Connection_."
  const protocol = headers.get("sec-websocket-protocol") ?? "";
  if (protocol !== "" && !options.protocols.includes(protocol)) {
    throw fail(
      options.protocols.length === 0
        ? `Server selected subprotocol ${
          show(protocol)
        }, but the client offered none`
        : `Server selected subprotocol ${
          show(protocol)
        }, which the client did not offer (offered: ${
          options.protocols.join(", ")
        })`,
    );
  }
  // §4.1: "If the response includes a |Sec-WebSocket-Extensions| header
  // field and this header field indicates the use of an extension that was
  // not present in the client's handshake ..., the client MUST _Fail the
  // WebSocket Connection_."
  let extensions: ExtensionOffer[];
  try {
    extensions = parseExtensions(headers.get("sec-websocket-extensions"));
  } catch (error) {
    throw new HandshakeError(
      `Invalid 101 response: ${(error as Error).message}`,
      head.status,
      { headers: head.headers, cause: error },
    );
  }
  for (const extension of extensions) {
    if (!options.extensions.some((offer) => offer.name === extension.name)) {
      throw fail(
        `Server accepted extension ${extension.name}, which the client did not offer`,
      );
    }
  }
  return { protocol, extensions };
}

function _showHeader(value: string | null): string {
  return value === null ? "missing" : show(value);
}
