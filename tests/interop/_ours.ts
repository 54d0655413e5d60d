/**
 * Our side of interop tests: a server on a free port whose connections the
 * test takes one by one, and reading a connection's messages with a bound.
 */
import {
  serve,
  type ServeOptions,
  type ServerRequest,
  type WebSocketConnection,
  type WebSocketServer,
} from "../../mod.ts";
import type { Defer } from "./_harness.ts";
import { Inbox, within } from "./_harness.ts";
import type { Payload } from "./_messages.ts";

/** A connection our server accepted, with its request. */
export interface Accepted {
  connection: WebSocketConnection;
  request: ServerRequest;
}

/** Our server on a free port of 127.0.0.1, closed when the test ends. */
export async function ourServer(
  defer: Defer,
  options: Omit<ServeOptions, "hostname" | "port"> = {},
): Promise<
  { server: WebSocketServer; url: string; accepted: Inbox<Accepted> }
> {
  const accepted = new Inbox<Accepted>();
  const server = await serve(
    { ...options, hostname: "127.0.0.1", port: 0 },
    async (connection, request) => {
      accepted.push({ connection, request });
      // The connection belongs to the test; the handler just outlives it.
      await connection.closed;
    },
  );
  defer(() => server.close());
  return { server, url: `ws://127.0.0.1:${server.addr.port}`, accepted };
}

/** Reads a connection's messages one at a time, each wait bounded. */
export function messageReader(connection: WebSocketConnection): {
  next(what: string): Promise<Payload>;
  end(what: string): Promise<void>;
} {
  const reader = connection.readable.getReader();
  return {
    async next(what) {
      const { value, done } = await within(5_000, reader.read(), what);
      if (done) throw new Error(`${what}: the connection ended first`);
      return value;
    },
    async end(what) {
      const { done } = await within(5_000, reader.read(), what);
      if (!done) throw new Error(`${what}: a message came instead of the end`);
    },
  };
}
