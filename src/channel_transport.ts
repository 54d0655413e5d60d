/**
 * A transport over any byte channel, whose Web Streams are made only when
 * someone asks for them.
 *
 * @module
 */

import type { Address } from "./address.ts";
import type { ByteChannel } from "./byte_channel.ts";
import { streamsOverChannel } from "./channel_streams.ts";
import type { Transport } from "./transport.ts";

/**
 * A transport over a channel, whose streams are made on first use: wsstream
 * itself reads and writes the channel, so a connection never pays for
 * streams nobody uses. (The runtime transports' channels are their own
 * transports, the same way.)
 *
 * @example
 * ```ts
 * import { ChannelTransport, channelOf } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const pipe = new TransformStream<Uint8Array, Uint8Array>();
 * const transport = new ChannelTransport(channelOf(pipe));
 * assert.equal(channelOf(transport), transport.channel);
 * transport.close();
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
