/**
 * The byte channel: how the handshake and the connection read and write a
 * transport. It is a socket's bytes without Web Streams in between: a read is
 * one promise, a write one call, and an idle connection holds no stream
 * machinery. The runtime transports provide one directly
 * ({@link Transport.channel}); any other byte stream (a `takeover` of a pipe
 * or of another library's stream) is adapted from its `readable` and
 * `writable` by {@link channelOf}.
 *
 * @module
 */

import { SocketChannel } from "./_socket_channel.ts";
import { streamsOverChannel } from "./channel_streams.ts";
import type { Address, Transport } from "./transport.ts";

export { streamsOverChannel };

/**
 * A connected byte channel: pull reads, queued writes with a byte count for
 * backpressure, half-close and close.
 *
 * @example Echo whatever arrives
 * ```ts
 * import type { ByteChannel } from "@wsstream/wsstream";
 *
 * async function echo(channel: ByteChannel) {
 *   for (let bytes; (bytes = await channel.read()) !== null;) {
 *     channel.write(bytes);
 *     if (channel.bufferedAmount > 65_536) await channel.drained();
 *   }
 *   await channel.closeWrite();
 * }
 * ```
 */
export interface ByteChannel {
  /**
   * The next bytes received, or `null` at the end of the stream (also once
   * the channel is closed). One read at a time. Rejects when the socket
   * failed (a reset, a failed write).
   */
  read(): Promise<Uint8Array | null>;
  /**
   * Queues bytes to send, in order, and starts sending them. The bytes must
   * not be changed afterwards.
   *
   * @throws {Error} once the channel is closed or has failed.
   */
  write(bytes: Uint8Array): void;
  /** Bytes queued by {@link write} and not yet taken by the socket. */
  readonly bufferedAmount: number;
  /**
   * Resolves once every queued byte is taken by the socket; rejects when
   * the socket failed or was closed first.
   */
  drained(): Promise<void>;
  /**
   * Sends the queued bytes, then a FIN (half-close); reading goes on.
   * Rejects when the socket fails first.
   */
  closeWrite(): Promise<void>;
  /** Closes the socket at once, discarding anything unsent. Idempotent. */
  close(): void;
  /**
   * Registers the one callback told when a write fails, so that a
   * connection nobody reads still learns its socket is gone.
   */
  onWriteError(callback: (error: unknown) => void): void;
  /** The local address, or `null` when not on a network socket. */
  readonly localAddr: Address | null;
  /** The peer's address, or `null` when not on a network socket. */
  readonly remoteAddr: Address | null;
}

/**
 * A byte stream to run a connection over: any readable/writable pair, with
 * `close()` and addresses when it is a socket, and a {@link ByteChannel}
 * when it has one (a runtime transport).
 *
 * @example
 * ```ts
 * import type { ByteStream } from "@wsstream/wsstream";
 * const pipe = new TransformStream<Uint8Array, Uint8Array>();
 * const stream: ByteStream = { readable: pipe.readable, writable: pipe.writable };
 * ```
 */
export interface ByteStream {
  /** Bytes from the peer (used when there is no `channel`). */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes to the peer (used when there is no `channel`). */
  readonly writable: WritableStream<Uint8Array>;
  /** The same bytes without streams, when the stream has them. */
  readonly channel?: ByteChannel | undefined;
  /** Drops the underlying connection at once. */
  readonly close?: (() => void) | undefined;
  /** The local address, if any. */
  readonly localAddr?: Address | null | undefined;
  /** The peer's address, if any. */
  readonly remoteAddr?: Address | null | undefined;
}

const adapted = new WeakMap<object, ByteChannel>();

/**
 * The channel of a byte stream: its own when it has one, else one adapted
 * from its `readable` and `writable` (made once per stream and kept, so the
 * handshake and the connection after it share the same stream locks).
 *
 * @param source A transport or any readable/writable pair.
 * @returns The channel to read and write it through.
 *
 * @example
 * ```ts
 * import { channelOf } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 *
 * const pipe = new TransformStream<Uint8Array, Uint8Array>();
 * const channel = channelOf(pipe);
 * channel.write(new Uint8Array([1, 2, 3]));
 * assert.deepEqual(await channel.read(), new Uint8Array([1, 2, 3]));
 * channel.close();
 * ```
 */
export function channelOf(source: ByteStream): ByteChannel {
  if (source.channel) return source.channel;
  let channel = adapted.get(source);
  if (channel === undefined) {
    channel = new StreamChannel(source);
    adapted.set(source, channel);
  }
  return channel;
}

/** A channel over a readable/writable pair; it holds both streams' locks. */
class StreamChannel extends SocketChannel {
  readonly #source: ByteStream;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;

  readonly localAddr: Address | null;
  readonly remoteAddr: Address | null;

  constructor(source: ByteStream) {
    super();
    this.localAddr = source.localAddr ?? null;
    this.remoteAddr = source.remoteAddr ?? null;
    this.#source = source;
    this.#reader = source.readable.getReader();
    this.#writer = source.writable.getWriter();
  }

  override async read(): Promise<Uint8Array | null> {
    const { value, done } = await this.#reader.read();
    return done ? null : value;
  }

  write(bytes: Uint8Array): void {
    this.checkWritable();
    this.bufferedAmount += bytes.length;
    this.#writer.write(bytes).then(() => {
      this.bufferedAmount -= bytes.length;
      this.settle();
    }, (error) => this.fail(error));
  }

  closeWrite(): Promise<void> {
    return this.#writer.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.#reader.cancel().catch(() => {});
    this.#writer.abort().catch(() => {});
    this.#source.close?.();
    this.settle();
  }
}

/**
 * A transport over a channel, whose streams are made on first use: wsstream
 * itself reads and writes the channel, so a connection never pays for
 * streams nobody uses. What a runtime transport returns.
 *
 * @example
 * ```ts
 * import { ChannelTransport, channelOf } from "@wsstream/wsstream";
 * const pipe = new TransformStream<Uint8Array, Uint8Array>();
 * const transport = new ChannelTransport(channelOf(pipe));
 * ```
 */
export class ChannelTransport implements Transport {
  #streams: ReturnType<typeof streamsOverChannel> | null = null;

  /**
   * Wraps a channel.
   *
   * @param channel The socket's channel, also the transport's `channel`.
   */
  constructor(readonly channel: ByteChannel) {}

  /** Bytes received, as a stream (made on first use). */
  get readable(): ReadableStream<Uint8Array> {
    return (this.#streams ??= streamsOverChannel(this.channel)).readable;
  }

  /** Bytes to send, as a stream (made on first use). */
  get writable(): WritableStream<Uint8Array> {
    return (this.#streams ??= streamsOverChannel(this.channel)).writable;
  }

  /** Closes the socket at once. */
  close(): void {
    this.channel.close();
  }

  /** The local address. */
  get localAddr(): Address | null {
    return this.channel.localAddr;
  }

  /** The peer's address. */
  get remoteAddr(): Address | null {
    return this.channel.remoteAddr;
  }
}
