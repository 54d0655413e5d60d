/**
 * The types the adapters' entry points (`deno-serve`, `bun-serve`) name in
 * their signatures, re-exported by both so that each documents itself.
 * Private: reached only through those entry points.
 *
 * @module
 */

export type {
  ConnectionHandler,
  ServerRequest,
  UpgradeAcceptance,
  UpgradeDecision,
} from "../server.ts";
export type {
  CloseFrame,
  CloseInfo,
  CloseOptions,
  ConnectionInfo,
  ConnectionState,
  Sendable,
  SendOptions,
  WebSocketConnection,
} from "../connection.ts";
export type { Message, Role } from "../protocol.ts";
export type { UpgradeRequest } from "../handshake_server.ts";
export type { ExtensionOffer } from "../handshake_headers.ts";
export type { Address } from "../address.ts";
export type { AdapterOptions } from "./_accept.ts";
export {
  NativeConnection,
  type NativeSocket,
  type PortableConnection,
  type PortableHandler,
} from "./native_connection.ts";
