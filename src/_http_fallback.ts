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
import { hasToken } from "./handshake_headers.ts";
import { isWebSocketRequest, refusalResponse } from "./handshake_server.ts";
import {
  type HeadLimits,
  HeadParser,
  parseRequestHead,
  type RequestHead,
} from "./http1_parse.ts";
import { reasonPhrase, writeResponseHead } from "./http1_write.ts";
import { Input, RequestBody } from "./_http_body.ts";
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
