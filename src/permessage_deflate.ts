/**
 * permessage-deflate (RFC 7692): messages compressed with DEFLATE, with or
 * without the LZ77 window kept from one message to the next ("context
 * takeover"), on either end.
 *
 * It needs a sync flush (Z_SYNC_FLUSH), which `CompressionStream` does not
 * give, so it uses `node:zlib` (built into Deno and Bun), imported the
 * first time a message is compressed or inflated: a connection that never
 * agrees on it never loads zlib.
 *
 * Memory is the cost: a deflate stream with context takeover holds about
 * 2^(windowBits+2) + 2^(memLevel+9) bytes (zlib's own figure: 256 KiB at the
 * defaults), an inflate stream 2^windowBits (32 KiB), for the connection's
 * whole life. That is why a server has it off unless asked
 * (`serve({ deflate: true })`); with `no_context_takeover` both ends drop
 * their streams after each message, so an idle connection holds none.
 *
 * @module
 */

import { HandshakeError, ProtocolError } from "./errors.ts";
import type {
  ClientExtension,
  Extension,
  ExtensionParams,
  OutgoingData,
  ServerExtension,
} from "./extension.ts";
import type { Role } from "./protocol.ts";

/** The extension token. */
const NAME = "permessage-deflate";
/** RSV1: "Per-Message Compressed" (RFC 7692 §6). */
const RSV1 = 4;
/** What a sync flush ends with, and what the receiver appends (§7.2.1, §7.2.2). */
const TAIL = new Uint8Array([0x00, 0x00, 0xff, 0xff]);
/** An empty stored block, byte-aligned, less its last four bytes (see `encode`). */
const EMPTY_BLOCK = new Uint8Array([0x00]);
/** RFC 7692 §7.1.2.1: the value is `%x38-39 / %x31 %x30-35` (8 to 15, no leading zero). */
const WINDOW_BITS = /^(?:[89]|1[0-5])$/;

/** Default for {@link PermessageDeflateOptions.threshold}: 1 KiB, as ws has it. */
export const DEFAULT_DEFLATE_THRESHOLD = 1024;
/**
 * How many zlib operations run at once across all connections: more wait
 * their turn. Many connections inflating at once fragment memory badly
 * (websockets/ws#1202); ws caps it at 10 too.
 */
export const ZLIB_CONCURRENCY = 10;

/**
 * Options for {@link permessageDeflate}. On a client they are what it asks
 * for in its offer; on a server, what it answers with.
 *
 * @example
 * ```ts
 * import type { PermessageDeflateOptions } from "@wsstream/wsstream";
 * const lean: PermessageDeflateOptions = {
 *   serverNoContextTakeover: true,
 *   clientNoContextTakeover: true,
 *   threshold: 256,
 * };
 * ```
 */
export interface PermessageDeflateOptions {
  /**
   * `server_no_context_takeover`: the server starts every message with an
   * empty window (less memory, less compression).
   */
  serverNoContextTakeover?: boolean | undefined;
  /** `client_no_context_takeover`: the same for the client. */
  clientNoContextTakeover?: boolean | undefined;
  /** `server_max_window_bits`, 8 to 15: the server's LZ77 window. */
  serverMaxWindowBits?: number | undefined;
  /** `client_max_window_bits`, 8 to 15: the client's LZ77 window. */
  clientMaxWindowBits?: number | undefined;
  /** Messages smaller than this many bytes go uncompressed (default 1024). */
  threshold?: number | undefined;
  /** zlib's compression level, 0 to 9 (default 6... zlib's default). */
  level?: number | undefined;
  /** zlib's memLevel, 1 to 9 (default 8): less is less memory per connection. */
  memLevel?: number | undefined;
}

/**
 * permessage-deflate for `connect` or `serve` (`extensions: [...]`):
 * offered by a client, answered by a server (RFC 7692).
 *
 * A client offers `client_max_window_bits` without a value (it can use any
 * window the server asks for) plus what the options ask; a server accepts
 * the first offer it can honour and declines offers with unknown, invalid
 * or repeated parameters (the next offer, if any, is tried).
 *
 * @param options Parameters, threshold and zlib's levels.
 * @returns The extension, for either end.
 * @throws {RangeError} for a window outside 8..15, a negative threshold or
 * a level out of zlib's range.
 *
 * @example A client offering it, and what it offers
 * ```ts
 * import { permessageDeflate } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 *
 * const deflate = permessageDeflate({ serverNoContextTakeover: true });
 * assert.deepEqual(deflate.offers(), [
 *   { server_no_context_takeover: true, client_max_window_bits: true },
 * ]);
 * // const connection = await connect(url, { extensions: [deflate] });
 * ```
 */
export function permessageDeflate(
  options: PermessageDeflateOptions = {},
): ClientExtension & ServerExtension {
  const settings = checkOptions(options);
  return {
    name: NAME,
    offers: () => [clientOffer(settings)],
    accept: (params) => acceptAnswer(settings, params),
    answer: (params) => answerOffer(settings, params),
  };
}

interface DeflateSettings {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number | undefined;
  clientMaxWindowBits: number | undefined;
  threshold: number;
  level: number | undefined;
  memLevel: number | undefined;
}

function checkOptions(options: PermessageDeflateOptions): DeflateSettings {
  if (options === null || typeof options !== "object") {
    throw new TypeError("permessage-deflate options must be an object");
  }
  const bits = (name: string, value: number | undefined) => {
    if (
      value !== undefined && !(Number.isInteger(value) && value >= 8 &&
        value <= 15)
    ) {
      throw new RangeError(
        `${name} must be an integer from 8 to 15, got ${value}`,
      );
    }
    return value;
  };
  const threshold = options.threshold ?? DEFAULT_DEFLATE_THRESHOLD;
  if (!(threshold >= 0) || !Number.isFinite(threshold)) {
    throw new RangeError(
      `threshold must be a non-negative number, got ${threshold}`,
    );
  }
  const level = options.level;
  if (
    level !== undefined &&
    !(Number.isInteger(level) && level >= 0 && level <= 9)
  ) {
    throw new RangeError(`level must be an integer from 0 to 9, got ${level}`);
  }
  const memLevel = options.memLevel;
  if (
    memLevel !== undefined &&
    !(Number.isInteger(memLevel) && memLevel >= 1 && memLevel <= 9)
  ) {
    throw new RangeError(
      `memLevel must be an integer from 1 to 9, got ${memLevel}`,
    );
  }
  return {
    serverNoContextTakeover: options.serverNoContextTakeover === true,
    clientNoContextTakeover: options.clientNoContextTakeover === true,
    serverMaxWindowBits: bits(
      "serverMaxWindowBits",
      options.serverMaxWindowBits,
    ),
    clientMaxWindowBits: bits(
      "clientMaxWindowBits",
      options.clientMaxWindowBits,
    ),
    threshold,
    level,
    memLevel,
  };
}

/** What a client offers: one offer, with `client_max_window_bits`. */
function clientOffer(settings: DeflateSettings): ExtensionParams {
  const params: ExtensionParams = {};
  if (settings.serverNoContextTakeover) {
    params.server_no_context_takeover = true;
  }
  if (settings.clientNoContextTakeover) {
    params.client_no_context_takeover = true;
  }
  if (settings.serverMaxWindowBits !== undefined) {
    params.server_max_window_bits = String(settings.serverMaxWindowBits);
  }
  // §7.1.2.2: "This parameter has no value or a decimal integer value";
  // without a value it says we can honour any window the server picks.
  params.client_max_window_bits = settings.clientMaxWindowBits === undefined
    ? true
    : String(settings.clientMaxWindowBits);
  return params;
}

/** The agreed parameters, read by both ends. */
interface Agreed {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number;
  clientMaxWindowBits: number;
}

/**
 * Reads an offer or an answer: `null` (with the problem) for an unknown,
 * repeated or invalid parameter. Repeats never reach here: the header
 * parser refuses a parameter repeated within one element.
 */
function readParams(
  params: ExtensionParams,
): { problem: string } | {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number | undefined;
  clientMaxWindowBits: number | true | undefined;
} {
  let serverNoContextTakeover = false;
  let clientNoContextTakeover = false;
  let serverMaxWindowBits: number | undefined;
  let clientMaxWindowBits: number | true | undefined;
  for (const [name, value] of Object.entries(params)) {
    switch (name) {
      case "server_no_context_takeover":
      case "client_no_context_takeover":
        // §7.1.1.1/2: "This parameter has no value."
        if (value !== true) return { problem: `${name} has a value` };
        if (name === "server_no_context_takeover") {
          serverNoContextTakeover = true;
        } else clientNoContextTakeover = true;
        break;
      case "server_max_window_bits":
        if (value === true || !WINDOW_BITS.test(value)) {
          return { problem: `invalid ${name} ${JSON.stringify(value)}` };
        }
        serverMaxWindowBits = Number(value);
        break;
      case "client_max_window_bits":
        if (value !== true && !WINDOW_BITS.test(value)) {
          return { problem: `invalid ${name} ${JSON.stringify(value)}` };
        }
        clientMaxWindowBits = value === true ? true : Number(value);
        break;
      default:
        // §5: "unknown extension parameter" declines (server) or fails (client).
        return { problem: `unknown parameter ${name}` };
    }
  }
  return {
    serverNoContextTakeover,
    clientNoContextTakeover,
    serverMaxWindowBits,
    clientMaxWindowBits,
  };
}

/** The client's check of the server's answer (RFC 7692 §5, §7.1). */
function acceptAnswer(
  settings: DeflateSettings,
  params: ExtensionParams,
): Extension {
  const read = readParams(params);
  const fail = (problem: string) =>
    new HandshakeError(
      `Server's permessage-deflate answer is not acceptable: ${problem}`,
      0,
    );
  if ("problem" in read) throw fail(read.problem);
  // §7.1.1.1: a client that asked for server_no_context_takeover must get it.
  if (settings.serverNoContextTakeover && !read.serverNoContextTakeover) {
    throw fail("server_no_context_takeover was asked for and is missing");
  }
  const asked = settings.serverMaxWindowBits;
  if (asked !== undefined) {
    // §7.1.2.1: the server answers "with the same or smaller value".
    if (read.serverMaxWindowBits === undefined) {
      throw fail("server_max_window_bits was asked for and is missing");
    }
    if (read.serverMaxWindowBits > asked) {
      throw fail(
        `server_max_window_bits ${read.serverMaxWindowBits} is over the ${asked} asked for`,
      );
    }
  }
  const client = read.clientMaxWindowBits;
  // §7.1.2.2: "the server MUST NOT include [it] in the response" unless offered
  // (we always offer it); the answer must carry a value, at most ours.
  if (client === true) throw fail("client_max_window_bits has no value");
  const ours = settings.clientMaxWindowBits ?? 15;
  if (client !== undefined && client > ours) {
    throw fail(`client_max_window_bits ${client} is over the ${ours} offered`);
  }
  return new PermessageDeflate("client", settings, {
    serverNoContextTakeover: read.serverNoContextTakeover,
    clientNoContextTakeover: read.clientNoContextTakeover ||
      settings.clientNoContextTakeover,
    serverMaxWindowBits: read.serverMaxWindowBits ?? 15,
    clientMaxWindowBits: client ?? ours,
  }, params);
}

/** The server's answer to one offer, or `null` to decline it. */
function answerOffer(
  settings: DeflateSettings,
  params: ExtensionParams,
): Extension | null {
  const read = readParams(params);
  if ("problem" in read) return null;
  const answer: ExtensionParams = {};
  const serverNoContextTakeover = read.serverNoContextTakeover ||
    settings.serverNoContextTakeover;
  if (serverNoContextTakeover) answer.server_no_context_takeover = true;
  const clientNoContextTakeover = read.clientNoContextTakeover ||
    settings.clientNoContextTakeover;
  if (clientNoContextTakeover) answer.client_no_context_takeover = true;
  // §7.1.2.1: we use at most the window the client asked for, and say so.
  let serverBits = settings.serverMaxWindowBits ?? 15;
  if (read.serverMaxWindowBits !== undefined) {
    serverBits = Math.min(serverBits, read.serverMaxWindowBits);
  }
  if (
    read.serverMaxWindowBits !== undefined ||
    settings.serverMaxWindowBits !== undefined
  ) answer.server_max_window_bits = String(serverBits);
  // §7.1.2.2: we may limit the client's window only if it offered the
  // parameter; a server that needs the limit declines an offer without it.
  let clientBits = 15;
  const offered = read.clientMaxWindowBits;
  if (settings.clientMaxWindowBits !== undefined) {
    if (offered === undefined) return null;
    clientBits = offered === true
      ? settings.clientMaxWindowBits
      : Math.min(offered, settings.clientMaxWindowBits);
    answer.client_max_window_bits = String(clientBits);
  } else if (typeof offered === "number") {
    // The client will use at most this; our inflater needs no more.
    clientBits = offered;
    answer.client_max_window_bits = String(clientBits);
  }
  return new PermessageDeflate("server", settings, {
    serverNoContextTakeover,
    clientNoContextTakeover,
    serverMaxWindowBits: serverBits,
    clientMaxWindowBits: clientBits,
  }, answer);
}

type Zlib = typeof import("node:zlib");
type ZlibStream =
  | import("node:zlib").DeflateRaw
  | import("node:zlib").InflateRaw;
let zlibModule: Zlib | null = null;
/** node:zlib, imported on first use. */
async function loadZlib(): Promise<Zlib> {
  return zlibModule ??= await import("node:zlib");
}

// The cap on zlib work in flight across connections (ZLIB_CONCURRENCY).
let running = 0;
const waiting: (() => void)[] = [];
function acquire(): Promise<void> | null {
  if (running < ZLIB_CONCURRENCY) {
    running++;
    return null;
  }
  return new Promise((resolve) => waiting.push(resolve));
}
function release(): void {
  const next = waiting.shift();
  // The slot passes straight to the next in line.
  if (next !== undefined) next();
  else running--;
}

/**
 * zlib's raw deflate refuses windowBits 8 (deflateInit2 returns
 * Z_STREAM_ERROR: "until 256-byte window bug fixed"), so 8 is taken as 9.
 * That is safe for what we send: zlib never emits a distance over its
 * MAX_DIST, w_size - MIN_LOOKAHEAD = 512 - 262 = 250 bytes at 9, which
 * fits the peer's 256-byte window (§7.1.2.1 bounds the window the sender
 * uses, which is the farthest a match may reach). For what we receive, a
 * window larger than the sender's is always enough.
 */
function zlibWindowBits(bits: number): number {
  return bits === 8 ? 9 : bits;
}

function join(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) {
    const only = chunks[0]!;
    return new Uint8Array(only.buffer, only.byteOffset, only.length);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/**
 * A stream with an error listener of its own: errors while a message is
 * processed are `run`'s; one after (on a stream being closed) must not
 * become an uncaught error.
 */
function quiet<T extends ZlibStream>(stream: T): T {
  stream.on("error", () => {});
  return stream;
}

function endsWithTail(bytes: Uint8Array): boolean {
  const n = bytes.length;
  return n >= 4 && bytes[n - 4] === 0 && bytes[n - 3] === 0 &&
    bytes[n - 2] === 0xff && bytes[n - 1] === 0xff;
}

/** permessage-deflate agreed on one connection. */
class PermessageDeflate implements Extension {
  readonly name = NAME;
  readonly rsv = RSV1;
  readonly params: ExtensionParams;
  readonly #threshold: number;
  readonly #level: number | undefined;
  readonly #memLevel: number | undefined;
  /** Our deflater starts each message afresh. */
  readonly #sendNoContext: boolean;
  readonly #sendBits: number;
  /** The peer's deflater starts each message afresh: our inflater may too. */
  readonly #receiveNoContext: boolean;
  readonly #receiveBits: number;
  #deflate: import("node:zlib").DeflateRaw | null = null;
  #inflate: import("node:zlib").InflateRaw | null = null;
  /** Whether the message being sent is compressed (set on its first part). */
  #compressing = false;
  #closed = false;
  /** Ends the zlib operation under way, if any (see `run`). */
  readonly #running: Running = { abort: null };

  constructor(
    role: Role,
    settings: DeflateSettings,
    agreed: Agreed,
    params: ExtensionParams,
  ) {
    this.params = params;
    this.#threshold = settings.threshold;
    this.#level = settings.level;
    this.#memLevel = settings.memLevel;
    const server = role === "server";
    this.#sendNoContext = server
      ? agreed.serverNoContextTakeover
      : agreed.clientNoContextTakeover;
    this.#receiveNoContext = server
      ? agreed.clientNoContextTakeover
      : agreed.serverNoContextTakeover;
    this.#sendBits = server
      ? agreed.serverMaxWindowBits
      : agreed.clientMaxWindowBits;
    this.#receiveBits = server
      ? agreed.clientMaxWindowBits
      : agreed.serverMaxWindowBits;
  }

  encode(
    data: OutgoingData,
  ):
    | { payload: Uint8Array; rsv: number }
    | Promise<
      { payload: Uint8Array; rsv: number }
    > {
    if (data.first) {
      // A message in fragments is compressed whatever its first part's size.
      this.#compressing = data.compress !== false &&
        (!data.fin || data.payload.length >= this.#threshold);
    }
    if (!this.#compressing) return { payload: data.payload, rsv: 0 };
    return this.#deflateNow(data.payload, data.fin);
  }

  async #deflateNow(
    payload: Uint8Array,
    fin: boolean,
  ): Promise<{ payload: Uint8Array; rsv: number }> {
    const zlib = zlibModule ?? await loadZlib();
    await acquire();
    try {
      if (this.#closed) throw closedError();
      const deflate = this.#deflate ??= quiet(zlib.createDeflateRaw({
        windowBits: zlibWindowBits(this.#sendBits),
        ...(this.#level === undefined ? {} : { level: this.#level }),
        ...(this.#memLevel === undefined ? {} : { memLevel: this.#memLevel }),
      }));
      let out = await run(
        this.#running,
        deflate,
        [payload],
        (flush) => deflate.flush(zlib.constants.Z_SYNC_FLUSH, flush),
      );
      if (fin) {
        // §7.2.1: "Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the
        // tail end." A sync flush with nothing new since the last one (the
        // empty last fragment of a message, an empty message after another)
        // writes nothing: the message then ends with an empty stored block
        // of its own, 00 00 00 ff ff, less those four octets.
        if (endsWithTail(out)) out = out.subarray(0, out.length - 4);
        else if (out.length === 0) out = EMPTY_BLOCK;
        if (this.#sendNoContext) this.#dropDeflate();
      }
      return { payload: out, rsv: RSV1 };
    } finally {
      release();
    }
  }

  async decode(payload: Uint8Array, maxSize: number): Promise<Uint8Array> {
    const zlib = zlibModule ?? await loadZlib();
    await acquire();
    try {
      if (this.#closed) throw closedError();
      const inflate = this.#inflate ??= quiet(zlib.createInflateRaw({
        windowBits: zlibWindowBits(this.#receiveBits),
      }));
      let ended = false;
      const onEnd = () => (ended = true);
      inflate.once("end", onEnd);
      let out: Uint8Array;
      try {
        // §7.2.2: "Append 4 octets of 0x00 0x00 0xff 0xff to the tail end of
        // the payload of the message" and decompress.
        out = await run(
          this.#running,
          inflate,
          [payload, TAIL],
          (flush) => inflate.flush(flush),
          maxSize,
        );
      } catch (error) {
        this.#dropInflate();
        throw error;
      }
      inflate.off("end", onEnd);
      // A message ending with a BFINAL block ends the peer's stream: the
      // next starts a new one (§7.2.3.3), and so does our inflater.
      if (ended || this.#receiveNoContext) this.#dropInflate();
      return out;
    } finally {
      release();
    }
  }

  close(): void {
    this.#closed = true;
    // A closed stream may never call back: what waits on it fails now.
    this.#running.abort?.(closedError());
    this.#dropDeflate();
    this.#dropInflate();
  }

  #dropDeflate(): void {
    this.#deflate?.close();
    this.#deflate = null;
  }

  #dropInflate(): void {
    this.#inflate?.close();
    this.#inflate = null;
  }
}

/**
 * Writes `input` to a zlib stream, flushes, and gathers what comes out,
 * refusing more than `limit` bytes as it comes (the decompression bomb:
 * never more than about `limit` is held).
 */
/** How to end the operation under way on one extension's streams. */
interface Running {
  abort: ((error: Error) => void) | null;
}

function closedError(): Error {
  return new Error("permessage-deflate was closed with its connection");
}

function run(
  running: Running,
  stream: ZlibStream,
  inputs: Uint8Array[],
  flush: (done: () => void) => void,
  limit = Infinity,
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let size = 0;
    let settled = false;
    const finish = (error: unknown, result?: Uint8Array) => {
      if (settled) return;
      settled = true;
      running.abort = null;
      stream.off("data", onData);
      stream.off("error", onError);
      if (error === null) resolve(result!);
      else reject(error);
    };
    const onData = (chunk: Uint8Array) => {
      size += chunk.length;
      if (size > limit) {
        finish(
          new ProtocolError(
            `Message over the ${limit}-byte limit once inflated`,
            1009,
          ),
        );
        return;
      }
      chunks.push(chunk);
    };
    const onError = (error: Error) =>
      finish(
        new ProtocolError(`Invalid compressed data: ${error.message}`, 1007),
      );
    running.abort = (error) => finish(error);
    stream.on("data", onData);
    stream.on("error", onError);
    for (const input of inputs) if (input.length > 0) stream.write(input);
    flush(() => {
      // Deno calls back even when the data was bad, before the error event.
      const failed = (stream as { errored?: Error | null }).errored;
      if (failed) onError(failed);
      else if (stream.destroyed) onError(new Error("zlib stream closed"));
      else finish(null, join(chunks, size));
    });
  });
}
