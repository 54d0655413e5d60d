/**
 * wsstream's Sans-I/O core, on its own entry point: the protocol state
 * machine, the frame codec, the masking kernel, UTF-8 validation, close
 * payloads, the opening handshake and HTTP/1 heads, and the same as Web
 * Streams. Nothing here opens a socket, starts a timer or awaits I/O.
 *
 * It is for people building their own transport (a socket type wsstream
 * has no transport for), proxies and gateways that look at frames, and
 * tests that need exact bytes. Applications want `@wsstream/wsstream`
 * (`connect`, `serve`, `takeover`), which adds the timers, keepalive and
 * the fast socket path on top of this.
 *
 * @example Decode a masked frame and answer it through the protocol
 * ```ts
 * import { Protocol } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const sent: Uint8Array[] = [];
 * const received: unknown[] = [];
 * const protocol = new Protocol({ role: "server" }, {
 *   message: (data) => received.push(data),
 *   ping() {},
 *   pong() {},
 *   close() {},
 *   send: (bytes) => void sent.push(bytes),
 * });
 * // RFC 6455 §5.7: a masked ping "Hello" is answered by an unmasked pong.
 * protocol.receive(
 *   new Uint8Array([0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]),
 * );
 * assert.deepEqual([...sent[0]!], [0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
 * ```
 *
 * @module
 */

export {
  ConnectionClosedError,
  HandshakeError,
  ProtocolError,
  WebSocketError,
} from "./errors.ts";
export {
  BYTES_COPIED,
  DEFAULT_MAX_FRAGMENTS,
  DEFAULT_MAX_MESSAGE_SIZE,
  type Message,
  Protocol,
  type ProtocolHandler,
  type ProtocolOptions,
  type ProtocolState,
  type Role,
} from "./protocol.ts";
export {
  encodeFrame,
  type Frame,
  FrameDecoder,
  type FrameDecoderOptions,
  type FrameHeader,
  frameHeaderSize,
  type FrameSink,
  Opcode,
  RSV1,
  writeFrameHeader,
} from "./frame.ts";
export { applyMask, randomMaskSource } from "./mask.ts";
export { PayloadBuffers, plainPayloadBuffers } from "./payload_buffers.ts";
export { decodeUtf8, Utf8Decoder } from "./utf8.ts";
export {
  CloseCode,
  decodeClosePayload,
  DEFAULT_CLOSE_REASONS,
  encodeClosePayload,
  isValidCloseCode,
  MAX_CLOSE_REASON_BYTES,
} from "./close.ts";
export {
  computeAccept,
  computeAcceptSync,
  generateKey,
  WEBSOCKET_GUID,
} from "./handshake.ts";
export {
  type ExtensionOffer,
  formatExtensions,
  hasToken,
  parseExtensions,
  parseProtocols,
  selectSubprotocol,
} from "./handshake_headers.ts";
export {
  acceptExtensions,
  answerExtensions,
  type ClientExtension,
  type Extension,
  extensionOffers,
  type ExtensionParams,
  isExtension,
  type OutgoingData,
  type ServerExtension,
} from "./extension.ts";
export {
  DEFAULT_DEFLATE_THRESHOLD,
  permessageDeflate,
  type PermessageDeflateOptions,
  ZLIB_CONCURRENCY,
} from "./permessage_deflate.ts";
export {
  buildClientRequest,
  type ClientHandshakeOptions,
  validateServerResponse,
} from "./handshake_client.ts";
export {
  buildServerResponse,
  isWebSocketRequest,
  refusalResponse,
  type UpgradeRequest,
  validateClientRequest,
} from "./handshake_server.ts";
export {
  DEFAULT_HEAD_LIMITS,
  type HeadLimits,
  HeadParser,
  parseRequestHead,
  parseResponseHead,
  type RequestHead,
  type ResponseHead,
} from "./http1_parse.ts";
export {
  reasonPhrase,
  writeRequestHead,
  writeResponse,
  writeResponseHead,
} from "./http1_write.ts";
export {
  FrameDecoderStream,
  type FrameDecoderStreamOptions,
  FrameEncoderStream,
  type FrameEncoderStreamOptions,
  MessageStreams,
  type MessageStreamsOptions,
} from "./codec_streams.ts";

// Byte channels, for a transport of one's own: what a connection reads and
// writes, adapted from any readable/writable pair, and streams over one.
export type {
  ByteChannel,
  ByteStream,
  ChannelReader,
  WriteFailureListener,
} from "./byte_channel.ts";
export type { Address } from "./address.ts";
export type { Transport } from "./transport.ts";
export { channelOf } from "./stream_channel.ts";
export { ChannelTransport } from "./channel_transport.ts";
export { streamsOverChannel } from "./channel_streams.ts";
