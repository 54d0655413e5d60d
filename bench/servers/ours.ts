/**
 * Our server, as a user writes it: `serve()` from mod.ts, and a handler that
 * reads the connection with `for await` and echoes with `await send()`.
 * Keepalive is off (the native servers ping only after 120 s idle, which no
 * run reaches). With `--unread`, the handler returns at once instead (see
 * below). Runs on Deno and on Bun; prints its port, serves until
 * killed (SIGTERM exits cleanly, so `--cpu-prof` writes its profile).
 *
 * @module
 */
import process from "node:process";
import { serve } from "../../mod.ts";

// `--unread`: a handler that returns at once and never reads, for the memory
// mode only: what a connection costs without the handler's `for await`.
const unread = process.argv.includes("--unread");
const server = await serve(
  {
    hostname: "127.0.0.1",
    port: 0,
    keepalive: false,
    // The load generator drops its idle connections by exiting.
    onError: () => {},
  },
  unread ? () => {} : async (connection) => {
    for await (const message of connection) {
      await connection.send(message);
    }
  },
);
console.log(server.addr.port);
process.on("SIGTERM", () => process.exit(0));
