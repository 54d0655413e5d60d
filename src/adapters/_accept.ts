/**
 * The part of an upgrade the runtime adapters share: a `Request` checked
 * as our `serve` checks one (origins, subprotocols, `onUpgrade`), and made
 * into a refusal `Response` or an acceptance.
 *
 * @module
 */

import type { Address } from "../address.ts";
import { HandshakeError } from "../errors.ts";
import {
  hasToken,
  parseExtensions,
  parseProtocols,
  selectSubprotocol,
} from "../handshake_headers.ts";
import { OriginPolicy } from "../origin.ts";
import type { ServerRequest, UpgradeDecision } from "../server.ts";
import type { PortableConnection } from "./native_connection.ts";
import { ConnectionClosedError } from "../errors.ts";

/**
 * Options of the `Deno.serve` and `Bun.serve` adapters: the part of
 * `serve`'s options that is about the upgrade and the handler.
 *
 * @typeParam Data What `onUpgrade` attaches.
 */
export interface AdapterOptions<Data = unknown> {
  /** Subprotocols spoken, chosen by the client's order of preference. */
  protocols?: readonly string[] | undefined;
  /** Origins allowed, as `serve`'s `origins`. */
  origins?: readonly string[] | undefined;
  /** The deferred upgrade, as `serve`'s `onUpgrade`. */
  onUpgrade?:
    | ((
      request: ServerRequest,
    ) => UpgradeDecision<Data> | Promise<UpgradeDecision<Data>>)
    | undefined;
  /** Errors from the handler and hooks (default `console.error`). */
  onError?: ((error: unknown) => void) | undefined;
}

/** What to do with an upgrade request. */
export type Verdict<Data> =
  | { refuse: Response }
  | {
    request: ServerRequest;
    protocol: string;
    headers: Headers;
    data: Data;
  };

/** `options` checked once; the function that decides each request. */
export function upgradeDecider<Data>(
  options: AdapterOptions<Data>,
): (request: Request, remoteAddr: Address | null) => Promise<Verdict<Data>> {
  const policy = options.origins === undefined
    ? null
    : new OriginPolicy(options.origins);
  if (
    options.onUpgrade !== undefined && typeof options.onUpgrade !== "function"
  ) {
    throw new TypeError("onUpgrade must be a function");
  }
  const onError = options.onError ?? ((error) => console.error(error));
  return async (fetchRequest, remoteAddr) => {
    const headers = fetchRequest.headers;
    const url = new URL(fetchRequest.url);
    try {
      if (
        policy !== null &&
        !policy.allows(headers.get("origin"), headers.get("host"))
      ) {
        throw new HandshakeError("Origin not allowed", 403);
      }
      const request: ServerRequest = {
        method: fetchRequest.method,
        target: url.pathname + url.search,
        path: url.pathname,
        query: url.search.slice(1),
        headers,
        key: headers.get("sec-websocket-key") ?? "",
        protocols: parseProtocols(headers.get("sec-websocket-protocol")),
        extensions: parseExtensions(headers.get("sec-websocket-extensions")),
        remoteAddr,
      };
      let protocol =
        selectSubprotocol(request.protocols, options.protocols ?? []) ?? "";
      const responseHeaders = new Headers();
      let data: unknown;
      if (options.onUpgrade !== undefined) {
        const decision = await options.onUpgrade(request);
        if (decision === false) {
          throw new HandshakeError("The server refused this request", 403);
        }
        if (decision instanceof Response) {
          if (decision.status < 400) {
            throw new TypeError(
              `onUpgrade refused with a Response of status ${decision.status}: use 400 to 599`,
            );
          }
          return { refuse: decision };
        }
        if (typeof decision === "object" && decision !== null) {
          if (decision.protocol !== undefined) protocol = decision.protocol;
          new Headers(decision.headers).forEach((value, name) =>
            responseHeaders.set(name, value)
          );
          data = decision.data;
        }
      }
      if (protocol !== "" && !request.protocols.includes(protocol)) {
        throw new TypeError(
          `The subprotocol ${protocol} was not offered by the client`,
        );
      }
      return {
        request,
        protocol,
        headers: responseHeaders,
        data: data as Data,
      };
    } catch (error) {
      if (error instanceof HandshakeError) {
        return {
          refuse: new Response(
            error.body === "" ? null : error.body,
            { status: error.status, headers: error.headers },
          ),
        };
      }
      onError(error);
      return { refuse: new Response(null, { status: 500 }) };
    }
  };
}

/** Whether a `Request` asks for a WebSocket upgrade. */
export function isUpgrade(request: Request): boolean {
  return hasToken(request.headers.get("upgrade"), "websocket");
}

/**
 * Runs `handler` on `connection` as `serve` does: an error goes to
 * `onError` and closes a connection still open with 1011; one that ends
 * because the connection closed ends quietly.
 */
export function runHandler<Data>(
  handler: (
    connection: PortableConnection<Data>,
    request: ServerRequest,
  ) => void | Promise<void>,
  connection: PortableConnection<Data>,
  request: ServerRequest,
  onError: (error: unknown) => void,
): void {
  const failed = (error: unknown) => {
    const open = connection.info.state === "open";
    if (error instanceof ConnectionClosedError && !open) return;
    onError(error);
    if (open) connection.close({ closeCode: 1011 }).catch(() => {});
  };
  try {
    Promise.resolve(handler(connection, request)).catch(failed);
  } catch (error) {
    failed(error);
  }
}
