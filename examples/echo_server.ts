/**
 * An echo server: every message comes back unchanged, text as text and
 * binary as binary. It is the server Autobahn's fuzzing client tests.
 *
 *     deno run -A examples/echo_server.ts
 *     bun run examples/echo_server.ts
 *
 * Environment: `HOSTNAME` (default 127.0.0.1) and `PORT` (default 9001; 0
 * picks a free port, and the line printed at start names the real one).
 * `DEFLATE=1` answers clients that offer permessage-deflate (RFC 7692; the
 * cases of Autobahn's categories 12 and 13): off otherwise, as `serve()`
 * has it, since context takeover costs memory on every connection.
 * `ORIGINS`: comma-separated globs of the origins allowed (see `origins` in
 * `serve`'s options); when set, a handshake whose `Origin` is neither the
 * server's own nor matched gets 403. Unset, there is no origin check.
 * SIGINT or SIGTERM shuts the server down gracefully (its `signal`): every
 * connection gets 1001, close handshakes get `SHUTDOWN_TIMEOUT` ms in all
 * (default 5000), the rest are dropped, and the process exits 0.
 *
 * Note that some shells and container runtimes export `HOSTNAME` (the
 * machine's name); set it explicitly when that is not the address you want.
 *
 * @module
 */
import { serve } from "../mod.ts";

// Works on both: Deno 2 has a Node-compatible `process` global too.
const env = globalThis.process?.env ?? {};
const hostname = env.HOSTNAME || "127.0.0.1";
const port = Number(env.PORT || "9001");
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  throw new RangeError(`PORT must be a port number (0 for any), got ${port}`);
}

const origins = env.ORIGINS === undefined
  ? undefined
  : env.ORIGINS.split(",").map((glob) => glob.trim()).filter((glob) =>
    glob !== ""
  );

const shutdownTimeout = Number(env.SHUTDOWN_TIMEOUT || "5000");
const shutdown = new AbortController();

const server = await serve({
  hostname,
  port,
  origins,
  signal: shutdown.signal,
  shutdownTimeout,
  // Autobahn's largest cases send 16 MiB messages; leave room above them.
  maxMessageSize: 64 * 1024 * 1024,
  deflate: env.DEFLATE === "1",
}, async (connection) => {
  try {
    for await (const message of connection.readable) {
      await connection.send(message);
    }
  } catch {
    // The peer broke the protocol or vanished: the connection has already
    // sent its close frame or dropped the socket. Nothing to log per peer.
  }
});

const host = server.addr.hostname.includes(":")
  ? `[${server.addr.hostname}]`
  : server.addr.hostname;
console.log(
  `wsstream echo server listening on ws://${host}:${server.addr.port}`,
);

const signals = ["SIGINT", "SIGTERM"] as const;
const stop = () => {
  for (const signal of signals) globalThis.process.off(signal, stop);
  shutdown.abort();
};
for (const signal of signals) globalThis.process.on(signal, stop);
// Once shut down, the server holds nothing that keeps the process alive,
// so it ends by itself; exit explicitly with 0 all the same.
server.finished.then(() => globalThis.process.exit(0));
