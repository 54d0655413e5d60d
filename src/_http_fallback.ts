/**
 * The server's plain-HTTP side: a small HTTP/1.1 server that hands each
 * request without `Upgrade: websocket` to `ServeOptions.fallback`, a
 * fetch-style handler, and writes the `Response` it returns. Private: not
 * re-exported by `mod.ts`; `server.ts` calls {@linkcode serveFallback} for a
 * connection whose first request is not an upgrade, and nothing here runs
 * for one that is.
 *
 * What it does, and where RFC 9112 leaves a choice, which one:
 *
 * - Request bodies (§6) are streamed to the `Request` as the handler reads
 *   them, never buffered whole: `Content-Length` and `chunked` ones.
 *   Refused before the handler is called, each closing the connection: both
 *   headers together, a `Transfer-Encoding` in HTTP/1.0, an invalid or
 *   differing `Content-Length`, or a coding list not ending in `chunked`
 *   (400); a coding other than `chunked` (501); a `Content-Length` over
 *   `maxBodySize` (413). A chunked body that breaks its framing, or grows
 *   over `maxBodySize`, errors the request's stream; the client then gets
 *   400 or 413 unless the handler answered anyway.
 * - Response bodies are bytes: `Content-Length` when the handler set a valid
 *   one (and then the body must match it) or when the body turns out to be
 *   one chunk that is already there (a `Response` of a string or bytes);
 *   otherwise `chunked` to HTTP/1.1 clients and close-delimited to HTTP/1.0
 *   ones. Written with backpressure: a client that takes nothing for the idle
 *   timeout is dropped. No body for HEAD, 204 or 304.
 * - Persistent connections (§9.3): HTTP/1.1 stays open unless the request
 *   or the response says `Connection: close`; HTTP/1.0 only when it asked
 *   for `keep-alive`. The next request may arrive for the idle timeout (the
 *   server's `handshakeTimeout`); a connection silent for that long is
 *   closed quietly, one that sent part of a head gets 408. A body the
 *   handler left unread is read and dropped first (it is within
 *   `maxBodySize`), unless the client asked `Expect: 100-continue` and was
 *   never told to send it: that connection is closed instead.
 * - A later request on the connection that is a WebSocket upgrade is handed
 *   back to the server with the bytes read past it.
 * - The handler's errors are the server's: 500, `onError`, the connection
 *   closed (a `HandshakeError` it throws is sent as that refusal instead,
 *   as `refusalResponse` writes it). The client's malformed requests get
 *   400 (or the status that says what is wrong) and never reach `onError`.
 *
 * @module
 */

import type { ByteChannel } from "./byte_channel.ts";
import { HandshakeError } from "./errors.ts";
import { hasToken, isWebSocketRequest, refusalResponse } from "./handshake.ts";
import {
  type HeadLimits,
  HeadParser,
  parseRequestHead,
  reasonPhrase,
  type RequestHead,
  writeResponseHead,
} from "./http1.ts";
import { CONTROL } from "./_http_syntax.ts";
import { trimOWS } from "./_trim_ows.ts";
import type { Transport } from "./transport.ts";

/** Default for `ServeOptions.maxBodySize`: 1 MiB. */
export const DEFAULT_MAX_BODY_SIZE = 1024 * 1024;

/** What {@linkcode serveFallback} needs from the server. */
export interface FallbackSettings {
  /** The application's handler. */
  handler: (request: Request) => Response | Promise<Response>;
  /** Whether the connection is TLS (the `Request`'s URL is `https:`). */
  secure: boolean;
  /** Limits on each request head. */
  headLimits: Partial<HeadLimits> | undefined;
  /** Most bytes of one request body. */
  maxBodySize: number;
  /** How long the client may leave us waiting for bytes, or taking none, in ms. */
  idleTimeout: number;
  /** How long a closing connection's last bytes may take, in ms. */
  closeTimeout: number;
  /** Told the handler's errors. */
  onError: (error: unknown) => void;
  /** Whether the server is shutting down (then no connection is kept). */
  closing: () => boolean;
}

/** A WebSocket upgrade that arrived on a kept-alive connection. */
export interface FallbackUpgrade {
  /** Its parsed head. */
  head: RequestHead;
  /** The bytes read past it. */
  rest: Uint8Array;
}

/**
 * Serves plain HTTP requests on a connection until it closes or a request
 * on it asks for a WebSocket. Never rejects.
 *
 * @param transport The connection.
 * @param channel Its byte channel.
 * @param head The first request's head (not an upgrade).
 * @param rest The bytes read past that head.
 * @param settings The handler and limits.
 * @returns `null` once the connection is closed, or the upgrade request
 * that came instead of another plain one, for the server to accept.
 */
export async function serveFallback(
  transport: Transport,
  channel: ByteChannel,
  head: RequestHead,
  rest: Uint8Array,
  settings: FallbackSettings,
): Promise<FallbackUpgrade | null> {
  const input = new Input(channel, rest, settings.idleTimeout);
  let intact = true; // false once the input's framing can no longer be trusted
  try {
    while (true) {
      const outcome = await exchange(transport, channel, input, head, settings);
      if (!outcome.keepAlive) {
        intact = outcome.intact;
        break;
      }
      const next = await readNextHead(transport, channel, input, settings);
      if (next === null) return null;
      if (isWebSocketRequest(next)) {
        return { head: next, rest: input.takeRest() };
      }
      head = next;
    }
  } catch (error) {
    // Only the socket's failures get here (a reset, a write to a closed
    // socket, an idle client dropped): nothing to tell anyone.
    void error;
    transport.close();
    return null;
  }
  await closeGracefully(transport, channel, input, intact, settings);
  return null;
}

/** Whether one exchange left the connection open and its input in step. */
interface Outcome {
  keepAlive: boolean;
  intact: boolean;
}

/** One request and its response. */
async function exchange(
  transport: Transport,
  channel: ByteChannel,
  input: Input,
  head: RequestHead,
  settings: FallbackSettings,
): Promise<Outcome> {
  const refuse = async (error: HandshakeError): Promise<Outcome> => {
    await send(channel, refusalResponse(error), settings.idleTimeout);
    return { keepAlive: false, intact: false };
  };
  let body: RequestBody;
  let request: Request;
  try {
    body = new RequestBody(channel, input, head, settings);
    request = toRequest(head, transport, settings.secure, body);
  } catch (error) {
    if (error instanceof HandshakeError) return await refuse(error);
    throw error;
  }
  let response: Response;
  try {
    response = await settings.handler(request);
    if (!(response instanceof Response)) {
      throw new TypeError(
        `fallback must return a Response, got ${
          response === null ? "null" : typeof response
        }`,
      );
    }
  } catch (error) {
    // The client broke its body's framing or size: that, not what the
    // handler made of it, is the answer.
    if (body.failure !== null) return await refuse(body.failure);
    if (body.broken) throw error; // the socket's: the connection is gone
    if (error instanceof HandshakeError && error.status >= 400) {
      return await refuse(error);
    }
    settings.onError(error);
    return await refuse(
      new HandshakeError("The fallback handler failed", 500),
    );
  }
  // Whether the next request can be found: the body read to its end, or
  // readable to it. A client waiting for 100 Continue that never came will
  // not send its body at all (RFC 9110 §10.1.1).
  const readable = body.failure === null && !body.awaitingContinue();
  const keepAlive = readable && wantsKeepAlive(head) && !settings.closing();
  const written = await writeResponse(
    channel,
    response,
    head,
    keepAlive,
    settings,
  );
  if (!written.keepAlive) {
    return { keepAlive: false, intact: readable && written.intact };
  }
  if (!await body.drain()) return { keepAlive: false, intact: false };
  return { keepAlive: true, intact: true };
}

/**
 * RFC 9112 §9.3: "If the received protocol is HTTP/1.1 (or later)", the
 * connection persists unless "the "close" connection option is present";
 * HTTP/1.0 persists only if "the "keep-alive" connection option is present".
 */
function wantsKeepAlive(head: RequestHead): boolean {
  const connection = head.headers.get("connection");
  if (hasToken(connection, "close")) return false;
  return head.version !== "HTTP/1.0" || hasToken(connection, "keep-alive");
}

/**
 * Reads the next request head of a kept-alive connection: `null` when the
 * client closed it, stayed silent for the idle timeout (closed quietly), or
 * sent part of a head and no more (408), or when the head was refused.
 */
async function readNextHead(
  transport: Transport,
  channel: ByteChannel,
  input: Input,
  settings: FallbackSettings,
): Promise<RequestHead | null> {
  const parser = new HeadParser(settings.headLimits);
  let started = false;
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    if (started) {
      // The close, bounded by the close timeout, ends the pending read;
      // its bytes are not read here (that read is still under way).
      try {
        channel.write(refusalResponse(
          new HandshakeError("Timed out reading a request head", 408),
        ));
      } catch {
        // Gone already.
      }
      void closeGracefully(transport, channel, input, true, settings);
    } else {
      channel.close(); // RFC 9112 §9.5: an idle connection may just close.
    }
  }, settings.idleTimeout);
  try {
    while (true) {
      const bytes = await input.read(false);
      if (expired) return null;
      if (bytes === null) {
        if (started) {
          await send(
            channel,
            refusalResponse(
              new HandshakeError(
                "Connection closed before the HTTP head was complete",
                400,
              ),
            ),
            settings.idleTimeout,
          );
        }
        transport.close();
        return null;
      }
      if (bytes.length === 0) continue;
      started = true;
      let result: { head: Uint8Array; rest: Uint8Array } | null;
      try {
        result = parser.push(bytes);
        if (result === null) continue;
        clearTimeout(timer);
        input.unread(result.rest);
        return parseRequestHead(result.head, settings.headLimits);
      } catch (error) {
        if (!(error instanceof HandshakeError)) throw error;
        clearTimeout(timer);
        await send(channel, refusalResponse(error), settings.idleTimeout);
        await closeGracefully(transport, channel, input, false, settings);
        return null;
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

// ---- reading: the input and request bodies ----

const NOTHING = new Uint8Array(0);

/**
 * The connection's input: bytes already read (past a head, past a body)
 * first, then the channel's. One read at a time.
 */
class Input {
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
class RequestBody {
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
    settings: FallbackSettings,
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

// ---- the Request ----

/** Makes a Fetch API `Request` of a plain HTTP request, for `fallback`. */
function toRequest(
  head: RequestHead,
  transport: Transport,
  secure: boolean,
  body: RequestBody,
): Request {
  const local = transport.localAddr;
  // An IPv6 address needs its brackets in a URL's authority.
  const host = head.headers.get("host") ??
    (local
      ? `${
        local.hostname.includes(":") ? `[${local.hostname}]` : local.hostname
      }:${local.port}`
      : "localhost");
  const target = head.target.startsWith("/") ? head.target : "/";
  // Fetch allows no body on GET or HEAD: one sent anyway is drained.
  const withBody = !body.done && head.method !== "GET" &&
    head.method !== "HEAD";
  try {
    return new Request(`${secure ? "https" : "http"}://${host}${target}`, {
      method: head.method,
      headers: head.headers,
      ...(withBody ? { body: body.stream(), duplex: "half" } : {}),
    } as RequestInit);
  } catch (error) {
    // A Host that is not a valid authority, or a method Fetch forbids
    // (CONNECT, TRACE): the client's request is at fault, so it gets a 400,
    // not a 500 and a call to onError.
    throw new HandshakeError(
      `Cannot pass this request to fallback: ${(error as Error).message}`,
      400,
      { cause: error },
    );
  }
}

// ---- writing the response ----

/** Bytes queued on the channel above which a write waits for them to go. */
const HIGH_WATER_MARK = 64 * 1024;
/** Body chunks up to this size are copied in with their framing: one write. */
const SMALL_CHUNK = 16 * 1024;

/** Queues bytes; waits (up to the idle timeout) while too many are queued. */
async function send(
  channel: ByteChannel,
  bytes: Uint8Array,
  idleTimeout: number,
): Promise<void> {
  channel.write(bytes);
  if (channel.bufferedAmount <= HIGH_WATER_MARK) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      channel.drained(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          // A client that takes nothing for that long is gone, or hostile.
          channel.close();
          reject(new Error(`The client took nothing for ${idleTimeout} ms`));
        }, idleTimeout);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Why a response body could not be sent whole: the handler's doing. */
class ResponseBodyError extends Error {}

/**
 * Writes a response. `keepAlive` is what the request allows; the result says
 * whether the connection stays open after it, and whether it ended in step
 * (false when the response could not be sent whole).
 */
async function writeResponse(
  channel: ByteChannel,
  response: Response,
  request: RequestHead,
  keepAlive: boolean,
  settings: FallbackSettings,
): Promise<Outcome> {
  const { status } = response;
  const headers = new Headers(response.headers);
  const connection = headers.get("connection");
  // The response may end the connection too (RFC 9112 §9.6).
  if (hasToken(connection, "close")) keepAlive = false;
  const declared = headers.get("content-length");
  for (
    const name of [
      "connection",
      "keep-alive",
      "transfer-encoding",
      "content-length",
    ]
  ) headers.delete(name);
  const http10 = request.version === "HTTP/1.0";
  const body = response.body;
  // RFC 9110 §9.3.2: a HEAD response has no content; §15.3.5 and §15.4.5:
  // "A 204 response is terminated by the end of the header section", and so
  // is a 304.
  const bodiless = request.method === "HEAD" || status === 204 ||
    status === 304;
  // RFC 9110 §8.6: a Content-Length the handler set, when it is valid.
  const length = declared !== null && /^\d+$/.test(declared) &&
      Number.isSafeInteger(Number(declared))
    ? Number(declared)
    : null;
  let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  let first: Uint8Array | null = null;
  let pending: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;
  let framing: "length" | "chunked" | "close" | "none";
  let size = 0;
  if (bodiless) {
    body?.cancel().catch(() => {});
    framing = "none";
    // §8.6: "A server MAY send a Content-Length header field in a response
    // to a HEAD request"; "A server MUST NOT send a Content-Length header
    // field in any response with a status code of ... 204".
    if (length !== null && status !== 204) {
      headers.set("content-length", String(length));
    }
  } else if (body === null) {
    framing = "length";
  } else {
    reader = body.getReader();
    if (length !== null) {
      framing = "length";
      size = length;
    } else {
      const peeked = await peek(reader);
      if (peeked.error !== undefined) {
        settings.onError(peeked.error);
        return await failResponse(channel, settings);
      }
      first = peeked.first;
      pending = peeked.pending;
      if (peeked.whole) {
        framing = "length";
        size = first?.length ?? 0;
        reader = null;
      } else {
        framing = http10 ? "close" : "chunked";
      }
    }
  }
  if (framing === "length") headers.set("content-length", String(size));
  if (framing === "chunked") headers.set("transfer-encoding", "chunked");
  if (framing === "close") keepAlive = false;
  // Connection options the handler gave (an `upgrade` with an Upgrade
  // header), then ours: close, or HTTP/1.0's keep-alive (RFC 9112 §9.3).
  const options = (connection ?? "").split(",").map(trimOWS).filter((
    option,
  ) => {
    const lower = option.toLowerCase();
    return option !== "" && lower !== "close" && lower !== "keep-alive";
  });
  if (!keepAlive) options.push("close");
  else if (http10) options.push("keep-alive");
  if (options.length > 0) headers.set("connection", options.join(", "));
  let head: Uint8Array;
  try {
    head = writeResponseHead({
      version: "HTTP/1.1",
      status,
      statusText: response.statusText || reasonPhrase(status),
      headers,
    });
  } catch (error) {
    // A header Fetch accepts but HTTP/1.1 cannot carry (a control byte).
    reader?.cancel().catch(() => {});
    settings.onError(error);
    return await failResponse(channel, settings);
  }
  const timeout = settings.idleTimeout;
  if (first !== null && first.length <= SMALL_CHUNK && framing === "length") {
    await send(channel, concat(head, first), timeout);
    first = null;
  } else {
    await send(channel, head, timeout);
  }
  if (reader === null && first === null) return { keepAlive, intact: true };
  // The body, streamed.
  let sent = 0;
  try {
    while (true) {
      let chunk: Uint8Array;
      if (first !== null) {
        chunk = first;
        first = null;
      } else if (reader !== null) {
        let result: ReadableStreamReadResult<Uint8Array>;
        try {
          result = await (pending ?? reader.read());
          pending = undefined;
        } catch (error) {
          throw new ResponseBodyError("The response body failed", {
            cause: error,
          });
        }
        if (result.done) break;
        chunk = result.value;
        if (!(chunk instanceof Uint8Array)) {
          throw new ResponseBodyError(
            "The response body must be a stream of Uint8Array",
          );
        }
      } else break;
      if (chunk.length === 0) continue;
      if (framing === "length") {
        if (sent + chunk.length > size) {
          throw new ResponseBodyError(
            `The response body is longer than its Content-Length ${size}`,
          );
        }
        sent += chunk.length;
        await send(channel, chunk, timeout);
      } else if (framing === "chunked") {
        const line = ascii(`${chunk.length.toString(16)}\r\n`);
        if (chunk.length <= SMALL_CHUNK) {
          await send(channel, concat(line, chunk, CRLF), timeout);
        } else {
          channel.write(line);
          channel.write(chunk);
          await send(channel, CRLF, timeout);
        }
      } else {
        await send(channel, chunk, timeout);
      }
    }
    if (framing === "length" && sent < size) {
      throw new ResponseBodyError(
        `The response body is ${sent} bytes, shorter than its Content-Length ${size}`,
      );
    }
    if (framing === "chunked") await send(channel, LAST_CHUNK, timeout);
  } catch (error) {
    reader?.cancel().catch(() => {});
    if (!(error instanceof ResponseBodyError)) throw error; // the socket's
    // The head is out: the client can only learn of it from the close.
    settings.onError(error.cause ?? error);
    return { keepAlive: false, intact: false };
  }
  return { keepAlive, intact: true };
}

/**
 * Reads a body's first chunk, then looks whether its end is already there:
 * a body made of a string or bytes is one chunk, and then its length is
 * known without waiting for a stream that is still being made. A second
 * read still under way is returned as `pending`, to be awaited next.
 */
async function peek(
  reader: ReadableStreamDefaultReader<Uint8Array>,
): Promise<{
  first: Uint8Array | null;
  whole: boolean;
  pending?: Promise<ReadableStreamReadResult<Uint8Array>>;
  error?: unknown;
}> {
  try {
    const first = await reader.read();
    if (first.done) return { first: null, whole: true };
    if (!(first.value instanceof Uint8Array)) {
      throw new TypeError("The response body must be a stream of Uint8Array");
    }
    const pending = reader.read();
    pending.catch(() => {}); // awaited later, or dropped with the socket
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ended = await Promise.race([
      pending.then((result) => result.done),
      // A macrotask: more than enough for a body that is all there.
      new Promise<false>((resolve) => (timer = setTimeout(resolve, 0, false))),
    ]).finally(() => clearTimeout(timer));
    if (ended) return { first: first.value, whole: true };
    return { first: first.value, whole: false, pending };
  } catch (error) {
    reader.cancel().catch(() => {});
    return { first: null, whole: false, error };
  }
}

/** After a failure before the head was out: 500, and the connection ends. */
async function failResponse(
  channel: ByteChannel,
  settings: FallbackSettings,
): Promise<Outcome> {
  await send(
    channel,
    refusalResponse(new HandshakeError("The fallback handler failed", 500)),
    settings.idleTimeout,
  );
  return { keepAlive: false, intact: false };
}

const CRLF = new Uint8Array([0x0d, 0x0a]);
const LAST_CHUNK = new Uint8Array([0x30, 0x0d, 0x0a, 0x0d, 0x0a]); // "0\r\n\r\n"

function ascii(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const bytes = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return bytes;
}

// ---- closing ----

/**
 * Ends a connection after its last response: a FIN, then, when the client
 * may still be sending (a body we did not read), its bytes read and dropped
 * until it closes too, so the close does not reset the connection and take
 * the response with it (RFC 9112 §9.6: "a server ... closes its half ... and
 * continues to read from the connection until it receives a corresponding
 * close by the client, or until the server is reasonably certain that its
 * own TCP stack has received the client's acknowledgement"). All within the
 * close timeout.
 */
async function closeGracefully(
  transport: Transport,
  channel: ByteChannel,
  input: Input,
  intact: boolean,
  settings: FallbackSettings,
): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<void>((resolve) =>
    timer = setTimeout(resolve, settings.closeTimeout)
  );
  const lingering = (async () => {
    await channel.closeWrite();
    if (intact) return;
    while (await input.read(false) !== null);
  })();
  lingering.catch(() => {}); // the client is gone: nothing to tell it
  await Promise.race([lingering, deadline]).catch(() => {});
  clearTimeout(timer);
  transport.close();
}
