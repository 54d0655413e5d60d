/**
 * The errors wsstream throws or rejects with.
 *
 * ```
 * Error
 * ├── TypeError, RangeError           bad arguments (wrong type, out of range)
 * └── WebSocketError                  base of everything below; `code` is stable
 *     ├── ProtocolError               the peer broke RFC 6455; `closeCode` is what we sent
 *     ├── HandshakeError              the opening handshake failed; `status` is the HTTP status
 *     ├── TimeoutError                `connect()`'s opening handshake took too long
 *     └── ConnectionClosedError       the connection is closed; carries `closeCode`, `reason`, `wasClean`
 * ```
 *
 * Each protocol failure maps to exactly one close code, and each handshake
 * refusal to exactly one HTTP status, so the reply is already known where the
 * error is made.
 *
 * ## When an API throws, and when it rejects
 *
 * One rule, everywhere:
 *
 * - **An argument that is wrong in itself throws, synchronously**, even from
 *   a function that returns a promise: a value of the wrong type
 *   (`TypeError`), out of range (`RangeError`: a close code that may not be
 *   sent, a reason or ping payload over its limit, a negative timeout), an
 *   invalid URL or option. These are bugs in the calling code; thrown at the
 *   call, they cannot be lost in a promise nobody awaits. `connect()` and
 *   `serve()` check all their options before any I/O.
 * - **Everything that depends on the connection or the network rejects the
 *   returned promise**: the connection is closing or closed
 *   (`ConnectionClosedError`), the server refused (`HandshakeError`), the
 *   handshake took too long (`TimeoutError`), the socket failed.
 * - **Streams follow the Streams standard**: a chunk that cannot be sent
 *   errors `writable` (its `write()` rejects); an unclean close errors
 *   `readable`.
 * - **Iteration** over a connection (or its `readable`) ends after a clean
 *   close and throws `ConnectionClosedError` after an unclean one, its
 *   `cause` the `ProtocolError` when the peer broke the protocol. `closed`
 *   never rejects.
 *
 * Timeouts after the handshake (the close handshake's, keepalive's) are not
 * errors thrown at anyone: they end the connection, and `closed` reports
 * 1006 with the reason.
 *
 * @module
 */

/**
 * Base class of every error wsstream makes itself.
 *
 * @example Telling wsstream's errors apart from others
 * ```ts
 * import { WebSocketError, ProtocolError } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 *
 * const error = new ProtocolError("Reserved opcode 3", 1002);
 * assert.ok(error instanceof WebSocketError);
 * assert.equal(error.code, "WS_ERR_PROTOCOL");
 * ```
 */
export class WebSocketError extends Error {
  /** A stable, machine-readable code such as `WS_ERR_PROTOCOL`. */
  readonly code: string;

  /**
   * Makes an error.
   *
   * @param message What went wrong, in a sentence.
   * @param code The stable code.
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, code = "WS_ERR", options?: ErrorOptions) {
    super(message, options);
    this.name = "WebSocketError";
    this.code = code;
  }
}

/**
 * The peer broke the protocol; the connection was failed with `closeCode`
 * (1002 protocol error, 1007 invalid payload data, 1009 message too big …).
 *
 * @example Reading the close code from a protocol error
 * ```ts
 * import { ProtocolError } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 *
 * const error = new ProtocolError("Invalid UTF-8 in a text message", 1007);
 * assert.equal(error.closeCode, 1007);
 * ```
 */
export class ProtocolError extends WebSocketError {
  /** The close code this failure is reported to the peer with. */
  readonly closeCode: number;

  /**
   * Makes a protocol error.
   *
   * @param message What the peer did wrong.
   * @param closeCode The close code to fail the connection with.
   */
  constructor(message: string, closeCode = 1002) {
    super(message, "WS_ERR_PROTOCOL");
    this.name = "ProtocolError";
    this.closeCode = closeCode;
  }
}

/**
 * The opening handshake failed. On a server, `status` is the HTTP status the
 * request is refused with, and `headers` and `body` what goes with it (the
 * message never does: it may name server details; without a body, the
 * status's reason phrase is sent). On a client, the status the server
 * answered with (0 when there was no valid HTTP response at all), and
 * `headers` and `body` what it sent.
 *
 * @example A refusal carries its HTTP status
 * ```ts
 * import { HandshakeError } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 *
 * const error = new HandshakeError("Unsupported Sec-WebSocket-Version: 8", 426);
 * assert.equal(error.status, 426);
 * ```
 */
export class HandshakeError extends WebSocketError {
  /** The HTTP status of the refusal (0: no valid HTTP response). */
  readonly status: number;
  /** Extra response headers that go with the refusal, or that the server sent. */
  readonly headers: Headers;
  /** The refusal's body: what a server sends, or what the server sent ("" for none). */
  readonly body: string;

  /**
   * Makes a handshake error.
   *
   * @param message Why the handshake failed.
   * @param status The HTTP status.
   * @param init Response headers and body that go with it.
   */
  constructor(
    message: string,
    status: number,
    init: { headers?: HeadersInit; body?: string; cause?: unknown } = {},
  ) {
    super(message, "WS_ERR_HANDSHAKE", { cause: init.cause });
    this.name = "HandshakeError";
    this.status = status;
    this.headers = new Headers(init.headers);
    this.body = init.body ?? "";
  }
}

/**
 * `connect()`'s opening handshake (TCP or TLS connect, request, response)
 * took longer than its `handshakeTimeout`. (A server answers a slow
 * handshake with 408; a close handshake or keepalive pong that does not
 * come in time ends the connection with 1006 in `closed`, and throws
 * nothing.)
 *
 * @example
 * ```ts
 * import { TimeoutError } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 *
 * const error = new TimeoutError("Handshake timed out after 10000 ms");
 * assert.equal(error.code, "WS_ERR_TIMEOUT");
 * ```
 */
export class TimeoutError extends WebSocketError {
  /**
   * Makes a timeout error.
   *
   * @param message Which deadline passed.
   */
  constructor(message: string) {
    super(message, "WS_ERR_TIMEOUT");
    this.name = "TimeoutError";
  }
}

/**
 * The connection is closed (or closing), so the operation cannot be done;
 * or, thrown by iteration, it ended uncleanly. Carries the close that ended
 * it (or the one under way), named as WHATWG's `WebSocketError` names them.
 *
 * @example
 * ```ts
 * import { ConnectionClosedError } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 *
 * const error = new ConnectionClosedError(
 *   "Cannot send on a closed connection: close code 1000",
 *   { closeCode: 1000, reason: "", wasClean: true },
 * );
 * assert.equal(error.closeCode, 1000);
 * assert.equal(error.wasClean, true);
 * ```
 */
export class ConnectionClosedError extends WebSocketError {
  /** The close code the connection ended with (1005: none given, 1006: abnormal). */
  readonly closeCode: number;
  /** The close reason. */
  readonly reason: string;
  /** Whether the close handshake completed. */
  readonly wasClean: boolean;

  /**
   * Makes a closed-connection error.
   *
   * @param message What could not be done.
   * @param close How the connection ended.
   * @param options Standard error options (`cause`).
   */
  constructor(
    message: string,
    close: { closeCode: number; reason: string; wasClean: boolean },
    options?: ErrorOptions,
  ) {
    super(message, "WS_ERR_CLOSED", options);
    this.name = "ConnectionClosedError";
    this.closeCode = close.closeCode;
    this.reason = close.reason;
    this.wasClean = close.wasClean;
  }
}
