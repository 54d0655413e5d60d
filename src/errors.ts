/**
 * The errors wsstream throws or rejects with.
 *
 * ```
 * Error
 * ├── TypeError, RangeError           bad arguments (wrong type, out of range)
 * └── WebSocketError                  base of everything below; `code` is stable
 *     ├── ProtocolError               the peer broke RFC 6455; `closeCode` is what we sent
 *     ├── HandshakeError              the opening handshake failed; `status` is the HTTP status
 *     ├── TimeoutError                a deadline passed (handshake, close, keepalive)
 *     └── ConnectionClosedError       the connection is closed; carries `code`, `reason`, `wasClean`
 * ```
 *
 * Each protocol failure maps to exactly one close code, and each handshake
 * refusal to exactly one HTTP status, so the reply is already known where the
 * error is made.
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
 * request was refused with; on a client, the status the server answered with
 * (0 when there was no valid HTTP response at all), and `body` what it said.
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
  /** The response body the server sent with a refusal (client side), if any. */
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
 * A deadline passed: the opening handshake, the close handshake or a
 * keepalive pong did not come in time.
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
 * The connection is closed (or closing), so the operation cannot be done.
 * Carries the close that ended it.
 *
 * @example
 * ```ts
 * import { ConnectionClosedError } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 *
 * const error = new ConnectionClosedError(
 *   "Cannot send on a closed connection: close code 1000",
 *   { code: 1000, reason: "", wasClean: true },
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
    close: { code: number; reason: string; wasClean: boolean },
    options?: ErrorOptions,
  ) {
    super(message, "WS_ERR_CLOSED", options);
    this.name = "ConnectionClosedError";
    this.closeCode = close.code;
    this.reason = close.reason;
    this.wasClean = close.wasClean;
  }
}
