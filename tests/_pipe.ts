/**
 * An in-memory pipe between two byte-stream ends, for connection tests
 * without sockets (after coder/websocket's wstest.Pipe).
 */
import type { ByteStream } from "../src/connection.ts";

/** Options for {@link pipe}. */
export interface PipeOptions {
  /** Queue size (in bytes) of each direction before writes wait: backpressure. */
  highWaterMark?: number;
}

/** A duplex pipe: what one end writes, the other reads. */
export function pipe(options: PipeOptions = {}): [ByteStream, ByteStream] {
  const hwm = options.highWaterMark ?? 64 * 1024;
  const strategy = new ByteLengthQueuingStrategy({ highWaterMark: hwm });
  const aToB = new TransformStream<Uint8Array, Uint8Array>(
    {},
    strategy,
    strategy,
  );
  const bToA = new TransformStream<Uint8Array, Uint8Array>(
    {},
    strategy,
    strategy,
  );
  const end = (
    readable: ReadableStream<Uint8Array>,
    writable: WritableStream<Uint8Array>,
  ): ByteStream => {
    let closed = false;
    return {
      readable,
      writable,
      close() {
        if (closed) return;
        closed = true;
        // Dropping one end ends both directions, as a socket does.
        readable.cancel().catch(() => {});
        writable.abort().catch(() => {});
      },
    };
  };
  return [end(bToA.readable, aToB.writable), end(aToB.readable, bToA.writable)];
}
