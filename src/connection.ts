/**
 * The public connection: message streams over the protocol and a transport,
 * with the timers the protocol leaves out (keepalive, close deadline).
 *
 * Data flow: the transport's bytes are read through its byte channel (see
 * `byte_channel.ts`) only while the inbox of received messages has room, fed
 * to the {@link Protocol}, and its messages queued in the inbox; everything
 * sent (application messages, and the protocol's pongs and close frames) is
 * corked and written to the channel in order.
 *
 * @module
 */

import type {
  ByteChannel,
  ByteStream,
  ChannelReader,
  WriteFailureListener,
} from "./byte_channel.ts";
import { DEFAULT_CLOSE_REASONS, encodeClosePayload } from "./close.ts";
import { ConnectionClosedError, ProtocolError } from "./errors.ts";
import type { ExtensionOffer } from "./handshake.ts";
import {
  DEFAULT_MAX_MESSAGE_SIZE,
  type Message,
  Protocol,
  type ProtocolHandler,
  type Role,
} from "./protocol.ts";
import { BYTES_TAKEN } from "./_copy.ts";
import { type Deadline, DeadlineQueues } from "./_deadline_queue.ts";
import { Link, LinkedList } from "./_linked_list.ts";
import { channelOf } from "./stream_channel.ts";
import type { Address } from "./address.ts";
import { Utf8Decoder } from "./utf8.ts";

export type { ByteStream } from "./byte_channel.ts";

/**
 * How a connection ended. `code` 1005 means the peer's close frame had no
 * code; 1006 that the connection ended without a close handshake.
 *
 * @example
 * ```ts
 * import type { CloseInfo } from "@wsstream/wsstream";
 * const info: CloseInfo = { code: 1000, reason: "", wasClean: true };
 * ```
 */
export interface CloseInfo {
  /** The close code. */
  code: number;
  /** The close reason. */
  reason: string;
  /** Whether the close handshake completed. */
  wasClean: boolean;
}

/**
 * The connection's life: `open` (messages flow), `closing` (a close frame
 * was sent, the handshake is under way), `closed`. `connecting` is the state
 * of a server-side upgrade whose handshake has not finished.
 *
 * @example
 * ```ts
 * import type { ConnectionState } from "@wsstream/wsstream";
 * const state: ConnectionState = "open";
 * ```
 */
export type ConnectionState = "connecting" | "open" | "closing" | "closed";

/**
 * What can be sent: a string (text), bytes (binary), or a stream or async
 * iterable of chunks, sent as a fragmented message without buffering it whole
 * (strings make it a text message, bytes a binary one).
 *
 * @example
 * ```ts
 * import type { Sendable } from "@wsstream/wsstream";
 * const messages: Sendable[] = ["hi", new Uint8Array([1]), ReadableStream.from(["a", "b"])];
 * ```
 */
export type Sendable =
  | string
  | ArrayBuffer
  | ArrayBufferView
  | ReadableStream<Uint8Array | string>
  | AsyncIterable<Uint8Array | string>;

/**
 * Keepalive: ping every `interval` ms; if no pong comes within `timeout` ms,
 * drop the connection (reported locally as 1006).
 *
 * @example
 * ```ts
 * import type { KeepaliveOptions } from "@wsstream/wsstream";
 * const keepalive: KeepaliveOptions = { interval: 30_000, timeout: 30_000 };
 * ```
 */
export interface KeepaliveOptions {
  /** Milliseconds between pings. */
  interval: number;
  /** Milliseconds to wait for the pong (default: `interval`). */
  timeout?: number | undefined;
}

/**
 * Options that shape a connection, shared by `takeover`, `connect` and
 * `serve`.
 *
 * @example
 * ```ts
 * import type { ConnectionOptions } from "@wsstream/wsstream";
 * const options: ConnectionOptions = {
 *   maxMessageSize: 1 << 20,
 *   keepalive: { interval: 10_000 },
 *   onPing: (payload) => console.log("ping", payload),
 * };
 * ```
 */
export interface ConnectionOptions {
  /** The largest message accepted, in bytes (default 16 MiB); larger fail with 1009. */
  maxMessageSize?: number | undefined;
  /** The most frames one message may come in (default 131 072). */
  maxFragments?: number | undefined;
  /**
   * Ping the peer every `interval` ms and drop it when no pong comes within
   * `timeout`. `false` turns it off. Default: on at 30 s for servers, off for
   * clients (as in tcllib's websocket).
   */
  keepalive?: KeepaliveOptions | false | undefined;
  /**
   * How long to wait for the close handshake to finish after sending or
   * receiving a close frame, in ms, before dropping the socket (default 10 000).
   */
  closeTimeout?: number | undefined;
  /** How many received messages to queue before reading pauses (default 16). */
  highWaterMark?: number | undefined;
  /** Called with each ping received (it has already been answered). */
  onPing?: ((payload: Uint8Array) => void) | undefined;
  /** Called with each pong received. */
  onPong?: ((payload: Uint8Array) => void) | undefined;
  /** Where client masking keys come from; for tests. */
  maskSource?: (() => Uint8Array) | undefined;
}

/**
 * Everything `takeover` needs to know beyond the byte stream.
 *
 * @example
 * ```ts
 * import type { TakeoverOptions } from "@wsstream/wsstream";
 * const options: TakeoverOptions = { role: "server", protocol: "chat" };
 * ```
 */
export interface TakeoverOptions extends ConnectionOptions {
  /** Our end: `client` masks what it sends, `server` expects masked frames. */
  role: Role;
  /** Bytes already read past the handshake: the first frames. */
  head?: Uint8Array | undefined;
  /** The subprotocol agreed in the handshake ("" for none). */
  protocol?: string | undefined;
  /** The extensions agreed in the handshake. */
  extensions?: ExtensionOffer[] | undefined;
  /** The request path (and query) of the handshake. */
  path?: string | undefined;
  /**
   * Where to keep this connection while it is open: it is added now and
   * deleted once closed (how a server keeps its `connections`). An
   * {@link OpenConnections} costs less than a `Set` on a busy server.
   */
  openIn?: Set<WebSocketConnection> | OpenConnections | undefined;
}

/**
 * A snapshot of a connection's state and counters.
 *
 * @example
 * ```ts
 * import type { ConnectionInfo } from "@wsstream/wsstream";
 * function describe(info: ConnectionInfo): string {
 *   return `${info.role} ${info.state} ${info.remoteAddr?.hostname}:${info.remoteAddr?.port}`;
 * }
 * ```
 */
export interface ConnectionInfo {
  /** `client` or `server`. */
  role: Role;
  /** Where the connection stands. */
  state: ConnectionState;
  /** Our address, if on a socket. */
  localAddr: Address | null;
  /** The peer's address, if on a socket. */
  remoteAddr: Address | null;
  /** The agreed subprotocol ("" for none). */
  protocol: string;
  /** The agreed extensions. */
  extensions: ExtensionOffer[];
  /** The request path and query of the handshake. */
  path: string;
  /** Bytes received, frame headers included. */
  bytesReceived: number;
  /** Bytes sent, frame headers included. */
  bytesSent: number;
  /** Whole messages received. */
  messagesReceived: number;
  /** Whole messages sent. */
  messagesSent: number;
}

/** Options for {@link WebSocketConnection.send}. */
export interface SendOptions {
  /**
   * `false` sends this as a fragment of a message that continues with the
   * next `send` (tcllib's `send … final=false`); the last fragment has
   * `fin: true` (the default).
   */
  fin?: boolean | undefined;
  /** Send bytes as text (they must be UTF-8), or a string as binary (its UTF-8). */
  type?: "text" | "binary" | undefined;
}

const DEFAULT_CLOSE_TIMEOUT = 10_000;
const DEFAULT_HIGH_WATER_MARK = 16;

// The bits of a connection's `#flags` below its state.
const ENDED = 1;
const READING = 2;
const FLUSH_SCHEDULED = 4;
const FRAGMENTING = 8;
/** Keepalive is a server's default (SERVER_KEEPALIVE). */
const SERVER_KEEPALIVE_FLAG = 16;
/** Where the state sits in `#flags`: its index in STATES. */
const STATE_SHIFT = 5;
const STATES: readonly ConnectionState[] = ["open", "closing", "closed"];
const SERVER_KEEPALIVE: KeepaliveOptions = { interval: 30_000 };
const encoder = new TextEncoder();

/**
 * Frames written within one turn of the event loop are gathered ("corked")
 * and handed to the transport as one write at the next macrotask, or at once
 * when this many bytes are waiting. One write per batch instead of one per
 * frame is most of the speed of small messages.
 */
const CORK_LIMIT = 64 * 1024;
/** The first byte of every close frame: FIN, no RSV bits, opcode 8. */
const CLOSE_FRAME_BYTE = 0x88;
/** Frames at least this large are written as they are, never copied. */
const COPY_LIMIT = 16 * 1024;
/** Runs `task` after the current macrotask (Deno and Bun both have it). */
const nextMacrotask: (task: () => void) => void =
  (globalThis as { setImmediate?: (task: () => void) => void }).setImmediate ??
    ((task) => setTimeout(task, 0));
const resolved = Promise.resolve();
/** Shared by every connection without extensions (never changed). */
const NO_EXTENSIONS: ExtensionOffer[] = [];
/**
 * The empty inbox, shared (frozen: a push to it would throw, not leak a
 * message to other connections): most connections, idle or with a reader
 * waiting, have no message queued, and need no array of their own.
 */
const NO_MESSAGES = Object.freeze([]) as unknown as Message[];
/** Taken messages at the inbox's front before it is compacted. */
const INBOX_COMPACT = 64;

interface PendingPing {
  payload: Uint8Array;
  started: number;
  resolve: (rtt: number) => void;
  reject: (error: unknown) => void;
}

/**
 * What only some connections ever need: a subprotocol, limits other than the
 * defaults (a high-water mark, keepalive settings of one's own), bytes read
 * past the handshake, hooks, extensions, the streams, `closed`, pings, text
 * checks of bytes sent as text, and the end (the close handshake, a
 * failure). A connection makes it when it first sets one of these. With it,
 * and its flags in one number, an idle connection is 160 bytes instead of 432
 * (a heap census of an idle Bun server).
 */
class RareState {
  highWaterMark = DEFAULT_HIGH_WATER_MARK;
  keepalive: KeepaliveOptions | null = null;
  agreedProtocol = "";
  maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE;
  closeTimeout = DEFAULT_CLOSE_TIMEOUT;
  extensions: ExtensionOffer[] = NO_EXTENSIONS;
  pingHook: ((payload: Uint8Array) => void) | undefined = undefined;
  pongHook: ((payload: Uint8Array) => void) | undefined = undefined;
  /** Bytes read past the handshake, not yet fed to the protocol. */
  head: Uint8Array | null = null;
  /** Set when no more messages come: `null` error means a clean end. */
  inboxEnd: { error: unknown } | null = null;
  readable: ReadableStream<Message> | null = null;
  writable: WritableStream<Sendable> | null = null;
  /** `closed`, made when first asked for. */
  closed: PromiseWithResolvers<CloseInfo> | null = null;
  closeInfo: CloseInfo | null = null;
  readableDone: boolean = false;
  draining: boolean = false;
  overflowBytes: number = 0;
  /** Pings awaiting their pong. */
  pings: PendingPing[] | null = null;
  pingCounter: number = 0;
  closeTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  outgoingText: Utf8Decoder | null = null;
  pendingClose: CloseInfo | null = null;
  /** The close we started (close code and reason), while it is under way. */
  localClose: { code: number; reason: string } | null = null;
  failing: ProtocolError | null = null;
  failTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  failSoonTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  failScheduled: boolean = false;
}

/** A connection's link in an {@link OpenConnections}: its events object. */
type OpenLink = Link & { readonly connection: WebSocketConnection };

// Module-private access between the connection and OpenConnections, set in
// their static blocks.
let eventsOf: (connection: WebSocketConnection) => OpenLink;
let enterOpen: (open: OpenConnections, link: OpenLink) => void;

/**
 * One WebSocket connection, either end: a `ReadableStream` of the messages
 * received and a `WritableStream` of the messages to send.
 *
 * You must keep reading `readable` (or cancel it): the connection reads the
 * socket only while `readable` has room, so that a slow reader slows the
 * peer down instead of filling memory, and pings, pongs and close frames are
 * read in turn with messages.
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
export class WebSocketConnection {
  readonly #protocol: Protocol;
  /**
   * The protocol's handler, the reader of the channel's bytes and the
   * listener for its write failures. It also holds the `Set` the connection
   * is kept in while open (`openIn`), or is its link in an
   * `OpenConnections`, and holds its running keepalive or close deadline.
   */
  readonly #events:
    & Link
    & ProtocolHandler
    & ChannelReader
    & WriteFailureListener
    & {
      readonly connection: WebSocketConnection;
      readonly openIn: Set<WebSocketConnection> | undefined;
      deadline: Deadline<WebSocketConnection> | null;
    };
  /** The transport's bytes: read one chunk at a time, written in batches. */
  readonly #channel: ByteChannel;
  // What is kept of the options (not the object: a server's carries all of
  // its own options, and every idle connection would keep a copy).
  readonly #path: string;
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
   * Five booleans and the state in one number (the constants from ENDED to
   * STATE_SHIFT), not six fields: with 18 fields or fewer, a connection is
   * in JavaScriptCore's 160-byte size class rather than 224.
   */
  #flags = 0;

  /** Whether the connection is over (its socket closed, or only lingering). */
  get #ended(): boolean {
    return (this.#flags & ENDED) !== 0;
  }
  set #ended(on: boolean) {
    this.#setFlag(ENDED, on);
  }
  /** Whether a read of the channel is under way. */
  get #reading(): boolean {
    return (this.#flags & READING) !== 0;
  }
  set #reading(on: boolean) {
    this.#setFlag(READING, on);
  }
  /** Whether the connection is due in the next `#flushAll`. */
  get #flushScheduled(): boolean {
    return (this.#flags & FLUSH_SCHEDULED) !== 0;
  }
  set #flushScheduled(on: boolean) {
    this.#setFlag(FLUSH_SCHEDULED, on);
  }
  /** Whether a message sent with `fin: false` awaits its last fragment. */
  get #fragmenting(): boolean {
    return (this.#flags & FRAGMENTING) !== 0;
  }
  set #fragmenting(on: boolean) {
    this.#setFlag(FRAGMENTING, on);
  }
  #setFlag(flag: number, on: boolean): void {
    this.#flags = on ? this.#flags | flag : this.#flags & ~flag;
  }
  get #state(): ConnectionState {
    return STATES[this.#flags >>> STATE_SHIFT]!;
  }
  set #state(state: ConnectionState) {
    this.#flags = (this.#flags & ((1 << STATE_SHIFT) - 1)) |
      (STATES.indexOf(state) << STATE_SHIFT);
  }
  /** Keepalive's settings: a server's default is a flag, others rare. */
  get #keepalive(): KeepaliveOptions | null {
    if ((this.#flags & SERVER_KEEPALIVE_FLAG) !== 0) return SERVER_KEEPALIVE;
    return this.#rare === null ? null : this.#rare.keepalive;
  }
  set #keepalive(keepalive: KeepaliveOptions | null) {
    this.#setFlag(SERVER_KEEPALIVE_FLAG, keepalive === SERVER_KEEPALIVE);
    if (keepalive !== SERVER_KEEPALIVE) this.#more.keepalive = keepalive;
  }

  /** The rarely needed state (see {@link RareState}), made on first set. */
  #rare: RareState | null = null;
  get #more(): RareState {
    return this.#rare ??= new RareState();
  }
  get #highWaterMark(): number {
    return this.#rare === null
      ? DEFAULT_HIGH_WATER_MARK
      : this.#rare.highWaterMark;
  }
  set #highWaterMark(value: number) {
    this.#more.highWaterMark = value;
  }
  get #agreedProtocol(): string {
    return this.#rare === null ? "" : this.#rare.agreedProtocol;
  }
  set #agreedProtocol(value: string) {
    this.#more.agreedProtocol = value;
  }
  get #maxMessageSize(): number {
    return this.#rare === null
      ? DEFAULT_MAX_MESSAGE_SIZE
      : this.#rare.maxMessageSize;
  }
  set #maxMessageSize(value: number) {
    this.#more.maxMessageSize = value;
  }
  get #closeTimeout(): number {
    return this.#rare === null
      ? DEFAULT_CLOSE_TIMEOUT
      : this.#rare.closeTimeout;
  }
  set #closeTimeout(value: number) {
    this.#more.closeTimeout = value;
  }
  get #extensions(): ExtensionOffer[] {
    return this.#rare === null ? NO_EXTENSIONS : this.#rare.extensions;
  }
  set #extensions(value: ExtensionOffer[]) {
    this.#more.extensions = value;
  }
  get #pingHook(): ((payload: Uint8Array) => void) | undefined {
    return this.#rare === null ? undefined : this.#rare.pingHook;
  }
  set #pingHook(value: ((payload: Uint8Array) => void) | undefined) {
    this.#more.pingHook = value;
  }
  get #pongHook(): ((payload: Uint8Array) => void) | undefined {
    return this.#rare === null ? undefined : this.#rare.pongHook;
  }
  set #pongHook(value: ((payload: Uint8Array) => void) | undefined) {
    this.#more.pongHook = value;
  }
  get #head(): Uint8Array | null {
    return this.#rare === null ? null : this.#rare.head;
  }
  set #head(value: Uint8Array | null) {
    this.#more.head = value;
  }
  get #inboxEnd(): { error: unknown } | null {
    return this.#rare === null ? null : this.#rare.inboxEnd;
  }
  set #inboxEnd(value: { error: unknown } | null) {
    this.#more.inboxEnd = value;
  }
  get #readable(): ReadableStream<Message> | null {
    return this.#rare === null ? null : this.#rare.readable;
  }
  set #readable(value: ReadableStream<Message> | null) {
    this.#more.readable = value;
  }
  get #writable(): WritableStream<Sendable> | null {
    return this.#rare === null ? null : this.#rare.writable;
  }
  set #writable(value: WritableStream<Sendable> | null) {
    this.#more.writable = value;
  }
  get #closed(): PromiseWithResolvers<CloseInfo> | null {
    return this.#rare === null ? null : this.#rare.closed;
  }
  set #closed(value: PromiseWithResolvers<CloseInfo> | null) {
    this.#more.closed = value;
  }
  get #closeInfo(): CloseInfo | null {
    return this.#rare === null ? null : this.#rare.closeInfo;
  }
  set #closeInfo(value: CloseInfo | null) {
    this.#more.closeInfo = value;
  }
  get #readableDone(): boolean {
    return this.#rare === null ? false : this.#rare.readableDone;
  }
  set #readableDone(value: boolean) {
    this.#more.readableDone = value;
  }
  get #draining(): boolean {
    return this.#rare === null ? false : this.#rare.draining;
  }
  set #draining(value: boolean) {
    this.#more.draining = value;
  }
  get #overflowBytes(): number {
    return this.#rare === null ? 0 : this.#rare.overflowBytes;
  }
  set #overflowBytes(value: number) {
    this.#more.overflowBytes = value;
  }
  get #pings(): PendingPing[] | null {
    return this.#rare === null ? null : this.#rare.pings;
  }
  set #pings(value: PendingPing[] | null) {
    this.#more.pings = value;
  }
  get #pingCounter(): number {
    return this.#rare === null ? 0 : this.#rare.pingCounter;
  }
  set #pingCounter(value: number) {
    this.#more.pingCounter = value;
  }
  get #closeTimer(): ReturnType<typeof setTimeout> | undefined {
    return this.#rare === null ? undefined : this.#rare.closeTimer;
  }
  set #closeTimer(value: ReturnType<typeof setTimeout> | undefined) {
    this.#more.closeTimer = value;
  }
  get #outgoingText(): Utf8Decoder | null {
    return this.#rare === null ? null : this.#rare.outgoingText;
  }
  set #outgoingText(value: Utf8Decoder | null) {
    this.#more.outgoingText = value;
  }
  get #pendingClose(): CloseInfo | null {
    return this.#rare === null ? null : this.#rare.pendingClose;
  }
  set #pendingClose(value: CloseInfo | null) {
    this.#more.pendingClose = value;
  }
  get #localClose(): { code: number; reason: string } | null {
    return this.#rare === null ? null : this.#rare.localClose;
  }
  set #localClose(value: { code: number; reason: string } | null) {
    this.#more.localClose = value;
  }
  get #failing(): ProtocolError | null {
    return this.#rare === null ? null : this.#rare.failing;
  }
  set #failing(value: ProtocolError | null) {
    this.#more.failing = value;
  }
  get #failTimer(): ReturnType<typeof setTimeout> | undefined {
    return this.#rare === null ? undefined : this.#rare.failTimer;
  }
  set #failTimer(value: ReturnType<typeof setTimeout> | undefined) {
    this.#more.failTimer = value;
  }
  get #failSoonTimer(): ReturnType<typeof setTimeout> | undefined {
    return this.#rare === null ? undefined : this.#rare.failSoonTimer;
  }
  set #failSoonTimer(value: ReturnType<typeof setTimeout> | undefined) {
    this.#more.failSoonTimer = value;
  }
  get #failScheduled(): boolean {
    return this.#rare === null ? false : this.#rare.failScheduled;
  }
  set #failScheduled(value: boolean) {
    this.#more.failScheduled = value;
  }

  /**
   * The protocol's handler and the channel's reader: one small object per
   * connection, its methods on the prototype, instead of a closure per event.
   */
  static #Events = class extends Link
    implements ProtocolHandler, ChannelReader, WriteFailureListener {
    /**
     * The running keepalive or close deadline: a connection has at most one
     * at a time (a ping due, a pong due, or the socket's drop).
     */
    deadline: Deadline<WebSocketConnection> | null = null;
    constructor(
      readonly connection: WebSocketConnection,
      /**
       * The `Set` the connection is kept in while open; an
       * `OpenConnections` links this object instead (room to spare here).
       */
      readonly openIn: Set<WebSocketConnection> | undefined,
    ) {
      super();
    }
    message(data: Message): void {
      this.connection.#onMessage(data);
    }
    ping(payload: Uint8Array): void {
      this.connection.#pingHook?.(payload);
    }
    pong(payload: Uint8Array): void {
      this.connection.#onPong(payload);
    }
    close(code: number, reason: string): void {
      this.connection.#onPeerClose(code, reason);
    }
    send(bytes: Uint8Array): typeof BYTES_TAKEN | undefined {
      return this.connection.#write(bytes) ? BYTES_TAKEN : undefined;
    }
    received(bytes: Uint8Array | null): void {
      this.connection.#onRead(bytes);
    }
    failed(): void {
      this.connection.#reading = false;
      this.connection.#onTransportError();
    }
    writeFailed(): void {
      this.connection.#onTransportError();
    }
  };

  static {
    eventsOf = (connection) => connection.#events;
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
  constructor(stream: ByteStream, options: TakeoverOptions) {
    if (options.role !== "client" && options.role !== "server") {
      throw new TypeError(
        `Invalid role ${
          JSON.stringify(options.role)
        }: use "client" or "server"`,
      );
    }
    checkPositive("maxMessageSize", options.maxMessageSize);
    checkPositive("maxFragments", options.maxFragments);
    checkPositive("closeTimeout", options.closeTimeout);
    checkPositive("highWaterMark", options.highWaterMark);
    const { highWaterMark } = options;
    if (
      highWaterMark !== undefined && highWaterMark !== DEFAULT_HIGH_WATER_MARK
    ) this.#highWaterMark = highWaterMark;
    if (options.keepalive) {
      checkPositive("keepalive.interval", options.keepalive.interval);
      checkPositive("keepalive.timeout", options.keepalive.timeout);
    }
    if (options.protocol) this.#agreedProtocol = options.protocol;
    if (options.extensions) this.#extensions = options.extensions;
    this.#path = options.path ?? "";
    const { maxMessageSize, closeTimeout } = options;
    if (
      maxMessageSize !== undefined &&
      maxMessageSize !== DEFAULT_MAX_MESSAGE_SIZE
    ) {
      this.#maxMessageSize = maxMessageSize;
    }
    if (options.onPing) this.#pingHook = options.onPing;
    if (options.onPong) this.#pongHook = options.onPong;
    if (options.head && options.head.length > 0) this.#head = options.head;
    if (closeTimeout !== undefined && closeTimeout !== DEFAULT_CLOSE_TIMEOUT) {
      this.#closeTimeout = closeTimeout;
    }
    this.#channel = channelOf(stream);
    const { openIn } = options;
    this.#events = new WebSocketConnection.#Events(
      this,
      openIn instanceof Set ? openIn : undefined,
    );
    this.#channel.tellWriteFailures(this.#events);
    if (openIn instanceof Set) openIn.add(this);
    else if (openIn !== undefined) enterOpen(openIn, this.#events);

    this.#protocol = new Protocol({
      role: options.role,
      maxMessageSize: options.maxMessageSize,
      maxFragments: options.maxFragments,
      maskSource: options.maskSource,
    }, this.#events);

    this.#readMore();

    const keepalive = options.keepalive ??
      (options.role === "server" ? SERVER_KEEPALIVE : false);
    if (keepalive) {
      // A copy of the caller's settings: their object changed later must
      // not change this connection's pings.
      this.#keepalive = keepalive === SERVER_KEEPALIVE ? keepalive : {
        interval: keepalive.interval,
        timeout: keepalive.timeout,
      };
      this.#scheduleKeepalive();
    }
  }

  /** Resolves (never rejects) with how the connection ended. */
  get closed(): Promise<CloseInfo> {
    if (this.#closed === null) {
      // Made on demand: most connections are never asked.
      this.#closed = Promise.withResolvers();
      if (this.#ended) this.#closed.resolve(this.#closeInfo!);
    }
    return this.#closed.promise;
  }

  /**
   * The messages received: text as `string`, binary as `Uint8Array`. Made on
   * first use; iterating the connection itself takes the same messages
   * without a stream in between.
   */
  get readable(): ReadableStream<Message> {
    return this.#readable ??= new ReadableStream<Message>({
      pull: async (controller) => {
        const result = await this.#next();
        if (result.done) controller.close();
        else controller.enqueue(result.value);
      },
      cancel: () => this.#stopReading(),
    }, { highWaterMark: 0 });
  }

  /**
   * The messages to send; closing it closes the connection (code 1000).
   * Writes go out in the order they are made among {@link send} calls.
   * Made on first use.
   */
  get writable(): WritableStream<Sendable> {
    return this.#writable ??= this.#makeWritable();
  }

  #makeWritable(): WritableStream<Sendable> {
    // A write to `writable` takes its turn among the sends when write() is
    // called (the strategy's size() runs inside it), not when the stream
    // hands the chunk to write() below: that waits for the previous write to
    // finish, and a send() made meanwhile would overtake it. The message goes
    // out once write() gets it; a write the stream refuses (after close,
    // abort or an error) lets its turn pass.
    const turns: { go: (go: boolean) => void; done: Promise<void> }[] = [];
    let writesEnded = false;
    const endWrites = () => {
      writesEnded = true;
      for (const turn of turns.splice(0)) turn.go(false);
    };
    return new WritableStream<Sendable>({
      write: async () => {
        const turn = turns.shift()!;
        turn.go(true);
        try {
          await turn.done;
        } catch (error) {
          endWrites(); // The stream errors and refuses further writes.
          throw error;
        }
      },
      close: async () => {
        endWrites();
        await this.close();
      },
      abort: async (reason) => {
        endWrites();
        await this.close(closeFromReason(reason));
      },
    }, {
      highWaterMark: 1,
      size: (message) => {
        if (writesEnded) return 1; // The stream refuses the write itself.
        const gate = Promise.withResolvers<boolean>();
        try {
          const done = this.#send(message, {}, gate.promise);
          done.catch(() => {}); // Reported by write(), if it gets there.
          turns.push({ go: gate.resolve, done });
        } catch (error) {
          endWrites(); // The stream errors with it.
          throw error;
        }
        return 1;
      },
    });
  }

  /** A snapshot of the connection's state, addresses, protocol and counters. */
  get info(): ConnectionInfo {
    return {
      role: this.#protocol.role,
      state: this.#state,
      localAddr: this.#channel.localAddr,
      remoteAddr: this.#channel.remoteAddr,
      protocol: this.#agreedProtocol,
      extensions: [...this.#extensions],
      path: this.#path,
      bytesReceived: this.#bytesReceived,
      bytesSent: this.#bytesSent,
      messagesReceived: this.#messagesReceived,
      messagesSent: this.#messagesSent,
    };
  }

  /** The agreed subprotocol ("" for none). */
  get protocol(): string {
    return this.#agreedProtocol;
  }

  /**
   * Sends a message once every message sent before it has gone out. A
   * string goes as text, bytes as binary; a `ReadableStream` or async
   * iterable goes out as a fragmented message, one frame per chunk, without
   * being buffered whole. Resolves once the transport has taken the bytes
   * (so awaiting `send` applies the peer's backpressure).
   *
   * @param message What to send.
   * @param options `fin: false` to send a fragment of a longer message;
   * `type` to send bytes as text or a string as binary.
   * @throws {ConnectionClosedError} once the connection is closing or closed.
   * @throws {TypeError} for something that cannot be sent.
   *
   * @example Sending a message in three fragments
   * ```ts
   * import type { WebSocketConnection } from "@wsstream/wsstream";
   *
   * async function greet(connection: WebSocketConnection) {
   *   await connection.send("Hel", { fin: false });
   *   await connection.send("lo, ", { fin: false });
   *   await connection.send("world");
   * }
   * ```
   */
  send(message: Sendable, options: SendOptions = {}): Promise<void> {
    // The common case, a whole string or byte message with nothing queued
    // before it, goes out without the queue's promises.
    if (
      this.#sendsQueued === 0 && this.#state === "open" &&
      options.fin !== false && options.type === undefined &&
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
   * {@link send}; with a `gate`, the message takes its turn now but goes out
   * only if the gate opens with `true` (a write to `writable`).
   */
  #send(
    message: Sendable,
    options: SendOptions,
    gate: Promise<boolean> | null,
  ): Promise<void> {
    const fin = options.fin ?? true;
    let payload: Message | null = null;
    let iterable: AsyncIterable<Uint8Array | string> | null = null;
    if (typeof message === "string") {
      payload = options.type === "binary" ? encoder.encode(message) : message;
    } else if (message instanceof Uint8Array) {
      payload = message;
    } else if (message instanceof ArrayBuffer) {
      payload = new Uint8Array(message);
    } else if (ArrayBuffer.isView(message)) {
      payload = new Uint8Array(
        message.buffer,
        message.byteOffset,
        message.byteLength,
      );
    } else if (
      message !== null && typeof message === "object" &&
      Symbol.asyncIterator in message
    ) {
      if (!fin) {
        throw new TypeError("Cannot send a stream as a fragment (fin: false)");
      }
      iterable = message;
    } else {
      throw new TypeError(
        `Cannot send ${
          describe(message)
        }: expected a string, ArrayBuffer, ArrayBufferView, ReadableStream or async iterable`,
      );
    }
    const type = options.type;
    return this.#enqueueSend(async () => {
      if (iterable !== null) await this.#sendIterable(iterable, type);
      else await this.#sendPayload(payload!, fin, type);
    }, gate);
  }

  /**
   * Sends a ping and resolves with the round-trip time in milliseconds when
   * the matching pong arrives (a pong also answers every earlier ping).
   *
   * @param data Up to 125 bytes of payload; by default a unique 8-byte one.
   * @returns The round-trip time in ms.
   * @throws {RangeError} for a payload over 125 bytes.
   * @throws {ConnectionClosedError} if the connection closes first.
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
    let payload: Uint8Array;
    if (data === undefined) {
      payload = new Uint8Array(8);
      new DataView(payload.buffer).setFloat64(0, ++this.#pingCounter);
    } else {
      payload = typeof data === "string" ? encoder.encode(data) : data.slice();
    }
    if (payload.length > 125) {
      return Promise.reject(
        new RangeError(
          `Ping payload is ${payload.length} bytes; at most 125 are allowed`,
        ),
      );
    }
    // After a transport failure or a timeout the protocol is still "open",
    // so it would send the ping, and its promise would never settle.
    if (this.#state !== "open") {
      return Promise.reject(this.#closedError("ping"));
    }
    try {
      this.#protocol.ping(payload);
    } catch (error) {
      return Promise.reject(this.#closedError("ping", error));
    }
    return new Promise((resolve, reject) => {
      (this.#pings ??= []).push({
        payload,
        started: performance.now(),
        resolve,
        reject,
      });
    });
  }

  /**
   * Closes the connection: sends a close frame once every message sent
   * before has gone out, waits for the peer's close frame (up to
   * `closeTimeout`), then closes the socket. Resolves with how the connection
   * ended; calling it again returns the same result.
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
   *   const { code, wasClean } = await connection.close({ code: 1001 });
   *   console.log(code, wasClean);
   * }
   * ```
   */
  close(options: { code?: number; reason?: string } = {}): Promise<CloseInfo> {
    const code = options.code ?? 1000;
    const reason = options.reason ?? DEFAULT_CLOSE_REASONS[code] ?? "";
    // Validate now, so a bad argument throws at the call.
    validateClose(code, reason);
    if (this.#state === "open") {
      this.#state = "closing";
      this.#localClose = { code, reason };
      this.#armCloseTimer();
      // Queued messages go out before the close frame.
      this.#sendTail = this.#sendTail.then(() => {
        if (this.#closeInfo !== null) return;
        if (this.#protocol.close(code, reason)) this.#drainUntilClosed();
      });
    }
    return this.closed;
  }

  /**
   * Async iteration over the messages received, like iterating `readable`
   * (leaving the loop early closes the connection) but without the stream.
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
  ): Promise<void> {
    this.#sendNow(payload, fin, type);
    if (!this.#hasRoom()) await this.#flush();
  }

  /** Hands one message or fragment to the protocol (its frames are corked). */
  #sendNow(
    payload: Message,
    fin: boolean,
    type: "text" | "binary" | undefined,
  ): void {
    try {
      if (type === "text" && typeof payload !== "string") {
        this.#checkOutgoingText(payload, fin);
        this.#protocol.sendFragment(payload, fin, "text");
      } else if (fin && type === undefined && !this.#fragmenting) {
        // Not `sendMessage` while a `fin: false` message is open: its last
        // fragment must go out as a continuation frame.
        this.#protocol.sendMessage(payload);
      } else {
        this.#protocol.sendFragment(payload, fin, type);
      }
    } catch (error) {
      if (error instanceof TypeError) throw error;
      throw this.#closedError("send", error);
    }
    this.#fragmenting = !fin;
    if (fin) this.#messagesSent++;
  }

  async #sendIterable(
    iterable: AsyncIterable<Uint8Array | string>,
    type: "text" | "binary" | undefined,
  ): Promise<void> {
    // Hold one chunk back so the last one can carry FIN without an extra frame.
    let held: Uint8Array | string | null = null;
    let sent = false;
    // Without an explicit type, the first chunk sets it and every chunk must
    // be of that kind (strings for text, bytes for binary).
    const inferred = type === undefined;
    try {
      for await (const chunk of iterable) {
        if (typeof chunk !== "string" && !(chunk instanceof Uint8Array)) {
          throw new TypeError(
            `Cannot send ${
              describe(chunk)
            } as a fragment: expected a string or Uint8Array`,
          );
        }
        if (inferred && held !== null && kindOf(chunk) !== type) {
          throw new TypeError(
            `Cannot send a ${kindOf(chunk)} chunk in a ${type} message`,
          );
        }
        if (held !== null) {
          await this.#sendPayload(held, false, type ?? kindOf(held));
          sent = true;
        }
        type ??= kindOf(chunk);
        held = chunk;
      }
      if (held === null) held = type === "text" ? "" : new Uint8Array(0);
      await this.#sendPayload(held, true, sent ? type : type ?? kindOf(held));
    } catch (error) {
      if (sent && this.#fragmenting) this.#failFragmented();
      throw error;
    }
  }

  /**
   * A streamed message failed half-way (its source threw, or a chunk could
   * not be sent): it can never be finished, and nothing else can be sent
   * before it is, so close with 1011, as Python's websockets does.
   */
  #failFragmented(): void {
    if (this.#closeInfo !== null || this.#protocol.state !== "open") return;
    const reason = "Error in fragmented message";
    this.#state = "closing";
    this.#localClose = { code: 1011, reason };
    this.#armCloseTimer();
    this.#protocol.close(1011, reason);
    this.#drainUntilClosed();
  }

  /** Checks that bytes sent as text are UTF-8, across fragments. */
  #checkOutgoingText(bytes: Uint8Array, fin: boolean): void {
    this.#outgoingText ??= new Utf8Decoder();
    try {
      this.#outgoingText.push(bytes);
      if (fin) this.#outgoingText.end();
    } catch {
      this.#outgoingText = null;
      throw new TypeError(
        "Cannot send bytes as text: they are not valid UTF-8",
      );
    }
    if (fin) this.#outgoingText = null;
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
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
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
        connection.#onTransportError();
      }
    }
  };

  #onFlushTime(): void {
    this.#flushScheduled = false;
    // While the transport is still busy with the last batch, let the next
    // grow (up to CORK_LIMIT): it goes out when the transport has room.
    if (this.#corkedBytes === 0) return;
    if (this.#channel.bufferedAmount === 0) return this.#uncork();
    this.#flushScheduled = true;
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
    let run = 0; // bytes in the run of small frames before frames[i]
    let start = 0;
    for (let i = 0; i <= frames.length; i++) {
      const frame = frames[i];
      if (frame !== undefined && frame.length < COPY_LIMIT) {
        run += frame.length;
        continue;
      }
      if (i - start === 1) this.#writeOut(frames[start]!);
      else if (i - start > 1) {
        const joined = new Uint8Array(run);
        for (let at = 0, j = start; j < i; j++) {
          joined.set(frames[j]!, at);
          at += frames[j]!.length;
        }
        this.#writeOut(joined);
      }
      if (frame !== undefined) this.#writeOut(frame);
      run = 0;
      start = i + 1;
    }
  }

  #writeOut(bytes: Uint8Array): void {
    try {
      this.#channel.write(bytes);
    } catch {
      this.#onTransportError();
    }
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
    const end = this.#inboxEnd;
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

  /** The waiting `next()` is settled (by the caller, next). */
  #stopWaiting(): void {
    this.#waiting = null;
    this.#resolveWaiting = null;
  }

  get #queued(): number {
    return this.#inbox.length - this.#inboxHead;
  }

  /**
   * Reads while the inbox has room (it is below `highWaterMark`), one chunk
   * at a time; the reads stop when it is full and go on when it is not.
   * While the close handshake is under way (`#draining`), reads go on
   * regardless. A chunk read is fed to the protocol by {@link #onRead}, which
   * calls this again: an idle connection waits on one read, no more.
   */
  #readMore(): void {
    while (!this.#reading) {
      if (this.#failing !== null) return this.#failWhenDrained();
      if (this.#closeInfo !== null) return;
      if (
        !this.#draining &&
        (this.#readableDone || this.#queued >= this.#highWaterMark)
      ) return;
      const head = this.#head;
      if (head === null) {
        this.#reading = true;
        this.#channel.readTo(this.#events);
        return;
      }
      this.#head = null; // the bytes read past the handshake come first
      this.#receive(head);
    }
  }

  #onRead(bytes: Uint8Array | null): void {
    this.#reading = false;
    if (this.#closeInfo !== null || this.#failing !== null) return;
    if (bytes === null) return this.#onEof();
    this.#receive(bytes);
    this.#readMore();
  }

  #receive(chunk: Uint8Array): void {
    this.#bytesReceived += chunk.length;
    try {
      this.#protocol.receive(chunk);
    } catch (error) {
      if (error instanceof ProtocolError) this.#onProtocolError(error);
      else this.#onTransportError();
    }
  }

  /** The application stopped reading: like WebSocketStream, that closes. */
  #stopReading(): void {
    this.#readableDone = true;
    this.#inbox = NO_MESSAGES;
    this.#inboxHead = 0;
    this.#endInbox(null);
    void this.close();
  }

  /** No more messages come; a waiting `next()` gets the end now. */
  #endInbox(error: unknown): void {
    if (this.#inboxEnd !== null) return;
    this.#inboxEnd = { error };
    if (error !== null) {
      this.#inbox = NO_MESSAGES;
      this.#inboxHead = 0;
    }
    if (this.#waiting === null) return;
    const resolve = this.#resolveWaiting!;
    this.#stopWaiting();
    // A rejected promise rejects it: no field for its reject function.
    resolve(
      error === null ? { done: true, value: undefined } : Promise.reject(error),
    );
  }

  /**
   * Once our close frame is out, read on whether or not `readable` has room:
   * the peer's close frame may be behind messages nobody is reading.
   */
  #drainUntilClosed(): void {
    if (this.#draining) return;
    this.#draining = true;
    this.#readMore();
  }

  #onMessage(data: Message): void {
    this.#messagesReceived++;
    if (this.#readableDone) return;
    if (this.#waiting !== null) {
      const resolve = this.#resolveWaiting!;
      this.#stopWaiting();
      resolve({ done: false, value: data });
      return;
    }
    if (this.#draining && this.#queued >= this.#highWaterMark) {
      // Past the queue while closing: keep what fits in one message's limit,
      // so a peer flooding us during the close handshake cannot grow memory.
      const size = typeof data === "string" ? data.length * 3 : data.length;
      this.#overflowBytes += size;
      if (this.#overflowBytes > this.#maxMessageSize) {
        return;
      }
    }
    if (this.#inbox === NO_MESSAGES) this.#inbox = [data];
    else this.#inbox.push(data);
  }

  #onPong(payload: Uint8Array): void {
    const pings = this.#pings ?? [];
    const index = pings.findIndex((ping) => equal(ping.payload, payload));
    if (index >= 0) {
      const now = performance.now();
      for (const ping of pings.splice(0, index + 1)) {
        ping.resolve(now - ping.started);
      }
    }
    this.#pongHook?.(payload);
  }

  #onPeerClose(code: number, reason: string): void {
    this.#state = "closing";
    const info = { code, reason, wasClean: true };
    if (this.#protocol.role === "server") {
      // RFC 6455 §7.1.1: "the server MUST close the underlying TCP
      // connection immediately" after the close handshake; the echo is
      // flushed first by closing the writer.
      this.#finish(info, true);
    } else {
      // The client waits for the server to close the TCP connection (§7.1.1),
      // up to the close deadline.
      this.#pendingClose = info;
      this.#armCloseTimer();
      this.#drainUntilClosed();
    }
  }

  #onEof(): void {
    const clean = this.#protocol.receiveEof();
    if (clean) {
      // Graceful: the echo of the peer's close frame (and any pong before
      // it) may still be queued, and a peer that half-closed still reads.
      this.#finish(
        this.#pendingClose ?? { code: 1005, reason: "", wasClean: true },
        true,
      );
    } else {
      this.#finish({ code: 1006, reason: "", wasClean: false }, false);
    }
  }

  /**
   * The peer broke the protocol. Reading stops, but the close frame waits
   * until the application has taken the messages that came before the bad
   * frame and had a turn to answer them (Autobahn grades the echo of a valid
   * message before the 1002 as strict: cases 3.2, 4.1.3, 5.15); an
   * application that does not read gets the close at `closeTimeout`.
   */
  #onProtocolError(error: ProtocolError): void {
    this.#failing = error;
    this.#failTimer = setTimeout(() => this.#failNow(true), this.#closeTimeout);
    this.#failWhenDrained();
  }

  /** Fails once `readable`'s queue is empty, after the application's turn. */
  #failWhenDrained(): void {
    if (this.#failScheduled || (this.#queued > 0 && !this.#readableDone)) {
      return;
    }
    this.#failScheduled = true;
    // A macrotask: the application's answer to the last message is sent
    // from microtasks after its read resolves, so it is queued by then.
    this.#failSoonTimer = setTimeout(() => this.#failNow(false), 0);
  }

  /** Sends the failing close frame (after queued sends, unless `now`) and ends. */
  #failNow(now: boolean): void {
    const error = this.#failing;
    if (error === null || this.#closeInfo !== null) return;
    const fail = () => {
      if (this.#closeInfo !== null) return;
      this.#protocol.fail();
      this.#finish(
        { code: error.closeCode, reason: error.message, wasClean: false },
        true,
        error,
      );
    };
    if (now) fail();
    else this.#sendTail = this.#sendTail.then(fail);
  }

  /** The socket failed (its cause is not reported: the close info says 1006). */
  #onTransportError(): void {
    if (this.#closeInfo !== null) return;
    const info = this.#pendingClose ??
      { code: 1006, reason: "", wasClean: false };
    this.#finish(info, false);
  }

  // ---- timers ----

  #armCloseTimer(): void {
    if (this.#closeTimer !== undefined || this.#closeInfo !== null) return;
    this.#closeTimer = setTimeout(() => {
      this.#closeTimer = undefined;
      this.#finish(
        this.#pendingClose ?? {
          code: 1006,
          reason: "Close handshake timed out",
          wasClean: false,
        },
        false,
      );
    }, this.#closeTimeout);
  }

  // Keepalive deadlines live in queues shared by every connection, one per
  // duration (each with one timer), instead of a timer and closures per
  // connection: most connections are idle, and this is most of what an idle
  // connection would otherwise hold.
  static #pingsDue = new DeadlineQueues<WebSocketConnection>((connection) =>
    connection.#keepalivePing()
  );
  static #pongsDue = new DeadlineQueues<WebSocketConnection>((connection) =>
    connection.#finish(
      { code: 1006, reason: "Keepalive ping timed out", wasClean: false },
      false,
    )
  );

  /** The next keepalive ping is due in `interval` ms. */
  #scheduleKeepalive(): void {
    this.#events.deadline = WebSocketConnection.#pingsDue.add(
      this.#keepalive!.interval,
      this,
    );
  }

  #keepalivePing(): void {
    if (this.#state !== "open") return;
    const { interval, timeout = interval } = this.#keepalive!;
    const pongDue = WebSocketConnection.#pongsDue.add(timeout, this);
    this.#events.deadline = pongDue;
    this.ping().then(
      () => {
        // Not when the pong came too late, or the connection ended.
        if (pongDue.unlink() && this.#state === "open") {
          this.#scheduleKeepalive();
        }
      },
      () => pongDue.unlink(),
    );
  }

  /** Stops the keepalive deadline (a ping or a pong due), if any. */
  #stopKeepalive(): void {
    this.#events.deadline?.unlink();
  }

  // ---- the end ----

  /**
   * Ends the connection once: settles `closed`, ends `readable`, fails
   * pending pings, stops the timers and closes the transport (`graceful`:
   * after flushing what was written).
   */
  #finish(info: CloseInfo, graceful: boolean, error?: unknown): void {
    if (this.#closeInfo !== null) return;
    this.#closeInfo = info;
    this.#state = "closed";
    clearTimeout(this.#closeTimer);
    clearTimeout(this.#failTimer);
    clearTimeout(this.#failSoonTimer);
    this.#stopKeepalive();
    // Made only when someone gets it: an error's stack trace is not free,
    // and most connections end with no ping waiting and a clean close.
    let closedError: ConnectionClosedError | undefined;
    const pings = this.#pings;
    if (pings !== null && pings.length > 0) {
      closedError = this.#closedError("receive");
      for (const ping of pings.splice(0)) ping.reject(closedError);
    }
    if (!this.#readableDone) {
      this.#readableDone = true;
      // Iteration's one rule: it ends after a clean close, and throws a
      // ConnectionClosedError after an unclean one (its cause the
      // ProtocolError when the peer broke the protocol).
      this.#endInbox(
        info.wasClean
          ? null
          : error === undefined
          ? closedError ?? this.#closedError("receive")
          : this.#closedError("receive", error),
      );
    }
    // A graceful end flushes what was written (the close frame), but a peer
    // that never reads must not hold the socket open past the deadline.
    if (graceful) {
      this.#uncork();
      this.#events.deadline = WebSocketConnection.#dropsDue.add(
        this.#closeTimeout,
        this,
      );
      const flushed = this.#channel.closeWrite().catch(() => {});
      if (error === undefined) flushed.finally(() => this.#drop());
      else {
        // Failing, we stopped reading at the bad frame. Closing the socket
        // with the peer's bytes unread would send a reset, and a reset has
        // the peer's kernel drop our close frame before the peer reads it.
        // So the connection ends here, but its socket reads on, discarding,
        // until the peer closes too (as RFC 6455 §7.1.1 has a client wait
        // for the server) or the close deadline comes.
        flushed.then(() => {
          this.#settle();
          this.#discardUntilEof();
        });
      }
    } else {
      this.#corked = null;
      this.#corkedBytes = 0;
      this.#drop();
    }
  }

  /** Settles `closed` and leaves `openIn`, once. */
  #settle(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#events.openIn?.delete(this);
    this.#events.unlink(); // from an OpenConnections
    this.#closed?.resolve(this.#closeInfo!);
  }

  /** Closes the socket and settles; at the latest, `closeTimeout` after `#finish`. */
  #drop(): void {
    this.#events.deadline?.unlink(); // the drop's own
    this.#channel.close();
    this.#settle();
  }

  // The deadlines of graceful ends, shared like keepalive's (one per
  // closeTimeout): a timer per connection was 2 % of a server's handshake.
  static #dropsDue = new DeadlineQueues<WebSocketConnection>((connection) =>
    connection.#drop()
  );

  /**
   * Reads and drops what the peer still sends, then drops the socket;
   * dropping it at the deadline ends a pending read, and so this.
   */
  #discardUntilEof(): void {
    const channel = this.#channel;
    const done = () => this.#drop();
    const next = (): void => {
      channel.read().then((bytes) => bytes === null ? done() : next(), done);
    };
    next();
  }

  #closedError(what: string, cause?: unknown): ConnectionClosedError {
    // While our close is under way, name its code, not 1006 ("abnormal").
    const info = this.#closeInfo ?? this.#pendingClose ??
      (this.#localClose && { ...this.#localClose, wasClean: false }) ??
      { code: 1006, reason: "", wasClean: false };
    return new ConnectionClosedError(
      `Cannot ${what} on a ${this.#state} connection: close code ${info.code}`,
      info,
      cause === undefined ? undefined : { cause },
    );
  }
}

/**
 * A live set of open connections: a connection given it as `openIn`
 * ({@link TakeoverOptions}) is in it from its start until it ends. A
 * server's `connections` is one.
 *
 * It is a `ReadonlySet`, kept as a linked list through the connections
 * themselves rather than a `Set`: entering and leaving cost a few pointer
 * writes, and a busy server's churn does not keep ended connections alive
 * in V8's young generation (a `Set`'s rehashed tables do).
 *
 * @example Keep your own connections, as a server does
 * ```ts
 * import { OpenConnections, takeover } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 *
 * const open = new OpenConnections();
 * const toServer = new TransformStream<Uint8Array, Uint8Array>();
 * const toClient = new TransformStream<Uint8Array, Uint8Array>();
 * const client = takeover(
 *   { readable: toClient.readable, writable: toServer.writable },
 *   { role: "client", openIn: open },
 * );
 * const server = takeover(
 *   { readable: toServer.readable, writable: toClient.writable },
 *   { role: "server", keepalive: false },
 * );
 * assert.equal(open.size, 1);
 * assert.ok(open.has(client) && !open.has(server));
 * await Promise.all([client.close(), server.closed]);
 * assert.equal(open.size, 0);
 * ```
 */
export class OpenConnections implements ReadonlySet<WebSocketConnection> {
  readonly #links = new LinkedList<OpenLink>();

  static {
    enterOpen = (open, link) => open.#links.append(link);
  }

  /** How many connections are open. */
  get size(): number {
    return this.#links.size;
  }

  /** Whether `connection` is open and in this set. */
  has(connection: WebSocketConnection): boolean {
    return connection instanceof WebSocketConnection &&
      eventsOf(connection).list === (this.#links as LinkedList<Link>);
  }

  /**
   * Calls `callback` with each connection (twice, as a `Set` does: value
   * and key), oldest first.
   */
  forEach(
    callback: (
      value: WebSocketConnection,
      key: WebSocketConnection,
      set: ReadonlySet<WebSocketConnection>,
    ) => void,
    thisArg?: unknown,
  ): void {
    for (const connection of this) {
      callback.call(thisArg, connection, connection, this);
    }
  }

  /**
   * The connections, oldest first, with a `Set`'s semantics while they
   * change: one that ends during the iteration (the current one included)
   * does not end it, every one not yet visited and still open is visited,
   * and one that opens meanwhile is visited too.
   */
  *values(): SetIterator<WebSocketConnection> {
    for (const link of this.#links) yield link.connection;
  }

  /** The same as {@link values}, as a `Set` has it. */
  keys(): SetIterator<WebSocketConnection> {
    return this.values();
  }

  /** Each connection twice (`[connection, connection]`), as a `Set` has it. */
  *entries(): SetIterator<[WebSocketConnection, WebSocketConnection]> {
    for (const connection of this) yield [connection, connection];
  }

  /** The same as {@link values}. */
  [Symbol.iterator](): SetIterator<WebSocketConnection> {
    return this.values();
  }

  /** A new `Set` of these connections and `other`'s elements. */
  union<U>(other: ReadonlySetLike<U>): Set<WebSocketConnection | U> {
    return new Set(this).union(other);
  }

  /** A new `Set` of these connections that are in `other` too. */
  intersection<U>(
    other: ReadonlySetLike<U>,
  ): Set<WebSocketConnection & U> {
    return new Set(this).intersection(other);
  }

  /** A new `Set` of these connections that are not in `other`. */
  difference<U>(other: ReadonlySetLike<U>): Set<WebSocketConnection> {
    return new Set(this).difference(other);
  }

  /** A new `Set` of what is in exactly one of this and `other`. */
  symmetricDifference<U>(
    other: ReadonlySetLike<U>,
  ): Set<WebSocketConnection | U> {
    return new Set(this).symmetricDifference(other);
  }

  /** Whether every connection here is in `other`. */
  isSubsetOf(other: ReadonlySetLike<unknown>): boolean {
    return new Set(this).isSubsetOf(other);
  }

  /** Whether every element of `other` is here. */
  isSupersetOf(other: ReadonlySetLike<unknown>): boolean {
    return new Set(this).isSupersetOf(other);
  }

  /** Whether no connection here is in `other`. */
  isDisjointFrom(other: ReadonlySetLike<unknown>): boolean {
    return new Set(this).isDisjointFrom(other);
  }
}

/**
 * Runs a WebSocket connection over any byte stream whose opening handshake
 * is already done (tcllib's `websocket::takeover`): a socket, a pipe, a
 * stream from another library. `head` carries any bytes read past the
 * handshake.
 *
 * @param stream The byte stream (`readable` and `writable`, with `close()`
 * and addresses when there is a socket under it).
 * @param options The role, and what the handshake agreed.
 * @returns The connection.
 *
 * @example Two ends over an in-memory pipe
 * ```ts
 * import { takeover } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 *
 * const toServer = new TransformStream<Uint8Array, Uint8Array>();
 * const toClient = new TransformStream<Uint8Array, Uint8Array>();
 * const client = takeover(
 *   { readable: toClient.readable, writable: toServer.writable },
 *   { role: "client" },
 * );
 * const server = takeover(
 *   { readable: toServer.readable, writable: toClient.writable },
 *   { role: "server", keepalive: false },
 * );
 * await client.send("hello");
 * const reader = server.readable.getReader();
 * assert.equal((await reader.read()).value, "hello");
 * reader.releaseLock();
 * const [a, b] = await Promise.all([client.close(), server.closed]);
 * // Each end reports the close frame it received: the server got ours, with
 * // its reason; we got the server's echo, which carries the code only.
 * assert.deepEqual(b, { code: 1000, reason: "Normal closure", wasClean: true });
 * assert.deepEqual(a, { code: 1000, reason: "", wasClean: true });
 * ```
 */
export function takeover(
  stream: ByteStream,
  options: TakeoverOptions,
): WebSocketConnection {
  // A transport with a channel is used through it: its streams (made on
  // first use) are not touched.
  if (
    !stream?.channel && (
      !(stream?.readable instanceof ReadableStream) ||
      !(stream?.writable instanceof WritableStream)
    )
  ) {
    throw new TypeError(
      "takeover needs a byte stream: { readable: ReadableStream, writable: WritableStream }",
    );
  }
  return new WebSocketConnection(stream, options);
}

function validateClose(code: number, reason: string): void {
  encodeClosePayload(code, reason); // throws RangeError for a bad code or reason
}

function closeFromReason(reason: unknown): { code?: number; reason?: string } {
  if (reason instanceof ConnectionClosedError) {
    return { code: reason.closeCode, reason: reason.reason };
  }
  if (
    reason !== null && typeof reason === "object" && "code" in reason &&
    typeof reason.code === "number"
  ) {
    const r = reason as { code: number; reason?: unknown };
    return typeof r.reason === "string"
      ? { code: r.code, reason: r.reason }
      : { code: r.code };
  }
  return { code: 1000 };
}

function checkPositive(name: string, value: number | undefined): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(`${name} must be a positive number, got ${value}`);
  }
}

function kindOf(chunk: Uint8Array | string): "text" | "binary" {
  return typeof chunk === "string" ? "text" : "binary";
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") {
    return `a ${value.constructor?.name ?? "object"}`;
  }
  return `a ${typeof value}`;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
