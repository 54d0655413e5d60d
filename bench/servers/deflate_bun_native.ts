/**
 * The deflate benchmark's server, Bun's native `Bun.serve` with
 * `perMessageDeflate`, echoing every message compressed. uWebSockets, under
 * it, has no per-connection choice of context takeover from the offer: its
 * compressor and decompressor are either `"dedicated"` (a sliding window
 * per connection: `takeover`) or `"shared"` (one for all, no context
 * takeover agreed: `no-takeover`). Runs on Bun; prints its port, serves
 * until SIGTERM.
 *
 *     bun bench/servers/deflate_bun_native.ts [takeover|no-takeover]
 *
 * @module
 */
import process from "node:process";

type Compressor = "shared" | "dedicated";
interface Socket {
  send(message: string | Uint8Array, compress: boolean): number;
}
const bun = (globalThis as unknown as {
  Bun: {
    serve(options: {
      hostname: string;
      port: number;
      fetch(
        request: Request,
        server: { upgrade(request: Request): boolean },
      ): Response | undefined;
      websocket: {
        perMessageDeflate: { compress: Compressor; decompress: Compressor };
        maxPayloadLength: number;
        message(ws: Socket, message: string | Uint8Array): void;
      };
    }): { port: number };
  };
}).Bun;

const mode = process.argv[2] ?? "takeover";
if (mode !== "takeover" && mode !== "no-takeover") {
  throw new TypeError(`mode must be takeover or no-takeover, got ${mode}`);
}
const compressor: Compressor = mode === "takeover" ? "dedicated" : "shared";
const server = bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch: (request, server) =>
    server.upgrade(request)
      ? undefined
      : new Response("Upgrade Required", { status: 426 }),
  websocket: {
    perMessageDeflate: { compress: compressor, decompress: compressor },
    maxPayloadLength: 1 << 20,
    message(ws, message) {
      ws.send(message, true);
    },
  },
});
console.log(server.port);
process.on("SIGTERM", () => process.exit(0));
