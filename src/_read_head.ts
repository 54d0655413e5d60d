/**
 * Reads one HTTP head off a byte stream: the only I/O the client and the
 * server share before the WebSocket protocol takes over.
 *
 * @module
 */

import type { ByteChannel } from "./byte_channel.ts";
import { HandshakeError } from "./errors.ts";
import { type HeadLimits, HeadParser } from "./http1.ts";

/**
 * Reads until a whole HTTP head has arrived and returns it with the bytes
 * read past it. Aborting `signal` cancels the pending read.
 *
 * @param channel Where the bytes come from.
 * @param limits Head size limits (refused with 431).
 * @param signal Stops the wait (handshake timeout, caller's abort). Without
 * one, the wait ends only when the channel does (the server keeps its
 * deadlines itself, and closes the channel when one passes).
 * @returns The head and the bytes after it.
 * @throws {HandshakeError} 400 when the stream ends first; the parser's
 * errors; the signal's reason when aborted.
 */
export async function readHead(
  channel: ByteChannel,
  limits: Partial<HeadLimits> | undefined,
  signal?: AbortSignal,
): Promise<{ head: Uint8Array; rest: Uint8Array }> {
  const parser = new HeadParser(limits);
  if (signal === undefined) {
    while (true) {
      const result = parser.push(headBytes(await channel.read()));
      if (result !== null) return result;
    }
  }
  signal.throwIfAborted();
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  aborted.catch(() => {});
  try {
    while (true) {
      const bytes = await Promise.race([channel.read(), aborted]);
      const result = parser.push(headBytes(bytes));
      if (result !== null) return result;
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/** The bytes read, or the refusal of a stream that ended inside the head. */
function headBytes(bytes: Uint8Array | null): Uint8Array {
  if (bytes === null) {
    throw new HandshakeError(
      "Connection closed before the HTTP head was complete",
      400,
    );
  }
  return bytes;
}
