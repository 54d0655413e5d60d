/**
 * The opening handshake (RFC 6455 §4), for both ends: the key and its
 * accept value, the client's request and its validation by the server, the
 * server's response and its validation by the client, and subprotocol and
 * extension negotiation.
 *
 * Pure: no sockets, no timers, nothing awaited (SHA-1 is `sha1.ts`). Every
 * refusal is a {@linkcode HandshakeError} whose `status` is the HTTP status
 * to answer with (server side) or the status the server answered with
 * (client side), and whose `headers` are the ones the refusal must carry;
 * {@linkcode refusalResponse} turns it into bytes.
 *
 * @module
 */

import { HandshakeError } from "./errors.ts";
import {
  reasonPhrase,
  type RequestHead,
  type ResponseHead,
  writeResponse,
  writeResponseHead,
} from "./http1.ts";
import { canonical, CONTROL, show, TCHAR, TOKEN } from "./_http_syntax.ts";
import { fieldsOf, lazyFieldsOf, withLazyHeaders } from "./_header_fields.ts";
import { trimOWS } from "./_trim_ows.ts";
import { sha1 } from "./sha1.ts";

/**
 * The GUID appended to the key before hashing (RFC 6455 §1.3): a value
 * "unlikely to be used by network endpoints that do not understand the
 * WebSocket Protocol".
 *
 * @example
 * ```ts
 * import { WEBSOCKET_GUID } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * assert.equal(WEBSOCKET_GUID.length, 36);
 * ```
 */
export const WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/**
 * Makes a `Sec-WebSocket-Key`. RFC 6455 §4.1: "The value of this header field
 * MUST be a nonce consisting of a randomly selected 16-byte value that has
 * been base64-encoded ... The nonce MUST be selected randomly for each
 * connection."
 *
 * @param random Fills the given array with random bytes and returns it;
 * `crypto.getRandomValues` by default. Tests can pass a fixed source.
 * @returns 24 characters of base64.
 * @throws {RangeError} If `random` returns other than 16 bytes.
 *
 * @example A fixed source gives a predictable key
 * ```ts
 * import { generateKey } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * assert.equal(generateKey((bytes) => bytes.fill(0)), "AAAAAAAAAAAAAAAAAAAAAA==");
 * assert.equal(generateKey().length, 24);
 * ```
 */
export function generateKey(
  random: (bytes: Uint8Array) => Uint8Array = (bytes) =>
    crypto.getRandomValues(bytes),
): string {
  const bytes = random(new Uint8Array(16));
  if (bytes.length !== 16) {
    throw new RangeError(
      `The random source returned ${bytes.length} bytes; a key needs 16`,
    );
  }
  return _base64(bytes);
}

/**
 * Computes the `Sec-WebSocket-Accept` value for a key. RFC 6455 §4.2.2: "A
 * |Sec-WebSocket-Accept| header field. The value of this header field is
 * constructed by concatenating /key/ ... with the string
 * "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", taking the SHA-1 hash of this
 * concatenated value to obtain a 20-byte value and base64-encoding".
 *
 * @param key The `Sec-WebSocket-Key`, as sent (not decoded).
 * @returns The base64 of the SHA-1 digest.
 *
 * @example The sample from RFC 6455 §1.3
 * ```ts
 * import { computeAccept } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   await computeAccept("dGhlIHNhbXBsZSBub25jZQ=="),
 *   "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
 * );
 * ```
 */
// deno-lint-ignore require-await
export async function computeAccept(key: string): Promise<string> {
  // Async only to keep its signature; the work is computeAcceptSync's.
  return computeAcceptSync(key);
}

/**
 * Computes the `Sec-WebSocket-Accept` value for a key, synchronously: the
 * same value as {@linkcode computeAccept}, with no await. The key is hashed
 * as the UTF-8 of `key + WEBSOCKET_GUID`, whatever characters it holds
 * (a client may send anything as its key; it is validated separately).
 *
 * @param key The `Sec-WebSocket-Key`, as sent (not decoded).
 * @returns The base64 of the SHA-1 digest.
 *
 * @example The sample from RFC 6455 §1.3
 * ```ts
 * import { computeAcceptSync } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   computeAcceptSync("dGhlIHNhbXBsZSBub25jZQ=="),
 *   "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
 * );
 * ```
 */
export function computeAcceptSync(key: string): string {
  const text = key + WEBSOCKET_GUID;
  let input: Uint8Array | undefined;
  // An ASCII key (every valid one is) is its own UTF-8: copy its code units
  // into a reused buffer rather than have a TextEncoder allocate the bytes
  // (a new Uint8Array, however small, costs about 0.4 µs on Deno).
  if (text.length <= ACCEPT_INPUT.length) {
    input = ACCEPT_INPUT.subarray(0, text.length);
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code > 0x7f) {
        input = undefined;
        break;
      }
      input[i] = code;
    }
  }
  const digest = sha1(input ?? new TextEncoder().encode(text), ACCEPT_DIGEST);
  // Base64 here rather than btoa() of a binary string: a fifth of the time
  // on V8 (0.09 µs against 0.45). 20 bytes are six groups of three, whose
  // four characters each come from 24 bits, and two bytes left over: three
  // characters from 16 bits, and one "=".
  const codes = ACCEPT_CODES;
  let at = 0;
  for (let i = 0; i < 18; i += 3) {
    const bits = (digest[i]! << 16) | (digest[i + 1]! << 8) | digest[i + 2]!;
    codes[at++] = BASE64[bits >>> 18]!;
    codes[at++] = BASE64[(bits >>> 12) & 63]!;
    codes[at++] = BASE64[(bits >>> 6) & 63]!;
    codes[at++] = BASE64[bits & 63]!;
  }
  const bits = (digest[18]! << 8) | digest[19]!;
  codes[at++] = BASE64[bits >>> 10]!;
  codes[at++] = BASE64[(bits >>> 4) & 63]!;
  codes[at++] = BASE64[(bits << 2) & 63]!;
  codes[at] = 0x3d; // "="
  return String.fromCharCode.apply(null, codes);
}

// computeAcceptSync's buffers, reused by every call (it never awaits, so
// calls cannot interleave): the bytes of an ASCII key of up to 220
// characters with the GUID, and the digest.
const ACCEPT_INPUT = new Uint8Array(256);
const ACCEPT_DIGEST = new Uint8Array(20);
/** The character codes of the accept value: 28 characters. */
const ACCEPT_CODES: number[] = new Array(28).fill(0);
/** The character codes of base64's alphabet (RFC 4648 §4), by value. */
const BASE64 = Uint8Array.from(
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
  (char) => char.charCodeAt(0),
);

/**
 * One extension in a `Sec-WebSocket-Extensions` header: its name and
 * parameters. A parameter without a value is `true`.
 *
 * @example
 * ```ts
 * import type { ExtensionOffer } from "@wsstream/wsstream/codec";
 *
 * const offer: ExtensionOffer = {
 *   name: "permessage-deflate",
 *   params: { client_max_window_bits: true },
 * };
 * ```
 */
export interface ExtensionOffer {
  /** The extension token (`permessage-deflate`). */
  name: string;
  /** The parameters, in the order given; `true` for one without a value. */
  params: Record<string, string | true>;
}

/**
 * Parses a `Sec-WebSocket-Extensions` value. RFC 6455 §9.1:
 *
 * ```
 * extension-list = 1#extension
 * extension = extension-token *( ";" extension-param )
 * extension-param = token [ "=" (token | quoted-string) ]
 * ```
 *
 * "When using the quoted-string syntax variant, the value after
 * quoted-string unescaping MUST conform to the 'token' ABNF." Whitespace
 * around tokens and separators is allowed, and empty list elements are
 * skipped (RFC 9110 §5.6.1), so an empty value is an empty list. Several
 * offers of one extension are kept in order: a client may offer alternatives.
 * A parameter repeated within one offer is refused, since `params` could keep
 * only one of them.
 *
 * @param value The header value, or `null` when absent.
 * @returns The offers, in order.
 * @throws {HandshakeError} With status 400 naming the problem and where.
 *
 * @example Two offers of the same extension
 * ```ts
 * import { parseExtensions } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(
 *   parseExtensions('permessage-deflate; client_max_window_bits="10", permessage-deflate'),
 *   [
 *     { name: "permessage-deflate", params: { client_max_window_bits: "10" } },
 *     { name: "permessage-deflate", params: {} },
 *   ],
 * );
 * ```
 */
export function parseExtensions(value: string | null): ExtensionOffer[] {
  if (value === null) return [];
  const offers: ExtensionOffer[] = [];
  const length = value.length;
  let i = 0;
  const fail = (problem: string) =>
    new HandshakeError(
      `Malformed Sec-WebSocket-Extensions ${
        show(value)
      }: ${problem} at offset ${i}`,
      400,
    );
  const skipSpace = () => {
    while (i < length && (value[i] === " " || value[i] === "\t")) i++;
  };
  const token = (what: string) => {
    const start = i;
    let code: number;
    while (
      i < length && (code = value.charCodeAt(i)) < 0x80 && TCHAR[code] === 1
    ) i++;
    if (i === start) throw fail(`expected ${what}`);
    return value.slice(start, i);
  };
  // RFC 9110 §5.6.4: quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
  const quoted = () => {
    i++;
    let text = "";
    for (;;) {
      if (i >= length) throw fail("unterminated quoted-string");
      const char = value[i]!;
      if (char === '"') break;
      if (char === "\\") {
        i++;
        if (i >= length) throw fail("unterminated quoted-string");
      }
      if (CONTROL.test(value[i]!)) {
        throw fail("control character in quoted-string");
      }
      text += value[i];
      i++;
    }
    i++;
    return text;
  };
  for (;;) {
    skipSpace();
    if (i >= length) break;
    if (value[i] === ",") {
      i++;
      continue;
    }
    const name = token("an extension name");
    const params: Record<string, string | true> = {};
    skipSpace();
    while (value[i] === ";") {
      i++;
      skipSpace();
      const param = token(`a parameter name for ${name}`);
      skipSpace();
      let paramValue: string | true = true;
      if (value[i] === "=") {
        i++;
        skipSpace();
        const start = i;
        if (value[i] === '"') {
          paramValue = quoted();
          if (!TOKEN.test(paramValue)) {
            i = start;
            throw fail(
              `the quoted value of ${param} is not a token once unquoted`,
            );
          }
        } else {
          paramValue = token(`a value for ${param}`);
        }
        skipSpace();
      }
      if (Object.hasOwn(params, param)) {
        throw fail(`parameter ${param} of ${name} is repeated`);
      }
      // defineProperty, not assignment: a parameter named __proto__ must
      // become a plain property, not replace the prototype.
      Object.defineProperty(params, param, {
        value: paramValue,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    offers.push({ name, params });
    if (i < length) {
      if (value[i] !== ",") throw fail('expected "," or ";"');
      i++;
    }
  }
  return offers;
}

/**
 * Writes extension offers as a `Sec-WebSocket-Extensions` value, the inverse
 * of {@linkcode parseExtensions}. Values are written bare, since RFC 6455
 * §9.1 requires them to be tokens anyway.
 *
 * @param offers The offers, in order.
 * @returns The header value (`""` for no offers).
 * @throws {TypeError} If a name, parameter name or value is not a token.
 *
 * @example
 * ```ts
 * import { formatExtensions } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   formatExtensions([
 *     { name: "permessage-deflate", params: { server_no_context_takeover: true, client_max_window_bits: "10" } },
 *   ]),
 *   "permessage-deflate; server_no_context_takeover; client_max_window_bits=10",
 * );
 * ```
 */
export function formatExtensions(offers: ExtensionOffer[]): string {
  return offers.map(({ name, params }) => {
    if (!TOKEN.test(name)) {
      throw new TypeError(`Invalid extension name ${show(name)}: not a token`);
    }
    let text = name;
    for (const [param, value] of Object.entries(params)) {
      if (!TOKEN.test(param)) {
        throw new TypeError(
          `Invalid parameter name ${show(param)} for ${name}: not a token`,
        );
      }
      if (value === true) {
        text += `; ${param}`;
      } else if (typeof value === "string" && TOKEN.test(value)) {
        text += `; ${param}=${value}`;
      } else {
        throw new TypeError(
          `Invalid value ${
            show(String(value))
          } for ${name}; ${param}: not a token`,
        );
      }
    }
    return text;
  }).join(", ");
}

/**
 * Parses a `Sec-WebSocket-Protocol` value. RFC 6455 §4.1: the value lists
 * subprotocols "ordered by preference. The elements that comprise this value
 * MUST be non-empty strings with characters in the range U+0021 to U+007E
 * not including separator characters ... and MUST all be unique strings."
 * Empty list elements are skipped (RFC 9110 §5.6.1). Names are compared
 * case-sensitively, as the server must echo one back exactly.
 *
 * @param value The header value, or `null` when absent.
 * @returns The subprotocols, in the client's order of preference.
 * @throws {HandshakeError} With status 400 for a name that is not a token or
 * a repeated name.
 *
 * @example
 * ```ts
 * import { parseProtocols } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseProtocols("chat.v2, chat.v1"), ["chat.v2", "chat.v1"]);
 * assert.deepEqual(parseProtocols(null), []);
 * ```
 */
export function parseProtocols(value: string | null): string[] {
  if (value === null) return [];
  // A Set, so a head packed with thousands of names stays linear.
  const protocols = new Set<string>();
  for (const element of value.split(",")) {
    const protocol = trimOWS(element);
    if (protocol === "") continue;
    if (!TOKEN.test(protocol)) {
      throw new HandshakeError(
        `Malformed Sec-WebSocket-Protocol: ${show(protocol)} is not a token`,
        400,
      );
    }
    if (protocols.has(protocol)) {
      throw new HandshakeError(
        `Malformed Sec-WebSocket-Protocol: ${show(protocol)} is listed twice`,
        400,
      );
    }
    protocols.add(protocol);
  }
  return [...protocols];
}

/**
 * Picks the subprotocol to use: the first in the client's list that the
 * server supports, so the client's order of preference decides (RFC 6455
 * §4.1 sends them "ordered by preference").
 *
 * @param clientProtocols What the client offered, most preferred first.
 * @param serverProtocols What the server supports, in any order.
 * @returns The subprotocol, or `null` when they share none.
 *
 * @example The client's preference wins over the server's order
 * ```ts
 * import { selectSubprotocol } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * assert.equal(selectSubprotocol(["v2", "v1"], ["v1", "v2"]), "v2");
 * assert.equal(selectSubprotocol(["v3"], ["v1", "v2"]), null);
 * ```
 */
export function selectSubprotocol(
  clientProtocols: string[],
  serverProtocols: readonly string[],
): string | null {
  return clientProtocols.find((protocol) =>
    serverProtocols.includes(protocol)
  ) ?? null;
}

/**
 * Tells whether a comma-separated header value (RFC 9110 §5.6.1) holds a
 * token, compared ASCII case-insensitively, as `Connection` and `Upgrade`
 * are (`keep-alive, Upgrade` holds `upgrade`).
 *
 * @param value The header value, or `null` when absent.
 * @param token The token to look for.
 * @returns Whether the list holds it.
 *
 * @example
 * ```ts
 * import { hasToken } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * assert.equal(hasToken("keep-alive, Upgrade", "upgrade"), true);
 * assert.equal(hasToken("upgrade-insecure", "upgrade"), false);
 * assert.equal(hasToken(null, "upgrade"), false);
 * ```
 */
export function hasToken(value: string | null, token: string): boolean {
  if (value === null) return false;
  const wanted = token.toLowerCase();
  return value.split(",").some((element) =>
    trimOWS(element).toLowerCase() === wanted
  );
}

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
  _refuseOwned(headers, "client");
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
  const match = /^HTTP\/1\.(\d)$/.exec(version);
  if (match === null || match[1] === "0") {
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
  _refuseOwned(headers, "server");
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
// 16 bytes of base64: 22 characters, then "==".
const KEY = /^[A-Za-z0-9+/]{22}==$/;
const CLIENT_SCHEMES = new Set(["ws:", "wss:", "http:", "https:"]);
const UPGRADE_REQUIRED = { upgrade: "websocket", connection: "Upgrade" };

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
function _refuseOwned(headers: Headers, side: "client" | "server"): void {
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

function _base64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

function _showHeader(value: string | null): string {
  return value === null ? "missing" : show(value);
}
