/**
 * HTTP/1.1 message heads, written: request and response heads, a small
 * complete response (a handshake refusal), and the standard reason phrases.
 * Reading them is `http1_parse.ts`.
 *
 * Pure: no sockets, no timers, no awaits. Field names are written in their
 * conventional case, and every name and value is checked first, so that
 * nothing written can inject a line.
 *
 * @module
 */

import type { RequestHead, ResponseHead } from "./http1_parse.ts";
import { canonical, CONTROL, show, TOKEN } from "./_http_syntax.ts";

/**
 * Writes a request head: the request line, the header fields and the final
 * empty line, all ending with CRLF.
 *
 * Field names are written in their conventional case (`Sec-WebSocket-Key`);
 * RFC 9110 §5.1 makes them case-insensitive, but some old peers compare them
 * exactly.
 *
 * @param head The request head to write.
 * @returns The bytes to send.
 * @throws {TypeError} If the method is not a token, the target has spaces or
 * control characters, the version is malformed, or a field name or value
 * could inject lines (CR, LF, NUL or other control characters).
 *
 * @example
 * ```ts
 * import { writeRequestHead } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const bytes = writeRequestHead({
 *   method: "GET",
 *   target: "/",
 *   version: "HTTP/1.1",
 *   headers: new Headers({ host: "example.com" }),
 * });
 * assert.equal(
 *   new TextDecoder().decode(bytes),
 *   "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
 * );
 * ```
 */
export function writeRequestHead(head: RequestHead): Uint8Array {
  if (!TOKEN.test(head.method)) {
    throw new TypeError(`Invalid request method ${show(head.method)}`);
  }
  if (!TARGET.test(head.target)) {
    throw new TypeError(
      `Invalid request target ${
        show(head.target)
      }: only visible ASCII is allowed`,
    );
  }
  _checkVersion(head.version);
  return _encode(
    `${head.method} ${head.target} ${head.version}\r\n${
      _writeFields(head.headers)
    }\r\n`,
  );
}

/**
 * Writes a response head: the status line, the header fields and the final
 * empty line, all ending with CRLF. Nothing about a body is added; see
 * {@linkcode writeResponse} for a complete response.
 *
 * @param head The response head to write.
 * @returns The bytes to send.
 * @throws {RangeError} If the status is not an integer from 100 to 599.
 * @throws {TypeError} If the version is malformed, or the reason phrase or a
 * field could inject lines.
 *
 * @example
 * ```ts
 * import { writeResponseHead } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const bytes = writeResponseHead({
 *   version: "HTTP/1.1",
 *   status: 101,
 *   statusText: "Switching Protocols",
 *   headers: new Headers({ upgrade: "websocket" }),
 * });
 * assert.equal(
 *   new TextDecoder().decode(bytes),
 *   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
 * );
 * ```
 */
export function writeResponseHead(head: ResponseHead): Uint8Array {
  _checkVersion(head.version);
  if (
    !Number.isInteger(head.status) || head.status < 100 || head.status > 599
  ) {
    throw new RangeError(
      `Invalid HTTP status ${head.status}: must be an integer from 100 to 599`,
    );
  }
  if (CONTROL.test(head.statusText)) {
    throw new TypeError(
      `Invalid reason phrase ${
        show(head.statusText)
      }: control characters could inject lines`,
    );
  }
  return _encode(
    `${head.version} ${head.status} ${head.statusText}\r\n${
      _writeFields(head.headers)
    }\r\n`,
  );
}

/**
 * Writes a complete, small HTTP/1.1 response, such as a handshake refusal.
 *
 * Sets `Content-Length` (the body's UTF-8 length, 0 without a body), adds
 * `Content-Type: text/plain; charset=utf-8` when there is a body and no type
 * was given, and adds the `close` option to `Connection`: after a refusal the
 * connection is closed, and the peer should not wait for another response.
 *
 * @param status The status code (100–599).
 * @param statusText The reason phrase (may be empty).
 * @param headers Extra header fields.
 * @param body A text body.
 * @returns The bytes to send.
 * @throws {RangeError} If the status is out of range.
 * @throws {TypeError} If the reason phrase or a field could inject lines.
 *
 * @example A 404 with a text body
 * ```ts
 * import { writeResponse } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const text = new TextDecoder().decode(writeResponse(404, "Not Found", {}, "No such room"));
 * assert.ok(text.startsWith("HTTP/1.1 404 Not Found\r\n"));
 * assert.ok(text.includes("Content-Length: 12\r\n"));
 * assert.ok(text.includes("Connection: close\r\n"));
 * assert.ok(text.endsWith("\r\n\r\nNo such room"));
 * ```
 */
export function writeResponse(
  status: number,
  statusText: string,
  headers: HeadersInit,
  body?: string,
): Uint8Array {
  const fields = new Headers(headers);
  const content = _encode(body ?? "");
  if (content.length > 0 && !fields.has("content-type")) {
    fields.set("content-type", "text/plain; charset=utf-8");
  }
  fields.set("content-length", String(content.length));
  const connection = fields.get("connection");
  if (connection === null || connection === "") {
    fields.set("connection", "close");
  } else if (
    !connection.split(",").some((option) =>
      option.trim().toLowerCase() === "close"
    )
  ) {
    fields.set("connection", `${connection}, close`);
  }
  const head = writeResponseHead({
    version: "HTTP/1.1",
    status,
    statusText,
    headers: fields,
  });
  const bytes = new Uint8Array(head.length + content.length);
  bytes.set(head);
  bytes.set(content, head.length);
  return bytes;
}

/**
 * The standard reason phrase of an HTTP status code (RFC 9110 §15), for a
 * status line or a body that says no more than the status does; `""` for a
 * code without one (RFC 9112 §4: the reason-phrase may be empty, "a client
 * SHOULD ignore" it).
 *
 * @param status The status code.
 * @returns Its reason phrase, or `""`.
 *
 * @example
 * ```ts
 * import { reasonPhrase } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * assert.equal(reasonPhrase(404), "Not Found");
 * assert.equal(reasonPhrase(426), "Upgrade Required");
 * assert.equal(reasonPhrase(299), "");
 * ```
 */
export function reasonPhrase(status: number): string {
  return REASON_PHRASES.get(status) ?? "";
}

// RFC 9110 §15 (and RFC 6585 §3-§5 for 428, 429 and 431).
const REASON_PHRASES = new Map<number, string>([
  [100, "Continue"],
  [101, "Switching Protocols"],
  [200, "OK"],
  [201, "Created"],
  [202, "Accepted"],
  [203, "Non-Authoritative Information"],
  [204, "No Content"],
  [205, "Reset Content"],
  [206, "Partial Content"],
  [300, "Multiple Choices"],
  [301, "Moved Permanently"],
  [302, "Found"],
  [303, "See Other"],
  [304, "Not Modified"],
  [307, "Temporary Redirect"],
  [308, "Permanent Redirect"],
  [400, "Bad Request"],
  [401, "Unauthorized"],
  [402, "Payment Required"],
  [403, "Forbidden"],
  [404, "Not Found"],
  [405, "Method Not Allowed"],
  [406, "Not Acceptable"],
  [407, "Proxy Authentication Required"],
  [408, "Request Timeout"],
  [409, "Conflict"],
  [410, "Gone"],
  [411, "Length Required"],
  [412, "Precondition Failed"],
  [413, "Content Too Large"],
  [414, "URI Too Long"],
  [415, "Unsupported Media Type"],
  [416, "Range Not Satisfiable"],
  [417, "Expectation Failed"],
  [421, "Misdirected Request"],
  [422, "Unprocessable Content"],
  [426, "Upgrade Required"],
  [428, "Precondition Required"],
  [429, "Too Many Requests"],
  [431, "Request Header Fields Too Large"],
  [451, "Unavailable For Legal Reasons"],
  [500, "Internal Server Error"],
  [501, "Not Implemented"],
  [502, "Bad Gateway"],
  [503, "Service Unavailable"],
  [504, "Gateway Timeout"],
  [505, "HTTP Version Not Supported"],
]);

// RFC 9112 §3.2: the request-target has no whitespace; we also refuse
// control characters and non-ASCII, which no valid URI form contains.
// (The same forms as http1_parse.ts accepts.)
const TARGET = /^[\x21-\x7e]+$/;
const VERSION = /^HTTP\/(\d)\.(\d)$/;

const ENCODER = new TextEncoder();

function _encode(text: string): Uint8Array {
  return ENCODER.encode(text);
}

function _checkVersion(version: string): void {
  if (!VERSION.test(version)) {
    throw new TypeError(
      `Invalid HTTP version ${show(version)}: expected HTTP/d.d`,
    );
  }
}

function _writeFields(headers: Headers): string {
  let text = "";
  for (const [name, value] of headers) {
    if (!TOKEN.test(name)) {
      throw new TypeError(`Invalid header field name ${show(name)}`);
    }
    if (CONTROL.test(value)) {
      throw new TypeError(
        `Invalid value for header ${name}: CR, LF, NUL and other control characters could inject header lines`,
      );
    }
    text += `${canonical(name.toLowerCase())}: ${value}\r\n`;
  }
  return text;
}
