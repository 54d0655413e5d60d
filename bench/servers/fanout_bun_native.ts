/**
 * Publish fan-out, Bun's native `server.publish` (the same protocol as
 * `fanout_ours.ts`): every socket subscribes to one topic in `open`; `go M
 * N` publishes M messages of 64 bytes. A publish dropped for backpressure
 * (0) is reported. Prints its port, serves until SIGTERM.
 *
 * @module
 */
import process from "node:process";

interface Socket {
  subscribe(topic: string): void;
}
interface Server {
  port: number;
  upgrade(request: Request): boolean;
  publish(topic: string, data: Uint8Array): number;
  subscriberCount(topic: string): number;
}
const bun = (globalThis as unknown as {
  Bun: {
    serve(options: {
      hostname: string;
      port: number;
      fetch(request: Request, server: Server): Response | undefined;
      websocket: {
        backpressureLimit: number;
        open(ws: Socket): void;
        message(ws: Socket, message: string | Uint8Array): void;
      };
    }): Server;
  };
}).Bun;

const payload = new Uint8Array(64).fill(0x61);
let dropped = 0;
const server = bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch: (request, server) =>
    server.upgrade(request)
      ? undefined
      : new Response("Upgrade Required", { status: 426 }),
  websocket: {
    backpressureLimit: 256 << 20,
    open(ws) {
      ws.subscribe("t");
    },
    async message(_ws, message) {
      const [, m, n] = String(message).split(" ").map(Number);
      while (server.subscriberCount("t") < n!) {
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      for (let i = 0; i < m!; i++) {
        if (server.publish("t", payload) === 0) dropped++;
      }
      if (dropped > 0) {
        console.error(`bun native: ${dropped} publishes dropped`);
      }
    },
  },
});
console.log(server.port);
process.on("SIGTERM", () => process.exit(0));
