/**
 * `OpenConnections`: a live set of the connections that are open, as a
 * server keeps its `connections` (and `takeover`'s `openIn` keeps yours).
 *
 * @module
 */

import { WebSocketConnection } from "./connection.ts";
import { connectionLink, type OpenLink } from "./_connection_internals.ts";
import { type Link, LinkedList } from "./_linked_list.ts";

/**
 * A live set of open connections: a connection given it as `openIn`
 * ({@link TakeoverOptions}) is in it from its start until it ends. A
 * server's `connections` is one.
 *
 * It is a `ReadonlySet`, kept as a linked list through the connections
 * themselves rather than a `Set`: entering and leaving cost a few pointer
 * writes, and a busy server's churn does not keep ended connections alive
 * in V8's young generation (a `Set`'s rehashed tables do).
 *
 * @example Keep your own connections, as a server does
 * ```ts
 * import { OpenConnections, takeover } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 *
 * const open = new OpenConnections();
 * const toServer = new TransformStream<Uint8Array, Uint8Array>();
 * const toClient = new TransformStream<Uint8Array, Uint8Array>();
 * const client = takeover(
 *   { readable: toClient.readable, writable: toServer.writable },
 *   { role: "client", openIn: open },
 * );
 * const server = takeover(
 *   { readable: toServer.readable, writable: toClient.writable },
 *   { role: "server", keepalive: false },
 * );
 * assert.equal(open.size, 1);
 * assert.ok(open.has(client) && !open.has(server));
 * await Promise.all([client.close(), server.closed]);
 * assert.equal(open.size, 0);
 * ```
 */
export class OpenConnections implements ReadonlySet<WebSocketConnection> {
  readonly #links = new LinkedList<OpenLink>();

  /**
   * Keeps `connection` here until it ends (its link leaves by itself);
   * a connection already over is not added. Internal: `takeover`'s
   * `openIn` and the server call it.
   */
  static enter(open: OpenConnections, connection: WebSocketConnection): void {
    const link = connectionLink(connection);
    if (link !== null && link.list === null) open.#links.append(link);
  }

  /** How many connections are open. */
  get size(): number {
    return this.#links.size;
  }

  /** Whether `connection` is open and in this set. */
  has(connection: WebSocketConnection): boolean {
    return connection instanceof WebSocketConnection &&
      connectionLink(connection)?.list === (this.#links as LinkedList<Link>);
  }

  /**
   * Calls `callback` with each connection (twice, as a `Set` does: value
   * and key), oldest first.
   */
  forEach(
    callback: (
      value: WebSocketConnection,
      key: WebSocketConnection,
      set: ReadonlySet<WebSocketConnection>,
    ) => void,
    thisArg?: unknown,
  ): void {
    for (const connection of this) {
      callback.call(thisArg, connection, connection, this);
    }
  }

  /**
   * The connections, oldest first, with a `Set`'s semantics while they
   * change: one that ends during the iteration (the current one included)
   * does not end it, every one not yet visited and still open is visited,
   * and one that opens meanwhile is visited too.
   */
  *values(): SetIterator<WebSocketConnection> {
    for (const link of this.#links) yield link.connection;
  }

  /** The same as {@link values}, as a `Set` has it. */
  keys(): SetIterator<WebSocketConnection> {
    return this.values();
  }

  /** Each connection twice (`[connection, connection]`), as a `Set` has it. */
  *entries(): SetIterator<[WebSocketConnection, WebSocketConnection]> {
    for (const connection of this) yield [connection, connection];
  }

  /** The same as {@link values}. */
  [Symbol.iterator](): SetIterator<WebSocketConnection> {
    return this.values();
  }

  /** A new `Set` of these connections and `other`'s elements. */
  union<U>(other: ReadonlySetLike<U>): Set<WebSocketConnection | U> {
    return new Set(this).union(other);
  }

  /** A new `Set` of these connections that are in `other` too. */
  intersection<U>(
    other: ReadonlySetLike<U>,
  ): Set<WebSocketConnection & U> {
    return new Set(this).intersection(other);
  }

  /** A new `Set` of these connections that are not in `other`. */
  difference<U>(other: ReadonlySetLike<U>): Set<WebSocketConnection> {
    return new Set(this).difference(other);
  }

  /** A new `Set` of what is in exactly one of this and `other`. */
  symmetricDifference<U>(
    other: ReadonlySetLike<U>,
  ): Set<WebSocketConnection | U> {
    return new Set(this).symmetricDifference(other);
  }

  /** Whether every connection here is in `other`. */
  isSubsetOf(other: ReadonlySetLike<unknown>): boolean {
    return new Set(this).isSubsetOf(other);
  }

  /** Whether every element of `other` is here. */
  isSupersetOf(other: ReadonlySetLike<unknown>): boolean {
    return new Set(this).isSupersetOf(other);
  }

  /** Whether no connection here is in `other`. */
  isDisjointFrom(other: ReadonlySetLike<unknown>): boolean {
    return new Set(this).isDisjointFrom(other);
  }
}
