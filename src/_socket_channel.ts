/**
 * What every {@link ByteChannel} over a socket shares: the count of bytes
 * queued, the waits for them to drain, and how a failure is reported. A
 * class, so that a connection's channel is one object with its methods on
 * the prototype, not a dozen closures: idle connections are mostly this.
 *
 * @module
 */

import type { ByteChannel } from "./byte_channel.ts";
import type { Address } from "./transport.ts";

/** The error of a write to a channel that is closed. */
export const closedError = (): Error =>
  new Error("Cannot write to a closed transport");

/**
 * The base of the runtime transports' channels. A subclass reads, writes
 * (keeping {@link bufferedAmount} up to date and calling {@link settle} when
 * it falls to 0), and calls {@link fail} when a write fails.
 */
export abstract class SocketChannel implements ByteChannel {
  bufferedAmount = 0;
  /** Set by close(): nothing more is read or written. */
  closed = false;
  /** The write failure, once there is one. */
  failure: { error: unknown } | null = null;
  #waiters: PromiseWithResolvers<void>[] | null = null;
  #onWriteError: ((error: unknown) => void) | null = null;

  abstract readonly localAddr: Address | null;
  abstract readonly remoteAddr: Address | null;
  abstract read(): Promise<Uint8Array | null>;
  abstract write(bytes: Uint8Array): void;
  abstract closeWrite(): Promise<void>;
  abstract close(): void;

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
    this.#onWriteError?.(error);
  }
}
