/**
 * The fuzzer's side of a connection: raw bytes out, in the writes it is
 * told, and every byte our side sends collected, with how the stream ended.
 * It reads all the time, so our side never waits on it.
 *
 * @module
 */

/** How the stream from our side ended. */
export type StreamEnd = "eof" | "reset";

/** A byte stream as the fuzzer holds it (a transport or a pipe end). */
export interface RawStream {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
  close?: (() => void) | undefined;
}

/** One raw end: writes what it is told, reads everything. */
export class RawEnd {
  readonly #stream: RawStream;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #parts: Uint8Array[] = [];
  #size = 0;
  #ended: StreamEnd | null = null;
  #wake: (() => void) | null = null;
  #writeFailed = false;
  readonly #pump: Promise<void>;

  constructor(stream: RawStream) {
    this.#stream = stream;
    this.#writer = stream.writable.getWriter();
    this.#writer.closed.catch(() => {});
    this.#reader = stream.readable.getReader();
    this.#pump = this.#read();
  }

  async #read(): Promise<void> {
    try {
      for (;;) {
        const { value, done } = await this.#reader.read();
        if (done) break;
        this.#parts.push(value.slice());
        this.#size += value.length;
        this.#notify();
      }
      this.#ended = "eof";
    } catch {
      this.#ended = "reset";
    }
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /** Everything received so far. */
  received(): Uint8Array {
    if (this.#parts.length !== 1) {
      const all = new Uint8Array(this.#size);
      let at = 0;
      for (const part of this.#parts) {
        all.set(part, at);
        at += part.length;
      }
      this.#parts = [all];
    }
    return this.#parts[0] ?? new Uint8Array(0);
  }

  /** How the stream ended, or `null` while it is open. */
  get ended(): StreamEnd | null {
    return this.#ended;
  }

  /** Whether a write failed (our side had dropped the connection). */
  get writeFailed(): boolean {
    return this.#writeFailed;
  }

  /**
   * Writes `bytes` cut at `cuts`, each piece a write of its own, awaited.
   * Stops quietly at the first write that fails. Writes copies: our side
   * unmasks in place.
   */
  async write(bytes: Uint8Array, cuts: readonly number[] = []): Promise<void> {
    let start = 0;
    for (const end of [...cuts, bytes.length]) {
      if (end <= start) continue;
      if (this.#writeFailed) return;
      try {
        await this.#writer.write(bytes.slice(start, end));
      } catch {
        this.#writeFailed = true;
        return;
      }
      start = end;
    }
  }

  /** Ends our writing (a half-close). */
  async end(): Promise<void> {
    await this.#writer.close().catch(() => {});
  }

  /**
   * Waits until `done()` holds for what was received, or the stream ended,
   * or `ms` passed; returns whether `done()` holds.
   */
  async until(
    done: (bytes: Uint8Array) => boolean,
    ms: number,
  ): Promise<boolean> {
    const deadline = performance.now() + ms;
    for (;;) {
      if (done(this.received())) return true;
      if (this.#ended !== null) return false;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.#wake = null;
    }
  }

  /** Waits for the end of the stream (or `ms`); returns how it ended. */
  async finished(ms: number): Promise<StreamEnd | null> {
    await this.until(() => false, ms);
    return this.#ended;
  }

  /** Drops the connection and stops reading. */
  async close(): Promise<void> {
    this.#stream.close?.();
    this.#reader.cancel().catch(() => {});
    this.#writer.abort().catch(() => {});
    this.#notify();
    await this.#pump;
  }
}

/** Whether `bytes` hold a whole head: up to CRLF CRLF (or LF LF). */
export function hasHead(bytes: Uint8Array): boolean {
  return headEnd(bytes) !== -1;
}

/** The offset just past the end of the head in `bytes`, or -1. */
export function headEnd(bytes: Uint8Array): number {
  let lineStart = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== 0x0a) continue;
    const length = i - lineStart;
    if (length === 0 || (length === 1 && bytes[i - 1] === 0x0d)) return i + 1;
    lineStart = i + 1;
  }
  return -1;
}
