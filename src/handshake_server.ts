/**
 * The server's side of the opening handshake (RFC 6455 §4.2): checking the
 * client's request, and answering it with a 101 or a refusal.
 *
 * Pure: no sockets, no timers, nothing awaited. Every refusal is a
 * {@linkcode HandshakeError} whose `status` is the HTTP status to answer
 * with, and whose `headers` are the ones the refusal must carry;
 * {@linkcode refusalResponse} turns it into bytes.
 *
 * @module
 */

import { HandshakeError } from "./errors.ts";
import { computeAcceptSync } from "./handshake.ts";
import {
  type ExtensionOffer,
  formatExtensions,
  hasToken,
  parseExtensions,
  parseProtocols,
} from "./handshake_headers.ts";
import type { RequestHead } from "./http1_parse.ts";
import {
  reasonPhrase,
  writeResponse,
  writeResponseHead,
} from "./http1_write.ts";
import { show, TOKEN } from "./_http_syntax.ts";
import { fieldsOf, lazyFieldsOf, withLazyHeaders } from "./_header_fields.ts";
import { CLIENT_SCHEMES, KEY, refuseOwned } from "./_handshake_rules.ts";

/**
 * A handshake request that {@linkcode validateClientRequest} accepted: what
 * a server needs to decide whether, and how, to accept it.
 *
 * @example
 * ```ts
 * import type { UpgradeRequest } from "@wsstream/wsstream/codec";
 *
 * function room(request: UpgradeRequest): string | null {
 *   return new URLSearchParams(request.query).get("room");
 * }
 * ```
 */
export interface UpgradeRequest {
  /** Always `GET`. */
  method: string;
  /** The request target as sent. */
  target: string;
  /** The path, not percent-decoded (`/chat`). */
  path: string;
  /** The query without its `?`, not decoded (`room=1`), `""` for none. */
  query: string;
  /** All the request's header fields. */
  headers: Headers;
  /** The `Sec-WebSocket-Key`, checked to be base64 of 16 bytes. */
  key: string;
  /** The subprotocols offered, most preferred first. */
  protocols: string[];
  /** The extensions offered, in order. */
  extensions: ExtensionOffer[];
}

/**
 * Checks a client's handshake request as RFC 6455 §4.2.1 requires of a
 * server, and refuses it with the right status and headers:
 *
 * | problem | status | headers |
 * | --- | --- | --- |
 * | method not `GET` | 405 | `Allow: GET` |
 * | version below HTTP/1.1, or not 1.x | 505 | |
 * | `Host` missing, empty, repeated or not `host[:port]` | 400 | |
 * | `Upgrade` lacks `websocket` (not a WebSocket request) | 426 | `Upgrade: websocket` |
 * | `Connection` lacks `upgrade` | 400 | |
 * | `Sec-WebSocket-Version` missing or not 13 | 426 | `Sec-WebSocket-Version: 13` |
 * | `Sec-WebSocket-Key` missing, repeated or not base64 of 16 bytes | 400 | |
 * | target not a path or an absolute ws/http URL | 400 | |
 * | malformed `Sec-WebSocket-Protocol` or `-Extensions` | 400 | |
 *
 * HTTP/1.0 gets 505 rather than 400 because the version is what is wrong,
 * and 505 says so to the client (RFC 6455 §4.1: "the HTTP version MUST be at
 * least 1.1"). A request built from a `Headers` that joined repeated fields
 * is still caught: a comma in `Host` or the key means it was repeated.
 *
 * @param head The parsed request head.
 * @returns The request's path, query, key and offers.
 * @throws {HandshakeError} The refusal, as above.
 *
 * @example Accepting a request
 * ```ts
 * import { validateClientRequest } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const request = validateClientRequest({
 *   method: "GET",
 *   target: "/chat?room=1",
 *   version: "HTTP/1.1",
 *   headers: new Headers({
 *     host: "example.com",
 *     upgrade: "websocket",
 *     connection: "keep-alive, Upgrade",
 *     "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
 *     "sec-websocket-version": "13",
 *     "sec-websocket-protocol": "chat.v2, chat.v1",
 *   }),
 * });
 * assert.equal(request.path, "/chat");
 * assert.equal(request.query, "room=1");
 * assert.deepEqual(request.protocols, ["chat.v2", "chat.v1"]);
 * ```
 *
 * @example Refusing an old version
 * ```ts
 * import { HandshakeError, validateClientRequest } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * assert.throws(
 *   () =>
 *     validateClientRequest({
 *       method: "GET",
 *       target: "/",
 *       version: "HTTP/1.1",
 *       headers: new Headers({
 *         host: "example.com",
 *         upgrade: "websocket",
 *         connection: "Upgrade",
 *         "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
 *         "sec-websocket-version": "8",
 *       }),
 *     }),
 *   (error) =>
 *     error instanceof HandshakeError && error.status === 426 &&
 *     error.headers.get("sec-websocket-version") === "13",
 * );
 * ```
 */
export function validateClientRequest(head: RequestHead): UpgradeRequest {
  const { method, target, version } = head;
  // Looked up without making head.headers: a server's hooks may never read
  // it (see _header_fields.ts).
  const headers = fieldsOf(head);
  // §4.1: "The method of the request MUST be GET". RFC 9110 §15.5.6: "The
  // origin server MUST generate an Allow header field in a 405 response".
  if (method !== "GET") {
    throw new HandshakeError(
      `Method ${
        show(method)
      } is not allowed for a WebSocket handshake; use GET`,
      405,
      { headers: { allow: "GET" } },
    );
  }
  // §4.1: "the HTTP version MUST be at least 1.1."
  if (version !== "HTTP/1.1" && !LATER_HTTP_1.test(version)) {
    throw new HandshakeError(
      `Unsupported HTTP version ${
        show(version)
      }: a WebSocket handshake needs HTTP/1.1`,
      505,
    );
  }
  // §4.2.1: "A |Host| header field containing the server's authority." RFC
  // 9112 §3.2: a server "MUST respond with a 400 (Bad Request) status code to
  // any HTTP/1.1 request message that lacks a Host header field and to any
  // request message that contains more than one Host header field line or a
  // Host header field with an invalid field value."
  const host = headers.get("host");
  if (host === null) throw new HandshakeError("Missing Host header", 400);
  if (host === "") throw new HandshakeError("Empty Host header", 400);
  if (host.includes(",")) {
    throw new HandshakeError("Host header appears more than once", 400);
  }
  // RFC 9110 §7.2: Host = uri-host [ ":" port ]; anything else is the
  // "invalid field value" RFC 9112 §3.2 answers with 400.
  if (!HOST.test(host)) {
    throw new HandshakeError(
      `Invalid Host header ${show(host)}: expected host[:port]`,
      400,
    );
  }
  // §4.2.1: "An |Upgrade| header field containing the value "websocket",
  // treated as an ASCII case-insensitive value." RFC 9110 §15.5.22: "The
  // server MUST send an Upgrade header field in a 426 response".
  const upgrade = headers.get("upgrade");
  if (!hasToken(upgrade, "websocket")) {
    throw new HandshakeError(
      upgrade === null
        ? "Not a WebSocket request: the Upgrade header is missing"
        : `Not a WebSocket request: Upgrade is ${
          show(upgrade)
        }, expected websocket`,
      426,
      { headers: UPGRADE_REQUIRED },
    );
  }
  // §4.2.1: "A |Connection| header field that includes the token "Upgrade",
  // treated as an ASCII case-insensitive value."
  const connection = headers.get("connection");
  if (!hasToken(connection, "upgrade")) {
    throw new HandshakeError(
      connection === null
        ? "Missing Connection header: a WebSocket handshake needs Connection: Upgrade"
        : `Connection is ${show(connection)}; it must include Upgrade`,
      400,
    );
  }
  // §4.4: "If this version does not match a version understood by the
  // server, the server MUST abort the WebSocket handshake ... and instead
  // send an appropriate HTTP error code (such as 426 Upgrade Required) and a
  // |Sec-WebSocket-Version| header field indicating the version(s) the server
  // is capable of understanding."
  const wsVersion = headers.get("sec-websocket-version");
  if (wsVersion !== "13") {
    throw new HandshakeError(
      wsVersion === null
        ? "Missing Sec-WebSocket-Version header; this server speaks 13"
        : `Unsupported Sec-WebSocket-Version: ${
          show(wsVersion)
        }; this server speaks 13`,
      426,
      { headers: { ...UPGRADE_REQUIRED, "sec-websocket-version": "13" } },
    );
  }
  // §4.2.1: "A |Sec-WebSocket-Key| header field with a base64-encoded value
  // that, when decoded, is 16 bytes in length." §11.3.1: it "MUST NOT appear
  // more than once in an HTTP request."
  const key = headers.get("sec-websocket-key");
  if (key === null) {
    throw new HandshakeError("Missing Sec-WebSocket-Key header", 400);
  }
  if (key.includes(",")) {
    throw new HandshakeError(
      "Sec-WebSocket-Key header appears more than once",
      400,
    );
  }
  if (!KEY.test(key)) {
    throw new HandshakeError(
      `Invalid Sec-WebSocket-Key ${show(key)}: must be base64 of 16 bytes`,
      400,
    );
  }
  // §4.2.1: "The request-target ... should be interpreted as a /resource
  // name/ ... (or an absolute HTTP/HTTPS URI containing the /resource
  // name/)."
  let path: string;
  let query: string;
  if (target.startsWith("/")) {
    const mark = target.indexOf("?");
    path = mark === -1 ? target : target.slice(0, mark);
    query = mark === -1 ? "" : target.slice(mark + 1);
  } else {
    const url = _parseUrl(target);
    if (url === null || !CLIENT_SCHEMES.has(url.protocol)) {
      throw new HandshakeError(
        `Invalid request target ${
          show(target)
        }: expected a path or an absolute ws: or http: URL`,
        400,
      );
    }
    path = url.pathname;
    query = url.search.slice(1);
  }
  const request = {
    method,
    target,
    path,
    query,
    key,
    protocols: parseProtocols(headers.get("sec-websocket-protocol")),
    extensions: parseExtensions(headers.get("sec-websocket-extensions")),
  };
  // The head's own Headers when it has one, else one made when first read
  // (the same object head.headers then gives).
  const fields = lazyFieldsOf(head);
  return fields === undefined
    ? { ...request, headers: head.headers }
    : withLazyHeaders(request, fields);
}

/**
 * Tells whether a request asks for a WebSocket (its `Upgrade` holds the
 * `websocket` token), so a server can send other requests to an HTTP
 * handler instead of refusing them with 426.
 *
 * @param head The parsed request head.
 * @returns Whether it is a WebSocket upgrade request.
 *
 * @example
 * ```ts
 * import { isWebSocketRequest } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const head = {
 *   method: "GET",
 *   target: "/",
 *   version: "HTTP/1.1",
 *   headers: new Headers({ host: "a", upgrade: "WebSocket" }),
 * };
 * assert.equal(isWebSocketRequest(head), true);
 * ```
 */
export function isWebSocketRequest(head: RequestHead): boolean {
  return hasToken(fieldsOf(head).get("upgrade"), "websocket");
}

/**
 * Builds the server's 101 response accepting a handshake (RFC 6455 §4.2.2),
 * with `Upgrade`, `Connection`, `Sec-WebSocket-Accept`, and the chosen
 * subprotocol and extensions.
 *
 * @param request The request {@linkcode validateClientRequest} accepted.
 * @param options The subprotocol chosen (see {@linkcode selectSubprotocol}),
 * the extensions accepted, and extra header fields (`Set-Cookie` …).
 * @returns The response bytes to send.
 * @throws {TypeError} If the subprotocol or an extension was not offered by
 * the client, or `headers` sets a field the handshake owns.
 *
 * @example
 * ```ts
 * import { buildServerResponse, validateClientRequest } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const request = validateClientRequest({
 *   method: "GET",
 *   target: "/",
 *   version: "HTTP/1.1",
 *   headers: new Headers({
 *     host: "example.com",
 *     upgrade: "websocket",
 *     connection: "Upgrade",
 *     "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
 *     "sec-websocket-version": "13",
 *   }),
 * });
 * const text = new TextDecoder().decode(await buildServerResponse(request, {}));
 * assert.ok(text.startsWith("HTTP/1.1 101 Switching Protocols\r\n"));
 * assert.ok(text.includes("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
 * ```
 */
// Async to keep its signature (the accept key was once awaited).
// deno-lint-ignore require-await
export async function buildServerResponse(
  request: UpgradeRequest,
  options: {
    protocol?: string;
    extensions?: ExtensionOffer[];
    headers?: HeadersInit;
  },
): Promise<Uint8Array> {
  const { protocol = "", extensions = [] } = options;
  // §4.2.2: the subprotocol "MUST be derived from the client's handshake,
  // specifically by selecting one of the values from the
  // |Sec-WebSocket-Protocol| field".
  if (protocol !== "" && !request.protocols.includes(protocol)) {
    throw new TypeError(
      `Cannot select subprotocol ${
        show(protocol)
      }: the client did not offer it`,
    );
  }
  for (const extension of extensions) {
    if (!request.extensions.some((offer) => offer.name === extension.name)) {
      throw new TypeError(
        `Cannot accept extension ${
          show(extension.name)
        }: the client did not offer it`,
      );
    }
  }
  const accept = computeAcceptSync(request.key);
  // Every accepted connection comes here, mostly with no extra fields: the
  // bytes are then written directly, the same as the general path below
  // writes them (fields sorted by name), without a Headers object, whose
  // checks and sorting cost more than the rest of the response.
  if (
    extensions.length === 0 && _noFields(options.headers) &&
    (protocol === "" || TOKEN.test(protocol))
  ) {
    return _ascii(
      `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${
        protocol === "" ? "" : `Sec-WebSocket-Protocol: ${protocol}\r\n`
      }Upgrade: websocket\r\n\r\n`,
    );
  }
  const headers = new Headers(options.headers);
  refuseOwned(headers, "server");
  headers.set("upgrade", "websocket");
  headers.set("connection", "Upgrade");
  headers.set("sec-websocket-accept", accept);
  if (protocol !== "") headers.set("sec-websocket-protocol", protocol);
  if (extensions.length > 0) {
    headers.set("sec-websocket-extensions", formatExtensions(extensions));
  }
  return writeResponseHead({
    version: "HTTP/1.1",
    status: 101,
    statusText: "Switching Protocols",
    headers,
  });
}

/**
 * Writes the complete HTTP response refusing a handshake: the error's status
 * with its standard reason phrase, the error's headers, its `body` when it
 * has one, and `Connection: close`, since the connection is then closed.
 *
 * The error's message is never sent: it is for the server's logs, and may
 * name what a client should not learn (a key, a path, why a token was
 * refused). An error without a body gets a neutral one, the reason phrase
 * (`Forbidden`), as `text/plain; charset=utf-8`; one with a body is sent
 * that body, with the error's `Content-Type` if it has one (else
 * `text/plain; charset=utf-8`).
 *
 * @param error The refusal, as thrown by {@linkcode validateClientRequest},
 * {@linkcode parseRequestHead}, {@linkcode HeadParser} or a server's hook.
 * @returns The response bytes to send before closing.
 * @throws {RangeError} If the status is not a 4xx or 5xx refusal (a client
 * side error, status 0, is not a reply).
 *
 * @example A refusal with a body of its own, and one without
 * ```ts
 * import { HandshakeError, refusalResponse } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
 * const login = decode(refusalResponse(
 *   new HandshakeError("token 1234 expired", 401, {
 *     headers: { "WWW-Authenticate": "Basic" },
 *     body: "Log in first",
 *   }),
 * ));
 * assert.ok(login.startsWith("HTTP/1.1 401 Unauthorized\r\n"));
 * assert.ok(login.includes("Www-Authenticate: Basic\r\n"));
 * assert.ok(login.endsWith("\r\n\r\nLog in first"));
 * assert.ok(!login.includes("1234"));
 *
 * const method = decode(refusalResponse(
 *   new HandshakeError("Method POST is not allowed", 405, { headers: { allow: "GET" } }),
 * ));
 * assert.ok(method.includes("Allow: GET\r\n"));
 * assert.ok(method.endsWith("\r\n\r\nMethod Not Allowed"));
 * ```
 */
export function refusalResponse(error: HandshakeError): Uint8Array {
  const { status } = error;
  if (!Number.isInteger(status) || status < 400 || status > 599) {
    throw new RangeError(
      `Cannot refuse a handshake with status ${status}: expected 4xx or 5xx`,
    );
  }
  // Content-Length is written by writeResponse for this body; a stale one
  // (or a Transfer-Encoding) from the error must not contradict it.
  const headers = new Headers(error.headers);
  headers.delete("content-length");
  headers.delete("transfer-encoding");
  const phrase = reasonPhrase(status);
  // HandshakeError keeps "" for "no body given".
  let body = error.body;
  if (body === "" && phrase !== "") {
    body = phrase;
    headers.set("content-type", "text/plain; charset=utf-8");
  }
  return writeResponse(status, phrase, headers, body);
}

// RFC 3986 §3.2.2-§3.2.3: an IP literal in brackets (IPv6 or IPvFuture),
// or an IPv4 address or registered name, then an optional port.
const HOST =
  /^(?:\[(?:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*|v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+)\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+)(?::[0-9]*)?$/;
/** §4.1's "at least 1.1", past 1.1 itself (compared first, as a string). */
const LATER_HTTP_1 = /^HTTP\/1\.[1-9]$/;

const UPGRADE_REQUIRED = { upgrade: "websocket", connection: "Upgrade" };

function _parseUrl(text: string): URL | null {
  try {
    return new URL(text);
  } catch {
    return null;
  }
}

/**
 * Whether a `HeadersInit` is plainly empty: absent, `[]` or `{}`. Anything
 * else (a `Headers`, another iterable, a record with keys) is not looked
 * into here.
 */
function _noFields(init: HeadersInit | undefined): boolean {
  if (init === undefined) return true;
  if (Array.isArray(init)) return init.length === 0;
  return Object.getPrototypeOf(init) === Object.prototype &&
    Reflect.ownKeys(init).length === 0;
}

/** The bytes of a string known to be ASCII. */
function _ascii(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}
