/**
 * An in-memory pipe between two byte-stream ends, for connection tests
 * without sockets (after coder/websocket's wstest.Pipe), and a raw peer that
 * writes hand-made frames to one end and decodes the bytes sent to it.
 */
import type { ByteStream } from "../src/connection.ts";
import { encodeClosePayload } from "../src/close.ts";
import { encodeFrame, FrameDecoder, Opcode } from "../src/frame.ts";

/** Options for {@link pipe}. */
export interface PipeOptions {
  /** Queue size (in bytes) of each direction before writes wait: backpressure. */
  highWaterMark?: number;
}

/**
 * A duplex pipe: what one end writes, the other reads.
 *
 * Each direction is a `TransformStream` whose writable and readable sides
 * each queue up to `highWaterMark` bytes, so a direction buffers at most
 * about 2 × `highWaterMark` bytes (plus the chunk that crosses each mark)
 * before the writer's `ready` stays pending.
 *
 * As with a socket, an end that stops reading (cancels its readable) does
 * not fail the other end's writes at once: what is still written is
 * discarded. Aborting a writable (a reset) errors the other end's readable.
 */
export function pipe(options: PipeOptions = {}): [ByteStream, ByteStream] {
  const hwm = options.highWaterMark ?? 64 * 1024;
  const strategy = new ByteLengthQueuingStrategy({ highWaterMark: hwm });
  const direction = () => {
    const { readable: inner, writable } = new TransformStream<
      Uint8Array,
      Uint8Array
    >({}, strategy, strategy);
    const reader = inner.getReader();
    // Pulls one chunk per read, so the TransformStream's queues are the only
    // buffers (and the backpressure is theirs).
    const readable = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { value, done } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      cancel() {
        void (async () => {
          while (!(await reader.read()).done) { /* discard */ }
        })().catch(() => {});
      },
    }, { highWaterMark: 0 });
    return { readable, writable };
  };
  const aToB = direction();
  const bToA = direction();
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
        // Dropping one end ends both directions, as a socket does (a no-op
        // for a side whose lock is held: its holder ends it).
        readable.cancel().catch(() => {});
        writable.abort().catch(() => {});
      },
    };
  };
  return [end(bToA.readable, aToB.writable), end(aToB.readable, bToA.writable)];
}

/** A frame as a {@link RawPeer} decoded it (payload unmasked). */
export interface RawFrame {
  /** The FIN bit. */
  fin: boolean;
  /** The RSV bits (RSV1 = 4). */
  rsv: number;
  /** The opcode. */
  opcode: number;
  /** Whether the frame was masked on the wire. */
  masked: boolean;
  /** The payload, unmasked. */
  payload: Uint8Array;
}

/** How a {@link RawPeer} frames what it writes. */
export interface RawFrameOptions {
  /** The FIN bit (default `true`). */
  fin?: boolean;
  /** The RSV bits (default 0). */
  rsv?: number;
  /** Mask the frame (default: whether the peer plays the client). */
  mask?: boolean;
}

const decoder = new TextDecoder();

/**
 * The other end of a connection under test, driven by hand: it writes
 * hand-made frames (or any bytes) and reads the raw bytes the connection
 * sends, decoding them into frames only when asked, so a test decides when
 * (and whether) the connection's writes are consumed.
 */
export class RawPeer {
  /** The writer of the bytes to the connection. */
  readonly writer: WritableStreamDefaultWriter<Uint8Array>;
  /** Bytes read from the connection so far. */
  bytesRead = 0;
  /** Whether the connection's side of the byte stream has ended (EOF). */
  eof = false;

  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #client: boolean;
  readonly #frames: RawFrame[] = [];
  readonly #decoder: FrameDecoder;
  #current: RawFrame | null = null;
  #parts: Uint8Array[] = [];
  #maskCounter = 0;

  /**
   * Takes over one end of a {@link pipe}.
   *
   * @param end The byte-stream end.
   * @param role The role the raw peer plays: a `client` masks its frames.
   */
  constructor(end: ByteStream, role: "client" | "server") {
    this.#client = role === "client";
    this.writer = end.writable.getWriter();
    this.writer.closed.catch(() => {});
    this.#reader = end.readable.getReader();
    this.#decoder = new FrameDecoder({
      frameStart: (header) => {
        this.#current = { ...header, payload: new Uint8Array(0) };
        this.#parts = [];
      },
      framePayload: (chunk) => this.#parts.push(chunk.slice()),
      frameEnd: () => {
        const frame = this.#current!;
        frame.payload = concat(this.#parts);
        this.#frames.push(frame);
        this.#current = null;
      },
      // Any RSV bits: what the connection sends is recorded, not judged.
    }, { allowedRsv: 7 });
  }

  /** Writes bytes as they are; resolves when the pipe has taken them. */
  write(bytes: Uint8Array): Promise<void> {
    return this.writer.write(bytes);
  }

  /** The bytes of one frame, masked with a fresh key when the peer is a client. */
  frame(
    opcode: number,
    payload: Uint8Array | string = new Uint8Array(0),
    options: RawFrameOptions = {},
  ): Uint8Array {
    const bytes = typeof payload === "string"
      ? new TextEncoder().encode(payload)
      : payload;
    const mask = options.mask ?? this.#client;
    const n = ++this.#maskCounter;
    const key = mask
      ? new Uint8Array([0x37, n & 0xff, (n >>> 8) & 0xff, 0xa5])
      : null;
    return encodeFrame({
      fin: options.fin ?? true,
      rsv: options.rsv ?? 0,
      opcode,
      payload: bytes,
    }, key);
  }

  /** Writes one frame. */
  send(
    opcode: number,
    payload: Uint8Array | string = new Uint8Array(0),
    options: RawFrameOptions = {},
  ): Promise<void> {
    return this.write(this.frame(opcode, payload, options));
  }

  /** Writes a close frame (no payload when `code` is omitted). */
  sendClose(code?: number, reason = ""): Promise<void> {
    return this.send(Opcode.Close, encodeClosePayload(code, reason));
  }

  /**
   * The next frame the connection sent, reading more bytes only as needed;
   * `null` at the end of the stream.
   */
  async next(): Promise<RawFrame | null> {
    while (this.#frames.length === 0) {
      if (this.eof) return null;
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await this.#reader.read();
      } catch {
        this.eof = true;
        return null;
      }
      if (result.done) {
        this.eof = true;
        return null;
      }
      this.bytesRead += result.value.length;
      this.#decoder.push(result.value.slice());
    }
    return this.#frames.shift()!;
  }

  /** Like {@link next}, but fails at the end of the stream. */
  async expect(): Promise<RawFrame> {
    const frame = await this.next();
    if (frame === null) throw new Error("Expected a frame, got the end");
    return frame;
  }

  /** Every frame up to the end of the stream. */
  async rest(): Promise<RawFrame[]> {
    const frames: RawFrame[] = [];
    for (let frame = await this.next(); frame; frame = await this.next()) {
      frames.push(frame);
    }
    return frames;
  }

  /** Ends what the peer writes (the connection reads EOF). */
  async end(): Promise<void> {
    await this.writer.close().catch(() => {});
  }

  /** Drops both directions at once, as a reset socket does. */
  drop(): void {
    this.writer.abort(new Error("Connection reset")).catch(() => {});
    this.#reader.cancel().catch(() => {});
  }

  /** Stops reading: cancels the readable side. */
  async stopReading(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}

/** A close frame's code (1005 for none) and reason. */
export function closeOf(frame: RawFrame): { code: number; reason: string } {
  if (frame.opcode !== Opcode.Close) {
    throw new Error(`Not a close frame: opcode ${frame.opcode}`);
  }
  const p = frame.payload;
  if (p.length < 2) return { code: 1005, reason: "" };
  return { code: (p[0]! << 8) | p[1]!, reason: decoder.decode(p.subarray(2)) };
}

function concat(parts: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const part of parts) size += part.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
