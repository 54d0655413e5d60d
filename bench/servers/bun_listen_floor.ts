/**
 * The floor under any WebSocket server built on `Bun.listen`, for the memory
 * mode: a raw socket that answers the opening handshake (101, with the
 * accept key) and, later, a close frame with a close frame, and holds
 * nothing else. What an idle connection costs it is what Bun's socket
 * costs: a server on `Bun.listen` cannot spend less per connection. Not a
 * WebSocket server (it does not echo); it runs the memory mode only.
 * Prints its port, serves until killed.
 *
 * @module
 */
import process from "node:process";
import { type BunSocket, requireBun } from "../_bun_api.ts";
import { computeAcceptSync } from "../../src/handshake.ts";

/** Before the 101: the head read so far; after it, `null`. */
type State = string | null;

const encoder = new TextEncoder();
const KEY = /^sec-websocket-key:[ \t]*([^\r\n]*?)[ \t]*\r$/im;
/** An empty close frame: the answer to the client's close. */
const CLOSE = new Uint8Array([0x88, 0x00]);

function answerHead(socket: BunSocket<State>, head: string): void {
  const key = KEY.exec(head)?.[1];
  if (key === undefined) {
    socket.write(encoder.encode("HTTP/1.1 400 Bad Request\r\n\r\n"));
    socket.end();
    return;
  }
  socket.data = null;
  socket.write(encoder.encode(
    "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Accept: ${computeAcceptSync(key)}\r\n` +
      "Upgrade: websocket\r\n\r\n",
  ));
}

const decoder = new TextDecoder("latin1");
const server = requireBun().listen<State>({
  hostname: "127.0.0.1",
  port: 0,
  socket: {
    binaryType: "uint8array",
    open: (socket) => {
      socket.data = "";
      socket.setNoDelay(true);
    },
    data(socket, bytes) {
      if (socket.data === null) {
        // The load generator sends nothing but a close frame after the 101.
        socket.write(CLOSE);
        socket.end();
        return;
      }
      const head = socket.data + decoder.decode(bytes);
      if (head.includes("\r\n\r\n")) answerHead(socket, head);
      else socket.data = head;
    },
  },
});
console.log(server.port);
process.on("SIGTERM", () => process.exit(0));
