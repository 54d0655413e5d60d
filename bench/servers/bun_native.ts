/**
 * Bun's native WebSocket server: `Bun.serve` with a `websocket` handler,
 * echoing every message. The payload and backpressure limits are raised
 * over 16 MiB (their defaults) so that the 16 MiB echo is not dropped; a
 * dropped echo is reported. Prints its port, serves until killed.
 *
 * @module
 */
import process from "node:process";
import { requireBun } from "../_bun_api.ts";

const server = requireBun().serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch: (request, server) =>
    server.upgrade(request)
      ? undefined
      : new Response("Upgrade Required", { status: 426 }),
  websocket: {
    maxPayloadLength: 64 << 20,
    backpressureLimit: 256 << 20,
    message(ws, message) {
      if (ws.send(message) === 0) console.error("bun_native: echo dropped");
    },
  },
});
console.log(server.port);
process.on("SIGTERM", () => process.exit(0));
