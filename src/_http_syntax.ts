/**
 * HTTP's character classes and the small helpers that go with them, shared
 * by the head parser and writer (`http1_parse.ts`, `http1_write.ts`), the handshake
 * (`handshake.ts`) and the fallback server (`_http_fallback.ts`). Private:
 * not re-exported by `mod.ts`. It imports nothing of ours, so any of them
 * may import it.
 *
 * @module
 */

/** RFC 9110 §5.6.2: `token = 1*tchar`. */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * 1 for the bytes (and char codes) of RFC 9110 §5.6.2's tchar, else 0:
 *
 * ```
 * tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
 *         "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
 * ```
 *
 * A table, not a regular expression: the head parser looks up every byte
 * of every field name in it.
 */
export const TCHAR = new Uint8Array(128);
for (const char of "!#$%&'*+-.^_`|~") TCHAR[char.charCodeAt(0)] = 1;
for (let code = 0x30; code <= 0x39; code++) TCHAR[code] = 1;
for (let code = 0x41; code <= 0x5a; code++) TCHAR[code] = 1;
for (let code = 0x61; code <= 0x7a; code++) TCHAR[code] = 1;

/**
 * The characters no field value, reason phrase or quoted-string may hold.
 * RFC 9110 §5.5: field values are VCHAR, obs-text, SP and HTAB; "Field
 * values containing CR, LF, or NUL characters are invalid and dangerous".
 * The other controls are invalid too, and nothing legitimate sends them.
 * (§5.6.4's qdtext and quoted-pair allow the same: HTAB, SP, VCHAR and
 * obs-text.)
 */
// deno-lint-ignore no-control-regex
export const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

// A Map, not an object literal: a field named "constructor" must not find
// Object's constructor.
const CANONICAL_NAMES = new Map([
  ["sec-websocket-key", "Sec-WebSocket-Key"],
  ["sec-websocket-version", "Sec-WebSocket-Version"],
  ["sec-websocket-accept", "Sec-WebSocket-Accept"],
  ["sec-websocket-protocol", "Sec-WebSocket-Protocol"],
  ["sec-websocket-extensions", "Sec-WebSocket-Extensions"],
]);

/**
 * A lower-case field name in its conventional case (`Sec-WebSocket-Key`,
 * `Content-Type`). RFC 9110 §5.1 makes names case-insensitive, but some old
 * peers compare them exactly.
 */
export function canonical(name: string): string {
  return CANONICAL_NAMES.get(name) ??
    name.replace(/(^|-)([a-z])/g, (_, dash, char) => dash + char.toUpperCase());
}

/** A value for an error message: bare when short and printable, else quoted. */
export function show(value: string): string {
  const short = value.length > 64 ? value.slice(0, 64) : value;
  const more = short === value ? "" : "...";
  return /^[\x21-\x7e]*$/.test(short) && short !== ""
    ? short + more
    : JSON.stringify(short) + more;
}
