/**
 * `serve()`: accept WebSocket connections.
 *
 * @module
 */

import { DeadlineQueue } from "./_deadline_queue.ts";
import { Link, LinkedList } from "./_linked_list.ts";
import { readHead } from "./_read_head.ts";
import { DEFAULT_MAX_BODY_SIZE, serveFallback } from "./_http_fallback.ts";
import { channelOf } from "./stream_channel.ts";
import type {
  CloseInfo,
  CloseOptions,
  WebSocketConnection,
} from "./connection.ts";
import { OpenConnections } from "./open_connections.ts";
import { takeoverWith } from "./takeover.ts";
import {
  type ConnectionOptions,
  type ConnectionSettings,
  connectionSettings,
} from "./connection_options.ts";
import { encodeClosePayload } from "./close.ts";
import { ConnectionClosedError, HandshakeError } from "./errors.ts";
import { type ExtensionOffer, selectSubprotocol } from "./handshake_headers.ts";
import { answerExtensions, type ServerExtension } from "./extension.ts";
import {
  permessageDeflate,
  type PermessageDeflateOptions,
} from "./permessage_deflate.ts";
import {
  buildServerResponse,
  isWebSocketRequest,
  refusalResponse,
  type UpgradeRequest,
  validateClientRequest,
} from "./handshake_server.ts";
import { type HeadLimits, parseRequestHead } from "./http1_parse.ts";
import { currentRuntime } from "./runtime.ts";
import type {
  Address,
  Listener,
  RuntimeTransports,
  Transport,
} from "./transport.ts";

/** Default for {@link ServeOptions.handshakeTimeout}: 10 s. */
export const DEFAULT_SERVER_HANDSHAKE_TIMEOUT = 10_000;

/**
 * What {@link ServeOptions.onUpgrade} decides for a request: `false` refuses
 * it with 403; an object accepts it, optionally choosing the subprotocol and
 * adding response headers. (Throw a `HandshakeError` to refuse with another
 * status.)
 *
 * @example
 * ```ts
 * import type { UpgradeDecision } from "@wsstream/wsstream";
 * const accept: UpgradeDecision = { protocol: "chat", headers: { "X-Room": "lobby" } };
 * ```
 */
export type UpgradeDecision =
  | boolean
  | void
  | {
    /** The subprotocol to agree on; must be one the client offered. */
    protocol?: string;
    /** Extra headers for the 101 response. */
    headers?: HeadersInit;
  };

/**
 * An upgrade request as the handler sees it: the parsed handshake and the
 * peer's address.
 *
 * @example
 * ```ts
 * import type { ServerRequest } from "@wsstream/wsstream";
 * function room(request: ServerRequest): string {
 *   return new URLSearchParams(request.query).get("room") ?? "lobby";
 * }
 * ```
 */
export interface ServerRequest extends UpgradeRequest {
  /** The peer's address. */
  remoteAddr: Address | null;
}

/**
 * Options for {@link serve}.
 *
 * @example
 * ```ts
 * import type { ServeOptions } from "@wsstream/wsstream";
 * const options: ServeOptions = {
 *   hostname: "127.0.0.1",
 *   port: 9001,
 *   protocols: ["chat.v2", "chat.v1"],
 *   onUpgrade: (request) => request.headers.get("origin") === "https://example.com",
 * };
 * ```
 */
export interface ServeOptions extends ConnectionOptions {
  /** The address to listen on (default `0.0.0.0`). */
  hostname?: string | undefined;
  /** The port to listen on (default 8000; 0 picks a free one, see `server.addr`). */
  port?: number | undefined;
  /** TLS certificate chain (PEM); with `key`, serves wss:. */
  cert?: string | undefined;
  /** TLS private key (PEM). */
  key?: string | undefined;
  /**
   * Subprotocols this server speaks. The first one in the CLIENT's list of
   * preference that is in this list is agreed (RFC 6455 §4.2.2).
   */
  protocols?: readonly string[] | undefined;
  /**
   * Extensions this server speaks, most preferred first: each answers the
   * first of the client's offers of it that it can accept.
   */
  extensions?: readonly ServerExtension[] | undefined;
  /**
   * permessage-deflate (RFC 7692): `true` or its parameters to answer
   * clients that offer it. Off by default: with context takeover each
   * connection holds a deflate and an inflate stream (about 300 KiB at
   * zlib's defaults) for its whole life; see `permessageDeflate`.
   */
  deflate?: boolean | PermessageDeflateOptions | undefined;
  /**
   * The deferred upgrade: inspect the request before accepting it. Return
   * `false` to refuse with 403, an object to accept with a chosen subprotocol
   * or extra headers, or throw a `HandshakeError` to refuse with its status.
   */
  onUpgrade?:
    | ((request: ServerRequest) => UpgradeDecision | Promise<UpgradeDecision>)
    | undefined;
  /**
   * Answers plain HTTP requests (those without `Upgrade: websocket`), as a
   * fetch-style handler. Without it they get 426 Upgrade Required.
   *
   * The request's `body` streams the bytes as the handler reads them
   * (`Content-Length` or chunked, up to `maxBodySize`); the `Response`'s
   * body is sent as bytes, with `Content-Length` when its length is known
   * and chunked otherwise (close-delimited to HTTP/1.0). Connections are
   * kept alive between requests as RFC 9112 §9.3 says, each next request
   * awaited for up to `handshakeTimeout`, and a WebSocket upgrade on a kept
   * connection is accepted as on a new one. A handler that throws gets the
   * client a 500 and `onError` the error (a thrown `HandshakeError` is sent
   * as that refusal instead); malformed requests get 400 and never reach it.
   */
  fallback?: ((request: Request) => Response | Promise<Response>) | undefined;
  /**
   * Most bytes of one request body for `fallback` (default 1 MiB, 1 048 576).
   * A `Content-Length` over it is refused with 413 before `fallback` is
   * called; a chunked body that grows over it errors the request's stream,
   * and the client gets 413.
   */
  maxBodySize?: number | undefined;
  /** How long a client may take to send its handshake, in ms (default 10 000); then 408. */
  handshakeTimeout?: number | undefined;
  /** Limits on the request head; over them, 414 (the request line) or 431. */
  headLimits?: Partial<HeadLimits> | undefined;
  /** Called with errors thrown by the handler or hooks (default: `console.error`). */
  onError?: ((error: unknown) => void) | undefined;
  /** The transports to use instead of the running runtime's. */
  transport?: RuntimeTransports | undefined;
}

/**
 * Handles one accepted connection. When it throws or rejects, the error goes
 * to `onError` and the connection, if still open, is closed with 1011; a
 * `ConnectionClosedError` thrown because the connection closed (a peer that
 * went away, cleanly or not) ends the handler quietly.
 *
 * @example
 * ```ts
 * import type { ConnectionHandler } from "@wsstream/wsstream";
 * const echo: ConnectionHandler = async (connection) => {
 *   for await (const message of connection.readable) await connection.send(message);
 * };
 * ```
 */
export type ConnectionHandler = (
  connection: WebSocketConnection,
  request: ServerRequest,
) => void | Promise<void>;

/**
 * A running server.
 *
 * @example
 * ```ts
 * import type { WebSocketServer } from "@wsstream/wsstream";
 * async function stop(server: WebSocketServer) {
 *   console.log(`closing ${server.connections.size} connections`);
 *   await server.close();
 * }
 * ```
 */
export interface WebSocketServer {
  /** The bound address (the real port when 0 was asked for). */
  readonly addr: Address;
  /** The open connections. */
  readonly connections: ReadonlySet<WebSocketConnection>;
  /** The open connections whose peer matches `hostname` and/or `port`. */
  find(peer: { hostname?: string; port?: number }): WebSocketConnection[];
  /**
   * Stops accepting, sends every connection a close frame (default 1001
   * "Going away"), waits for their close handshakes (each bounded by its
   * `closeTimeout`), and drops handshakes still under way.
   */
  close(options?: CloseOptions): Promise<void>;
  /** Resolves once `close()` has finished. */
  readonly finished: Promise<void>;
}

/** A handshake under way, in the server's list of them. */
class Handshake extends Link {
  constructor(readonly transport: Transport) {
    super();
  }
}

/**
 * Listens for WebSocket connections and calls `handler` with each one.
 *
 * Non-upgrade requests get 426 (or go to `fallback`), malformed ones 400,
 * wrong versions 426 with `Sec-WebSocket-Version: 13`, an overlong request
 * line 414, other oversized heads 431, slow ones 408 after
 * `handshakeTimeout`. Nothing a client sends can throw out of the server.
 *
 * @param options Where to listen, TLS, subprotocols, hooks, limits.
 * @param handler Called with each connection and its request.
 * @returns The running server.
 *
 * @example An echo server on a free port
 * ```ts
 * import { serve } from "@wsstream/wsstream";
 *
 * const server = await serve({ hostname: "127.0.0.1", port: 0 }, async (connection) => {
 *   for await (const message of connection.readable) await connection.send(message);
 * });
 * console.log(`listening on ws://127.0.0.1:${server.addr.port}`);
 * await server.close();
 * ```
 */
export function serve(
  options: ServeOptions,
  handler: ConnectionHandler,
): Promise<WebSocketServer> {
  // Every option is checked here, at the call, before any I/O.
  if (typeof handler !== "function") {
    throw new TypeError(
      "serve needs a handler function: serve(options, handler)",
    );
  }
  if ((options.cert === undefined) !== (options.key === undefined)) {
    throw new TypeError("TLS needs both cert and key");
  }
  const handshakeTimeout = options.handshakeTimeout ??
    DEFAULT_SERVER_HANDSHAKE_TIMEOUT;
  // A refusal ends the connection: it gets as long as a close (the
  // connection's closeTimeout, default 10 s) to go out.
  const refusalTimeout = options.closeTimeout ?? 10_000;
  if (!(handshakeTimeout > 0) || !Number.isFinite(handshakeTimeout)) {
    throw new RangeError(
      `handshakeTimeout must be a positive number, got ${handshakeTimeout}`,
    );
  }
  const maxBodySize = options.maxBodySize ?? DEFAULT_MAX_BODY_SIZE;
  if (!Number.isSafeInteger(maxBodySize) || maxBodySize < 0) {
    throw new RangeError(
      `maxBodySize must be a non-negative integer, got ${maxBodySize}`,
    );
  }
  const port = options.port ?? 8000;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`Invalid port ${port}: use 0 to 65535`);
  }
  const runtime = options.transport ?? currentRuntime();
  const extensions = serverExtensions(options);
  // Resolved once: every connection of this server shares them.
  const settings = connectionSettings(
    options,
    "server",
    runtime.payloadBuffers,
  );
  return listenAndServe(options, handler, {
    handshakeTimeout,
    refusalTimeout,
    maxBodySize,
    port,
    runtime,
    settings,
    extensions,
  });
}

/** The server's extensions: those given, then permessage-deflate if asked. */
function serverExtensions(options: ServeOptions): readonly ServerExtension[] {
  const given = options.extensions ?? [];
  if (!Array.isArray(given)) {
    throw new TypeError("extensions must be an array of server extensions");
  }
  for (const extension of given) {
    if (typeof extension?.answer !== "function") {
      throw new TypeError(
        "extensions must be server extensions (with an answer method)",
      );
    }
  }
  const deflate = options.deflate;
  if (deflate === undefined || deflate === false) return given;
  return [
    ...given,
    permessageDeflate(deflate === true ? {} : deflate),
  ];
}

/** {@link serve}, its options checked. */
async function listenAndServe(
  options: ServeOptions,
  handler: ConnectionHandler,
  checked: {
    handshakeTimeout: number;
    refusalTimeout: number;
    maxBodySize: number;
    port: number;
    runtime: RuntimeTransports;
    settings: ConnectionSettings;
    extensions: readonly ServerExtension[];
  },
): Promise<WebSocketServer> {
  const { handshakeTimeout, refusalTimeout, maxBodySize, port, runtime } =
    checked;
  const onError = options.onError ?? ((error) => console.error(error));
  const connections = new OpenConnections();
  // Linked lists, not sets: see _linked_list.ts.
  const handshaking = new LinkedList<Handshake>();
  let closing = false;

  // A handler that ends because its connection closed (its iteration or a
  // send threw ConnectionClosedError) is normal life for a server: a peer
  // that vanishes is no bug. Only other errors, or that one while the
  // connection is still open (from another connection, say), are reported,
  // and a connection still open is then closed with 1011.
  const failed = (connection: WebSocketConnection, error: unknown) => {
    const open = connection.info.state === "open";
    if (error instanceof ConnectionClosedError && !open) return;
    onError(error);
    if (open) connection.close({ closeCode: 1011 }).catch(() => {});
  };
  // Not an async function: its frame would keep `request` (the parsed
  // headers) for as long as the handler runs, whether the handler keeps it
  // or not.
  const run = (connection: WebSocketConnection, request: ServerRequest) => {
    let running: unknown;
    try {
      running = handler(connection, request);
    } catch (error) {
      return failed(connection, error);
    }
    Promise.resolve(running).catch((error) => failed(connection, error));
  };

  // A refusal ends the connection: the response, a FIN, then the socket
  // closed. Bounded like a connection's graceful end: a client that does not
  // read, or a TLS client that never finished its handshake (nothing can be
  // written to it), must not hold the socket open. Never rejects.
  const refuse = async (transport: Transport, bytes: Uint8Array) => {
    const channel = channelOf(transport);
    const sent = (async () => {
      channel.write(bytes);
      await channel.closeWrite();
    })();
    sent.catch(() => {}); // The client is gone; nothing to tell it.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      sent,
      new Promise((resolve) => (timer = setTimeout(resolve, refusalTimeout))),
    ]).catch(() => {});
    clearTimeout(timer);
    transport.close();
  };

  // Every handshake gets handshakeTimeout to send its head; one timer keeps
  // all these deadlines. Whoever takes a transport's deadline out of the
  // queue ends its handshake: accept() once the head is read (or failed),
  // or the expiry, which answers 408. The read accept() still waits on then
  // ends when the refusal closes the socket.
  const deadlines = new DeadlineQueue<Transport>(
    handshakeTimeout,
    (transport) =>
      refuse(
        transport,
        refusalResponse(
          new HandshakeError(
            `Opening handshake timed out after ${handshakeTimeout} ms`,
            408,
          ),
        ),
      ),
  );

  const accept = async (transport: Transport) => {
    const handshake = handshaking.append(new Handshake(transport));
    const deadline = deadlines.add(transport);
    const channel = channelOf(transport);
    let upgraded = false;
    // Set while onUpgrade or what it returned is being run: only an error
    // thrown then is a server bug for onError and a 500 (the fallback keeps
    // its own account, in _http_fallback.ts).
    // Any other error here comes from the socket (a reset, a client's failed
    // TLS handshake, which Deno reports on the first read): the client's
    // doing, so the connection is just closed.
    let inHook = false;
    try {
      let read: { head: Uint8Array; rest: Uint8Array };
      try {
        read = await readHead(channel, options.headLimits);
      } catch (error) {
        if (deadline.unlink()) throw error;
        return; // Timed out (or the server closed it): not ours to end.
      }
      if (!deadline.unlink()) return; // Timed out meanwhile.
      let requestHead = parseRequestHead(read.head, options.headLimits);
      if (options.fallback && !isWebSocketRequest(requestHead)) {
        // Plain HTTP until the connection closes, or until a request on it
        // asks for a WebSocket: that one goes on below.
        const upgrade = await serveFallback(
          transport,
          channel,
          requestHead,
          read.rest,
          {
            handler: options.fallback,
            secure: options.cert !== undefined,
            headLimits: options.headLimits,
            maxBodySize,
            idleTimeout: handshakeTimeout,
            closeTimeout: refusalTimeout,
            onError,
            closing: () => closing,
          },
        );
        if (upgrade === null) return;
        requestHead = upgrade.head;
        read = { head: read.head, rest: upgrade.rest };
      }
      const upgrade = validateClientRequest(requestHead);
      // Not a spread: that would read upgrade.headers, which is made only
      // when a hook or the handler reads it.
      const request: ServerRequest = Object.assign(upgrade, {
        remoteAddr: transport.remoteAddr,
      });
      let protocol =
        selectSubprotocol(upgrade.protocols, options.protocols ?? []) ?? "";
      let headers: HeadersInit | undefined;
      if (options.onUpgrade) {
        inHook = true;
        const decision = await options.onUpgrade(request);
        inHook = false;
        if (decision === false) {
          throw new HandshakeError("The server refused this request", 403);
        }
        if (typeof decision === "object" && decision !== null) {
          if (decision.protocol !== undefined) protocol = decision.protocol;
          if (decision.headers !== undefined) headers = decision.headers;
        }
      }
      if (closing) throw new HandshakeError("The server is shutting down", 503);
      const extensions: ExtensionOffer[] = checked.extensions.length === 0
        ? []
        : answerExtensions(checked.extensions, upgrade.extensions);
      // A protocol or headers from onUpgrade that cannot be sent throw here.
      inHook = true;
      const accepted = await buildServerResponse(upgrade, {
        protocol,
        extensions,
        ...(headers === undefined ? {} : { headers }),
      });
      inHook = false;
      // Queued ahead of anything the connection sends; no need to wait.
      channel.write(accepted);
      handshake.unlink();
      upgraded = true;
      const connection = takeoverWith(transport, {
        role: "server",
        head: read.rest,
        protocol,
        extensions: extensions.length > 0 ? extensions : undefined,
        path: upgrade.target,
        openIn: connections, // kept there until closed, without a closure
      }, checked.settings);
      // Not awaited, and no closure made here: this frame's state (the
      // parsed head) is let go now, not kept with the connection for its
      // whole life.
      run(connection, request);
    } catch (error) {
      if (upgraded) return;
      if (error instanceof HandshakeError && error.status >= 400) {
        await refuse(transport, refusalResponse(error));
      } else if (closing || !inHook) {
        transport.close();
      } else {
        // A hook threw something that is not a refusal: a server bug.
        onError(error);
        await refuse(
          transport,
          refusalResponse(
            new HandshakeError("Internal error during the handshake", 500),
          ),
        );
      }
    } finally {
      handshake.unlink();
    }
  };

  const listener: Listener = await runtime.listen({
    hostname: options.hostname ?? "0.0.0.0",
    port,
    tls: options.cert !== undefined && options.key !== undefined
      ? { cert: options.cert, key: options.key }
      : undefined,
  }, (transport) => {
    if (closing) {
      transport.close();
      return;
    }
    accept(transport).catch(onError);
  });

  let resolveFinished!: () => void;
  const finished = new Promise<void>((resolve) => (resolveFinished = resolve));
  let closePromise: Promise<void> | null = null;

  return {
    addr: listener.addr,
    connections,
    finished,
    find(peer) {
      return [...connections].filter((connection) => {
        const remote = connection.info.remoteAddr;
        return remote !== null &&
          (peer.hostname === undefined || remote.hostname === peer.hostname) &&
          (peer.port === undefined || remote.port === peer.port);
      });
    },
    close(closeOptions = {}) {
      // A code or reason that may not be sent throws here, at the call.
      encodeClosePayload(
        closeOptions.closeCode ?? 1001,
        closeOptions.reason ?? "",
      );
      closePromise ??= (async () => {
        closing = true;
        listener.close();
        deadlines.clear();
        for (const { transport } of [...handshaking]) transport.close();
        const closeCode = closeOptions.closeCode ?? 1001;
        const all: Promise<CloseInfo>[] = [];
        for (const connection of connections) {
          all.push(connection.close({
            closeCode,
            ...(closeOptions.reason === undefined
              ? {}
              : { reason: closeOptions.reason }),
          }));
        }
        await Promise.all(all);
        resolveFinished();
      })();
      return closePromise;
    },
  };
}
