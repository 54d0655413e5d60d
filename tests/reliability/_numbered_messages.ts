/**
 * Numbered messages for the load, no-loss and soak runs.
 *
 * Each client sends a seeded sequence of messages. A message of at least
 * {@link HEADER_SIZE} bytes starts with an ASCII header naming its client,
 * its sequence number and a checksum of the body after it; a shorter
 * one is checked against the sender's record alone. The sender keeps a small
 * record of each message (kind, size, checksum) until its echo comes back,
 * and {@link EchoChecker} compares every echo with the next record: so an
 * echo that is missing, repeated, reordered, of another client, of the wrong
 * type or size, or with one byte changed is caught at the first message it
 * affects.
 *
 * The first 16 messages of every sequence are the frame-length boundaries
 * (0, 1, 125, 126, 127, 65535, 65536, 65537 bytes), as text and as binary;
 * then sizes are random (log-uniform mostly, so big and small both come up,
 * up to `maxSize`). Text is valid UTF-8 mixing 1- to 4-byte characters, and
 * fragmented text is cut inside a multi-byte character. Messages go out five
 * ways: `send()`, a `writable` write, `openMessage()` fragments, a
 * stream of fragments through `send()`, and a stream through `writable`.
 *
 * @module
 */
import type { WebSocketConnection } from "../../src/connection.ts";
import type { Message } from "../../src/protocol.ts";
import { prng } from "../_frames.ts";

/** Bytes of the header a message of at least this size starts with. */
export const HEADER_SIZE = 20;

/** Payload lengths around the frame length encodings (7-bit, 16-bit, 64-bit). */
export const BOUNDARY_SIZES: readonly number[] = [
  0,
  1,
  125,
  126,
  127,
  65535,
  65536,
  65537,
];

/** How a message is handed to the connection. */
export type SendWay =
  | "send"
  | "writable"
  | "fragments"
  | "stream"
  | "writable-stream";

/** Every {@link SendWay}. */
export const SEND_WAYS: readonly SendWay[] = [
  "send",
  "writable",
  "fragments",
  "stream",
  "writable-stream",
];

/** What the sender remembers of a message until its echo is checked. */
export interface SentRecord {
  /** The sequence number, from 0. */
  seq: number;
  /** Text or binary. */
  kind: "text" | "binary";
  /** Size in bytes (UTF-8 bytes for text). */
  size: number;
  /** The {@link checksum} of the body (after the header; all of a short message). */
  checksum: number;
}

/** A message ready to send: its record, its bytes and how it goes out. */
export interface NumberedMessage {
  /** What the checker compares the echo with. */
  record: SentRecord;
  /** The payload (UTF-8 for text). */
  bytes: Uint8Array;
  /** How it is sent. */
  way: SendWay;
  /** Byte offsets the fragmented ways cut it at (ascending, inner only). */
  cuts: number[];
}

/** Options for {@link MessageSource}. */
export interface MessageSourceOptions {
  /** The largest message, in bytes (default 256 KiB). */
  maxSize?: number;
  /** Ways to send (default: all of {@link SEND_WAYS}). */
  ways?: readonly SendWay[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * FNV-1a over `bytes`, taken four bytes (one little-endian word) at a time
 * and then byte by byte: a checksum, four times quicker than FNV-1a proper,
 * that still changes with any one byte.
 */
export function checksum(bytes: Uint8Array): number {
  let hash = 0x811c9dc5;
  const words = bytes.length & ~3;
  let i = 0;
  for (; i < words; i += 4) {
    const word = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) |
      (bytes[i + 3]! << 24);
    hash = Math.imul(hash ^ word, 0x01000193);
  }
  for (; i < bytes.length; i++) {
    hash = Math.imul(hash ^ bytes[i]!, 0x01000193);
  }
  return hash >>> 0;
}

function hex(value: number, digits: number): string {
  return value.toString(16).padStart(digits, "0");
}

/** The header: client id (4 hex digits), sequence (8), checksum (8). */
function header(clientId: number, seq: number, checksum: number): string {
  return hex(clientId & 0xffff, 4) + hex(seq >>> 0, 8) + hex(checksum, 8);
}

/** A xorshift32 generator for bulk content: one 32-bit word per call. */
function xorshift32(seed: number): () => number {
  let x = seed | 0 || 0x2545f491;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/**
 * Fills `out` from `at` with random UTF-8 text: characters of 1 to 4 bytes
 * (printable ASCII; U+0080–U+07FF; U+0800–U+FFFF without the surrogates;
 * U+10000–U+10FFFF), one 32-bit draw each.
 */
function fillText(out: Uint8Array, at: number, word: () => number): void {
  while (at < out.length) {
    const r = word();
    const width = Math.min(1 + (r & 3), out.length - at);
    const bits = r >>> 2; // 30 random bits
    switch (width) {
      case 1:
        out[at] = 0x20 + bits % 95;
        break;
      case 2: {
        const cp = 0x80 + bits % 0x780;
        out[at] = 0xc0 | (cp >> 6);
        out[at + 1] = 0x80 | (cp & 0x3f);
        break;
      }
      case 3: {
        let cp = 0x800 + bits % 0xf000; // 0x800–0xf7ff, then skip 0xd800–0xdfff
        if (cp >= 0xd800) cp += 0x800;
        out[at] = 0xe0 | (cp >> 12);
        out[at + 1] = 0x80 | ((cp >> 6) & 0x3f);
        out[at + 2] = 0x80 | (cp & 0x3f);
        break;
      }
      default: {
        const cp = 0x10000 + bits % 0x100000;
        out[at] = 0xf0 | (cp >> 18);
        out[at + 1] = 0x80 | ((cp >> 12) & 0x3f);
        out[at + 2] = 0x80 | ((cp >> 6) & 0x3f);
        out[at + 3] = 0x80 | (cp & 0x3f);
      }
    }
    at += width;
  }
}

/** Fills `out` from `at` with random bytes, a word at a time. */
function fillBinary(out: Uint8Array, at: number, word: () => number): void {
  for (; at + 4 <= out.length; at += 4) {
    const w = word();
    out[at] = w;
    out[at + 1] = w >>> 8;
    out[at + 2] = w >>> 16;
    out[at + 3] = w >>> 24;
  }
  for (; at < out.length; at++) out[at] = word();
}

/**
 * One client's seeded sequence of numbered messages. The same client id and
 * seed give the same sequence, so a failure reproduces.
 */
export class MessageSource {
  /** The client id written into each header. */
  readonly clientId: number;
  readonly #random: () => number;
  readonly #maxSize: number;
  readonly #ways: readonly SendWay[];
  #seq = 0;

  /**
   * @param clientId The client's id (0 to 65535).
   * @param seed The PRNG seed.
   * @param options Largest size and the ways to send.
   */
  constructor(
    clientId: number,
    seed: number,
    options: MessageSourceOptions = {},
  ) {
    this.clientId = clientId;
    this.#random = prng(seed ^ Math.imul(clientId + 1, 0x9e3779b1));
    this.#maxSize = options.maxSize ?? 256 * 1024;
    this.#ways = options.ways ?? SEND_WAYS;
  }

  /** How many messages have been made. */
  get count(): number {
    return this.#seq;
  }

  #size(seq: number): number {
    const random = this.#random;
    const boundaries = BOUNDARY_SIZES.length;
    if (seq < 2 * boundaries) return BOUNDARY_SIZES[seq % boundaries]!;
    const draw = random();
    if (draw < 0.25) {
      return BOUNDARY_SIZES[Math.floor(random() * boundaries)]!;
    }
    if (draw < 0.35) return Math.floor(random() * (this.#maxSize + 1));
    // Log-uniform from 0 to maxSize.
    return Math.min(
      this.#maxSize,
      Math.floor(Math.exp(random() * Math.log(this.#maxSize + 1))) - 1,
    );
  }

  /** Makes the next message. */
  next(): NumberedMessage {
    const random = this.#random;
    const seq = this.#seq++;
    const boundaries = BOUNDARY_SIZES.length;
    const kind = seq < 2 * boundaries
      ? (seq < boundaries ? "text" : "binary")
      : (random() < 0.5 ? "text" : "binary");
    const size = this.#size(seq);
    const way = this
      .#ways[(seq + Math.floor(random() * 1000)) % this.#ways.length]!;
    const bytes = new Uint8Array(size);
    const bodyAt = size >= HEADER_SIZE ? HEADER_SIZE : 0;
    const word = xorshift32((random() * 0x100000000) >>> 0);
    if (kind === "text") fillText(bytes, bodyAt, word);
    else fillBinary(bytes, bodyAt, word);
    const sum = checksum(bytes.subarray(bodyAt));
    if (bodyAt > 0) encoder.encodeInto(header(this.clientId, seq, sum), bytes);
    const cuts = way === "send" || way === "writable"
      ? []
      : this.#cuts(bytes, kind, way);
    return { record: { seq, kind, size, checksum: sum }, bytes, way, cuts };
  }

  /**
   * Where to cut a fragmented message: 1 to 7 random offsets (empty
   * fragments allowed), and for text sent as bytes one cut inside a
   * multi-byte character when there is one. Text written to `writable` goes
   * as string chunks, which can only be cut between characters.
   */
  #cuts(bytes: Uint8Array, kind: "text" | "binary", way: SendWay): number[] {
    const random = this.#random;
    const count = 1 + Math.floor(random() * 7);
    const cuts: number[] = [];
    for (let i = 0; i < count; i++) {
      cuts.push(Math.floor(random() * (bytes.length + 1)));
    }
    if (kind === "text") {
      if (way === "writable-stream") {
        // Move each cut back to the start of its character.
        for (let i = 0; i < cuts.length; i++) {
          let at = cuts[i]!;
          while (at > 0 && at < bytes.length && (bytes[at]! & 0xc0) === 0x80) {
            at--;
          }
          cuts[i] = at;
        }
      } else {
        const start = Math.floor(random() * bytes.length);
        for (let at = start; at < bytes.length; at++) {
          if ((bytes[at]! & 0xc0) === 0x80) {
            cuts.push(at); // inside a character: a continuation byte
            break;
          }
        }
      }
    }
    return cuts.sort((a, b) => a - b);
  }
}

/** `bytes` cut at `cuts`. */
function pieces(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let from = 0;
  for (const cut of cuts) {
    out.push(bytes.subarray(from, cut));
    from = cut;
  }
  out.push(bytes.subarray(from));
  return out;
}

/**
 * Hands a message to `connection` the way it says, and returns what settles
 * once the connection has taken all of it. Calls are made at once, in order,
 * so messages sent one after the other go out in that order whether or not
 * the caller awaits each. `writer` is the connection's `writable` writer.
 */
export function sendNumbered(
  connection: WebSocketConnection,
  writer: WritableStreamDefaultWriter<unknown>,
  message: NumberedMessage,
): Promise<unknown> {
  const { bytes, way, cuts } = message;
  const kind = message.record.kind;
  const whole = kind === "text" ? decoder.decode(bytes) : bytes;
  switch (way) {
    case "send":
      return connection.send(whole);
    case "writable":
      return writer.write(whole);
    case "fragments": {
      const fragments = connection.openMessage({ type: kind }).getWriter();
      return Promise.all([
        ...pieces(bytes, cuts).map((part) => fragments.write(part)),
        fragments.close(),
      ]).then(() => {});
    }
    case "stream":
      return connection.send(ReadableStream.from(pieces(bytes, cuts)), {
        type: kind,
      });
    case "writable-stream": {
      const parts = pieces(bytes, cuts);
      // A stream's first chunk sets its type: strings for text.
      const chunks = kind === "text"
        ? parts.map((part) => decoder.decode(part))
        : parts;
      return writer.write(ReadableStream.from<string | Uint8Array>(chunks));
    }
  }
}

/**
 * Checks one client's echoes against what it sent: each echo must be the
 * next message sent, whole.
 */
export class EchoChecker {
  /** The client whose echoes these are. */
  readonly clientId: number;
  /** Echoes checked so far. */
  messages = 0;
  /** Bytes of the echoes checked so far. */
  bytes = 0;
  readonly #pending: SentRecord[] = [];
  #head = 0;

  /** @param clientId The client whose echoes these are. */
  constructor(clientId: number) {
    this.clientId = clientId;
  }

  /** Records a message as sent (before it is sent), so its echo is expected. */
  expect(record: SentRecord): void {
    this.#pending.push(record);
  }

  /** Sent messages whose echo has not come yet. */
  get outstanding(): number {
    return this.#pending.length - this.#head;
  }

  /** Checks an echo; throws an `Error` that says what is wrong. */
  check(message: Message): void {
    const want = this.#pending[this.#head];
    const who = `client ${this.clientId}`;
    if (want === undefined) {
      throw new Error(
        `${who}: an echo with no message outstanding (after ${this.messages} echoes): a duplicate`,
      );
    }
    const kind = typeof message === "string" ? "text" : "binary";
    const bytes = typeof message === "string"
      ? encoder.encode(message)
      : message;
    const what =
      `${who}, message ${want.seq} (${want.kind}, ${want.size} bytes)`;
    if (kind !== want.kind) throw new Error(`${what}: echoed as ${kind}`);
    if (bytes.length !== want.size) {
      throw new Error(`${what}: echo of ${bytes.length} bytes`);
    }
    const bodyAt = want.size >= HEADER_SIZE ? HEADER_SIZE : 0;
    if (bodyAt > 0) {
      const got = decoder.decode(bytes.subarray(0, HEADER_SIZE));
      const expected = header(this.clientId, want.seq, want.checksum);
      if (got !== expected) {
        throw new Error(
          `${what}: header ${JSON.stringify(got)}, expected ${
            JSON.stringify(expected)
          } (client, seq, checksum): lost, reordered or misrouted`,
        );
      }
    }
    const sum = checksum(bytes.subarray(bodyAt));
    if (sum !== want.checksum) {
      throw new Error(
        `${what}: body checksum ${hex(sum, 8)}, expected ${
          hex(want.checksum, 8)
        }: corrupted`,
      );
    }
    this.#head++;
    if (this.#head > 1024) {
      this.#pending.splice(0, this.#head);
      this.#head = 0;
    }
    this.messages++;
    this.bytes += want.size;
  }
}

/**
 * One client's echo session: sends `count` numbered messages from `source`,
 * keeping up to `window` sends unsettled, while reading the echoes and
 * checking each with `checker` (whose counters the caller may watch); then
 * closes, and checks that nothing came after the last echo and that the
 * close was clean. Throws an `Error` that says what went wrong.
 */
export async function echoSession(
  connection: WebSocketConnection,
  source: MessageSource,
  checker: EchoChecker,
  count: number,
  window: number,
): Promise<void> {
  const writer = connection.writable.getWriter();
  const reader = connection.readable.getReader();
  const reading = (async () => {
    for (let i = 0; i < count; i++) {
      const { value, done } = await reader.read();
      if (done) {
        throw new Error(
          `client ${source.clientId}: the connection ended after ${i} of ${count} echoes`,
        );
      }
      checker.check(value);
    }
  })();
  const sending = (async () => {
    const unsettled: Promise<unknown>[] = [];
    for (let i = 0; i < count; i++) {
      const message = source.next();
      checker.expect(message.record);
      unsettled.push(sendNumbered(connection, writer, message));
      if (unsettled.length >= window) await unsettled.shift();
    }
    await Promise.all(unsettled);
  })();
  await Promise.all([sending, reading]);
  const closing = connection.close();
  // An echo after the last one expected would be a duplicate.
  const after = await reader.read();
  if (!after.done) {
    throw new Error(
      `client ${source.clientId}: a message after the last of ${count} echoes`,
    );
  }
  const info = await closing;
  if (info.closeCode !== 1000 || !info.wasClean) {
    throw new Error(
      `client ${source.clientId}: closed with ${
        JSON.stringify(info)
      }, not a clean 1000`,
    );
  }
}
