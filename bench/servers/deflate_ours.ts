/**
 * The deflate benchmark's server, ours: `serve` with permessage-deflate,
 * echoing every message (compressed when over the 1024-byte threshold).
 * `takeover` (the argument's default) keeps each connection's zlib streams
 * for its life; `no-takeover` agrees `server_no_context_takeover` and
 * `client_no_context_takeover`, so an idle connection holds none. Runs on
 * Deno and on Bun; prints its port, serves until SIGTERM.
 *
 *     deno run -A bench/servers/deflate_ours.ts [takeover|no-takeover]
 *
 * @module
 */
import process from "node:process";
import { serve } from "../../mod.ts";

const mode = process.argv[2] ?? "takeover";
if (mode !== "takeover" && mode !== "no-takeover") {
  throw new TypeError(`mode must be takeover or no-takeover, got ${mode}`);
}
const noTakeover = mode === "no-takeover";
const server = await serve({
  hostname: "127.0.0.1",
  port: 0,
  keepalive: false,
  onError: () => {},
  deflate: {
    serverNoContextTakeover: noTakeover,
    clientNoContextTakeover: noTakeover,
  },
}, async (connection) => {
  for await (const message of connection) await connection.send(message);
});
console.log(server.addr.port);
process.on("SIGTERM", () => process.exit(0));
