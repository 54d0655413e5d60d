/**
 * Publish fan-out, ours: every connection subscribes to one topic of a
 * `PubSub`; a text message `go M N` from any of them publishes M messages
 * of 64 bytes to the topic once N are subscribed, each framed once for all.
 * Runs on Deno and on Bun; prints its port, serves until SIGTERM.
 *
 * @module
 */
import process from "node:process";
import { PubSub, serve } from "../../mod.ts";

const topics = new PubSub();
const payload = new Uint8Array(64).fill(0x61);
const server = await serve(
  { hostname: "127.0.0.1", port: 0, keepalive: false, onError: () => {} },
  async (connection) => {
    topics.subscribe(connection, "t");
    for await (const message of connection) {
      const [, m, n] = String(message).split(" ").map(Number);
      while (topics.subscriberCount("t") < n!) {
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      for (let i = 0; i < m!; i++) await topics.publish("t", payload);
    }
  },
);
console.log(server.addr.port);
process.on("SIGTERM", () => process.exit(0));
