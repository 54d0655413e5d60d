/**
 * The header values of the opening handshake (RFC 6455 §4, §9.1) that both
 * ends read and write: `Sec-WebSocket-Extensions` offers, the
 * `Sec-WebSocket-Protocol` list and the choice of a subprotocol, and token
 * lists such as `Connection` and `Upgrade`.
 *
 * Pure: no sockets, no timers, nothing awaited. A malformed value is refused
 * with a {@linkcode HandshakeError} of status 400.
 *
 * @module
 */

import { HandshakeError } from "./errors.ts";
import { CONTROL, show, TCHAR, TOKEN } from "./_http_syntax.ts";
import { trimOWS } from "./_trim_ows.ts";

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
  const length = wanted.length;
  // A loop over the value's characters rather than split, some, trimOWS and
  // toLowerCase: no strings made, and ASCII case folding only, as RFC 6455
  // §4.2.1 asks of Upgrade and Connection. Inlined twice, that chain was half
  // of the machine code of validateClientRequest on Bun and most of its
  // compile time in JavaScriptCore's FTL tier (bench/README.md, "JIT work
  // and Bun's allocator").
  let start = 0;
  while (start <= value.length) {
    let end = value.indexOf(",", start);
    if (end === -1) end = value.length;
    let first = start;
    let last = end;
    while (first < last && isOWS(value.charCodeAt(first))) first++;
    while (last > first && isOWS(value.charCodeAt(last - 1))) last--;
    if (last - first === length) {
      let i = 0;
      while (
        i < length &&
        lowerAscii(value.charCodeAt(first + i)) === wanted.charCodeAt(i)
      ) i++;
      if (i === length) return true;
    }
    start = end + 1;
  }
  return false;
}

/** RFC 9110 §5.6.3: OWS is spaces and horizontal tabs. */
function isOWS(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

/** An ASCII upper-case letter's lower case; any other code as it is. */
function lowerAscii(code: number): number {
  return code >= 0x41 && code <= 0x5a ? code + 0x20 : code;
}
