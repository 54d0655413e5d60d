/**
 * HTTP/1.1 message heads, read: finding where a head ends in a byte stream,
 * and parsing request and response heads strictly. Writing them is
 * `http1_write.ts`.
 *
 * Pure: no sockets, no timers, no awaits. The opening handshake is the only
 * HTTP a WebSocket speaks, so this is deliberately a head parser, not an HTTP
 * implementation: no bodies, no chunked coding, no keep-alive (the server's
 * plain-HTTP `fallback` does those, in `_http_fallback.ts`).
 *
 * Choices where RFC 9112 leaves room, and why:
 *
 * - Lines must end with CRLF. RFC 9112 §2.2: "a recipient MAY recognize a
 *   single LF as a line terminator and ignore any preceding CR". We do not:
 *   every WebSocket client and server sends CRLF, and disagreeing with a proxy
 *   about where a line ends is how request smuggling starts. {@linkcode HeadParser}
 *   still *stops* at a bare LF LF, so such a peer gets a prompt 400 naming the
 *   problem from the parse functions instead of a hang until the timeout.
 * - Obsolete line folding is refused in responses too (RFC 9112 §5.2 lets a
 *   user agent unfold it instead); no WebSocket server folds lines.
 * - Fields that must appear once in a handshake (`Host`, `Sec-WebSocket-Key`,
 *   `Sec-WebSocket-Version` in a request; `Sec-WebSocket-Accept`,
 *   `Sec-WebSocket-Protocol` in a response) are refused when repeated, because
 *   `Headers` would comma-join the copies and hide the repetition.
 * - Bytes are decoded as latin1 (one byte, one char), so decoding never throws
 *   and obs-text in field values survives.
 *
 * @module
 */

import { HandshakeError } from "./errors.ts";
import { HeaderFields, withLazyHeaders } from "./_header_fields.ts";
import { trimOWS } from "./_trim_ows.ts";
import { canonical, CONTROL, show, TCHAR, TOKEN } from "./_http_syntax.ts";

/**
 * Limits on an HTTP head, so a peer cannot make us buffer without end.
 *
 * Each refusal names its limit with a status: a request line over
 * `maxRequestLineLength` is refused with 414 (URI Too Long: RFC 9112 §3, "A
 * server that receives a request-target longer than any URI it wishes to
 * parse MUST respond with a 414"); a header field line over `maxLineLength`,
 * more than `maxHeaderCount` of them, or a head over `maxHeadSize` with 431
 * (Request Header Fields Too Large, RFC 6585 §5). When the head being read is
 * a response (the client's side), every refusal has status 0 instead.
 *
 * @example Tightening one limit
 * ```ts
 * import { DEFAULT_HEAD_LIMITS, type HeadLimits } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const limits: HeadLimits = { ...DEFAULT_HEAD_LIMITS, maxHeaderCount: 32 };
 * assert.equal(limits.maxRequestLineLength, 8192);
 * assert.equal(limits.maxLineLength, 8192);
 * ```
 */
export interface HeadLimits {
  /** Most bytes in a head, counting line ends and the final blank line. */
  maxHeadSize: number;
  /**
   * Most bytes in the request line (a response's status line, when reading
   * one), not counting its CRLF. RFC 9112 §3: "It is RECOMMENDED that all
   * HTTP senders and recipients support, at a minimum, request-line lengths
   * of 8000 octets."
   */
  maxRequestLineLength: number;
  /** Most bytes in one header field line, not counting its CRLF. */
  maxLineLength: number;
  /** Most header field lines. */
  maxHeaderCount: number;
}

/**
 * The limits used when none are given: 64 KiB per head, 8 KiB for the
 * request line and for each header field line, 128 header fields. Generous
 * for a handshake, which is usually under 1 KiB.
 *
 * @example
 * ```ts
 * import { DEFAULT_HEAD_LIMITS } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual({ ...DEFAULT_HEAD_LIMITS }, {
 *   maxHeadSize: 65536,
 *   maxRequestLineLength: 8192,
 *   maxLineLength: 8192,
 *   maxHeaderCount: 128,
 * });
 * ```
 */
export const DEFAULT_HEAD_LIMITS: Readonly<HeadLimits> = Object.freeze({
  maxHeadSize: 64 * 1024,
  maxRequestLineLength: 8192,
  maxLineLength: 8192,
  maxHeaderCount: 128,
});

/**
 * Finds the end of an HTTP head in bytes arriving in chunks of any size.
 *
 * The head ends at the first empty line. The returned `head` holds every
 * byte up to and including that empty line's LF, and `rest` every byte of the
 * chunk after it (for a WebSocket, possibly the first frames), so `head`
 * followed by `rest` is exactly what was pushed. Both are fresh copies (an
 * empty `rest` may be one shared empty array); the parser keeps no reference
 * to the caller's chunks.
 *
 * Limits are checked as bytes arrive, on the byte that crosses one: a line
 * over its limit is refused before its end arrives, a field line past
 * `maxHeaderCount` on its first byte, so at most `maxHeadSize` bytes are ever
 * buffered and nothing past a limit is. Only new bytes are scanned, so
 * feeding one byte at a time stays linear. Exceeding a limit throws a
 * {@linkcode HandshakeError}: status 414 (URI Too Long) for the request line,
 * 431 (Request Header Fields Too Large) for the rest (see
 * {@linkcode HeadLimits}); when several are crossed in one chunk, the one
 * crossed first in the byte stream. A client reading a response should treat
 * either as "no valid HTTP response". The parser is single-use: after it has
 * returned a head or thrown, `push` throws a `TypeError`.
 *
 * A bare LF LF also ends the head (so the peer is answered at once), but
 * {@linkcode parseRequestHead} and {@linkcode parseResponseHead} then refuse
 * it, because HTTP/1.1 lines end with CRLF.
 *
 * @example Splitting a head from the frames that follow it
 * ```ts
 * import { HeadParser } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const parser = new HeadParser();
 * const head = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
 * const bytes = new Uint8Array([...head, 0x81, 0x00]); // the head, then a frame
 * assert.equal(parser.push(bytes.subarray(0, 10)), null);
 * const result = parser.push(bytes.subarray(10));
 * assert.ok(result);
 * assert.equal(result.head.length, 27);
 * assert.deepEqual(result.rest, new Uint8Array([0x81, 0x00]));
 * ```
 *
 * @example Each limit refuses with its own status
 * ```ts
 * import { HandshakeError, HeadParser } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const encode = (text: string) => new TextEncoder().encode(text);
 * const limits = { maxRequestLineLength: 16, maxLineLength: 8, maxHeaderCount: 1 };
 * const status = (text: string) => {
 *   try {
 *     new HeadParser(limits).push(encode(text));
 *   } catch (error) {
 *     if (error instanceof HandshakeError) return error.status;
 *   }
 *   return "accepted";
 * };
 * assert.equal(status("GET /012345 HTTP\r\nA: 12345\r\n\r\n"), "accepted");
 * assert.equal(status("GET /0123456 HTTP\r\n"), 414); // a 17-byte request line
 * assert.equal(status("GET / HTTP\r\nA: 123456\r\n"), 431); // a 9-byte field line
 * assert.equal(status("GET / HTTP\r\nA: 1\r\nB"), 431); // a second field
 * ```
 */
export class HeadParser {
  #limits: HeadLimits;
  /** The unfinished head, once a chunk ended inside it. */
  #buffer: Uint8Array | null = null;
  #length = 0;
  /** Bytes of the current, unfinished line seen so far (its LF excluded). */
  #lineLength = 0;
  /** The last byte seen, to tell whether a line's content was just CR. */
  #lastByte = 0x0a;
  /** Non-empty lines finished so far (the start line included). */
  #lines = 0;
  /** Set once a head was returned or a limit was exceeded. */
  #finished = false;

  /**
   * Makes a parser.
   *
   * @param limits Limits to use instead of {@linkcode DEFAULT_HEAD_LIMITS}.
   * @throws {RangeError} If a limit is not a positive integer.
   */
  constructor(limits?: Partial<HeadLimits>) {
    this.#limits = _limits(limits);
  }

  /**
   * Feeds the next bytes.
   *
   * @param chunk The bytes received; not kept, not modified.
   * @returns `null` while the head is incomplete; then the head (with its
   * final empty line) and the bytes after it.
   * @throws {HandshakeError} With status 414 or 431 as soon as a limit is
   * exceeded.
   * @throws {TypeError} If called again after a head was returned or a
   * limit exceeded.
   */
  push(chunk: Uint8Array): { head: Uint8Array; rest: Uint8Array } | null {
    if (this.#finished) {
      throw new TypeError(
        "Cannot push to a HeadParser that has finished: it returned a head or threw",
      );
    }
    const { maxHeadSize } = this.#limits;
    let from = 0;
    while (from < chunk.length) {
      const lf = chunk.indexOf(0x0a, from);
      const stop = lf === -1 ? chunk.length : lf;
      const lineBytes = this.#lineLength + (stop - from);
      const last = stop > from ? chunk[stop - 1]! : this.#lastByte;
      // Head offsets: where this line starts, and where this scan ends.
      const lineStart = this.#length + from - this.#lineLength;
      const size = this.#length + (lf === -1 ? chunk.length : lf + 1);
      const limit = this.#lineLimit();
      // A trailing CR may be the first half of the line's CRLF, so it does
      // not count against the line.
      const lineOver = lineBytes - (last === 0x0d ? 1 : 0) > limit;
      if (lineOver || size > maxHeadSize) {
        this.#finished = true;
        // The limit the byte stream crossed first: the line's at the byte
        // after its `limit` bytes of content, the head's at byte maxHeadSize.
        if (lineOver && lineStart + limit < maxHeadSize) {
          throw this.#lineRefusal();
        }
        throw new HandshakeError(
          `HTTP head exceeds ${maxHeadSize} bytes`,
          431,
        );
      }
      if (lf === -1) {
        this.#lineLength = lineBytes;
        this.#lastByte = last;
        break;
      }
      if (lineBytes === 0 || (lineBytes === 1 && last === 0x0d)) {
        this.#finished = true;
        const end = lf + 1;
        let head: Uint8Array;
        if (this.#length === 0) {
          head = chunk.slice(0, end);
        } else {
          head = this.#append(chunk.subarray(0, end)).slice(0, this.#length);
        }
        this.#buffer = null;
        this.#length = 0;
        CHECKED_HEADS.set(head, this.#limits);
        // Typed arrays are not free (on Deno even an empty one costs about
        // 0.4 µs): a head with nothing after it, the usual case, shares one.
        return {
          head,
          rest: end === chunk.length ? NOTHING : chunk.slice(end),
        };
      }
      this.#lines++;
      this.#lineLength = 0;
      this.#lastByte = 0x0a;
      from = lf + 1;
    }
    this.#append(chunk);
    return null;
  }

  /** How many bytes the line being read may hold. */
  #lineLimit(): number {
    const { maxRequestLineLength, maxLineLength, maxHeaderCount } =
      this.#limits;
    if (this.#lines === 0) return maxRequestLineLength;
    // The start line and maxHeaderCount field lines are in: only the empty
    // line that ends the head may follow. Its first other byte is refused,
    // so the remainder is never buffered.
    if (this.#lines > maxHeaderCount) return 0;
    return maxLineLength;
  }

  /** The refusal of the line being read, over its {@linkcode #lineLimit}. */
  #lineRefusal(): HandshakeError {
    const { maxRequestLineLength, maxLineLength, maxHeaderCount } =
      this.#limits;
    if (this.#lines === 0) {
      return new HandshakeError(
        `HTTP start line exceeds ${maxRequestLineLength} bytes`,
        414,
      );
    }
    if (this.#lines > maxHeaderCount) {
      return new HandshakeError(
        `HTTP head has more than ${maxHeaderCount} header fields`,
        431,
      );
    }
    return new HandshakeError(
      `HTTP head line ${this.#lines + 1} exceeds ${maxLineLength} bytes`,
      431,
    );
  }

  /**
   * Copies bytes into the buffer, doubling it (up to the limit) to stay
   * linear, and returns the buffer.
   */
  #append(bytes: Uint8Array): Uint8Array {
    const needed = this.#length + bytes.length;
    let buffer = this.#buffer;
    if (buffer === null || needed > buffer.length) {
      const capacity = Math.max(
        needed,
        Math.min(
          Math.max((buffer?.length ?? 0) * 2, 256),
          this.#limits.maxHeadSize,
        ),
      );
      const grown = new Uint8Array(capacity);
      if (buffer !== null) grown.set(buffer.subarray(0, this.#length));
      this.#buffer = buffer = grown;
    }
    buffer.set(bytes, this.#length);
    this.#length = needed;
    return buffer;
  }
}

/**
 * A parsed HTTP/1.x request head.
 *
 * @example
 * ```ts
 * import type { RequestHead } from "@wsstream/wsstream/codec";
 *
 * const head: RequestHead = {
 *   method: "GET",
 *   target: "/chat?room=1",
 *   version: "HTTP/1.1",
 *   headers: new Headers({ host: "example.com" }),
 * };
 * ```
 */
export interface RequestHead {
  /** The method, case-sensitive (`GET`). */
  method: string;
  /** The request target as sent, not decoded (`/chat?room=1`). */
  target: string;
  /** The protocol version (`HTTP/1.1`). */
  version: string;
  /** The header fields; repeated fields are comma-joined by `Headers`. */
  headers: Headers;
}

/**
 * A parsed HTTP/1.x response head.
 *
 * @example
 * ```ts
 * import type { ResponseHead } from "@wsstream/wsstream/codec";
 *
 * const head: ResponseHead = {
 *   version: "HTTP/1.1",
 *   status: 101,
 *   statusText: "Switching Protocols",
 *   headers: new Headers({ upgrade: "websocket" }),
 * };
 * ```
 */
export interface ResponseHead {
  /** The protocol version (`HTTP/1.1`). */
  version: string;
  /** The three-digit status code. */
  status: number;
  /** The reason phrase; may be empty. */
  statusText: string;
  /** The header fields; repeated fields are comma-joined by `Headers`. */
  headers: Headers;
}

/**
 * Parses a request head, strictly.
 *
 * `head` is what {@linkcode HeadParser} returns (or what
 * {@linkcode writeRequestHead} writes); the final empty line may be left off.
 * Refusals are {@linkcode HandshakeError}s carrying the status to answer
 * with: 400 for malformed syntax (bare CR or LF, obsolete line folding,
 * whitespace before a colon, a bad character in a field name or value, a
 * repeated `Host`, `Sec-WebSocket-Key` or `Sec-WebSocket-Version`), 414 for a
 * request line over `maxRequestLineLength`, 431 when another limit is
 * exceeded (see {@linkcode HeadLimits}), 505 for an HTTP major version other
 * than 1.
 *
 * The result's `headers` is made when first read (checking every field
 * again, as a `Headers` does, costs more than the parse; a server's hooks
 * may never read it); from then on, or once assigned, it is an ordinary
 * property.
 *
 * @param head The head's bytes.
 * @param limits Limits to use instead of {@linkcode DEFAULT_HEAD_LIMITS}.
 * @returns The method, target, version and header fields.
 * @throws {HandshakeError} With status 400, 414, 431 or 505 as above.
 *
 * @example Parsing a request head
 * ```ts
 * import { parseRequestHead } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const head = parseRequestHead(
 *   new TextEncoder().encode("GET /chat HTTP/1.1\r\nHost: example.com\r\n\r\n"),
 * );
 * assert.equal(head.target, "/chat");
 * assert.equal(head.headers.get("host"), "example.com");
 * ```
 *
 * @example A refused head says why
 * ```ts
 * import { HandshakeError, parseRequestHead } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * assert.throws(
 *   () => parseRequestHead(new TextEncoder().encode("GET / HTTP/1.1\r\nHost : a\r\n")),
 *   (error) => error instanceof HandshakeError && error.status === 400,
 * );
 * ```
 */
export function parseRequestHead(
  head: Uint8Array,
  limits?: Partial<HeadLimits>,
): RequestHead {
  const { startLine, fields } = _parseHead(
    head,
    _limits(limits),
    false,
    REQUEST_SINGLETONS,
  );
  // RFC 9112 §3: request-line = method SP request-target SP HTTP-version.
  // "Recipients of an invalid request-line SHOULD respond with either a 400
  // (Bad Request) error or a 301 (Moved Permanently) redirect".
  const parts = startLine.split(" ");
  if (startLine === "") {
    throw new HandshakeError("Empty request line", 400);
  }
  if (parts.length !== 3) {
    throw new HandshakeError(
      `Malformed request line ${
        show(startLine)
      }: expected "METHOD target HTTP/1.1" separated by single spaces`,
      400,
    );
  }
  const [method, target, version] = parts as [string, string, string];
  // Every WebSocket handshake is a GET over HTTP/1.1: no patterns for those.
  if (method !== "GET" && !TOKEN.test(method)) {
    throw new HandshakeError(
      `Malformed request method ${show(method)}: not a token`,
      400,
    );
  }
  if (!TARGET.test(target)) {
    throw new HandshakeError(
      `Malformed request target ${show(target)}: only visible ASCII is allowed`,
      400,
    );
  }
  if (version !== "HTTP/1.1") _checkRequestVersion(version);
  return withLazyHeaders({ method, target, version }, fields);
}

/** Refuses a request's HTTP version other than 1.x. */
function _checkRequestVersion(version: string): void {
  const match = VERSION.exec(version);
  if (match === null) {
    throw new HandshakeError(`Malformed HTTP version ${show(version)}`, 400);
  }
  if (match[1] !== "1") {
    // RFC 9110 §15.6.6: 505 "indicates that the server does not support, or
    // refuses to support, the major version of HTTP that was used".
    throw new HandshakeError(
      `Unsupported HTTP version ${version}; this server speaks HTTP/1.1`,
      505,
    );
  }
}

/**
 * Parses a response head, strictly: the same rules as
 * {@linkcode parseRequestHead}, for a status line such as
 * `HTTP/1.1 101 Switching Protocols`. The reason phrase may be empty, and
 * the space before an empty one may be missing.
 *
 * Every refusal has status 0: the peer sent no valid HTTP response.
 *
 * @param head The head's bytes.
 * @param limits Limits to use instead of {@linkcode DEFAULT_HEAD_LIMITS}.
 * @returns The version, status, reason phrase and header fields.
 * @throws {HandshakeError} With status 0 when the head is not a valid
 * HTTP/1.x response head or exceeds a limit.
 *
 * @example
 * ```ts
 * import { parseResponseHead } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const head = parseResponseHead(
 *   new TextEncoder().encode("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"),
 * );
 * assert.equal(head.status, 101);
 * assert.equal(head.headers.get("upgrade"), "websocket");
 * ```
 */
export function parseResponseHead(
  head: Uint8Array,
  limits?: Partial<HeadLimits>,
): ResponseHead {
  const { startLine, fields } = _parseHead(
    head,
    _limits(limits),
    true,
    RESPONSE_SINGLETONS,
  );
  // RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
  const match = STATUS_LINE.exec(startLine);
  if (match === null) {
    throw new HandshakeError(
      `Invalid HTTP response: malformed status line ${show(startLine)}`,
      0,
    );
  }
  const [, version, major, code, statusText = ""] = match as unknown as [
    string,
    string,
    string,
    string,
    string | undefined,
  ];
  if (major !== "1") {
    throw new HandshakeError(
      `Invalid HTTP response: unsupported version ${version}`,
      0,
    );
  }
  const status = Number(code);
  // RFC 9110 §15: "All valid status codes are within the range of 100 to
  // 599, inclusive."
  if (status < 100 || status > 599) {
    throw new HandshakeError(
      `Invalid HTTP response: status code ${code} is out of range`,
      0,
    );
  }
  if (CONTROL.test(statusText)) {
    throw new HandshakeError(
      "Invalid HTTP response: control character in the reason phrase",
      0,
    );
  }
  return withLazyHeaders({ version, status, statusText }, fields);
}

// RFC 9112 §3.2: the request-target has no whitespace; we also refuse
// control characters and non-ASCII, which no valid URI form contains.
const TARGET = /^[\x21-\x7e]+$/;
const VERSION = /^HTTP\/(\d)\.(\d)$/;
const STATUS_LINE = /^(HTTP\/(\d)\.\d) (\d{3})(?: (.*))?$/;
const BARE_CR_OR_LF = /[\r\n]/;

// RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code
// to any HTTP/1.1 request message that ... contains more than one Host header
// field line". RFC 6455 §11.3.1 and §11.3.5: Sec-WebSocket-Key and
// Sec-WebSocket-Version "MUST NOT appear more than once in an HTTP request".
const REQUEST_SINGLETONS = [
  "host",
  "sec-websocket-key",
  "sec-websocket-version",
];
// RFC 6455 §11.3.3 and §11.3.4: Sec-WebSocket-Accept and
// Sec-WebSocket-Protocol "MUST NOT appear more than once in an HTTP response".
const RESPONSE_SINGLETONS = ["sec-websocket-accept", "sec-websocket-protocol"];

/** The `rest` of a head with no bytes after it (see {@linkcode HeadParser}). */
const NOTHING = new Uint8Array(0);

function _limits(limits: Partial<HeadLimits> | undefined): HeadLimits {
  // Every server connection parses a head: without limits of its own, skip
  // the merge and the checks (the defaults are frozen and valid).
  if (limits === undefined) return DEFAULT_HEAD_LIMITS;
  const merged = { ...DEFAULT_HEAD_LIMITS, ...limits };
  for (const [name, value] of Object.entries(merged)) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new RangeError(
        `Invalid ${name} ${value}: must be a positive integer`,
      );
    }
  }
  return merged;
}

/** The heads a HeadParser returned, with the limits it read them within. */
const CHECKED_HEADS = new WeakMap<Uint8Array, HeadLimits>();

function _sameLimits(a: HeadLimits | undefined, b: HeadLimits): boolean {
  return a !== undefined &&
    (a === b ||
      (a.maxHeadSize === b.maxHeadSize &&
        a.maxRequestLineLength === b.maxRequestLineLength &&
        a.maxLineLength === b.maxLineLength &&
        a.maxHeaderCount === b.maxHeaderCount));
}

const ASCII = new TextDecoder();

/** Each byte becomes the char with the same code, so nothing can throw. */
function _latin1(bytes: Uint8Array): string {
  // ASCII (every head in practice) is its own UTF-8, and the decoder is
  // about 20 times faster than spreading the bytes into fromCharCode.
  let ascii = true;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i]! > 0x7f) {
      ascii = false;
      break;
    }
  }
  if (ascii) return ASCII.decode(bytes);
  let text = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    // apply, not a spread: a spread walks the typed array's iterator.
    text += String.fromCharCode.apply(
      null,
      bytes.subarray(i, i + 8192) as unknown as number[],
    );
  }
  return text;
}

function _describeChar(char: string): string {
  const code = char.charCodeAt(0);
  const hex = `0x${code.toString(16).toUpperCase().padStart(2, "0")}`;
  if (char === " " || char === "\t") return `whitespace (${hex})`;
  if (code < 0x20 || code === 0x7f) return `control character ${hex}`;
  if (code > 0x7e) return `non-ASCII character ${hex}`;
  return `character "${char}"`;
}

function _parseHead(
  head: Uint8Array,
  limits: HeadLimits,
  response: boolean,
  singletons: readonly string[],
): { startLine: string; fields: HeaderFields } {
  const fail = (message: string, status: number) =>
    new HandshakeError(
      response ? `Invalid HTTP response: ${message}` : message,
      response ? 0 : status,
    );
  // The same limits, refused the same way, as when the head was read;
  // unless a HeadParser read it within the same limits (every server
  // connection's head: 2 % of a handshake on Deno went to checking twice).
  if (!_sameLimits(CHECKED_HEADS.get(head), limits)) {
    try {
      new HeadParser(limits).push(head);
    } catch (error) {
      const { message, status } = error as HandshakeError;
      throw fail(message, status);
    }
  }
  let text = _latin1(head);
  if (text.endsWith("\r\n\r\n")) text = text.slice(0, -4);
  else if (text.endsWith("\r\n")) text = text.slice(0, -2);
  // Most heads are well formed: one pass over them first. Anything it does
  // not accept goes to the loop below, which refuses it with its reason.
  const parsed = _parseWellFormed(head, text, singletons);
  if (parsed !== null) return parsed;
  const lines = text.split("\r\n");
  const fields = new HeaderFields();
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    const number = index + 1;
    // RFC 9112 §2.2: "A recipient of such a bare CR MUST consider that
    // element to be invalid or replace each bare CR with SP"; we also refuse
    // bare LF, which the same section only permits recipients to accept.
    const bare = line.search(BARE_CR_OR_LF);
    if (bare !== -1) {
      throw fail(
        `Bare ${
          line[bare] === "\r" ? "CR" : "LF"
        } in line ${number} of the HTTP head; lines must end with CRLF`,
        400,
      );
    }
    if (index === 0) continue;
    if (line === "") {
      throw fail(`Empty line ${number} inside the HTTP head`, 400);
    }
    // RFC 9112 §5.2: "A server that receives an obs-fold in a request
    // message ... MUST either reject the message by sending a 400 (Bad
    // Request) ... or replace each received obs-fold with one or more SP
    // octets". §2.2 likewise lets us reject whitespace before the first field.
    if (line[0] === " " || line[0] === "\t") {
      throw fail(
        `Obsolete line folding (a line starting with whitespace) in line ${number} is not accepted`,
        400,
      );
    }
    const colon = line.indexOf(":");
    if (colon === -1) {
      throw fail(`Header line ${number} has no colon: ${show(line)}`, 400);
    }
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) {
      if (name === "") {
        throw fail(`Header line ${number} has an empty field name`, 400);
      }
      // RFC 9112 §5.1: "No whitespace is allowed between the field name and
      // colon. ... A server MUST reject, with a response status code of 400
      // (Bad Request), any received request message that contains whitespace
      // between a header field name and colon."
      const char = /[^!#$%&'*+\-.^_`|~0-9A-Za-z]/.exec(name)![0];
      throw fail(
        `Invalid header field name ${show(name)} in line ${number}: ${
          _describeChar(char)
        }${colon === name.trimEnd().length ? "" : " before the colon"}`,
        400,
      );
    }
    // RFC 9112 §5.1: "field-line = field-name ":" OWS field-value OWS"
    const value = trimOWS(line.slice(colon + 1));
    const control = CONTROL.exec(value);
    if (control !== null) {
      throw fail(
        `Invalid value for header ${name} in line ${number}: ${
          _describeChar(control[0])
        }`,
        400,
      );
    }
    const lower = name.toLowerCase();
    if (singletons.includes(lower) && fields.has(lower)) {
      throw fail(`Header ${canonical(lower)} appears more than once`, 400);
    }
    fields.append(lower, value);
  }
  return { startLine: lines[0]!, fields };
}

/**
 * The start line and fields of a head when every line is well formed, in
 * one pass over its bytes; else `null`, also for a repeated singleton field.
 * `text` is the head as a string without its final CRLFs (so its indices
 * are the bytes'). It accepts only what {@linkcode _parseHead}'s loop
 * accepts, and returns what that loop returns: the loop, about three times
 * slower on V8, is left for heads with something to refuse.
 */
function _parseWellFormed(
  head: Uint8Array,
  text: string,
  singletons: readonly string[],
): { startLine: string; fields: HeaderFields } | null {
  const length = text.length;
  let at = 0;
  let code = 0;
  // The start line: no CR or LF before its CRLF.
  while (at < length && (code = head[at]!) !== 0x0d) {
    if (code === 0x0a) return null;
    at++;
  }
  const startLine = text.slice(0, at);
  const fields = new HeaderFields();
  while (at < length) {
    // At a CR, which must begin a CRLF and another field line.
    if (head[at + 1] !== 0x0a) return null;
    at += 2;
    const nameStart = at;
    while (at < length && (code = head[at]!) < 0x80 && TCHAR[code] === 1) at++;
    // An empty name (an empty line, an obs-fold) or no colon after it.
    if (at === nameStart || at === length || code !== 0x3a) return null;
    const name = text.slice(nameStart, at);
    at++;
    while (at < length && ((code = head[at]!) === 0x20 || code === 0x09)) at++;
    const valueStart = at;
    let valueEnd = at;
    while (at < length && (code = head[at]!) !== 0x0d) {
      // CONTROL's characters, bare LF among them; HTAB is allowed.
      if ((code < 0x20 && code !== 0x09) || code === 0x7f) return null;
      if (code !== 0x20 && code !== 0x09) valueEnd = at + 1;
      at++;
    }
    const lower = name.toLowerCase();
    if (singletons.includes(lower) && fields.has(lower)) return null;
    fields.append(lower, text.slice(valueStart, valueEnd));
  }
  return { startLine, fields };
}
