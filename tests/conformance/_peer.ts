/**
 * A scripted, raw WebSocket peer for the conformance suite: what Autobahn's
 * fuzzing client and fuzzing server are to the implementation under test.
 *
 * It speaks TCP through the running runtime's transports, does the opening
 * handshake by hand (as a client against our `serve()`, as a server for our
 * `connect()`), sends hand-made frames (masked when it is the client), raw
 * bytes for malformed ones, and any of them in chops with pauses. Everything
 * the implementation sends back is decoded strictly (a frame RFC 6455 does
 * not allow from that side fails the case) and queued as events, with the end
 * of the TCP connection as the last one. Expectations read that queue in
 * order: nothing the implementation sends goes unchecked.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  applyMask,
  encodeFrame,
  FrameDecoder,
  Opcode,
} from "../../src/codec.ts";
import { currentRuntime } from "../../src/runtime.ts";
import type { Listener, Transport } from "../../src/transport.ts";

/** Where everything listens and connects. */
export const HOST = "127.0.0.1";
/** How long `sync` pauses after a frame: enough for the implementation to
 * read it on its own (Autobahn's "sync" flushes and yields the same way). */
export const SYNC_PAUSE = 15;
/** Default wait for the next thing the implementation sends, in ms. */
export const WAIT = 1_500;

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const encoder = new TextEncoder();
const strictText = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const MAX_HEAD = 16 * 1024;

/** Which end the peer plays; the implementation plays the other. */
export type PeerRole = "client" | "server";

/** A frame the implementation sent, payload unmasked and copied. */
export interface ReceivedFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  payload: Uint8Array;
  /** `performance.now()` when its last byte arrived. */
  at: number;
}

/** What the peer observed, in order. */
export type PeerEvent =
  | { type: "frame"; frame: ReceivedFrame }
  /** The implementation closed the TCP connection (FIN, or a reset). */
  | { type: "closed"; at: number; reset: boolean }
  /** The implementation sent bytes RFC 6455 does not allow. */
  | { type: "invalid"; at: number; error: unknown };

/** A frame to send. Strings are sent as their UTF-8. */
export interface FrameSpec {
  opcode: number;
  payload?: Uint8Array | string;
  /** Default `true`. */
  fin?: boolean;
  /** RSV bits, 0 to 7 (RSV1 = 4). */
  rsv?: number;
  /** Override the masking the peer's role calls for (to break the rule). */
  masked?: boolean;
}

/** How to put bytes on the wire. */
export interface WriteOptions {
  /** Write in pieces of this many bytes (Autobahn's "chopsize"). */
  chop?: number;
  /** Milliseconds to wait between pieces (default none: each piece is a
   * write of its own, awaited). */
  pause?: number;
  /** After writing, pause for {@link SYNC_PAUSE} ms (a frame-wise chop). */
  sync?: boolean;
}

/** How the implementation's own `closed` should resolve. */
export interface ExpectedCloseInfo {
  closeCode: number;
  wasClean: boolean;
  reason?: string;
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** `value` as UTF-8 bytes (strings) or as is. */
export function bytes(value: Uint8Array | string): Uint8Array {
  return typeof value === "string" ? encoder.encode(value) : value;
}

/** Joins byte arrays. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const part of parts) size += part.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function describeBytes(data: Uint8Array, max = 24): string {
  const hex = [...data.subarray(0, max)]
    .map((b) => b.toString(16).padStart(2, "0")).join(" ");
  return data.length > max ? `${hex} … (${data.length} bytes)` : `[${hex}]`;
}

const OPCODE_NAMES: Record<number, string> = {
  0: "continuation",
  1: "text",
  2: "binary",
  8: "close",
  9: "ping",
  10: "pong",
};

/** A one-line description of an event, for failure messages. */
export function describeEvent(event: PeerEvent | null): string {
  if (event === null) return "nothing";
  switch (event.type) {
    case "closed":
      return event.reset ? "a TCP reset" : "the TCP connection closed";
    case "invalid":
      return `an invalid frame (${(event.error as Error).message})`;
    case "frame": {
      const { opcode, fin, rsv, payload } = event.frame;
      const name = OPCODE_NAMES[opcode] ?? `opcode ${opcode}`;
      let detail = describeBytes(payload);
      if (opcode === Opcode.Close) detail = describeClose(payload);
      return `a ${name} frame${fin ? "" : " (FIN=0)"}${
        rsv ? ` RSV=${rsv}` : ""
      } ${detail}`;
    }
  }
}

function describeClose(payload: Uint8Array): string {
  if (payload.length < 2) return `with ${describeBytes(payload)}`;
  const code = (payload[0]! << 8) | payload[1]!;
  return `with code ${code} and ${payload.length - 2} bytes of reason`;
}

function randomMask(): Uint8Array {
  const key = crypto.getRandomValues(new Uint8Array(4));
  key[0]! |= 1; // never all zeros: the unmasking must do something
  return key;
}

function base64(data: Uint8Array): string {
  return btoa(String.fromCharCode(...data));
}

/** Sec-WebSocket-Accept for a key (RFC 6455 §4.2.2), computed here, not by us. */
async function acceptFor(key: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-1",
    encoder.encode(key + GUID),
  );
  return base64(new Uint8Array(digest));
}

/** Reads an HTTP head; returns its lines and the bytes after it. */
async function readHead(
  reader: ReadableStreamDefaultReader<Uint8Array>,
): Promise<{ lines: string[]; rest: Uint8Array }> {
  let buffer: Uint8Array = new Uint8Array(0);
  for (;;) {
    for (let i = 3; i < buffer.length; i++) {
      if (
        buffer[i - 3] === 13 && buffer[i - 2] === 10 &&
        buffer[i - 1] === 13 && buffer[i] === 10
      ) {
        const head = new TextDecoder().decode(buffer.subarray(0, i - 3));
        return { lines: head.split("\r\n"), rest: buffer.slice(i + 1) };
      }
    }
    if (buffer.length > MAX_HEAD) throw new Error("HTTP head too large");
    const { value, done } = await reader.read();
    if (done) {
      throw new Error(
        `connection closed during the opening handshake after ${buffer.length} bytes`,
      );
    }
    buffer = concat([buffer, value]);
  }
}

function headerOf(lines: string[], name: string): string | null {
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === name) {
      return line.slice(colon + 1).trim();
    }
  }
  return null;
}

/**
 * Accepts one TCP connection on a free port and plays the server's side of
 * the opening handshake by hand. `accepted` resolves with the peer.
 */
export class PeerServer {
  readonly port: number;
  readonly accepted: Promise<Peer>;
  readonly #listener: Listener;
  readonly #extra: Transport[] = [];

  private constructor(
    listener: Listener,
    accepted: Promise<Peer>,
    extra: Transport[],
  ) {
    this.#listener = listener;
    this.port = listener.addr.port;
    this.accepted = accepted;
    this.#extra = extra;
  }

  /** Listens on 127.0.0.1, port 0. */
  static async listen(): Promise<PeerServer> {
    const first = Promise.withResolvers<Transport>();
    const extra: Transport[] = [];
    let taken = false;
    const listener = await currentRuntime().listen(
      { hostname: HOST, port: 0 },
      (transport) => {
        if (taken) {
          extra.push(transport);
          transport.close(); // one connection per case
          return;
        }
        taken = true;
        first.resolve(transport);
      },
    );
    const accepted = first.promise.then((transport) =>
      Peer.acceptHandshake(transport)
    );
    accepted.catch(() => {}); // awaited by the caller; never unhandled
    return new PeerServer(listener, accepted, extra);
  }

  /** Stops listening (the accepted connection stays open). */
  close(): void {
    this.#listener.close();
    for (const transport of this.#extra) transport.close();
  }
}

/**
 * One raw WebSocket connection to the implementation under test, after the
 * opening handshake, with a script's view of it: send frames, expect frames.
 */
export class Peer {
  /** The peer's end; the implementation is the other one. */
  readonly role: PeerRole;
  /** What happened, one line per step: shown when a case fails. */
  readonly transcript: string[] = [];
  /** How the implementation's `closed` must resolve; set by the close helpers. */
  expectedImplClose: ExpectedCloseInfo | null = null;

  readonly #transport: Transport;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #started = performance.now();
  readonly #events: PeerEvent[] = [];
  #wake: (() => void) | null = null;
  #closeSeen = false;
  #ended = false;
  #locallyClosed = false;
  #writeFailed: unknown = null;
  #reading: Promise<void>;

  // The frame being decoded.
  #opcode = 0;
  #fin = false;
  #rsv = 0;
  #parts: Uint8Array[] = [];

  private constructor(
    role: PeerRole,
    transport: Transport,
    reader: ReadableStreamDefaultReader<Uint8Array>,
    writer: WritableStreamDefaultWriter<Uint8Array>,
    rest: Uint8Array,
  ) {
    this.role = role;
    this.#transport = transport;
    this.#reader = reader;
    this.#writer = writer;
    this.#writer.closed.catch(() => {});
    const decoder = new FrameDecoder({
      frameStart: (header) => {
        this.#opcode = header.opcode;
        this.#fin = header.fin;
        this.#rsv = header.rsv;
        this.#parts = [];
      },
      framePayload: (chunk) => this.#parts.push(chunk.slice()),
      frameEnd: () => {
        const frame: ReceivedFrame = {
          fin: this.#fin,
          rsv: this.#rsv,
          opcode: this.#opcode,
          payload: concat(this.#parts),
          at: performance.now(),
        };
        this.#parts = [];
        if (frame.opcode === Opcode.Close) this.#closeSeen = true;
        this.#push({ type: "frame", frame });
      },
    }, {
      // Strict about the implementation: a server must not mask, a client
      // must; no RSV bits; control frames short and whole; minimal lengths.
      masked: role === "server",
      allowedRsv: 0,
    });
    this.#reading = this.#readLoop(decoder, rest);
  }

  /** Connects to `port` and plays the client's side of the handshake. */
  static async connect(port: number, path = "/"): Promise<Peer> {
    const transport = await currentRuntime().connect({ hostname: HOST, port });
    const reader = transport.readable.getReader();
    const writer = transport.writable.getWriter();
    try {
      const key = base64(crypto.getRandomValues(new Uint8Array(16)));
      await writer.write(encoder.encode(
        `GET ${path} HTTP/1.1\r\nHost: ${HOST}:${port}\r\n` +
          "Upgrade: websocket\r\nConnection: Upgrade\r\n" +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ));
      const { lines, rest } = await readHead(reader);
      assert.match(
        lines[0] ?? "",
        /^HTTP\/1\.1 101 /,
        `opening handshake: expected 101, got ${lines[0]}`,
      );
      assert.equal(
        headerOf(lines, "sec-websocket-accept"),
        await acceptFor(key),
        "opening handshake: wrong Sec-WebSocket-Accept",
      );
      return new Peer("client", transport, reader, writer, rest);
    } catch (error) {
      transport.close();
      throw error;
    }
  }

  /** Plays the server's side of the handshake on an accepted transport. */
  static async acceptHandshake(transport: Transport): Promise<Peer> {
    const reader = transport.readable.getReader();
    const writer = transport.writable.getWriter();
    try {
      const { lines, rest } = await readHead(reader);
      assert.match(lines[0] ?? "", /^GET \S+ HTTP\/1\.1$/);
      const key = headerOf(lines, "sec-websocket-key");
      assert.ok(key, "opening handshake: no Sec-WebSocket-Key");
      assert.equal(headerOf(lines, "sec-websocket-version"), "13");
      await writer.write(encoder.encode(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
          "Connection: Upgrade\r\n" +
          `Sec-WebSocket-Accept: ${await acceptFor(key)}\r\n\r\n`,
      ));
      return new Peer("server", transport, reader, writer, rest);
    } catch (error) {
      transport.close();
      throw error;
    }
  }

  /** The implementation's role. */
  get implRole(): PeerRole {
    return this.role === "client" ? "server" : "client";
  }

  /** Milliseconds since the handshake. */
  get now(): number {
    return performance.now() - this.#started;
  }

  /** Settles once the peer has stopped reading: the connection is over. */
  get finished(): Promise<void> {
    return this.#reading;
  }

  /** Whether the TCP connection has ended (closed by either side). */
  get ended(): boolean {
    return this.#ended || this.#locallyClosed;
  }

  #log(line: string): void {
    this.transcript.push(`${this.now.toFixed(1).padStart(8)} ms  ${line}`);
  }

  #push(event: PeerEvent): void {
    if (event.type !== "frame") this.#ended = true;
    this.#events.push(event);
    this.#log(`<- ${describeEvent(event)}`);
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async #readLoop(decoder: FrameDecoder, rest: Uint8Array): Promise<void> {
    let valid = true;
    const feed = (chunk: Uint8Array) => {
      if (!valid) return;
      try {
        decoder.push(chunk);
      } catch (error) {
        valid = false;
        this.#push({ type: "invalid", at: performance.now(), error });
      }
    };
    if (rest.length > 0) feed(rest);
    try {
      for (;;) {
        const { value, done } = await this.#reader.read();
        if (done) break;
        feed(value);
      }
      this.#push({ type: "closed", at: performance.now(), reset: false });
    } catch {
      this.#push({ type: "closed", at: performance.now(), reset: true });
    }
  }

  // ---- sending ----

  /** Encodes a frame as this peer sends it: masked when it is the client. */
  frame(spec: FrameSpec): Uint8Array {
    const masked = spec.masked ?? this.role === "client";
    return encodeFrame({
      fin: spec.fin ?? true,
      rsv: spec.rsv ?? 0,
      opcode: spec.opcode,
      payload: bytes(spec.payload ?? new Uint8Array(0)),
    }, masked ? randomMask() : null);
  }

  /**
   * A frame header alone, masked when this peer is the client, announcing
   * `length` payload bytes (for sending a payload in pieces, or never).
   * Returns the header and the masker for the payload that follows it.
   */
  frameHeader(
    opcode: number,
    length: number,
    fin = true,
  ): {
    header: Uint8Array;
    mask(payload: Uint8Array, offset: number): Uint8Array;
  } {
    const masked = this.role === "client";
    const key = masked ? randomMask() : null;
    const size = (length < 126 ? 2 : length < 0x10000 ? 4 : 10) +
      (masked ? 4 : 0);
    const header = new Uint8Array(size);
    header[0] = (fin ? 0x80 : 0) | opcode;
    const maskBit = masked ? 0x80 : 0;
    let p = 1;
    if (length < 126) header[p++] = maskBit | length;
    else if (length < 0x10000) {
      header[p++] = maskBit | 126;
      header[p++] = length >>> 8;
      header[p++] = length & 0xff;
    } else {
      header[p++] = maskBit | 127;
      new DataView(header.buffer).setBigUint64(p, BigInt(length));
      p += 8;
    }
    if (key) header.set(key, p);
    return {
      header,
      mask: (payload, offset) => {
        const out = payload.slice();
        if (key) applyMask(out, key, offset);
        return out;
      },
    };
  }

  /**
   * Writes bytes as they are. Stops early, quietly, once the implementation
   * has sent its close frame or closed the connection (as Autobahn does), so
   * a script never writes into a connection the implementation has dropped.
   */
  async write(data: Uint8Array, options: WriteOptions = {}): Promise<void> {
    const chop = Math.max(1, options.chop ?? data.length);
    this.#log(
      options.chop
        ? `-> ${data.length} bytes in chops of ${chop}`
        : `-> ${data.length} bytes`,
    );
    let at = 0;
    do {
      if (this.#closeSeen || this.ended || this.#writeFailed !== null) {
        this.#log(`   (stopped at byte ${at}: the connection is closing)`);
        return;
      }
      try {
        await this.#writer.write(data.subarray(at, at + chop));
      } catch (error) {
        this.#writeFailed = error;
        this.#log(
          `   (write failed at byte ${at}: ${(error as Error).message})`,
        );
        return;
      }
      at += chop;
      if (at < data.length && options.pause !== undefined) {
        await sleep(options.pause);
      }
    } while (at < data.length);
    if (options.sync) await sleep(SYNC_PAUSE);
  }

  /** Sends one frame. */
  async send(spec: FrameSpec, options: WriteOptions = {}): Promise<void> {
    this.#log(
      `-> ${OPCODE_NAMES[spec.opcode] ?? `opcode ${spec.opcode}`} frame` +
        `${spec.fin === false ? " (FIN=0)" : ""}` +
        `${spec.rsv ? ` RSV=${spec.rsv}` : ""}, ${
          bytes(spec.payload ?? "").length
        } bytes`,
    );
    await this.write(this.frame(spec), options);
  }

  /** Sends frames in one write (one "chop"), or each with `options`. */
  async sendAll(
    specs: readonly FrameSpec[],
    options?: WriteOptions,
  ): Promise<void> {
    if (options) {
      for (const spec of specs) await this.send(spec, options);
      return;
    }
    this.#log(`-> ${specs.length} frames in one write`);
    await this.write(concat(specs.map((spec) => this.frame(spec))));
  }

  /**
   * Sends a message (text for a string, binary for bytes unless `type` says
   * otherwise) as frames of `fragmentSize` bytes, or one frame; all in one
   * write unless `write` options are given.
   */
  async sendMessage(
    data: Uint8Array | string,
    options: {
      fragmentSize?: number;
      type?: "text" | "binary";
      write?: WriteOptions;
    } = {},
  ): Promise<void> {
    const payload = bytes(data);
    const text =
      (options.type ?? (typeof data === "string" ? "text" : "binary")) ===
        "text";
    const size = options.fragmentSize ?? Math.max(payload.length, 1);
    const specs: FrameSpec[] = [];
    for (let at = 0; at < payload.length || at === 0; at += size) {
      specs.push({
        opcode: at === 0
          ? (text ? Opcode.Text : Opcode.Binary)
          : Opcode.Continuation,
        fin: at + size >= payload.length,
        payload: payload.subarray(at, at + size),
      });
      if (payload.length === 0) break;
    }
    this.#log(
      `-> a ${payload.length}-byte ${
        text ? "text" : "binary"
      } message in ${specs.length} frame(s)`,
    );
    if (options.write) {
      if (specs.length === 1) {
        await this.write(this.frame(specs[0]!), options.write);
      } else for (const spec of specs) await this.send(spec, options.write);
      return;
    }
    await this.write(concat(specs.map((spec) => this.frame(spec))));
  }

  /** Sends a close frame: `code` (omit for none) and a reason (any bytes). */
  async sendClose(
    code?: number,
    reason: Uint8Array | string = "",
    options?: WriteOptions,
  ): Promise<void> {
    const text = bytes(reason);
    const payload = new Uint8Array(code === undefined ? 0 : 2 + text.length);
    if (code !== undefined) {
      payload[0] = code >>> 8;
      payload[1] = code & 0xff;
      payload.set(text, 2);
    }
    await this.send({ opcode: Opcode.Close, payload }, options);
  }

  /** The close frame payload for `code`/`reason`, for `sendAll` lists. */
  closeFrame(code?: number, reason: Uint8Array | string = ""): FrameSpec {
    const text = bytes(reason);
    const payload = new Uint8Array(code === undefined ? 0 : 2 + text.length);
    if (code !== undefined) {
      payload[0] = code >>> 8;
      payload[1] = code & 0xff;
      payload.set(text, 2);
    }
    return { opcode: Opcode.Close, payload };
  }

  // ---- receiving ----

  /** The next event, or `null` if none comes within `timeout` ms. */
  async next(timeout = WAIT): Promise<PeerEvent | null> {
    const deadline = performance.now() + timeout;
    while (this.#events.length === 0) {
      if (this.#locallyClosed) return null;
      const left = deadline - performance.now();
      if (left <= 0) return null;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.#wake = null;
    }
    return this.#events.shift()!;
  }

  /** The next frame; fails on anything else or nothing. */
  async nextFrame(what: string, timeout = WAIT): Promise<ReceivedFrame> {
    const event = await this.next(timeout);
    if (event?.type !== "frame") {
      this.fail(
        `expected ${what}, got ${describeEvent(event)}` +
          (event === null ? ` within ${timeout} ms` : ""),
      );
    }
    return event.frame;
  }

  /** Fails the case with `message` and the transcript so far. */
  fail(message: string): never {
    assert.fail(
      `${message}\n  transcript:\n    ${this.transcript.join("\n    ")}`,
    );
  }

  /**
   * Reads the next thing the implementation sends: a whole message (its
   * frames joined; no control frame may come between them) or a control
   * frame. Fails on anything else, or nothing within `timeout` ms.
   */
  async receive(timeout = WAIT): Promise<
    | { kind: "message"; type: "text" | "binary"; data: Uint8Array }
    | { kind: "control"; frame: ReceivedFrame }
  > {
    const first = await this.nextFrame("a message or a control frame", timeout);
    if (first.opcode >= 8) return { kind: "control", frame: first };
    if (first.opcode === Opcode.Continuation) {
      this.fail(`got a continuation frame with no message to continue`);
    }
    const type = first.opcode === Opcode.Text ? "text" : "binary";
    const parts = [first.payload];
    let last = first;
    while (!last.fin) {
      last = await this.nextFrame(
        `the continuation of a ${type} message`,
        timeout,
      );
      if (last.opcode !== Opcode.Continuation) {
        this.fail(
          `expected the continuation of a ${type} message, got ${
            describeEvent({ type: "frame", frame: last })
          }`,
        );
      }
      parts.push(last.payload);
    }
    const data = parts.length === 1 ? parts[0]! : concat(parts);
    if (type === "text") {
      try {
        strictText.decode(data);
      } catch {
        this.fail(
          `the text message sent is not valid UTF-8: ${describeBytes(data)}`,
        );
      }
    }
    return { kind: "message", type, data };
  }

  /**
   * Expects the next message to be `expected`: text for a string, binary
   * for bytes unless `type` says otherwise; in one frame or several.
   */
  async expectMessage(
    expected: Uint8Array | string,
    options: { type?: "text" | "binary"; timeout?: number } = {},
  ): Promise<void> {
    const type = options.type ??
      (typeof expected === "string" ? "text" : "binary");
    const want = bytes(expected);
    const what = `a ${type} message of ${want.length} bytes`;
    const got = await this.receive(options.timeout);
    if (got.kind !== "message" || got.type !== type) {
      this.fail(
        `expected ${what}, got ${
          got.kind === "control"
            ? describeEvent({ type: "frame", frame: got.frame })
            : `a ${got.type} message of ${got.data.length} bytes`
        }`,
      );
    }
    const data = got.data;
    if (data.length !== want.length) {
      this.fail(
        `expected ${what}, got one of ${data.length} bytes: ${
          describeBytes(data)
        }`,
      );
    }
    for (let i = 0; i < data.length; i++) {
      if (data[i] !== want[i]) {
        this.fail(
          `the ${type} message sent back differs at byte ${i} of ${want.length}`,
        );
      }
    }
    this.#log(`   (${what}, as expected)`);
  }

  /** Expects the next frame to be a pong carrying exactly `payload`. */
  async expectPong(
    payload: Uint8Array | string = "",
    timeout = WAIT,
  ): Promise<ReceivedFrame> {
    const want = bytes(payload);
    const frame = await this.nextFrame(
      `a pong with ${describeBytes(want)}`,
      timeout,
    );
    if (frame.opcode !== Opcode.Pong || !sameBytes(frame.payload, want)) {
      this.fail(
        `expected a pong with ${describeBytes(want)}, got ${
          describeEvent({ type: "frame", frame })
        }`,
      );
    }
    return frame;
  }

  /**
   * Expects the next frame to be a close frame with `code` (`null`: an empty
   * payload; a list: any of them) and, when given, `reason`.
   */
  async expectClose(
    code: number | null | readonly (number | null)[],
    reason?: string,
    timeout = WAIT,
  ): Promise<ReceivedFrame> {
    const codes = Array.isArray(code) ? code : [code];
    const what = `a close frame with ${
      codes.map((c) => c === null ? "no code" : `code ${c}`).join(" or ")
    }`;
    const frame = await this.nextFrame(what, timeout);
    if (frame.opcode !== Opcode.Close) {
      this.fail(
        `expected ${what}, got ${describeEvent({ type: "frame", frame })}`,
      );
    }
    const payload = frame.payload;
    if (payload.length === 1) {
      this.fail(`got a close frame with a 1-byte payload`);
    }
    const got = payload.length === 0 ? null : (payload[0]! << 8) | payload[1]!;
    if (!codes.includes(got)) {
      this.fail(`expected ${what}, got one ${describeClose(payload)}`);
    }
    let text = "";
    try {
      text = strictText.decode(payload.subarray(2));
    } catch {
      this.fail(`the close reason sent is not valid UTF-8`);
    }
    if (reason !== undefined && text !== reason) {
      this.fail(
        `expected close reason ${JSON.stringify(reason)}, got ${
          JSON.stringify(text)
        }`,
      );
    }
    return frame;
  }

  /** Expects the implementation to close the TCP connection, sending nothing more. */
  async expectClosed(timeout = WAIT): Promise<void> {
    const event = await this.next(timeout);
    if (event?.type !== "closed") {
      this.fail(
        `expected the implementation to close the TCP connection, got ${
          describeEvent(event)
        }${event === null ? ` within ${timeout} ms` : ""}`,
      );
    }
  }

  /** Expects nothing at all to arrive for `ms` milliseconds. */
  async expectNothing(ms: number): Promise<void> {
    const event = await this.next(ms);
    if (event !== null) {
      this.fail(`expected nothing for ${ms} ms, got ${describeEvent(event)}`);
    }
  }

  /**
   * Expects the implementation's close frame answering ours (`code`, `null`
   * for an empty one, or a list of either), then ends the connection as RFC 6455 §7.1.1
   * has it: a server closes TCP first, so against our server the peer waits
   * for that; against our client the peer (the server) half-closes and
   * expects the client to close its side. Records the `closed` expected
   * of the implementation: `implCode` (default `code`, 1005 for none).
   */
  async expectCleanClose(
    code: number | null | readonly (number | null)[],
    options: { implCode?: number; reason?: string } = {},
  ): Promise<void> {
    await this.expectClose(code);
    await this.completeClose(
      options.implCode ?? (typeof code === "number" ? code : 1005),
      options.reason,
    );
  }

  /**
   * After the close frames were exchanged: ends TCP the way the roles call
   * for (see {@link expectCleanClose}) and records that the implementation
   * must report a clean close with `code` (and `reason`, when given).
   */
  async completeClose(code: number, reason?: string): Promise<void> {
    this.expectedImplClose = reason === undefined
      ? { closeCode: code, wasClean: true }
      : { closeCode: code, wasClean: true, reason };
    if (this.role === "server") await this.#closeWrite();
    await this.expectClosed();
  }

  /** Starts the close handshake with `code` and expects a clean close. */
  async closeHandshake(code = 1000, reason = ""): Promise<void> {
    await this.sendClose(code, reason);
    await this.expectCleanClose(code, { reason });
  }

  /**
   * Expects the implementation to fail the connection: its close frame with
   * `code` comes next (within `timeout` ms), then it closes TCP. The peer
   * answers the close frame, as an endpoint would.
   */
  async expectFailure(code: number, timeout = WAIT): Promise<void> {
    await this.expectClose(code, undefined, timeout);
    this.expectedImplClose = { closeCode: code, wasClean: false };
    const echo = this.frame(this.closeFrame(code));
    await this.#writer.write(echo).catch(() => {});
    await this.expectClosed();
  }

  async #closeWrite(): Promise<void> {
    this.#log("-> FIN");
    await this.#writer.close().catch(() => {});
  }

  /** Drops the connection and stops reading. Idempotent. */
  async close(): Promise<void> {
    if (!this.#locallyClosed) {
      this.#locallyClosed = true;
      this.#transport.close();
      this.#reader.cancel().catch(() => {});
      const wake = this.#wake;
      this.#wake = null;
      wake?.();
    }
    await this.#reading;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
