// @ts-check
/**
 * The deflate benchmark's server with the `ws` library (npm, benchmark
 * only): `perMessageDeflate` on, echoing every message (compressed over its
 * default 1024-byte threshold, as ours). `no-takeover` agrees
 * `server_no_context_takeover` and `client_no_context_takeover`. Runs on
 * Node; prints its port, serves until SIGTERM.
 *
 *     node bench/servers/deflate_ws.mjs [takeover|no-takeover]
 *
 * @module
 */
import process from "node:process";
import { WebSocketServer } from "ws";

const mode = process.argv[2] ?? "takeover";
if (mode !== "takeover" && mode !== "no-takeover") {
  throw new TypeError(`mode must be takeover or no-takeover, got ${mode}`);
}
const noTakeover = mode === "no-takeover";
const server = new WebSocketServer({
  host: "127.0.0.1",
  port: 0,
  perMessageDeflate: {
    serverNoContextTakeover: noTakeover,
    clientNoContextTakeover: noTakeover,
  },
});
server.on("connection", (socket) => {
  socket.on("error", () => {});
  socket.on("message", (data, isBinary) => {
    socket.send(data, { binary: isBinary });
  });
});
server.on("listening", () => {
  const address = server.address();
  console.log(typeof address === "object" && address ? address.port : address);
});
process.on("SIGTERM", () => process.exit(0));
