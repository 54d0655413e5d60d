/**
 * The runtime's own `WebSocket` client (Deno's or Bun's), answering each
 * echo from `onmessage`. `deno run -A bench/clients/native.ts --port P` or
 * `bun bench/clients/native.ts --port P`.
 *
 * @module
 */
import { fail } from "../_stats.mjs";
import { runEchoClient } from "./_echo_driver.mjs";

await runEchoClient("native", async (url, onMessage) => {
  const socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  let closing = false;
  const closed = new Promise<void>((resolve) => {
    socket.onclose = () => {
      if (!closing) fail("The server closed the connection");
      resolve();
    };
  });
  socket.onmessage = (event) => {
    if (typeof event.data === "string") fail("A text echo of a binary message");
    onMessage(new Uint8Array(event.data as ArrayBuffer));
  };
  await new Promise<void>((resolve, reject) => {
    socket.onopen = () => resolve();
    socket.onerror = () => reject(new Error(`Cannot connect to ${url}`));
  });
  return {
    send: (bytes) => socket.send(bytes),
    close() {
      closing = true;
      socket.close(1000);
      return closed;
    },
  };
});
