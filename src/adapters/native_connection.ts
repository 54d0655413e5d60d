/**
 * `NativeConnection`: a runtime's own server WebSocket (under `Deno.serve`
 * or `Bun.serve`) in our connection's shape, `PortableConnection`, so that
 * one handler runs under our `serve` and under the runtime's server alike.
 * The adapters (`deno_serve.ts`, `bun_serve.ts`) feed it the native
 * socket's events; it never names a runtime.
 *
 * @module
 */

import type { Address } from "../address.ts";
import type { CloseInfo } from "../_connection_end.ts";
import type {
  CloseOptions,
  ConnectionInfo,
  ConnectionState,
  Sendable,
  SendOptions,
} from "../connection_options.ts";
import { encodeClosePayload } from "../close.ts";
import { ConnectionClosedError } from "../errors.ts";
import type { Message } from "../protocol.ts";
import type { ServerRequest } from "../server.ts";

/**
 * What a handler may use of a connection and find under our `serve` and
 * the runtimes' own servers alike: iteration, `readable`, `send`, `close`,
 * `closed`, `info`, `protocol` and `data`. A `WebSocketConnection` is one;
 * so is the adapters' `NativeConnection`. Type a handler with it to run it
 * on both (see `PortableHandler`).
 *
 * @typeParam Data What `onUpgrade` attached.
 *
 * @example
 * ```ts
 * import type { PortableConnection } from "@wsstream/wsstream";
 * async function echo(connection: PortableConnection) {
 *   for await (const message of connection) await connection.send(message);
 * }
 * ```
 */
export interface PortableConnection<Data = unknown>
  extends AsyncIterable<Message> {
  /** What `onUpgrade` attached (`undefined` for none). */
  readonly data: Data;
  /** The agreed subprotocol ("" for none). */
  readonly protocol: string;
  /** Addresses, state, path and counts. */
  readonly info: ConnectionInfo;
  /** Resolves (never rejects) once the connection has ended. */
  readonly closed: Promise<CloseInfo>;
  /** The messages received, as a stream. */
  readonly readable: ReadableStream<Message>;
  /** Sends a message (see `WebSocketConnection.send`). */
  send(message: Sendable, options?: SendOptions): Promise<void>;
  /** Starts the close handshake; resolves as `closed` does. */
  close(options?: CloseOptions): Promise<CloseInfo>;
}

/**
 * A handler that runs under our `serve`, a `Router`, and the `Deno.serve`
 * and `Bun.serve` adapters alike.
 *
 * @typeParam Data What `onUpgrade` attached.
 *
 * @example
 * ```ts
 * import type { PortableHandler } from "@wsstream/wsstream";
 * const echo: PortableHandler = async (connection) => {
 *   for await (const message of connection) await connection.send(message);
 * };
 * ```
 */
export type PortableHandler<Data = unknown> = (
  connection: PortableConnection<Data>,
  request: ServerRequest,
) => void | Promise<void>;

/** What a runtime's native server socket must do for a `NativeConnection`. */
export interface NativeSocket {
  /** Sends one whole message; resolves once the runtime takes more. */
  send(message: string | Uint8Array): void | Promise<void>;
  /** Sends a close frame. */
  close(code: number, reason: string): void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * A runtime's native server WebSocket as a {@link PortableConnection}. The
 * adapters make it and call `received` and `ended` with the socket's
 * events; applications only use it through `PortableConnection`.
 *
 * @typeParam Data What `onUpgrade` attached.
 *
 * @example Fed by hand, as an adapter feeds it
 * ```ts
 * import { NativeConnection } from "@wsstream/wsstream/bun-serve";
 * import assert from "node:assert/strict";
 *
 * const sent: unknown[] = [];
 * const connection = new NativeConnection({
 *   send: (message) => void sent.push(message),
 *   close: () => {},
 * }, { protocol: "", path: "/", remoteAddr: null, data: undefined });
 * connection.received("hi");
 * for await (const message of connection) {
 *   await connection.send(message);
 *   break;
 * }
 * connection.ended(1000, "", true);
 * assert.deepEqual(sent, ["hi"]);
 * assert.equal((await connection.closed).closeCode, 1000);
 * ```
 */
export class NativeConnection<Data = unknown>
  implements PortableConnection<Data> {
  /** What `onUpgrade` attached (`undefined` for none). */
  readonly data: Data;
  /** The agreed subprotocol ("" for none). */
  readonly protocol: string;
  /** Resolves (never rejects) once the connection has ended. */
  readonly closed: Promise<CloseInfo>;
  readonly #socket: NativeSocket;
  readonly #path: string;
  readonly #remoteAddr: Address | null;
  #state: ConnectionState = "open";
  #inbox: Message[] = [];
  #waiting: (() => void) | null = null;
  #sent: { closeCode: number; reason: string } | null = null;
  #end: CloseInfo | null = null;
  #resolveClosed!: (info: CloseInfo) => void;
  #counts = {
    bytesReceived: 0,
    bytesSent: 0,
    messagesReceived: 0,
    messagesSent: 0,
  };
  #readable: ReadableStream<Message> | null = null;

  /**
   * Wraps a native socket.
   *
   * @param socket The native socket's send and close.
   * @param setup The agreed subprotocol, the request path, the peer, the data.
   */
  constructor(
    socket: NativeSocket,
    setup: {
      protocol: string;
      path: string;
      remoteAddr: Address | null;
      data: Data;
    },
  ) {
    this.#socket = socket;
    this.protocol = setup.protocol;
    this.#path = setup.path;
    this.#remoteAddr = setup.remoteAddr;
    this.data = setup.data;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  /** Where the connection stands, its addresses, path and counts. */
  get info(): ConnectionInfo {
    return {
      role: "server",
      state: this.#state,
      localAddr: null,
      remoteAddr: this.#remoteAddr,
      protocol: this.protocol,
      extensions: [],
      path: this.#path,
      ...this.#counts,
    };
  }

  /** The messages received; ends after a clean close, throws after another. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Message, void, undefined> {
    try {
      while (true) {
        const message = this.#inbox.shift();
        if (message !== undefined) {
          yield message;
          continue;
        }
        if (this.#end !== null) {
          if (this.#end.wasClean) return;
          throw new ConnectionClosedError(
            `The connection closed uncleanly: close code ${this.#end.closeCode}`,
            this.#end,
          );
        }
        await new Promise<void>((resolve) => (this.#waiting = resolve));
      }
    } finally {
      // Leaving the loop early closes the connection, as ours does.
      if (this.#state === "open") void this.close();
    }
  }

  /** The messages received, as a stream. */
  get readable(): ReadableStream<Message> {
    return this.#readable ??= ReadableStream.from(this);
  }

  /**
   * Sends a message whole (a stream or iterable is gathered first: native
   * sockets cannot send fragments).
   *
   * @param message What to send.
   * @param options `type` forces text or binary.
   * @returns Resolves once the runtime took it.
   */
  async send(message: Sendable, options: SendOptions = {}): Promise<void> {
    if (this.#state !== "open") {
      throw new ConnectionClosedError(
        `Cannot send on a ${this.#state} connection`,
        this.#end ?? { closeCode: 1006, reason: "", wasClean: false },
      );
    }
    let payload = await gather(message);
    if (options.type === "binary" && typeof payload === "string") {
      payload = encoder.encode(payload);
    } else if (options.type === "text" && typeof payload !== "string") {
      payload = decoder.decode(payload);
    }
    this.#counts.messagesSent++;
    this.#counts.bytesSent += typeof payload === "string"
      ? encoder.encode(payload).length
      : payload.length;
    await this.#socket.send(payload);
  }

  /**
   * Sends a close frame (default 1000) and resolves once the connection
   * has ended.
   *
   * @param options The close code and reason.
   * @returns Its close info.
   */
  close(options: CloseOptions = {}): Promise<CloseInfo> {
    const closeCode = options.closeCode ?? 1000;
    const reason = options.reason ?? "";
    encodeClosePayload(closeCode, reason); // throws RangeError at the call
    if (this.#state === "open") {
      this.#state = "closing";
      this.#sent = { closeCode, reason };
      this.#socket.close(closeCode, reason);
    }
    return this.closed;
  }

  /**
   * Internal (the adapters'): a message arrived.
   *
   * @param message The message.
   */
  received(message: Message): void {
    this.#counts.messagesReceived++;
    this.#counts.bytesReceived += typeof message === "string"
      ? encoder.encode(message).length
      : message.length;
    this.#inbox.push(message);
    this.#wake();
  }

  /**
   * Internal (the adapters'): the socket closed.
   *
   * @param closeCode The code the runtime reports.
   * @param reason Its reason.
   * @param wasClean Whether the close handshake completed.
   */
  ended(closeCode: number, reason: string, wasClean: boolean): void {
    if (this.#end !== null) return;
    this.#state = "closed";
    this.#end = {
      closeCode,
      reason,
      wasClean,
      sent: this.#sent,
      received: wasClean ? { closeCode, reason } : null,
    };
    this.#resolveClosed(this.#end);
    this.#wake();
  }

  #wake(): void {
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.();
  }
}

/** A message to send, whole. */
async function gather(message: Sendable): Promise<string | Uint8Array> {
  if (typeof message === "string") return message;
  if (message instanceof Uint8Array) return message;
  if (message instanceof ArrayBuffer) return new Uint8Array(message);
  if (ArrayBuffer.isView(message)) {
    return new Uint8Array(
      message.buffer,
      message.byteOffset,
      message.byteLength,
    );
  }
  const parts: (string | Uint8Array)[] = [];
  for await (const part of message as AsyncIterable<string | Uint8Array>) {
    parts.push(part);
  }
  if (parts.every((part) => typeof part === "string")) return parts.join("");
  const bytes = parts.map((part) =>
    typeof part === "string" ? encoder.encode(part) : part
  );
  const whole = new Uint8Array(bytes.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of bytes) {
    whole.set(part, offset);
    offset += part.length;
  }
  return whole;
}
