/**
 * The agreed extensions of one connection, between the protocol's message
 * assembly and the inbox (incoming), and before framing (outgoing).
 *
 * The protocol is synchronous; an extension's transforms may not be (zlib
 * is not). Incoming messages therefore go through one ordered queue once
 * any of them needs a transform: a plain message behind a compressed one
 * waits for it, and so does the peer's close. Outgoing messages are
 * transformed inside the connection's send queue, so they keep their order
 * too. A connection without extensions never makes one of these.
 *
 * @module
 */

import { type Extension, isExtension } from "./extension.ts";
import type { ExtensionOffer } from "./handshake_headers.ts";
import type { ConnectionClosedError } from "./errors.ts";
import type { Message, Protocol } from "./protocol.ts";
import { decodeUtf8 } from "./utf8.ts";

const resolved = Promise.resolve();
const encoder = new TextEncoder();

/**
 * What the pipeline needs of its connection (where received messages and
 * failures go, how sends are framed): the connection's events object.
 */
export interface ExtensionHost {
  readonly protocol: Protocol;
  /** Checks that bytes sent as text are UTF-8, across fragments. */
  checkOutgoingText(bytes: Uint8Array, fin: boolean): void;
  /** The error of an operation the connection cannot do (it is closing). */
  closedError(what: string, cause?: unknown): ConnectionClosedError;
  /** A message through the queue, for the inbox. */
  deliver(message: Message): void;
  /** A message that did not transform: the connection fails. */
  extensionFailed(error: unknown): void;
}

/** A connection's agreed extensions, in the order agreed. */
export class ExtensionPipeline {
  readonly extensions: readonly Extension[];
  /** The RSV bits they own together: what the protocol accepts. */
  readonly rsv: number;
  /** Messages received and not yet through the queue. */
  pending = 0;
  /** Whether a message is being sent in fragments (its first has gone). */
  sending = false;
  #tail: Promise<void> = resolved;

  /**
   * The pipeline of the agreed extensions that transform messages, or
   * `null` when none does (most connections).
   */
  static of(
    agreed: readonly ExtensionOffer[] | undefined,
  ): ExtensionPipeline | null {
    const extensions = agreed?.filter(isExtension) ?? [];
    return extensions.length > 0 ? new ExtensionPipeline(extensions) : null;
  }

  constructor(extensions: readonly Extension[]) {
    this.extensions = extensions;
    let rsv = 0;
    for (const extension of extensions) rsv |= extension.rsv;
    this.rsv = rsv;
  }

  /**
   * Runs `produce` after every task queued before it, in order, then hands
   * its result to `consume`, or its failure to `failed` (the connection is
   * failing); either way the message no longer counts as `pending` by then.
   */
  inOrder<T>(
    produce: () => T | Promise<T>,
    consume: (value: T) => void,
    failed: (error: unknown) => void,
  ): void {
    this.pending++;
    this.#tail = this.#tail.then(async () => {
      let value: T;
      try {
        value = await produce();
      } catch (error) {
        this.pending--;
        failed(error);
        return;
      }
      this.pending--;
      consume(value);
    }).catch(failed);
  }

  /** Queues a message that needs no transform behind those that do. */
  behind(message: Message, host: ExtensionHost): void {
    this.inOrder(
      () => message,
      (message) => host.deliver(message),
      (error) => host.extensionFailed(error),
    );
  }

  /**
   * An extension's message: transformed in order with the messages around
   * it, then checked (text) and delivered like any other.
   */
  receive(
    payload: Uint8Array,
    text: boolean,
    rsv: number,
    maxSize: number,
    host: ExtensionHost,
  ): void {
    this.inOrder(
      async () => {
        const bytes = await this.decode(payload, rsv, maxSize);
        return text ? decodeUtf8(bytes) : bytes;
      },
      (message) => host.deliver(message),
      (error) => host.extensionFailed(error),
    );
  }

  /**
   * Sends a message or fragment through the agreed extensions: as bytes,
   * transformed, then framed with the RSV bits they set on its first frame.
   */
  async send(
    payload: Message,
    fin: boolean,
    type: "text" | "binary" | undefined,
    compress: boolean | undefined,
    host: ExtensionHost,
  ): Promise<void> {
    const text = type === undefined
      ? typeof payload === "string"
      : type === "text";
    if (text && typeof payload !== "string") {
      host.checkOutgoingText(payload, fin);
    }
    let out: { payload: Uint8Array; rsv: number };
    try {
      out = await this.encode(payload, text, fin, compress);
    } catch (error) {
      throw host.closedError("send", error);
    }
    try {
      host.protocol.sendFragment(
        out.payload,
        fin,
        text ? "text" : "binary",
        out.rsv,
      );
    } catch (error) {
      if (error instanceof TypeError) throw error;
      throw host.closedError("send", error);
    }
  }

  /** Runs `task` once the messages queued before it are through. */
  afterMessages(task: () => void): void {
    this.inOrder(() => null, task, () => {});
  }

  /**
   * Undoes the extensions a received message went through: last agreed
   * first (RFC 6455 §9: "the order of extensions is significant"), each only
   * if the message carries some of its RSV bits.
   */
  async decode(
    payload: Uint8Array,
    rsv: number,
    maxSize: number,
  ): Promise<Uint8Array> {
    for (let i = this.extensions.length - 1; i >= 0; i--) {
      const extension = this.extensions[i]!;
      if ((extension.rsv & rsv) === 0) continue;
      payload = await extension.decode(payload, maxSize);
    }
    return payload;
  }

  /**
   * Applies every extension to an outgoing message or fragment, in order:
   * as bytes, with the RSV bits they set on its first frame only.
   */
  async encode(
    payload: Uint8Array | string,
    text: boolean,
    fin: boolean,
    compress: boolean | undefined,
  ): Promise<{ payload: Uint8Array; rsv: number }> {
    const first = !this.sending;
    this.sending = !fin;
    let data = {
      payload: typeof payload === "string" ? encoder.encode(payload) : payload,
      text,
      first,
      fin,
      compress,
    };
    let rsv = 0;
    for (const extension of this.extensions) {
      const out = await extension.encode(data);
      rsv |= out.rsv & extension.rsv;
      data = { ...data, payload: out.payload };
    }
    return { payload: data.payload, rsv: first ? rsv : 0 };
  }

  /** Releases every extension's resources (the connection ended). */
  close(): void {
    for (const extension of this.extensions) {
      try {
        extension.close();
      } catch {
        // One extension's failure to let go must not keep the others.
      }
    }
  }
}
