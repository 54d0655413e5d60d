/**
 * `dispatch`: a connection handler that sends each kind of frame to its own
 * handler, as `www::websocket` does.
 *
 * @module
 */

import type { WebSocketConnection } from "./connection.ts";
import type { CloseInfo } from "./_connection_end.ts";
import { setControlListener } from "./_connection_data.ts";
import type { ServerRequest } from "./server.ts";

/**
 * The handlers {@link dispatch} calls, one per kind of frame. Each gets the
 * connection as its last argument; message handlers are awaited in turn, so
 * a slow one slows the peer down.
 *
 * @typeParam Data The connection's `data`.
 *
 * @example
 * ```ts
 * import type { MessageHandlers } from "@wsstream/wsstream";
 * const handlers: MessageHandlers = {
 *   text: (text, connection) => connection.send(text.toUpperCase()),
 * };
 * ```
 */
export interface MessageHandlers<Data = unknown> {
  /** Called first, with the request when there is one. */
  open?(
    connection: WebSocketConnection<Data>,
    request: ServerRequest | undefined,
  ): void | Promise<void>;
  /** A text message; without it, one closes the connection with 1003. */
  text?(
    text: string,
    connection: WebSocketConnection<Data>,
  ): void | Promise<void>;
  /** A binary message; without it, one closes the connection with 1003. */
  binary?(
    bytes: Uint8Array,
    connection: WebSocketConnection<Data>,
  ): void | Promise<void>;
  /** A ping (already answered with its pong). */
  ping?(payload: Uint8Array, connection: WebSocketConnection<Data>): void;
  /** A pong. */
  pong?(payload: Uint8Array, connection: WebSocketConnection<Data>): void;
  /** The connection's end, clean or not: its `closed`. */
  close?(
    info: CloseInfo,
    connection: WebSocketConnection<Data>,
  ): void | Promise<void>;
}

/**
 * Makes a connection handler (for `serve`, a route, or any connection) that
 * reads the connection and calls the handler for each kind of frame. A
 * message of a type with no handler closes the connection with 1003 (RFC
 * 6455 §7.4.1: "an endpoint is terminating the connection because it has
 * received a type of data it cannot accept (e.g., an endpoint that
 * understands only text data MAY send this if it receives a binary
 * message)"). `close` is called once the connection has ended, however it
 * ended, and the returned promise settles after it.
 *
 * @typeParam Data The connection's `data`.
 * @param handlers The handlers, per kind of frame.
 * @returns A handler of `(connection, request?)`.
 * @throws {TypeError} If a handler given is not a function.
 *
 * @example A text-only server
 * ```ts
 * import { connect, dispatch, serve } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 *
 * const server = await serve({ hostname: "127.0.0.1", port: 0 }, dispatch({
 *   text: (text, connection) => connection.send(text.toUpperCase()),
 * }));
 * const client = await connect(`ws://127.0.0.1:${server.addr.port}`);
 * await client.send("hi");
 * await client.send(new Uint8Array([1])); // no binary handler: 1003
 * const got = [];
 * for await (const message of client) got.push(message);
 * assert.deepEqual(got, ["HI"]);
 * assert.equal((await client.closed).closeCode, 1003);
 * await server.close();
 * ```
 */
export function dispatch<Data = unknown>(
  handlers: MessageHandlers<Data>,
): (
  connection: WebSocketConnection<Data>,
  request?: ServerRequest,
) => Promise<void> {
  if (handlers === null || typeof handlers !== "object") {
    throw new TypeError("dispatch needs an object of handlers");
  }
  for (const name of ["open", "text", "binary", "ping", "pong", "close"]) {
    const handler = handlers[name as keyof MessageHandlers];
    if (handler !== undefined && typeof handler !== "function") {
      throw new TypeError(`The ${name} handler must be a function`);
    }
  }
  const { ping, pong } = handlers;
  return async (connection, request) => {
    if (ping !== undefined || pong !== undefined) {
      setControlListener(connection, {
        ping: ping && ((payload) => ping.call(handlers, payload, connection)),
        pong: pong && ((payload) => pong.call(handlers, payload, connection)),
      });
    }
    // `close` runs once the connection has ended, however it ended; a
    // handler that throws is not kept waiting for that (its error closes
    // the connection, with 1011 under serve).
    const ended = connection.closed.then(async (info) => {
      setControlListener(connection, undefined);
      await handlers.close?.(info, connection);
    });
    try {
      await handlers.open?.(connection, request);
      // Not `for await`: a handler's throw would have the loop close the
      // connection with 1000 before its error is reported (and, under
      // serve, answered with 1011).
      const messages = connection[Symbol.asyncIterator]();
      for (
        let next = await messages.next();
        !next.done;
        next = await messages.next()
      ) {
        const message = next.value;
        const handler = typeof message === "string"
          ? handlers.text
          : handlers.binary;
        if (handler === undefined) {
          await connection.close({ closeCode: 1003 });
          break;
        }
        await (handler as (message: unknown, connection: unknown) => unknown)
          .call(handlers, message, connection);
      }
    } catch (error) {
      ended.catch(() => {}); // The handler's error is the one to report.
      throw error;
    }
    await ended;
  };
}
