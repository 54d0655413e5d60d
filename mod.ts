/**
 * wsstream: WebSockets (RFC 6455) for Deno and Bun on Web Streams.
 *
 * A connection is a `ReadableStream` of the messages received and a
 * `WritableStream` of the messages to send; `connect` opens one as a client,
 * `serve` accepts them as a server, and `takeover` runs one over any byte
 * stream whose handshake is done.
 *
 * @example An echo server and a client, on Deno or Bun
 * ```ts
 * import { connect, serve } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 *
 * const server = await serve({ hostname: "127.0.0.1", port: 0 }, async (connection) => {
 *   for await (const message of connection.readable) await connection.send(message);
 * });
 * const client = await connect(`ws://127.0.0.1:${server.addr.port}`);
 * await client.send("hello");
 * for await (const message of client.readable) {
 *   assert.equal(message, "hello");
 *   break;
 * }
 * await client.closed;
 * await server.close();
 * ```
 *
 * @module
 */

export * from "./src/errors.ts";
export * from "./src/transport.ts";
export * from "./src/byte_channel.ts";
export * from "./src/stream_channel.ts";
export * from "./src/channel_streams.ts";
export * from "./src/channel_transport.ts";
export * from "./src/mask.ts";
export * from "./src/utf8.ts";
export * from "./src/close.ts";
export * from "./src/frame.ts";
export * from "./src/protocol.ts";
export * from "./src/http1.ts";
export * from "./src/handshake.ts";
export * from "./src/connection.ts";
export * from "./src/client.ts";
export * from "./src/server.ts";
