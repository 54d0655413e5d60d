/**
 * The channel of any byte stream: a runtime transport's own, or one adapted
 * from a readable/writable pair (a `takeover` of a pipe or of another
 * library's stream).
 *
 * @module
 */

import type { Address } from "./address.ts";
import type {
  ByteChannel,
  ByteStream,
  ChannelReader,
  WriteFailureListener,
} from "./byte_channel.ts";
import {
  checkWritable,
  drainedNow,
  type DrainWaiter,
  settleDrains,
  waitForDrain,
  type WriteFailure,
} from "./_drain_waiters.ts";

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
 * import { channelOf } from "@wsstream/wsstream/codec";
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
class StreamChannel implements ByteChannel {
  bufferedAmount = 0;
  /** Set by close(): nothing more is read or written. */
  closed = false;
  /** The write failure, once there is one. */
  failure: WriteFailure | null = null;
  readonly localAddr: Address | null;
  readonly remoteAddr: Address | null;
  readonly #source: ByteStream;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  #waiters: DrainWaiter[] | null = null;
  #failureListener: WriteFailureListener | null = null;

  constructor(source: ByteStream) {
    this.localAddr = source.localAddr ?? null;
    this.remoteAddr = source.remoteAddr ?? null;
    this.#source = source;
    this.#reader = source.readable.getReader();
    this.#writer = source.writable.getWriter();
  }

  async read(): Promise<Uint8Array | null> {
    const { value, done } = await this.#reader.read();
    return done ? null : value;
  }

  readTo(reader: ChannelReader): void {
    this.#reader.read().then(
      ({ value, done }) => reader.received(done ? null : value),
      (error) => reader.failed(error),
    );
  }

  write(bytes: Uint8Array): void {
    checkWritable(this);
    this.bufferedAmount += bytes.length;
    this.#writer.write(bytes).then(() => {
      this.bufferedAmount -= bytes.length;
      this.#settle();
    }, (error) => this.#fail(error));
  }

  /**
   * Never: a writable may hold the bytes after it acknowledged them (a
   * `TransformStream` hands the very same buffer to its reader).
   */
  get handedOff(): boolean {
    return false;
  }

  drained(): Promise<void> {
    return drainedNow(this) ?? waitForDrain(this.#waiters ??= []);
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
    this.#settle();
  }

  tellWriteFailures(listener: WriteFailureListener): void {
    this.#failureListener = listener;
  }

  #settle(): void {
    const waiters = this.#waiters;
    if (waiters !== null && settleDrains(this, waiters)) this.#waiters = null;
  }

  #fail(error: unknown): void {
    if (this.failure !== null) return;
    this.failure = { error };
    this.close();
    this.#settle();
    this.#failureListener?.writeFailed(error);
  }
}
