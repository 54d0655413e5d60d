/**
 * The WebSocket protocol as a Sans-I/O state machine (RFC 6455 §5–§7).
 *
 * A {@link Protocol} is fed the bytes received ({@link Protocol.receive}) and
 * the end of the stream ({@link Protocol.receiveEof}); it reports what
 * happened to a {@link ProtocolHandler}: whole messages, pings, pongs, the
 * peer's close, and every byte it wants sent, in order. It answers pings,
 * echoes the close frame, reassembles fragments, checks UTF-8 as bytes arrive
 * and enforces the size limits. It never touches a socket or a clock and
 * never awaits: the connection layer drives it and owns the timers.
 *
 * @module
 */

import {
  decodeClosePayload,
  DEFAULT_CLOSE_REASONS,
  encodeClosePayload,
} from "./close.ts";
import { ConnectionClosedError, ProtocolError } from "./errors.ts";
import {
  FrameDecoder,
  type FrameHeader,
  frameHeaderSize,
  type FrameSink,
  Opcode,
  writeFrameHeader,
} from "./frame.ts";
import { applyMask, randomMaskSource } from "./mask.ts";
import {
  copySmall,
  enterChunk,
  leaveChunk,
  SMALL_MESSAGE,
} from "./_small_copies.ts";
import {
  type PayloadBuffers,
  plainPayloadBuffers,
  SMALL_FRAME,
} from "./payload_buffers.ts";
import { decodeUtf8, Utf8Decoder } from "./utf8.ts";

/**
 * Which end of the connection we are. A client masks what it sends and
 * refuses masked frames; a server the reverse (RFC 6455 §5.1).
 *
 * @example
 * ```ts
 * import type { Role } from "@wsstream/wsstream/codec";
 * const role: Role = "server";
 * ```
 */
export type Role = "client" | "server";

/**
 * Where the protocol stands. `open`: messages flow both ways; `closing`: we
 * sent a close frame and wait for the peer's; `closed`: both close frames
 * were exchanged, or the connection failed.
 *
 * @example
 * ```ts
 * import type { ProtocolState } from "@wsstream/wsstream/codec";
 * const state: ProtocolState = "open";
 * ```
 */
export type ProtocolState = "open" | "closing" | "closed";

/**
 * A message: text as a string, binary as bytes.
 *
 * @example
 * ```ts
 * import type { Message } from "@wsstream/wsstream/codec";
 * const messages: Message[] = ["hello", new Uint8Array([1, 2, 3])];
 * ```
 */
export type Message = string | Uint8Array;

/** Default for {@link ProtocolOptions.maxMessageSize}: 16 MiB. */
export const DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024;
/**
 * Default for {@link ProtocolOptions.maxFragments}: 2^17, room for the
 * 4 MiB message in 64-byte fragments that Autobahn's case 9.3.1 sends.
 */
export const DEFAULT_MAX_FRAGMENTS = 131_072;

/**
 * Options for a {@link Protocol}.
 *
 * @example
 * ```ts
 * import type { ProtocolOptions } from "@wsstream/wsstream/codec";
 * const options: ProtocolOptions = { role: "client", maxMessageSize: 1 << 20 };
 * ```
 */
export interface ProtocolOptions {
  /** Our end of the connection. */
  role: Role;
  /**
   * The largest message accepted, in bytes (default 16 MiB). A frame that
   * would take a message past it fails the connection with 1009 as soon as
   * its header arrives, before any of it is buffered.
   */
  maxMessageSize?: number | undefined;
  /** The most frames one message may come in (default 131 072); more fail with 1009. */
  maxFragments?: number | undefined;
  /** RSV bits a negotiated extension uses (RSV1 = 4); without one, any RSV bit fails with 1002. */
  allowedRsv?: number | undefined;
  /** Where masking keys come from (client only): 4 bytes per call. For tests. */
  maskSource?: (() => Uint8Array) | undefined;
  /**
   * How payload copies are made (default: plain `Uint8Array`s). A runtime
   * whose copies need care gives its own (see {@link PayloadBuffers}).
   */
  buffers?: PayloadBuffers | undefined;
}

/**
 * Receives what a {@link Protocol} reports. Calls happen synchronously inside
 * the protocol's methods.
 *
 * @example
 * ```ts
 * import type { ProtocolHandler } from "@wsstream/wsstream/codec";
 * const sent: Uint8Array[] = [];
 * const handler: ProtocolHandler = {
 *   message(data) { console.log("message", data); },
 *   ping() {},
 *   pong() {},
 *   close(code, reason) { console.log("peer closed", code, reason); },
 *   send(bytes) { sent.push(bytes); },
 * };
 * ```
 */
export interface ProtocolHandler {
  /** A whole message arrived. */
  message(data: Message): void;
  /** A ping arrived (already answered with a pong). */
  ping(payload: Uint8Array): void;
  /** A pong arrived. */
  pong(payload: Uint8Array): void;
  /**
   * The peer's close frame arrived (code 1005 when it carried none). If we had
   * not sent one, the echo has already been sent.
   */
  close(code: number, reason: string): void;
  /**
   * Bytes to send to the peer, in order. Never called with an empty array.
   * They may be a view into a buffer that holds other frames too, of this
   * protocol or others using the same {@link PayloadBuffers}: send the
   * view's bytes, never its `buffer`.
   *
   * @returns {@link BYTES_COPIED} only when the bytes are already copied out
   * (onto a socket) and will never be read again: the protocol may then
   * build a later frame in their buffer. Anything else leaves the bytes to
   * the handler for good (a symbol, not `true`, so that a handler written
   * as `(bytes) => socket.write(bytes)` cannot say so by accident).
   */
  send(bytes: Uint8Array): typeof BYTES_COPIED | void;
  /**
   * A whole data message whose first frame carried RSV bits (allowed only
   * through `allowedRsv`, for an agreed extension): its payload as
   * received, for the extension to transform. Text is not checked here.
   */
  extensionMessage?(payload: Uint8Array, text: boolean, rsv: number): void;
}

/**
 * What a {@link ProtocolHandler}'s `send` returns when the bytes it was
 * given are already copied onto the socket, so their buffer may be reused.
 *
 * @example A handler over a socket that copies every write at once
 * ```ts
 * import { BYTES_COPIED, type ProtocolHandler } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const wire: number[] = [];
 * const handler: ProtocolHandler = {
 *   message() {},
 *   ping() {},
 *   pong() {},
 *   close() {},
 *   send(bytes) {
 *     wire.push(...bytes); // copied: the buffer is free again
 *     return BYTES_COPIED;
 *   },
 * };
 * assert.equal(handler.send(new Uint8Array([1])), BYTES_COPIED);
 * ```
 */
export const BYTES_COPIED: unique symbol = Symbol("bytes copied");

const encoder = new TextEncoder();
/** The payload of a close frame without a code; never written to. */
const NO_PAYLOAD = new Uint8Array(0);
/** Strings longer than this are encoded separately rather than straight into the frame. */
const INLINE_TEXT_LIMIT = 64 * 1024;
/**
 * Payloads at least this big go out as header + payload without a copy
 * (unmasked only). Below it the header and payload are joined: a header
 * written on its own is a TCP segment of its own (no Nagle) and one more
 * write, and at 64 KiB that costs more than the copy (the 64 KiB echo on
 * Deno went from 0.81× to 1.11× Deno native when it stopped).
 */
const ZERO_COPY_LIMIT = 256 * 1024;

// Protocol's `#bits`: the state's index in PROTOCOL_STATES, the close flags,
// the incoming message's RSV bits and opcode, the outgoing one's opcode.
const PROTOCOL_STATES: readonly ProtocolState[] = ["open", "closing", "closed"];
const STATE_BITS = 3;
/** The state bits of "open". */
const OPEN = 0;
const CLOSE_RECEIVED = 1 << 2;
const CLOSE_SENT = 1 << 3;
const RSV_SHIFT = 4;
const RSV_BITS = 7 << RSV_SHIFT;
const MESSAGE_OPCODE_SHIFT = 8;
const MESSAGE_OPCODE_BITS = 15 << MESSAGE_OPCODE_SHIFT;
const SENDING_OPCODE_SHIFT = 12;
const SENDING_OPCODE_BITS = 15 << SENDING_OPCODE_SHIFT;

/** The masking keys of clients given no `maskSource`: one pool for all. */
let sharedMasks: (() => Uint8Array) | null = null;

/**
 * The WebSocket protocol state machine for one connection: bytes in, events
 * and bytes out.
 *
 * @example A server receiving a masked "Hello" and answering
 * ```ts
 * import { Protocol } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const received: unknown[] = [];
 * const sent: Uint8Array[] = [];
 * const protocol = new Protocol({ role: "server" }, {
 *   message: (data) => received.push(data),
 *   ping() {},
 *   pong() {},
 *   close() {},
 *   send: (bytes) => void sent.push(bytes),
 * });
 * protocol.receive(new Uint8Array([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]));
 * assert.deepEqual(received, ["Hello"]);
 * protocol.sendMessage("Hi");
 * assert.deepEqual([...sent[0]!], [0x81, 0x02, 0x48, 0x69]);
 * ```
 */
export class Protocol {
  readonly #handler: ProtocolHandler;
  readonly #decoder: FrameDecoder;
  /** The options as given: one object for all of a server's connections. */
  readonly #options: ProtocolOptions;
  /**
   * The state, whether a close frame came and went, and the opcodes and
   * RSV bits of the messages in progress, in one number (see the bits
   * below): with 12 fields a protocol sits in JavaScriptCore's 112-byte
   * size class rather than 160, and a Bun server's idle connections are
   * mostly such per-connection objects.
   */
  #bits = 0;
  #failure: ProtocolError | null = null;

  // The incoming message being assembled: its opcode (0: none in progress)
  // and the RSV bits of its first frame (an extension's message) are in
  // `#bits`.
  #messageSize = 0;
  #fragments = 0;
  // Its payload: most messages come in one part, kept without an array.
  // A large binary message in one frame that a transport reads into place
  // (receiveBuffer): `#parts` is then IN_PLACE and `#part` the message's own
  // buffer.
  #part: Uint8Array | null = null;
  #parts: Uint8Array[] | null = null; // once there are two or more
  #text: Utf8Decoder | null = null;
  // The frame being received: its header, the decoder's, which stays as it
  // is until the frame's end.
  #frame: FrameHeader | null = null;
  #control: Uint8Array[] | null = null;

  get #state(): ProtocolState {
    return PROTOCOL_STATES[this.#bits & STATE_BITS]!;
  }
  set #state(state: ProtocolState) {
    this.#bits = (this.#bits & ~STATE_BITS) | PROTOCOL_STATES.indexOf(state);
  }
  get #closeReceived(): boolean {
    return (this.#bits & CLOSE_RECEIVED) !== 0;
  }
  set #closeReceived(on: boolean) {
    this.#bits = on
      ? this.#bits | CLOSE_RECEIVED
      : this.#bits & ~CLOSE_RECEIVED;
  }
  get #closeSent(): boolean {
    return (this.#bits & CLOSE_SENT) !== 0;
  }
  set #closeSent(on: boolean) {
    this.#bits = on ? this.#bits | CLOSE_SENT : this.#bits & ~CLOSE_SENT;
  }
  /** The RSV bits of the incoming message's first frame, 0 to 7. */
  get #messageRsv(): number {
    return (this.#bits & RSV_BITS) >>> RSV_SHIFT;
  }
  set #messageRsv(rsv: number) {
    this.#bits = (this.#bits & ~RSV_BITS) | (rsv << RSV_SHIFT);
  }
  /** The incoming message's opcode; 0: none in progress. */
  get #messageOpcode(): number {
    return (this.#bits & MESSAGE_OPCODE_BITS) >>> MESSAGE_OPCODE_SHIFT;
  }
  set #messageOpcode(opcode: number) {
    this.#bits = (this.#bits & ~MESSAGE_OPCODE_BITS) |
      (opcode << MESSAGE_OPCODE_SHIFT);
  }
  /** The outgoing fragmented message's opcode, if one is being sent. */
  get #sendingOpcode(): number {
    return (this.#bits & SENDING_OPCODE_BITS) >>> SENDING_OPCODE_SHIFT;
  }
  set #sendingOpcode(opcode: number) {
    this.#bits = (this.#bits & ~SENDING_OPCODE_BITS) |
      (opcode << SENDING_OPCODE_SHIFT);
  }

  /**
   * The decoder's sink: one small object per protocol, its methods on the
   * prototype, instead of a closure per event (idle connections are mostly
   * such per-connection objects).
   */
  static #Sink = class implements FrameSink {
    constructor(readonly protocol: Protocol) {}
    frameStart(header: FrameHeader): void {
      this.protocol.#frameStart(header);
    }
    framePayload(chunk: Uint8Array): void {
      this.protocol.#framePayload(chunk);
    }
    frameEnd(): void {
      this.protocol.#frameEnd();
    }
  };

  /**
   * Makes the state machine for one connection, open.
   *
   * @param options Role and limits. Kept, not copied (a server passes one
   * object for all its connections): do not change it afterwards.
   * @param handler Where events and outgoing bytes go.
   */
  constructor(options: ProtocolOptions, handler: ProtocolHandler) {
    this.#handler = handler;
    this.#options = options;
    this.#decoder = new FrameDecoder(new Protocol.#Sink(this), {
      masked: options.role === "server",
      allowedRsv: options.allowedRsv ?? 0,
    });
  }

  /** Our end of the connection (only a client masks what it sends). */
  get role(): Role {
    return this.#options.role;
  }

  /** Where the protocol stands. */
  get state(): ProtocolState {
    return this.#state;
  }

  /** Whether the peer's close frame has arrived. */
  get closeReceived(): boolean {
    return this.#closeReceived;
  }

  /** Whether we have sent a close frame. */
  get closeSent(): boolean {
    return this.#closeSent;
  }

  /** The protocol error that failed the connection, if one did. */
  get failure(): ProtocolError | null {
    return this.#failure;
  }

  /**
   * Feeds bytes received from the peer. Bytes after the peer's close frame are
   * ignored (RFC 6455 §5.5.1: after a close frame the peer sends nothing).
   *
   * On a protocol violation, stops receiving and throws the
   * `ProtocolError`; the caller then calls {@link Protocol.fail} to send the
   * close frame and closes the socket. Messages that arrived before the
   * violation have been reported, and until `fail()` the application may
   * still answer them: Autobahn's strict grade (cases 3.2, 4.1.3, 5.15)
   * wants the echo of a valid message to go out before the 1002 that the
   * bad frame right behind it earns.
   *
   * @param chunk The bytes; payloads are unmasked in place.
   * @throws {ProtocolError} when the peer broke the protocol.
   */
  receive(chunk: Uint8Array): void {
    if ((this.#bits & CLOSE_RECEIVED) !== 0 || this.#failure !== null) return;
    // Small binary messages of this chunk may share one buffer (see
    // _small_copies.ts).
    const outer = enterChunk(chunk);
    try {
      this.#decoder.push(chunk);
    } catch (error) {
      if (this.#closeReceived) return;
      if (!(error instanceof ProtocolError)) throw error;
      this.#failure = error;
      this.#resetMessage();
      throw error;
    } finally {
      leaveChunk(outer);
    }
  }

  /**
   * Fails the connection after `receive` threw (RFC 6455 §7.1.7, "Fail the
   * WebSocket Connection"): sends a close frame with the violation's code,
   * unless one was already sent, and moves to `closed`. Does nothing if
   * there was no violation.
   */
  fail(): void {
    const error = this.#failure;
    if (error === null || this.#state === "closed") return;
    if (!this.#closeSent) {
      this.#closeSent = true;
      this.#sendFrame(true, Opcode.Close, encodeClosePayload(error.closeCode));
    }
    this.#state = "closed";
  }

  /**
   * Records a violation found above the protocol (an extension's message
   * that does not inflate, or inflates past the limit) as if `receive` had
   * thrown it: nothing more is received, and {@link Protocol.fail} sends its
   * code. The first violation stays.
   *
   * @param error The violation.
   */
  failWith(error: ProtocolError): void {
    if (this.#failure !== null || this.#closeReceived) return;
    this.#failure = error;
    this.#resetMessage();
  }

  /**
   * Tells the protocol the byte stream ended. Returns whether that was a
   * clean end: the close handshake had completed, or at least the peer's
   * close frame had arrived. Otherwise the connection closed abnormally
   * (reported as 1006).
   *
   * @returns `true` for a clean end.
   */
  receiveEof(): boolean {
    const clean = this.#closeReceived;
    this.#state = "closed";
    this.#resetMessage();
    return clean;
  }

  /**
   * Sends a whole message in one frame: a string as text, bytes as binary.
   *
   * @param data The message.
   * @throws {ConnectionClosedError} if a close frame was sent or received.
   * @throws {TypeError} while a fragmented message is being sent.
   */
  sendMessage(data: Message): void {
    this.#checkCanSend();
    if ((this.#bits & SENDING_OPCODE_BITS) !== 0) {
      throw new TypeError(
        "Cannot send a message while a fragmented message is being sent",
      );
    }
    if (typeof data === "string") this.#sendText(data, Opcode.Text, true);
    else this.#sendFrame(true, Opcode.Binary, data);
  }

  /**
   * Sends one fragment of a message (RFC 6455 §5.4). The first fragment's
   * type (text or binary) sets the message's type; later ones must match.
   * The last has `fin` set. Control frames may go out between fragments.
   *
   * @param data The fragment: a string for text, bytes for binary. For text,
   * a fragment boundary may fall inside a character only when bytes are given.
   * @param fin Whether this is the message's last fragment.
   * @param type The message type, when it cannot be told from `data`.
   * @param rsv RSV bits for the frame (bytes only): an agreed extension's
   * mark on a message's first frame.
   * @throws {ConnectionClosedError} if a close frame was sent or received.
   * @throws {TypeError} if the type differs from the message's.
   */
  sendFragment(
    data: Message,
    fin: boolean,
    type: "text" | "binary" = typeof data === "string" ? "text" : "binary",
    rsv = 0,
  ): void {
    this.#checkCanSend();
    const opcode = type === "text" ? Opcode.Text : Opcode.Binary;
    const sending = this.#sendingOpcode;
    if (sending !== 0 && sending !== opcode) {
      throw new TypeError(
        `Cannot send a ${type} fragment inside a ${
          type === "text" ? "binary" : "text"
        } message`,
      );
    }
    const frameOpcode = sending === 0 ? opcode : Opcode.Continuation;
    this.#sendingOpcode = fin ? 0 : opcode;
    if (typeof data === "string") this.#sendText(data, frameOpcode, fin);
    else this.#sendFrame(fin, frameOpcode, data, rsv);
  }

  /**
   * Sends a ping.
   *
   * @param payload Up to 125 bytes (RFC 6455 §5.5).
   * @throws {RangeError} for a payload over 125 bytes.
   * @throws {ConnectionClosedError} if a close frame was sent or received.
   */
  ping(payload: Uint8Array = new Uint8Array(0)): void {
    this.#sendControl(Opcode.Ping, payload);
  }

  /**
   * Sends an unsolicited pong (RFC 6455 §5.5.3: a unidirectional heartbeat).
   *
   * @param payload Up to 125 bytes.
   * @throws {RangeError} for a payload over 125 bytes.
   * @throws {ConnectionClosedError} if a close frame was sent or received.
   */
  pong(payload: Uint8Array = new Uint8Array(0)): void {
    this.#sendControl(Opcode.Pong, payload);
  }

  /**
   * Starts the close handshake by sending a close frame; when the peer's
   * close already arrived this does nothing (its echo was sent). Without a
   * reason, a known code gets its default reason.
   *
   * @param code The close code (omit for a close frame without a code).
   * @param reason The reason, at most 123 bytes of UTF-8.
   * @returns Whether a close frame was sent.
   * @throws {RangeError} for a code that may not be sent or a reason that is too long.
   */
  close(code?: number, reason?: string): boolean {
    const payload = encodeClosePayload(
      code,
      reason ?? (code === undefined ? "" : DEFAULT_CLOSE_REASONS[code] ?? ""),
    );
    if (this.#closeSent || this.#closeReceived || this.#state === "closed") {
      return false;
    }
    this.#closeSent = true;
    this.#state = "closing";
    this.#sendFrame(true, Opcode.Close, payload);
    return true;
  }

  #checkCanSend(): void {
    if ((this.#bits & STATE_BITS) !== OPEN) {
      throw new ConnectionClosedError(
        `Cannot send on a ${this.#state} connection`,
        { closeCode: 1006, reason: "", wasClean: false },
      );
    }
  }

  #sendControl(opcode: number, payload: Uint8Array): void {
    if (payload.length > 125) {
      throw new RangeError(
        `Control frame payload is ${payload.length} bytes; at most 125 are allowed`,
      );
    }
    this.#checkCanSend();
    this.#sendFrame(true, opcode, payload);
  }

  /** Frames bytes; large unmasked payloads go out as a separate view, uncopied. */
  #sendFrame(
    fin: boolean,
    opcode: number,
    payload: Uint8Array,
    rsv = 0,
  ): void {
    const length = payload.length;
    const key = this.#options.role === "client" ? this.#maskKey() : null;
    const headerSize = frameHeaderSize(length, key !== null);
    if (key === null && length >= ZERO_COPY_LIMIT) {
      const header = new Uint8Array(headerSize);
      writeFrameHeader(header, 0, fin, rsv, opcode, length, null);
      this.#handler.send(header);
      this.#handler.send(payload);
      return;
    }
    const size = headerSize + length;
    const large = length >= REUSE_WORTH;
    const buffers = this.#buffers;
    const out = large
      ? buffers.reusableFor(size, headerSize, payload)
      : size < SMALL_FRAME
      ? buffers.smallFrame(size)
      : buffers.for(size, headerSize, payload);
    writeFrameHeader(out, 0, fin, rsv, opcode, length, key);
    if (key === null) out.set(payload, headerSize);
    else if (length < SMALL_PAYLOAD) {
      // Masked as it is copied: no view, no second pass.
      for (let i = 0; i < length; i++) {
        out[headerSize + i] = payload[i]! ^ key[i & 3]!;
      }
    } else {
      out.set(payload, headerSize);
      applyMask(out.subarray(headerSize), key);
    }
    // The handler says when the bytes are already on the socket.
    if (this.#handler.send(out) === BYTES_COPIED && large) {
      buffers.giveBack(out);
    }
  }

  /** Frames text, encoding it straight into the frame buffer when it is small. */
  #sendText(text: string, opcode: number, fin: boolean): void {
    if (text.length > INLINE_TEXT_LIMIT) {
      this.#sendFrame(fin, opcode, encoder.encode(text));
      return;
    }
    const key = this.#options.role === "client" ? this.#maskKey() : null;
    if (text.length <= JS_ENCODE_LIMIT && isAscii(text)) {
      // The exact size is known: one buffer (a small one carved from a
      // shared block where the runtime's buffers share), no second view.
      const length = text.length;
      const at = frameHeaderSize(length, key !== null);
      const size = at + length;
      const out = size < SMALL_FRAME
        ? this.#buffers.smallFrame(size)
        : new Uint8Array(size);
      writeFrameHeader(out, 0, fin, 0, opcode, length, key);
      if (key === null) {
        for (let i = 0; i < length; i++) out[at + i] = text.charCodeAt(i);
      } else {
        // Masked as it is copied (RFC 6455 §5.3), without a second pass.
        for (let i = 0; i < length; i++) {
          out[at + i] = text.charCodeAt(i) ^ key[i & 3]!;
        }
      }
      this.#handler.send(out);
      return;
    }
    const most = text.length * 3;
    const room = frameHeaderSize(most, key !== null);
    const out = new Uint8Array(room + most);
    const length = encoder.encodeInto(text, out.subarray(room)).written;
    const start = room - frameHeaderSize(length, key !== null);
    writeFrameHeader(out, start, fin, 0, opcode, length, key);
    if (key !== null && length > 0) {
      applyMask(out.subarray(room, room + length), key);
    }
    this.#handler.send(out.subarray(start, room + length));
  }

  /** A client's next masking key: from its options, or from a shared pool. */
  #maskKey(): Uint8Array {
    const source = this.#options.maskSource ??
      (sharedMasks ??= randomMaskSource());
    return source();
  }

  /** How payload copies are made: the runtime's, or plain ones. */
  get #buffers(): PayloadBuffers {
    return this.#options.buffers ?? plainPayloadBuffers;
  }

  #resetMessage(): void {
    this.#messageOpcode = 0;
    this.#messageRsv = 0;
    this.#messageSize = 0;
    this.#fragments = 0;
    this.#part = null;
    this.#parts = null;
    this.#text?.reset();
  }

  #frameStart(header: FrameHeader): void {
    const opcode = header.opcode;
    this.#frame = header;
    // Bits an agreed extension owns (the decoder refused all others) mark a
    // message, on its first frame only: RFC 7692 §6.1, "An endpoint MUST NOT
    // set the "Per-Message Compressed" bit of control frames and non-first
    // fragments of a data message."
    if (
      header.rsv !== 0 && (opcode >= 8 || opcode === Opcode.Continuation)
    ) {
      throw new ProtocolError(
        `RSV bits set on a ${opcode >= 8 ? "control" : "continuation"} frame`,
        1002,
      );
    }
    if (opcode >= 8) {
      this.#control = null;
      return;
    }
    const inMessage = (this.#bits & MESSAGE_OPCODE_BITS) !== 0;
    if (opcode === Opcode.Continuation) {
      if (!inMessage) {
        throw new ProtocolError(
          "Continuation frame without a message to continue",
          1002,
        );
      }
    } else if (inMessage) {
      throw new ProtocolError(
        "New data frame inside a fragmented message (expected a continuation)",
        1002,
      );
    } else {
      // The message's opcode, and its RSV bits: a handler without
      // extensionMessage gets such messages as they came.
      const rsv = header.rsv !== 0 &&
          this.#handler.extensionMessage !== undefined
        ? header.rsv
        : 0;
      this.#bits = (this.#bits & ~(MESSAGE_OPCODE_BITS | RSV_BITS)) |
        (opcode << MESSAGE_OPCODE_SHIFT) | (rsv << RSV_SHIFT);
      this.#messageSize = 0;
      this.#fragments = 0;
    }
    // Check the limits on the header, before buffering any of the payload.
    const maxMessageSize = this.#options.maxMessageSize ??
      DEFAULT_MAX_MESSAGE_SIZE;
    if (this.#messageSize + header.length > maxMessageSize) {
      throw new ProtocolError(
        `Message over the ${maxMessageSize}-byte limit`,
        1009,
      );
    }
    const maxFragments = this.#options.maxFragments ?? DEFAULT_MAX_FRAGMENTS;
    if (++this.#fragments > maxFragments) {
      throw new ProtocolError(
        `Message in over ${maxFragments} fragments`,
        1009,
      );
    }
    this.#messageSize += header.length;
  }

  #framePayload(chunk: Uint8Array): void {
    const bits = this.#bits;
    if ((bits & CLOSE_RECEIVED) !== 0) return;
    const frame = this.#frame!;
    if (frame.opcode >= 8) {
      (this.#control ??= []).push(chunk);
      return;
    }
    if (
      (bits & (MESSAGE_OPCODE_BITS | RSV_BITS)) ===
        Opcode.Text << MESSAGE_OPCODE_SHIFT
    ) {
      // A text message in one frame that arrived whole is decoded at its end,
      // in one call; anything else is checked as it arrives, to fail fast.
      if (
        this.#fragments === 1 && frame.fin && chunk.length === frame.length
      ) {
        this.#part = chunk;
        return;
      }
      this.#text ??= new Utf8Decoder();
      this.#text.push(chunk);
      return;
    }
    const parts = this.#parts;
    if (parts === IN_PLACE) this.#placeInMessage(chunk);
    else if (parts !== null) parts.push(chunk);
    else if (this.#part === null) this.#part = chunk;
    else this.#parts = [this.#part, chunk];
  }

  /**
   * Whether the message being received may be assembled in its own buffer,
   * read straight into place by a transport that can ({@link receiveBuffer}),
   * rather than kept as pieces and joined at its end: a binary message in
   * one frame (its size known from the header) without an extension.
   *
   * Only when a transport asks: assembling in place pays for itself only
   * when the reads land there. On Bun, whose reads come in buffers of its
   * own, copying each piece in on arrival instead of joining them at the end
   * took the 16 MiB echo from 0.44x to 0.26x Bun native (page faults per
   * message from 1,900 to 2,800: the message's buffer lives longer).
   */
  #assemblesInPlace(): boolean {
    const frame = this.#frame!;
    return frame.fin && this.#fragments === 1 &&
      (this.#bits & (MESSAGE_OPCODE_BITS | RSV_BITS)) ===
        Opcode.Binary << MESSAGE_OPCODE_SHIFT;
  }

  /** Makes the message's buffer and copies its first piece in. */
  #startInPlace(first: Uint8Array): void {
    const buffers = this.#buffers;
    const whole = buffers.for(this.#frame!.length, 0, first);
    buffers.copyInto(whole, 0, first);
    this.#part = whole;
    this.#parts = IN_PLACE;
  }

  /**
   * Puts the next piece of a message assembled in place where it belongs:
   * nothing to do when it was read there ({@link receiveBuffer}).
   */
  #placeInMessage(chunk: Uint8Array): void {
    const whole = this.#part!;
    // The bytes before this piece: the frame's, less what is still to come.
    const at = whole.length - this.#decoder.payloadRemaining - chunk.length;
    if (
      chunk.buffer !== whole.buffer ||
      chunk.byteOffset !== whole.byteOffset + at
    ) {
      this.#buffers.copyInto(whole, at, chunk);
    }
  }

  /**
   * Where the next bytes read from the socket may go: the rest of a large
   * message's own buffer, when they are all its payload (see
   * `ChannelReader.nextBuffer`), or `null` for anywhere. Bytes read into it
   * and then fed to {@link receive} are not copied again.
   *
   * @returns A view of the message's buffer, or `null`.
   */
  receiveBuffer(): Uint8Array | null {
    const remaining = this.#decoder.payloadRemaining;
    if (
      remaining < READ_IN_PLACE || (this.#bits & CLOSE_RECEIVED) !== 0 ||
      this.#failure !== null
    ) return null;
    if (this.#parts !== IN_PLACE) {
      const first = this.#part;
      if (first === null || this.#parts !== null || !this.#assemblesInPlace()) {
        return null;
      }
      this.#startInPlace(first);
    }
    const whole = this.#part!;
    return whole.subarray(whole.length - remaining);
  }

  #frameEnd(): void {
    const bits = this.#bits;
    if ((bits & CLOSE_RECEIVED) !== 0) return;
    const frame = this.#frame!;
    const opcode = frame.opcode;
    if (opcode >= 8) {
      const parts = this.#control ?? [];
      this.#control = null;
      // A close payload is read here and let go: no copy of it. A ping's or
      // a pong's goes to the handler, which may keep it.
      this.#controlFrame(
        opcode,
        opcode === Opcode.Close && parts.length === 1
          ? parts[0]!
          : this.#buffers.join(parts, frame.length),
      );
      return;
    }
    if (!frame.fin) return;
    let message: Message;
    const part = this.#part, parts = this.#parts;
    if ((bits & RSV_BITS) !== 0) return this.#extensionMessageEnd();
    if ((bits & MESSAGE_OPCODE_BITS) === Opcode.Text << MESSAGE_OPCODE_SHIFT) {
      if (part !== null) {
        message = decodeUtf8(part);
      } else {
        // Every other text message went through the incremental decoder (or
        // had no payload at all, which `end()` on a fresh decoder gives as "").
        this.#text ??= new Utf8Decoder();
        message = this.#text.end();
      }
    } else if (parts === IN_PLACE) {
      message = part!;
    } else if (parts !== null) {
      message = this.#buffers.join(parts, this.#messageSize);
    } else if (part !== null) {
      message = ownedView(part, this.#buffers);
    } else {
      message = new Uint8Array(0);
    }
    this.#bits &= ~MESSAGE_OPCODE_BITS;
    this.#messageSize = 0;
    this.#fragments = 0;
    this.#part = null;
    this.#parts = null;
    this.#handler.message(message);
  }

  /** An extension's message is whole: its payload goes as received. */
  #extensionMessageEnd(): void {
    const part = this.#part, parts = this.#parts;
    const payload = parts !== null
      ? this.#buffers.join(parts, this.#messageSize)
      : part !== null
      ? ownedView(part, this.#buffers)
      : new Uint8Array(0);
    const text = this.#messageOpcode === Opcode.Text;
    const rsv = this.#messageRsv;
    this.#messageOpcode = 0;
    this.#messageRsv = 0;
    this.#messageSize = 0;
    this.#fragments = 0;
    this.#part = null;
    this.#parts = null;
    this.#handler.extensionMessage!(payload, text, rsv);
  }

  #controlFrame(opcode: number, payload: Uint8Array): void {
    if (opcode === Opcode.Ping) {
      // §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong
      // frame in response, unless it already received a Close frame." After
      // we sent our close, we send nothing more (§5.5.1).
      if (!this.#closeSent) this.#sendFrame(true, Opcode.Pong, payload);
      this.#handler.ping(payload);
    } else if (opcode === Opcode.Pong) {
      this.#handler.pong(payload);
    } else {
      const { code, reason } = decodeClosePayload(payload);
      this.#closeReceived = true;
      this.#resetMessage();
      if (!this.#closeSent) {
        // §5.5.1: "it MUST send a Close frame in response … typically echoing
        // the status code it received."
        // The code's two bytes are the payload's first two, checked.
        this.#closeSent = true;
        this.#sendFrame(
          true,
          Opcode.Close,
          code === 1005 ? NO_PAYLOAD : payload.subarray(0, 2),
        );
      }
      this.#state = "closed";
      this.#handler.close(code, reason);
    }
  }
}

/**
 * From this many bytes, a frame is built in a reused buffer when one was
 * given back (see `PayloadBuffers.reusableFor`).
 */
const REUSE_WORTH = 16 * 1024;

/** `#parts` of a message assembled in place (see `Protocol.receiveBuffer`). */
const IN_PLACE: Uint8Array[] = Object.freeze([]) as unknown as Uint8Array[];

/**
 * From this many payload bytes still to come, {@link Protocol.receiveBuffer}
 * offers a message's own buffer to read into.
 */
const READ_IN_PLACE = 64 * 1024;

/** Below this many bytes, a payload is masked byte by byte as it is copied. */
const SMALL_PAYLOAD = 128;

/** Below this many characters, ASCII is framed in JS, not by a native call. */
const JS_ENCODE_LIMIT = 256;

/** Whether every character of `text` is ASCII (one UTF-8 byte each). */
function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) >= 0x80) return false;
  }
  return true;
}

/**
 * A view handed to the application must not pin a much larger buffer (a
 * socket read buffer holding many small messages): copy when it is small
 * next to its buffer. An eighth is the bound because Bun reads up to 512 KiB
 * at a time: 64 KiB messages then come eight to a chunk, and copying each
 * cost 8 % of our client's time at 64 KiB (it holds at most 8× a message).
 */
function ownedView(view: Uint8Array, buffers: PayloadBuffers): Uint8Array {
  // Small views are copied without asking (a copy is cheaper than reading
  // `buffer`), where the runtime wants it several of a chunk to one buffer
  // (see _small_copies.ts).
  if (view.length < SMALL_MESSAGE) {
    return buffers.shareSmallBuffers ? copySmall(view) : view.slice();
  }
  return view.length * 8 >= view.buffer.byteLength ? view : view.slice();
}
