/**
 * What only some connections ever need, kept out of the connection object
 * itself: an idle connection's size decides an idle server's memory.
 *
 * @module
 */

import type { ExtensionOffer } from "./handshake_headers.ts";
import type { Sendable } from "./connection_options.ts";
import type { Message } from "./protocol.ts";
import { Utf8Decoder } from "./utf8.ts";
import type { ExtensionPipeline } from "./_extension_pipeline.ts";
import type { CloseInfo, ConnectionEnd } from "./_connection_end.ts";
import type { PendingPings } from "./_pings.ts";

/** Shared by every connection without extensions (never changed). */
const NO_EXTENSIONS: ExtensionOffer[] = [];

/**
 * What only some connections ever need: a subprotocol, extensions, bytes
 * read past the handshake, the streams,
 * `closed`, pings, text checks of bytes sent as text, and the end.
 *
 * Every connection starts with {@link SHARED_RARE_STATE}, one frozen
 * instance for all of them, and gets its own on its first write to one of
 * these (`#own`): an idle connection is then 18 fields, JavaScriptCore's
 * 160-byte size class on Bun instead of 224 (a heap census of an idle Bun
 * server; `tests/connection_size_test.ts` holds it there).
 */
export class RareState {
  agreedProtocol = "";
  extensions: ExtensionOffer[] = NO_EXTENSIONS;
  /** Bytes read past the handshake, not yet fed to the protocol. */
  head: Uint8Array | null = null;
  /** Set when no more messages come: `null` error means a clean end. */
  inboxEnd: { error: unknown } | null = null;
  readable: ReadableStream<Message> | null = null;
  writable: WritableStream<Sendable> | null = null;
  /** `closed`, made when first asked for. */
  closed: PromiseWithResolvers<CloseInfo> | null = null;
  readableDone = false;
  /** Reading on regardless of the inbox, for the close frame behind it. */
  draining = false;
  overflowBytes = 0;
  /** Pings awaiting their pong, made by the first `ping()`. */
  pings: PendingPings | null = null;
  outgoingText: Utf8Decoder | null = null;
  /** The close handshake and failures, once the end has begun. */
  end: ConnectionEnd | null = null;
  /** The agreed extensions that transform messages, if any. */
  pipeline: ExtensionPipeline | null = null;

  /** Makes `closed` (most connections are never asked), settled if over. */
  closedOnDemand(): PromiseWithResolvers<CloseInfo> {
    const closed = this.closed = Promise.withResolvers();
    const end = this.end;
    if (end !== null && end.settled) closed.resolve(end.info!);
    return closed;
  }

  /** Checks that bytes sent as text are UTF-8, across fragments. */
  checkOutgoingText(bytes: Uint8Array, fin: boolean): void {
    const text = this.outgoingText ??= new Utf8Decoder();
    try {
      text.push(bytes);
      if (fin) text.end();
    } catch {
      this.outgoingText = null;
      throw new TypeError(
        "Cannot send bytes as text: they are not valid UTF-8",
      );
    }
    if (fin) this.outgoingText = null;
  }
}

/** The state of every connection that has none of its own. */
export const SHARED_RARE_STATE: RareState = Object.freeze(new RareState());
