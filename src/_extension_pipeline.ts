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

import type { Extension, OutgoingData } from "./extension.ts";

const resolved = Promise.resolve();

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

  /** Applies every extension to an outgoing message or fragment, in order. */
  async encode(
    data: OutgoingData,
  ): Promise<{ payload: Uint8Array; rsv: number }> {
    let rsv = 0;
    for (const extension of this.extensions) {
      const out = await extension.encode(data);
      rsv |= out.rsv & extension.rsv;
      data = { ...data, payload: out.payload };
    }
    return { payload: data.payload, rsv };
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
