/**
 * `denoWebSocket`: our handlers (and `Router`) under `Deno.serve`, over
 * Deno's own server WebSocket wrapped as a `PortableConnection`. `Deno` is
 * reached only inside functions, so importing this module elsewhere is
 * harmless.
 *
 * What the wrapped path lacks against our `serve` (see the README's "Under
 * Deno.serve and Bun.serve"): no receive backpressure (Deno reads and
 * queues whatever the peer sends), no send backpressure (`send` resolves at
 * once), no `ping()` or ping/pong events, no fragmented sends (a stream is
 * gathered and sent whole), no `maxMessageSize` or keepalive of ours, and
 * no `localAddr`.
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
import type { ConnectionHandler } from "../server.ts";

/**
 * Makes a `Deno.serve` request handler for WebSocket upgrades: it checks
 * origins, runs `onUpgrade` (refusals become the `Response` to return),
 * upgrades with `Deno.upgradeWebSocket` and runs `handler` on the wrapped
 * socket once it is open. It resolves with `null` for a request that is
 * not a WebSocket upgrade, for you to answer.
 *
 * @typeParam Data What `onUpgrade` attaches, as `connection.data`.
 * @param options Subprotocols, origins, `onUpgrade`, `onError`.
 * @param handler The same handler as for `serve`, or a `Router`'s
 * `handler`. Typed with `PortableConnection` it is checked to use only what
 * the wrapped socket has; typed with `WebSocketConnection`, what it has
 * beyond that (`ping`, `openMessage`, `writable`) is missing at run time.
 * @returns `(request, info) => Promise<Response | null>`.
 *
 * @example An echo under Deno.serve
 * ```ts ignore
 * import { denoWebSocket } from "@wsstream/wsstream/deno-serve";
 *
 * const upgrade = denoWebSocket({ origins: ["*.example.com"] }, async (connection) => {
 *   for await (const message of connection) await connection.send(message);
 * });
 * Deno.serve(async (request, info) =>
 *   (await upgrade(request, info)) ?? new Response("Not a WebSocket request")
 * );
 * ```
 */
export function denoWebSocket<Data = unknown>(
  options: AdapterOptions<Data>,
  handler: PortableHandler<Data> | ConnectionHandler<Data>,
): (
  request: Request,
  info?: { remoteAddr: { hostname: string; port: number } },
) => Promise<Response | null> {
  if (typeof handler !== "function") {
    throw new TypeError("denoWebSocket needs a handler function");
  }
  const decide = upgradeDecider(options);
  const onError = options.onError ?? ((error) => console.error(error));
  return async (request, info) => {
    if (!isUpgrade(request)) return null;
    const remote = info?.remoteAddr;
    const verdict = await decide(
      request,
      remote === undefined
        ? null
        : { hostname: remote.hostname, port: remote.port },
    );
    if ("refuse" in verdict) return verdict.refuse;
    let upgraded: ReturnType<typeof Deno.upgradeWebSocket>;
    try {
      upgraded = Deno.upgradeWebSocket(
        request,
        verdict.protocol === "" ? {} : { protocol: verdict.protocol },
      );
    } catch (error) {
      // Deno refuses malformed handshakes itself: a 400, as ours.
      return new Response(
        error instanceof Error ? error.message : "Bad Request",
        { status: 400 },
      );
    }
    const { socket, response } = upgraded;
    verdict.headers.forEach((value, name) => response.headers.set(name, value));
    socket.binaryType = "arraybuffer";
    const connection = new NativeConnection<Data>({
      send: (message) => socket.send(message),
      close: (code, reason) => socket.close(code, reason),
    }, {
      protocol: verdict.protocol,
      path: verdict.request.target,
      remoteAddr: verdict.request.remoteAddr,
      data: verdict.data,
    });
    socket.onopen = () =>
      runHandler(
        handler as PortableHandler<Data>,
        connection,
        verdict.request,
        onError,
      );
    socket.onmessage = (event) =>
      connection.received(
        typeof event.data === "string"
          ? event.data
          : new Uint8Array(event.data as ArrayBuffer),
      );
    socket.onclose = (event) =>
      connection.ended(event.code, event.reason, event.wasClean);
    socket.onerror = () => {}; // onclose follows, with 1006
    return response;
  };
}
