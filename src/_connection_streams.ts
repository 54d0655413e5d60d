/**
 * The Web Streams of a connection, made only when someone asks for them:
 * `readable` (the messages received), `writable` (messages to send) and
 * `openMessage()`'s stream of fragments; and how a stream of chunks is sent
 * as the fragments of one message. The connection hands each maker the few
 * operations it needs, so none of this reaches into it.
 *
 * @module
 */

import {
  checkType,
  type CloseOptions,
  type Sendable,
  type SendOptions,
} from "./connection_options.ts";
import { ConnectionClosedError } from "./errors.ts";
import type { Message } from "./protocol.ts";

/**
 * The messages received, pulled one at a time with `next` (so the stream
 * queues nothing of its own: backpressure stays the connection's).
 * Cancelling it calls `stop`.
 */
export function messagesReadable(
  next: () => Promise<IteratorResult<Message, undefined>>,
  stop: () => void,
): ReadableStream<Message> {
  return new ReadableStream<Message>({
    pull: async (controller) => {
      const result = await next();
      if (result.done) controller.close();
      else controller.enqueue(result.value);
    },
    cancel: stop,
  }, { highWaterMark: 0 });
}

/**
 * Messages to send. `send` queues a message now and sends it once `gate`
 * opens with `true`; closing the stream calls `close()`, aborting it
 * `close()` with the reason's close code, if it has one.
 *
 * A write takes its turn among the sends when write() is called (the
 * strategy's size() runs inside it), not when the stream hands the chunk
 * to its sink: that waits for the previous write to finish, and a send()
 * made meanwhile would overtake it. The message goes out once the sink
 * gets it; a write the stream refuses (after close, abort or an error)
 * lets its turn pass.
 */
export function messagesWritable(
  send: (message: Sendable, gate: Promise<boolean>) => Promise<void>,
  close: (options?: CloseOptions) => Promise<unknown>,
): WritableStream<Sendable> {
  const turns: { go: (go: boolean) => void; done: Promise<void> }[] = [];
  let writesEnded = false;
  const endWrites = () => {
    writesEnded = true;
    for (const turn of turns.splice(0)) turn.go(false);
  };
  return new WritableStream<Sendable>({
    write: async () => {
      const turn = turns.shift()!;
      turn.go(true);
      try {
        await turn.done;
      } catch (error) {
        endWrites(); // The stream errors and refuses further writes.
        throw error;
      }
    },
    close: async () => {
      endWrites();
      await close();
    },
    abort: async (reason) => {
      endWrites();
      await close(closeFromReason(reason));
    },
  }, {
    highWaterMark: 1,
    size: (message) => {
      if (writesEnded) return 1; // The stream refuses the write itself.
      const gate = Promise.withResolvers<boolean>();
      try {
        const done = send(message, gate.promise);
        done.catch(() => {}); // Reported by write(), if it gets there.
        turns.push({ go: gate.resolve, done });
      } catch (error) {
        endWrites(); // The stream errors with it.
        throw error;
      }
      return 1;
    },
  });
}

/**
 * One message's fragments, for `openMessage()`: `send` is given a stream of
 * the chunks written, sent as one message. A write resolves once its chunk
 * is taken for sending; `close()` once the last fragment is out. When the
 * message fails (the connection closed), the stream errors at once.
 */
export function fragmentsWritable(
  send: (fragments: ReadableStream<Uint8Array | string>) => Promise<void>,
): WritableStream<Uint8Array | string> {
  const fragments = new TransformStream<
    Uint8Array | string,
    Uint8Array | string
  >(undefined, { highWaterMark: 1 }, { highWaterMark: 0 });
  const inner = fragments.writable.getWriter();
  let sent: Promise<void>;
  try {
    sent = send(fragments.readable);
  } catch (error) {
    sent = Promise.reject(error);
  }
  let controller: WritableStreamDefaultController;
  sent.catch((error) => controller.error(error));
  return new WritableStream<Uint8Array | string>({
    start: (c) => {
      controller = c;
    },
    write: (chunk) => Promise.race([inner.write(chunk), sent]),
    close: async () => {
      await inner.close();
      await sent;
    },
    abort: async (reason) => {
      await inner.abort(reason).catch(() => {});
      await sent.catch(() => {});
    },
  }, { highWaterMark: 1 });
}

/**
 * Sends `chunks` as the fragments of one message with `sendPart`, one chunk
 * held back so that the last carries FIN without an extra frame. Without a
 * `type`, the first chunk sets it (strings: text, bytes: binary) and every
 * chunk must be of that kind. A failure after the first fragment calls
 * `abandon`: a message begun can be neither finished nor followed.
 */
export async function sendChunks(
  chunks: AsyncIterable<Uint8Array | string>,
  type: "text" | "binary" | undefined,
  sendPart: (
    chunk: Uint8Array | string,
    fin: boolean,
    type: "text" | "binary",
  ) => Promise<void>,
  abandon: () => void,
): Promise<void> {
  let held: Uint8Array | string | null = null;
  let sent = false;
  const inferred = type === undefined;
  try {
    for await (const chunk of chunks) {
      if (typeof chunk !== "string" && !(chunk instanceof Uint8Array)) {
        throw new TypeError(
          `Cannot send ${
            describe(chunk)
          } as a fragment: expected a string or Uint8Array`,
        );
      }
      if (inferred && held !== null && kindOf(chunk) !== type) {
        throw new TypeError(
          `Cannot send a ${kindOf(chunk)} chunk in a ${type} message`,
        );
      }
      if (held !== null) {
        await sendPart(held, false, type ?? kindOf(held));
        sent = true;
      }
      type ??= kindOf(chunk);
      held = chunk;
    }
    if (held === null) held = type === "text" ? "" : new Uint8Array(0);
    await sendPart(held, true, type ?? kindOf(held));
  } catch (error) {
    if (sent) abandon();
    throw error;
  }
}

const encoder = new TextEncoder();

/**
 * What `send(message, options)` sends: a whole message (a string is text;
 * bytes, or a string with `type: "binary"`, binary), or the chunks of a
 * message in fragments. Throws a TypeError for anything else.
 */
export function sendableOf(
  message: Sendable,
  options: SendOptions,
): Message | AsyncIterable<Uint8Array | string> {
  if ((options as { fin?: unknown }).fin !== undefined) {
    throw new TypeError(
      "send() takes no fin option: use openMessage() for a message in fragments",
    );
  }
  checkType(options.type);
  if (typeof message === "string") {
    return options.type === "binary" ? encoder.encode(message) : message;
  }
  if (message instanceof Uint8Array) return message;
  if (message instanceof ArrayBuffer) return new Uint8Array(message);
  if (ArrayBuffer.isView(message)) {
    return new Uint8Array(
      message.buffer,
      message.byteOffset,
      message.byteLength,
    );
  }
  if (
    message !== null && typeof message === "object" &&
    Symbol.asyncIterator in message
  ) return message;
  throw new TypeError(
    `Cannot send ${
      describe(message)
    }: expected a string, ArrayBuffer, ArrayBufferView, ReadableStream or async iterable`,
  );
}

/** The close a `writable.abort(reason)` asks for: the reason's code, if any. */
function closeFromReason(reason: unknown): CloseOptions {
  if (reason instanceof ConnectionClosedError) {
    return { closeCode: reason.closeCode, reason: reason.reason };
  }
  if (reason !== null && typeof reason === "object") {
    const r = reason as { closeCode?: unknown; reason?: unknown };
    if (typeof r.closeCode === "number") {
      return typeof r.reason === "string"
        ? { closeCode: r.closeCode, reason: r.reason }
        : { closeCode: r.closeCode };
    }
  }
  return { closeCode: 1000 };
}

function kindOf(chunk: Uint8Array | string): "text" | "binary" {
  return typeof chunk === "string" ? "text" : "binary";
}

/** "a Foo" for an object of class Foo, "a number" for a number … */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") {
    return `a ${value.constructor?.name ?? "object"}`;
  }
  return `a ${typeof value}`;
}
