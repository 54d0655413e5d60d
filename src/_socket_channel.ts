/**
 * What every {@link ByteChannel} over a socket shares: the count of bytes
 * queued, the waits for them to drain, and how a failure is reported. A
 * class, so that a connection's channel is one object with its methods on
 * the prototype, not a dozen closures: idle connections are mostly this.
 *
 * @module
 */

import type { ByteChannel } from "./byte_channel.ts";
import { streamsOverChannel } from "./channel_streams.ts";
import type { Address, Transport } from "./transport.ts";

/**
 * Told the result of one read without a promise (see
 * {@link SocketChannel.readTo}): a connection is its own reader, so an idle
 * one waiting for bytes holds no promise, resolvers or reaction.
 */
export interface ChannelReader {
  /** The bytes read, or `null` at the end of the stream. */
  received(bytes: Uint8Array | null): void;
  /** The read failed (the socket was reset, a write failed). */
  failed(error: unknown): void;
}

/**
 * Told when a write fails (see {@link SocketChannel.tellWriteFailures}): an
 * object with a method, so that a connection registers itself without
 * making a closure.
 */
export interface WriteFailureListener {
  /** A write failed: the socket is gone. */
  writeFailed(error: unknown): void;
}

type Streams = ReturnType<typeof streamsOverChannel>;
/** The streams of the socket channels asked for them (see `#streams`). */
const streamsOf = new WeakMap<SocketChannel, Streams>();

/** The error of a write to a channel that is closed. */
export const closedError = (): Error =>
  new Error("Cannot write to a closed transport");

/**
 * The base of the runtime transports' channels. A subclass reads, writes
 * (keeping {@link bufferedAmount} up to date and calling {@link settle} when
 * it falls to 0), and calls {@link fail} when a write fails.
 */
export abstract class SocketChannel implements ByteChannel, Transport {
  bufferedAmount = 0;
  /** Set by close(): nothing more is read or written. */
  closed = false;
  /** The write failure, once there is one. */
  failure: { error: unknown } | null = null;
  #waiters: PromiseWithResolvers<void>[] | null = null;
  #onWriteError: ((error: unknown) => void) | WriteFailureListener | null =
    null;

  abstract readonly localAddr: Address | null;
  abstract readonly remoteAddr: Address | null;
  abstract write(bytes: Uint8Array): void;
  abstract closeWrite(): Promise<void>;
  abstract close(): void;

  /**
   * The next bytes, as a promise: {@link readTo} with a reader that settles
   * it. A subclass implements `readTo`, or overrides this and inherits a
   * `readTo` made from it (it must do one or the other).
   */
  read(): Promise<Uint8Array | null> {
    return new Promise((resolve, reject) =>
      this.readTo({ received: resolve, failed: reject })
    );
  }

  /**
   * Like {@link read}, but tells `reader` (once, and never before this
   * returns) instead of settling a promise. One read at a time.
   */
  readTo(reader: ChannelReader): void {
    this.read().then(
      (bytes) => reader.received(bytes),
      (error) => reader.failed(error),
    );
  }

  // A socket's channel is its transport too (one object per socket, not
  // two): its streams are made only when someone asks for them.

  /** This channel, for {@link Transport.channel}. */
  get channel(): ByteChannel {
    return this;
  }

  /** Bytes received, as a stream (made on first use). */
  get readable(): ReadableStream<Uint8Array> {
    return this.#streams.readable;
  }

  /** Bytes to send, as a stream (made on first use). */
  get writable(): WritableStream<Uint8Array> {
    return this.#streams.writable;
  }

  // Kept aside, not in a field: few channels are ever asked for streams,
  // and one field less keeps a Bun connection's channel in a smaller size
  // class of JavaScriptCore's heap (160 bytes instead of 224).
  get #streams(): Streams {
    let streams = streamsOf.get(this);
    if (streams === undefined) {
      streams = streamsOverChannel(this);
      streamsOf.set(this, streams);
    }
    return streams;
  }

  drained(): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure.error);
    if (this.bufferedAmount === 0) return Promise.resolve();
    if (this.closed) return Promise.reject(closedError());
    const waiter = Promise.withResolvers<void>();
    (this.#waiters ??= []).push(waiter);
    return waiter.promise;
  }

  onWriteError(callback: (error: unknown) => void): void {
    this.#onWriteError = callback;
  }

  /** Like {@link onWriteError}, with a listener object instead. */
  tellWriteFailures(listener: WriteFailureListener): void {
    this.#onWriteError = listener;
  }

  /** Throws unless a write may be queued. */
  protected checkWritable(): void {
    if (this.failure !== null) throw this.failure.error;
    if (this.closed) throw closedError();
  }

  /** Settles the waits for a drain once nothing is queued, or it never will be. */
  protected settle(): void {
    const waiters = this.#waiters;
    if (waiters === null) return;
    if (this.bufferedAmount > 0 && this.failure === null && !this.closed) {
      return;
    }
    this.#waiters = null;
    for (const waiter of waiters) {
      if (this.failure !== null) waiter.reject(this.failure.error);
      else if (this.bufferedAmount > 0) waiter.reject(closedError());
      else waiter.resolve();
    }
  }

  /** A write failed: the socket is over (closed), and whoever waits is told. */
  protected fail(error: unknown): void {
    if (this.failure !== null) return;
    this.failure = { error };
    this.close();
    this.settle();
    const listener = this.#onWriteError;
    if (typeof listener === "function") listener(error);
    else listener?.writeFailed(error);
  }
}
