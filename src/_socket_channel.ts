/**
 * What every {@link ByteChannel} over a runtime's socket shares: the count
 * of bytes queued, the waits for them to drain, how a failure is reported,
 * and being the socket's transport too. A class, so that a connection's
 * channel is one object with its methods on the prototype, not a dozen
 * closures: idle connections are mostly this.
 *
 * @module
 */

import type { Address } from "./address.ts";
import type {
  ByteChannel,
  ChannelReader,
  WriteFailureListener,
} from "./byte_channel.ts";
import { streamsOverChannel } from "./channel_streams.ts";
import type { Transport } from "./transport.ts";
import {
  checkWritable,
  drainedNow,
  type DrainWaiter,
  settleDrains,
  waitForDrain,
  type WriteFailure,
} from "./_drain_waiters.ts";

type Streams = ReturnType<typeof streamsOverChannel>;
/** The streams of the socket channels asked for them (see `#streams`). */
const streamsOf = new WeakMap<SocketChannel, Streams>();

/**
 * The base of the runtime transports' channels. A subclass reads (with
 * {@link readTo}), writes (keeping {@link bufferedAmount} up to date and
 * calling {@link settle} when it falls to 0), and calls {@link fail} when a
 * write fails.
 */
export abstract class SocketChannel implements ByteChannel, Transport {
  bufferedAmount = 0;
  /** Set by close(): nothing more is read or written. */
  closed = false;
  /** The write failure, once there is one. */
  failure: WriteFailure | null = null;
  #waiters: DrainWaiter[] | null = null;
  #failureListener: WriteFailureListener | null = null;

  abstract readonly localAddr: Address | null;
  abstract readonly remoteAddr: Address | null;
  abstract readTo(reader: ChannelReader): void;
  abstract write(bytes: Uint8Array): void;
  abstract closeWrite(): Promise<void>;
  abstract close(): void;

  /** The next bytes, as a promise: {@link readTo} with a reader that settles it. */
  read(): Promise<Uint8Array | null> {
    return new Promise((resolve, reject) =>
      this.readTo({ received: resolve, failed: reject })
    );
  }

  /**
   * Nothing queued: the socket took every byte (copied it into the kernel),
   * and this channel holds none of the written buffers.
   */
  get handedOff(): boolean {
    return this.bufferedAmount === 0 && !this.closed;
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
  // and every field counts toward a Bun socket's channel's size class in
  // JavaScriptCore's heap (12 fields with BunChannel's: 112 bytes; see
  // RareSocketState in src/transports/bun.ts).
  get #streams(): Streams {
    let streams = streamsOf.get(this);
    if (streams === undefined) {
      streams = streamsOverChannel(this);
      streamsOf.set(this, streams);
    }
    return streams;
  }

  drained(): Promise<void> {
    return drainedNow(this) ?? waitForDrain(this.#waiters ??= []);
  }

  tellWriteFailures(listener: WriteFailureListener): void {
    this.#failureListener = listener;
  }

  /** Throws unless a write may be queued. */
  protected checkWritable(): void {
    checkWritable(this);
  }

  /** Settles the waits for a drain once nothing is queued, or it never will be. */
  protected settle(): void {
    const waiters = this.#waiters;
    if (waiters !== null && settleDrains(this, waiters)) this.#waiters = null;
  }

  /** A write failed: the socket is over (closed), and whoever waits is told. */
  protected fail(error: unknown): void {
    if (this.failure !== null) return;
    this.failure = { error };
    this.close();
    this.settle();
    this.#failureListener?.writeFailed(error);
  }
}
