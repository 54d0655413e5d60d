/**
 * wsstream: WebSockets (RFC 6455) for Deno and Bun on Web Streams.
 *
 * This entry point is for applications: `connect`, `serve`, `takeover`, the
 * connection they give, its options and errors. The Sans-I/O core (the
 * protocol, the frame codec, the handshake and HTTP/1 heads, and the stream
 * codec) is `@wsstream/wsstream/codec`; each runtime's transports are
 * `@wsstream/wsstream/deno` and `@wsstream/wsstream/bun`.
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

// Opening connections.
export {
  connect,
  type ConnectOptions,
  DEFAULT_HANDSHAKE_TIMEOUT,
} from "./src/client.ts";
export {
  type ConnectionHandler,
  DEFAULT_SERVER_HANDSHAKE_TIMEOUT,
  serve,
  type ServeOptions,
  type ServerRequest,
  type UpgradeAcceptance,
  type UpgradeDecision,
  type WebSocketServer,
} from "./src/server.ts";
export {
  DEFAULT_SHUTDOWN_TIMEOUT,
  type ShutdownOptions,
  type ShutdownReport,
} from "./src/shutdown.ts";

// Server helpers: globs, the origin check behind serve's `origins`, and
// modules the core never imports (routing, dispatch, the registry ...).
export { Glob } from "./src/glob.ts";
export { originAllowed, OriginPolicy } from "./src/origin.ts";
export { dispatch, type MessageHandlers } from "./src/dispatch.ts";
export { type ConnectionQuery, Registry } from "./src/registry.ts";
export type {
  PortableConnection,
  PortableHandler,
} from "./src/adapters/native_connection.ts";
export {
  connectionLogger,
  consoleSink,
  Logger,
  type LoggerOptions,
  type LogLevel,
  type LogRecord,
  type LogSink,
} from "./src/logger.ts";
export {
  type RouteHandler,
  type RouteOptions,
  Router,
  type RouteRequest,
} from "./src/router.ts";

// The connection.
export {
  type ByteStream,
  type CloseFrame,
  type CloseInfo,
  type CloseOptions,
  type ConnectionInfo,
  type ConnectionSetup,
  type ConnectionState,
  type Sendable,
  type SendOptions,
  WebSocketConnection,
} from "./src/connection.ts";
export { takeover, type TakeoverOptions } from "./src/takeover.ts";
export { OpenConnections } from "./src/open_connections.ts";
export type {
  ConnectionOptions,
  KeepaliveOptions,
} from "./src/connection_options.ts";
export type { Message, Role } from "./src/protocol.ts";

// Topics, shared between processes through a broker.
export {
  type Broker,
  type DropEvent,
  matchTopic,
  PubSub,
  type PubSubOptions,
  type PubSubStats,
  type SlowSubscriberPolicy,
  type TopicListener,
  type TopicPolicy,
} from "./src/pubsub.ts";

export {
  RedisBroker,
  type RedisBrokerOptions,
  type RedisBrokerStats,
} from "./src/redis_broker.ts";

// Errors (the tree, and when they are thrown, at the top of src/errors.ts).
export {
  ConnectionClosedError,
  HandshakeError,
  ProtocolError,
  TimeoutError,
  WebSocketError,
} from "./src/errors.ts";

// What the options above refer to: the handshake's request and limits, and
// the transports and byte channels a connection runs over.
export type { ExtensionOffer } from "./src/handshake_headers.ts";
export type {
  ClientExtension,
  Extension,
  ExtensionParams,
  OutgoingData,
  ServerExtension,
} from "./src/extension.ts";
// permessage-deflate (RFC 7692): zlib is imported only once it is agreed.
export {
  DEFAULT_DEFLATE_THRESHOLD,
  permessageDeflate,
  type PermessageDeflateOptions,
  ZLIB_CONCURRENCY,
} from "./src/permessage_deflate.ts";
export type { UpgradeRequest } from "./src/handshake_server.ts";
export type { HeadLimits } from "./src/http1_parse.ts";
export type { Address } from "./src/address.ts";
export type {
  ByteChannel,
  ChannelReader,
  WriteFailureListener,
} from "./src/byte_channel.ts";
export type {
  ClientTlsOptions,
  ConnectTransportOptions,
  Listener,
  ListenOptions,
  RuntimeTransports,
  Transport,
} from "./src/transport.ts";
export type { PayloadBuffers } from "./src/payload_buffers.ts";
