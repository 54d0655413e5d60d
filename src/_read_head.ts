/**
 * Reads one HTTP head off a byte stream: the only I/O the client and the
 * server share before the WebSocket protocol takes over.
 *
 * @module
 */

import type { ByteChannel, ChannelReader } from "./byte_channel.ts";
import { HandshakeError } from "./errors.ts";
import { type HeadLimits, HeadParser } from "./http1_parse.ts";

type Head = { head: Uint8Array; rest: Uint8Array };

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
export function readHead(
  channel: ByteChannel,
  limits: Partial<HeadLimits> | undefined,
  signal?: AbortSignal,
): Promise<Head> {
  let parser: HeadParser;
  try {
    parser = new HeadParser(limits);
  } catch (error) {
    return Promise.reject(error);
  }
  if (signal === undefined) {
    // A server's every connection: one promise, and no async function's
    // frame or promise per read (every channel can readTo).
    return new Promise((resolve, reject) =>
      channel.readTo(new HeadReader(channel, parser, resolve, reject))
    );
  }
  return readWithPromises(channel, parser, signal);
}

async function readWithPromises(
  channel: ByteChannel,
  parser: HeadParser,
  signal: AbortSignal,
): Promise<Head> {
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

/** Reads a channel with {@link ByteChannel.readTo} until the head is in. */
class HeadReader implements ChannelReader {
  constructor(
    readonly channel: ByteChannel,
    readonly parser: HeadParser,
    readonly resolve: (head: Head) => void,
    readonly reject: (error: unknown) => void,
  ) {}

  received(bytes: Uint8Array | null): void {
    let result: Head | null;
    try {
      result = this.parser.push(headBytes(bytes));
    } catch (error) {
      return this.reject(error);
    }
    if (result !== null) this.resolve(result);
    else this.channel.readTo(this);
  }

  failed(error: unknown): void {
    this.reject(error);
  }
}
