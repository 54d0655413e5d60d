// @ts-check
/**
 * The deflate benchmark's throughput client: C `ws` connections with
 * permessage-deflate (context takeover), each sending a compressible
 * 64 KiB text message and waiting for its echo, again and again; echoes
 * counted over SECONDS after WARMUP unmeasured seconds. Each echo is
 * checked. Prints `RESULT {"seconds","echoes","perSecond","mibPerSecond","extensions"}`
 * (MiB of uncompressed payload echoed per second). Runs on Node.
 *
 *     node bench/clients/deflate_echo.mjs PORT SECONDS WARMUP C
 *
 * @module
 */
import process from "node:process";
import { WebSocket } from "ws";
import { compressibleText } from "./_deflate_text.mjs";

const [port, seconds, warmup, c] = process.argv.slice(2, 6).map(Number);
const SIZE = 64 * 1024;
const message = compressibleText(SIZE);

let counting = false;
let echoes = 0;
let stopped = false;
/** @type {string} */
let extensions = "";

/** @returns {Promise<void>} */
function loop() {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/`, {
      perMessageDeflate: true,
      maxPayload: 1 << 20,
    });
    socket.on("error", reject);
    // ws's `extensions` names them only: the 101's header has the params.
    socket.on("upgrade", (response) => {
      extensions = String(response.headers["sec-websocket-extensions"] ?? "");
    });
    socket.on("open", () => socket.send(message));
    socket.on("message", (data) => {
      if (String(data) !== message) {
        reject(new Error("Bad echo"));
        return;
      }
      if (counting) echoes++;
      if (stopped) {
        socket.terminate();
        resolve();
      } else socket.send(message);
    });
  });
}

const loops = Array.from({ length: c }, loop);
setTimeout(() => {
  counting = true;
  const start = performance.now();
  setTimeout(() => {
    counting = false;
    stopped = true;
    const elapsed = (performance.now() - start) / 1000;
    Promise.all(loops).then(() => {
      console.log(`RESULT ${
        JSON.stringify({
          seconds: elapsed,
          echoes,
          perSecond: echoes / elapsed,
          mibPerSecond: echoes * SIZE / elapsed / (1 << 20),
          extensions,
        })
      }`);
    }, (error) => {
      console.error(error);
      process.exit(1);
    });
  }, seconds * 1000);
}, warmup * 1000);
await Promise.all(loops).catch((error) => {
  console.error(error);
  process.exit(1);
});
