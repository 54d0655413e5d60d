/**
 * `connect()`: open a WebSocket connection as a client.
 *
 * @module
 */

import { readHead } from "./_read_head.ts";
import type { ByteChannel } from "./byte_channel.ts";
import { channelOf } from "./stream_channel.ts";
import type { WebSocketConnection } from "./connection.ts";
import { openConnection } from "./_connection_internals.ts";
import {
  type ConnectionOptions,
  type ConnectionSettings,
  connectionSettings,
} from "./connection_options.ts";
import { HandshakeError, TimeoutError } from "./errors.ts";
import { generateKey } from "./handshake.ts";
import {
  buildClientRequest,
  validateServerResponse,
} from "./handshake_client.ts";
import type { ExtensionOffer } from "./handshake_headers.ts";
import {
  acceptExtensions,
  type ClientExtension,
  extensionOffers,
} from "./extension.ts";
import { permessageDeflate } from "./permessage_deflate.ts";
import { type HeadLimits, parseResponseHead } from "./http1_parse.ts";
import { writeRequestHead } from "./http1_write.ts";
import { currentRuntime } from "./runtime.ts";
import type {
  ClientTlsOptions,
  RuntimeTransports,
  Transport,
} from "./transport.ts";

/**
 * What a client offers unless told otherwise: permessage-deflate, as
 * browsers do (a factory: each connection agreed gets its own streams).
 */
const DEFAULT_EXTENSIONS: readonly ClientExtension[] = [permessageDeflate()];

/** Default for {@link ConnectOptions.handshakeTimeout}: 10 s. */
export const DEFAULT_HANDSHAKE_TIMEOUT = 10_000;

/** The most of a refusal's body kept for {@link HandshakeError.body}. */
const MAX_REFUSAL_BODY = 64 * 1024;

/**
 * Options for {@link connect}.
 *
 * @example
 * ```ts
 * import type { ConnectOptions } from "@wsstream/wsstream";
 * const options: ConnectOptions = {
 *   protocols: ["chat.v2", "chat.v1"],
 *   headers: { Authorization: "Bearer t0ken" },
 *   handshakeTimeout: 5_000,
 * };
 * ```
 */
export interface ConnectOptions extends ConnectionOptions {
  /** Subprotocols to offer, most preferred first. */
  protocols?: string | string[] | undefined;
  /**
   * Extensions to offer, most preferred first (default: permessage-deflate,
   * `[permessageDeflate()]`; `[]` offers none). Raw offers (`{ name,
   * params }`) are sent as given and agreed without any transform.
   */
  extensions?: readonly (ClientExtension | ExtensionOffer)[] | undefined;
  /** Extra request headers (Origin, Authorization, cookies …). */
  headers?: HeadersInit | undefined;
  /** Cancels connecting; once connected it has no effect. */
  signal?: AbortSignal | undefined;
  /** How long the TCP/TLS connect plus the opening handshake may take, in ms (default 10 000). */
  handshakeTimeout?: number | undefined;
  /** TLS settings for wss: (extra CA certificates, server name). */
  tls?: ClientTlsOptions | undefined;
  /** Limits on the response head (size, line length, header count). */
  headLimits?: Partial<HeadLimits> | undefined;
  /** The transports to use instead of the running runtime's. */
  transport?: RuntimeTransports | undefined;
}

/**
 * Opens a WebSocket connection to `url` (ws: or wss:; http: and https: are
 * taken as ws: and wss:) and resolves once the opening handshake is done.
 *
 * @param url Where to connect: `ws://host[:port]/path?query`; IPv6 literals
 * in brackets.
 * @param options Subprotocols, headers, timeout, TLS, limits, hooks.
 * @returns The open connection.
 * @throws {TypeError} for a URL or option that is not valid.
 * @throws {HandshakeError} when the server refuses (with its HTTP `status`
 * and `body`) or does not speak WebSocket (status 0).
 * @throws {TimeoutError} when the handshake takes longer than `handshakeTimeout`.
 *
 * @example Send a message and wait for the answer
 * ```ts
 * import { connect } from "@wsstream/wsstream";
 *
 * async function ask(question: string): Promise<unknown> {
 *   const connection = await connect("ws://127.0.0.1:9001/chat", {
 *     protocols: ["chat"],
 *   });
 *   await connection.send(question);
 *   for await (const answer of connection.readable) {
 *     await connection.close();
 *     return answer;
 *   }
 *   throw new Error("closed without an answer");
 * }
 * ```
 */
export function connect(
  url: string | URL,
  options: ConnectOptions = {},
): Promise<WebSocketConnection> {
  // Every argument is checked here, at the call, before any I/O.
  const target = parseWebSocketUrl(url);
  const protocols = typeof options.protocols === "string"
    ? [options.protocols]
    : options.protocols ?? [];
  const timeout = options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT;
  if (!(timeout > 0) || !Number.isFinite(timeout)) {
    throw new RangeError(
      `handshakeTimeout must be a positive number, got ${timeout}`,
    );
  }
  const key = generateKey();
  // Build the request now, so bad headers or protocols throw before any I/O.
  const request = writeRequestHead(buildClientRequest({
    url: target,
    key,
    protocols,
    extensions: extensionOffers(options.extensions ?? DEFAULT_EXTENSIONS),
    headers: options.headers ?? {},
  }));
  const runtime = options.transport ?? currentRuntime();
  const settings = connectionSettings(
    options,
    "client",
    runtime.payloadBuffers,
  );
  return handshake(options, {
    target,
    protocols,
    timeout,
    key,
    request,
    runtime,
    settings,
  });
}

/** {@link connect}, its arguments checked: the TCP connect and the handshake. */
async function handshake(
  options: ConnectOptions,
  checked: {
    target: URL;
    protocols: string[];
    timeout: number;
    key: string;
    request: Uint8Array;
    runtime: RuntimeTransports;
    settings: ConnectionSettings;
  },
): Promise<WebSocketConnection> {
  const { target, protocols, timeout, key, request, runtime } = checked;
  const deadline = new AbortController();
  const timer = setTimeout(
    () =>
      deadline.abort(
        new TimeoutError(
          `Opening handshake with ${target.host} timed out after ${timeout} ms`,
        ),
      ),
    timeout,
  );
  const onAbort = () => deadline.abort(options.signal?.reason);
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener("abort", onAbort, { once: true });

  let transport: Transport | null = null;
  try {
    const secure = target.protocol === "wss:";
    transport = await runtime.connect({
      hostname: target.hostname.replace(/^\[(.*)\]$/, "$1"),
      port: Number(target.port) || (secure ? 443 : 80),
      tls: secure ? options.tls ?? {} : undefined,
      signal: deadline.signal,
    });
    const channel = channelOf(transport);
    // Once connected, a socket that fails (a reset: Bun reports ECONNRESET
    // on a read where Deno often sees a plain end) is the server hanging up
    // without an answer, like an end of stream: status 0, the same on every
    // runtime. The signal's reason (timeout, abort) is kept as it is.
    const hungUp = (error: unknown): never => {
      if (deadline.signal.aborted || error instanceof HandshakeError) {
        throw error;
      }
      throw new HandshakeError(
        "The server closed the connection before answering the handshake",
        0,
        { cause: error },
      );
    };
    try {
      channel.write(request);
    } catch (error) {
      hungUp(error);
    }
    const { head, rest } = await readHead(
      channel,
      options.headLimits,
      deadline.signal,
    )
      .catch((error) => {
        if (error instanceof HandshakeError && error.status === 400) {
          throw new HandshakeError(
            "The server closed the connection before answering the handshake",
            0,
            { cause: error },
          );
        }
        if (
          error instanceof HandshakeError &&
          (error.status === 414 || error.status === 431)
        ) {
          throw new HandshakeError(
            `The server's response head is too large: ${error.message}`,
            0,
          );
        }
        return hungUp(error);
      });
    const response = parseResponseHead(head, options.headLimits);
    if (response.status !== 101) {
      const body = await readBody(
        channel,
        rest,
        response.headers,
        deadline.signal,
      );
      throw new HandshakeError(
        `The server refused the WebSocket handshake: ${response.status} ${response.statusText}`,
        response.status,
        { headers: response.headers, body },
      );
    }
    const offered = options.extensions ?? DEFAULT_EXTENSIONS;
    const agreed = await validateServerResponse(response, {
      key,
      protocols,
      extensions: extensionOffers(offered),
    });
    return openConnection(transport, {
      role: "client",
      head: rest,
      protocol: agreed.protocol,
      extensions: acceptExtensions(offered, agreed.extensions),
      path: target.pathname + target.search,
    }, checked.settings);
  } catch (error) {
    transport?.close();
    throw error;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
  }
}

/** Checks and normalises a WebSocket URL (RFC 6455 §3). */
function parseWebSocketUrl(url: string | URL): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`Invalid WebSocket URL: ${String(url)}`);
  }
  if (parsed.protocol === "http:") parsed.protocol = "ws:";
  else if (parsed.protocol === "https:") parsed.protocol = "wss:";
  if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
    throw new TypeError(
      `Invalid WebSocket URL scheme "${parsed.protocol}": use ws: or wss:`,
    );
  }
  // §3: "Fragment identifiers are meaningless in the context of WebSocket
  // URIs and MUST NOT be used on these URIs."
  if (parsed.hash !== "" || String(url).includes("#")) {
    throw new TypeError(
      `A WebSocket URL cannot have a fragment: ${String(url)}`,
    );
  }
  return parsed;
}

/** Reads a refusal's body: up to Content-Length, else to the end, capped. */
async function readBody(
  channel: ByteChannel,
  first: Uint8Array,
  headers: Headers,
  signal: AbortSignal,
): Promise<string> {
  const declared = Number(headers.get("content-length") ?? NaN);
  const want = Math.min(
    Number.isFinite(declared) ? declared : MAX_REFUSAL_BODY,
    MAX_REFUSAL_BODY,
  );
  const parts = [first];
  let size = first.length;
  const aborted = new Promise<never>((_, reject) => {
    signal.addEventListener("abort", () => reject(signal.reason), {
      once: true,
    });
  });
  aborted.catch(() => {});
  try {
    while (size < want) {
      const bytes = await Promise.race([channel.read(), aborted]);
      if (bytes === null) break;
      parts.push(bytes);
      size += bytes.length;
    }
  } catch {
    // A refusal whose body breaks off still has a status worth reporting.
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return new TextDecoder().decode(bytes.subarray(0, want));
}
