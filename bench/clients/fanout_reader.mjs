// @ts-check
/**
 * The fan-out benchmark's subscribers: N raw TCP WebSocket connections
 * (handshakes by hand, 100 at a time), then `go M N` on the first, then
 * every byte counted until each connection got M frames of 64 bytes (66
 * bytes each, unmasked). Prints `RESULT {"seconds","delivered","perSecond"}`.
 * Runs on Node.
 *
 *     node bench/clients/fanout_reader.mjs PORT N M
 *
 * @module
 */
import { createConnection } from "node:net";
import process from "node:process";

const [port, n, m] = process.argv.slice(2).map(Number);
const FRAME = 66;
const request = "GET /t HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n" +
  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
  "Sec-WebSocket-Version: 13\r\n\r\n";

let received = 0;
const expected = n * m * FRAME;
let started = 0;
/** @type {(value?: unknown) => void} */
let finish = () => {};
const done = new Promise((resolve) => (finish = resolve));

/** @returns {Promise<import("node:net").Socket>} */
function open() {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let head = "";
    let upgraded = false;
    socket.setNoDelay(true);
    socket.on("connect", () => socket.write(request));
    socket.on("error", reject);
    socket.on("data", (chunk) => {
      if (upgraded) {
        received += chunk.length;
        if (received >= expected) finish();
        return;
      }
      head += chunk.toString("latin1");
      const end = head.indexOf("\r\n\r\n");
      if (end === -1) return;
      if (!head.startsWith("HTTP/1.1 101")) {
        reject(new Error(head.slice(0, 40)));
        return;
      }
      upgraded = true;
      received += head.length - end - 4;
      resolve(socket);
    });
  });
}

const sockets = [];
for (let i = 0; i < n; i += 100) {
  sockets.push(
    ...await Promise.all(
      Array.from({ length: Math.min(100, n - i) }, open),
    ),
  );
}
// `go M N`, masked (zero key) as a client must.
const text = Buffer.from(`go ${m} ${n}`);
const frame = Buffer.concat([
  Buffer.from([0x81, 0x80 | text.length, 0, 0, 0, 0]),
  text,
]);
started = performance.now();
sockets[0].write(frame);
const timeout = setTimeout(() => {
  console.log(`FAILED: ${received} of ${expected} bytes after 60 s`);
  process.exit(1);
}, 60_000);
await done;
clearTimeout(timeout);
const seconds = (performance.now() - started) / 1000;
console.log(
  `RESULT ${
    JSON.stringify({
      seconds,
      delivered: n * m,
      perSecond: Math.round(n * m / seconds),
    })
  }`,
);
for (const socket of sockets) socket.destroy();
process.exit(0);
