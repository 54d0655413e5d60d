/**
 * The byte channel: how the handshake and the connection read and write a
 * transport. It is a socket's bytes without Web Streams in between: a read is
 * one promise (or none, with a {@link ChannelReader}), a write one call, and
 * an idle connection holds no stream machinery. The runtime transports
 * provide one directly ({@link ByteStream.channel}); any other byte stream (a
 * `takeover` of a pipe or of another library's stream) is adapted from its
 * `readable` and `writable` by `channelOf`.
 *
 * Only interfaces: the bottom of the channel layer, which everything else in
 * it (the socket channels, the stream adapter, the transports) implements or
 * uses, so that none of them needs to ask what class a channel is.
 *
 * @module
 */

import type { Address } from "./address.ts";

/**
 * Told the result of one read without a promise (see
 * {@link ByteChannel.readTo}): a connection is its own reader, so an idle
 * one waiting for bytes holds no promise, resolvers or reaction.
 *
 * @example Read once, into a promise
 * ```ts
 * import { type ChannelReader, channelOf } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const channel = channelOf(new TransformStream<Uint8Array, Uint8Array>());
 * channel.write(new Uint8Array([1, 2]));
 * const bytes = await new Promise<Uint8Array | null>((resolve, reject) => {
 *   const reader: ChannelReader = { received: resolve, failed: reject };
 *   channel.readTo(reader);
 * });
 * assert.deepEqual(bytes, new Uint8Array([1, 2]));
 * channel.close();
 * ```
 */
export interface ChannelReader {
  /**
   * The bytes read, or `null` at the end of the stream.
   *
   * @param bytes The bytes, or `null` at the end.
   */
  received(bytes: Uint8Array | null): void;
  /**
   * The read failed (the socket was reset, a write failed).
   *
   * @param error Why.
   */
  failed(error: unknown): void;
  /**
   * Where the channel should read the next bytes into, if it can read into
   * a buffer of the reader's choosing (Deno's can; Bun's hands over its
   * own): a view that `received` then gets back filled from its start, or
   * `null` (or no such method) for a buffer of the channel's own. A
   * connection offers the rest of a large message's buffer, which saves
   * copying it there.
   *
   * @returns The view to read into, or `null`.
   */
  nextBuffer?(): Uint8Array | null;
}

/**
 * Told when a write fails (see {@link ByteChannel.tellWriteFailures}): an
 * object with a method, so that a connection registers itself without
 * making a closure.
 *
 * @example Count the failures of a stream that refuses every write
 * ```ts
 * import { channelOf, type WriteFailureListener } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const refused = new Error("refused");
 * const channel = channelOf({
 *   readable: new ReadableStream(),
 *   writable: new WritableStream({ write: () => Promise.reject(refused) }),
 * });
 * const failures: unknown[] = [];
 * const listener: WriteFailureListener = {
 *   writeFailed: (error) => void failures.push(error),
 * };
 * channel.tellWriteFailures(listener);
 * channel.write(new Uint8Array([1]));
 * await assert.rejects(channel.drained(), refused);
 * assert.deepEqual(failures, [refused]);
 * ```
 */
export interface WriteFailureListener {
  /**
   * A write failed: the socket is gone.
   *
   * @param error Why the write failed.
   */
  writeFailed(error: unknown): void;
}

/**
 * A connected byte channel: pull reads, queued writes with a byte count for
 * backpressure, half-close and close.
 *
 * @example Echo whatever arrives
 * ```ts
 * import { type ByteChannel, channelOf } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * async function echo(channel: ByteChannel) {
 *   for (let bytes; (bytes = await channel.read()) !== null;) {
 *     channel.write(bytes);
 *     if (channel.bufferedAmount > 65_536) await channel.drained();
 *   }
 *   await channel.closeWrite();
 * }
 *
 * // An echo over two pipes: what the peer writes comes back to it.
 * const toEcho = new TransformStream<Uint8Array, Uint8Array>();
 * const fromEcho = new TransformStream<Uint8Array, Uint8Array>();
 * const echoing = echo(
 *   channelOf({ readable: toEcho.readable, writable: fromEcho.writable }),
 * );
 * const peer = channelOf({
 *   readable: fromEcho.readable,
 *   writable: toEcho.writable,
 * });
 * peer.write(new Uint8Array([1, 2, 3]));
 * assert.deepEqual(await peer.read(), new Uint8Array([1, 2, 3]));
 * await peer.closeWrite();
 * await echoing;
 * assert.equal(await peer.read(), null);
 * peer.close();
 * ```
 */
export interface ByteChannel {
  /**
   * The next bytes received, or `null` at the end of the stream (also once
   * the channel is closed). One read at a time (this or {@link readTo}).
   * Rejects when the socket failed (a reset, a failed write).
   *
   * @returns The bytes, or `null` at the end.
   */
  read(): Promise<Uint8Array | null>;
  /**
   * Like {@link read}, but tells `reader` (once, and never before this
   * returns) instead of settling a promise: a connection is its own reader,
   * so reading makes no promise of its own. One read at a time.
   *
   * @param reader Told the bytes, the end (`null`) or the failure.
   */
  readTo(reader: ChannelReader): void;
  /**
   * Queues bytes to send, in order, and starts sending them. The bytes must
   * not be changed afterwards, unless {@link handedOff} says the channel no
   * longer holds them.
   *
   * @param bytes The bytes to send.
   * @throws {Error} once the channel is closed or has failed.
   */
  write(bytes: Uint8Array): void;
  /** Bytes queued by {@link write} and not yet taken by the socket. */
  readonly bufferedAmount: number;
  /**
   * Whether every byte written so far has been handed to the operating
   * system (copied into the socket's kernel buffer): the channel then holds
   * none of the buffers given to {@link write}, and their writer may reuse
   * them (the connection reuses its frame buffer so). Read it right after a
   * write. Always `false` on a channel over streams, whose writable may
   * still hold the bytes however much it has acknowledged, and on a closed
   * channel.
   */
  readonly handedOff: boolean;
  /**
   * Resolves once every queued byte is taken by the socket; rejects when
   * the socket failed or was closed first.
   *
   * @returns When nothing is queued.
   */
  drained(): Promise<void>;
  /**
   * Sends the queued bytes, then a FIN (half-close); reading goes on.
   * Rejects when the socket fails first.
   *
   * @returns When the FIN is sent.
   */
  closeWrite(): Promise<void>;
  /** Closes the socket at once, discarding anything unsent. Idempotent. */
  close(): void;
  /**
   * Registers the one listener told when a write fails, so that a
   * connection nobody reads still learns its socket is gone. A later call
   * replaces it.
   *
   * @param listener Told of the first write failure.
   */
  tellWriteFailures(listener: WriteFailureListener): void;
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
 * import type { ByteStream } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const pipe = new TransformStream<Uint8Array, Uint8Array>();
 * const stream: ByteStream = { readable: pipe.readable, writable: pipe.writable };
 * assert.equal(stream.channel, undefined);
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
