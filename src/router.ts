/**
 * `Router`: handlers per path glob and per subprotocol glob, as tcllib's
 * `websocket::live` registers them, plugged into `serve` (or the
 * `Deno.serve` and `Bun.serve` adapters) as an ordinary `onUpgrade` and
 * handler. The core never imports this module.
 *
 * @module
 */

import type { WebSocketConnection } from "./connection.ts";
import { Glob } from "./glob.ts";
import type {
  ConnectionHandler,
  ServerRequest,
  UpgradeDecision,
} from "./server.ts";

/**
 * A request as a route sees it: the server's request, with what each
 * wildcard of the route's path glob matched, in order.
 *
 * @example
 * ```ts
 * import type { RouteRequest } from "@wsstream/wsstream";
 * const room = (request: RouteRequest) => request.params[0] ?? "lobby";
 * ```
 */
export interface RouteRequest extends ServerRequest {
  /** What each `*` and `?` of the route's path glob matched, in order. */
  params: string[];
}

/**
 * A route's handler: a {@link ConnectionHandler} that gets the
 * {@link RouteRequest}.
 *
 * @typeParam Data What the route's `onUpgrade` attached to the connection.
 *
 * @example
 * ```ts
 * import type { RouteHandler } from "@wsstream/wsstream";
 * const room: RouteHandler = async (connection, request) => {
 *   await connection.send(`welcome to ${request.params[0]}`);
 * };
 * ```
 */
export type RouteHandler<Data = unknown> = (
  connection: WebSocketConnection<Data>,
  request: RouteRequest,
) => void | Promise<void>;

/**
 * Options of one route.
 *
 * @typeParam Data What its `onUpgrade` attaches to the connection.
 *
 * @example
 * ```ts
 * import type { RouteOptions } from "@wsstream/wsstream";
 * const options: RouteOptions = { protocol: "chat.v*" };
 * ```
 */
export interface RouteOptions<Data = unknown> {
  /**
   * A glob of the subprotocols the route speaks. The first subprotocol in
   * the client's order of preference that matches is agreed. Without it,
   * the route speaks none: it takes requests that offer none, and those
   * whose offers no route of the path speaks (see {@link Router}).
   */
  protocol?: string | undefined;
  /**
   * The route's deferred upgrade, as `serve`'s `onUpgrade`, run once the
   * route is chosen; a `protocol` it returns overrides the route's choice.
   */
  onUpgrade?:
    | ((
      request: RouteRequest,
    ) => UpgradeDecision<Data> | Promise<UpgradeDecision<Data>>)
    | undefined;
}

/** A registered route. */
interface Route<Data> {
  readonly path: Glob;
  readonly protocol: Glob | null;
  readonly handler: RouteHandler<Data>;
  readonly onUpgrade: RouteOptions<Data>["onUpgrade"];
  /** Registration order, the last tie-breaker. */
  readonly order: number;
}

/** What a request was routed to. */
interface Routed<Data> {
  readonly route: Route<Data>;
  readonly protocol: string;
  readonly params: string[];
}

/**
 * Routes WebSocket requests to handlers by path glob and subprotocol glob
 * (see {@link Glob}), most specific first: the routes whose path glob
 * matches are tried in order of their path's specificity, then those with
 * a `protocol` glob before those without, then in order of registration.
 * A route with a `protocol` glob takes the request when one of the offered
 * subprotocols matches it (the first in the client's order of preference
 * is agreed); a route without one takes it in any case, agreeing none.
 *
 * - A path no route matches gets **404**.
 * - Offered subprotocols that no route of the path speaks, where the path
 *   has a route without a `protocol`: that route takes the request and the
 *   101 carries no `Sec-WebSocket-Protocol`. This is RFC 6455's own answer
 *   (§4.2.2: "if the server does not wish to agree to one of the suggested
 *   subprotocols, it MUST NOT send back a |Sec-WebSocket-Protocol| header
 *   field"); the client decides whether to go on (browsers do not).
 * - Otherwise, when every route of the path needs a subprotocol and none
 *   is offered that one speaks, the handshake is refused with **400**: no
 *   handler could speak to this client, so there is nothing to accept it
 *   for.
 *
 * Plug it into `serve` as its `onUpgrade` and handler (both are bound).
 *
 * @typeParam Data What the routes' `onUpgrade` hooks attach to
 * connections. When it does not admit `undefined`, give every route an
 * `onUpgrade` that attaches data: a route without one attaches none.
 *
 * @example Two routes, a parameter and a subprotocol
 * ```ts
 * import { connect, Router, serve } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 *
 * const router = new Router()
 *   .route("/rooms/*", async (connection, request) => {
 *     await connection.send(`room ${request.params[0]} in ${connection.protocol}`);
 *     await connection.close();
 *   }, { protocol: "chat.v*" })
 *   .route("/echo", async (connection) => {
 *     for await (const message of connection) await connection.send(message);
 *   });
 * const server = await serve(
 *   { hostname: "127.0.0.1", port: 0, onUpgrade: router.onUpgrade },
 *   router.handler,
 * );
 * const url = `ws://127.0.0.1:${server.addr.port}`;
 * const client = await connect(`${url}/rooms/lobby`, { protocols: ["chat.v2"] });
 * for await (const message of client) assert.equal(message, "room lobby in chat.v2");
 * await assert.rejects(connect(`${url}/nowhere`)); // 404
 * await server.close();
 * ```
 */
export class Router<Data = unknown> {
  readonly #routes: Route<Data>[] = [];
  readonly #routed = new WeakMap<ServerRequest, Routed<Data>>();

  /**
   * Adds a route.
   *
   * @param path A glob of request paths (`/chat/*`); its wildcards' matches
   * are the handler's `request.params`.
   * @param handler Called with each connection routed here.
   * @param options The route's subprotocol glob and deferred upgrade.
   * @returns This router, for chaining.
   * @throws {TypeError} If `path` is not a string or `handler` not a function.
   */
  route(
    path: string,
    handler: RouteHandler<Data>,
    options: RouteOptions<Data> = {},
  ): this {
    if (typeof path !== "string") {
      throw new TypeError(`A route's path must be a glob string, got ${path}`);
    }
    if (typeof handler !== "function") {
      throw new TypeError(`The route ${path} needs a handler function`);
    }
    if (
      options.protocol !== undefined && typeof options.protocol !== "string"
    ) {
      throw new TypeError(`The route ${path}'s protocol must be a glob string`);
    }
    if (
      options.onUpgrade !== undefined && typeof options.onUpgrade !== "function"
    ) {
      throw new TypeError(`The route ${path}'s onUpgrade must be a function`);
    }
    this.#routes.push({
      path: new Glob(path),
      protocol: options.protocol === undefined
        ? null
        : new Glob(options.protocol),
      handler,
      onUpgrade: options.onUpgrade,
      order: this.#routes.length,
    });
    this.#routes.sort((a, b) =>
      Glob.compare(a.path, b.path) ||
      (a.protocol === null ? 1 : 0) - (b.protocol === null ? 1 : 0) ||
      (a.protocol !== null && b.protocol !== null
        ? Glob.compare(a.protocol, b.protocol)
        : 0) ||
      a.order - b.order
    );
    return this;
  }

  /**
   * Finds the route for a path and the subprotocols offered, without
   * upgrading anything.
   *
   * @param path The request path.
   * @param protocols The subprotocols offered, most preferred first.
   * @returns The route's path glob, the agreed subprotocol (`""` for none)
   * and the path's params; or the refusal's status, 404 or 400.
   */
  match(
    path: string,
    protocols: readonly string[],
  ): { path: string; protocol: string; params: string[] } | {
    status: 404 | 400;
  } {
    const routed = this.#find(path, protocols);
    if (typeof routed === "number") return { status: routed };
    return {
      path: routed.route.path.pattern,
      protocol: routed.protocol,
      params: routed.params,
    };
  }

  #find(path: string, protocols: readonly string[]): Routed<Data> | 404 | 400 {
    let pathMatched = false;
    for (const route of this.#routes) {
      const params = route.path.match(path);
      if (params === null) continue;
      pathMatched = true;
      if (route.protocol === null) return { route, protocol: "", params };
      const glob = route.protocol;
      const protocol = protocols.find((offered) => glob.test(offered));
      if (protocol !== undefined) return { route, protocol, params };
    }
    return pathMatched ? 400 : 404;
  }

  /** `serve`'s `onUpgrade`: routes the request, or refuses it. */
  readonly onUpgrade = async (
    request: ServerRequest,
  ): Promise<UpgradeDecision<Data>> => {
    const routed = this.#find(request.path, request.protocols);
    if (routed === 404) {
      return new Response("No route for this path", { status: 404 });
    }
    if (routed === 400) {
      return new Response("No route speaks the subprotocols offered", {
        status: 400,
      });
    }
    this.#routed.set(request, routed);
    const accept = { protocol: routed.protocol };
    if (routed.route.onUpgrade === undefined) {
      return accept as UpgradeDecision<Data>;
    }
    const decision = await routed.route.onUpgrade(
      Object.assign(request, { params: routed.params }),
    );
    if (typeof decision !== "object" || decision instanceof Response) {
      return decision === true || decision === undefined
        ? accept as UpgradeDecision<Data>
        : decision;
    }
    return { ...accept, ...decision };
  };

  /** `serve`'s handler: runs the route's handler. */
  readonly handler: ConnectionHandler<Data> = (connection, request) => {
    let routed = this.#routed.get(request);
    if (routed === undefined) {
      // Not routed by onUpgrade (the router is the handler only): route now.
      const found = this.#find(request.path, request.protocols);
      if (typeof found === "number" || found.protocol !== connection.protocol) {
        // RFC 6455 §7.4.1: 1008, "a message that violates its policy".
        return connection.close({ closeCode: 1008, reason: "No route" })
          .then(() => {});
      }
      routed = found;
    }
    this.#routed.delete(request);
    const routeRequest: RouteRequest = Object.assign(request, {
      params: routed.params,
    });
    return routed.route.handler(connection, routeRequest);
  };
}
