/**
 * Deno's native WebSocket server: `Deno.serve` and `Deno.upgradeWebSocket`,
 * echoing every message. Prints its port, serves until killed.
 *
 * @module
 */
const server = Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: () => {},
}, (request) => {
  const { socket, response } = Deno.upgradeWebSocket(request);
  socket.binaryType = "arraybuffer";
  socket.onmessage = (event) => socket.send(event.data);
  return response;
});
console.log(server.addr.port);
Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
