/**
 * What the handshake tests share: RFC 6455's sample key and accept value,
 * valid request and response heads to vary, and a matcher for a
 * `HandshakeError`.
 */
import assert from "node:assert/strict";
import { HandshakeError } from "../src/errors.ts";
import type { RequestHead, ResponseHead } from "../src/http1_parse.ts";

// RFC 6455 §1.3's sample.
export const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
export const ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/** An assert.throws / assert.rejects matcher for a HandshakeError. */
export function refused(
  status: number,
  message?: RegExp,
  headers: Record<string, string> = {},
) {
  return (error: unknown) => {
    assert.ok(
      error instanceof HandshakeError,
      `not a HandshakeError: ${error}`,
    );
    assert.equal(error.status, status, error.message);
    if (message) assert.match(error.message, message);
    for (const [name, value] of Object.entries(headers)) {
      assert.equal(error.headers.get(name), value, `header ${name}`);
    }
    return true;
  };
}

/** A valid client request head, with fields replaced (`null` removes one). */
export function request(
  fields: Record<string, string | null> = {},
  line: Partial<Omit<RequestHead, "headers">> = {},
): RequestHead {
  const headers = new Headers({
    host: "example.com",
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-key": KEY,
    "sec-websocket-version": "13",
  });
  for (const [name, value] of Object.entries(fields)) {
    if (value === null) headers.delete(name);
    else headers.set(name, value);
  }
  return { method: "GET", target: "/", version: "HTTP/1.1", ...line, headers };
}

/** A valid 101 response head for KEY, with fields replaced (`null` removes one). */
export function response(
  fields: Record<string, string | null> = {},
  status = 101,
): ResponseHead {
  const headers = new Headers({
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-accept": ACCEPT,
  });
  for (const [name, value] of Object.entries(fields)) {
    if (value === null) headers.delete(name);
    else headers.set(name, value);
  }
  return { version: "HTTP/1.1", status, statusText: "", headers };
}

export const NONE = { key: KEY, protocols: [], extensions: [] };
