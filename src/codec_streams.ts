/**
 * The frame codec and the protocol as Web Streams, to compose with
 * `pipeThrough` over any byte stream: a `Deno.Conn`'s `readable` and
 * `writable`, a runtime transport's, a Bun socket adapted to streams, an
 * in-memory pipe.
 *
 * Two levels, each a thin driver of the pure core (they only feed it and
 * enqueue what it returns):
 *
 * - **Frames**: {@link FrameDecoderStream} turns bytes split anywhere into
 *   {@link Frame}s ({@link FrameDecoder} underneath, with its masking and
 *   header checks), and {@link FrameEncoderStream} turns frames into bytes
 *   ({@link encodeFrame}, masked by a client). No rule that spans frames is
 *   checked: for proxies, tools and tests.
 * - **Messages**: {@link MessageStreams} drives one {@link Protocol}, so it
 *   follows the engine's exact rules (fragments, UTF-8 failing on the first
 *   bad byte, limits, control frames between fragments, the close
 *   handshake).
 *
 * Data flow of a {@link MessageStreams}:
 *
 * ```
 * bytes from the peer ─▶ incoming.writable ─▶ protocol.receive ─▶ incoming.readable ─▶ messages
 *                                                  │ pong, close echo, failing close
 * messages ─▶ outgoing.writable ─▶ protocol.sendMessage ─┴▶ outgoing.readable ─▶ bytes to the peer
 * ```
 *
 * The protocol's own frames go out through the same queue as the
 * application's, in order: a pong can overtake a message only between
 * frames. Backpressure is the streams': bytes are taken from the peer only
 * while `incoming.readable` has a read pending or room in its queue (and
 * `outgoing.readable` has room for the pongs they may need), and a write to
 * `outgoing.writable` waits while `outgoing.readable` holds 64 KiB or more.
 * Nothing queues without bound: at most one input chunk's worth beyond the
 * high-water marks.
 *
 * These streams are for building your own transport, proxies and tests.
 * `serve`, `connect` and `takeover` do not use them: over a runtime socket
 * they read and write a byte channel with no Web Streams in between,
 * because streams cost. Echoing 32-byte messages over an in-memory pipe
 * (`bench/codec_streams_bench.ts`, median of 7 runs of 20 000 messages), a
 * pair of {@link MessageStreams} took 13.2 µs a message on Deno 2.9 and
 * 6.8 µs on Bun 1.4, against 5.0 µs and 1.2 µs for a pair of `takeover`
 * connections over the same pipe: on this machine (2 cores), 2.6× slower
 * per small message on Deno and 5.6× on Bun, which is why `serve` and
 * `connect` use the channel path.
 *
 * @example A whole connection: the shared handshake, then the message streams
 * ```ts
 * import {
 *   buildClientRequest,
 *   buildServerResponse,
 *   generateKey,
 *   HeadParser,
 *   MessageStreams,
 *   parseRequestHead,
 *   parseResponseHead,
 *   validateClientRequest,
 *   validateServerResponse,
 *   writeRequestHead,
 * } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * // The wire: one in-memory pipe each way.
 * const toServer = new TransformStream<Uint8Array, Uint8Array>();
 * const toClient = new TransformStream<Uint8Array, Uint8Array>();
 *
 * // Reads one HTTP head; `rest` holds the bytes read past it.
 * async function readHead(readable: ReadableStream<Uint8Array>) {
 *   const reader = readable.getReader();
 *   const parser = new HeadParser();
 *   try {
 *     for (;;) {
 *       const { value, done } = await reader.read();
 *       if (done) throw new Error("The stream ended inside the head");
 *       const result = parser.push(value);
 *       if (result !== null) return result;
 *     }
 *   } finally {
 *     reader.releaseLock();
 *   }
 * }
 * async function write(writable: WritableStream<Uint8Array>, bytes: Uint8Array) {
 *   const writer = writable.getWriter();
 *   await writer.write(bytes);
 *   writer.releaseLock();
 * }
 *
 * // Client: the request. Server: check it, answer 101. Client: check that.
 * const key = generateKey();
 * const request = buildClientRequest({ url: new URL("ws://example.com/chat"), key });
 * const [, requestHead] = await Promise.all([
 *   write(toServer.writable, writeRequestHead(request)),
 *   readHead(toServer.readable),
 * ]);
 * const upgrade = validateClientRequest(parseRequestHead(requestHead.head));
 * const [, responseHead] = await Promise.all([
 *   write(toClient.writable, await buildServerResponse(upgrade, {})),
 *   readHead(toClient.readable),
 * ]);
 * await validateServerResponse(parseResponseHead(responseHead.head), {
 *   key,
 *   protocols: [],
 *   extensions: [],
 * });
 *
 * // Server: echo every message, over the rest of the wire.
 * const server = new MessageStreams({ role: "server", head: requestHead.rest });
 * const serverSent = server.outgoing.readable.pipeTo(toClient.writable);
 * const echoed = toServer.readable.pipeThrough(server.incoming)
 *   .pipeTo(server.outgoing.writable);
 *
 * // Client: one message, its echo, then the close handshake.
 * const client = new MessageStreams({ role: "client", head: responseHead.rest });
 * const clientSent = client.outgoing.readable.pipeTo(toServer.writable);
 * const messages = toClient.readable.pipeThrough(client.incoming).getReader();
 * const writer = client.outgoing.writable.getWriter();
 * await writer.write("hello");
 * assert.deepEqual(await messages.read(), { value: "hello", done: false });
 * await writer.close(); // a close frame, code 1000
 * assert.deepEqual(await messages.read(), { value: undefined, done: true });
 *
 * // The server got our close with its reason; we got its echo (the code only).
 * assert.deepEqual(await server.closed, {
 *   closeCode: 1000,
 *   reason: "Normal closure",
 *   wasClean: true,
 * });
 * assert.deepEqual(await client.closed, {
 *   closeCode: 1000,
 *   reason: "",
 *   wasClean: true,
 * });
 * await Promise.all([serverSent, echoed, clientSent]);
 * ```
 *
 * @example Over a `Deno.Conn`
 * ```ts ignore
 * import { HeadParser, MessageStreams } from "@wsstream/wsstream/codec";
 *
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: 9001 });
 * // … write the request and read the response as above; `rest` is what
 * // was read past the response head.
 * const ws = new MessageStreams({ role: "client", head: rest });
 * const messages = conn.readable.pipeThrough(ws.incoming);
 * // Closing a Deno.Conn's writable closes the whole socket, reading side
 * // too: keep it open until the server's close frame is in.
 * ws.outgoing.readable.pipeTo(conn.writable, { preventClose: true });
 * const writer = ws.outgoing.writable.getWriter();
 * await writer.write("hello");
 * for await (const message of messages) {
 *   console.log(message);
 *   break; // cancelling the messages sends a close frame (1000)
 * }
 * console.log(await ws.closed); // once the server's close frame is in
 * conn.close();
 * ```
 *
 * @module
 */

import { ConnectionClosedError, ProtocolError } from "./errors.ts";
import { encodeFrame, type Frame, FrameDecoder } from "./frame.ts";
import { randomMaskSource } from "./mask.ts";
import {
  DEFAULT_MAX_MESSAGE_SIZE,
  type Message,
  Protocol,
  type Role,
} from "./protocol.ts";

/**
 * Options for a {@link FrameDecoderStream}.
 *
 * @example
 * ```ts
 * import type { FrameDecoderStreamOptions } from "@wsstream/wsstream/codec";
 * const options: FrameDecoderStreamOptions = { role: "server", maxPayloadSize: 1 << 20 };
 * ```
 */
export interface FrameDecoderStreamOptions {
  /**
   * Our end. RFC 6455 §5.1: a server "MUST close the connection upon
   * receiving a frame that is not masked", and a client "MUST close a
   * connection if it detects a masked frame" (both fail with 1002).
   */
  role: Role;
  /**
   * The largest frame payload accepted, in bytes (default 16 MiB); a
   * larger one fails with 1009 as soon as its header arrives.
   */
  maxPayloadSize?: number | undefined;
  /** RSV bits a negotiated extension uses (RSV1 = 4); others fail with 1002. */
  allowedRsv?: number | undefined;
}

/**
 * Bytes in, {@link Frame}s out: decodes frames from `Uint8Array` chunks
 * split anywhere. Payloads come out whole, in arrays of their own.
 *
 * The stream errors with a `ProtocolError` carrying the close code when a
 * frame breaks RFC 6455 (1002: a bad header, masking that is wrong for the
 * role; 1009: a payload over `maxPayloadSize`), and with a
 * `ConnectionClosedError` (1006) when the bytes end inside a frame. Rules
 * that span frames (fragment order, UTF-8, close payloads) are not checked:
 * that is {@link MessageStreams}' job. The decoder unmasks the chunks it is
 * given in place: do not reuse them.
 *
 * @example A server decoding a masked "Hello" (RFC 6455 §5.7) split in two
 * ```ts
 * import { FrameDecoderStream } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const bytes = ReadableStream.from([
 *   new Uint8Array([0x81, 0x85, 0x37, 0xfa]),
 *   new Uint8Array([0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]),
 * ]);
 * const frames = await Array.fromAsync(
 *   bytes.pipeThrough(new FrameDecoderStream({ role: "server" })),
 * );
 * assert.deepEqual(frames, [
 *   { fin: true, rsv: 0, opcode: 1, payload: new TextEncoder().encode("Hello") },
 * ]);
 * ```
 *
 * @example An unmasked frame sent to a server fails with 1002
 * ```ts
 * import { FrameDecoderStream, ProtocolError } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const bytes = ReadableStream.from([new Uint8Array([0x81, 0x00])]);
 * await assert.rejects(
 *   Array.fromAsync(bytes.pipeThrough(new FrameDecoderStream({ role: "server" }))),
 *   (error) => error instanceof ProtocolError && error.closeCode === 1002,
 * );
 * ```
 */
export class FrameDecoderStream extends TransformStream<Uint8Array, Frame> {
  /**
   * Makes a decoder for one byte stream.
   *
   * @param options Our role and the payload limit.
   * @throws {TypeError} for a role other than `"client"` or `"server"`.
   * @throws {RangeError} for a `maxPayloadSize` that is not a positive number.
   */
  constructor(options: FrameDecoderStreamOptions) {
    const role = checkRole(options?.role);
    const limit = checkLimit("maxPayloadSize", options.maxPayloadSize) ??
      DEFAULT_MAX_MESSAGE_SIZE;
    let out: TransformStreamDefaultController<Frame>;
    let fin = false, rsv = 0, opcode = 0, length = 0;
    let pieces: Uint8Array[] = [];
    const decoder = new FrameDecoder({
      frameStart(header) {
        if (header.length > limit) {
          throw new ProtocolError(
            `Frame payload of ${header.length} bytes is over the ${limit}-byte limit`,
            1009,
          );
        }
        ({ fin, rsv, opcode, length } = header);
      },
      framePayload(chunk) {
        pieces.push(chunk);
      },
      frameEnd() {
        const payload = join(pieces, length);
        pieces = [];
        out.enqueue({ fin, rsv, opcode, payload });
      },
    }, { masked: role === "server", allowedRsv: options.allowedRsv ?? 0 });
    super({
      start(controller) {
        out = controller;
      },
      transform(chunk) {
        decoder.push(checkBytes(chunk));
      },
      flush() {
        if (!decoder.idle) {
          throw new ConnectionClosedError(
            "The byte stream ended inside a frame: close code 1006",
            { closeCode: 1006, reason: "", wasClean: false },
          );
        }
      },
    });
  }
}

/**
 * Options for a {@link FrameEncoderStream}.
 *
 * @example
 * ```ts
 * import type { FrameEncoderStreamOptions } from "@wsstream/wsstream/codec";
 * const options: FrameEncoderStreamOptions = { role: "client" };
 * ```
 */
export interface FrameEncoderStreamOptions {
  /** Our end: a client masks every frame (RFC 6455 §5.3), a server none. */
  role: Role;
  /**
   * Where a client's masking keys come from, 4 bytes a call; by default
   * {@link randomMaskSource}. A fixed key is for tests only: RFC 6455 §5.3
   * wants each key "derived from a strong source of entropy".
   */
  maskSource?: (() => Uint8Array) | undefined;
}

/**
 * {@link Frame}s in, bytes out: one chunk per frame, masked by a client.
 * Frames are written as they are given, reserved opcodes and oversized
 * control frames included (tests need to send what a broken peer sends);
 * only fields that cannot be encoded are refused.
 *
 * @example A client's masked "Hello" (RFC 6455 §5.7)
 * ```ts
 * import { FrameEncoderStream } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const frames = ReadableStream.from([
 *   { fin: true, rsv: 0, opcode: 1, payload: new TextEncoder().encode("Hello") },
 * ]);
 * const encoder = new FrameEncoderStream({
 *   role: "client",
 *   maskSource: () => new Uint8Array([0x37, 0xfa, 0x21, 0x3d]),
 * });
 * const [bytes] = await Array.fromAsync(frames.pipeThrough(encoder));
 * assert.deepEqual(
 *   [...bytes!],
 *   [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58],
 * );
 * ```
 */
export class FrameEncoderStream extends TransformStream<Frame, Uint8Array> {
  /**
   * Makes an encoder.
   *
   * @param options Our role and, for a client, the masking keys' source.
   * @throws {TypeError} for a role other than `"client"` or `"server"`, or a
   * `maskSource` that is not a function.
   */
  constructor(options: FrameEncoderStreamOptions) {
    const role = checkRole(options?.role);
    if (
      options.maskSource !== undefined &&
      typeof options.maskSource !== "function"
    ) {
      throw new TypeError(
        `maskSource must be a function returning 4 bytes, got ${
          describe(options.maskSource)
        }`,
      );
    }
    const nextMask = role === "client"
      ? options.maskSource ?? randomMaskSource()
      : null;
    super({
      transform(frame, controller) {
        checkFrame(frame);
        let key: Uint8Array | null = null;
        if (nextMask !== null) {
          key = nextMask();
          if (!(key instanceof Uint8Array) || key.length !== 4) {
            throw new RangeError(
              `maskSource returned ${describe(key)}; a masking key is 4 bytes`,
            );
          }
        }
        controller.enqueue(encodeFrame(frame, key));
      },
    });
  }
}

/**
 * Options for a {@link MessageStreams}.
 *
 * @example
 * ```ts
 * import type { MessageStreamsOptions } from "@wsstream/wsstream/codec";
 * const options: MessageStreamsOptions = { role: "client", maxMessageSize: 1 << 20 };
 * ```
 */
export interface MessageStreamsOptions {
  /** Our end: a client masks what it sends and refuses masked frames. */
  role: Role;
  /** The largest message accepted, in bytes (default 16 MiB); larger fail with 1009. */
  maxMessageSize?: number | undefined;
  /** The most frames one message may come in (default 131 072); more fail with 1009. */
  maxFragments?: number | undefined;
  /** How many received messages `incoming.readable` queues (default 16). */
  highWaterMark?: number | undefined;
  /** Bytes read past the handshake: the first frames, decoded before any other. */
  head?: Uint8Array | undefined;
  /** Where a client's masking keys come from; for tests. */
  maskSource?: (() => Uint8Array) | undefined;
}

/** What `outgoing.readable` may hold before writes wait, in bytes. */
const OUTGOING_HIGH_WATER_MARK = 64 * 1024;
const DEFAULT_HIGH_WATER_MARK = 16;

/** How a connection ended: the shape of the engine's `CloseInfo`. */
type Ending = { closeCode: number; reason: string; wasClean: boolean };

/**
 * One WebSocket connection's two directions as streams, made together from
 * one {@link Protocol}: `incoming` turns the peer's bytes into messages (text
 * as `string`, binary as `Uint8Array`), `outgoing` turns messages into bytes
 * for the peer, with the protocol's own frames (the pong to a ping, the echo
 * of a close frame, the close frame that fails the connection) merged in, in
 * order. Each is a `{ writable, readable }` pair for `pipeThrough`:
 *
 * ```ts ignore
 * const messages = socket.readable.pipeThrough(ws.incoming);
 * ws.outgoing.readable.pipeTo(socket.writable);
 * ```
 *
 * You must keep `outgoing.readable` flowing to the peer even when you send
 * nothing: pongs and the close echo go out through it, and `incoming`
 * stops taking bytes while it is full.
 *
 * How it ends:
 * - The peer's close frame: the echo is queued, both readables end, and
 *   `closed` resolves with the peer's code and reason (`wasClean: true`).
 * - Closing `outgoing.writable`, {@link MessageStreams.close}, or cancelling
 *   `incoming.readable` sends a close frame and ends `outgoing.readable`;
 *   `incoming` goes on (cancelled: discarding messages) until the peer's
 *   close frame comes.
 * - A protocol violation: the close frame with its code (1002, 1007, 1009)
 *   is queued, `outgoing.readable` ends, `closed` resolves with that code
 *   (`wasClean: false`), and `incoming.readable` errors with a
 *   `ConnectionClosedError` whose `cause` is the `ProtocolError`, once the
 *   messages before it are read (as a connection's iteration throws).
 * - The peer's bytes ending first: `incoming.readable` errors with a
 *   `ConnectionClosedError` and `closed` reports 1006.
 * - Aborting `outgoing.writable` drops the connection: `outgoing.readable`
 *   errors with the reason (so a `pipeTo` aborts the socket), and `closed`
 *   reports 1006.
 *
 * After a close, `incoming` takes and discards what the peer still sends,
 * so a pipe from the socket runs until the socket ends. Bytes written to
 * `outgoing.writable` are sent as they are (large ones uncopied): do not
 * change them afterwards. Binary messages may be views of the chunks read.
 *
 * @example A server answering a ping and a message
 * ```ts
 * import { MessageStreams } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const ws = new MessageStreams({ role: "server" });
 * const sent = ws.outgoing.readable.getReader();
 * const received = ws.incoming.readable.getReader();
 * const peer = ws.incoming.writable.getWriter();
 * // A client's ping (empty), then a text "hi", masked with an all-zero key.
 * void peer.write(new Uint8Array([0x89, 0x80, 0, 0, 0, 0]));
 * void peer.write(new Uint8Array([0x81, 0x82, 0, 0, 0, 0, 0x68, 0x69]));
 * assert.deepEqual((await sent.read()).value, new Uint8Array([0x8a, 0x00])); // the pong
 * assert.equal((await received.read()).value, "hi");
 * const writer = ws.outgoing.writable.getWriter();
 * void writer.write("hello");
 * assert.deepEqual(
 *   (await sent.read()).value,
 *   new Uint8Array([0x81, 0x05, ...new TextEncoder().encode("hello")]),
 * );
 * ```
 */
export class MessageStreams {
  /** The peer's bytes in (`writable`), the messages received out (`readable`). */
  readonly incoming: {
    readonly writable: WritableStream<Uint8Array>;
    readonly readable: ReadableStream<Message>;
  };
  /** Messages to send in (`writable`), the bytes for the peer out (`readable`). */
  readonly outgoing: {
    readonly writable: WritableStream<Message>;
    readonly readable: ReadableStream<Uint8Array>;
  };

  readonly #protocol: Protocol;
  readonly #highWaterMark: number;
  readonly #closed = Promise.withResolvers<Ending>();
  #closeInfo: Ending | null = null;
  #messages!: ReadableStreamDefaultController<Message>;
  #bytes!: ReadableStreamDefaultController<Uint8Array>;
  /** No more messages are enqueued (ended, ending with an error, or cancelled). */
  #messagesDone = false;
  /** No more bytes are enqueued. */
  #bytesDone = false;
  /** The error `incoming.readable` ends with once its queue is read. */
  #endError: { error: unknown } | null = null;
  /** An outstanding pull of `incoming.readable`: its reader wants a message. */
  #pulling: PromiseWithResolvers<void> | null = null;
  /** Writers waiting for room; resolved by either readable's pull or end. */
  #waiting: PromiseWithResolvers<void> | null = null;

  /**
   * Makes the streams of one connection whose opening handshake is done.
   *
   * @param options Our role, limits, and bytes read past the handshake.
   * @throws {TypeError} for a role other than `"client"` or `"server"`, or a
   * `head` that is not a `Uint8Array`.
   * @throws {RangeError} for a limit that is not a positive number or a
   * negative `highWaterMark`.
   */
  constructor(options: MessageStreamsOptions) {
    const role = checkRole(options?.role);
    const highWaterMark = options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
    if (
      typeof highWaterMark !== "number" || !(highWaterMark >= 0) ||
      !Number.isFinite(highWaterMark)
    ) {
      throw new RangeError(
        `highWaterMark must be a non-negative number, got ${highWaterMark}`,
      );
    }
    this.#highWaterMark = highWaterMark;
    const head = options.head;
    if (head !== undefined && !(head instanceof Uint8Array)) {
      throw new TypeError(`head must be a Uint8Array, got ${describe(head)}`);
    }
    this.#protocol = new Protocol({
      role,
      maxMessageSize: checkLimit("maxMessageSize", options.maxMessageSize),
      maxFragments: checkLimit("maxFragments", options.maxFragments),
      maskSource: options.maskSource,
    }, {
      message: (data) => {
        if (this.#messagesDone) return;
        this.#messages.enqueue(data);
        this.#resolvePulling();
      },
      ping() {},
      pong() {},
      close: (code, reason) => {
        // The echo, if one was due, is already queued.
        this.#endBytes();
        this.#endMessages(null);
        this.#finish({ closeCode: code, reason, wasClean: true });
      },
      send: (bytes) => {
        if (!this.#bytesDone) this.#bytes.enqueue(bytes);
      },
    });

    this.incoming = {
      writable: new WritableStream<Uint8Array>({
        // An abort must not wait for a write that waits for a reader: the
        // signal ends the connection at once, which releases the write.
        start: (controller) =>
          onAbort(controller, (reason) => this.#onEnd(reason)),
        write: (chunk) => this.#receive(checkBytes(chunk)),
        close: () => this.#onEnd(undefined),
      }),
      readable: new ReadableStream<Message>({
        start: (controller) => {
          this.#messages = controller;
        },
        pull: () => this.#pullMessages(),
        cancel: () => {
          // Leaving a `for await` loop closes the connection, as it does a
          // WebSocketConnection's; messages are discarded until the peer's
          // close frame comes.
          this.#messagesDone = true;
          this.#endError = null;
          this.#resolvePulling();
          this.#wake();
          this.close(1000);
        },
      }, { highWaterMark }),
    };
    this.outgoing = {
      writable: new WritableStream<Message>({
        start: (controller) =>
          onAbort(controller, (reason) => this.#drop(reason)),
        write: (message) => this.#send(message),
        close: () => this.close(1000),
      }),
      readable: new ReadableStream<Uint8Array>(
        {
          start: (controller) => {
            this.#bytes = controller;
          },
          pull: () => this.#wake(),
          cancel: () => {
            // The peer's side is gone: nothing more can be sent.
            this.#bytesDone = true;
            this.#wake();
          },
        },
        new ByteLengthQueuingStrategy({
          highWaterMark: OUTGOING_HIGH_WATER_MARK,
        }),
      ),
    };
    if (head !== undefined && head.length > 0) this.#feed(head);
  }

  /**
   * Resolves (never rejects) with how the connection ended: the peer's
   * close code and reason once its close frame is in, the violation's code
   * when the peer broke the protocol, or 1006 when the bytes ended or the
   * connection was dropped without a close handshake.
   */
  get closed(): Promise<
    { closeCode: number; reason: string; wasClean: boolean }
  > {
    return this.#closed.promise;
  }

  /**
   * Starts the close handshake: queues a close frame on `outgoing.readable`
   * after what is already there, then ends it (RFC 6455 §5.5.1: after a
   * close frame, an endpoint sends no more data frames). Does nothing once a
   * close frame was sent or received. Messages still being written to
   * `outgoing.writable` are refused; to send them first, close
   * `outgoing.writable` instead (code 1000).
   *
   * @param code The close code (default 1000).
   * @param reason The reason, at most 123 bytes of UTF-8 (default: the
   * code's standard reason).
   * @throws {RangeError} for a code that may not be sent (1005, 1006, 1015,
   * outside 1000–4999 …) or a reason that is too long.
   *
   * @example
   * ```ts
   * import { MessageStreams } from "@wsstream/wsstream/codec";
   * import assert from "node:assert/strict";
   *
   * const ws = new MessageStreams({ role: "server" });
   * ws.close(4000, "bye");
   * const sent = await Array.fromAsync(ws.outgoing.readable);
   * assert.deepEqual(sent, [new Uint8Array([0x88, 0x05, 0x0f, 0xa0, 0x62, 0x79, 0x65])]);
   * ```
   */
  close(code: number = 1000, reason?: string): void {
    if (this.#protocol.close(code, reason)) this.#endBytes();
  }

  /** Feeds the peer's bytes, then waits until more are wanted. */
  #receive(chunk: Uint8Array): Promise<void> | undefined {
    this.#feed(chunk);
    if (this.#wantsMore()) return;
    return this.#waitUntil(() => this.#wantsMore());
  }

  #feed(chunk: Uint8Array): void {
    try {
      this.#protocol.receive(chunk);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      // RFC 6455 §7.1.7: "Fail the WebSocket Connection": the close frame
      // with the violation's code, then nothing more.
      this.#protocol.fail();
      this.#endBytes();
      const info = {
        closeCode: error.closeCode,
        reason: error.message,
        wasClean: false,
      };
      // The connection's rule for iteration: an unclean end throws a
      // ConnectionClosedError, its cause the ProtocolError.
      this.#endMessages(
        new ConnectionClosedError(
          `The peer broke the protocol: close code ${error.closeCode}`,
          info,
          { cause: error },
        ),
      );
      this.#finish(info);
    }
  }

  /**
   * Whether to take more bytes: a reader wants a message (or messages are
   * no longer delivered), and there is room for the frames they may make us
   * send.
   */
  #wantsMore(): boolean {
    return (this.#messagesDone || this.#pulling !== null) &&
      (this.#bytesDone || this.#bytes.desiredSize! > 0);
  }

  #send(message: Message): Promise<void> | undefined {
    if (typeof message !== "string" && !(message instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot send ${
          describe(message)
        }: a message is a string or a Uint8Array`,
      );
    }
    if (this.#bytesDone || this.#protocol.state !== "open") {
      const info = this.#closeInfo ??
        { closeCode: 1006, reason: "", wasClean: false };
      throw new ConnectionClosedError(
        `Cannot send on a ${
          this.#closeInfo === null ? "closing" : "closed"
        } connection: close code ${info.closeCode}`,
        info,
      );
    }
    this.#protocol.sendMessage(message);
    const hasRoom = () => this.#bytesDone || this.#bytes.desiredSize! > 0;
    return hasRoom() ? undefined : this.#waitUntil(hasRoom);
  }

  async #waitUntil(condition: () => boolean): Promise<void> {
    while (!condition()) {
      await (this.#waiting ??= Promise.withResolvers()).promise;
    }
  }

  #wake(): void {
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.resolve();
  }

  #pullMessages(): Promise<void> | undefined {
    this.#errorIfRead();
    if (this.#messagesDone) return;
    this.#pulling ??= Promise.withResolvers();
    this.#wake();
    return this.#pulling.promise;
  }

  #resolvePulling(): void {
    const pulling = this.#pulling;
    this.#pulling = null;
    pulling?.resolve();
  }

  /** Ends `incoming.readable`: at once when clean, once read with an error. */
  #endMessages(error: unknown): void {
    if (this.#messagesDone) return;
    this.#messagesDone = true;
    if (error === null) this.#messages.close();
    else {
      this.#endError = { error };
      this.#errorIfRead();
    }
    this.#resolvePulling();
    this.#wake();
  }

  /** Errors `incoming.readable` once the messages queued before the error are read. */
  #errorIfRead(): void {
    const end = this.#endError;
    if (end === null || this.#messages.desiredSize !== this.#highWaterMark) {
      return;
    }
    this.#endError = null;
    this.#messages.error(end.error);
  }

  #endBytes(): void {
    if (this.#bytesDone) return;
    this.#bytesDone = true;
    this.#bytes.close();
    this.#wake();
  }

  /** The peer's bytes ended (`reason` undefined) or failed. */
  #onEnd(reason: unknown): void {
    this.#protocol.receiveEof();
    if (this.#closeInfo !== null) return;
    const info = { closeCode: 1006, reason: "", wasClean: false };
    this.#endBytes();
    this.#endMessages(
      new ConnectionClosedError(
        "The connection ended without a close handshake: close code 1006",
        info,
        reason === undefined ? undefined : { cause: reason },
      ),
    );
    this.#finish(info);
  }

  /** `outgoing.writable` was aborted: drop the connection. */
  #drop(reason: unknown): void {
    const info = { closeCode: 1006, reason: "", wasClean: false };
    if (!this.#bytesDone) {
      this.#bytesDone = true;
      this.#bytes.error(reason);
      this.#wake();
    }
    this.#endMessages(
      new ConnectionClosedError(
        "The connection was dropped: close code 1006",
        info,
        { cause: reason },
      ),
    );
    this.#finish(info);
  }

  #finish(info: Ending): void {
    if (this.#closeInfo !== null) return;
    this.#closeInfo = info;
    this.#closed.resolve(info);
  }
}

/** Calls `then` with the reason as soon as the writable is aborted. */
function onAbort(
  controller: WritableStreamDefaultController,
  then: (reason: unknown) => void,
): void {
  const signal = controller.signal;
  signal.addEventListener(
    "abort",
    () => then(signal.reason ?? new Error("Aborted")),
    { once: true },
  );
}

function checkRole(role: unknown): Role {
  if (role !== "client" && role !== "server") {
    throw new TypeError(
      `role must be "client" or "server", got ${describe(role)}`,
    );
  }
  return role;
}

function checkLimit(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(`${name} must be a positive number, got ${value}`);
  }
  return value;
}

function checkBytes(chunk: unknown): Uint8Array {
  if (!(chunk instanceof Uint8Array)) {
    throw new TypeError(
      `Expected bytes (a Uint8Array), got ${describe(chunk)}`,
    );
  }
  return chunk;
}

function checkFrame(frame: Frame): void {
  if (typeof frame !== "object" || frame === null) {
    throw new TypeError(
      `Expected a frame { fin, rsv, opcode, payload }, got ${describe(frame)}`,
    );
  }
  if (typeof frame.fin !== "boolean") {
    throw new TypeError(
      `Frame fin must be a boolean, got ${describe(frame.fin)}`,
    );
  }
  if (!Number.isInteger(frame.rsv) || frame.rsv < 0 || frame.rsv > 7) {
    throw new RangeError(
      `Frame rsv must be an integer from 0 to 7, got ${frame.rsv}`,
    );
  }
  if (
    !Number.isInteger(frame.opcode) || frame.opcode < 0 || frame.opcode > 15
  ) {
    throw new RangeError(
      `Frame opcode must be an integer from 0 to 15, got ${frame.opcode}`,
    );
  }
  if (!(frame.payload instanceof Uint8Array)) {
    throw new TypeError(
      `Frame payload must be a Uint8Array, got ${describe(frame.payload)}`,
    );
  }
}

/** A frame's payload pieces (views of the input) as one array of its own. */
function join(pieces: Uint8Array[], length: number): Uint8Array {
  if (pieces.length === 1) return pieces[0]!.slice();
  const out = new Uint8Array(length);
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  return out;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") {
    return `a ${value.constructor?.name ?? "object"}`;
  }
  if (typeof value === "string") return `the string ${JSON.stringify(value)}`;
  return `${typeof value} ${String(value)}`;
}
