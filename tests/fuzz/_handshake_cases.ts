/**
 * Opening handshakes for the fuzzer: a valid client request (for our server)
 * or server response (for our client), then one mutation from a catalogue:
 * header names and values, whitespace, missing and repeated fields, keys and
 * accept values, line endings, obsolete folding, control bytes, the size
 * limits at their edges, truncation and garbage.
 *
 * @module
 */
import type { Random } from "./_random.ts";
import { frame, OP, writeFrame } from "./_wire.ts";
import { HEAD_LIMITS } from "./_http_oracle.ts";

/** An HTTP head being built: lines without their ends, each end, the final empty line. */
export interface HeadDraft {
  lines: string[];
  eols: string[];
  end: string;
}

/** The bytes of a draft; every char is one byte (latin1). */
export function headBytes(draft: HeadDraft): Uint8Array {
  let text = "";
  draft.lines.forEach((line, i) => (text += line + draft.eols[i]));
  text += draft.end;
  return latin1(text);
}

/** A string's chars as bytes (each below 256). */
export function latin1(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 0xff;
  return out;
}

function draft(lines: string[]): HeadDraft {
  return { lines, eols: lines.map(() => "\r\n"), end: "\r\n" };
}

/** The index of the first field line named `name` (case-insensitive), or -1. */
function fieldAt(d: HeadDraft, name: string): number {
  const lower = name.toLowerCase();
  return d.lines.findIndex((line, i) =>
    i > 0 && line.slice(0, line.indexOf(":")).trim().toLowerCase() === lower
  );
}

function setField(d: HeadDraft, name: string, value: string): void {
  const i = fieldAt(d, name);
  if (i === -1) addField(d, `${name}: ${value}`);
  else d.lines[i] = `${name}: ${value}`;
}

function addField(d: HeadDraft, line: string, at = d.lines.length): void {
  d.lines.splice(at, 0, line);
  d.eols.splice(at, 0, "\r\n");
}

function removeLine(d: HeadDraft, i: number): void {
  d.lines.splice(i, 1);
  d.eols.splice(i, 1);
}

/** A random field line index (not the start line); adds one if there is none. */
function someField(random: Random, d: HeadDraft): number {
  if (d.lines.length < 2) addField(d, "X-Fuzz: 1");
  return random.int(1, d.lines.length - 1);
}

function randomCase(random: Random, text: string): string {
  return [...text].map((
    c,
  ) => (random.chance(0.5) ? c.toUpperCase() : c.toLowerCase()))
    .join("");
}

function shuffleFields(random: Random, d: HeadDraft): void {
  for (let i = d.lines.length - 1; i > 1; i--) {
    const j = random.int(1, i);
    [d.lines[i], d.lines[j]] = [d.lines[j]!, d.lines[i]!];
  }
}

/** 16 random bytes as base64: a valid `Sec-WebSocket-Key`. */
export function randomKey(random: Random): string {
  return btoa(String.fromCharCode(...random.bytes(16)));
}

/** A mutation: changes the draft, or returns bytes of its own. */
type HeadMutation = (
  random: Random,
  d: HeadDraft,
) => string | { detail: string; bytes: Uint8Array };

/** Mutations of the syntax, for requests and responses alike. */
const SYNTAX: readonly (readonly [string, number, HeadMutation])[] = [
  ["name-case", 3, (random, d) => {
    for (let i = 1; i < d.lines.length; i++) {
      const colon = d.lines[i]!.indexOf(":");
      d.lines[i] = randomCase(random, d.lines[i]!.slice(0, colon)) +
        d.lines[i]!.slice(colon);
    }
    return "";
  }],
  ["ows", 3, (random, d) => {
    const i = someField(random, d);
    const line = d.lines[i]!;
    const colon = line.indexOf(":");
    const ws = () => random.pick(["", " ", "  ", "\t", " \t "]);
    d.lines[i] = `${line.slice(0, colon)}:${ws()}${
      line.slice(colon + 1).trim()
    }${ws()}`;
    return `line ${i}`;
  }],
  ["lf-only", 2, (_, d) => {
    d.eols = d.eols.map(() => "\n");
    d.end = "\n";
    return "";
  }],
  ["one-lf", 2, (random, d) => {
    const i = random.int(0, d.lines.length);
    if (i === d.lines.length) d.end = "\n";
    else d.eols[i] = "\n";
    return `line ${i}`;
  }],
  ["bare-cr", 2, (random, d) => {
    const i = someField(random, d);
    d.lines[i] += `\r${random.pick(["", "x", " y"])}`;
    return `line ${i}`;
  }],
  ["obs-fold", 2, (random, d) => {
    const i = someField(random, d);
    const line = d.lines[i]!;
    const at = random.int(line.indexOf(":") + 1, line.length);
    d.lines[i] = line.slice(0, at);
    addField(d, `${random.pick([" ", "\t", "  "])}${line.slice(at)}`, i + 1);
    return `line ${i}`;
  }],
  ["space-before-colon", 2, (random, d) => {
    const i = someField(random, d);
    d.lines[i] = d.lines[i]!.replace(":", random.pick([" :", "\t:"]));
    return `line ${i}`;
  }],
  ["leading-whitespace", 1, (random, d) => {
    d.lines[1] = random.pick([" ", "\t"]) + (d.lines[1] ?? "X: 1");
    return "";
  }],
  ["control-in-value", 3, (random, d) => {
    const i = someField(random, d);
    const byte = random.pick([0x00, 0x01, 0x07, 0x08, 0x0b, 0x0c, 0x1b, 0x7f]);
    const line = d.lines[i]!;
    const at = random.int(line.indexOf(":") + 1, line.length);
    d.lines[i] = line.slice(0, at) + String.fromCharCode(byte) + line.slice(at);
    return `0x${byte.toString(16)} in line ${i}`;
  }],
  ["bad-name", 2, (random, d) => {
    const i = someField(random, d);
    const bad = random.pick(["\0", "\x7f", " ", "(", "@", "é", '"', "/"]);
    d.lines[i] = bad + d.lines[i]!;
    return `${JSON.stringify(bad)} in line ${i}`;
  }],
  ["obs-text", 1, (random, d) => {
    addField(d, `X-Text: caf\xe9 ${random.pick(["\xff", "\x80", "\xa0"])}`);
    return "";
  }],
  ["no-colon", 1, (random, d) => {
    const i = someField(random, d);
    d.lines[i] = d.lines[i]!.replace(":", "");
    return `line ${i}`;
  }],
  ["empty-name", 1, (_, d) => {
    addField(d, ": value");
    return "";
  }],
  ["long-line", 2, (random, d) => {
    const length = HEAD_LIMITS.maxLineLength + random.pick([-1, 0, 1, 2, 300]);
    addField(d, `X-Long: ${"a".repeat(length - 8)}`);
    return `a ${length}-byte line`;
  }],
  ["many-fields", 2, (random, d) => {
    const total = HEAD_LIMITS.maxHeaderCount + random.pick([-1, 0, 1, 2]);
    for (let i = d.lines.length - 1; i < total; i++) {
      addField(d, `X-F${i}: ${i}`);
    }
    return `${total} fields`;
  }],
  ["huge-head", 2, (random, d) => {
    const target = HEAD_LIMITS.maxHeadSize +
      random.pick([-2, -1, 0, 1, 2, 600]);
    let remaining = target - headBytes(d).length;
    for (let n = 0; remaining > 0; n++) {
      const size = Math.min(remaining, 8000);
      // The last line takes what is left; too short a rest goes to the one before.
      const take = remaining - size < 16 ? remaining : size;
      const name = `X-B${n}: `;
      addField(d, name + "b".repeat(Math.max(0, take - name.length - 2)));
      remaining -= Math.max(take, name.length + 2);
    }
    return `a ${target}-byte head`;
  }],
  ["truncate", 4, (random, d) => {
    const bytes = headBytes(d);
    const at = random.int(0, bytes.length - 1);
    return { detail: `at ${at} of ${bytes.length}`, bytes: bytes.slice(0, at) };
  }],
  ["garbage", 2, (random) => {
    const bytes = random.bytes(random.int(1, 300));
    const end = random.chance(0.5) ? latin1("\r\n\r\n") : new Uint8Array(0);
    return {
      detail: `${bytes.length} bytes`,
      bytes: new Uint8Array([...bytes, ...end]),
    };
  }],
  ["empty", 1, () => ({ detail: "", bytes: new Uint8Array(0) })],
  ["byte-flip", 3, (random, d) => {
    const bytes = headBytes(d);
    const flips = random.int(1, 3);
    for (let i = 0; i < flips; i++) {
      bytes[random.int(0, bytes.length - 1)]! ^= random.int(1, 255);
    }
    return { detail: `${flips} byte(s)`, bytes };
  }],
];

/** Mutations of a client's request. */
const REQUEST: readonly (readonly [string, number, HeadMutation])[] = [
  ["valid", 10, () => ""],
  ["value-case", 2, (random, d) => {
    setField(d, "Upgrade", randomCase(random, "websocket"));
    setField(d, "Connection", randomCase(random, "upgrade"));
    return "";
  }],
  ["token-lists", 2, (random, d) => {
    setField(
      d,
      "Connection",
      random.pick([
        "keep-alive, Upgrade",
        "Upgrade, close",
        "upgrade,keep-alive",
        ", Upgrade,",
      ]),
    );
    setField(
      d,
      "Upgrade",
      random.pick([
        "websocket",
        "h2c, websocket",
        "websocket, h2c",
        "websocket/13",
      ]),
    );
    return "";
  }],
  ["drop", 5, (random, d) => {
    const name = random.pick([
      "Host",
      "Upgrade",
      "Connection",
      "Sec-WebSocket-Key",
      "Sec-WebSocket-Version",
    ]);
    const i = fieldAt(d, name);
    if (i !== -1) removeLine(d, i);
    return name;
  }],
  ["duplicate", 5, (random, d) => {
    const name = random.pick([
      "Host",
      "Upgrade",
      "Connection",
      "Sec-WebSocket-Key",
      "Sec-WebSocket-Version",
      "Sec-WebSocket-Protocol",
    ]);
    const i = fieldAt(d, name);
    const line = i === -1 ? `${name}: chat` : d.lines[i]!;
    const value = random.chance(0.5)
      ? line
      : `${name}: ${random.pick(["other", "13", "websocket", "x"])}`;
    addField(d, value, random.int(1, d.lines.length));
    return name;
  }],
  ["key", 4, (random, d) => {
    const key = random.pick([
      btoa(String.fromCharCode(...random.bytes(15))),
      btoa(String.fromCharCode(...random.bytes(17))),
      randomKey(random).replace(/=+$/, ""),
      randomKey(random).replace(/^./, "*"),
      randomKey(random).slice(0, 21) + "B==",
      randomKey(random) + " x",
      "",
      "dGhlIHNhbXBsZSBub25jZQ==",
    ]);
    setField(d, "Sec-WebSocket-Key", key);
    return JSON.stringify(key);
  }],
  ["version", 4, (random, d) => {
    const version = random.pick([
      "8",
      "12",
      "14",
      "",
      "13, 8",
      "013",
      "13 13",
      " 13 ",
      "thirteen",
    ]);
    setField(d, "Sec-WebSocket-Version", version);
    return JSON.stringify(version);
  }],
  ["method", 2, (random, d) => {
    const method = random.pick([
      "POST",
      "get",
      "HEAD",
      "PUT",
      "CONNECT",
      "G(T",
      "OPTIONS",
    ]);
    d.lines[0] = d.lines[0]!.replace(/^\S+/, method);
    return method;
  }],
  ["http-version", 3, (random, d) => {
    const version = random.pick([
      "HTTP/1.0",
      "HTTP/2.0",
      "HTTP/1.2",
      "HTTP/1.9",
      "HTTP/1",
      "HTTP/11",
      "http/1.1",
      "HTTP/3.0",
      "HTTP/1.1 ",
    ]);
    d.lines[0] = d.lines[0]!.replace(/HTTP\/1\.1$/, version);
    return version;
  }],
  ["request-line", 2, (random, d) => {
    const [method, target, version] = d.lines[0]!.split(" ");
    d.lines[0] = random.pick([
      `${method}  ${target} ${version}`,
      `${method}\t${target}\t${version}`,
      ` ${method} ${target} ${version}`,
      `${method} ${target}`,
      `${method} ${version}`,
      `${method} ${target} ${version} extra`,
      "",
    ]);
    return JSON.stringify(d.lines[0]);
  }],
  ["target", 3, (random, d) => {
    const target = random.pick([
      "/",
      "*",
      "http://127.0.0.1/fuzz",
      "ws://127.0.0.1:1/p?q=1",
      "wss://h/",
      "ftp://h/",
      "example.com:80",
      "/%zz",
      '/a"b',
      "/a{b}",
      "/\xfc",
      "/#frag",
      "//double//slash",
      "/?q=a?b/c",
      "http:///nohost",
    ]);
    const [method, , version] = d.lines[0]!.split(" ");
    d.lines[0] = `${method} ${target} ${version}`;
    return JSON.stringify(target);
  }],
  ["long-target", 1, (random, d) => {
    const [method, , version] = d.lines[0]!.split(" ");
    const length = HEAD_LIMITS.maxLineLength + random.pick([-1, 0, 1, 2]);
    const pad = length - `${method}  ${version}`.length - 1;
    d.lines[0] = `${method} /${"t".repeat(pad)} ${version}`;
    return `a ${length}-byte request line`;
  }],
  ["host", 3, (random, d) => {
    const host = random.pick([
      "",
      "a b",
      "[::1]:80",
      "[::1",
      "[v1.x]",
      "host:port",
      "a:1:2",
      "\xff",
      "example.com",
      "127.0.0.1:",
      "a@b",
      "a,b",
      "a/b",
      "[::1]x",
    ]);
    setField(d, "Host", host);
    return JSON.stringify(host);
  }],
  ["protocol", 2, (random, d) => {
    const value = random.pick([
      "chat",
      "chat, superchat",
      "",
      ",",
      "chat, chat",
      "a b",
      "chat,,x",
      '"chat"',
    ]);
    setField(d, "Sec-WebSocket-Protocol", value);
    return JSON.stringify(value);
  }],
  ["extensions", 2, (random, d) => {
    const value = random.pick([
      "permessage-deflate",
      "permessage-deflate; client_max_window_bits",
      'permessage-deflate; client_max_window_bits="10"',
      'x; a="b c"',
      "x; a=1; a=2",
      ";",
      "",
      "x y",
      "x; =1",
      "a, b; c",
    ]);
    setField(d, "Sec-WebSocket-Extensions", value);
    return JSON.stringify(value);
  }],
  ["frames-after-head", 2, (random, d) => {
    const close = writeFrame(
      frame(OP.close, new Uint8Array([0x03, 0xe8]), random.maskKey()),
    );
    return {
      detail: "a close frame in the same bytes",
      bytes: new Uint8Array([...headBytes(d), ...close]),
    };
  }],
  ...SYNTAX,
];

/** Mutations of a server's response. */
const RESPONSE: readonly (readonly [string, number, HeadMutation])[] = [
  ["valid", 10, () => ""],
  ["value-case", 2, (random, d) => {
    setField(d, "Upgrade", randomCase(random, "websocket"));
    setField(
      d,
      "Connection",
      random.pick(["keep-alive, Upgrade", randomCase(random, "upgrade")]),
    );
    return "";
  }],
  ["status", 5, (random, d) => {
    const status = random.pick([
      "200",
      "204",
      "301",
      "400",
      "401",
      "403",
      "404",
      "426",
      "500",
      "503",
      "100",
      "102",
      "199",
      "600",
      "999",
      "000",
      "099",
    ]);
    d.lines[0] = `HTTP/1.1 ${status} Whatever`;
    if (random.chance(0.6)) {
      const body = random.pick(["", "no", "Not a WebSocket server\n"]);
      setField(d, "Content-Length", String(body.length));
      return {
        detail: status,
        bytes: new Uint8Array([...headBytes(d), ...latin1(body)]),
      };
    }
    return status;
  }],
  ["status-line", 3, (random, d) => {
    d.lines[0] = random.pick([
      "HTTP/1.1 101",
      "HTTP/1.1 101 ",
      "HTTP/1.1  101 Switching Protocols",
      "HTTP/1.0 101 Switching Protocols",
      "HTTP/2 101 Switching Protocols",
      "HTTP/2.0 101 Switching Protocols",
      "HTTP/1.1 1O1 Switching Protocols",
      "http/1.1 101 Switching Protocols",
      "HTTP/1.1 101 Sw\x01tching",
      " HTTP/1.1 101 Switching Protocols",
      "HTTP/1.1 101 \xc7a va",
      "HTTP/1.1 1010 Switching",
    ]);
    return JSON.stringify(d.lines[0]);
  }],
  ["drop", 4, (random, d) => {
    const name = random.pick(["Upgrade", "Connection", "Sec-WebSocket-Accept"]);
    const i = fieldAt(d, name);
    if (i !== -1) removeLine(d, i);
    return name;
  }],
  ["duplicate", 3, (random, d) => {
    const name = random.pick(["Upgrade", "Connection", "Sec-WebSocket-Accept"]);
    const i = fieldAt(d, name);
    addField(d, d.lines[i] ?? `${name}: x`, random.int(1, d.lines.length));
    return name;
  }],
  ["accept", 5, (random, d) => {
    const i = fieldAt(d, "Sec-WebSocket-Accept");
    const accept = d.lines[i]!.slice(d.lines[i]!.indexOf(":") + 1).trim();
    const at = random.int(0, accept.length - 2);
    const swapped = accept[at] === "A" ? "B" : "A";
    const value = random.pick([
      accept.slice(0, at) + swapped + accept.slice(at + 1),
      accept.toLowerCase(),
      accept.slice(0, -1),
      accept + "=",
      "",
      "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
      ` \t${accept} `,
    ]);
    d.lines[i] = `Sec-WebSocket-Accept: ${value}`;
    return JSON.stringify(value);
  }],
  ["upgrade-value", 2, (random, d) => {
    setField(
      d,
      "Upgrade",
      random.pick([
        "websocket2",
        "h2c",
        "web socket",
        "",
        "websocket, h2c",
        "h2c, websocket",
      ]),
    );
    return "";
  }],
  ["connection-value", 2, (random, d) => {
    setField(
      d,
      "Connection",
      random.pick(["close", "keep-alive", "Upgraded", "Upgrade, close", ""]),
    );
    return "";
  }],
  ["protocol", 2, (random, d) => {
    setField(d, "Sec-WebSocket-Protocol", random.pick(["chat", "", "x, y"]));
    return "";
  }],
  ["extensions", 2, (random, d) => {
    setField(
      d,
      "Sec-WebSocket-Extensions",
      random.pick(["permessage-deflate", "", ",", "x;;"]),
    );
    return "";
  }],
  ...SYNTAX,
];

/** A handshake head, mutated. */
export interface FuzzedHead {
  mutation: string;
  bytes: Uint8Array;
}

function mutate(
  random: Random,
  d: HeadDraft,
  catalogue: readonly (readonly [string, number, HeadMutation])[],
): FuzzedHead {
  const [name, , apply] = random.weighted(
    catalogue.map((entry) => [entry[1], entry] as const),
  );
  const result = apply(random, d);
  const detail = typeof result === "string" ? result : result.detail;
  return {
    mutation: detail === "" ? name : `${name}: ${detail}`,
    bytes: typeof result === "string" ? headBytes(d) : result.bytes,
  };
}

/** A valid request to `authority` for `target`, with extra fields now and then. */
export function validRequest(
  random: Random,
  authority: string,
  target: string,
  key: string,
): HeadDraft {
  const d = draft([
    `GET ${target} HTTP/1.1`,
    `Host: ${authority}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Key: ${key}`,
    "Sec-WebSocket-Version: 13",
  ]);
  for (
    const extra of [
      "Origin: http://127.0.0.1",
      "User-Agent: wsstream-fuzz/1",
      "Sec-WebSocket-Protocol: chat, superchat",
      "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
      "Cache-Control: no-cache",
    ]
  ) {
    if (random.chance(0.25)) addField(d, extra);
  }
  if (random.chance(0.5)) shuffleFields(random, d);
  return d;
}

/** A fuzzed request to our server. */
export function fuzzRequest(
  random: Random,
  authority: string,
  target: string,
): FuzzedHead {
  return mutate(
    random,
    validRequest(random, authority, target, randomKey(random)),
    REQUEST,
  );
}

/** A fuzzed response from a server for `accept` (the right accept value). */
export function fuzzResponse(random: Random, accept: string): FuzzedHead {
  const d = draft([
    "HTTP/1.1 101 Switching Protocols",
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Accept: ${accept}`,
  ]);
  for (
    const extra of [
      "Server: fuzz",
      "Date: Mon, 01 Jan 2024 00:00:00 GMT",
      "Set-Cookie: a=b",
    ]
  ) {
    if (random.chance(0.25)) addField(d, extra);
  }
  if (random.chance(0.5)) shuffleFields(random, d);
  return mutate(random, d, RESPONSE);
}

/** A valid response for `accept`. */
export function validResponse(accept: string): Uint8Array {
  return headBytes(draft([
    "HTTP/1.1 101 Switching Protocols",
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Accept: ${accept}`,
  ]));
}
