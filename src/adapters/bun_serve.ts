/**
 * `bunWebSocket`: our handlers (and `Router`) under `Bun.serve`, over
 * Bun's own server WebSocket wrapped as a `PortableConnection`. It
 * type-checks without Bun's types and never touches `Bun` itself.
 *
 * What the wrapped path lacks against our `serve` (see the README's "Under
 * Deno.serve and Bun.serve"): no receive backpressure (Bun reads and
 * delivers whatever the peer sends), no `ping()` round trips, no
 * fragmented sends (a stream is gathered and sent whole), no
 * `maxMessageSize` or keepalive of ours (Bun's `maxPayloadLength` and
 * `idleTimeout` apply), and no `localAddr`. `send` does wait for Bun's
 * `drain` when Bun reports backpressure.
 *
 * @module
 */

import {
  type AdapterOptions,
  isUpgrade,
  runHandler,
  upgradeDecider,
} from "./_accept.ts";
import { NativeConnection, type PortableHandler } from "./native_connection.ts";
// What the signatures here name, so this entry point documents itself.
export * from "./_entry_types.ts";
import type { ConnectionHandler, ServerRequest } from "../server.ts";

/** The subset of Bun's `Server` used here. */
export interface BunServerLike {
  /** Upgrades `request`; `false` when it cannot. */
  upgrade(
    request: Request,
    options: { headers?: HeadersInit; data?: unknown },
  ): boolean;
  /** The peer of `request`. */
  requestIP(
    request: Request,
  ): { address: string; port: number } | null;
}

/** The subset of Bun's `ServerWebSocket` used here. */
export interface BunSocketLike {
  /** What `upgrade` attached: ours. */
  data: BunSocketState;
  /** -1 backpressured (queued), 0 dropped, else bytes sent. */
  send(message: string | Uint8Array): number;
  /** Sends a close frame. */
  close(code?: number, reason?: string): void;
}

/** What the adapter keeps on each Bun socket. */
export interface BunSocketState {
  /** The handshake's request. */
  request: ServerRequest;
  /** The wrapped connection, once open. */
  connection: NativeConnection<unknown> | null;
  /** Sends waiting for Bun's drain. */
  drained: (() => void)[];
  /** The agreed subprotocol and data. */
  protocol: string;
  /** What onUpgrade attached. */
  data: unknown;
}

/** What {@link bunWebSocket} gives: the upgrade for `fetch`, and `websocket`. */
export interface BunWebSocket {
  /**
   * For `Bun.serve`'s `fetch`: `undefined` once upgraded (return it), a
   * refusal `Response`, or `null` when `request` is not a WebSocket upgrade
   * (answer it yourself).
   */
  upgrade(
    request: Request,
    server: BunServerLike,
  ): Promise<Response | undefined | null>;
  /** `Bun.serve`'s `websocket` handlers. */
  websocket: {
    open(socket: BunSocketLike): void;
    message(socket: BunSocketLike, message: string | Uint8Array): void;
    close(socket: BunSocketLike, code: number, reason: string): void;
    drain(socket: BunSocketLike): void;
  };
}

/**
 * Makes the two halves `Bun.serve` needs for WebSocket upgrades: an
 * `upgrade` for `fetch`, which checks origins, runs `onUpgrade` (refusals
 * become the `Response` to return) and upgrades; and the `websocket`
 * handlers, which run `handler` on the wrapped socket once it is open.
 *
 * @typeParam Data What `onUpgrade` attaches, as `connection.data`.
 * @param options Subprotocols, origins, `onUpgrade`, `onError`.
 * @param handler The same handler as for `serve`, or a `Router`'s
 * `handler`. Typed with `PortableConnection` it is checked to use only what
 * the wrapped socket has; typed with `WebSocketConnection`, what it has
 * beyond that (`ping`, `openMessage`, `writable`) is missing at run time.
 * @returns `{ upgrade, websocket }`.
 *
 * @example An echo under Bun.serve
 * ```ts ignore
 * import { bunWebSocket } from "@wsstream/wsstream/bun-serve";
 *
 * const ws = bunWebSocket({}, async (connection) => {
 *   for await (const message of connection) await connection.send(message);
 * });
 * Bun.serve({
 *   async fetch(request, server) {
 *     const upgraded = await ws.upgrade(request, server);
 *     return upgraded === null ? new Response("Not a WebSocket request") : upgraded;
 *   },
 *   websocket: ws.websocket,
 * });
 * ```
 */
export function bunWebSocket<Data = unknown>(
  options: AdapterOptions<Data>,
  handler: PortableHandler<Data> | ConnectionHandler<Data>,
): BunWebSocket {
  if (typeof handler !== "function") {
    throw new TypeError("bunWebSocket needs a handler function");
  }
  const decide = upgradeDecider(options);
  const onError = options.onError ?? ((error) => console.error(error));
  return {
    async upgrade(request, server) {
      if (!isUpgrade(request)) return null;
      const ip = server.requestIP(request);
      const verdict = await decide(
        request,
        ip === null ? null : { hostname: ip.address, port: ip.port },
      );
      if ("refuse" in verdict) return verdict.refuse;
      if (verdict.protocol !== "") {
        verdict.headers.set("Sec-WebSocket-Protocol", verdict.protocol);
      }
      const state: BunSocketState = {
        request: verdict.request,
        connection: null,
        drained: [],
        protocol: verdict.protocol,
        data: verdict.data,
      };
      if (!server.upgrade(request, { headers: verdict.headers, data: state })) {
        return new Response("Bad Request", { status: 400 });
      }
      return undefined;
    },
    websocket: {
      open(socket) {
        const state = socket.data;
        const connection = new NativeConnection<unknown>({
          send: (message) => {
            if (socket.send(message) !== -1) return;
            return new Promise<void>((resolve) => state.drained.push(resolve));
          },
          close: (code, reason) => socket.close(code, reason),
        }, {
          protocol: state.protocol,
          path: state.request.target,
          remoteAddr: state.request.remoteAddr,
          data: state.data,
        });
        state.connection = connection;
        runHandler(
          handler as PortableHandler<unknown>,
          connection,
          state.request,
          onError,
        );
      },
      message(socket, message) {
        socket.data.connection?.received(
          typeof message === "string" ? message : new Uint8Array(
            message.buffer,
            message.byteOffset,
            message.byteLength,
          ),
        );
      },
      close(socket, code, reason) {
        // Bun reports 1006 for a connection that ended without a close frame.
        socket.data.connection?.ended(code, reason, code !== 1006);
        for (const resolve of socket.data.drained.splice(0)) resolve();
      },
      drain(socket) {
        for (const resolve of socket.data.drained.splice(0)) resolve();
      },
    },
  };
}
