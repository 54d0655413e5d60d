/**
 * Reading a plain HTTP request past its head, for the fallback server
 * (`_http_fallback.ts`): the connection's input, and the request body read
 * from it as the handler asks, delimited by `Content-Length` or decoded from
 * the `chunked` coding (RFC 9112 §6, §7.1). Private: not re-exported by
 * `mod.ts`.
 *
 * A body that cannot be delimited is refused before the handler is called
 * (see {@linkcode RequestBody}); one that breaks its framing, or grows over
 * `maxBodySize`, errors the request's stream with a {@linkcode HandshakeError}
 * of status 400 or 413.
 *
 * @module
 */

import type { ByteChannel } from "./byte_channel.ts";
import { HandshakeError } from "./errors.ts";
import { hasToken } from "./handshake_headers.ts";
import type { HeadLimits, RequestHead } from "./http1_parse.ts";
import { CONTROL } from "./_http_syntax.ts";
import { trimOWS } from "./_trim_ows.ts";

/** What a {@linkcode RequestBody} needs of the server's settings. */
export interface BodySettings {
  /** Most bytes of one request body. */
  maxBodySize: number;
  /** Limits on each request head; a chunked body's lines keep to them too. */
  headLimits: Partial<HeadLimits> | undefined;
}

const NOTHING = new Uint8Array(0);

/**
 * The connection's input: bytes already read (past a head, past a body)
 * first, then the channel's. One read at a time.
 */
export class Input {
  #pending: Uint8Array;

  constructor(
    readonly channel: ByteChannel,
    pending: Uint8Array,
    readonly idleTimeout: number,
  ) {
    this.#pending = pending;
  }

  /** The read under way, which the next one waits for. */
  #busy: Promise<unknown> = Promise.resolve();

  /**
   * The next bytes, or `null` at the end. With `idle`, a channel read that
   * waits longer than the idle timeout closes the channel (and so ends).
   * Reads wait for each other: a channel takes one at a time, and one
   * still under way for the request body (a handler that gave up on it)
   * must end before the connection is read for anything else.
   */
  read(idle: boolean): Promise<Uint8Array | null> {
    const read = this.#busy.then(() => this.#read(idle));
    this.#busy = read.catch(() => {});
    return read;
  }

  async #read(idle: boolean): Promise<Uint8Array | null> {
    const pending = this.#pending;
    if (pending.length > 0) {
      this.#pending = NOTHING;
      return pending;
    }
    if (!idle) return await this.channel.read();
    const timer = setTimeout(() => this.channel.close(), this.idleTimeout);
    try {
      return await this.channel.read();
    } finally {
      clearTimeout(timer);
    }
  }

  /** Puts bytes back, to be read first. */
  unread(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const pending = this.#pending;
    if (pending.length === 0) {
      this.#pending = bytes;
      return;
    }
    const joined = new Uint8Array(bytes.length + pending.length);
    joined.set(bytes);
    joined.set(pending, bytes.length);
    this.#pending = joined;
  }

  /** The bytes read and not yet used. */
  takeRest(): Uint8Array {
    const pending = this.#pending;
    this.#pending = NOTHING;
    return pending;
  }
}

/** How a request's body is delimited (RFC 9112 §6.3). */
type Framing =
  | { kind: "length"; length: number }
  | { kind: "chunked" };

/**
 * A request's body, read from the input as it is asked for. Its `stream`
 * is what the `Request` gets; {@linkcode drain} reads what the handler left.
 */
export class RequestBody {
  /** The client's fault that ended the body: 400 or 413. */
  failure: HandshakeError | null = null;
  /** Set when reading the body failed with the socket (a reset). */
  broken = false;
  /** Set once the body's last byte (and a chunked body's trailer) is read. */
  done: boolean;
  readonly #channel: ByteChannel;
  readonly #input: Input;
  /** Bytes of a Content-Length body still to come. */
  #remaining = 0;
  #chunked: ChunkedDecoder | null = null;
  /** Whether 100 Continue is owed before the first read. */
  #expectsContinue: boolean;
  /** The read under way, so that drain() waits for a handler's read. */
  #reading: Promise<Uint8Array | null> | null = null;

  constructor(
    channel: ByteChannel,
    input: Input,
    head: RequestHead,
    settings: BodySettings,
  ) {
    this.#channel = channel;
    this.#input = input;
    const framing = requestFraming(head, settings.maxBodySize);
    if (framing === null) {
      this.done = true;
    } else if (framing.kind === "length") {
      this.#remaining = framing.length;
      this.done = framing.length === 0;
    } else {
      this.#chunked = new ChunkedDecoder(
        settings.maxBodySize,
        settings.headLimits,
      );
      this.done = false;
    }
    // RFC 9110 §10.1.1: a server that receives 100-continue in an HTTP/1.1
    // request "MAY ... send a 100 (Continue) interim response"; we do when
    // the body is first read, so a handler that refuses without reading
    // never asks for it.
    this.#expectsContinue = !this.done && head.version !== "HTTP/1.0" &&
      hasToken(head.headers.get("expect"), "100-continue");
  }

  /** Whether the client is waiting for a 100 Continue it was never sent. */
  awaitingContinue(): boolean {
    return this.#expectsContinue && !this.done;
  }

  /** The body as the `Request` gets it: read as it is pulled. */
  stream(): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const bytes = await this.#next();
        if (bytes === null) controller.close();
        else controller.enqueue(bytes);
      },
    }, { highWaterMark: 0 });
  }

  /**
   * Reads and drops what is left of the body (at most `maxBodySize`), so the
   * next request can be found.
   *
   * @returns Whether the body was read to its end.
   */
  async drain(): Promise<boolean> {
    try {
      await this.#reading?.catch(() => {});
      while (await this.#next() !== null);
      return true;
    } catch {
      return false;
    }
  }

  #next(): Promise<Uint8Array | null> {
    const reading = this.#read();
    this.#reading = reading;
    return reading;
  }

  async #read(): Promise<Uint8Array | null> {
    if (this.failure !== null) throw this.failure;
    if (this.done) return null;
    if (this.#expectsContinue) {
      this.#expectsContinue = false;
      this.#channel.write(CONTINUE);
    }
    while (true) {
      let bytes: Uint8Array | null;
      try {
        bytes = await this.#input.read(true);
      } catch (error) {
        this.broken = true;
        throw error;
      }
      if (bytes === null) {
        throw this.#fail(
          new HandshakeError("Connection closed inside the request body", 400),
        );
      }
      const chunked = this.#chunked;
      if (chunked === null) {
        const take = Math.min(bytes.length, this.#remaining);
        this.#remaining -= take;
        this.#input.unread(bytes.subarray(take));
        if (this.#remaining === 0) this.done = true;
        return bytes.subarray(0, take);
      }
      let data: Uint8Array | null;
      try {
        data = chunked.push(bytes);
      } catch (error) {
        throw this.#fail(error as HandshakeError);
      }
      this.#input.unread(chunked.takeRest());
      if (chunked.finished) this.done = true;
      if (data !== null && data.length > 0) return data;
      if (this.done) return null;
    }
  }

  #fail(error: HandshakeError): HandshakeError {
    this.failure = error;
    return error;
  }
}

const CONTINUE = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");

/**
 * How a request's body is delimited, or `null` for none, as RFC 9112 §6.3
 * says; refuses what it cannot delimit.
 */
function requestFraming(
  head: RequestHead,
  maxBodySize: number,
): Framing | null {
  const headers = head.headers;
  const codings = headers.get("transfer-encoding");
  const length = headers.get("content-length");
  if (codings !== null) {
    // §6.1: "A server MAY reject a request that contains both
    // Content-Length and Transfer-Encoding ... Regardless, the server MUST
    // close the connection after responding to such a request".
    if (length !== null) {
      throw new HandshakeError(
        "Request has both Content-Length and Transfer-Encoding",
        400,
      );
    }
    // §6.1: "A server or client that receives an HTTP/1.0 message
    // containing a Transfer-Encoding header field MUST treat the message as
    // if the framing is faulty".
    if (head.version === "HTTP/1.0") {
      throw new HandshakeError("Transfer-Encoding in an HTTP/1.0 request", 400);
    }
    const list = codings.split(",").map((coding) =>
      trimOWS(coding).toLowerCase()
    ).filter((coding) => coding !== "");
    // §6.3: "If a Transfer-Encoding header field is present in a request
    // and the chunked transfer coding is not the final encoding, the
    // message body length cannot be determined reliably; the server MUST
    // respond with the 400 (Bad Request) status code and then close the
    // connection." §6.1: "A sender MUST NOT apply the chunked transfer
    // coding more than once to a message body".
    if (
      list.at(-1) !== "chunked" || list.indexOf("chunked") !== list.length - 1
    ) {
      throw new HandshakeError(
        `Transfer-Encoding ${codings} does not end with one chunked`,
        400,
      );
    }
    // §6.1: "A server that receives a request message with a transfer
    // coding it does not understand SHOULD respond with 501 (Not
    // Implemented)."
    if (list.length > 1) {
      throw new HandshakeError(
        `Transfer-Encoding ${codings}: only chunked is implemented`,
        501,
      );
    }
    return { kind: "chunked" };
  }
  if (length === null) return null; // §6.3: a request without either has none.
  // RFC 9110 §8.6: Content-Length = 1*DIGIT; for a list of identical values
  // (from repeated fields, which Headers joins) a recipient may use the one
  // value. §6.3 of RFC 9112: with "an invalid Content-Length header field
  // ... the server MUST respond with a 400 (Bad Request) status code and
  // then close the connection."
  const values = length.split(",").map(trimOWS);
  const first = values[0]!;
  if (!/^\d+$/.test(first) || values.some((value) => value !== first)) {
    throw new HandshakeError(`Invalid Content-Length ${length}`, 400);
  }
  const size = Number(first);
  if (size > maxBodySize) {
    // RFC 9110 §15.5.14: 413 when "the request content is larger than the
    // server is willing or able to process".
    throw new HandshakeError(
      `Request body of ${first} bytes exceeds ${maxBodySize}`,
      413,
    );
  }
  return { kind: "length", length: size };
}

/**
 * Decodes the chunked transfer coding (RFC 9112 §7.1), bytes in, data out,
 * in chunks of any size:
 *
 * ```
 * chunked-body = *chunk last-chunk trailer-section CRLF
 * chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 * chunk-size   = 1*HEXDIG
 * last-chunk   = 1*("0") [ chunk-ext ] CRLF
 * ```
 *
 * Extensions are ignored, as §7.1.1 lets a recipient; trailer fields are
 * dropped, as §7.1.2 lets one (we have no use for them). Lines must end
 * with CRLF, as in a head.
 */
class ChunkedDecoder {
  /** Set once the last chunk and the trailer section are read. */
  finished = false;
  #state: "size" | "data" | "data-end" | "trailer" = "size";
  /** The line being read (a size line or a trailer line), as text. */
  #line = "";
  /** Data bytes of the current chunk still to come. */
  #chunkLeft = 0;
  #total = 0;
  #trailerBytes = 0;
  #rest: Uint8Array = NOTHING;
  readonly #maxBodySize: number;
  readonly #maxLine: number;
  readonly #maxTrailer: number;

  constructor(maxBodySize: number, limits: Partial<HeadLimits> | undefined) {
    this.#maxBodySize = maxBodySize;
    this.#maxLine = limits?.maxLineLength ?? 8192;
    this.#maxTrailer = limits?.maxHeadSize ?? 65536;
  }

  /**
   * Feeds bytes; returns the first run of data in them (or `null`). What is
   * not consumed is left for {@linkcode takeRest}: feed it again.
   *
   * @throws {HandshakeError} 400 for broken framing, 413 over the limit.
   */
  push(bytes: Uint8Array): Uint8Array | null {
    let at = 0;
    while (at < bytes.length && !this.finished) {
      if (this.#state === "data") {
        const take = Math.min(this.#chunkLeft, bytes.length - at);
        this.#chunkLeft -= take;
        if (this.#chunkLeft === 0) this.#state = "data-end";
        this.#rest = bytes.subarray(at + take);
        return bytes.subarray(at, at + take);
      }
      // A line: the size line, the CRLF after data, or a trailer line.
      const lf = bytes.indexOf(0x0a, at);
      const end = lf === -1 ? bytes.length : lf;
      this.#line += latin1(bytes.subarray(at, end));
      const limit = this.#state === "data-end" ? 1 : this.#maxLine;
      if (this.#line.length > limit + 1) throw this.#lineTooLong();
      if (lf === -1) {
        at = bytes.length;
        break;
      }
      at = lf + 1;
      const line = this.#line;
      this.#line = "";
      if (!line.endsWith("\r") || line.indexOf("\r") !== line.length - 1) {
        throw bad("a chunked body's line does not end with CRLF");
      }
      this.#endLine(line.slice(0, -1));
    }
    this.#rest = bytes.subarray(at);
    return null;
  }

  /** The bytes the last {@linkcode push} did not consume. */
  takeRest(): Uint8Array {
    const rest = this.#rest;
    this.#rest = NOTHING;
    return rest;
  }

  #endLine(line: string): void {
    switch (this.#state) {
      case "data-end":
        if (line !== "") throw bad("chunk data longer than its size");
        this.#state = "size";
        return;
      case "size": {
        const match = /^([0-9A-Fa-f]+)(?:[ \t]*;(.*))?$/.exec(line);
        if (match === null || CONTROL.test(match[2] ?? "")) {
          throw bad(`invalid chunk size line ${JSON.stringify(line)}`);
        }
        const digits = match[1]!.replace(/^0+(?=.)/, "");
        // More than 13 hex digits is over 2^52 bytes: over any limit.
        const size = digits.length > 13 ? Infinity : parseInt(digits, 16);
        if (this.#total + size > this.#maxBodySize) {
          throw new HandshakeError(
            `Chunked request body exceeds ${this.#maxBodySize} bytes`,
            413,
          );
        }
        this.#total += size;
        if (size === 0) this.#state = "trailer";
        else {
          this.#chunkLeft = size;
          this.#state = "data";
        }
        return;
      }
      case "trailer":
        if (line === "") {
          this.finished = true;
          return;
        }
        this.#trailerBytes += line.length + 2;
        if (this.#trailerBytes > this.#maxTrailer || CONTROL.test(line)) {
          throw bad("invalid or oversized trailer section");
        }
        return;
      default:
        return;
    }
  }

  #lineTooLong(): HandshakeError {
    return this.#state === "data-end"
      ? bad("chunk data longer than its size")
      : bad(`a chunked body's line exceeds ${this.#maxLine} bytes`);
  }
}

function bad(problem: string): HandshakeError {
  return new HandshakeError(`Malformed request body: ${problem}`, 400);
}

function latin1(bytes: Uint8Array): string {
  return String.fromCharCode.apply(null, bytes as unknown as number[]);
}
