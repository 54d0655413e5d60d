/**
 * WebSocket extensions (RFC 6455 §9): how one is offered and agreed in the
 * opening handshake, and how, once agreed, it transforms the data messages
 * and owns the RSV bits it declares.
 *
 * A client extension ({@link ClientExtension}) makes one or more offers, in
 * order of preference, and checks the server's answer; a server extension
 * ({@link ServerExtension}) answers an offer with parameters or declines it.
 * Either way the result is an {@link Extension}: the agreed parameters, the
 * RSV bits it owns, and the message transforms. The protocol accepts an RSV
 * bit only when an agreed extension owns it (1002 otherwise, RFC 6455
 * §5.2), and only on the first frame of a data message: an extension here is
 * per-message, as permessage-deflate is (RFC 7692 §6).
 *
 * @module
 */

import { HandshakeError } from "./errors.ts";
import type { ExtensionOffer } from "./handshake_headers.ts";

/** An extension's parameters: `true` for one without a value. */
export type ExtensionParams = Record<string, string | true>;

/**
 * An outgoing data message (or one fragment of it) as an extension sees it.
 *
 * @example
 * ```ts
 * import type { OutgoingData } from "@wsstream/wsstream/codec";
 * const data: OutgoingData = {
 *   payload: new TextEncoder().encode("hi"),
 *   text: true,
 *   first: true,
 *   fin: true,
 *   compress: undefined,
 * };
 * ```
 */
export interface OutgoingData {
  /** The payload: what the previous extension made of it. */
  payload: Uint8Array;
  /** Whether the message is text. */
  text: boolean;
  /** Whether this is the message's first fragment (a whole message is both). */
  first: boolean;
  /** Whether this is the message's last fragment. */
  fin: boolean;
  /** The sender's `compress` option: `false` asks to leave it as it is. */
  compress: boolean | undefined;
}

/**
 * An agreed extension on one connection. Its `name` and `params` are what
 * was agreed, as in the `Sec-WebSocket-Extensions` answer.
 *
 * @example A toy extension that XORs every payload byte and marks it with RSV2
 * ```ts
 * import type { Extension, OutgoingData } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 *
 * const xor = (bytes: Uint8Array) => bytes.map((byte) => byte ^ 0x55);
 * const extension: Extension = {
 *   name: "x-xor",
 *   params: {},
 *   rsv: 2,
 *   encode: ({ payload }: OutgoingData) => ({ payload: xor(payload), rsv: 2 }),
 *   decode: (payload) => xor(payload),
 *   close() {},
 * };
 * const sent = extension.encode({
 *   payload: new Uint8Array([1]),
 *   text: false,
 *   first: true,
 *   fin: true,
 *   compress: undefined,
 * });
 * assert.deepEqual(sent, { payload: new Uint8Array([0x54]), rsv: 2 });
 * ```
 */
export interface Extension extends ExtensionOffer {
  /** The RSV bits this extension owns (RSV1 = 4, RSV2 = 2, RSV3 = 1). */
  readonly rsv: number;
  /**
   * Transforms an outgoing data message or fragment. Called in order, one
   * at a time per connection; the fragments of one message come in order.
   *
   * @returns The payload to send and the RSV bits to set on the message's
   * first frame (ignored on later fragments): 0 to mark nothing.
   */
  encode(
    data: OutgoingData,
  ):
    | { payload: Uint8Array; rsv: number }
    | Promise<{ payload: Uint8Array; rsv: number }>;
  /**
   * Transforms an incoming data message whose first frame carried some of
   * this extension's RSV bits. Called in order, one at a time.
   *
   * @param payload The whole message's payload, as received.
   * @param maxSize The largest result allowed: past it, throw a
   * `ProtocolError` with 1009, without building more than about that much.
   * @returns The payload as sent.
   */
  decode(
    payload: Uint8Array,
    maxSize: number,
  ): Uint8Array | Promise<Uint8Array>;
  /** Releases what the extension holds; the connection has ended. */
  close(): void;
}

/**
 * The client's side of an extension: its offers and the check of the
 * server's answer.
 *
 * @example
 * ```ts
 * import type { ClientExtension } from "@wsstream/wsstream/codec";
 * function names(extensions: ClientExtension[]): string[] {
 *   return extensions.map((extension) => extension.name);
 * }
 * ```
 */
export interface ClientExtension {
  /** The extension token (`permessage-deflate`). */
  readonly name: string;
  /** The offers' parameters, most preferred first (at least one). */
  offers(): ExtensionParams[];
  /**
   * Checks the server's answer and makes the agreed extension.
   *
   * @throws {HandshakeError} when the answer is not one the offers allow.
   */
  accept(params: ExtensionParams): Extension;
}

/**
 * The server's side of an extension: it answers one offer.
 *
 * @example
 * ```ts
 * import type { ServerExtension } from "@wsstream/wsstream/codec";
 * function names(extensions: ServerExtension[]): string[] {
 *   return extensions.map((extension) => extension.name);
 * }
 * ```
 */
export interface ServerExtension {
  /** The extension token. */
  readonly name: string;
  /**
   * Answers one offer of this extension: the agreed extension (its
   * `params` are the answer), or `null` to decline it. Never throws for a
   * bad offer: a server declines what it cannot accept (RFC 7692 §5).
   */
  answer(params: ExtensionParams): Extension | null;
}

/**
 * Whether an agreed extension entry is an {@link Extension} that transforms
 * messages, not only a name and parameters.
 *
 * @param entry An entry of the agreed list.
 * @returns `true` for an extension with transforms.
 *
 * @example
 * ```ts
 * import { isExtension } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 * assert.equal(isExtension({ name: "x-test", params: {} }), false);
 * ```
 */
export function isExtension(entry: ExtensionOffer): entry is Extension {
  return typeof (entry as Partial<Extension>).decode === "function" &&
    typeof (entry as Partial<Extension>).encode === "function";
}

/**
 * The offers of a client's extensions, in order: every offer of the first,
 * then of the second, and so on.
 *
 * @param extensions The client's extensions, or raw offers (sent as given).
 * @returns The `Sec-WebSocket-Extensions` offers.
 *
 * @example
 * ```ts
 * import { extensionOffers } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 * assert.deepEqual(extensionOffers([{ name: "x-test", params: {} }]), [
 *   { name: "x-test", params: {} },
 * ]);
 * ```
 */
export function extensionOffers(
  extensions: readonly (ClientExtension | ExtensionOffer)[],
): ExtensionOffer[] {
  const offers: ExtensionOffer[] = [];
  for (const extension of extensions) {
    if (isClientExtension(extension)) {
      for (const params of extension.offers()) {
        offers.push({ name: extension.name, params });
      }
    } else offers.push(extension);
  }
  return offers;
}

/**
 * The client's check of the server's answer (RFC 6455 §9.1): each accepted
 * extension must have been offered, at most once, and its own check must
 * pass. Raw offers are agreed as given, without transforms.
 *
 * @param extensions What the client offered.
 * @param answer The server's `Sec-WebSocket-Extensions`, parsed.
 * @returns The agreed extensions, in the server's order.
 * @throws {HandshakeError} (status 0) for an answer the offers do not allow.
 *
 * @example
 * ```ts
 * import { acceptExtensions } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 * assert.deepEqual(acceptExtensions([], []), []);
 * ```
 */
export function acceptExtensions(
  extensions: readonly (ClientExtension | ExtensionOffer)[],
  answer: readonly ExtensionOffer[],
): ExtensionOffer[] {
  const agreed: ExtensionOffer[] = [];
  const seen = new Set<string>();
  let rsv = 0;
  for (const { name, params } of answer) {
    const extension = extensions.find((offered) => offered.name === name);
    if (extension === undefined) {
      throw new HandshakeError(
        `Server accepted extension ${name}, which the client did not offer`,
        0,
      );
    }
    if (seen.has(name)) {
      throw new HandshakeError(
        `Server accepted extension ${name} more than once`,
        0,
      );
    }
    seen.add(name);
    if (!isClientExtension(extension)) {
      agreed.push({ name, params });
      continue;
    }
    const accepted = extension.accept(params);
    // RFC 6455 §9: extensions may not share an RSV bit.
    if ((accepted.rsv & rsv) !== 0) {
      throw new HandshakeError(
        `Server accepted extensions that use the same RSV bits (${name})`,
        0,
      );
    }
    rsv |= accepted.rsv;
    agreed.push(accepted);
  }
  return agreed;
}

/**
 * The server's answer to a client's offers: for each of its extensions, in
 * the server's order of preference, the first offer of it that the
 * extension accepts; extensions whose RSV bits are already taken are
 * skipped.
 *
 * @param extensions The server's extensions.
 * @param offers The client's offers, parsed.
 * @returns The agreed extensions, to answer with.
 *
 * @example
 * ```ts
 * import { answerExtensions } from "@wsstream/wsstream/codec";
 * import assert from "node:assert/strict";
 * assert.deepEqual(answerExtensions([], [{ name: "x-test", params: {} }]), []);
 * ```
 */
export function answerExtensions(
  extensions: readonly ServerExtension[],
  offers: readonly ExtensionOffer[],
): Extension[] {
  const agreed: Extension[] = [];
  let rsv = 0;
  for (const extension of extensions) {
    for (const offer of offers) {
      if (offer.name !== extension.name) continue;
      const answer = extension.answer(offer.params);
      if (answer === null) continue;
      if ((answer.rsv & rsv) !== 0) {
        answer.close();
        break;
      }
      rsv |= answer.rsv;
      agreed.push(answer);
      break;
    }
  }
  return agreed;
}

function isClientExtension(
  extension: ClientExtension | ExtensionOffer,
): extension is ClientExtension {
  return typeof (extension as Partial<ClientExtension>).offers === "function";
}
