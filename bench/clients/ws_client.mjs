// @ts-check
/**
 * The `ws` library's client (npm, benchmark only) on Node, answering each
 * echo from its `message` event. `node bench/clients/ws_client.mjs --port P`.
 *
 * @module
 */
import { WebSocket } from "ws";
import { fail } from "../_stats.mjs";
import { runEchoClient } from "./_echo_driver.mjs";

await runEchoClient("ws", async (url, onMessage) => {
  const socket = new WebSocket(url, { perMessageDeflate: false });
  let closing = false;
  const closed = new Promise((resolve) => {
    socket.on("close", () => {
      if (!closing) fail("The server closed the connection");
      resolve(undefined);
    });
  });
  socket.on("message", (data, isBinary) => {
    if (!isBinary || !(data instanceof Uint8Array)) {
      fail("A text echo of a binary message");
    }
    onMessage(data);
  });
  await new Promise((resolve, reject) => {
    socket.once("open", resolve);
    socket.once("error", reject);
  });
  return {
    send: (bytes) => socket.send(bytes),
    async close() {
      closing = true;
      socket.close(1000);
      await closed;
    },
  };
});
