/**
 * Close codes (RFC 6455 §7.4), their default reasons, and the encoding and
 * validation of close frame payloads.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";

/**
 * The close codes of RFC 6455 §7.4.1 and the IANA registry, by name.
 *
 * @example
 * ```ts
 * import { CloseCode } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * assert.equal(CloseCode.MessageTooBig, 1009);
 * ```
 */
export const CloseCode = {
  /** The purpose of the connection has been fulfilled. */
  Normal: 1000,
  /** The endpoint is going away (server shutting down, page left). */
  GoingAway: 1001,
  /** The peer broke the protocol. */
  ProtocolError: 1002,
  /** A message of a type the endpoint cannot accept (text or binary). */
  UnsupportedData: 1003,
  /** Never on the wire: the close frame had no status code. */
  NoStatusReceived: 1005,
  /** Never on the wire: the connection ended without a close frame. */
  Abnormal: 1006,
  /** A message's data was not consistent with its type (bad UTF-8). */
  InvalidPayload: 1007,
  /** A message broke the endpoint's policy. */
  PolicyViolation: 1008,
  /** A message was too big to process. */
  MessageTooBig: 1009,
  /** The client expected the server to negotiate an extension. */
  MandatoryExtension: 1010,
  /** The server met an unexpected condition. */
  InternalError: 1011,
  /** The service is restarting. */
  ServiceRestart: 1012,
  /** Try again later. */
  TryAgainLater: 1013,
  /** A gateway got a bad response from upstream. */
  BadGateway: 1014,
  /** Never on the wire: the TLS handshake failed. */
  TlsHandshake: 1015,
} as const;

/**
 * The reason sent when `close()` is given a code but no reason, by code
 * (after tcllib's websocket, which does the same).
 *
 * @example
 * ```ts
 * import { DEFAULT_CLOSE_REASONS } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * assert.equal(DEFAULT_CLOSE_REASONS[1001], "Going away");
 * ```
 */
export const DEFAULT_CLOSE_REASONS: Readonly<Record<number, string>> = {
  1000: "Normal closure",
  1001: "Going away",
  1002: "Protocol error",
  1003: "Unsupported data",
  1005: "No status received",
  1006: "Abnormal closure",
  1007: "Invalid payload data",
  1008: "Policy violation",
  1009: "Message too big",
  1010: "Mandatory extension",
  1011: "Internal error",
  1012: "Service restart",
  1013: "Try again later",
  1014: "Bad gateway",
  1015: "TLS handshake failure",
};

/** RFC 6455 §5.5: control frame payloads are at most 125 bytes, 2 of them the code. */
export const MAX_CLOSE_REASON_BYTES = 123;

/**
 * Whether `code` may appear in a close frame on the wire: 1000–1003,
 * 1007–1014 and 3000–4999. 1005, 1006 and 1015 are reserved for reporting
 * and "MUST NOT be set as a status code in a Close control frame" (§7.4.1).
 *
 * @param code The close code.
 * @returns `true` when the code may be sent or received.
 *
 * @example
 * ```ts
 * import { isValidCloseCode } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isValidCloseCode(1000), true);
 * assert.equal(isValidCloseCode(1005), false);
 * assert.equal(isValidCloseCode(4000), true);
 * ```
 */
export function isValidCloseCode(code: number): boolean {
  return Number.isInteger(code) &&
    ((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
      (code >= 3000 && code <= 4999));
}

const encoder = new TextEncoder();
/** The bytes of an empty reason (never written to: `payload.set` reads it). */
const NO_BYTES = new Uint8Array(0);
// ignoreBOM: a reason starting with U+FEFF must be reported as sent, BOM
// included (the default would strip it), as text messages are (utf8.ts).
const strictDecoder = new TextDecoder("utf-8", {
  fatal: true,
  ignoreBOM: true,
});

/**
 * Encodes a close frame payload: the code in network byte order, then the
 * reason in UTF-8. Throws `RangeError` for a code that may not be sent or a
 * reason over 123 bytes, and `TypeError` for a reason without a code.
 *
 * @param code The close code, or `undefined` for an empty payload.
 * @param reason The reason, at most 123 bytes of UTF-8.
 * @returns The payload.
 *
 * @example
 * ```ts
 * import { encodeClosePayload } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual([...encodeClosePayload(1000, "ok")], [0x03, 0xe8, 0x6f, 0x6b]);
 * ```
 */
export function encodeClosePayload(
  code: number | undefined,
  reason = "",
): Uint8Array {
  if (code === undefined) {
    if (reason !== "") {
      throw new TypeError("Cannot send a close reason without a close code");
    }
    return new Uint8Array(0);
  }
  if (!Number.isInteger(code) || !isValidCloseCode(code)) {
    throw new RangeError(
      `Invalid close code ${code}: use 1000-1003, 1007-1014 or 3000-4999`,
    );
  }
  // Most closes have no reason: no call into the encoder for them (one per
  // connection's end, about 0.5 % of a handshake on Deno).
  const text = reason === "" ? NO_BYTES : encoder.encode(reason);
  if (text.length > MAX_CLOSE_REASON_BYTES) {
    throw new RangeError(
      `Close reason is ${text.length} bytes of UTF-8; at most ${MAX_CLOSE_REASON_BYTES} fit in a close frame`,
    );
  }
  const payload = new Uint8Array(2 + text.length);
  payload[0] = code >>> 8;
  payload[1] = code & 0xff;
  payload.set(text, 2);
  return payload;
}

/**
 * Decodes a received close frame payload, enforcing RFC 6455 §5.5.1 and
 * §7.4: an empty payload means "no status" (reported as 1005); a 1-byte
 * payload, or a code that may not be on the wire, fails with 1002; a reason
 * that is not UTF-8 fails with 1007.
 *
 * @param payload The unmasked close frame payload.
 * @returns The code and reason.
 *
 * @example
 * ```ts
 * import { decodeClosePayload } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(decodeClosePayload(new Uint8Array(0)), { code: 1005, reason: "" });
 * assert.deepEqual(
 *   decodeClosePayload(new Uint8Array([0x03, 0xe9])),
 *   { code: 1001, reason: "" },
 * );
 * assert.throws(() => decodeClosePayload(new Uint8Array([0x03])));
 * ```
 */
export function decodeClosePayload(
  payload: Uint8Array,
): { code: number; reason: string } {
  if (payload.length === 0) {
    return { code: CloseCode.NoStatusReceived, reason: "" };
  }
  if (payload.length === 1) {
    throw new ProtocolError("Close frame payload of 1 byte", 1002);
  }
  const code = (payload[0]! << 8) | payload[1]!;
  if (!isValidCloseCode(code)) {
    throw new ProtocolError(`Invalid close code on the wire: ${code}`, 1002);
  }
  if (payload.length === 2) return { code, reason: "" };
  let reason: string;
  try {
    reason = strictDecoder.decode(payload.subarray(2));
  } catch {
    throw new ProtocolError("Close reason is not valid UTF-8", 1007);
  }
  return { code, reason };
}
