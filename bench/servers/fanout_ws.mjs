// @ts-check
/**
 * Publish fan-out with the `ws` library (npm, benchmark only): a loop over
 * its clients sending each the message (the same protocol as
 * `fanout_ours.ts`). Runs on Node; prints its port, serves until SIGTERM.
 *
 * @module
 */
import process from "node:process";
import { WebSocketServer } from "ws";

const payload = Buffer.alloc(64, 0x61);
const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
server.on("connection", (socket) => {
  socket.on("error", () => {});
  socket.on("message", async (data) => {
    const [, m, n] = String(data).split(" ").map(Number);
    while (server.clients.size < n) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    for (let i = 0; i < m; i++) {
      for (const client of server.clients) client.send(payload);
    }
  });
});
server.on("listening", () => {
  const address = server.address();
  console.log(typeof address === "object" && address ? address.port : address);
});
process.on("SIGTERM", () => process.exit(0));
