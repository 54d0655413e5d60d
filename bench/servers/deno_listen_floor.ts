/**
 * The floor under any WebSocket server built on `Deno.listen`, for the
 * handshake mode: per connection, the ops every such server makes (accept,
 * no-delay, a read for the head, the 101 with its accept key, a read for the
 * close frame, a close frame back, the socket closed) and no other work. No
 * framing, no checks: a server on `Deno.listen` cannot spend less per
 * handshake. Not a WebSocket server (it does not echo); it runs the
 * handshake mode only. Prints its port, serves until killed.
 *
 * @module
 */
import { computeAcceptSync } from "../../src/handshake.ts";

const KEY = /^sec-websocket-key:[ \t]*([^\r\n]*?)[ \t]*\r$/im;
const encoder = new TextEncoder();
const decoder = new TextDecoder("latin1");
/** A close frame with code 1000: the answer to the client's close. */
const CLOSE = new Uint8Array([0x88, 0x02, 0x03, 0xe8]);

async function answer(conn: Deno.TcpConn): Promise<void> {
  conn.setNoDelay(true);
  const buffer = new Uint8Array(2048);
  let head = "";
  while (!head.includes("\r\n\r\n")) {
    const n = await conn.read(buffer);
    if (n === null) return;
    head += decoder.decode(buffer.subarray(0, n));
  }
  const key = KEY.exec(head)?.[1];
  if (key === undefined) return;
  await conn.write(encoder.encode(
    "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Accept: ${computeAcceptSync(key)}\r\n` +
      "Upgrade: websocket\r\n\r\n",
  ));
  // The load generator sends nothing but a close frame after the 101.
  if ((await conn.read(buffer)) === null) return;
  await conn.write(CLOSE);
}

const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
console.log(listener.addr.port);
for await (const conn of listener) {
  answer(conn).catch(() => {}).finally(() => {
    try {
      conn.close();
    } catch { /* closed */ }
  });
}
