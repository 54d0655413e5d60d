/**
 * The fuzzer's oracle for opening handshakes, written from RFC 6455 §4 and
 * RFC 9110/9112, independent of `src/http1_parse.ts` and `src/handshake.ts`.
 *
 * It judges a request (as our server must) or a response (as our client
 * must) from its raw bytes, and says which decisions are right:
 *
 * - `accept`: only accepting is right (a 101, or `connect()` resolving);
 * - `refuse`: only refusing is right, with one of `statuses`;
 * - `either`: the RFCs leave the choice to the recipient (a MAY or a SHOULD,
 *   such as a bare LF line ending, obsolete line folding, a bare CR, a
 *   request target with characters a URI does not allow), so both are.
 *
 * Every rule broken is a violation, strict (a MUST: the handshake must be
 * refused) or lenient (a MAY: it may be). A refusal's status must be one a
 * violation calls for: any of them, since the RFCs do not order the checks.
 *
 * wsstream's documented limits (README: 64 KiB head, 8 KiB line, 128 header
 * fields, refused with 431) are taken as given.
 *
 * @module
 */

/** The limits on an HTTP head (README, "Limits and defaults"). */
export const HEAD_LIMITS = {
  maxHeadSize: 64 * 1024,
  maxLineLength: 8 * 1024,
  maxHeaderCount: 128,
} as const;

/** Which decisions are right, and why. */
export interface Verdict {
  decision: "accept" | "refuse" | "either";
  /** The statuses a refusal may carry (for a client: `HandshakeError.status`). */
  statuses: Set<number>;
  /** A client may also give up with a `TimeoutError`. */
  timeout: boolean;
  /** Each rule broken, with `!` before a strict one. */
  reasons: string[];
  /** The `Sec-WebSocket-Key`, when the request carries exactly one. */
  key: string | null;
  /** The bytes after the head. */
  rest: Uint8Array;
}

class Violations {
  readonly reasons: string[] = [];
  readonly strict: string[] = [];
  readonly statuses = new Set<number>();

  add(kind: "strict" | "lenient", statuses: readonly number[], why: string) {
    this.reasons.push(kind === "strict" ? `!${why}` : why);
    if (kind === "strict") this.strict.push(why);
    for (const status of statuses) this.statuses.add(status);
  }

  verdict(
    key: string | null,
    rest: Uint8Array,
    timeout = false,
  ): Verdict {
    return {
      decision: this.strict.length > 0
        ? "refuse"
        : this.reasons.length > 0
        ? "either"
        : "accept",
      statuses: this.statuses,
      timeout,
      reasons: this.reasons,
      key,
      rest,
    };
  }
}

// ---------------------------------------------------------------------------
// Finding the head

/** A limit crossed: why, and the statuses a server may refuse it with. */
export interface LimitCrossed {
  why: string;
  statuses: readonly number[];
}

/** Where a head ends, or why none does. */
export type HeadScan =
  | { kind: "head"; head: Uint8Array; rest: Uint8Array }
  /** No end yet; `early` when a limit is already certain to be crossed. */
  | { kind: "incomplete"; early: LimitCrossed | null }
  | ({ kind: "too-large" } & LimitCrossed);

/**
 * Finds the head: lines end at LF (a recipient MAY take a bare LF as a line
 * end, RFC 9112 §2.2, so a bare LF LF ends it too), and the head ends at the
 * first empty line. The limits count every byte up to the end of the line
 * being read; a line's length leaves out its CRLF (or LF). A request line
 * over the limit may be refused with 414 (RFC 9112 §3) or 431. A line after
 * the last field line allowed may be refused as soon as it starts.
 */
export function scanHead(bytes: Uint8Array): HeadScan {
  let lineStart = 0;
  let lines = 0;
  for (let i = 0; i <= bytes.length; i++) {
    const atEnd = i === bytes.length;
    if (!atEnd && bytes[i] !== 0x0a) continue;
    let content = i - lineStart;
    if (content > 0 && bytes[i - 1] === 0x0d) content--;
    const size = atEnd ? bytes.length : i + 1;
    if (size > HEAD_LIMITS.maxHeadSize) {
      return {
        kind: "too-large",
        why: `head over ${HEAD_LIMITS.maxHeadSize} bytes`,
        statuses: [431],
      };
    }
    if (content > HEAD_LIMITS.maxLineLength) {
      return lines === 0
        ? {
          kind: "too-large",
          why: "request line too long",
          statuses: [414, 431],
        }
        : { kind: "too-large", why: "field line too long", statuses: [431] };
    }
    const tooMany: LimitCrossed = {
      why: `over ${HEAD_LIMITS.maxHeaderCount} header fields`,
      statuses: [431],
    };
    if (atEnd) {
      const early = content > 0 && lines > HEAD_LIMITS.maxHeaderCount;
      return { kind: "incomplete", early: early ? tooMany : null };
    }
    if (content === 0) {
      return {
        kind: "head",
        head: bytes.slice(0, i + 1),
        rest: bytes.slice(i + 1),
      };
    }
    if (++lines > HEAD_LIMITS.maxHeaderCount + 1) {
      return { kind: "too-large", ...tooMany };
    }
    lineStart = i + 1;
  }
  return { kind: "incomplete", early: null };
}

// ---------------------------------------------------------------------------
// Lines and fields

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// deno-lint-ignore no-control-regex
const OTHER_CTL = /[\x01-\x08\x0a-\x1f\x7f]/;

/**
 * The statuses a refusal may carry for each kind of violation: a server's
 * reply, or the `HandshakeError.status` of a client (0: not valid HTTP).
 */
interface Statuses {
  malformed: readonly number[];
  tooLarge: readonly number[];
}

const REQUEST_STATUSES: Statuses = { malformed: [400], tooLarge: [431] };
const RESPONSE_STATUSES: Statuses = { malformed: [0], tooLarge: [0] };

/** The head as text lines (latin1), with what was wrong about their ends. */
function headLines(
  head: Uint8Array,
  v: Violations,
  statuses: Statuses,
): string[] {
  let text = "";
  for (const byte of head) text += String.fromCharCode(byte);
  const raw = text.split("\n");
  raw.pop(); // after the final LF
  let bareLf = raw.pop() !== "\r"; // the empty line
  const lines = raw.map((line) => {
    if (line.endsWith("\r")) return line.slice(0, -1);
    bareLf = true;
    return line;
  });
  if (bareLf) {
    v.add(
      "lenient",
      statuses.malformed,
      "a bare LF ends a line (RFC 9112 §2.2: MAY)",
    );
    // A recipient that does not take a bare LF as a line end sees longer
    // lines, which may break the line limit.
    const longest = Math.max(...text.split("\r\n").map((l) => l.length));
    if (longest > HEAD_LIMITS.maxLineLength) {
      v.add(
        "lenient",
        statuses.tooLarge,
        "a line is too long when only CRLF ends lines",
      );
    }
  }
  return lines.map((line) => {
    // RFC 9112 §2.2: "A recipient of such a bare CR MUST consider that
    // element to be invalid or replace each bare CR with SP".
    if (line.includes("\r")) {
      v.add(
        "lenient",
        statuses.malformed,
        "bare CR (RFC 9112 §2.2: invalid, or SP)",
      );
      return line.replaceAll("\r", " ");
    }
    return line;
  });
}

/** Header fields by lower-case name: the value of each field line, in order. */
type Fields = Map<string, string[]>;

function trimOws(value: string): string {
  return value.replace(/^[ \t]+/, "").replace(/[ \t]+$/, "");
}

/** Parses field lines (RFC 9112 §5), with the RFC's latitude as lenient violations. */
function parseFields(
  lines: readonly string[],
  v: Violations,
  role: "request" | "response",
): Fields {
  const bad = role === "request"
    ? REQUEST_STATUSES.malformed
    : RESPONSE_STATUSES.malformed;
  const fields: Fields = new Map();
  let last: { name: string; index: number } | null = null;
  for (const line of lines) {
    if (line[0] === " " || line[0] === "\t") {
      if (last === null) {
        // RFC 9112 §2.2: whitespace before the first field: reject, or
        // consume the line "without further processing of it".
        v.add(
          "lenient",
          bad,
          "whitespace-preceded line before the first field",
        );
        continue;
      }
      // RFC 9112 §5.2: a server MUST reject (400) or replace the obs-fold
      // with SP; a user agent MUST replace it.
      v.add(
        "lenient",
        bad,
        role === "request"
          ? "obsolete line folding (RFC 9112 §5.2: 400 or SP)"
          : "obsolete line folding (RFC 9112 §5.2: a user agent unfolds it)",
      );
      const values = fields.get(last.name)!;
      values[last.index] = trimOws(`${values[last.index]} ${trimOws(line)}`);
      continue;
    }
    const colon = line.indexOf(":");
    if (colon === -1) {
      v.add("strict", bad, `field line without a colon`);
      continue;
    }
    const name = line.slice(0, colon);
    if (name === "") {
      v.add("strict", bad, "empty field name");
      continue;
    }
    if (/[ \t]$/.test(name) && TOKEN.test(trimOws(name))) {
      // RFC 9112 §5.1: a server MUST reject such a request with 400.
      v.add(
        role === "request" ? "strict" : "lenient",
        bad,
        "whitespace between a field name and its colon",
      );
      if (role === "request") continue;
    } else if (!TOKEN.test(name)) {
      v.add("strict", bad, `field name ${JSON.stringify(name)} is not a token`);
      continue;
    }
    let value = trimOws(line.slice(colon + 1));
    if (value.includes("\0")) {
      // RFC 9110 §5.5: reject, or replace each NUL with SP.
      v.add("lenient", bad, "NUL in a field value (RFC 9110 §5.5: or SP)");
      value = value.replaceAll("\0", " ");
    }
    if (OTHER_CTL.test(value)) {
      // RFC 9110 §5.5: invalid; "recipients MAY retain such characters".
      v.add("lenient", bad, "control character in a field value");
    }
    const key = trimOws(name).toLowerCase();
    const values = fields.get(key) ?? [];
    values.push(value);
    fields.set(key, values);
    last = { name: key, index: values.length - 1 };
  }
  return fields;
}

/** The elements of a comma-separated list (RFC 9110 §5.6.1), empty ones skipped. */
function listElements(values: readonly string[] | undefined): string[] {
  if (values === undefined) return [];
  return values.join(",").split(",").map(trimOws).filter((e) => e !== "");
}

function hasListToken(values: readonly string[] | undefined, token: string) {
  return listElements(values).some((e) => e.toLowerCase() === token);
}

// ---------------------------------------------------------------------------
// URIs (RFC 3986)

const PCHAR = "[A-Za-z0-9\\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2}";
const ORIGIN_FORM = new RegExp(
  `^(/(${PCHAR})*)+(\\?(${PCHAR}|[/?])*)?$`,
);
const REG_NAME = /^([A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$/;

/** Whether `value` is a valid `Host` (RFC 9110 §7.2: uri-host [ ":" port ]). */
export function isValidHost(value: string): boolean {
  let host = value;
  let port = "";
  if (value.startsWith("[")) {
    const close = value.indexOf("]");
    if (close === -1) return false;
    const literal = value.slice(1, close);
    const after = value.slice(close + 1);
    if (after !== "" && !after.startsWith(":")) return false;
    port = after.slice(1);
    const ipv6 = /^[0-9A-Fa-f:.]+$/.test(literal) && literal.includes(":");
    const future = /^v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+$/.test(
      literal,
    );
    if (!ipv6 && !future) return false;
    return /^\d*$/.test(port);
  }
  const colon = value.indexOf(":");
  if (colon !== -1) {
    host = value.slice(0, colon);
    port = value.slice(colon + 1);
  }
  return REG_NAME.test(host) && /^\d*$/.test(port);
}

// ---------------------------------------------------------------------------
// Requests (what our server must do)

/** The reason given when the request's only fault is a version other than 13. */
export const VERSION_MISMATCH = "!Sec-WebSocket-Version is not 13";

const KEY = /^[A-Za-z0-9+/]{21}[AQgw]==$/;
const KEY_LOOSE = /^[A-Za-z0-9+/]{22}==$/;
// RFC 9112 §3: SP, HTAB, VT, FF or bare CR may separate request-line words.
// deno-lint-ignore no-control-regex
const WHITESPACE = /[ \t\x0b\x0c\r]+/;

/**
 * What a server must do with a handshake request (RFC 6455 §4.2.1): accept
 * it (101), refuse it, or either.
 *
 * @param bytes Everything the client sends.
 * @param eof Whether the client then ends its side (half-close).
 * @param authority The server's authority, `host:port`.
 */
export function judgeRequest(
  bytes: Uint8Array,
  eof: boolean,
  authority: string,
): Verdict {
  const v = new Violations();
  const scan = scanHead(bytes);
  if (scan.kind === "too-large") {
    v.add("strict", scan.statuses, scan.why);
    return v.verdict(null, new Uint8Array(0));
  }
  if (scan.kind === "incomplete") {
    if (eof) v.add("strict", [400], "the client ended before the head did");
    else v.add("strict", [408], "the head never ends: the handshake times out");
    if (scan.early) v.add("strict", scan.early.statuses, scan.early.why);
    return v.verdict(null, new Uint8Array(0));
  }
  const lines = headLines(scan.head, v, REQUEST_STATUSES);
  const requestLine = lines[0] ?? "";
  // RFC 9112 §3: method SP request-target SP HTTP-version; recipients "MAY
  // instead parse on whitespace-delimited word boundaries".
  let parts = requestLine.split(" ");
  if (parts.length !== 3 || parts.some((part) => part === "")) {
    const words = requestLine.split(WHITESPACE).filter((w) => w !== "");
    if (words.length === 3) {
      v.add("lenient", [400], "request line not separated by single spaces");
      parts = words;
    } else {
      v.add("strict", [400], "malformed request line");
      parseFields(lines.slice(1), v, "request");
      return v.verdict(null, scan.rest);
    }
  }
  const [method, target, version] = parts as [string, string, string];
  if (!TOKEN.test(method)) v.add("strict", [400], "method is not a token");
  else if (method !== "GET") {
    v.add("strict", [400, 405, 501], `method ${method}, not GET (§4.1)`);
  }
  judgeTarget(target, v);
  const match = /^HTTP\/(\d)\.(\d)$/.exec(version);
  if (match === null) v.add("strict", [400], "malformed HTTP version");
  else if (match[1] !== "1") {
    v.add("strict", [400, 505], `HTTP major version ${match[1]}`);
  } else if (match[2] === "0") {
    v.add("strict", [400, 426, 505], "HTTP/1.0 (§4.1: at least 1.1)");
  }
  const fields = parseFields(lines.slice(1), v, "request");

  // RFC 9112 §3.2: exactly one Host, with a valid value. RFC 6455 §4.2.1:
  // it names the server's authority; a server that does not check that may
  // still accept.
  const hosts = fields.get("host") ?? [];
  if (hosts.length === 0) v.add("strict", [400], "no Host");
  else if (hosts.length > 1) v.add("strict", [400], "Host repeated");
  else if (!isValidHost(hosts[0]!)) {
    v.add("strict", [400], `invalid Host ${JSON.stringify(hosts[0])}`);
  } else if (hosts[0]!.toLowerCase() !== authority.toLowerCase()) {
    v.add("lenient", [400], "Host is not the server's authority");
  }
  if (!hasListToken(fields.get("upgrade"), "websocket")) {
    v.add("strict", [400, 426], "no websocket in Upgrade");
  }
  if (!hasListToken(fields.get("connection"), "upgrade")) {
    v.add("strict", [400, 426], "no upgrade in Connection");
  }
  // §4.4: a version the server does not speak is answered with the ones it
  // does; a missing or repeated field is a malformed request (§11.3.5: it
  // "MUST NOT appear more than once").
  const versions = fields.get("sec-websocket-version") ?? [];
  if (versions.length !== 1) {
    v.add(
      "strict",
      [400, 426],
      `${versions.length} Sec-WebSocket-Version fields`,
    );
  } else if (versions[0] !== "13") {
    v.add("strict", [400, 426], VERSION_MISMATCH.slice(1));
  }
  // §4.2.1: "base64-encoded value that, when decoded, is 16 bytes";
  // §11.3.1: it "MUST NOT appear more than once".
  const keys = fields.get("sec-websocket-key") ?? [];
  let key: string | null = null;
  if (keys.length !== 1) {
    v.add("strict", [400], `${keys.length} Sec-WebSocket-Key fields`);
  } else if (KEY.test(keys[0]!)) {
    key = keys[0]!;
  } else if (KEY_LOOSE.test(keys[0]!)) {
    // Decodes to 16 bytes, but with pad bits set: RFC 4648 §3.5 lets a
    // decoder refuse it.
    v.add("lenient", [400], "Sec-WebSocket-Key has non-zero pad bits");
    key = keys[0]!;
  } else {
    v.add("strict", [400], "Sec-WebSocket-Key is not base64 of 16 bytes");
  }
  judgeProtocols(fields.get("sec-websocket-protocol"), v);
  judgeExtensions(fields.get("sec-websocket-extensions"), v);
  return v.verdict(key, scan.rest);
}

function judgeTarget(target: string, v: Violations): void {
  if (/[^\x21-\x7e]/.test(target)) {
    v.add("strict", [400], "request target has a non-visible character");
    return;
  }
  if (target.startsWith("/")) {
    // RFC 9112 §3: for an invalid request-line, a server "SHOULD respond
    // with either a 400 (Bad Request) error or a 301 (Moved Permanently)".
    if (!ORIGIN_FORM.test(target)) {
      v.add(
        "lenient",
        [400, 301],
        "request target is not a valid origin-form URI",
      );
    }
    return;
  }
  // §4.1 and §4.2.1: an absolute http(s) or ws(s) URI names the resource too.
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(target);
  if (
    scheme === null ||
    !["ws", "wss", "http", "https"].includes(scheme[1]!.toLowerCase())
  ) {
    v.add(
      "strict",
      [400],
      "request target is neither a path nor a ws/http URI",
    );
    return;
  }
  let url: URL | null = null;
  try {
    url = new URL(target);
  } catch {
    // below
  }
  if (url === null || url.host === "") {
    v.add("strict", [400], "request target is not a valid absolute URI");
  } else if (target.includes("#")) {
    v.add("lenient", [400], "request target has a fragment");
  }
}

/** §4.3: Sec-WebSocket-Protocol-Client = 1#token, "MUST all be unique". */
function judgeProtocols(values: string[] | undefined, v: Violations): void {
  if (values === undefined) return;
  const elements = listElements(values);
  if (elements.length === 0) {
    v.add("lenient", [400], "Sec-WebSocket-Protocol lists nothing");
    return;
  }
  for (const element of elements) {
    if (!TOKEN.test(element)) {
      v.add("strict", [400], "Sec-WebSocket-Protocol element is not a token");
      return;
    }
  }
  if (new Set(elements).size !== elements.length) {
    v.add("strict", [400], "Sec-WebSocket-Protocol repeats a name");
  }
}

/**
 * §9.1: extension-list = 1#extension; extension = extension-token *( ";"
 * extension-param ); extension-param = token [ "=" (token | quoted-string) ],
 * a quoted value being a token once unescaped. A parameter repeated in one
 * offer is not a syntax error, but a server may refuse it.
 */
function judgeExtensions(values: string[] | undefined, v: Violations): void {
  if (values === undefined) return;
  const text = values.join(",");
  const param = String.raw`[ \t]*;[ \t]*([!#$%&'*+\-.^_\`|~0-9A-Za-z]+)` +
    String
      .raw`(?:[ \t]*=[ \t]*([!#$%&'*+\-.^_\`|~0-9A-Za-z]+|"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[^\x00-\x08\x0a-\x1f\x7f])*"))?`;
  const extension = new RegExp(
    String.raw`^[ \t]*[!#$%&'*+\-.^_\`|~0-9A-Za-z]+((?:${param})*)[ \t]*$`,
  );
  let any = false;
  for (const element of text.split(",")) {
    if (trimOws(element) === "") continue;
    any = true;
    const match = extension.exec(element);
    if (match === null) {
      v.add("strict", [400], "malformed Sec-WebSocket-Extensions");
      return;
    }
    const names = new Set<string>();
    for (const p of match[1]!.matchAll(new RegExp(param, "g"))) {
      const value = p[2];
      if (value !== undefined && value.startsWith('"')) {
        const unquoted = value.slice(1, -1).replace(/\\(.)/g, "$1");
        if (!TOKEN.test(unquoted)) {
          v.add("strict", [400], "quoted extension parameter is not a token");
          return;
        }
      }
      if (names.has(p[1]!)) {
        v.add("lenient", [400], "extension parameter repeated in one offer");
      }
      names.add(p[1]!);
    }
  }
  if (!any) v.add("lenient", [400], "Sec-WebSocket-Extensions lists nothing");
}

// ---------------------------------------------------------------------------
// Responses (what our client must do)

/**
 * What a client must do with the server's response (RFC 6455 §4.1): accept
 * it, or refuse it (`HandshakeError` with one of `statuses`: the response's
 * status, or 0 for a response that is not valid HTTP), or either.
 *
 * @param bytes Everything the server sends.
 * @param eof Whether the server then ends its side.
 * @param key The `Sec-WebSocket-Key` the client sent.
 * @param accept The right `Sec-WebSocket-Accept` for it.
 */
export function judgeResponse(
  bytes: Uint8Array,
  eof: boolean,
  accept: string,
): Verdict {
  const v = new Violations();
  const scan = scanHead(bytes);
  if (scan.kind === "too-large") {
    v.add("strict", [0], scan.why);
    return v.verdict(null, new Uint8Array(0));
  }
  if (scan.kind === "incomplete") {
    if (scan.early) v.add("strict", [0], scan.early.why);
    if (eof) {
      v.add("strict", [0], "the server ended before the head did");
      return v.verdict(null, new Uint8Array(0));
    }
    v.add("strict", [], "the head never ends: the handshake times out");
    return v.verdict(null, new Uint8Array(0), true);
  }
  const lines = headLines(scan.head, v, RESPONSE_STATUSES);
  const statusLine = lines[0] ?? "";
  // RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
  const match = /^HTTP\/(\d)\.(\d) (\d{3})( [\t\x20-\x7e\x80-\xff]*)?$/.exec(
    statusLine,
  );
  if (match === null) {
    v.add("strict", [0], "malformed status line");
    parseFields(lines.slice(1), v, "response");
    return v.verdict(null, scan.rest);
  }
  const status = Number(match[3]);
  if (match[4] === undefined) {
    v.add("lenient", [0, status], "no SP before the empty reason phrase");
  }
  if (match[1] !== "1") {
    v.add("strict", [0], `HTTP major version ${match[1]}`);
  } else if (match[2] === "0") {
    v.add("lenient", [0, status], "HTTP/1.0 response to an upgrade");
  }
  if (status < 100 || status > 599) {
    v.add("strict", [0], `status ${status} out of range`);
  }
  const fields = parseFields(lines.slice(1), v, "response");
  if (status !== 101) {
    // §4.1: "If the status code received from the server is not 101, the
    // client handles the response per HTTP procedures" — not a WebSocket.
    v.add("strict", [0, status], `status ${status}`);
    return v.verdict(null, scan.rest);
  }
  // Everything from here makes the client "Fail the WebSocket Connection".
  const fail = (why: string) => v.add("strict", [0, 101], why);
  if (!hasListToken(fields.get("upgrade"), "websocket")) {
    fail("no websocket in Upgrade");
  }
  if (!hasListToken(fields.get("connection"), "upgrade")) {
    fail("no upgrade in Connection");
  }
  // §11.3.3: Sec-WebSocket-Accept "MUST NOT appear more than once".
  const accepts = fields.get("sec-websocket-accept") ?? [];
  if (accepts.length !== 1) {
    fail(`${accepts.length} Sec-WebSocket-Accept fields`);
  } else if (accepts[0] !== accept) fail("wrong Sec-WebSocket-Accept");
  // The client offers no subprotocol and no extension.
  const protocols = fields.get("sec-websocket-protocol");
  if (protocols !== undefined) {
    if (protocols.some((p) => p !== "")) fail("a subprotocol nobody offered");
    else v.add("lenient", [0, 101], "empty Sec-WebSocket-Protocol");
  }
  const extensions = fields.get("sec-websocket-extensions");
  if (extensions !== undefined) {
    if (listElements(extensions).length > 0) {
      fail("an extension nobody offered");
    } else v.add("lenient", [0, 101], "empty Sec-WebSocket-Extensions");
  }
  return v.verdict(null, scan.rest);
}

// ---------------------------------------------------------------------------
// Reading what our server answered

/** A response our server sent, parsed strictly: it must be flawless HTTP/1.1. */
export interface ServerResponse {
  status: number;
  fields: Fields;
  body: Uint8Array;
}

/**
 * Parses a response our server sent; returns the problem instead when it is
 * not flawless HTTP/1.1 (CRLF everywhere, token names, no control characters).
 */
export function parseServerResponse(
  bytes: Uint8Array,
): ServerResponse | string {
  const scan = scanHead(bytes);
  if (scan.kind !== "head") return `the response head is ${scan.kind}`;
  const v = new Violations();
  const lines = headLines(scan.head, v, RESPONSE_STATUSES);
  const match = /^HTTP\/1\.1 (\d{3}) [\t\x20-\x7e]*$/.exec(lines[0] ?? "");
  if (match === null) {
    return `malformed status line ${JSON.stringify(lines[0])}`;
  }
  const fields = parseFields(lines.slice(1), v, "response");
  if (v.reasons.length > 0) return `malformed head: ${v.reasons.join("; ")}`;
  return { status: Number(match[1]), fields, body: scan.rest };
}

/** The one value of a field our server sent, or `null`. */
export function fieldOf(fields: Fields, name: string): string | null {
  const values = fields.get(name);
  return values === undefined ? null : values.join(", ");
}

/** Whether a field's list holds `token`, case-insensitively. */
export function fieldHasToken(
  fields: Fields,
  name: string,
  token: string,
): boolean {
  return hasListToken(fields.get(name), token);
}

// ---------------------------------------------------------------------------
// The accept value, computed here

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** `Sec-WebSocket-Accept` for a key (RFC 6455 §4.2.2). */
export async function acceptFor(key: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-1",
    new TextEncoder().encode(key + GUID),
  );
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}
