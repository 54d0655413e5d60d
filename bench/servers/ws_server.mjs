// @ts-check
/**
 * The `ws` library's server (npm, benchmark only), echoing every message
 * with its type. Runs on Node, Deno and Bun; prints its port, serves until
 * killed.
 *
 * @module
 */
import process from "node:process";
import { WebSocketServer } from "ws";

const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
server.on("connection", (socket) => {
  socket.on("error", () => {}); // a peer that drops its connection
  socket.on(
    "message",
    (data, isBinary) => socket.send(data, { binary: isBinary }),
  );
});
server.on("listening", () => {
  const address = server.address();
  console.log(typeof address === "object" && address ? address.port : address);
});
process.on("SIGTERM", () => process.exit(0));
