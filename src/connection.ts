/**
 * The public connection: message streams over the protocol and a byte
 * channel, with the timers the protocol leaves out (keepalive).
 *
 * Data flow: the channel's bytes are read only while the inbox of received
 * messages has room, fed to the {@link Protocol}, and its messages queued in
 * the inbox; everything sent (application messages, and the protocol's
 * pongs and close frames) is corked and written to the channel in order.
 * How a connection ends (the close handshake, failures, the socket's drop)
 * is `_connection_end.ts`; its options and their defaults are
 * `connection_options.ts`. What only some connections need is
 * `_rare_state.ts`, pings `_pings.ts`, agreed extensions
 * `_extension_pipeline.ts`; other modules reach in through
 * `_connection_internals.ts`.
 *
 * @module
 */

import type {
  ByteChannel,
  ByteStream,
  ChannelReader,
  WriteFailureListener,
} from "./byte_channel.ts";
import {
  checkType,
  type CloseOptions,
  type ConnectionInfo,
  type ConnectionSettings,
  connectionSettings,
  type ConnectionSetup,
  type Sendable,
  type SendOptions,
} from "./connection_options.ts";
import { type ConnectionClosedError, ProtocolError } from "./errors.ts";
import type { ExtensionOffer } from "./handshake_headers.ts";
import {
  BYTES_COPIED,
  type Message,
  Protocol,
  type ProtocolHandler,
} from "./protocol.ts";
import { channelOf } from "./stream_channel.ts";
import { RareState, SHARED_RARE_STATE } from "./_rare_state.ts";
import { PendingPings } from "./_pings.ts";
import { connectionInfo } from "./_connection_info.ts";
import {
  type ExtensionHost,
  ExtensionPipeline,
} from "./_extension_pipeline.ts";
import {
  closedError,
  closeFrameOf,
  type CloseInfo,
  ConnectionEnd,
  type ConnectionEndHost,
  type ConnectionState,
} from "./_connection_end.ts";
import type { Deadline } from "./_deadline_queue.ts";
import { type KeepaliveHost, scheduleKeepalive } from "./_keepalive.ts";
import { writeFrames } from "./_write_frames.ts";
import { Link } from "./_linked_list.ts";
import { connectionData, controlListenerOf } from "./_connection_data.ts";
import {
  fragmentsWritable,
  messagesReadable,
  messagesWritable,
  sendableOf,
  sendChunks,
} from "./_connection_streams.ts";

export type { ByteStream } from "./byte_channel.ts";
export type {
  CloseFrame,
  CloseInfo,
  ConnectionState,
} from "./_connection_end.ts";
export type {
  CloseOptions,
  ConnectionInfo,
  ConnectionSetup,
  Sendable,
  SendOptions,
} from "./connection_options.ts";

// The bits of a connection's `#flags` below its state.
const READING = 1;
const FLUSH_SCHEDULED = 2;
/** Where the state sits in `#flags`: its index in STATES. */
const STATE_SHIFT = 2;
const STATES: readonly ConnectionState[] = ["open", "closing", "closed"];

/**
 * Frames written within one turn of the event loop are gathered ("corked")
 * and handed to the transport as one write at the next macrotask, or at once
 * when this many bytes are waiting. One write per batch instead of one per
 * frame is most of the speed of small messages.
 */
const CORK_LIMIT = 64 * 1024;
/** The first byte of every close frame: FIN, no RSV bits, opcode 8. */
const CLOSE_FRAME_BYTE = 0x88;
/** Runs `task` after the current macrotask (Deno and Bun both have it). */
const nextMacrotask: (task: () => void) => void =
  (globalThis as { setImmediate?: (task: () => void) => void }).setImmediate ??
    ((task) => setTimeout(task, 0));
const resolved = Promise.resolve();
/** `send()` and `close()` without options, shared. */
const NO_OPTIONS: Readonly<SendOptions & CloseOptions> = Object.freeze({});
/**
 * The empty inbox, shared (frozen: a push to it would throw, not leak a
 * message to other connections): most connections, idle or with a reader
 * waiting, have no message queued, and need no array of their own.
 */
const NO_MESSAGES = Object.freeze([]) as unknown as Message[];
/** Taken messages at the inbox's front before it is compacted. */
const INBOX_COMPACT = 64;

/**
 * What the library's other modules reach inside a connection for, set by
 * the class's static block; `_connection_internals.ts` gives each its name
 * and its documentation. Internal.
 */
export interface ConnectionInternals {
  link(connection: WebSocketConnection): OpenLink | null;
  drop(connection: WebSocketConnection): void;
  sendEncoded(
    connection: WebSocketConnection,
    frame: Uint8Array,
  ): Promise<void> | null;
  pendingBytes(connection: WebSocketConnection): number;
  /** The settings of the next connection made (`null` after it). */
  preset(settings: ConnectionSettings | null): void;
}
/** A connection as an entry of a linked list. */
export type OpenLink = Link & { readonly connection: WebSocketConnection };
/** See {@link ConnectionInternals}. Internal. */
export let connectionInternals: ConnectionInternals;

/** The settings for the next connection made (see `openConnection`). */
let presetSettings: ConnectionSettings | null = null;

/**
 * One WebSocket connection, either end: a `ReadableStream` of the messages
 * received and a `WritableStream` of the messages to send.
 *
 * You must keep reading `readable` (or cancel it): the connection reads the
 * socket only while `readable` has room, so that a slow reader slows the
 * peer down instead of filling memory, and pings, pongs and close frames are
 * read in turn with messages.
 *
 * @typeParam Data The type of {@link WebSocketConnection.data}: what a
 * server's `onUpgrade` attached.
 *
 * @example Echo every message back
 * ```ts
 * import { type WebSocketConnection } from "@wsstream/wsstream";
 *
 * async function echo(connection: WebSocketConnection) {
 *   for await (const message of connection.readable) {
 *     await connection.send(message);
 *   }
 * }
 * ```
 */
export class WebSocketConnection<Data = unknown> {
  readonly #protocol: Protocol;
  /**
   * The protocol's handler, the reader of the channel's bytes, the listener
   * for its write failures and the host of the connection's end. It is also
   * the connection's link in an `OpenConnections`, and holds its running
   * keepalive or drop deadline and its path.
   */
  readonly #events:
    & Link
    & ProtocolHandler
    & ChannelReader
    & WriteFailureListener
    & ConnectionEndHost
    & KeepaliveHost
    & ExtensionHost
    & {
      readonly connection: WebSocketConnection;
      readonly path: string;
    };
  /** The transport's bytes: read one chunk at a time, written in batches. */
  readonly #channel: ByteChannel;
  /** Limits and hooks: one frozen object for all of a server's connections. */
  readonly #settings: ConnectionSettings;
  /**
   * Messages received and not yet taken, at most `highWaterMark` of them
   * (the socket is read only while there is room). `readable` and async
   * iteration both take from here; the streams are made on first use.
   */
  #inbox: Message[] = NO_MESSAGES;
  #inboxHead = 0;
  /**
   * A `next()` waiting for a message: its promise and how to settle it, kept
   * in fields (an idle connection holds no resolvers object).
   */
  #waiting: Promise<IteratorResult<Message, undefined>> | null = null;
  /** Settles `#waiting`; an error settles it with a rejected promise. */
  #resolveWaiting:
    | ((result: IteratorResult<Message, undefined> | Promise<never>) => void)
    | null = null;
  #sendTail: Promise<void> = resolved;
  /** Sends waiting in `#sendTail`; with none, a send may go out at once. */
  #sendsQueued = 0;
  /** Corked frames, not yet handed to the transport (see CORK_LIMIT). */
  #corked: Uint8Array[] | null = null;
  #corkedBytes = 0;
  #bytesReceived = 0;
  #bytesSent = 0;
  #messagesReceived = 0;
  #messagesSent = 0;
  /**
   * Two booleans and the state in one number, not three fields: with 18
   * fields or fewer, a connection is in JavaScriptCore's 160-byte size class
   * rather than 224.
   */
  #flags = 0;
  /** The rarely needed state (see {@link RareState}): shared until written. */
  #rare: RareState = SHARED_RARE_STATE;

  /** The connection's own rare state, made on the first write to it. */
  get #own(): RareState {
    return this.#rare === SHARED_RARE_STATE
      ? (this.#rare = new RareState())
      : this.#rare;
  }
  /** Whether a read of the channel is under way. */
  get #reading(): boolean {
    return (this.#flags & READING) !== 0;
  }
  set #reading(on: boolean) {
    this.#flags = on ? this.#flags | READING : this.#flags & ~READING;
  }
  get #state(): ConnectionState {
    return STATES[this.#flags >>> STATE_SHIFT]!;
  }
  set #state(state: ConnectionState) {
    this.#flags = (this.#flags & ((1 << STATE_SHIFT) - 1)) |
      (STATES.indexOf(state) << STATE_SHIFT);
  }
  /** The end, made when it begins. */
  get #end(): ConnectionEnd {
    return this.#rare.end ?? (this.#own.end = new ConnectionEnd(this.#events));
  }

  /**
   * The protocol's handler, the channel's reader and the end's host: one
   * small object per connection, its methods on the prototype, instead of
   * a closure per event.
   */
  static #Events = class extends Link
    implements
      ProtocolHandler,
      ChannelReader,
      WriteFailureListener,
      ConnectionEndHost,
      KeepaliveHost,
      ExtensionHost {
    /**
     * The running keepalive or drop deadline: a connection has at most one
     * at a time (a ping due, a pong due, or the socket's drop).
     */
    deadline: Deadline<unknown> | null = null;
    constructor(
      readonly connection: WebSocketConnection,
      /** The request path and query of the handshake. */
      readonly path: string,
    ) {
      super();
    }
    // ProtocolHandler
    message(data: Message): void {
      const pipeline = this.connection.#rare.pipeline;
      // Behind an extension's message still being transformed, in order.
      if (pipeline !== null && pipeline.pending > 0) {
        pipeline.behind(data, this);
      } else this.connection.#onMessage(data);
    }
    extensionMessage(payload: Uint8Array, text: boolean, rsv: number): void {
      const { maxMessageSize } = this.connection.#settings;
      this.connection.#rare.pipeline!
        .receive(payload, text, rsv, maxMessageSize, this);
    }
    ping(payload: Uint8Array): void {
      this.connection.#settings.onPing?.(payload);
      controlListenerOf(this.connection)?.ping?.(payload);
    }
    pong(payload: Uint8Array): void {
      const connection = this.connection;
      connection.#rare.pings?.answered(payload);
      connection.#settings.onPong?.(payload);
      controlListenerOf(connection)?.pong?.(payload);
    }
    close(code: number, reason: string): void {
      const pipeline = this.connection.#rare.pipeline;
      if (pipeline !== null && pipeline.pending > 0) {
        // The messages before the close frame come first.
        pipeline.afterMessages(() =>
          this.connection.#end.peerClosed(code, reason)
        );
      } else this.connection.#end.peerClosed(code, reason);
    }
    send(bytes: Uint8Array): typeof BYTES_COPIED | undefined {
      return this.connection.#write(bytes) ? BYTES_COPIED : undefined;
    }
    // ExtensionHost
    deliver(data: Message): void {
      const connection = this.connection;
      const rare = connection.#rare;
      // Not once the inbox has ended.
      if (rare.inboxEnd !== null || rare.end?.failing) return;
      connection.#onMessage(data);
      connection.#readMore();
    }
    extensionFailed(error: unknown): void {
      this.connection.#end.extensionFailed(error);
    }
    checkOutgoingText(bytes: Uint8Array, fin: boolean): void {
      this.connection.#own.checkOutgoingText(bytes, fin);
    }
    closedError(what: string, cause?: unknown): ConnectionClosedError {
      return this.connection.#closedError(what, cause);
    }
    // ChannelReader and WriteFailureListener
    received(bytes: Uint8Array | null): void {
      this.connection.#onRead(bytes);
    }
    nextBuffer(): Uint8Array | null {
      return this.connection.#protocol.receiveBuffer();
    }
    failed(): void {
      this.connection.#reading = false;
      this.connection.#end.transportFailed();
    }
    writeFailed(): void {
      this.connection.#end.transportFailed();
    }
    // ConnectionEndHost
    get protocol(): Protocol {
      return this.connection.#protocol;
    }
    get channel(): ByteChannel {
      return this.connection.#channel;
    }
    get settings(): ConnectionSettings {
      return this.connection.#settings;
    }
    get state(): ConnectionState {
      return this.connection.#state;
    }
    set state(state: ConnectionState) {
      this.connection.#state = state;
    }
    get queued(): number {
      return this.connection.#queued;
    }
    get readableDone(): boolean {
      return this.connection.#rare.readableDone;
    }
    afterSends(task: () => void): void {
      const connection = this.connection;
      connection.#sendTail = connection.#sendTail.then(task);
    }
    drainUntilClosed(): void {
      // Once our close frame is out, read on whether or not `readable` has
      // room: the peer's close frame may be behind messages nobody is reading.
      const connection = this.connection;
      if (connection.#rare.draining) return;
      connection.#own.draining = true;
      connection.#readMore();
    }
    endInbox(error: unknown): void {
      // No more messages come; a waiting `next()` gets the end now.
      const connection = this.connection;
      connection.#own.readableDone = true;
      if (connection.#rare.inboxEnd !== null) return;
      connection.#own.inboxEnd = { error };
      if (error !== null) {
        connection.#inbox = NO_MESSAGES;
        connection.#inboxHead = 0;
      }
      const resolve = connection.#resolveWaiting;
      if (resolve === null) return;
      connection.#waiting = connection.#resolveWaiting = null;
      // A rejected promise rejects it: no field for its reject function.
      resolve(
        error === null
          ? { done: true, value: undefined }
          : Promise.reject(error),
      );
    }
    // KeepaliveHost
    sendPing(): Promise<number> {
      return this.connection.ping();
    }
    keepaliveTimedOut(): void {
      this.connection.#end.keepaliveTimedOut();
    }
    rejectPings(error: () => ConnectionClosedError): void {
      this.connection.#rare.pings?.rejectAll(error);
    }
    uncork(): void {
      this.connection.#uncork();
    }
    discardCorked(): void {
      this.connection.#corked = null;
      this.connection.#corkedBytes = 0;
    }
    settled(info: CloseInfo): void {
      this.unlink(); // from an OpenConnections
      this.connection.#rare.pipeline?.close();
      this.connection.#rare.closed?.resolve(info);
    }
  };

  static {
    connectionInternals = {
      link(connection) {
        const end = connection.#rare.end;
        return end !== null && end.settled ? null : connection.#events;
      },
      drop: (connection) => connection.#channel.close(),
      sendEncoded: (connection, frame) => connection.#sendEncoded(frame),
      pendingBytes: (connection) =>
        connection.#corkedBytes + connection.#channel.bufferedAmount,
      preset: (settings) => void (presetSettings = settings),
    };
  }

  /** The connection's own async iterator (see `[Symbol.asyncIterator]`). */
  static #Messages = class implements AsyncIterableIterator<Message> {
    constructor(readonly connection: WebSocketConnection) {}
    next(): Promise<IteratorResult<Message, undefined>> {
      return this.connection.#next();
    }
    return(value?: unknown): Promise<IteratorResult<Message>> {
      this.connection.#stopReading();
      return Promise.resolve({ done: true, value: value as Message });
    }
    [Symbol.asyncIterator](): AsyncIterableIterator<Message> {
      return this;
    }
  };

  /**
   * Runs a WebSocket connection over a byte stream whose handshake is done.
   * Prefer {@link takeover}, `connect` or `serve`.
   *
   * @param stream The byte stream.
   * @param options Role, negotiated values, limits and hooks.
   */
  constructor(stream: ByteStream, options: ConnectionSetup) {
    // A server's connections share the settings it resolved once.
    const settings = presetSettings ??
      connectionSettings(options, options.role);
    presetSettings = null;
    this.#settings = settings;
    if (options.protocol) this.#own.agreedProtocol = options.protocol;
    if (options.extensions && options.extensions.length > 0) {
      this.#own.extensions = options.extensions;
    }
    if (options.head && options.head.length > 0) this.#own.head = options.head;
    let protocolOptions: ConnectionSettings = settings;
    const pipeline = ExtensionPipeline.of(options.extensions);
    if (pipeline !== null) {
      this.#own.pipeline = pipeline;
      // The RSV bits the agreed extensions own: this connection's own options.
      protocolOptions = Object.freeze({
        ...settings,
        allowedRsv: pipeline.rsv,
      });
    }
    this.#channel = channelOf(stream);
    this.#events = new WebSocketConnection.#Events(this, options.path ?? "");
    this.#channel.tellWriteFailures(this.#events);
    this.#protocol = new Protocol(protocolOptions, this.#events);
    this.#readMore();
    if (settings.keepalive !== null) scheduleKeepalive(this.#events);
  }

  /** Resolves (never rejects) with how the connection ended. */
  get closed(): Promise<CloseInfo> {
    return (this.#rare.closed ?? this.#own.closedOnDemand()).promise;
  }

  /** Where the connection stands: `open`, `closing` or `closed`. */
  get state(): ConnectionState {
    return this.#state;
  }

  /**
   * The messages received: text as `string`, binary as `Uint8Array`. Made on
   * first use; iterating the connection itself takes the same messages
   * without a stream in between. It errors with a `ConnectionClosedError`
   * after an unclean close, as iteration throws one.
   */
  get readable(): ReadableStream<Message> {
    return this.#rare.readable ??
      (this.#own.readable = messagesReadable(
        () => this.#next(),
        () => this.#stopReading(),
      ));
  }

  /**
   * The messages to send; closing it closes the connection (code 1000).
   * Writes go out in the order they are made among {@link send} calls.
   * Made on first use.
   */
  get writable(): WritableStream<Sendable> {
    return this.#rare.writable ??
      (this.#own.writable = messagesWritable(
        (message, gate) => this.#send(message, NO_OPTIONS, gate),
        (options) => this.close(options),
      ));
  }

  /** A snapshot of the connection's state, addresses, protocol and counters. */
  get info(): ConnectionInfo {
    return connectionInfo(
      this.#events,
      this.#rare,
      this.#bytesReceived,
      this.#bytesSent,
      this.#messagesReceived,
      this.#messagesSent,
    );
  }

  /**
   * What the server's `onUpgrade` attached to this connection (`undefined`
   * for none), typed as `serve` inferred it (like Bun's `ws.data`).
   */
  get data(): Data {
    return connectionData(this) as Data;
  }

  /** The agreed subprotocol ("" for none). */
  get protocol(): string {
    return this.#rare.agreedProtocol;
  }

  /**
   * The extensions agreed in the handshake, in the order agreed (for
   * permessage-deflate, its `params` are the agreed parameters).
   */
  get extensions(): readonly ExtensionOffer[] {
    return this.#rare.extensions;
  }

  /**
   * Sends a message once every message sent before it has gone out. A
   * string goes as text, bytes as binary; a `ReadableStream` or async
   * iterable goes out as one fragmented message, one frame per chunk,
   * without being buffered whole (see also {@link openMessage}). Resolves
   * once the transport has taken the bytes (so awaiting `send` applies the
   * peer's backpressure).
   *
   * @param message What to send.
   * @param options `type` to send bytes as text or a string as binary.
   * @returns A promise that rejects with `ConnectionClosedError` once the
   * connection is closing or closed.
   * @throws {TypeError} for something that cannot be sent (at the call).
   *
   * @example Text, bytes, and a message streamed in fragments
   * ```ts
   * import type { WebSocketConnection } from "@wsstream/wsstream";
   *
   * async function greet(connection: WebSocketConnection) {
   *   await connection.send("Hello");
   *   await connection.send(new Uint8Array([1, 2, 3]));
   *   await connection.send(ReadableStream.from(["Hel", "lo, ", "world"]));
   * }
   * ```
   */
  send(message: Sendable, options: SendOptions = NO_OPTIONS): Promise<void> {
    // The common case, a whole string or byte message with nothing queued
    // before it, goes out without the queue's promises.
    if (
      this.#sendsQueued === 0 && this.#state === "open" &&
      options === NO_OPTIONS && this.#rare.pipeline === null &&
      (typeof message === "string" || message instanceof Uint8Array)
    ) {
      try {
        this.#sendNow(message, true, undefined);
        // Inside the try: a user's channel may throw from bufferedAmount.
        if (this.#hasRoom()) return resolved;
      } catch (error) {
        return Promise.reject(error);
      }
      return this.#flush();
    }
    return this.#send(message, options, null);
  }

  /**
   * Opens one message to send in fragments, as they come (tcllib's
   * `send … final=false`): each chunk written goes out as a frame, and
   * closing the stream sends the last one. The message owns the connection's
   * sends until it ends: a `send()` from anywhere else waits for it, so two
   * tasks can never merge their messages. Aborting the stream (or a chunk
   * that cannot be sent) part-way fails the connection with 1011, as a
   * message begun can be neither finished nor followed.
   *
   * @param options `type` to send bytes as text or strings as binary; by
   * default the first chunk's kind (string: text) sets it.
   * @returns The message's fragments, to write; `close()` resolves once the
   * last is handed to the transport.
   *
   * @example A message written as its parts are ready
   * ```ts
   * import type { WebSocketConnection } from "@wsstream/wsstream";
   *
   * async function report(connection: WebSocketConnection, parts: string[]) {
   *   const writer = connection.openMessage({ type: "text" }).getWriter();
   *   for (const part of parts) await writer.write(part);
   *   await writer.close();
   * }
   * ```
   */
  openMessage(
    options: SendOptions = NO_OPTIONS,
  ): WritableStream<Uint8Array | string> {
    checkType(options.type);
    return fragmentsWritable((fragments) =>
      this.#send(fragments, options, null)
    );
  }

  /**
   * {@link send}; with a `gate`, the message takes its turn now but goes out
   * only if the gate opens with `true` (a write to `writable`).
   */
  #send(
    message: Sendable,
    options: SendOptions,
    gate: Promise<boolean> | null,
  ): Promise<void> {
    const type = options.type;
    const payload = sendableOf(message, options);
    return this.#enqueueSend(async () => {
      if (typeof payload === "string" || payload instanceof Uint8Array) {
        await this.#sendPayload(payload, true, type, options.compress);
      } else {
        await sendChunks(
          payload,
          type,
          (chunk, fin, type) =>
            this.#sendPayload(chunk, fin, type, options.compress),
          () => this.#end.abandonMessage(),
        );
      }
    }, gate);
  }

  /** See {@link sendEncoded}. */
  #sendEncoded(frame: Uint8Array): Promise<void> | null {
    if (
      this.#protocol.role !== "server" || this.#rare.extensions.length > 0
    ) return null;
    const write = (): void => {
      // The protocol's own check: no frame after a close frame (RFC 6455
      // §5.5.1: "the endpoint MUST NOT send any more data frames").
      if (this.#protocol.state !== "open") throw this.#closedError("send");
      this.#write(frame);
      this.#messagesSent++;
    };
    if (this.#sendsQueued === 0 && this.#state === "open") {
      try {
        write();
        if (this.#hasRoom()) return resolved;
      } catch (error) {
        return Promise.reject(error);
      }
      return this.#flush();
    }
    return this.#enqueueSend(async () => {
      write();
      if (!this.#hasRoom()) await this.#flush();
    });
  }

  /**
   * Sends a ping and resolves with the round-trip time in milliseconds when
   * the matching pong arrives (a pong also answers every earlier ping).
   *
   * @param data Up to 125 bytes of payload; by default a unique 8-byte one.
   * @returns The round-trip time in ms; rejects with `ConnectionClosedError`
   * if the connection is not open or closes first.
   * @throws {RangeError} for a payload over 125 bytes (at the call).
   *
   * @example
   * ```ts
   * import type { WebSocketConnection } from "@wsstream/wsstream";
   *
   * async function latency(connection: WebSocketConnection) {
   *   const ms = await connection.ping();
   *   console.log(`round trip: ${ms.toFixed(1)} ms`);
   * }
   * ```
   */
  ping(data?: Uint8Array | string): Promise<number> {
    const pings = this.#rare.pings ?? (this.#own.pings = new PendingPings());
    return pings.ping(data, this.#events);
  }

  /**
   * Closes the connection: sends a close frame once every message sent
   * before has gone out, waits for the peer's close frame (up to
   * `closeTimeout`), then closes the socket. Resolves with how the connection
   * ended, both close frames included; calling it again returns the same
   * result.
   *
   * @param options The close code (default 1000) and reason (default: the
   * code's standard reason; at most 123 bytes of UTF-8).
   * @returns How the connection ended.
   * @throws {RangeError} for a code that may not be sent (1005, 1006, 1015,
   * below 1000, 1004, 1016–2999, 5000 and up) or a reason over 123 bytes.
   *
   * @example
   * ```ts
   * import type { WebSocketConnection } from "@wsstream/wsstream";
   *
   * async function leave(connection: WebSocketConnection) {
   *   const { closeCode, wasClean, sent } = await connection.close({ closeCode: 1001 });
   *   console.log(closeCode, wasClean, sent?.reason); // 1001 true "Going away"
   * }
   * ```
   */
  close(options: CloseOptions = NO_OPTIONS): Promise<CloseInfo> {
    const { closeCode, reason } = closeFrameOf(options);
    if (this.#state === "open") this.#end.close(closeCode, reason);
    return this.closed;
  }

  /**
   * Async iteration over the messages received, like iterating `readable`
   * (leaving the loop early closes the connection, with 1000 at the end of
   * the turn unless a close was asked for first) but without the stream.
   * It ends after a clean close and throws `ConnectionClosedError` after an
   * unclean one.
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<Message> {
    return new WebSocketConnection.#Messages(this);
  }

  // ---- sending ----

  #enqueueSend(
    task: () => Promise<void>,
    gate: Promise<boolean> | null = null,
  ): Promise<void> {
    if (this.#state !== "open") {
      return Promise.reject(this.#closedError("send"));
    }
    this.#sendsQueued++;
    const result = this.#sendTail.then(async () => {
      try {
        if (gate !== null && !(await gate)) return;
        if (this.#state === "closed") throw this.#closedError("send");
        return await task();
      } finally {
        this.#sendsQueued--;
      }
    });
    // The chain itself must never reject, or later sends would fail too.
    this.#sendTail = result.catch(() => {});
    return result;
  }

  async #sendPayload(
    payload: Message,
    fin: boolean,
    type: "text" | "binary" | undefined,
    compress?: boolean,
  ): Promise<void> {
    const pipeline = this.#rare.pipeline;
    if (pipeline === null) this.#sendNow(payload, fin, type);
    else {
      await pipeline.send(payload, fin, type, compress, this.#events);
      if (fin) this.#messagesSent++;
    }
    if (!this.#hasRoom()) await this.#flush();
  }

  /**
   * Hands one message or fragment to the protocol (its frames are corked).
   * A `type` means a fragment of a message in fragments, or bytes as text.
   */
  #sendNow(
    payload: Message,
    fin: boolean,
    type: "text" | "binary" | undefined,
  ): void {
    try {
      if (type === "text" && typeof payload !== "string") {
        this.#own.checkOutgoingText(payload, fin);
        this.#protocol.sendFragment(payload, fin, "text");
      } else if (type === undefined) this.#protocol.sendMessage(payload);
      else this.#protocol.sendFragment(payload, fin, type);
    } catch (error) {
      if (error instanceof TypeError) throw error;
      throw this.#closedError("send", error);
    }
    if (fin) this.#messagesSent++;
  }

  /**
   * Corks a frame from the protocol; see CORK_LIMIT. Returns whether the
   * bytes are already on the socket (copied into the kernel).
   */
  #write(bytes: Uint8Array): boolean {
    this.#bytesSent += bytes.length;
    (this.#corked ??= []).push(bytes);
    this.#corkedBytes += bytes.length;
    // A close frame is the last: no reason to wait for the next macrotask,
    // and a connection ending on the peer's close (every server connection's
    // end, most often) then schedules no flush at all. A payload sent apart
    // from its header that starts with this byte is only flushed early.
    if (this.#corkedBytes >= CORK_LIMIT || bytes[0] === CLOSE_FRAME_BYTE) {
      this.#uncork();
      return this.#channel.handedOff;
    }
    if ((this.#flags & FLUSH_SCHEDULED) === 0) {
      this.#flags |= FLUSH_SCHEDULED;
      const due = WebSocketConnection.#flushDue;
      if (due.push(this) === 1) nextMacrotask(WebSocketConnection.#flushAll);
    }
    return false;
  }

  /**
   * Connections with frames corked, flushed together in the next macrotask:
   * one task for all of them, and no closure per connection.
   */
  static #flushDue: WebSocketConnection[] = [];
  static #flushAll = (): void => {
    const due = WebSocketConnection.#flushDue;
    WebSocketConnection.#flushDue = [];
    for (const connection of due) {
      try {
        connection.#onFlushTime();
      } catch {
        // A channel that throws (a user's own ByteChannel) fails its own
        // connection: the others due in this batch still flush.
        connection.#end.transportFailed();
      }
    }
  };

  #onFlushTime(): void {
    this.#flags &= ~FLUSH_SCHEDULED;
    // While the transport is still busy with the last batch, let the next
    // grow (up to CORK_LIMIT): it goes out when the transport has room.
    if (this.#corkedBytes === 0) return;
    if (this.#channel.bufferedAmount === 0) return this.#uncork();
    this.#flags |= FLUSH_SCHEDULED;
    this.#channel.drained().then(
      () => this.#onFlushTime(),
      () => this.#uncork(),
    );
  }

  /** Hands the corked frames to the transport: small ones as one write. */
  #uncork(): void {
    const frames = this.#corked;
    if (frames === null) return;
    this.#corked = null;
    this.#corkedBytes = 0;
    if (!writeFrames(frames, this.#channel)) this.#end.transportFailed();
  }

  /**
   * Whether a send may return at once: fewer than CORK_LIMIT bytes corked
   * and the transport no further behind than one write.
   */
  #hasRoom(): boolean {
    return this.#corkedBytes < CORK_LIMIT &&
      this.#channel.bufferedAmount <= CORK_LIMIT;
  }

  /** Waits until the transport has room again (its backpressure). */
  async #flush(): Promise<void> {
    this.#uncork();
    try {
      await this.#channel.drained();
    } catch (error) {
      throw this.#closedError("send", error);
    }
  }

  // ---- receiving ----

  /** The next message, or the end (rejected if the connection failed). */
  #next(): Promise<IteratorResult<Message, undefined>> {
    if (this.#inboxHead < this.#inbox.length) {
      const value = this.#inbox[this.#inboxHead]!;
      this.#inbox[this.#inboxHead++] = undefined as unknown as Message;
      if (this.#inboxHead === this.#inbox.length) {
        this.#inbox = NO_MESSAGES;
        this.#inboxHead = 0;
      } else if (this.#inboxHead >= INBOX_COMPACT) {
        // A queue that never empties would otherwise grow a hole at its front.
        this.#inbox = this.#inbox.slice(this.#inboxHead);
        this.#inboxHead = 0;
      }
      this.#readMore();
      return Promise.resolve({ done: false, value });
    }
    const end = this.#rare.inboxEnd;
    if (end !== null) {
      return end.error === null
        ? Promise.resolve({ done: true, value: undefined })
        : Promise.reject(end.error);
    }
    if (this.#waiting === null) {
      // Not `new Promise(executor)`: on Bun its resolvers share a scope
      // object that would stay with an idle connection; these do not.
      const { promise, resolve } = Promise.withResolvers<
        IteratorResult<Message, undefined>
      >();
      this.#waiting = promise;
      this.#resolveWaiting = resolve;
      this.#readMore();
    }
    return this.#waiting;
  }

  get #queued(): number {
    // Messages still being transformed count: they are on their way in.
    const pipeline = this.#rare.pipeline;
    return this.#inbox.length - this.#inboxHead +
      (pipeline === null ? 0 : pipeline.pending);
  }

  /**
   * Reads while the inbox has room (it is below `highWaterMark`), one chunk
   * at a time; the reads stop when it is full and go on when it is not.
   * While the close handshake is under way (`draining`), reads go on
   * regardless. A chunk read is fed to the protocol by {@link #onRead}, which
   * calls this again: an idle connection waits on one read, no more.
   */
  #readMore(): void {
    while (!this.#reading) {
      const rare = this.#rare;
      const end = rare.end;
      if (end !== null) {
        if (end.failing !== null) return end.failWhenDrained();
        if (end.info !== null) return;
      }
      if (
        !rare.draining &&
        (rare.readableDone || this.#queued >= this.#settings.highWaterMark)
      ) return;
      const head = rare.head;
      if (head === null) {
        this.#reading = true;
        this.#channel.readTo(this.#events);
        return;
      }
      rare.head = null; // the bytes read past the handshake come first
      this.#receive(head);
    }
  }

  #onRead(bytes: Uint8Array | null): void {
    this.#reading = false;
    const end = this.#rare.end;
    if (end !== null && (end.info !== null || end.failing !== null)) return;
    if (bytes === null) {
      const pipeline = this.#rare.pipeline;
      // The end of the stream comes after the messages still transforming.
      if (pipeline !== null && pipeline.pending > 0) {
        return pipeline.afterMessages(() => this.#end.ended());
      }
      return this.#end.ended();
    }
    this.#receive(bytes);
    this.#readMore();
  }

  #receive(chunk: Uint8Array): void {
    this.#bytesReceived += chunk.length;
    try {
      this.#protocol.receive(chunk);
    } catch (error) {
      if (error instanceof ProtocolError) this.#end.protocolFailed(error);
      else this.#end.transportFailed();
    }
  }

  /**
   * The application stopped reading (it left its loop, or cancelled
   * `readable`): like WebSocketStream, that closes, with 1000, at the end of
   * the turn. A close asked for before then wins: the application's own, or
   * `serve`'s 1011 for a handler that threw out of its loop (JavaScript runs
   * the loop's `return()` before the error reaches `serve`).
   */
  #stopReading(): void {
    this.#inbox = NO_MESSAGES;
    this.#inboxHead = 0;
    this.#events.endInbox(null);
    nextMacrotask(() => void this.close());
  }

  #onMessage(data: Message): void {
    this.#messagesReceived++;
    const rare = this.#rare;
    if (rare.readableDone) return;
    const resolve = this.#resolveWaiting;
    if (resolve !== null) {
      this.#waiting = this.#resolveWaiting = null;
      resolve({ done: false, value: data });
      return;
    }
    if (rare.draining && this.#queued >= this.#settings.highWaterMark) {
      // Past the queue while closing: keep what fits in one message's limit,
      // so a peer flooding us during the close handshake cannot grow memory.
      const size = typeof data === "string" ? data.length * 3 : data.length;
      rare.overflowBytes += size;
      if (rare.overflowBytes > this.#settings.maxMessageSize) return;
    }
    if (this.#inbox === NO_MESSAGES) this.#inbox = [data];
    else this.#inbox.push(data);
  }

  #closedError(what: string, cause?: unknown): ConnectionClosedError {
    return closedError(this.#state, this.#rare.end, what, cause);
  }
}
