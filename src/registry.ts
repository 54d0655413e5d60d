/**
 * `Registry`: queries over a live set of connections, as tcllib's `find`
 * and `conninfo` answer them.
 *
 * @module
 */

import type { ConnectionInfo, WebSocketConnection } from "./connection.ts";
import { Glob } from "./glob.ts";

/**
 * What {@link Registry} looks for: globs of the peer's host and port, the
 * request path and the agreed subprotocol, and any predicate; every part
 * given must match. A function alone is the predicate.
 *
 * @typeParam Data The connections' `data`.
 *
 * @example
 * ```ts
 * import type { ConnectionQuery } from "@wsstream/wsstream";
 * const local: ConnectionQuery = { host: "127.0.0.*", port: "5*" };
 * const ann: ConnectionQuery<{ user: string }> = (c) => c.data.user === "ann";
 * ```
 */
export type ConnectionQuery<Data = unknown> =
  | {
    /** A glob of the peer's host (an IPv6 address without brackets). */
    host?: string | undefined;
    /** A glob of the peer's port, or the port. */
    port?: string | number | undefined;
    /** A glob of the handshake's path and query. */
    path?: string | undefined;
    /** A glob of the agreed subprotocol (`""` for none). */
    protocol?: string | undefined;
    /** Any test of the connection. */
    where?: ((connection: WebSocketConnection<Data>) => boolean) | undefined;
  }
  | ((connection: WebSocketConnection<Data>) => boolean);

/**
 * Queries over a live set of connections, such as a server's
 * `connections`: every call walks the set as it is then (an
 * `OpenConnections` iterates safely while connections close under it), so
 * the registry needs no upkeep.
 *
 * @typeParam Data The connections' `data`.
 *
 * @example Find, count and describe a server's connections
 * ```ts
 * import { connect, Registry, serve } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 *
 * const server = await serve({ hostname: "127.0.0.1", port: 0 }, async (connection) => {
 *   for await (const _ of connection);
 * });
 * const registry = new Registry(server.connections);
 * const url = `ws://127.0.0.1:${server.addr.port}`;
 * const clients = [await connect(`${url}/a`), await connect(`${url}/b`)];
 * while (registry.count() < 2) await new Promise((r) => setTimeout(r, 5));
 * assert.equal(registry.count({ host: "127.0.0.*", path: "/a" }), 1);
 * assert.deepEqual(registry.hosts(), new Map([["127.0.0.1", 2]]));
 * assert.equal(registry.info({ path: "/b" })[0]?.path, "/b");
 * await Promise.all(clients.map((client) => client.close()));
 * await server.close();
 * ```
 */
export class Registry<Data = unknown> {
  readonly #connections: Iterable<WebSocketConnection<Data>>;

  /**
   * A registry over `connections`.
   *
   * @param connections A live set (a server's `connections`, an
   * `OpenConnections`) or any iterable of connections.
   * @throws {TypeError} If `connections` is not iterable.
   */
  constructor(connections: Iterable<WebSocketConnection<Data>>) {
    if (
      connections === null ||
      typeof (connections as Iterable<unknown>)[Symbol.iterator] !==
        "function"
    ) {
      throw new TypeError("Registry needs an iterable of connections");
    }
    this.#connections = connections;
  }

  /**
   * The connections that match `query`, oldest first.
   *
   * @param query What to look for (default: every connection).
   * @returns A new array of them.
   * @throws {TypeError} If `query` is neither an object nor a function.
   */
  find(query: ConnectionQuery<Data> = {}): WebSocketConnection<Data>[] {
    const test = compile(query);
    const found: WebSocketConnection<Data>[] = [];
    for (const connection of this.#connections) {
      if (test(connection)) found.push(connection);
    }
    return found;
  }

  /**
   * How many connections match `query`.
   *
   * @param query What to look for (default: every connection).
   * @returns Their count.
   */
  count(query: ConnectionQuery<Data> = {}): number {
    const test = compile(query);
    let count = 0;
    for (const connection of this.#connections) if (test(connection)) count++;
    return count;
  }

  /**
   * Each matching connection's info (tcllib's `conninfo`): addresses,
   * state, subprotocol, path and byte and message counts.
   *
   * @param query What to look for (default: every connection).
   * @returns A new array of their info, oldest first.
   */
  info(query: ConnectionQuery<Data> = {}): ConnectionInfo[] {
    return this.find(query).map((connection) => connection.info);
  }

  /**
   * How many matching connections each peer host has.
   *
   * @param query What to look for (default: every connection).
   * @returns A map of host to count, in order of first appearance.
   */
  hosts(query: ConnectionQuery<Data> = {}): Map<string, number> {
    const counts = new Map<string, number>();
    for (const connection of this.find(query)) {
      const host = connection.info.remoteAddr?.hostname ?? "";
      counts.set(host, (counts.get(host) ?? 0) + 1);
    }
    return counts;
  }
}

/** `query` as one test; its globs compiled once per call. */
function compile<Data>(
  query: ConnectionQuery<Data>,
): (connection: WebSocketConnection<Data>) => boolean {
  if (typeof query === "function") return query;
  if (query === null || typeof query !== "object") {
    throw new TypeError("A connection query is an object or a function");
  }
  const host = globOf("host", query.host);
  const port = globOf(
    "port",
    typeof query.port === "number" ? String(query.port) : query.port,
  );
  const path = globOf("path", query.path);
  const protocol = globOf("protocol", query.protocol);
  const where = query.where;
  if (where !== undefined && typeof where !== "function") {
    throw new TypeError("A connection query's where must be a function");
  }
  const needsInfo = host !== null || port !== null || path !== null;
  return (connection) => {
    if (needsInfo) {
      const info = connection.info; // made afresh by each read: read once
      const remote = info.remoteAddr;
      if (host !== null && (remote === null || !host.test(remote.hostname))) {
        return false;
      }
      if (
        port !== null && (remote === null || !port.test(String(remote.port)))
      ) {
        return false;
      }
      if (path !== null && !path.test(info.path)) return false;
    }
    if (protocol !== null && !protocol.test(connection.protocol)) return false;
    return where === undefined || where(connection);
  };
}

/** A query's glob, case-blind for hosts; `null` when not given. */
function globOf(name: string, pattern: string | undefined): Glob | null {
  if (pattern === undefined) return null;
  if (typeof pattern !== "string") {
    throw new TypeError(`A connection query's ${name} must be a glob string`);
  }
  return new Glob(pattern, { ignoreCase: name === "host" });
}
