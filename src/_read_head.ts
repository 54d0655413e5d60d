/**
 * Reads one HTTP head off a byte stream: the only I/O the client and the
 * server share before the WebSocket protocol takes over.
 *
 * @module
 */

import { HandshakeError } from "./errors.ts";
import { type HeadLimits, HeadParser } from "./http1.ts";

/**
 * Reads until a whole HTTP head has arrived and returns it with the bytes
 * read past it. Aborting `signal` cancels the pending read.
 *
 * @param reader Where the bytes come from; left unlocked to the caller.
 * @param limits Head size limits (refused with 431).
 * @param signal Stops the wait (handshake timeout, caller's abort).
 * @returns The head and the bytes after it.
 * @throws {HandshakeError} 400 when the stream ends first; the parser's
 * errors; the signal's reason when aborted.
 */
export async function readHead(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  limits: Partial<HeadLimits> | undefined,
  signal: AbortSignal,
): Promise<{ head: Uint8Array; rest: Uint8Array }> {
  const parser = new HeadParser(limits);
  signal.throwIfAborted();
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  aborted.catch(() => {});
  try {
    while (true) {
      const { value, done } = await Promise.race([reader.read(), aborted]);
      if (done) {
        throw new HandshakeError(
          "Connection closed before the HTTP head was complete",
          400,
        );
      }
      const result = parser.push(value);
      if (result !== null) return result;
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}
