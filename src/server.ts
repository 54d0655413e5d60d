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
import type { WebSocketConnection } from "./connection.ts";
import { dropConnection } from "./_connection_internals.ts";
import { OpenConnections } from "./open_connections.ts";
import { attachConnectionData } from "./_connection_data.ts";
import {
  DEFAULT_SHUTDOWN_TIMEOUT,
  type ShutdownOptions,
  type ShutdownReport,
} from "./shutdown.ts";
import { fieldsOf } from "./_header_fields.ts";
import { LazyProperty } from "./_lazy_property.ts";
import { OriginPolicy } from "./origin.ts";
import { attachLogger, connectionLogger, type Logger } from "./logger.ts";
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
 * it with 403; a `Response` (status 400 or more) refuses it with that
 * status, headers and body; an object accepts it, optionally choosing the
 * subprotocol, adding response headers and attaching `data` to the
 * connection ({@link WebSocketConnection.data}). `true` or nothing accepts
 * it as it is. (Throwing a `HandshakeError` refuses too.)
 *
 * When `Data` does not admit `undefined`, an acceptance must carry `data`:
 * the handler can then read `connection.data` without a check or a cast.
 *
 * @typeParam Data What an acceptance attaches to the connection.
 *
 * @example
 * ```ts
 * import type { UpgradeDecision } from "@wsstream/wsstream";
 * const accept: UpgradeDecision = { protocol: "chat", headers: { "X-Room": "lobby" } };
 * const withUser: UpgradeDecision<{ user: string }> = { data: { user: "ann" } };
 * const refuse: UpgradeDecision = new Response("Log in first", { status: 401 });
 * ```
 */
export type UpgradeDecision<Data = undefined> =
  | false
  | Response
  | UpgradeAcceptance<Data>
  | (undefined extends Data ? true | void : never);

/**
 * An accepting {@link UpgradeDecision}: the subprotocol, extra headers for
 * the 101 response, and the connection's data (required when `Data` does
 * not admit `undefined`).
 *
 * @typeParam Data What it attaches to the connection.
 *
 * @example
 * ```ts
 * import type { UpgradeAcceptance } from "@wsstream/wsstream";
 * const accept: UpgradeAcceptance<{ room: string }> = {
 *   protocol: "chat",
 *   headers: { "X-Room": "lobby" },
 *   data: { room: "lobby" },
 * };
 * ```
 */
export type UpgradeAcceptance<Data = undefined> =
  & {
    /** The subprotocol to agree on; must be one the client offered. */
    protocol?: string;
    /** Extra headers for the 101 response. */
    headers?: HeadersInit;
  }
  & (undefined extends Data ? {
      /** Attached to the connection as `connection.data`. */
      data?: Data;
    }
    : {
      /** Attached to the connection as `connection.data`. */
      data: Data;
    });

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
  /**
   * The peer's address, read when first asked for. On Bun, first asked for
   * once the connection has closed, it is `null` (as `ConnectionInfo`'s):
   * read it in `onUpgrade` or the handler to keep it. A refused request's
   * is read before its socket closes.
   */
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
export interface ServeOptions<Data = unknown> extends ConnectionOptions {
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
   * The deferred upgrade: inspect the request (and await anything, a
   * session lookup say) before accepting it. Return `false` to refuse with
   * 403, a `Response` to refuse with its status, headers and body, an
   * object to accept with a chosen subprotocol, extra headers or the
   * connection's `data` (its type is `Data`, which flows to the handler's
   * `connection.data`), or throw a `HandshakeError` to refuse with its
   * status.
   */
  onUpgrade?:
    | ((
      request: ServerRequest,
    ) => UpgradeDecision<Data> | Promise<UpgradeDecision<Data>>)
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
  /**
   * Origins allowed to open connections, as globs (see `OriginPolicy`): a
   * handshake whose `Origin` is neither the server's own nor matched gets
   * 403 before `onUpgrade` runs; one without `Origin` (not a browser) goes
   * on. `[]` allows the same origin only, `["*"]` any. Default: no check,
   * so set it whenever browsers send credentials (cookies, HTTP auth) that
   * your handler trusts: see "Origins" in the README on cross-site
   * WebSocket hijacking.
   */
  origins?: readonly string[] | undefined;
  /**
   * Aborting it shuts the server down gracefully, as `server.close()`
   * does; `server.finished` then resolves with the report.
   */
  signal?: AbortSignal | undefined;
  /**
   * The one overall deadline of a shutdown, in ms (default 10 000): see
   * `server.close()`.
   */
  shutdownTimeout?: number | undefined;
  /** How long a client may take to send its handshake, in ms (default 10 000); then 408. */
  handshakeTimeout?: number | undefined;
  /** Limits on the request head; over them, 414 (the request line) or 431. */
  headLimits?: Partial<HeadLimits> | undefined;
  /**
   * Called with errors thrown by the handler or hooks (default: the
   * `logger`'s `error`, else `console.error`).
   */
  onError?: ((error: unknown) => void) | undefined;
  /**
   * Where the server logs (see `Logger`): its life cycle and each
   * connection's at `debug` (listening, opened, closed, handshakes refused,
   * shutting down), handler and hook errors at `error`. What peers do in
   * the ordinary course of things is never logged above `debug`. Each
   * connection gets a child logger: `connectionLogger(connection)`.
   * Default: none (errors go to `onError`).
   */
  logger?: Logger | undefined;
  /** The transports to use instead of the running runtime's. */
  transport?: RuntimeTransports | undefined;
}

/**
 * Handles one accepted connection (`Data` is what `onUpgrade` attached to
 * it, as `connection.data`). When it throws or rejects, the error goes
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
export type ConnectionHandler<Data = unknown> = (
  connection: WebSocketConnection<Data>,
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
export interface WebSocketServer<Data = unknown> {
  /** The bound address (the real port when 0 was asked for). */
  readonly addr: Address;
  /** The open connections. */
  readonly connections: ReadonlySet<WebSocketConnection<Data>>;
  /** The open connections whose peer matches `hostname` and/or `port`. */
  find(
    peer: { hostname?: string; port?: number },
  ): WebSocketConnection<Data>[];
  /**
   * Shuts down gracefully: stops accepting; drops handshakes whose request
   * has not come yet and lets those being decided finish (refused with
   * 503, or upgraded and then closed with the rest); sends every connection
   * a close frame (default 1001 "Going away") and waits for their close
   * handshakes, all within one overall deadline (`timeout`, default the
   * server's `shutdownTimeout`), then drops what is left. Resolves with how
   * many ended which way; a second call gets the first one's report.
   */
  close(options?: ShutdownOptions): Promise<ShutdownReport>;
  /** Resolves once a shutdown (by `close()` or `signal`) has finished. */
  readonly finished: Promise<ShutdownReport>;
}

/** A handshake under way, in the server's list of them. */
class Handshake extends Link {
  /** Whether its request head has been read (it is being decided). */
  headRead = false;
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
 * @typeParam Data What `onUpgrade` attaches to each connection (inferred
 * from what it returns), read in the handler as `connection.data`.
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
 *
 * @example Typed data from a deferred upgrade
 * ```ts
 * import { connect, serve } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 *
 * const server = await serve({
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   onUpgrade: async (request) => {
 *     const user = new URLSearchParams(request.query).get("user");
 *     if (user === null) return new Response("Who are you?", { status: 401 });
 *     return { data: { user } }; // awaited lookups may go here
 *   },
 * }, async (connection) => {
 *   await connection.send(`hello ${connection.data.user}`); // a string, no cast
 *   await connection.close();
 * });
 * const client = await connect(`ws://127.0.0.1:${server.addr.port}/?user=ann`);
 * for await (const message of client) assert.equal(message, "hello ann");
 * await server.close();
 * ```
 */
export function serve<Data = unknown>(
  options: ServeOptions<Data>,
  handler: ConnectionHandler<Data>,
): Promise<WebSocketServer<Data>> {
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
  checkTimeout(
    "shutdownTimeout",
    options.shutdownTimeout ?? DEFAULT_SHUTDOWN_TIMEOUT,
  );
  if (
    options.signal !== undefined && !(options.signal instanceof AbortSignal)
  ) {
    throw new TypeError("signal must be an AbortSignal");
  }
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
  const originPolicy = options.origins === undefined
    ? null
    : new OriginPolicy(options.origins);
  const extensions = serverExtensions(options);
  // Resolved once: every connection of this server shares them.
  const settings = connectionSettings(
    options,
    "server",
    runtime.payloadBuffers,
  );
  return listenAndServe<Data>(options, handler, {
    handshakeTimeout,
    refusalTimeout,
    maxBodySize,
    port,
    runtime,
    settings,
    originPolicy,
    extensions,
  });
}

/** The server's extensions: those given, then permessage-deflate if asked. */
function serverExtensions(
  options: Pick<ServeOptions, "extensions" | "deflate">,
): readonly ServerExtension[] {
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
async function listenAndServe<Data>(
  options: ServeOptions<Data>,
  handler: ConnectionHandler<Data>,
  checked: {
    handshakeTimeout: number;
    refusalTimeout: number;
    maxBodySize: number;
    port: number;
    runtime: RuntimeTransports;
    settings: ConnectionSettings;
    originPolicy: OriginPolicy | null;
    extensions: readonly ServerExtension[];
  },
): Promise<WebSocketServer<Data>> {
  const { handshakeTimeout, refusalTimeout, maxBodySize, port, runtime } =
    checked;
  const log = options.logger ?? null;
  const onError = options.onError ??
    (log === null
      ? ((error) => console.error(error))
      : ((error) => log.error("Error in a handler or hook", { error })));
  const connections = new OpenConnections();
  // Linked lists, not sets: see _linked_list.ts.
  const handshaking = new LinkedList<Handshake>();
  let closing = false;
  let handshakesRefused = 0;
  let handshakesDone: (() => void) | null = null;

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
      running = handler(connection as WebSocketConnection<Data>, request);
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
    let request: ServerRequest | undefined;
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
      // Being decided from here: a shutdown lets it finish (plain HTTP on
      // the fallback, above, is dropped as before).
      handshake.headRead = true;
      const upgrade = validateClientRequest(requestHead);
      // Not a spread: that would read upgrade.headers, which is made only
      // when a hook or the handler reads it. remoteAddr too is read only
      // when asked for (on Bun, reading it is two system calls).
      request = withLazyRemoteAddr(upgrade, transport);
      if (checked.originPolicy !== null) {
        const fields = fieldsOf(upgrade);
        if (
          !checked.originPolicy.allows(fields.get("origin"), fields.get("host"))
        ) {
          throw new HandshakeError("Origin not allowed", 403);
        }
      }
      let protocol =
        selectSubprotocol(upgrade.protocols, options.protocols ?? []) ?? "";
      let headers: HeadersInit | undefined;
      let data: unknown;
      if (options.onUpgrade) {
        inHook = true;
        const decision = await options.onUpgrade(request);
        if (decision === false) {
          throw new HandshakeError("The server refused this request", 403);
        }
        if (decision instanceof Response) throw await refusalOf(decision);
        inHook = false;
        if (typeof decision === "object" && decision !== null) {
          if (decision.protocol !== undefined) protocol = decision.protocol;
          if (decision.headers !== undefined) headers = decision.headers;
          data = decision.data;
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
      attachConnectionData(connection, data);
      if (log !== null) logConnection(log, connection);
      // Not awaited, and no closure made here: this frame's state (the
      // parsed head) is let go now, not kept with the connection for its
      // whole life.
      run(connection, request);
    } catch (error) {
      if (upgraded) return;
      if (closing && error instanceof HandshakeError && error.status === 503) {
        handshakesRefused++;
      }
      if (log?.enabled("debug")) logRefusal(log, transport, error);
      // Read while the socket is still open: a hook may have kept the
      // request, to look at after its refusal.
      if (request !== undefined) void request.remoteAddr;
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
      if (closing && handshaking.size === 0) handshakesDone?.();
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

  log?.debug("Listening", { ...listener.addr });
  // Not a closure over the server object: it is made below.
  const onAbort = () => void server.close().catch(onError);
  let resolveFinished!: (report: ShutdownReport) => void;
  const finished = new Promise<ShutdownReport>((resolve) =>
    resolveFinished = resolve
  );
  let closePromise: Promise<ShutdownReport> | null = null;

  const server: WebSocketServer<Data> = {
    addr: listener.addr,
    connections: connections as ReadonlySet<WebSocketConnection<Data>>,
    finished,
    find(peer) {
      return [...connections as ReadonlySet<WebSocketConnection<Data>>].filter(
        (connection) => {
          const remote = connection.info.remoteAddr;
          return remote !== null &&
            (peer.hostname === undefined ||
              remote.hostname === peer.hostname) &&
            (peer.port === undefined || remote.port === peer.port);
        },
      );
    },
    close(closeOptions = {}) {
      // A code, reason or timeout that may not be used throws here, at the call.
      encodeClosePayload(
        closeOptions.closeCode ?? 1001,
        closeOptions.reason ?? "",
      );
      const timeout = closeOptions.timeout ?? options.shutdownTimeout ??
        DEFAULT_SHUTDOWN_TIMEOUT;
      checkTimeout("timeout", timeout);
      closePromise ??= (async () => {
        log?.debug("Shutting down", { connections: connections.size });
        closing = true;
        options.signal?.removeEventListener("abort", onAbort);
        listener.close();
        deadlines.clear();
        const report: ShutdownReport = {
          connections: 0,
          clean: 0,
          unclean: 0,
          dropped: 0,
          handshakesRefused: 0,
          handshakesDropped: 0,
        };
        let timer: ReturnType<typeof setTimeout> | undefined;
        const deadline = new Promise<void>((resolve) =>
          timer = setTimeout(resolve, timeout)
        );
        // Handshakes whose request has not come are dropped; those being
        // decided finish (503 at the check after onUpgrade, or upgraded
        // into `connections`, closed below with the rest).
        for (const handshake of [...handshaking]) {
          if (handshake.headRead) continue;
          handshake.unlink();
          handshake.transport.close();
          report.handshakesDropped++;
        }
        if (handshaking.size > 0) {
          await Promise.race([
            new Promise<void>((resolve) => (handshakesDone = resolve)),
            deadline,
          ]);
          for (const { transport } of [...handshaking]) {
            transport.close();
            report.handshakesDropped++;
          }
        }
        report.handshakesRefused = handshakesRefused;
        const closeCode = closeOptions.closeCode ?? 1001;
        const pending = new Set<WebSocketConnection>();
        const all: Promise<void>[] = [];
        for (const connection of connections) {
          report.connections++;
          pending.add(connection);
          all.push(
            connection.close({
              closeCode,
              ...(closeOptions.reason === undefined
                ? {}
                : { reason: closeOptions.reason }),
            }).then(({ wasClean }) => {
              if (!pending.delete(connection)) return; // dropped
              if (wasClean) report.clean++;
              else report.unclean++;
            }),
          );
        }
        await Promise.race([Promise.all(all), deadline]);
        clearTimeout(timer);
        for (const connection of [...pending]) {
          pending.delete(connection);
          dropConnection(connection);
          report.dropped++;
        }
        await Promise.all(all);
        log?.debug("Shut down", { ...report });
        resolveFinished(report);
        return report;
      })();
      return closePromise;
    },
  };
  if (options.signal?.aborted) onAbort();
  else options.signal?.addEventListener("abort", onAbort, { once: true });
  return server;
}

/** Throws a RangeError unless `ms` is a positive finite number of ms. */
function checkTimeout(name: string, ms: number): void {
  if (!(ms > 0) || !Number.isFinite(ms)) {
    throw new RangeError(`${name} must be a positive number of ms, got ${ms}`);
  }
}

/**
 * The refusal a `Response` from `onUpgrade` stands for: its status (400 or
 * more; anything else is a bug in the hook, answered 500), headers and text.
 */
async function refusalOf(response: Response): Promise<HandshakeError> {
  if (response.status < 400) {
    throw new TypeError(
      `onUpgrade refused with a Response of status ${response.status}: use 400 to 599`,
    );
  }
  return new HandshakeError(
    `onUpgrade refused with ${response.status}`,
    response.status,
    { headers: response.headers, body: await response.text() },
  );
}

/**
 * Gives `connection` its logger, and logs its opening and its end at
 * debug; only when debug is on is anything more kept per connection.
 */
function logConnection(log: Logger, connection: WebSocketConnection): void {
  attachLogger(connection, log);
  if (!log.enabled("debug")) return;
  const own = connectionLogger(connection);
  own.debug("Connection opened", { protocol: connection.protocol });
  connection.closed.then(({ closeCode, reason, wasClean }) =>
    own.debug("Connection closed", { closeCode, reason, wasClean })
  );
}

/** Logs a handshake that did not become a connection, at debug. */
function logRefusal(log: Logger, transport: Transport, error: unknown): void {
  const remote = transport.remoteAddr;
  log.debug("Handshake not accepted", {
    peer: remote === null ? null : `${remote.hostname}:${remote.port}`,
    status: error instanceof HandshakeError ? error.status : null,
    reason: error instanceof Error ? error.message : String(error),
  });
}

/** A request's `remoteAddr`, read from its transport when first asked for. */
const LAZY_REMOTE_ADDR = new LazyProperty<Transport, Address | null>(
  "remoteAddr",
  (transport) => transport.remoteAddr,
);

/**
 * Gives an upgrade request its `remoteAddr`, read from `transport` when
 * first asked for (see the Bun transport: each address is a system call
 * there, and most servers never ask).
 */
function withLazyRemoteAddr(
  upgrade: UpgradeRequest,
  transport: Transport,
): ServerRequest {
  return LAZY_REMOTE_ADDR.attach(upgrade, transport) as ServerRequest;
}
