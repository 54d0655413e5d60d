/**
 * Web Streams over a byte channel: what a transport's `readable` and
 * `writable` are, made only when someone asks for them.
 *
 * @module
 */

import type { ByteChannel } from "./byte_channel.ts";

/**
 * Web Streams over a channel, for a transport's `readable` and `writable`:
 * made only when someone asks for them. Cancelling the readable stops
 * reading; closing the writable half-closes; the socket is closed once both
 * are over, or when the writable is aborted.
 *
 * @param channel The channel the streams read and write.
 * @returns The two streams.
 *
 * @example
 * ```ts
 * import { channelOf, streamsOverChannel } from "@wsstream/wsstream/codec";
 * const pipe = new TransformStream<Uint8Array, Uint8Array>();
 * const { readable, writable } = streamsOverChannel(channelOf(pipe));
 * ```
 */
export function streamsOverChannel(channel: ByteChannel): {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
} {
  let readDone = false, writeDone = false;
  const finish = () => readDone && writeDone && channel.close();
  const readable = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const bytes = await channel.read();
      if (readDone) return; // cancelled meanwhile
      if (bytes !== null) return controller.enqueue(bytes);
      readDone = true;
      controller.close();
      finish();
    },
    cancel() {
      readDone = true;
      finish();
    },
  }, { highWaterMark: 0 });
  const writable = new WritableStream<Uint8Array>({
    write(bytes) {
      channel.write(bytes);
      return channel.drained();
    },
    async close() {
      writeDone = true;
      await channel.closeWrite();
      finish();
    },
    abort: () => channel.close(),
  });
  return { readable, writable };
}
